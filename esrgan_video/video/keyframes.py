"""Which keyframes of a video stream are clean cuts (pure rules over the packet index).

A keyframe is a *clean* cut only when every packet before it in decode order is shown before it; packets
after it in decode order that are shown before it are open-GOP leading pictures (the cut needs pre-roll).
Batch mode cuts segments there (``batch.segments.plan_segments``) and ``--reuse near`` drops its references
there (``frames.reuse.reset_points`` over these cuts), so segmented and one-pass runs agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from .packet_index import read_packet_index


@dataclass(frozen=True)
class KeyframeIndex:
    """What a demux-only scan of a video stream found (timestamps in ``time_base`` units)."""

    time_base: Fraction
    pts: tuple[int, ...]
    """Every frame's presentation timestamp, sorted (not those of packets the decoder drops whole,
    ``packet_index.DecoderDrops``, which give no frame: the cuts count them, a GOP holds them)."""
    cuts: tuple[int, ...]
    """Keyframe timestamps where a segment may start (clean cuts), sorted; excludes the first frame."""
    open_gop: tuple[int, ...]
    """Keyframe timestamps among ``cuts`` that have leading pictures (need pre-roll)."""
    start_time: Fraction = Fraction(0)
    """The container's start time in seconds (media time, what ``upscale_video`` start/end mean, counts from it)."""

    @property
    def frame_count(self) -> int:
        """Frames in the stream (packets with a timestamp that give a frame): what a read of it gives."""
        return len(self.pts)

    @property
    def seconds(self) -> Fraction:
        """Span from the first to the last frame's timestamp (no last-frame duration)."""
        return (self.pts[-1] - self.pts[0]) * self.time_base if self.pts else Fraction(0)



def scan_keyframes(path: str | os.PathLike) -> KeyframeIndex:
    """Index the keyframes of ``path``'s video stream from its packet index (demux only, never decode).

    InputError when the file does not open as a video. A damaged tail ends the scan where the demuxer
    stopped; the last segment runs to the end of the file whatever the scan saw.
    """
    index = read_packet_index(path)
    shown = index.presentation_pts()
    tail = int(index.pts[-1]) if index.tail_lost else None  # the packet the file ends inside gives no frame
    if tail is not None and tail in shown:
        shown = shown[:]
        shown.remove(tail)
    return index_from_packets(index.keyframe_packets(), index.time_base, start_time=index.start_time,
                              shown=shown)


def index_from_packets(decode_order: Sequence[tuple[int, bool]], time_base: Fraction, *,
                       start_time: Fraction = Fraction(0), shown: Sequence[int] | None = None) -> KeyframeIndex:
    """Build the index from ``(pts, is_keyframe)`` in decode order (pure). ``shown``: the frames' timestamps, where
    some packets give none (``PacketIndex.presentation_pts``: those the decoder drops whole left out); default:
    every packet's."""
    pts_sorted = tuple(sorted(p for p, _ in decode_order) if shown is None else sorted(shown))
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
