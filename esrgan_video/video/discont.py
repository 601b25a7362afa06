"""Timestamp discontinuities in MPEG-TS/PS inputs (joined or edited recordings): found, and the timeline mended (pure).

A transport or program stream may restart its clock part-way — ``cat a.ts b.ts``, a broadcast recording cut and
spliced, a PCR reset — so its timestamps jump back (or far ahead). FFmpeg flags these containers ``AVFMT_TS_DISCONT``
and its command line mends them (``fftools/ffmpeg_demux.c``, ``ts_discontinuity_detect``): a packet whose decode
time goes back, or moves by more than ``dts_delta_threshold`` (10 s), starts a new piece of timeline, and one offset
per input file moves it and everything after it to follow on. Here the same, with the video stream as the reference:

- **Where**: in :data:`DISCONT_FORMATS`, a video packet (decode order) whose decode time is before the previous
  packet's, or more than :data:`THRESHOLD` seconds after it, starts a new *piece* (:func:`find_jumps`).
- **Video**: each piece moves by one offset so its first frame shows one frame step after the last frame of the
  piece before it (offsets add up over several joins). The packet index (``video.packet_index``) stores the moved
  times, and the reader gives decoded frames the same (it counts pieces by its frames' own jumps and takes the
  index's offsets), so frame times, ``--start/--end``, segments and the output agree.
- **Other streams** (``video.stream_copy``): each copied stream meets its own jump at its own packet position
  (:class:`StreamMender`): from there it moves by the video's offset — so it stays in sync — unless that would make
  it start before where it left off (audio usually runs a packet past the video, its priming packet starts before
  it), in which case it follows on from where it left off: nothing overlaps, nothing is dropped; the sync stays
  within that overlap (an audio packet, 21 ms for AAC at 48 kHz).

A forward jump within the threshold is not a discontinuity: there frames are missing (``damage.timestamp_gaps``).
Containers with reliable timestamps (MP4, Matroska, …) never get this treatment.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from .metadata import demuxer_in

__all__ = ["BACK_TOLERANCE", "DISCONT_FORMATS", "Jump", "StreamMender", "THRESHOLD", "find_jumps",
           "has_discontinuities", "jump_notice", "jumped", "tolerances"]

DISCONT_FORMATS = ("mpegts", "mpeg")
"""Containers (FFmpeg demuxer names, any of a comma list) flagged ``AVFMT_TS_DISCONT``: MPEG-TS and MPEG-PS."""
THRESHOLD = Fraction(10)
"""Seconds: a forward jump larger than this is a discontinuity, not lost frames (FFmpeg's ``dts_delta_threshold``)."""
BACK_TOLERANCE = Fraction(1, 10)
"""Seconds a timestamp may go back before it counts as a jump (FFmpeg's ``AV_TIME_BASE / 10``): the video's decode
times (the packet index), its frames' times (the reader) and each copied stream's packets. Less is damage."""


def has_discontinuities(format_name: str) -> bool:
    """Whether the container (FFmpeg demuxer name, any of a comma list) may restart its timestamps."""
    return demuxer_in(format_name, DISCONT_FORMATS)


def tolerances(time_base: Fraction) -> tuple[int, int]:
    """(:data:`BACK_TOLERANCE`, :data:`THRESHOLD`) in whole ticks of ``time_base`` (truncated): what the packet index
    and the reader compare timestamps against."""
    return int(BACK_TOLERANCE / time_base), int(THRESHOLD / time_base)


def jumped(prev, t, *, back, threshold) -> bool:
    """Whether ``t``, the timestamp that follows ``prev`` (both in one unit: ticks or seconds), starts a new piece:
    more than ``back`` before it or more than ``threshold`` after it. The reader's decoded frames and each copied
    stream's packets (:class:`StreamMender`) are judged by it; the video's packets, in decode order, by
    :func:`find_jumps`."""
    return t < prev - back or t - prev > threshold


@dataclass(frozen=True)
class Jump:
    """One discontinuity of the video stream (timestamps in the stream's time base)."""

    packet: int
    """Position, in decode order, of the first video packet after the jump."""
    before: int
    """The last frame's presentation timestamp before the jump (as moved by earlier jumps)."""
    raw: int
    """The first frame's presentation timestamp after the jump, as the file has it."""
    offset: int
    """What every timestamp from here on (until the next jump) is moved by: ``before + step - raw``."""
    back: bool = True
    """The decode times went back (a join); False: they went ahead by more than the threshold (an edit, a gap)."""
    before_raw: int | None = None
    """``before`` as the file has it (before earlier jumps moved it); None: the same as ``before``."""

    @property
    def after(self) -> int:
        """Where the frames after the jump show now (``raw + offset``: one frame step after ``before``)."""
        return self.raw + self.offset


def find_jumps(dts: Sequence[int | None], pts: Sequence[int | None], *, step: int, threshold: int,
               back: int | None = None, reorder: int | None = None) -> list[Jump]:
    """The jumps of a video stream from its packets' decode and presentation timestamps in decode order (pure).

    A packet starts a new piece when its decode time is more than ``back`` ticks before the previous packet's
    (default: a hundredth of the threshold, :data:`BACK_TOLERANCE`; damage may step back a little, a join goes back
    to another recording's start) — where a packet has no decode time its presentation time stands in, going back by
    more than ``reorder`` ticks (default: a tenth of the threshold), as B-frames show before packets decoded earlier —
    or when its presentation time is more than ``threshold`` ticks after every one of the piece so far (an encoder's
    decode times may trail a jump ahead by the B-frame delay, so the jump shows first in the presentation times).
    Each piece moves so its first frame (its smallest pts) shows ``step`` ticks after the last frame (the largest
    moved pts) before it.
    """
    back_ticks = threshold // 100 if back is None else back
    reorder = threshold // 10 if reorder is None else reorder
    marks: list[int] = []
    backs: list[bool] = []
    prev = None  # the previous packet's decode time (else presentation time)
    top = None  # the largest presentation time of the piece so far
    for i, (d, p) in enumerate(zip(dts, pts)):
        t = d if d is not None else p
        went_back = prev is not None and t is not None and (
            t < prev - (back_ticks if d is not None else reorder))
        ahead = p is not None and top is not None and p - top > threshold
        if went_back or ahead:
            marks.append(i)
            backs.append(went_back)
            top = None
        if t is not None:
            prev = t
        if p is not None:
            top = p if top is None else max(top, p)
    if not marks:
        return []
    jumps: list[Jump] = []
    bounds = [0, *marks, len(pts)]
    offset = 0
    last = None  # the largest moved pts so far
    for k in range(len(bounds) - 1):
        piece = [p for p in pts[bounds[k]:bounds[k + 1]] if p is not None]
        if k and piece and last is not None:
            first = min(piece)
            before_raw = last - offset
            offset = last + step - first
            jumps.append(Jump(packet=bounds[k], before=last, raw=first, offset=offset, back=backs[k - 1],
                              before_raw=before_raw))
        if piece:
            top = max(piece) + offset
            last = top if last is None else max(last, top)
    return jumps


def jump_notice(name: str, jump: Jump, frame: int, seconds, more: int = 0) -> str:
    """The one line about a jump: ``seconds(pts)`` turns a timestamp into media seconds; ``more`` other jumps."""
    before_raw = jump.before if jump.before_raw is None else jump.before_raw
    before, raw, after = (float(seconds(t)) for t in (before_raw, jump.raw, jump.after))
    if jump.back:
        how, why = "jump back", " (joined recordings?)"
    else:
        how, why = "jump ahead", " (an edited recording?)"
    also = f" ({more} more such jump{'s' if more > 1 else ''} mended the same way)" if more else ""
    return (f"{name}: its timestamps {how} from {before:.3f} s to {raw:.3f} s at frame {frame}{why}; "
            f"the rest follows on from {after:.3f} s{also}")


class StreamMender:
    """Moves one copied stream's packets across the video's jumps (see the module's text).

    ``offsets``: the video's offsets in seconds, one per jump, in order. ``fix(ts, duration)`` takes a packet's
    decode time (else presentation time) and duration in seconds as the file has them, in packet order, and
    returns the seconds to add to that packet's timestamps. The stream never meets more jumps than the video.
    """

    def __init__(self, offsets: Sequence[Fraction], *, threshold: Fraction = THRESHOLD,
                 back: Fraction = BACK_TOLERANCE) -> None:
        self.offsets = list(offsets)
        self.threshold, self.back = threshold, back
        self.piece = 0
        self.offset = Fraction(0)
        self._prev: Fraction | None = None  # the previous packet's time as the file has it
        self._end: Fraction | None = None  # where the previous packet ends, moved

    def fix(self, ts: Fraction | None, duration: Fraction = Fraction(0)) -> Fraction:
        if ts is None:
            return self.offset
        prev = self._prev
        if prev is not None and self.piece < len(self.offsets) and jumped(
                prev, ts, back=self.back, threshold=self.threshold):
            video = self.offsets[self.piece]
            follow = self._end - ts if self._end is not None else video
            self.offset = max(video, follow)
            self.piece += 1
        self._prev = ts
        end = ts + self.offset + duration
        self._end = end if self._end is None else max(self._end, end)
        return self.offset
