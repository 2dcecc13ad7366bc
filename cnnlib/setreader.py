"""The factory, one artifact set read whole: regular files inside its folder only, each of a bounded
size, all read together, and again while a run publishes a new set into the folder, so that they
are one set; each is parsed once, its value or its VerifyError kept."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

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
    parse_manifest,
    read_payload,
    read_state_dict,
)
from cnnlib.store import CURRENT, MAX_MANIFEST_BYTES, SETS_DIR, current_set
from cnnlib.train import MAX_EPOCHS, TrainConfig

READ_TRIES, READ_AGAIN_S = 40, 0.05  # while a run publishes into DIR, read again
LIMITS = {JSON_NAME: MAX_JSON_BYTES, MANIFEST_NAME: MAX_MANIFEST_BYTES}  # else MAX_PTH_BYTES


def read_inside(folder: Path, name: str, inside: Path) -> bytes:
    """The artifact folder/NAME; VerifyError when it is missing, no regular file, larger than
    verify reads, or outside the folder `inside` (through a link)."""
    real, limit = (folder / name).resolve(), LIMITS.get(name, MAX_PTH_BYTES)
    if not real.is_relative_to(inside):
        raise VerifyError(f"{name}: leads out of {folder}; verify reads only inside it")
    try:
        content = read_regular(real, limit + 1, follow=True)
    except FileNotFoundError:
        raise VerifyError(f"{name}: missing") from None
    except OSError as error:
        raise VerifyError(f"{name}: cannot be read ({error.strerror or error})") from None
    if len(content) > limit:
        raise VerifyError(f"{name}: larger than the {limit / 1e6:g} MB verify reads")
    return content


class SetReader:
    """One artifact set, read safely and together: again while a run publishes into DIR, and
    from the staged set when a kill interrupted its publish."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir, self.real_dir = Path(out_dir), Path(out_dir).resolve()
        self.source = self.out_dir  # where the files are read: DIR, or the set it is getting
        self.interrupted: Path | None = None  # that set, when a kill interrupted its publish
        previous = None
        for _ in range(READ_TRIES):  # a consistent read is one set: each file's sha-256 agrees
            self._read_all()
            if self.consistent():
                return
            if self._being_published() is None:  # the same mismatch twice: damaged; say so
                reads = [got for key, got in self.memo.items() if isinstance(key, str)]
                files = [got if isinstance(got, bytes) else str(got) for got in reads]
                read = (self._publish_state(), files)
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
        target = None
        with suppress(OSError):
            target = os.readlink(self.out_dir / SETS_DIR / CURRENT)
        with suppress(OSError):
            shown = os.stat(self.out_dir / MANIFEST_NAME)
            return (target, shown.st_ino, shown.st_ctime_ns, shown.st_size)
        return (target,)

    def _being_published(self) -> Path | None:
        """The staged set that `.cnnlib/current` names, when DIR does not show its manifest."""
        staged = current_set(self.out_dir)
        with suppress(OSError):  # its manifest unreadable: no set to read
            shown = self.memo[MANIFEST_NAME]
            if staged and read_regular(staged / MANIFEST_NAME, MAX_MANIFEST_BYTES) != shown:
                return staged
        return None

    def _read_all(self) -> None:
        """Read every file a set must have (never more: a forged manifest may list thousands)."""
        self.memo: dict[object, object] = {}  # what `once` found, errors too
        names = [MANIFEST_NAME, JSON_NAME, FINAL_WEIGHTS_NAME]
        with suppress(VerifyError):
            names = self.names()
        for name in names:
            with suppress(VerifyError):
                self.read(name)
        self.present = []
        with suppress(OSError):  # a folder the user may not enter: its files fail their lines
            inner = sorted(os.listdir(self.source / EPOCH_WEIGHTS_DIR))
            snapshots = [name for name in inner if name[0] != "." and name.endswith(".pth")]
            self.present = [f"{EPOCH_WEIGHTS_DIR}/{name}" for name in snapshots]

    def once(self, key: object, compute: Callable[[], Any]) -> Any:
        """compute(), or its VerifyError, found once and kept for the next calls."""
        if key not in self.memo:
            try:
                self.memo[key] = compute()
            except VerifyError as error:
                self.memo[key] = error
        if isinstance(value := self.memo[key], VerifyError):
            raise VerifyError(str(value))
        return value

    def read(self, name: str) -> bytes:
        """The content of the artifact `name`, as read with the rest of the set."""
        return self.once(name, lambda: read_inside(self.source, name, self.real_dir))

    def manifest(self) -> dict:
        return self.once(("manifest",), lambda: parse_manifest(self.read(MANIFEST_NAME)))

    def names(self) -> list[str]:
        """The files a set of `last_epoch()` epochs holds, the manifest first."""
        epochs = [epoch_weights_name(epoch) for epoch in range(self.last_epoch() + 1)]
        return [MANIFEST_NAME, JSON_NAME, FINAL_WEIGHTS_NAME, *epochs]

    def mismatches(self) -> list[str]:
        """Where the manifest does not list exactly the set's files, with their sizes and
        sha-256, or DIR holds another snapshot: one problem each."""
        listed, expected = self.manifest()["files"], self.names()[1:]
        problems = [
            f"{name}: not listed in {MANIFEST_NAME}" for name in expected if name not in listed
        ]
        for name, entry in listed.items():
            if name not in expected:  # never read: a forged manifest may list thousands
                problems.append(f"{name[:80]}: listed in {MANIFEST_NAME}, but no set holds it")
                continue
            try:
                content = self.read(name)
            except VerifyError as error:
                missing = str(error) == f"{name}: missing"
                problems.append(
                    f"{name}: listed in {MANIFEST_NAME} but missing" if missing else str(error)
                )
                continue
            if len(content) != entry["bytes"]:
                truncated = " (truncated?)" if len(content) < entry["bytes"] else ""
                stated = f"{MANIFEST_NAME} says {entry['bytes']}{truncated}"
                problems.append(f"{name}: {len(content)} bytes, {stated}")
            elif hashlib.sha256(content).hexdigest() != entry["sha256"]:
                problems.append(
                    f"{name}: sha-256 differs from {MANIFEST_NAME} (changed or damaged)"
                )
        unlisted = [name for name in self.present if name not in listed]
        return problems + [
            f"{name}: not listed in {MANIFEST_NAME} (left from another run?)" for name in unlisted
        ]

    def consistent(self) -> bool:
        """Is the manifest readable, and does it list exactly the set's files?"""
        with suppress(VerifyError):
            return not self.mismatches()
        return False

    def loaded(self, name: str) -> Any:
        """`checked(name)`; a failure is said on its own line, and sends other lines there."""
        try:
            return self.checked(name)
        except VerifyError:
            line = "JSON schema" if name == JSON_NAME else "weight files"
            raise VerifyError(f"{name}: did not load (see '{line}')") from None

    def checked(self, name: str) -> Any:
        """The JSON `name`, valid against the schema, or the snapshot `name`, checked."""
        parse = read_payload if name == JSON_NAME else read_state_dict
        return self.once(("checked", name), lambda: parse(self.read(name), name))

    def payload(self) -> dict:
        return self.loaded(JSON_NAME)

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
