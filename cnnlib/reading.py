"""The factory, reading an artifact's bytes as `cnnlib.verify` does: JSON as strictly as the demo's
JavaScript parses it, snapshots without running pickled code, a zip bomb refused unread; every
failure a VerifyError naming the file."""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections import Counter
from collections.abc import Callable
from functools import cache

import fastjsonschema
import torch

from cnnlib.export import MANIFEST_NAME, load_schema, load_state_dict
from cnnlib.model import CNN
from cnnlib.train import MAX_EPOCHS

MAX_PTH_BYTES = 1_000_000  # a snapshot is about 0.11 MB
MAX_JSON_BYTES = 2_000_000 + 600_000 * (MAX_EPOCHS + 1)  # the JSON: about 0.43 MB an epoch
MAX_PTH_MEMBERS = 64  # torch.save writes 14 zip members, uncompressed (1 KB never inflates)
EXPECTED_SHAPES = {name: tuple(tensor.shape) for name, tensor in CNN().state_dict().items()}


class VerifyError(Exception):
    """One failed check; the message names the file and what is wrong."""


def fail_if_any(problems: list[str | None], shown: int = 4) -> None:
    """One VerifyError listing the problems (None: none): the first few, then how many more."""
    if problems := [problem for problem in problems if problem]:
        more = f"; {len(problems) - shown} more" if len(problems) > shown else ""
        raise VerifyError("; ".join(problems[:shown]) + more)


def strict_json(content: bytes, name: str) -> dict:
    """A JSON object parsed as strictly as JavaScript's JSON.parse reads it: UTF-8 without a byte
    order mark, no NaN or Infinity, no number too large for a double, no repeated keys."""

    def refuse_constant(constant: str) -> None:
        raise VerifyError(f"{name}: holds {constant}, which strict JSON does not allow")

    def finite_float(text: str) -> float:
        if not math.isfinite(value := float(text)):
            raise VerifyError(f"{name}: holds the number {text[:30]}, too large for a double")
        return value

    def refuse_repeated_keys(pairs: list[tuple[str, object]]) -> dict:
        if len(value := dict(pairs)) != len(pairs):  # linear, however many keys
            counts = Counter(key for key, _ in pairs)
            repeated = min(key for key, count in counts.items() if count > 1)
            raise VerifyError(f"{name}: repeats the key {repeated!r} in one object")
        return value

    if content.startswith(b"\xef\xbb\xbf"):
        raise VerifyError(f"{name}: starts with a UTF-8 byte order mark, which JSON does not allow")
    try:
        value = json.loads(
            content.decode("utf-8"),
            parse_constant=refuse_constant,
            parse_float=finite_float,
            object_pairs_hook=refuse_repeated_keys,
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise VerifyError(f"{name}: not valid JSON, truncated or damaged ({error})") from None
    except RecursionError:
        raise VerifyError(f"{name}: nested too deeply for a file cnnlib writes") from None
    if not isinstance(value, dict):
        raise VerifyError(f"{name}: holds a JSON {type(value).__name__}, not an object")
    return value


@cache
def schema_validator() -> Callable[[object], object]:
    """The package's JSON Schema, compiled once per process."""
    return fastjsonschema.compile(load_schema())


def read_payload(content: bytes, name: str) -> dict:
    """The JSON, parsed strictly and valid against the schema (the checks rely on its shape)."""
    payload = strict_json(content, name)
    try:
        schema_validator()(payload)
    except fastjsonschema.JsonSchemaValueException as error:
        message = error.message[:300]  # fastjsonschema calls the document "data"
        if message.startswith("data."):
            raise VerifyError(f"{name}: {message.removeprefix('data.')}") from None
        raise VerifyError(f"{name}: top level {message.removeprefix('data ')}") from None
    return payload


def check_archive(content: bytes, name: str) -> None:
    """VerifyError unless `content` is an intact zip of the shape torch.save writes; a zip bomb
    is refused before a byte of it is inflated."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.infolist()
            if len(members) > MAX_PTH_MEMBERS:
                raise VerifyError(
                    f"{name}: not a snapshot ({len(members)} zip members; torch.save writes "
                    f"at most {MAX_PTH_MEMBERS})"
                )
            packed = [m for m in members if m.compress_type != zipfile.ZIP_STORED]
            if packed or sum(m.file_size for m in members) > len(content):
                raise VerifyError(
                    f"{name}: not a snapshot (compressed zip members, which torch.save never "
                    "writes)"
                )
            damaged = archive.testzip()  # the CRC-32 of every member
    except VerifyError:
        raise
    except Exception as error:  # a damaged zip surfaces as many error types
        raise VerifyError(f"{name}: not an intact .pth archive ({type(error).__name__})") from None
    if damaged is not None:
        raise VerifyError(f"{name}: damaged (zip member {damaged!r} does not read back intact)")


def read_state_dict(content: bytes, name: str) -> dict[str, torch.Tensor]:
    """Load one `.pth` snapshot safely and check it against the model's keys, shapes and dtype."""
    check_archive(content, name)
    try:
        state = load_state_dict(io.BytesIO(content))  # weights_only=True: never runs pickled code
    except Exception as error:  # an unsafe or damaged pickle surfaces as many error types
        if type(error).__name__ == "UnpicklingError":
            raise VerifyError(
                f"{name}: refused: this file contains code, not just tensors "
                "(torch.load with weights_only=True)"
            ) from None
        reason = (str(error).strip().splitlines() or [""])[0][:120]
        raise VerifyError(
            f"{name}: torch.load(weights_only=True) fails ({type(error).__name__}: {reason})"
        ) from None
    if not isinstance(state, dict):
        raise VerifyError(f"{name}: holds a {type(state).__name__}, not a state dict")
    unexpected = sorted(set(state) - set(EXPECTED_SHAPES))
    missing = [key for key in EXPECTED_SHAPES if key not in state]
    if unexpected or missing:
        raise VerifyError(f"{name}: unexpected keys {unexpected}, missing keys {missing}")
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.float32:
            raise VerifyError(f"{name}: {key} is not a float32 tensor")
        if not torch.isfinite(tensor).all():
            raise VerifyError(f"{name}: {key} holds NaN or infinity")
        if tuple(tensor.shape) != EXPECTED_SHAPES[key]:
            raise VerifyError(
                f"{name}: {key} has shape {tuple(tensor.shape)}, expected {EXPECTED_SHAPES[key]}"
            )
    return state


def parse_manifest(content: bytes) -> dict:
    """The manifest, in the shape `regenerate` writes: {'config': {...}, 'files': {name: entry}}."""
    manifest = strict_json(content, MANIFEST_NAME)
    config, files = manifest.get("config"), manifest.get("files")
    if not (
        isinstance(config, dict)
        and type(config.get("epochs")) is int
        and config["epochs"] >= 0
        and isinstance(files, dict)
        and all(
            isinstance(entry, dict)
            and type(entry.get("bytes")) is int
            and isinstance(entry.get("sha256"), str)
            for entry in files.values()
        )
    ):
        raise VerifyError(f"{MANIFEST_NAME}: not in the format `regenerate` writes")
    return manifest
