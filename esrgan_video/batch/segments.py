"""Long videos in segments: plan cuts at keyframes from the packet index (demux only); the rendered segments are
joined without re-encoding by ``video.segment_join`` (PyAV stays under ``video/``).

``video.keyframes.scan_keyframes(path)`` says, from the video stream's packet index (one demux pass, no
decoding, shared with the reader's seeking and cached per file), every frame's presentation timestamp and
which keyframes are clean cuts. ``plan_segments(index, seconds=...)`` (pure) cuts at clean keyframes about
``seconds`` apart, so every segment holds whole GOPs; open-GOP leading pictures belong to the previous
segment (whose decoder reaches them from its own keyframe), and the next segment drops them as pre-roll.

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

from dataclasses import dataclass
from fractions import Fraction

from ..errors import InputError
from ..frames.reuse import NEAR_RESET_PERIOD, reset_points
from ..video.keyframes import KeyframeIndex
from ..video.packet_index import PacketIndex
from ..video.packet_index import media_origin as packet_media_origin
from ..video.trim import selected_frames


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


def plan_segments(index: KeyframeIndex, *, seconds: float | Fraction, reuse: str = "exact") -> list[Segment]:
    """Cut at the first clean keyframe at least ``seconds`` after the previous cut (pure).

    A cut that would leave a tail shorter than a quarter of ``seconds`` is not made. A video with no
    usable cut, or shorter than twice ``seconds``, is one segment (``start=end=None``).

    With ``reuse="near"`` every cut is one of near's reset points
    (:func:`~esrgan_video.frames.reuse.reset_points`, at least
    :data:`~esrgan_video.frames.reuse.NEAR_RESET_PERIOD` apart, so cuts are that far apart whatever ``seconds``
    asks; only the last segment may be shorter): a one-pass run drops its references there (the pipeline resets at
    the same points of the same whole-file index) and a segment starts with none, so between two cuts both see the
    same frames from the same empty state and decide alike — segmented, resumed and one-pass runs give the same
    frames. ``exact`` and ``off`` do not depend on history; they
    cut at any clean keyframe below that period and at the reset points from it on (as before).
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
    if reuse == "near" or length >= NEAR_RESET_PERIOD:  # cut only where near resets: segments equal one pass
        candidates = reset_points(index.pts, index.cuts, index.time_base, period=NEAR_RESET_PERIOD)
    for k in candidates:
        if (k - prev) * index.time_base >= length and (last - k) * index.time_base >= length / 4:
            starts.append(k)
            prev = k
    bounds: list[int | None] = [None, *starts, None]
    return [Segment(i, lo, hi, selected_frames(index.pts, lo, hi))
            for i, (lo, hi) in enumerate(zip(bounds, bounds[1:]))]


def media_origin(index: PacketIndex) -> Fraction:
    """Where the reader's media time counts from (``VideoInfo.start_time``, what segment bounds are in), told from the
    packet index the plan has already read, so planning opens the source once (pure). The reader's rule, the one
    function it uses too (``video.packet_index.media_origin``: the container's start, or the first frame's time where
    that is earlier; not in AVI, nor raw H.264/HEVC streams). The first frame is the earliest
    packet that gives one (``PacketIndex.presentation_pts``: not those the decoder drops whole, an edit list's
    discarded packets or the leading pictures of an open GOP the stream starts at): the first the decoder outputs."""
    shown = index.presentation_pts()
    return packet_media_origin(index.start_time, shown[0] if shown else None, index.time_base, index.format_name)
