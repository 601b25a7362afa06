"""Temporary files written beside a target: their names, and removing those whose writer is gone.

Every writer of a target ``dir/out.mkv`` writes a hidden file beside it and renames it over the target when it is
complete: ``.out.<host>.<pid>.partial.mkv`` (``video.writer.OutputVideo``) or ``.out.<host>.join-<pid>.partial.mkv``
(``video.segment_join.join_segments``), ``<host>`` being the writing machine (``files.host_label``) and ``<pid>``
its process. A process killed with SIGKILL (or a machine that lost power) leaves its file behind;
:func:`remove_stale_partials`, called when a new writer of the same target starts, removes those this machine wrote
whose process no longer exists: another machine's, in a shared folder (NFS), are left alone, as their pids say
nothing here. Names without a host (``.out.<pid>.partial.mkv``, before it was in them) are taken as this machine's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import OutputError
from ..files import HOST_PATTERN, host_label, link_target, process_alive

__all__ = ["partial_path", "join_partial_path", "partials_of", "remove_partials", "remove_stale_partials",
           "process_alive"]


def partial_path(dst: str | os.PathLike, pid: int | None = None) -> Path:
    """The temporary file the writer of ``dst`` (process ``pid`` of this machine, default this one) writes: hidden,
    per machine and process, same extension (so the muxer matches)."""
    dst = Path(dst)
    return dst.with_name(f".{dst.stem}.{host_label()}.{os.getpid() if pid is None else pid}.partial{dst.suffix}")


def join_partial_path(dst: str | os.PathLike, pid: int | None = None) -> Path:
    """The temporary file a segment join of ``dst`` writes."""
    dst = Path(dst)
    return dst.with_name(f".{dst.stem}.{host_label()}.join-{os.getpid() if pid is None else pid}.partial{dst.suffix}")


def _partials(dst: Path) -> list[tuple[Path, str | None, int]]:
    """Every temporary file of ``dst``'s naming beside it: (path, the host in its name or None, the pid). A link at
    ``dst`` is followed, as the writers follow it (``files.link_target``): theirs are beside the link's file; a link
    no writer follows (a loop, into no folder) has none there, and its name is looked beside."""
    try:
        dst = link_target(dst)
    except OutputError:
        pass
    pattern = re.compile(r"\.%s\.(?:(%s)\.)?(?:join-)?(\d+)\.partial%s"
                         % (re.escape(dst.stem), HOST_PATTERN, re.escape(dst.suffix)))
    try:
        names = sorted(os.listdir(dst.parent))
    except OSError:
        return []
    return [(dst.parent / n, m.group(1), int(m.group(2))) for n in names if (m := pattern.fullmatch(n))]


def _ours(host: str | None) -> bool:
    """A partial name's host is this machine (or the name has none: written before names carried it)."""
    return host is None or host == host_label()


def partials_of(dst: str | os.PathLike) -> list[tuple[Path, int]]:
    """Every temporary file of ``dst``'s naming that exists beside it (any machine's), with the pid in its name."""
    return [(p, pid) for p, _, pid in _partials(Path(dst))]


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
    """Remove the temporary files of ``dst``: those of this machine's process ``pid``, or every one (any machine's)
    when ``pid`` is None (only safe while no one else writes ``dst``, e.g. under the batch journal's lock). Returns
    what was removed."""
    return _unlink([p for p, host, owner in _partials(Path(dst)) if pid is None or (owner == pid and _ours(host))])


def remove_stale_partials(dst: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``dst`` that this machine wrote whose writing process is gone (never this
    process's own, never a live process's, never another machine's). Returns what was removed."""
    me = os.getpid()
    return _unlink([p for p, host, owner in _partials(Path(dst))
                    if _ours(host) and owner != me and not process_alive(owner)])
