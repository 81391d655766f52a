"""Durable file writes: what a crash at any instant leaves is the old file or the new one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644, tmp_dir: Path | None = None,
                     exclusive: bool = False) -> None:
    """Write `data` to `path` (temporary file, fsync, rename, fsync of the directory).
    With `exclusive`, refuse (FileExistsError) to replace an existing file."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(
        dir=tmp_dir or path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if exclusive:
            os.link(tmp_name, path)  # fails if `path` exists, unlike rename
            os.unlink(tmp_name)
        else:
            os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in the directory `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
