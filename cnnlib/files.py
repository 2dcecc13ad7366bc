"""Atomic file writing: an artifact appears under its final name complete, or not at all."""

from __future__ import annotations

import os
from pathlib import Path


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
