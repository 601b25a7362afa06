"""Files written whole or not at all, and one lock per file between processes.

- :func:`atomic_write` writes bytes under a private temporary name beside the target (unique per call, so
  processes and threads writing the same target never share one), flushes them to disk and renames the
  file into place: a reader sees the old file or the new one, never half of one, whatever kills the writer.
- :func:`locked` holds an exclusive ``flock`` on a lock file (created if missing) for the ``with`` block; the
  kernel drops it when the process dies.

Streams that are written incrementally (video outputs, segment joins) keep their own partial names
(``video.partials``), because those must be recognisable and removable after a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import Iterator


def atomic_write(path: str | os.PathLike, data: bytes, *, mode: int | None = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically (the parent folder is created); returns the path.

    ``mode``: the file's permission bits (temporary files are created 0600); None keeps that."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` for UTF-8 text."""
    return atomic_write(path, text.encode("utf-8"))


@contextlib.contextmanager
def locked(lock_path: str | os.PathLike) -> Iterator[None]:
    """An exclusive lock on ``lock_path`` (a file created for it) across processes, for the ``with`` block."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


__all__ = ["atomic_write", "atomic_write_text", "locked"]
