"""The lecture's tools for notebook 04: the bytes a part of the JSON takes, and the float64 text
that the export avoids."""

from __future__ import annotations

import json

import numpy as np


def json_bytes(value: object) -> int:
    """Bytes a parsed JSON value takes written compactly (no spaces): its share of a file."""
    return len(json.dumps(value, separators=(",", ":")))


def widened(value: object) -> object:
    """Every float of parsed JSON `value` as the float64 its float32 converts to, exactly."""
    if isinstance(value, float):
        return float(np.float32(value))
    if isinstance(value, list):
        return [widened(item) for item in value]
    if isinstance(value, dict):
        return {key: widened(item) for key, item in value.items()}
    return value


def dumps_float64(value: object) -> str:
    """Compact JSON of parsed JSON `value`, every float written as the float64 its float32 widens
    to, as `json.dumps(tensor.tolist())` writes weights: 0.41788855 becomes 0.4178885519504547."""
    return json.dumps(widened(value), separators=(",", ":"))
