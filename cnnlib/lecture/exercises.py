"""The lecture's tools: checkers for the exercises. A student calls one with an answer; it says
right or wrong, with one sentence of why."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from cnnlib import reference
from cnnlib.export import json_bytes
from cnnlib.lecture.convolution import receptive_field
from cnnlib.model import CNN


def output_size(size: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """Side of a convolution's or pool's output: floor((n + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _verdict(right: bool, why: str) -> str:
    return f"{'Right' if right else 'Not yet'}: {why}"


def check_output_size(answer: int) -> str:
    """Exercise (01): a 5 x 5 kernel, padding 2, stride 2, on a 28 x 28 image."""
    size = output_size(28, kernel=5, padding=2, stride=2)
    return _verdict(
        answer == size,
        f"(28 + 2·2 − 5) / 2 = 13.5, rounded down to 13, plus 1: {size} × {size}"
        " (PyTorch drops a last window that does not fit).",
    )


def check_conv_parameters(answer: int) -> str:
    """Exercise (01): parameters of nn.Conv2d(4, 16, kernel_size=5)."""
    count = 16 * 4 * 5 * 5 + 16
    return _verdict(
        answer == count,
        f"16 filters × 4 input channels × 5 × 5 weights + 16 biases = {count:,}.",
    )


def check_unseen_pixels(rows: Iterable[int], columns: Iterable[int]) -> str:
    """Exercise (01): the image rows and columns that no pool2 unit sees."""
    model = CNN()
    seen_rows: set[int] = set()
    seen_columns: set[int] = set()
    for row, column in itertools.product(range(5), repeat=2):
        field_rows, field_columns = receptive_field(model, "pool2", row, column)
        seen_rows.update(range(field_rows.start, field_rows.stop))
        seen_columns.update(range(field_columns.start, field_columns.stop))
    unseen_rows, unseen_columns = set(range(28)) - seen_rows, set(range(28)) - seen_columns
    return _verdict(
        (set(rows), set(columns)) == (unseen_rows, unseen_columns),
        f"pool2's corner unit (4, 4) sees rows and columns 16..25, so rows {sorted(unseen_rows)}"
        f" and columns {sorted(unseen_columns)} are seen by no unit: pool2 drops conv2's 11th"
        " row and column.",
    )


def check_learning_rates(accuracy_at_lr_0_1: float, accuracy_at_lr_1e_5: float) -> str:
    """Exercise (02): test accuracies (percent) after 2,000 steps at lr 0.1 and at lr 1e-5."""
    near_chance = accuracy_at_lr_0_1 < 20
    slow = 20 < accuracy_at_lr_1e_5 < 95
    return _verdict(
        near_chance and slow,
        "at lr 0.1 Adam's steps overshoot and the network ends near chance (10% for ten digits);"
        " at lr 1e-5 it learns, but too slowly to reach lr 1e-3's 98% in 2,000 steps.",
    )


def _significant(value: object, digits: int) -> object:
    """A copy of a parsed JSON value with every float rounded to `digits` significant digits."""
    if isinstance(value, dict):
        return {key: _significant(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [_significant(item, digits) for item in value]
    return float(f"{value:.{digits}g}") if isinstance(value, float) else value


def check_size_without_epoch_weights(
    answer: int, top_level: Mapping[str, int], per_epoch: Mapping[str, int]
) -> str:
    """Exercise (04): the bytes of the JSON without the per-epoch weights, within 1%."""
    whole = sum(top_level.values())
    rest = whole - per_epoch["weights"]
    return _verdict(
        math.isclose(answer, rest, rel_tol=0.01),
        f"the file's parts ({whole:,} bytes) minus the epochs' weights ({per_epoch['weights']:,})"
        f" leaves {rest:,} bytes, {rest / whole:.0%}: samples, feature maps, metrics and the"
        " final weights.",
    )


def check_rounded_weights(changed: int, bytes_saved: int, payload: Mapping[str, Any]) -> str:
    """Exercise (04): how many of the sample predictions change with `final_weights` rounded to
    3 significant digits, and how many bytes of `final_weights` that saves (within 1%)."""
    weights = payload["final_weights"]
    rounded = _significant(weights, 3)
    pixels = np.array([sample["image"] for sample in payload["samples"]], dtype=np.uint8)
    before = reference.forward(weights, pixels)["logits"]
    after = reference.forward(rounded, pixels)["logits"]
    flipped = int((before.argmax(axis=1) != after.argmax(axis=1)).sum())
    saved = json_bytes(weights) - json_bytes(rounded)
    return _verdict(
        changed == flipped and math.isclose(bytes_saved, saved, rel_tol=0.01),
        f"{flipped} of the {len(pixels)} predictions change (no logit moves by more than"
        f" {np.abs(after - before).max():.3f}) and `final_weights` shrinks by {saved:,} bytes,"
        f" {saved / json_bytes(weights):.0%} of its text.",
    )
