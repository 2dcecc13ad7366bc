"""The factory, files for the set store: created, replaced, read and removed without ever following
a symbolic link, and the temporaries of killed writers tidied."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp")  # NAME, while process PID writes it


def create(path: Path) -> BinaryIO:
    """A new file at `path`, open for writing. Whatever had that name is removed first, and a
    link planted in between fails the open (O_EXCL | O_NOFOLLOW) instead of being followed."""
    Path(path).unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    return os.fdopen(os.open(path, flags, 0o666), "wb")


def write_file(path: Path, content: bytes) -> None:
    """Create `path` with `content`, flushed to disk."""
    with create(path) as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def replace(path: Path, make: Callable[[Path], None]) -> None:
    """`make` a temporary beside `path`, then rename it over `path`: a reader sees the old file
    or the new one, never a part."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)  # a leftover, or a link planted there: never followed
    try:
        make(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, content: bytes) -> None:
    replace(Path(path), lambda temporary: write_file(temporary, content))


def hard_link(source: Path, temporary: Path) -> None:
    """Make `temporary` the same file as `source` (a copy where the file system has no hard
    links): what `replace` calls, given `source` by functools.partial."""
    try:
        os.link(source, temporary, follow_symlinks=False)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        write_file(temporary, source.read_bytes())


def remove_stale_temporaries(folder: Path, ours: Callable[[str], bool]) -> None:
    """Delete the `.NAME.PID.tmp` files in `folder` whose NAME `ours` accepts and whose process
    is gone (killed mid-write). Any other file, and a running writer's, stays."""
    with suppress(OSError):
        for path in Path(folder).iterdir():
            match = TEMPORARY.fullmatch(path.name)
            if match and ours(match["name"]) and not is_running(int(match["pid"])):
                with suppress(OSError):  # a read-only folder: nothing to tidy, nothing lost
                    if path.is_symlink() or path.is_file():
                        path.unlink()


def is_running(pid: int) -> bool:
    """Is there a process with this id (ours or another user's)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


@contextmanager
def open_folder(name: str | Path, parent: int | None = None) -> Iterator[int]:
    """A descriptor of the folder `name` for the block, never through a link (OSError if one)."""
    descriptor = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def remove_regular(folder: int, ours: Callable[[str], bool]) -> None:
    """Delete the regular files of the open `folder` whose names `ours` accepts; links stay."""
    for name in filter(ours, os.listdir(folder)):
        with suppress(OSError):
            if stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
                os.unlink(name, dir_fd=folder)


def read_regular(path: Path, limit: int, follow: bool = False) -> bytes:
    """The first `limit` bytes of the regular file `path`; OSError for a FIFO, a folder, or (unless
    `follow`) a link."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW))
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return os.read(descriptor, limit)
    finally:
        os.close(descriptor)


def is_real_folder(path: Path) -> bool:
    """A folder, not a link to one."""
    with suppress(OSError):
        return stat.S_ISDIR(os.lstat(path).st_mode)
    return False
