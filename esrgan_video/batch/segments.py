"""Long videos in segments: plan cuts at keyframes from the packet index (demux only); the rendered segments are
joined without re-encoding by ``video.segment_join`` (PyAV stays under ``video/``).

``scan_keyframes(path)`` reads the video stream's packet index (``video.packet_index``: one demux pass,
no decoding, shared with the reader's seeking and cached per file) and returns every frame's
presentation timestamp and which of them start a GOP. ``plan_segments(index, seconds=...)`` (pure) cuts
at keyframes about ``seconds`` apart, so every segment holds whole GOPs. A keyframe is a *clean* cut
only when every packet before it in decode order is shown before it; packets after it in decode order
that are shown before it are open-GOP leading pictures: they belong to the previous segment (whose
decoder reaches them from its own keyframe), and the next segment drops them as pre-roll.

Each segment is rendered by the streaming core with ``start``/``end`` (exact ``Fraction`` seconds of the
cut timestamps), ``shift_timestamps=False`` and no stream copy, so its packets carry the source's
timestamps. The reader seeks to the keyframe at or before ``start`` (verified against the packet index, else it
decodes from the file's start) and drops frames before ``start``, so every segment sees its pre-roll exactly as
a single pass does (open GOPs included). ``video.segment_join.join_segments`` then remuxes the segments' video
packets in order into one file and copies every other stream (audio, subtitles, attachments, data), the chapters
and the metadata from the source once, interleaved by time — the result has the frames, timestamps and streams of
a single pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from ..errors import InputError
from ..frames.reuse import NEAR_RESET_PERIOD, reset_points
from ..video.packet_index import read_packet_index


@dataclass(frozen=True)
class KeyframeIndex:
    """What a demux-only scan of a video stream found (timestamps in ``time_base`` units)."""

    time_base: Fraction
    pts: tuple[int, ...]
    """Every frame's presentation timestamp, sorted."""
    cuts: tuple[int, ...]
    """Keyframe timestamps where a segment may start (clean cuts), sorted; excludes the first frame."""
    open_gop: tuple[int, ...]
    """Keyframe timestamps among ``cuts`` that have leading pictures (need pre-roll)."""
    start_time: Fraction = Fraction(0)
    """The container's start time in seconds (media time, what ``upscale_video`` start/end mean, counts from it)."""

    @property
    def frame_count(self) -> int:
        """Frames in the stream (packets with a timestamp)."""
        return len(self.pts)

    @property
    def seconds(self) -> Fraction:
        """Span from the first to the last frame's timestamp (no last-frame duration)."""
        return (self.pts[-1] - self.pts[0]) * self.time_base if self.pts else Fraction(0)


@dataclass(frozen=True)
class Segment:
    """Frames with ``start <= pts < end`` (``end=None``: to the end); timestamps in the index's time base."""

    number: int
    start: int | None
    end: int | None
    frame_count: int
    """Frames with ``start <= pts < end``."""

    def bounds_seconds(self, time_base: Fraction, start_time: Fraction = Fraction(0)) -> tuple[Fraction | None, Fraction | None]:
        """``(start, end)`` as exact media-time seconds for ``upscale_video(start=..., end=...)``
        (timestamp × time base − container start time); ``None`` = open end."""
        return (
            None if self.start is None else self.start * time_base - start_time,
            None if self.end is None else self.end * time_base - start_time,
        )


def scan_keyframes(path: str | os.PathLike) -> KeyframeIndex:
    """Index the keyframes of ``path``'s video stream from its packet index (demux only, never decode).

    InputError when the file does not open as a video. A damaged tail ends the scan where the demuxer
    stopped; the last segment runs to the end of the file whatever the scan saw.
    """
    index = read_packet_index(path)
    return index_from_packets(index.keyframe_packets(), index.time_base, start_time=index.start_time)


def index_from_packets(decode_order: Sequence[tuple[int, bool]], time_base: Fraction, *,
                       start_time: Fraction = Fraction(0)) -> KeyframeIndex:
    """Build the index from ``(pts, is_keyframe)`` in decode order (pure)."""
    pts_sorted = tuple(sorted(p for p, _ in decode_order))
    cuts: list[int] = []
    open_gop: list[int] = []
    max_before = None  # the largest pts seen before this packet in decode order
    n = len(decode_order)
    # for each position, the smallest pts at or after it in decode order
    min_after = [0] * (n + 1)
    min_after[n] = None  # type: ignore[call-overload]
    for i in range(n - 1, -1, -1):
        p = decode_order[i][0]
        nxt = min_after[i + 1]
        min_after[i] = p if nxt is None else min(p, nxt)
    for i, (p, key) in enumerate(decode_order):
        if key and i > 0 and max_before is not None and max_before < p:
            cuts.append(p)
            later = min_after[i + 1]
            if later is not None and later < p:
                open_gop.append(p)
        max_before = p if max_before is None else max(max_before, p)
    return KeyframeIndex(time_base=time_base, pts=pts_sorted, cuts=tuple(sorted(cuts)), open_gop=tuple(sorted(open_gop)),
                         start_time=start_time)


def plan_segments(index: KeyframeIndex, *, seconds: float | Fraction) -> list[Segment]:
    """Cut at the first clean keyframe at least ``seconds`` after the previous cut (pure).

    A cut that would leave a tail shorter than a quarter of ``seconds`` is not made. A video with no
    usable cut, or shorter than twice ``seconds``, is one segment (``start=end=None``). Segments of at least
    :data:`~esrgan_video.frames.reuse.NEAR_RESET_PERIOD` cut only at ``--reuse near``'s reset points
    (:func:`~esrgan_video.frames.reuse.reset_points`), where a one-pass run drops its references too.
    """
    if seconds <= 0:
        raise InputError(f"segment seconds: expected > 0, got {seconds}")
    length = Fraction(seconds)
    if not index.pts or index.seconds < 2 * length:
        return [Segment(0, None, None, index.frame_count)]
    first, last = index.pts[0], index.pts[-1]
    starts: list[int] = []
    prev = first
    candidates = index.cuts
    if length >= NEAR_RESET_PERIOD:  # cut only where --reuse near resets, so segments equal one pass
        candidates = reset_points(index.pts, index.cuts, index.time_base, period=NEAR_RESET_PERIOD)
    for k in candidates:
        if (k - prev) * index.time_base >= length and (last - k) * index.time_base >= length / 4:
            starts.append(k)
            prev = k
    bounds: list[int | None] = [None, *starts, None]
    segments = []
    for i in range(len(bounds) - 1):
        lo, hi = bounds[i], bounds[i + 1]
        count = sum(1 for p in index.pts if (lo is None or p >= lo) and (hi is None or p < hi))
        segments.append(Segment(i, lo, hi, count))
    return segments
