"""The factory, the set store: where an artifact set lives on disk and how it replaces the last.

DIR's artifacts are regular files, which every ordinary tool copies, serves and archives as they
are. A run builds its whole set in a hidden folder of its own, DIR/.cnnlib/set-*, verifies it
there, and only then publishes it: `DIR/.cnnlib/current` (a symbolic link) records which set is
being published, each file is hard-linked into place under a temporary name and renamed over the
old one (each name switches atomically; the manifest last), and the staged folder goes once DIR
matches it. A run killed mid-publish is finished by the next one, from the staged set. Readers
(`cnnlib.reading`) read the manifest and the files and check them against each other, reading
again while a publish is under way, so they always get one whole set. A lock file keeps one
writer per DIR. Files this project did not write are never replaced, hidden or deleted, and no
symbolic link is ever written or deleted through.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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
    atomic_write_bytes,
    create,
    exclusive_lock,
    is_stale_temporary,
    link_into_place,
    point_link,
    remove_files,
    remove_listed,
    remove_stale_temporaries,
)

SETS_DIR = ".cnnlib"  # hidden: the lock file, the staged sets, and `current` during a publish
CURRENT = "current"  # a link to the staged set being published (cnnlib 1.0: the one in use)
LOCK_NAME = "lock"
# A copy of the manifest of the set DIR shows, kept by cnnlib: which of DIR's files are ours,
# even after DIR's own manifest.json was damaged or removed.
RECORD_NAME = "published.json"
MNIST_DIR = "MNIST"  # the dataset's folder when DIR is the data folder: torchvision's, not ours
MAX_MANIFEST_BYTES = 1_000_000
OUR_FILE = re.compile(
    "|".join([EPOCH_FILE_PATTERN, *map(re.escape, (JSON_NAME, FINAL_WEIGHTS_NAME, MANIFEST_NAME))])
)
SET_NAME = re.compile(r"set-[0-9a-z-]+")


class OutputError(ValueError):
    """A folder `regenerate` must not write into; the message says why and what to do."""


def link_target(name: str) -> str:
    """Where DIR/NAME pointed in the layout of cnnlib 1.0 (links through `current`): such links
    are ours, and the next run replaces them by regular files."""
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


def read_regular(path: Path, limit: int) -> bytes | None:
    """The first `limit` bytes of `path` when it is a regular file (not a link, a FIFO or a
    folder), else None."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        return handle.read(limit)


def parse_manifest(content: bytes | None) -> dict | None:
    """The manifest these bytes hold when it is one of ours, else None."""
    try:
        manifest = json.loads(content)
        files = manifest["files"]
        if isinstance(manifest["config"], dict) and all(isinstance(n, str) for n in files):
            return manifest
    except (ValueError, KeyError, TypeError, RecursionError):
        pass
    return None


def is_real_folder(path: Path) -> bool:
    """A folder, not a link to one."""
    with suppress(OSError):
        return stat.S_ISDIR(os.lstat(path).st_mode)
    return False


def _our_names(folder: Path) -> list[str]:
    """What this project wrote into a set folder: what its manifest lists, or, for a set that
    never got one (its run was killed), the names it writes and their temporaries."""
    if not is_real_folder(folder):
        return []
    manifest = parse_manifest(read_regular(folder / MANIFEST_NAME, MAX_MANIFEST_BYTES))
    if manifest is not None:
        return [name for name in [*manifest["files"], MANIFEST_NAME] if is_set_path(name)]
    inner = folder / EPOCH_WEIGHTS_DIR
    paths = [*folder.iterdir(), *(inner.iterdir() if is_real_folder(inner) else [])]
    return [
        path.relative_to(folder).as_posix()
        for path in paths
        if is_our_file(path.name) or is_stale_temporary(path, is_our_file)
    ]


def current_set(out_dir: Path) -> Path | None:
    """The staged set DIR/.cnnlib/current points to, if it is one of ours: the set a run was
    publishing (or, written by cnnlib 1.0, the set DIR's links lead to)."""
    link = Path(out_dir) / SETS_DIR / CURRENT
    try:
        target = os.readlink(link)  # OSError when it is no link, or just gone
    except OSError:
        return None
    if not (SET_NAME.fullmatch(target) and is_real_folder(link.parent / target)):
        return None
    return link.parent / target


def dir_manifest(out_dir: Path) -> dict | None:
    """The manifest of the set DIR shows, if DIR shows one of ours."""
    entry = Path(out_dir) / MANIFEST_NAME
    if entry.is_symlink():  # cnnlib 1.0's layout: the link through `current`
        current = current_set(out_dir)
        if current is None or os.readlink(entry) != link_target(MANIFEST_NAME):
            return None
        entry = current / MANIFEST_NAME
    return parse_manifest(read_regular(entry, MAX_MANIFEST_BYTES))


def listed_names(manifest: dict | None) -> list[str]:
    """The set paths a manifest lists (never `../x`), the manifest itself not included."""
    return [name for name in (manifest or {"files": {}})["files"] if is_set_path(name)]


def our_files(out_dir: Path) -> set[str] | None:
    """The names of the files in DIR that cnnlib wrote, from DIR's manifest and cnnlib's own
    record of what it published; None when DIR holds no set of ours."""
    manifest = dir_manifest(out_dir)
    record_path = Path(out_dir) / SETS_DIR / RECORD_NAME
    record = parse_manifest(read_regular(record_path, MAX_MANIFEST_BYTES))
    if manifest is None and record is None:
        return None
    return {*listed_names(manifest), *listed_names(record), MANIFEST_NAME}


def refuse_others(out_dir: Path, force: bool = False) -> None:
    """OutputError, one line, unless every artifact name in DIR is ours and, when DIR holds other
    files, it holds a set of ours too (or `force`): cnnlib never replaces, deletes or writes
    through what it did not write."""
    sets = out_dir / SETS_DIR
    if sets.is_symlink() or (sets.exists() and not sets.is_dir()):
        raise OutputError(f"{sets} is not a folder cnnlib made; move it away")
    listed = our_files(out_dir)
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
            theirs = [  # hidden names are a writer's temporaries, as in DIR itself
                f"{name}/{path.name}"
                for path in sorted(entry.iterdir())
                if f"{name}/{path.name}" not in (listed or ()) and path.name[0] != "."
            ]
        else:
            theirs = [] if entry.is_file() and name in (listed or ()) else [name]
        if theirs:
            raise OutputError(
                f"{out_dir / theirs[0]} was not written by cnnlib; move it away or choose "
                "another --out"
            )
    ours = {*TOP_LEVEL, SETS_DIR, MNIST_DIR}
    others = sorted(e.name for e in out_dir.iterdir() if e.name not in ours and e.name[0] != ".")
    if others and not (force or listed):
        raise OutputError(
            f"{out_dir} holds files that cnnlib did not write ({', '.join(others[:3])}"
            f"{', ...' if len(others) > 3 else ''}) and no artifact set; choose an empty or new "
            "folder, or pass --force to write beside them (they are never touched)"
        )


def check_writable(out_dir: Path, force: bool = False) -> None:
    """Fail early, with one line, when `out_dir` is no folder cnnlib may write a set into:
    OSError when it is a file, OutputError when it holds files that are not ours (see
    `refuse_others`). Writes nothing: a notebook that only reads the set needs no write
    access; the run that writes finds out in `prepare_output`, and says so in one line."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(out_dir))
    if out_dir.is_dir():
        refuse_others(out_dir, force)


def prepare_output(out_dir: Path, force: bool = False) -> None:
    """Make `out_dir` ready for a run that writes a set, before any work: OSError when it cannot
    be written, OutputError when it holds files that are not ours."""
    out_dir = Path(out_dir)
    check_writable(out_dir, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SETS_DIR).mkdir(exist_ok=True)
    os.close(os.open(out_dir / SETS_DIR / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644))


@contextmanager
def locked(out_dir: Path, wait: bool = False) -> Iterator[None]:
    """Be the only process writing artifacts into `out_dir` for the block (after prepare_output).
    A second one waits for the first to end, or stops at once with BusyError: "another run is
    writing DIR". A publish that a killed run left half done is finished first."""
    message = f"another run is writing {out_dir}; wait for it to end, or choose another --out"
    with exclusive_lock(Path(out_dir) / SETS_DIR / LOCK_NAME, message, wait):
        finish_publishing(Path(out_dir))
        yield


def discard(set_dir: Path) -> list[str]:
    """Remove a set folder of ours, only the files we wrote; return what was left (not ours).
    A link in its place, or inside it, is never followed."""
    return remove_listed(set_dir, _our_names(set_dir))


def stale_sets(out_dir: Path) -> list[Path]:
    """The staged sets in DIR/.cnnlib that no run is publishing: left by killed runs (the
    caller holds the lock, so none is running), or kept by an older cnnlib. Links are skipped."""
    sets = Path(out_dir) / SETS_DIR
    current = current_set(out_dir)
    candidates = [*sets.glob("set-*"), sets / CURRENT]  # a `current` folder: an unzipped copy
    return [path for path in candidates if is_real_folder(path) and path != current]


class StagedSet:
    """A new set, written file by file into a hidden set folder of DIR that no reader looks at
    until `publish`; what was written, by name, with its size and sha-256."""

    def __init__(self, out_dir: Path) -> None:
        sets = Path(out_dir) / SETS_DIR
        for stale in stale_sets(out_dir):
            discard(stale)
        remove_stale_temporaries(sets, {CURRENT}.__contains__)
        for folder in (out_dir, out_dir / EPOCH_WEIGHTS_DIR):
            if is_real_folder(folder):
                remove_stale_temporaries(
                    folder, lambda name: name in TOP_LEVEL or is_our_file(name)
                )
        self.folder = sets / f"set-{time.time_ns():x}-{os.getpid()}"
        (self.folder / EPOCH_WEIGHTS_DIR).mkdir(parents=True)
        self.files: dict[str, dict[str, object]] = {}

    def write(self, name: str, content: bytes) -> None:
        """Write the whole file `name`, under a temporary name until it is complete."""
        atomic_write_bytes(self.folder / name, content)
        self.files[name] = {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}

    @contextmanager
    def stream(self, name: str) -> Iterator[Callable[[bytes], None]]:
        """Write the file `name` piece by piece, calling the function this yields for each piece
        (memory does not grow with its size); it is flushed to disk at the end of the block."""
        digest, size = hashlib.sha256(), [0]
        with create(self.folder / name) as handle:

            def write(piece: bytes) -> None:
                handle.write(piece)
                digest.update(piece)
                size[0] += len(piece)

            yield write
            handle.flush()
            os.fsync(handle.fileno())
        self.files[name] = {"bytes": size[0], "sha256": digest.hexdigest()}

    def seal(self, config: dict[str, object]) -> dict[str, int]:
        """Write the manifest, last; return {name: bytes} of the set's other files."""
        files = dict(sorted(self.files.items()))
        manifest = {"schema_version": SCHEMA_VERSION, "config": config, "files": files}
        self.write(MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
        return {name: entry["bytes"] for name, entry in files.items()}


@contextmanager
def staging(out_dir: Path) -> Iterator[StagedSet]:
    """A new set in DIR (the caller holds the lock, `locked`); on any error or Ctrl-C in the
    block, nothing of it stays behind."""
    staged = StagedSet(out_dir)
    try:
        yield staged
    except BaseException:
        discard(staged.folder)
        raise


def _epoch_folder(out_dir: Path, set_dir: Path, names: list[str]) -> None:
    """DIR/epoch_weights as a real folder. cnnlib 1.0's link there (ours: `refuse_others`) is
    replaced by a folder that already holds the new set's epoch files."""
    folder = out_dir / EPOCH_WEIGHTS_DIR
    if not folder.is_symlink():
        folder.mkdir(exist_ok=True)
        return
    temporary = out_dir / f".{EPOCH_WEIGHTS_DIR}.{os.getpid()}.tmp"
    temporary.mkdir()
    for name in names:
        link_into_place(set_dir / name, temporary / name.split("/", 1)[1])
    folder.unlink()
    temporary.rename(folder)


def _show(out_dir: Path, set_dir: Path) -> None:
    """Make DIR's files those of the staged set `set_dir`, each name switched atomically, the
    manifest last; then remove DIR's old epoch files that the new set does not have, and the
    staged folder (DIR keeps the files: they are hard links). Idempotent: a run killed in here
    is finished by the next one."""
    names = listed_names(parse_manifest(read_regular(set_dir / MANIFEST_NAME, MAX_MANIFEST_BYTES)))
    old = our_files(out_dir) or set()
    _epoch_folder(out_dir, set_dir, [name for name in names if "/" in name])
    for name in names:
        link_into_place(set_dir / name, out_dir / name)
    gone = [name.split("/", 1)[1] for name in sorted(old - set(names)) if "/" in name]
    epochs = os.open(out_dir / EPOCH_WEIGHTS_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        remove_files(epochs, gone)
    finally:
        os.close(epochs)
    link_into_place(set_dir / MANIFEST_NAME, out_dir / MANIFEST_NAME)
    with suppress(OSError):  # else the record still lists the old set's names too
        record = read_regular(set_dir / MANIFEST_NAME, MAX_MANIFEST_BYTES)
        atomic_write_bytes(out_dir / SETS_DIR / RECORD_NAME, record)
    (out_dir / SETS_DIR / CURRENT).unlink()
    discard(set_dir)


def finish_publishing(out_dir: Path) -> None:
    """Finish a publish that a killed run left half done (or convert cnnlib 1.0's links): DIR
    then shows the staged set `current` names, which was verified before its publish began.
    The caller holds the lock."""
    set_dir = current_set(out_dir)
    if set_dir is not None and parse_manifest(
        read_regular(set_dir / MANIFEST_NAME, MAX_MANIFEST_BYTES)
    ):
        _show(out_dir, set_dir)


def publish(out_dir: Path, set_dir: Path) -> None:
    """Make a staged, verified set the one `out_dir` shows: first record it in
    `.cnnlib/current` (from then on, a killed run's publish is finished by the next run), then
    switch DIR's files to it, each atomically, the manifest last. The caller holds the lock."""
    out_dir = Path(out_dir)
    sets = out_dir / SETS_DIR
    if is_real_folder(sets / CURRENT):  # an unzipped copy made `current` a folder
        left = discard(sets / CURRENT)
        if left:
            raise OutputError(f"{sets / CURRENT} holds files cnnlib did not write; move it away")
    try:  # what needs disk space comes first: a full disk leaves nothing to publish later
        manifest = parse_manifest(read_regular(set_dir / MANIFEST_NAME, MAX_MANIFEST_BYTES))
        both = {
            "config": manifest["config"],
            "files": [*(our_files(out_dir) or ()), *manifest["files"]],
        }
        atomic_write_bytes(sets / RECORD_NAME, json.dumps(both).encode())  # ours: old and new
        point_link(sets / CURRENT, set_dir.name)
    except BaseException:
        discard(set_dir)
        (sets / CURRENT).unlink(missing_ok=True)
        raise
    _show(out_dir, set_dir)
