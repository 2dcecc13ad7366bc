"""The factory, one artifact set read whole: regular files inside its folder only, each of a bounded
size, the manifest and every file read together, and read again while a run publishes a new set
into the folder, so that they are one set; what the checks share is read and parsed once."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import fastjsonschema
import torch

from cnnlib.export import (
    EPOCH_WEIGHTS_DIR,
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    epoch_weights_name,
)
from cnnlib.files import read_regular
from cnnlib.reading import (
    MAX_JSON_BYTES,
    MAX_PTH_BYTES,
    VerifyError,
    is_manifest,
    read_state_dict,
    schema_validator,
    strict_json,
)
from cnnlib.store import CURRENT, MAX_MANIFEST_BYTES, SETS_DIR, current_set
from cnnlib.train import MAX_EPOCHS, TrainConfig

READ_TRIES, READ_AGAIN_S = 40, 0.05  # while a run publishes into DIR, read again


def matches(content: bytes, entry: dict) -> bool:
    """Has `content` the size and sha-256 that a manifest's entry lists?"""
    return len(content) == entry["bytes"] and hashlib.sha256(content).hexdigest() == entry["sha256"]


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
                files = {
                    key: hashlib.sha256(got).digest() if isinstance(got, bytes) else str(got)
                    for key, got in self.memo.items()
                    if key[0] == "read"
                }
                read = (before, after, files)
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
        return None if content in (None, self.memo.get(("read", MANIFEST_NAME))) else staged

    def _read_all(self) -> None:
        """Read the manifest, then every file a set must have (never more: a forged manifest
        may list thousands), and list the snapshots DIR holds."""
        self.memo: dict[tuple, object] = {}  # what `remembered` methods found, errors too
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

    @remembered
    def read(self, name: str) -> bytes:
        """The content of the artifact `name`, as read with the rest of the set."""
        return read_inside(self.source, name, self.real_dir)

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
                and all(matches(self.read(name), entry) for name, entry in listed.items())
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
        return see_line(self.checked_payload, JSON_NAME, "JSON schema")

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
        return see_line(lambda: self.checked_snapshot(name), name, "weight files")


def see_line(read: Callable[[], object], name: str, line: str) -> object:
    """read(), or a VerifyError that sends the reader to the report's `line` for the reason."""
    try:
        return read()
    except VerifyError:
        raise VerifyError(f"{name}: did not load (see '{line}')") from None
