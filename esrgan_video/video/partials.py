"""Temporary files written beside a target: their names, and removing those whose writer is gone.

Every writer of a target ``dir/out.mkv`` writes a hidden file beside it and renames it over the target when it is
complete: ``.out.<pid>.partial.mkv`` (``video.writer.OutputVideo``) or ``.out.join-<pid>.partial.mkv``
(``video.segment_join.join_segments``), ``<pid>`` being the writing process. A process killed with SIGKILL (or a
machine that lost power) leaves its file behind; :func:`remove_stale_partials`, called when a new writer of the
same target starts, removes those whose process no longer exists on this machine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["partial_path", "join_partial_path", "partials_of", "remove_partials", "remove_stale_partials",
           "process_alive"]


def partial_path(dst: str | os.PathLike, pid: int | None = None) -> Path:
    """The temporary file the writer of ``dst`` writes: hidden, per process, same extension (so the muxer matches)."""
    dst = Path(dst)
    return dst.with_name(f".{dst.stem}.{os.getpid() if pid is None else pid}.partial{dst.suffix}")


def join_partial_path(dst: str | os.PathLike, pid: int | None = None) -> Path:
    """The temporary file a segment join of ``dst`` writes."""
    dst = Path(dst)
    return dst.with_name(f".{dst.stem}.join-{os.getpid() if pid is None else pid}.partial{dst.suffix}")


def partials_of(dst: str | os.PathLike) -> list[tuple[Path, int]]:
    """Every temporary file of ``dst``'s naming that exists beside it, with the pid in its name."""
    dst = Path(dst)
    pattern = re.compile(r"\.%s\.(?:join-)?(\d+)\.partial%s" % (re.escape(dst.stem), re.escape(dst.suffix)))
    try:
        names = sorted(os.listdir(dst.parent))
    except OSError:
        return []
    return [(dst.parent / n, int(m.group(1))) for n in names if (m := pattern.fullmatch(n))]


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unlink(paths: list[Path]) -> list[Path]:
    removed = []
    for p in paths:
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def remove_partials(dst: str | os.PathLike, pid: int | None = None) -> list[Path]:
    """Remove the temporary files of ``dst``: those of process ``pid``, or every one when ``pid`` is None (only
    safe while no one else writes ``dst``, e.g. under the batch journal's lock). Returns what was removed."""
    return _unlink([p for p, owner in partials_of(dst) if pid is None or owner == pid])


def remove_stale_partials(dst: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``dst`` whose writing process is gone (never this process's own, never a
    live process's). Returns what was removed."""
    me = os.getpid()
    return _unlink([p for p, owner in partials_of(dst) if owner != me and not process_alive(owner)])
