"""The factory, reading an artifact set safely: regular files inside its folder only, each of a
bounded size, parsed as strictly as the demo's JavaScript reads them, snapshots loaded without
running pickled code. One consistent set: the manifest and every file are read together, and read
again while a run publishes a new set into the folder. Every failure is a VerifyError naming the
file; `cnnlib.verify` checks what is read.
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

from cnnlib.data import DataError, read_split, validation_split, vendored_file
from cnnlib.export import (
    EPOCH_WEIGHTS_DIR,
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    epoch_weights_name,
    load_schema,
    load_state_dict,
)
from cnnlib.model import CNN
from cnnlib.store import (
    CURRENT,
    MAX_MANIFEST_BYTES,
    SETS_DIR,
    current_set,
    read_regular,
)
from cnnlib.train import MAX_EPOCHS, TrainConfig

# verify reads no file larger than these; a .pth snapshot is about 0.11 MB, the JSON about
# 0.43 MB per epoch.
MAX_PTH_BYTES = 1_000_000
# A snapshot is a zip of 14 members, stored uncompressed (torch.save): more members, or any
# compression (which can expand 1 KB into 1 GB), is no snapshot of ours.
MAX_PTH_MEMBERS = 64
# While a run publishes a new set into the folder, read it again: this often, this long apart.
READ_TRIES = 40
READ_AGAIN_S = 0.05
MAX_JSON_BYTES = 2_000_000 + 600_000 * (MAX_EPOCHS + 1)
UTF8_BOM = b"\xef\xbb\xbf"
EXPECTED_SHAPES = {name: tuple(tensor.shape) for name, tensor in CNN().state_dict().items()}


class VerifyError(Exception):
    """One failed check; the message names the file and what is wrong."""


def strict_json(content: bytes, name: str) -> dict:
    """Parse a JSON object as strictly as the standard and as JavaScript's JSON.parse: UTF-8
    without a byte order mark, no NaN or Infinity, no number too large for a double, no repeated
    keys."""

    def refuse_constant(constant: str) -> None:
        raise VerifyError(f"{name}: holds {constant}, which strict JSON does not allow")

    def finite_float(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise VerifyError(f"{name}: holds the number {text[:30]}, too large for a double")
        return value

    def refuse_repeated_keys(pairs: list[tuple[str, object]]) -> dict:
        value = dict(pairs)
        if len(value) != len(pairs):  # linear: a hostile file of 100,000 keys takes no longer
            counts = Counter(key for key, _ in pairs)
            repeated = min(key for key, count in counts.items() if count > 1)
            raise VerifyError(f"{name}: repeats the key {repeated!r} in one object")
        return value

    if content.startswith(UTF8_BOM):
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


def schema_message(error: fastjsonschema.JsonSchemaValueException) -> str:
    """fastjsonschema calls the document "data" ("data.samples[3] must be ..."); drop that."""
    message = error.message[:300]
    if message.startswith("data."):
        return message.removeprefix("data.")
    return "top level " + message.removeprefix("data ")


def check_archive(content: bytes, name: str) -> None:
    """VerifyError unless `content` is an intact zip of the shape torch.save writes: at most
    MAX_PTH_MEMBERS members, all stored uncompressed, every CRC-32 right. Bounded by the file's
    own size: a zip bomb is refused before a byte of it is inflated."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.infolist()
            if len(members) > MAX_PTH_MEMBERS:
                raise VerifyError(
                    f"{name}: not a snapshot ({len(members)} zip members; torch.save writes "
                    f"at most {MAX_PTH_MEMBERS})"
                )
            packed = [m.filename for m in members if m.compress_type != zipfile.ZIP_STORED]
            if packed or sum(m.file_size for m in members) > len(content):
                raise VerifyError(
                    f"{name}: not a snapshot (compressed zip members, which torch.save never "
                    "writes)"
                )
            damaged_member = archive.testzip()  # checks the CRC-32 of every member
    except VerifyError:
        raise
    except Exception as error:  # a damaged zip surfaces as many error types
        raise VerifyError(f"{name}: not an intact .pth archive ({type(error).__name__})") from None
    if damaged_member is not None:
        raise VerifyError(
            f"{name}: damaged (zip member {damaged_member!r} does not read back intact)"
        )


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
    files = value.get("files")
    return (
        isinstance(value.get("config"), dict)
        and isinstance(value["config"].get("epochs"), int)
        and value["config"]["epochs"] >= 0
        and isinstance(files, dict)
        and all(
            isinstance(entry, dict)
            and isinstance(entry.get("bytes"), int)
            and isinstance(entry.get("sha256"), str)
            for entry in files.values()
        )
    )


def matches(content: bytes, entry: dict) -> bool:
    """Has `content` the size and sha-256 that a manifest's entry lists?"""
    return len(content) == entry["bytes"] and hashlib.sha256(content).hexdigest() == entry["sha256"]


class SetReader:
    """One artifact set, read safely: regular files inside DIR only, each of a bounded size, the
    manifest and every file read together once (what the checks share), as one consistent set:
    while a run publishes into DIR (its `.cnnlib/current` names a set that DIR does not show
    yet), or when the manifest changes under the reader, everything is read again."""

    def __init__(self, out_dir: Path, data_root: Path) -> None:
        self.out_dir = Path(out_dir)
        self.real_dir = self.out_dir.resolve()
        self.data_root = Path(data_root)
        self.source = self.out_dir  # where the files are read: DIR, or the set it is getting
        self.interrupted: Path | None = None  # the staged set of a publish a kill interrupted
        self._cache: dict[str, object] = {}
        self._files: dict[str, bytes | VerifyError] = {}
        self.present: list[str] = []  # the .pth files in DIR/epoch_weights
        previous = None
        for _ in range(READ_TRIES):
            before = self._publish_state()
            self._read_all()
            after = self._publish_state()
            if after == before and self.consistent():
                return  # one whole set
            if self._being_published() is None:
                read = (before, after, {name: str(got) for name, got in self._files.items()})
                if read == previous:
                    return  # the same mismatch twice, no publish in between: damaged; say so
                previous = read
            time.sleep(READ_AGAIN_S)
        # DIR is still a mix of two sets: a run was killed while publishing. Read the set it
        # was publishing (complete, and verified before its publish began); the next run
        # finishes the publish.
        staged = self._being_published()
        if staged is not None:
            self.interrupted = self.source = staged
            self._read_all()

    def _publish_state(self) -> tuple[object, ...]:
        """What changes when a run publishes: `.cnnlib/current`, and the manifest's file (a new
        inode, made at another time)."""
        try:
            target = os.readlink(self.out_dir / SETS_DIR / CURRENT)
        except OSError:
            target = None
        try:
            shown = os.stat(self.out_dir / MANIFEST_NAME)
        except OSError:
            return (target, None)
        return (target, shown.st_ino, shown.st_ctime_ns, shown.st_size)

    def _being_published(self) -> Path | None:
        """The staged set that `.cnnlib/current` names, when DIR does not show its manifest."""
        staged = current_set(self.out_dir)
        if staged is None:
            return None
        content = read_regular(staged / MANIFEST_NAME, MAX_MANIFEST_BYTES)
        if content is None or content == self._files.get(MANIFEST_NAME):
            return None
        return staged

    def names(self) -> list[str]:
        """The files a set of `last_epoch()` epochs holds, the manifest first."""
        epochs = [epoch_weights_name(epoch) for epoch in range(self.last_epoch() + 1)]
        return [MANIFEST_NAME, JSON_NAME, FINAL_WEIGHTS_NAME, *epochs]

    def consistent(self) -> bool:
        """Does the manifest list exactly the set's files, each with its size and sha-256, and
        does DIR hold no other snapshot?"""
        try:
            listed = self.manifest()["files"]
            return (
                set(listed) == set(self.names()[1:])
                and set(self.present) <= set(listed)
                and all(matches(self.read(name, self.limit(name)), listed[name]) for name in listed)
            )
        except VerifyError:
            return False

    def _read_all(self) -> None:
        """Read the manifest, then every file a set must have (never more: a forged manifest
        may list thousands)."""
        self._cache, self._files = {}, {}
        names = [MANIFEST_NAME, JSON_NAME, FINAL_WEIGHTS_NAME]
        with suppress(VerifyError):
            names = self.names()
        for name in names:
            with suppress(VerifyError):
                self.read(name, self.limit(name))
        self.present = []
        with suppress(OSError):  # a folder the user may not enter: its files fail their lines
            self.present = sorted(
                f"{EPOCH_WEIGHTS_DIR}/{name}"
                for name in os.listdir(self.source / EPOCH_WEIGHTS_DIR)
                if name.endswith(".pth") and name[0] != "."
            )

    def once(self, key: str, compute: Callable[[], object]) -> object:
        """compute() on the first call, its value or VerifyError remembered for the next ones."""
        if key not in self._cache:
            try:
                self._cache[key] = compute()
            except VerifyError as error:
                self._cache[key] = error
        value = self._cache[key]
        if isinstance(value, VerifyError):
            raise VerifyError(str(value))
        return value

    def read(self, name: str, limit: int) -> bytes:
        """The content of the artifact `name`, as read with the rest of the set; VerifyError if
        it is missing, not a regular file, outside DIR (through a link) or larger than `limit`."""
        if name not in self._files:
            try:
                self._files[name] = self._read_file(name, limit)
            except VerifyError as error:
                self._files[name] = error
        content = self._files[name]
        if isinstance(content, VerifyError):
            raise VerifyError(str(content))
        return content

    def _read_file(self, name: str, limit: int) -> bytes:
        real = (self.source / name).resolve()
        if not real.is_relative_to(self.real_dir):
            raise VerifyError(f"{name}: leads out of {self.out_dir}; verify reads only inside it")
        try:
            # O_NONBLOCK: a FIFO opens at once (and is refused below) instead of waiting
            descriptor = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise VerifyError(f"{name}: missing") from None
        except OSError as error:
            raise VerifyError(f"{name}: cannot be read ({error.strerror or error})") from None
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise VerifyError(f"{name}: cannot be read (not a regular file)")
        with os.fdopen(descriptor, "rb") as handle:
            content = handle.read(limit + 1)
        if len(content) > limit:
            raise VerifyError(f"{name}: larger than the {limit / 1e6:g} MB verify reads")
        return content

    def limit(self, name: str) -> int:
        """How many bytes verify reads of the artifact `name`."""
        if name == JSON_NAME:
            return MAX_JSON_BYTES
        return MAX_MANIFEST_BYTES if name == MANIFEST_NAME else MAX_PTH_BYTES

    def manifest(self) -> dict:
        def read() -> dict:
            manifest = strict_json(self.read(MANIFEST_NAME, MAX_MANIFEST_BYTES), MANIFEST_NAME)
            if not is_manifest(manifest):
                raise VerifyError(f"{MANIFEST_NAME}: not in the format `regenerate` writes")
            return manifest

        return self.once("manifest", read)

    def payload(self) -> dict:
        """The parsed JSON, valid against the schema; what is wrong with it is said once, on
        the 'JSON schema' line (`checked_payload`)."""
        try:
            return self.checked_payload()
        except VerifyError:
            raise VerifyError(f"{JSON_NAME}: did not load (see 'JSON schema')") from None

    def checked_payload(self) -> dict:
        """The parsed JSON, valid against the schema (the checks below rely on its shape)."""

        def read() -> dict:
            payload = strict_json(self.read(JSON_NAME, MAX_JSON_BYTES), JSON_NAME)
            try:
                schema_validator()(payload)
            except fastjsonschema.JsonSchemaValueException as error:
                raise VerifyError(f"{JSON_NAME}: {schema_message(error)}") from None
            return payload

        return self.once("payload", read)

    def last_epoch(self) -> int:
        """N, the last epoch: as the manifest's config says, else the JSON's, else the default.
        VerifyError when it is more than any run can make (a damaged or forged manifest)."""
        last, source = TrainConfig().epochs, "the default"
        try:
            last, source = self.manifest()["config"]["epochs"], MANIFEST_NAME
        except VerifyError:
            with suppress(VerifyError):
                last, source = self.payload()["metadata"]["config"]["epochs"], JSON_NAME
        if last > MAX_EPOCHS:
            raise VerifyError(f"{source}: claims {last} epochs; a run makes at most {MAX_EPOCHS}")
        return last

    def snapshots(self) -> dict[str, dict[str, torch.Tensor] | VerifyError]:
        """Every expected `.pth`, by name: its state dict, or the VerifyError saying what is off."""

        def load_all() -> dict[str, dict[str, torch.Tensor] | VerifyError]:
            names = [epoch_weights_name(epoch) for epoch in range(self.last_epoch() + 1)]
            loaded: dict[str, dict[str, torch.Tensor] | VerifyError] = {}
            for name in [*names, FINAL_WEIGHTS_NAME]:
                try:
                    loaded[name] = read_state_dict(self.read(name, MAX_PTH_BYTES), name)
                except VerifyError as error:
                    loaded[name] = error
            return loaded

        return self.once("snapshots", load_all)

    def snapshot(self, name: str) -> dict[str, torch.Tensor]:
        state = self.snapshots().get(name)
        if not isinstance(state, dict):
            raise VerifyError(f"{name}: did not load (see 'weight files')")
        return state

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The MNIST test pixels and labels, read from the vendored archives themselves (never
        from what a run loaded or cached); DataError names a missing or corrupt archive."""

        def load() -> tuple[torch.Tensor, torch.Tensor]:
            try:
                return read_split(self.data_root, "t10k", read=vendored_file)
            except DataError as error:
                raise VerifyError(str(error)) from None

        return self.once("test_set", load)

    def validation_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The 5,000 validation images and labels, from the vendored training archives."""

        def load() -> tuple[torch.Tensor, torch.Tensor]:
            try:
                pixels, labels = read_split(self.data_root, "train", read=vendored_file)
            except DataError as error:
                raise VerifyError(str(error)) from None
            held_out = validation_split(len(labels))[1]
            return pixels[held_out], labels[held_out]

        return self.once("validation_set", load)
