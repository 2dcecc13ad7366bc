"""The factory, the set store: where an artifact set lives on disk and how it replaces the last.

A set is built in a hidden folder of its own, DIR/.cnnlib/set-*, one epoch at a time;
DIR/.cnnlib/current is a symbolic link to the set in use, and DIR's four artifact names are links
through it. Publishing a set is one atomic step, re-pointing `current`: at every instant DIR shows
the complete old set or the complete new one. A lock file keeps one writer per DIR. Files this
project did not write are never replaced, hidden or deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cnnlib.data import Mnist
from cnnlib.export import (
    EPOCH_FILE_PATTERN,
    EPOCH_WEIGHTS_DIR,
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    TOP_LEVEL,
    epoch_weights_name,
    json_pieces,
    state_dict_bytes,
)
from cnnlib.files import (
    atomic_write_bytes,
    exclusive_lock,
    is_stale_temporary,
    point_link,
    remove_listed,
    remove_stale_temporaries,
)
from cnnlib.train import EpochResult, TrainConfig

SETS_DIR = ".cnnlib"  # hidden: the lock file, the sets, and `current`, a link to the one in use
CURRENT = "current"
LOCK_NAME = "lock"
MNIST_DIR = "MNIST"  # the dataset's folder when DIR is the data folder: torchvision's, not ours
MAX_MANIFEST_BYTES = 1_000_000
OUR_FILE = re.compile(
    "|".join([EPOCH_FILE_PATTERN, *map(re.escape, (JSON_NAME, FINAL_WEIGHTS_NAME, MANIFEST_NAME))])
)


class OutputError(ValueError):
    """A folder `regenerate` must not write into; the message says why and what to do."""


def link_target(name: str) -> str:
    """Where DIR/NAME points: through `current`, relative, so that DIR can be moved or copied."""
    return f"{SETS_DIR}/{CURRENT}/{name}"


def is_our_file(name: str) -> bool:
    """Is `name` the name of a file that a set holds?"""
    return OUR_FILE.fullmatch(name) is not None


def is_set_path(path: str) -> bool:
    """Is `path` where a set holds one of its files? (A manifest may be damaged or forged:
    cnnlib reads or deletes only such paths, never `../x` or `/etc/hostname`.)"""
    if path in (JSON_NAME, FINAL_WEIGHTS_NAME, MANIFEST_NAME):
        return True
    folder, _, name = path.partition("/")
    return folder == EPOCH_WEIGHTS_DIR and re.fullmatch(EPOCH_FILE_PATTERN, name) is not None


def read_manifest(path: Path) -> dict | None:
    """The manifest at `path` when it is one of ours, else None."""
    try:
        manifest = json.loads(path.read_bytes()[:MAX_MANIFEST_BYTES])
        files = manifest["files"]
        if isinstance(manifest["config"], dict) and all(isinstance(n, str) for n in files):
            return manifest
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _our_names(folder: Path) -> list[str]:
    """What this project wrote into a set folder: what its manifest lists, or, for a set that
    never got one (its run was killed), the names it writes and their temporaries."""
    manifest = read_manifest(folder / MANIFEST_NAME)
    if manifest is not None:
        return [name for name in [*manifest["files"], MANIFEST_NAME] if is_set_path(name)]
    return [
        path.relative_to(folder).as_posix()
        for path in [*folder.glob("*"), *folder.glob(f"{EPOCH_WEIGHTS_DIR}/*")]
        if is_our_file(path.name) or is_stale_temporary(path, is_our_file)
    ]


def legacy_manifest(out_dir: Path) -> dict | None:
    """The manifest of a set written straight into DIR by an older cnnlib, if DIR holds one."""
    path = out_dir / MANIFEST_NAME
    if path.is_symlink() or not path.is_file():
        return None
    return read_manifest(path)


def current_set(out_dir: Path) -> Path | None:
    """The set folder DIR/.cnnlib/current points to, if it is one of ours."""
    link = Path(out_dir) / SETS_DIR / CURRENT
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    if not re.fullmatch(r"set-[0-9a-z-]+", target) or not (link.parent / target).is_dir():
        return None
    return link.parent / target


def refuse_others(out_dir: Path, force: bool = False) -> None:
    """OutputError, one line, unless every artifact name in DIR is ours and, when DIR holds other
    files, it holds a set of ours too (or `force`): cnnlib never replaces, deletes or writes
    through what it did not write."""
    sets = out_dir / SETS_DIR
    if sets.is_symlink() or (sets.exists() and not sets.is_dir()):
        raise OutputError(f"{sets} is not a folder cnnlib made; move it away")
    legacy = legacy_manifest(out_dir)
    listed = {name for name in legacy["files"] if is_set_path(name)} if legacy else set()
    current = current_set(out_dir)
    if current is not None:
        theirs = set(_files_in(current)) - set(_our_names(current))
        if theirs:
            name = sorted(theirs)[0]
            raise OutputError(
                f"{out_dir / name} was not written by cnnlib and would be hidden by a new set; "
                "move it out of the folder"
            )
    for name in TOP_LEVEL:
        entry = out_dir / name
        if not (entry.is_symlink() or entry.exists()):
            continue
        if entry.is_symlink():
            if os.readlink(entry) == link_target(name):
                continue
            raise OutputError(
                f"{entry} is a symbolic link cnnlib did not make, and cnnlib never writes through "
                "one; remove the link or choose another --out"
            )
        if name == EPOCH_WEIGHTS_DIR and entry.is_dir():
            theirs = [path for path in _files_in(entry, name) if path not in listed]
        else:
            theirs = [] if name in listed or (legacy and name == MANIFEST_NAME) else [name]
        if theirs:
            raise OutputError(
                f"{out_dir / theirs[0]} was not written by cnnlib; move it away or choose "
                "another --out"
            )
    ours = {*TOP_LEVEL, SETS_DIR, MNIST_DIR}
    others = sorted(e.name for e in out_dir.iterdir() if e.name not in ours and e.name[0] != ".")
    if others and not (force or legacy or current):
        raise OutputError(
            f"{out_dir} holds files that cnnlib did not write ({', '.join(others[:3])}"
            f"{', ...' if len(others) > 3 else ''}) and no artifact set; choose an empty or new "
            "folder, or pass --force to write beside them (they are never touched)"
        )


def _files_in(folder: Path, prefix: str = "") -> list[str]:
    """Relative paths of every file or link below `folder`, without following links."""
    return sorted(
        (f"{prefix}/" if prefix else "") + path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_symlink() or not path.is_dir()
    )


def check_writable(out_dir: Path, force: bool = False) -> None:
    """Fail early, with one line: OSError when `out_dir` cannot be written, OutputError when it
    holds files that are not ours (see `refuse_others`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    refuse_others(out_dir, force)
    (out_dir / SETS_DIR).mkdir(exist_ok=True)
    os.close(os.open(out_dir / SETS_DIR / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644))


@contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Be the only process writing artifacts into `out_dir` for the block (after check_writable).
    A second one stops at once with BusyError: "another run is writing DIR"."""
    message = f"another run is writing {out_dir}; wait for it to end, or choose another --out"
    with exclusive_lock(Path(out_dir) / SETS_DIR / LOCK_NAME, message):
        yield


def discard(set_dir: Path) -> list[str]:
    """Remove a set folder of ours, only the files we wrote; return what was left (not ours)."""
    return remove_listed(set_dir, _our_names(set_dir))


def stage_artifacts(
    results: Iterable[EpochResult], data: Mnist, config: TrainConfig, out_dir: Path
) -> tuple[Path, dict[str, int]]:
    """Write a whole set into a new hidden set folder of `out_dir`, each epoch as it arrives
    (memory does not grow with the number of epochs); return the folder and {name: bytes}.

    Nothing in `out_dir` changes for a reader until `publish`. On any error the folder is
    removed again. The caller holds the lock (`locked`).
    """
    sets = Path(out_dir) / SETS_DIR
    for stale in sets.glob("set-*"):  # left by a killed run: the lock says none is running
        if stale != current_set(out_dir):
            discard(stale)
    remove_stale_temporaries(sets, {CURRENT}.__contains__)
    remove_stale_temporaries(out_dir, set(TOP_LEVEL).__contains__)
    set_dir = sets / f"set-{time.time_ns():x}-{os.getpid()}"
    (set_dir / EPOCH_WEIGHTS_DIR).mkdir(parents=True)
    files: dict[str, dict[str, object]] = {}

    def write(name: str, content: bytes) -> None:
        atomic_write_bytes(set_dir / name, content)
        files[name] = {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}

    try:
        json_digest, json_size, last = hashlib.sha256(), 0, []

        def write_epoch(result: EpochResult) -> None:
            write(epoch_weights_name(result.epoch), state_dict_bytes(result.state_dict))
            last[:] = [result]

        with open(set_dir / JSON_NAME, "wb") as handle:
            for text in json_pieces(results, data, config, on_epoch=write_epoch):
                content = text.encode()
                handle.write(content)
                json_digest.update(content)
                json_size += len(content)
            handle.flush()
            os.fsync(handle.fileno())
        write(FINAL_WEIGHTS_NAME, state_dict_bytes(last[0].state_dict))
        files[JSON_NAME] = {"bytes": json_size, "sha256": json_digest.hexdigest()}
        manifest = {"config": config.as_dict(), "files": dict(sorted(files.items()))}
        write(MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
    except BaseException:  # an error, Ctrl-C: nothing of this set stays behind
        discard(set_dir)
        raise
    return set_dir, {name: entry["bytes"] for name, entry in files.items()}


def publish(out_dir: Path, set_dir: Path) -> list[str]:
    """Make a staged set the one `out_dir` shows, in one atomic step; remove the previous set
    (only the files it lists). Returns the files left behind because cnnlib did not write them.

    A folder written by an older cnnlib, files straight in DIR, is converted: each of its listed
    files is replaced by its link (that step is not atomic across the files)."""
    out_dir = Path(out_dir)
    previous = current_set(out_dir)
    legacy = legacy_manifest(out_dir)
    point_link(out_dir / SETS_DIR / CURRENT, set_dir.name)
    if legacy is not None:
        old_epochs = out_dir / EPOCH_WEIGHTS_DIR
        if old_epochs.is_dir() and not old_epochs.is_symlink():
            listed = [name for name in legacy["files"] if is_set_path(name) and "/" in name]
            remove_listed(old_epochs, [name.split("/", 1)[1] for name in listed])
    for name in TOP_LEVEL:  # the manifest's link last: no manifest, no set
        point_link(out_dir / name, link_target(name))
    return discard(previous) if previous is not None and previous != set_dir else []


def write_artifacts(
    results: Iterable[EpochResult],
    data: Mnist,
    config: TrainConfig,
    out_dir: Path,
    force: bool = False,
) -> dict[str, int]:
    """Write every artifact into `out_dir`, replacing the set there as one atomic step; return
    {relative path: size in bytes}. `results` may be a generator: each epoch is written away as
    it arrives."""
    check_writable(out_dir, force)
    with locked(out_dir):
        set_dir, files = stage_artifacts(results, data, config, out_dir)
        publish(out_dir, set_dir)
    return files
