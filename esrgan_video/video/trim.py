"""Trims that select no frame are refused before any output is opened.

``--start 5`` on a 1.5 s clip, ``--start 90f --end 100f`` past the end and ``--start 1 --end 0.5`` would each
write a file with no video; :func:`check_trim` raises an :class:`~esrgan_video.errors.OptionError` (exit 2)
naming the clip's duration and frame count instead. It counts from the packet index (a demux pass, no decoding;
the reader's seeking reads the same index, so a trimmed run reads it once).
"""

from __future__ import annotations

import bisect
from fractions import Fraction
from typing import Sequence

from ..errors import OptionError


def selected_frames(times: Sequence[Fraction], start: Fraction | None, end: Fraction | None) -> int:
    """How many of the sorted frame ``times`` lie in ``[start, end)`` (None: open) (pure; any sorted numbers, e.g.
    the timestamps of ``batch.segments.plan_segments``)."""
    lo = 0 if start is None else bisect.bisect_left(times, start)
    hi = len(times) if end is None else bisect.bisect_left(times, end)
    return max(0, hi - lo)


def _said(v) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v}f"
    return f"{float(v):g}"


def check_trim(inp, start=None, end=None) -> int | None:
    """The number of frames ``start``/``end`` select in the opened input ``inp`` (``video.reader.InputVideo``), or
    None without a trim; raises :class:`OptionError` when it is none."""
    if start is None and end is None:
        return None
    times = inp.frame_times()  # sorted: presentation order
    t0, t1 = inp.resolve_range(start, end)
    n = selected_frames(times, t0, t1)
    if n:
        return n
    info = inp.info
    duration = info.duration if info.duration is not None else (times[-1] if times else Fraction(0))
    given = " ".join(f"--{name} {_said(v)}" for name, v in (("start", start), ("end", end)) if v is not None)
    raise OptionError("time", f"a trim that selects at least one frame of {inp.path} "
                              f"({float(duration):.3f} s, {len(times)} frames)", given)
