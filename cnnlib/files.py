"""The factory, safe file handling for the set store: atomic writes, one writer per folder (a lock
file), atomic switches between whole sets of files (a symbolic link), and removal of exactly the
files this project wrote."""

from __future__ import annotations

import errno
import fcntl
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

# .NAME.PID.tmp: the temporary name `atomic_write_bytes` gives a file until it is complete.
TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp")


class BusyError(OSError):
    """Another process holds the folder's lock."""


def atomic_write_bytes(path: Path, content: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it into place."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def is_running(pid: int) -> bool:
    """Is there a process with this id (ours or another user's)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to someone else
        pass
    return True


def is_stale_temporary(path: Path, ours: Callable[[str], bool]) -> bool:
    """Is `path` a `.NAME.PID.tmp` file or link, for a NAME that `ours` accepts, whose process is
    gone (killed mid-write)?"""
    match = TEMPORARY.fullmatch(path.name)
    return (
        match is not None
        and ours(match["name"])
        and not is_running(int(match["pid"]))
        and (path.is_symlink() or path.is_file())
    )


def remove_stale_temporaries(folder: Path, ours: Callable[[str], bool]) -> list[Path]:
    """Delete the stale `.NAME.PID.tmp` files in `folder` for the NAMEs that `ours` accepts;
    return them. A temporary of a running process, or any other file, is left alone."""
    removed = []
    with suppress(OSError):
        for path in Path(folder).iterdir():
            if is_stale_temporary(path, ours):
                with suppress(OSError):  # a read-only folder: nothing to tidy, nothing lost
                    path.unlink()
                    removed.append(path)
    return removed


@contextmanager
def exclusive_lock(lock_file: Path, busy_message: str) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created if needed) for the block; BusyError with
    `busy_message` if another process holds it. The kernel releases it if the process dies."""
    descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(errno.EBUSY, busy_message) from None
        yield
    finally:
        os.close(descriptor)


def point_link(link: Path, target: str) -> None:
    """Make `link` a symbolic link to `target`, atomically: readers see the old link or the new."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    os.symlink(target, temporary)
    try:
        os.replace(temporary, link)
    finally:
        temporary.unlink(missing_ok=True)


def remove_listed(folder: Path, names: Iterable[str]) -> list[str]:
    """Delete exactly the listed files (relative paths) from `folder`, then its folders left
    empty, `folder` included. Nothing else is touched; returns what was left there."""
    folder = Path(folder)
    for name in names:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    subfolders = [path for path in folder.rglob("*") if path.is_dir() and not path.is_symlink()]
    for directory in [*sorted(subfolders, reverse=True), folder]:
        with suppress(OSError):  # not empty: someone else's file is there
            directory.rmdir()
    return sorted(
        path.relative_to(folder).as_posix() for path in folder.rglob("*") if not path.is_dir()
    )
