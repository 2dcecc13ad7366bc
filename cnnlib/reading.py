"""The factory, reading an artifact set safely for `cnnlib.verify`: regular files inside its folder
only, each of a bounded size, parsed as strictly as the demo's JavaScript reads them, snapshots
loaded without running pickled code; the manifest and every file read together, and again while
a run publishes a new set, so that they are one set. Every failure is a VerifyError naming the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import stat
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from functools import cache
from pathlib import Path

import fastjsonschema
import torch

from cnnlib.export import (
    EPOCH_WEIGHTS_DIR,
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    epoch_weights_name,
    load_schema,
    load_state_dict,
)
from cnnlib.files import read_regular
from cnnlib.model import CNN
from cnnlib.store import CURRENT, MAX_MANIFEST_BYTES, SETS_DIR, current_set
from cnnlib.train import MAX_EPOCHS, TrainConfig

MAX_PTH_BYTES = 1_000_000  # a snapshot is about 0.11 MB
MAX_JSON_BYTES = 2_000_000 + 600_000 * (MAX_EPOCHS + 1)  # the JSON: about 0.43 MB an epoch
# torch.save writes a zip of 14 members, stored uncompressed: more members, or any compression
# (which can expand 1 KB into 1 GB), is no snapshot of ours.
MAX_PTH_MEMBERS = 64
READ_TRIES, READ_AGAIN_S = 40, 0.05  # while a run publishes into DIR, read again
EXPECTED_SHAPES = {name: tuple(tensor.shape) for name, tensor in CNN().state_dict().items()}


class VerifyError(Exception):
    """One failed check; the message names the file and what is wrong."""


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


def is_manifest(value: dict) -> bool:
    """Has `value` the shape `regenerate` writes: {'config': {...}, 'files': {name: entry}}?"""
    config, files = value.get("config"), value.get("files")
    return (
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
    )


def limit(name: str) -> int:
    """How many bytes verify reads of the artifact `name`."""
    return {JSON_NAME: MAX_JSON_BYTES, MANIFEST_NAME: MAX_MANIFEST_BYTES}.get(name, MAX_PTH_BYTES)


def read_inside(folder: Path, name: str, inside: Path) -> bytes:
    """The artifact folder/NAME, at most `limit(name)` bytes; VerifyError when it is missing, no
    regular file, larger, or outside the folder `inside` (through a link)."""
    real = (folder / name).resolve()
    if not real.is_relative_to(inside):
        raise VerifyError(f"{name}: leads out of {folder}; verify reads only inside it")
    try:  # O_NONBLOCK: a FIFO opens at once, and is refused below
        descriptor = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise VerifyError(f"{name}: missing") from None
    except OSError as error:
        raise VerifyError(f"{name}: cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise VerifyError(f"{name}: cannot be read (not a regular file)")
    with os.fdopen(descriptor, "rb") as handle:
        content = handle.read(limit(name) + 1)
    if len(content) > limit(name):
        raise VerifyError(f"{name}: larger than the {limit(name) / 1e6:g} MB verify reads")
    return content


def remembered(method: Callable) -> Callable:
    """A SetReader method computed once: its value, or its VerifyError, kept for the next calls."""

    def once(self: SetReader, *args: object) -> object:
        key = (method.__name__, *args)
        if key not in self.memo:
            try:
                self.memo[key] = method(self, *args)
            except VerifyError as error:
                self.memo[key] = error
        if isinstance(value := self.memo[key], VerifyError):
            raise VerifyError(str(value))
        return value

    return once


class SetReader:
    """One artifact set, read safely and together. While a run publishes into DIR (its
    `.cnnlib/current` names a set DIR does not show yet), or when the manifest changes under
    the reader, everything is read again; a publish a kill interrupted is read from its set."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir, self.real_dir = Path(out_dir), Path(out_dir).resolve()
        self.source = self.out_dir  # where the files are read: DIR, or the set it is getting
        self.interrupted: Path | None = None  # that set, when a kill interrupted its publish
        previous = None
        for _ in range(READ_TRIES):
            before = self._publish_state()
            self._read_all()
            after = self._publish_state()
            if after == before and self.consistent():
                return
            if self._being_published() is None:  # the same mismatch twice: damaged; say so
                read = (
                    before,
                    after,
                    {n: str(f) if isinstance(f, Exception) else f for n, f in self.files.items()},
                )
                if read == previous:
                    return
                previous = read
            time.sleep(READ_AGAIN_S)
        self.interrupted = self._being_published()  # DIR is still a mix: a run was killed
        if self.interrupted is not None:
            self.source = self.interrupted
            self._read_all()

    def _publish_state(self) -> tuple[object, ...]:
        """What a publish changes: `.cnnlib/current`, and the manifest's file (a new inode)."""
        try:
            target = os.readlink(self.out_dir / SETS_DIR / CURRENT)
        except OSError:
            target = None
        try:
            shown = os.stat(self.out_dir / MANIFEST_NAME)
        except OSError:
            return (target,)
        return (target, shown.st_ino, shown.st_ctime_ns, shown.st_size)

    def _being_published(self) -> Path | None:
        """The staged set that `.cnnlib/current` names, when DIR does not show its manifest."""
        staged = current_set(self.out_dir)
        if staged is None:
            return None
        content = read_regular(staged / MANIFEST_NAME, MAX_MANIFEST_BYTES)
        return None if content in (None, self.files.get(MANIFEST_NAME)) else staged

    def _read_all(self) -> None:
        """Read the manifest, then every file a set must have (never more: a forged manifest
        may list thousands), and list the snapshots DIR holds."""
        self.memo: dict[tuple, object] = {}
        self.files: dict[str, bytes | VerifyError] = {}
        names = [MANIFEST_NAME, JSON_NAME, FINAL_WEIGHTS_NAME]
        with suppress(VerifyError):
            names = self.names()
        for name in names:
            with suppress(VerifyError):
                self.read(name)
        self.present = []
        with suppress(OSError):  # a folder the user may not enter: its files fail their lines
            inner = os.listdir(self.source / EPOCH_WEIGHTS_DIR)
            self.present = sorted(f"{EPOCH_WEIGHTS_DIR}/{n}" for n in inner if n[0] != ".")
            self.present = [name for name in self.present if name.endswith(".pth")]

    def read(self, name: str) -> bytes:
        """The content of the artifact `name`, as read with the rest of the set."""
        if name not in self.files:
            try:
                self.files[name] = read_inside(self.source, name, self.real_dir)
            except VerifyError as error:
                self.files[name] = error
        if isinstance(content := self.files[name], VerifyError):
            raise VerifyError(str(content))
        return content

    def names(self) -> list[str]:
        """The files a set of `last_epoch()` epochs holds, the manifest first."""
        epochs = [epoch_weights_name(epoch) for epoch in range(self.last_epoch() + 1)]
        return [MANIFEST_NAME, JSON_NAME, FINAL_WEIGHTS_NAME, *epochs]

    def consistent(self) -> bool:
        """Does the manifest list exactly the set's files, with their sizes and sha-256, and
        does DIR hold no other snapshot?"""
        with suppress(VerifyError):
            listed = self.manifest()["files"]
            return (
                set(listed) == set(self.names()[1:])
                and set(self.present) <= set(listed)
                and all(matches(self.read(name), listed[name]) for name in listed)
            )
        return False

    @remembered
    def manifest(self) -> dict:
        manifest = strict_json(self.read(MANIFEST_NAME), MANIFEST_NAME)
        if not is_manifest(manifest):
            raise VerifyError(f"{MANIFEST_NAME}: not in the format `regenerate` writes")
        return manifest

    @remembered
    def checked_payload(self) -> dict:
        """The parsed JSON, valid against the schema (the checks rely on its shape)."""
        payload = strict_json(self.read(JSON_NAME), JSON_NAME)
        try:
            schema_validator()(payload)
        except fastjsonschema.JsonSchemaValueException as error:
            message = error.message[:300]  # fastjsonschema calls the document "data"
            where = message.removeprefix("data.") if message.startswith("data.") else None
            raise VerifyError(
                f"{JSON_NAME}: {where or 'top level ' + message.removeprefix('data ')}"
            ) from None
        return payload

    def payload(self) -> dict:
        """The checked JSON; what is wrong with it is said once, on the 'JSON schema' line."""
        try:
            return self.checked_payload()
        except VerifyError:
            raise VerifyError(f"{JSON_NAME}: did not load (see 'JSON schema')") from None

    def last_epoch(self) -> int:
        """N, the last epoch: as the manifest's config says, else the JSON's, else the default;
        VerifyError when it is more than any run makes."""
        last, source = TrainConfig().epochs, "the default"
        try:
            last, source = self.manifest()["config"]["epochs"], MANIFEST_NAME
        except VerifyError:
            with suppress(VerifyError):
                last, source = self.payload()["metadata"]["config"]["epochs"], JSON_NAME
        if last > MAX_EPOCHS:
            raise VerifyError(f"{source}: claims {last} epochs; a run makes at most {MAX_EPOCHS}")
        return last

    @remembered
    def checked_snapshot(self, name: str) -> dict[str, torch.Tensor]:
        """The state dict of the `.pth` file `name`, checked."""
        return read_state_dict(self.read(name), name)

    def snapshot(self, name: str) -> dict[str, torch.Tensor]:
        """The checked snapshot; what is wrong with it is said on the 'weight files' line."""
        try:
            return self.checked_snapshot(name)
        except VerifyError:
            raise VerifyError(f"{name}: did not load (see 'weight files')") from None


def matches(content: bytes, entry: dict) -> bool:
    """Has `content` the size and sha-256 that a manifest's entry lists?"""
    return len(content) == entry["bytes"] and hashlib.sha256(content).hexdigest() == entry["sha256"]
