"""The factory, the set store: a run stages its set in DIR/.cnnlib/set-*, verifies it there, then
publishes it: hard links renamed over DIR's files, the manifest last; a killed publish is finished
by the next run. One writer per DIR (a lock); no file cnnlib did not write is replaced or deleted,
and no symbolic link is written or deleted through."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

from cnnlib.export import (
    EPOCH_FILE_PATTERN,
    EPOCH_WEIGHTS_DIR,
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    TOP_LEVEL,
)
from cnnlib.files import (
    TEMPORARY,
    atomic_write_bytes,
    create,
    hard_link,
    is_real_folder,
    open_folder,
    read_regular,
    remove_regular,
    remove_stale_temporaries,
    replace,
)

SETS_DIR = ".cnnlib"  # hidden: the lock, the staged sets, and `current` during a publish
CURRENT = "current"
LOCK_NAME = "lock"
RECORD_NAME = "published.json"  # DIR's manifest, kept: which files are ours if DIR's is damaged
MAX_MANIFEST_BYTES = 1_000_000
NAMES = [re.escape(name) for name in (JSON_NAME, FINAL_WEIGHTS_NAME, MANIFEST_NAME)]
OUR_FILE = re.compile("|".join([EPOCH_FILE_PATTERN, *NAMES]))
SET_PATH = re.compile("|".join([f"{EPOCH_WEIGHTS_DIR}/{EPOCH_FILE_PATTERN}", *NAMES]))
SET_NAME = re.compile(r"set-[0-9a-z-]+")


class OutputError(ValueError):
    """A folder cnnlib must not write into; the message says why and what to do."""


class BusyError(OSError):
    """Another process holds the folder's lock."""


def is_ours(name: str) -> bool:
    """Is `name` one that a set's files have, or their temporaries?"""
    match = TEMPORARY.fullmatch(name)
    return OUR_FILE.fullmatch(match["name"] if match else name) is not None


def discard(set_dir: Path) -> None:
    """Remove a staged set folder, only the files cnnlib writes there; a link in its place, or
    inside it, is never followed, and someone else's file keeps the folder."""
    with suppress(OSError), open_folder(set_dir) as top:  # gone, or a link: left alone
        remove_regular(top, is_ours)
        with suppress(OSError), open_folder(EPOCH_WEIGHTS_DIR, top) as inner:
            remove_regular(inner, is_ours)
            os.rmdir(EPOCH_WEIGHTS_DIR, dir_fd=top)
        set_dir.rmdir()


def read_manifest(path: Path) -> dict | None:
    """The manifest at `path` when it is one of ours, else None."""
    with suppress(OSError, ValueError, KeyError, TypeError, RecursionError):
        manifest = json.loads(read_regular(path, MAX_MANIFEST_BYTES))
        names = all(isinstance(name, str) for name in manifest["files"])
        if isinstance(manifest["config"], dict) and names:
            return manifest
    return None


def current_set(out_dir: Path) -> Path | None:
    """The staged set that DIR/.cnnlib/current names: the set a run was publishing."""
    link = Path(out_dir) / SETS_DIR / CURRENT
    with suppress(OSError):  # no link, or just gone
        target = os.readlink(link)
        if SET_NAME.fullmatch(target) and is_real_folder(link.parent / target):
            return link.parent / target
    return None


def dir_manifest(out_dir: Path) -> dict | None:
    """The manifest of the set DIR shows, if it shows one of ours."""
    return read_manifest(Path(out_dir) / MANIFEST_NAME)


def listed_names(manifest: dict | None) -> list[str]:
    """The set paths a manifest lists (a forged one may list `../x`: never read or deleted),
    the manifest itself not included."""
    return [name for name in (manifest or {"files": {}})["files"] if SET_PATH.fullmatch(name)]


def our_files(out_dir: Path) -> set[str]:
    """The names of DIR's files that cnnlib wrote, from DIR's manifest and cnnlib's record of
    what it published; empty when DIR holds no set of ours."""
    manifests = [dir_manifest(out_dir), read_manifest(Path(out_dir) / SETS_DIR / RECORD_NAME)]
    if manifests == [None, None]:
        return set()
    return {MANIFEST_NAME, *(name for manifest in manifests for name in listed_names(manifest))}


def check_writable(out_dir: Path, force: bool = False) -> None:
    """Fail early, writing nothing: OSError when `out_dir` is a file; OutputError unless its
    artifact names are ours and, beside other files, it holds a set of ours (or `force`)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(out_dir))
    if not out_dir.is_dir():
        return
    sets = out_dir / SETS_DIR
    if sets.is_symlink() or (sets.exists() and not sets.is_dir()):
        raise OutputError(f"{sets} is not a folder cnnlib made; move it away")
    listed = our_files(out_dir)
    for name in TOP_LEVEL:
        entry = out_dir / name
        if entry.is_symlink():
            raise OutputError(
                f"{entry} is a symbolic link cnnlib did not make, and cnnlib never writes through "
                "one; remove the link or choose another --out"
            )
        if name == EPOCH_WEIGHTS_DIR and entry.is_dir():  # hidden names: a writer's temporaries
            inside = (f"{name}/{inner}" for inner in sorted(os.listdir(entry)) if inner[0] != ".")
            theirs = [path for path in inside if path not in listed]
        else:
            theirs = [name] if entry.exists() and not (entry.is_file() and name in listed) else []
        if theirs:
            raise OutputError(
                f"{out_dir / theirs[0]} was not written by cnnlib; move it away or choose "
                "another --out"
            )
    ours = {*TOP_LEVEL, SETS_DIR, "MNIST"}  # MNIST: the dataset's folder when DIR is data/
    others = sorted(name for name in os.listdir(out_dir) if name not in ours and name[0] != ".")
    if others and not (force or listed):
        raise OutputError(
            f"{out_dir} holds files that cnnlib did not write ({', '.join(others[:3])}"
            f"{', ...' if len(others) > 3 else ''}) and no artifact set; choose an empty or new "
            "folder, or pass --force to write beside them (they are never touched)"
        )


def prepare_output(out_dir: Path, force: bool = False) -> None:
    """Make `out_dir` ready for a run that writes a set, before any work: OSError when it cannot
    be written, OutputError when it holds files that are not ours."""
    check_writable(out_dir, force)
    (Path(out_dir) / SETS_DIR).mkdir(parents=True, exist_ok=True)
    lock = Path(out_dir) / SETS_DIR / LOCK_NAME
    os.close(os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644))


@contextmanager
def locked(out_dir: Path, wait: bool = False) -> Iterator[None]:
    """Be the only writer of `out_dir` for the block (the kernel releases the lock if the process
    dies): wait, or BusyError at once; then finish a publish that a killed run left half done."""
    out_dir = Path(out_dir)
    lock = os.open(out_dir / SETS_DIR / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    with os.fdopen(lock, "rb"):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            message = (
                f"another run is writing {out_dir}; wait for it to end, or choose another --out"
            )
            raise BusyError(errno.EBUSY, message) from None
        set_dir = current_set(out_dir)
        if set_dir is not None and read_manifest(set_dir / MANIFEST_NAME):
            show(out_dir, set_dir)  # verified before its publish began
        yield


class StagedSet:
    """A new set, written file by file into a hidden folder of DIR that no reader looks at until
    `publish`; what was written, by name, with its size and sha-256."""

    def __init__(self, out_dir: Path, folder: Path) -> None:
        sets = Path(out_dir) / SETS_DIR
        current = current_set(out_dir)  # what killed runs left (the caller holds the lock)
        for stale in [*sets.glob("set-*"), sets / CURRENT]:  # a `current` folder: unzipped
            if is_real_folder(stale) and stale != current:
                discard(stale)
        remove_stale_temporaries(sets, {CURRENT, RECORD_NAME}.__contains__)
        for shown in (Path(out_dir), Path(out_dir) / EPOCH_WEIGHTS_DIR):
            if is_real_folder(shown):
                remove_stale_temporaries(shown, is_ours)
        self.folder = folder
        (folder / EPOCH_WEIGHTS_DIR).mkdir(parents=True)
        self.files: dict[str, dict[str, object]] = {}

    @contextmanager
    def stream(self, name: str) -> Iterator[Callable[[bytes], None]]:
        """Write the file `name` piece by piece, calling the function this yields for each piece
        (memory does not grow with its size); flushed to disk at the end of the block."""
        digest, size = hashlib.sha256(), 0
        with create(self.folder / name) as handle:

            def write(piece: bytes) -> None:
                nonlocal size
                handle.write(piece)
                digest.update(piece)
                size += len(piece)

            yield write
            handle.flush()
            os.fsync(handle.fileno())
        self.files[name] = {"bytes": size, "sha256": digest.hexdigest()}

    def write(self, name: str, content: bytes) -> None:
        with self.stream(name) as write:
            write(content)

    def seal(self, config: dict[str, object]) -> dict[str, int]:
        """Write the manifest, last; return {name: bytes} of the set's other files."""
        files = dict(sorted(self.files.items()))
        manifest = {"schema_version": SCHEMA_VERSION, "config": config, "files": files}
        self.write(MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
        return {name: entry["bytes"] for name, entry in files.items()}


@contextmanager
def staging(out_dir: Path) -> Iterator[StagedSet]:
    """A new set in DIR (the caller holds the lock); on any error or Ctrl-C in the block,
    nothing of it stays behind."""
    folder = Path(out_dir) / SETS_DIR / f"set-{time.time_ns():x}-{os.getpid()}"
    try:  # named first: a Ctrl-C just after the folder is made still removes it
        yield StagedSet(out_dir, folder)
    except BaseException:
        discard(folder)
        raise


def show(out_dir: Path, set_dir: Path) -> None:
    """Make DIR's files those of `set_dir` (hard links, each name switched atomically, the
    manifest last), remove old epoch files the set lacks, then the staged folder."""
    names = listed_names(read_manifest(set_dir / MANIFEST_NAME))
    gone = {name.split("/", 1)[1] for name in our_files(out_dir) - set(names) if "/" in name}
    (out_dir / EPOCH_WEIGHTS_DIR).mkdir(exist_ok=True)
    for name in names:
        replace(out_dir / name, partial(hard_link, set_dir / name))
    with open_folder(out_dir / EPOCH_WEIGHTS_DIR) as epochs:
        remove_regular(epochs, gone.__contains__)
    replace(out_dir / MANIFEST_NAME, partial(hard_link, set_dir / MANIFEST_NAME))
    with suppress(OSError):  # else the record still lists the old set's names too
        atomic_write_bytes(out_dir / SETS_DIR / RECORD_NAME, (set_dir / MANIFEST_NAME).read_bytes())
    (out_dir / SETS_DIR / CURRENT).unlink()
    discard(set_dir)


def publish(out_dir: Path, set_dir: Path) -> None:
    """Make a staged, verified set the one `out_dir` shows (the caller holds the lock): name it in
    `.cnnlib/current`, from then on finished by the next run if killed, then `show` it."""
    sets = Path(out_dir) / SETS_DIR
    try:  # what needs disk space comes first: a full disk leaves nothing to publish later
        manifest = read_manifest(set_dir / MANIFEST_NAME)
        both = [*our_files(out_dir), *manifest["files"]]  # ours: the old and the new
        record = {"config": manifest["config"], "files": both}
        atomic_write_bytes(sets / RECORD_NAME, json.dumps(record).encode())
        replace(sets / CURRENT, lambda temporary: os.symlink(set_dir.name, temporary))
    except BaseException:
        discard(set_dir)
        (sets / CURRENT).unlink(missing_ok=True)
        raise
    show(Path(out_dir), set_dir)
