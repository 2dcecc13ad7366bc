"""The factory, safe file handling for the set store: atomic writes, one writer per folder (a lock
file), atomic switches between whole sets of files (a symbolic link), and removal of exactly the
files this project wrote."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

# .NAME.PID.tmp: the temporary name `atomic_write_bytes` gives a file until it is complete.
TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp")


class BusyError(OSError):
    """Another process holds the folder's lock."""


def create(path: Path) -> BinaryIO:
    """A new file at `path`, open for writing. Whatever has that name (a leftover, or a link
    planted there) is removed first, never followed: O_EXCL | O_NOFOLLOW, so a link created in
    between fails the open instead of being written through."""
    Path(path).unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    return os.fdopen(os.open(path, flags, 0o666), "wb")


def atomic_write_bytes(path: Path, content: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it into place."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with create(temporary) as handle:
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
def exclusive_lock(lock_file: Path, busy_message: str, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created if needed) for the block; if another
    process holds it, wait for it to end, or raise BusyError with `busy_message`. The kernel
    releases the lock if the process dies."""
    descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
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


def _open_folder(name: str | Path, parent: int | None = None) -> int:
    """A descriptor of the folder `name` (relative to the folder `parent` when given), never
    through a symbolic link: OSError if `name` is one (ELOOP), or is no folder."""
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)


def _is_regular(name: str, folder: int) -> bool:
    with suppress(OSError):
        return stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    return False


def remove_files(folder: int, names: Iterable[str]) -> None:
    """Delete the regular files `names` of the folder open as descriptor `folder`; a link or
    anything else of that name is left alone."""
    for name in names:
        if _is_regular(name, folder):
            os.unlink(name, dir_fd=folder)


def remove_listed(folder: Path, names: Iterable[str]) -> list[str]:
    """Delete exactly the listed regular files (relative paths, at most one folder deep) from
    `folder`, then its folders left empty, `folder` included; return what was left there.

    Nothing else is touched, and no symbolic link is ever followed: a link where `folder`, a
    subfolder or a file should be is left alone (and listed), so a link cannot make this delete
    anything outside `folder`."""
    folder = Path(folder)
    try:
        top = _open_folder(folder)
    except OSError:  # gone, or a link: nothing of ours to remove there
        return []
    try:
        by_folder: dict[str, list[str]] = {}
        for name in names:
            sub, _, base = name.rpartition("/")
            if "/" not in sub and base not in ("", ".", "..") and sub not in (".", ".."):
                by_folder.setdefault(sub, []).append(base)
        for sub, bases in by_folder.items():
            with suppress(OSError):
                inner = _open_folder(sub, top) if sub else os.dup(top)
                try:
                    remove_files(inner, bases)
                finally:
                    os.close(inner)
        for entry in os.listdir(top):
            with suppress(OSError):  # not empty (someone else's file), a file, or a link
                os.rmdir(entry, dir_fd=top)
        left = _left_in(top)
    finally:
        os.close(top)
    if not left:
        with suppress(OSError):
            folder.rmdir()
    return left


def _left_in(top: int) -> list[str]:
    """Relative paths of what a folder holds, one level of subfolders deep, links not followed."""
    left = []
    for entry in os.listdir(top):
        try:
            inner = _open_folder(entry, top)
        except OSError:
            left.append(entry)
            continue
        try:
            left += [f"{entry}/{name}" for name in os.listdir(inner)] or [f"{entry}/"]
        finally:
            os.close(inner)
    return sorted(left)


def link_into_place(source: Path, target: Path) -> None:
    """Make `target` the same regular file as `source` (a hard link), atomically: a reader of
    `target` sees the old file or the new one. Replaces a file or link there, never writes
    through one. Copies instead where the file system has no hard links."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary, follow_symlinks=False)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        atomic_write_bytes(target, Path(source).read_bytes())
        return
    try:
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
