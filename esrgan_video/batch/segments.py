"""Long videos in segments: plan cuts at keyframes from the packet index (demux only), and join the rendered
segments without re-encoding.

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
a single pass does (open GOPs included). ``join_segments`` then remuxes the segments' video packets in order into one file and copies
every other stream (audio, subtitles, attachments, data), the chapters and the metadata from the source
once, interleaved by time — the result has the frames, timestamps and streams of a single pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av

from ..errors import InputError, OutputError
from ..frames.reuse import NEAR_RESET_PERIOD, reset_points
from ..video.packet_index import read_packet_index
from ..video.partials import join_partial_path, remove_stale_partials
from ..video.stream_copy import StreamCopier, StreamSelection, copy_stream_facts, shifted_chapters


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


# joining -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JoinResult:
    output: Path
    frames: int


def _sort_key(pkt: av.Packet) -> Fraction:
    t = pkt.dts if pkt.dts is not None else pkt.pts
    return Fraction(0) if t is None else t * Fraction(pkt.time_base.numerator, pkt.time_base.denominator)


def joined_dts(pts_in_decode_order: Sequence[int]) -> list[int]:
    """Decode timestamps for the joined video stream (pure).

    Each segment's encoder starts its own decode clock (B-frame delay), so the segments' DTS overlap at
    the joins. The joined stream's reorder delay ``D`` is the largest lead of a packet's decode position over
    its presentation rank; packet ``i`` then gets the ``i - D``-th presentation timestamp — monotonic and
    never after the packet's own PTS, as a single encoder gives for a constant frame rate. The first ``D``
    packets count back from the first PTS by the first frame step.
    """
    n = len(pts_in_decode_order)
    if n == 0:
        return []
    order = sorted(range(n), key=lambda i: pts_in_decode_order[i])
    rank = [0] * n
    for r, i in enumerate(order):
        rank[i] = r
    shown = [pts_in_decode_order[i] for i in order]
    if len(set(shown)) != n:
        raise ValueError("video packets with equal timestamps cannot be joined")
    delay = max(0, max(i - rank[i] for i in range(n)))
    step = shown[1] - shown[0] if n > 1 else 1
    return [shown[i - delay] if i >= delay else shown[0] - (delay - i) * step for i in range(n)]


def _video_packets(containers: Sequence[av.container.InputContainer], dts: Sequence[int]) -> Iterator[tuple[Fraction, int, int, av.Packet]]:
    seq = 0
    for c in containers:
        for pkt in c.demux(c.streams.video[0]):
            if pkt.size == 0:
                continue
            pkt.dts = dts[seq]
            yield (_sort_key(pkt), 0, seq, pkt)
            seq += 1


def _video_pts(path: Path) -> list[int]:
    """PTS of a segment's video packets in decode order (demux only)."""
    with av.open(str(path)) as c:
        out = []
        for pkt in c.demux(c.streams.video[0]):
            if pkt.size == 0:
                continue
            if pkt.pts is None:
                raise OutputError(f"{path}: a segment's video packet has no timestamp; it cannot be joined")
            out.append(int(pkt.pts))
        return out


def _same_codec(a: av.video.stream.VideoStream, b: av.video.stream.VideoStream) -> bool:
    ca, cb = a.codec_context, b.codec_context
    return (ca.name, ca.width, ca.height, ca.pix_fmt, bytes(ca.extradata or b""), a.time_base) == (
        cb.name, cb.width, cb.height, cb.pix_fmt, bytes(cb.extradata or b""), b.time_base)


def join_segments(
    src: str | os.PathLike,
    segments: Sequence[str | os.PathLike],
    dst: str | os.PathLike,
    *,
    copy_streams: bool = True,
    shift_timestamps: bool = True,
    overwrite: bool = False,
    selection: StreamSelection | None = None,
    notice: Callable[[str], None] | None = None,
) -> JoinResult:
    """Remux the video of ``segments`` (in order) into ``dst`` and copy the other streams of ``src``.

    The other streams go through the writer's own stream copier (``video.stream_copy.StreamCopier``), so a
    joined file gets what a single pass gets: the same streams (``selection``: ``--no-audio``, ``--no-subs``,
    ``--streams-keep``), text subtitles as mov_text in MP4/MOV, metadata, languages, titles and dispositions
    (the video stream's too), container metadata and chapters (``shifted_chapters``); with
    ``shift_timestamps`` every stream moves by the container's start time so the output starts at 0.
    ``notice`` receives the copier's one-line notes. Written to a temporary file beside ``dst`` and renamed
    when complete. Raises ``OutputError`` when the segments' encoders disagree (codec, size, pixel format or
    codec headers), so their packets cannot share one stream, or when ``dst`` exists without ``overwrite``.
    """
    from ..video.reader import open_input

    src, dst = Path(src), Path(dst)
    seg_paths = [Path(s) for s in segments]
    if not seg_paths:
        raise OutputError(f"{dst}: no segments to join")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst}: already exists (pass overwrite to replace it)")
    remove_stale_partials(dst)
    tmp = join_partial_path(dst)
    inputs: list[av.container.InputContainer] = []
    frames = 0
    try:
        for p in seg_paths:
            inputs.append(av.open(str(p)))
            if not inputs[-1].streams.video:
                raise OutputError(f"{p}: segment has no video stream")
        first = inputs[0].streams.video[0]
        for p, c in zip(seg_paths[1:], inputs[1:]):
            if not _same_codec(first, c.streams.video[0]):
                raise OutputError(
                    f"{p}: segment encoded with different codec parameters than {seg_paths[0]}; "
                    "its packets cannot be joined without re-encoding (run this file without segments)")
        with open_input(src) as inp, inp.open_container() as source, av.open(str(tmp), "w") as out:
            info = inp.info
            base = info.start_time
            shift = base if shift_timestamps else Fraction(0)
            out.metadata.update(info.metadata)
            chapters = shifted_chapters(info.chapters, base=base, t0=None, t1=None, shift=shift)
            if chapters:
                out.set_chapters(chapters)
            out_v = out.add_stream_from_template(first)
            copy_stream_facts(first, out_v, metadata=info.stream_metadata, disposition=info.disposition)
            copier = None
            if copy_streams:
                copier = StreamCopier(out, source, video_index=info.stream_index,
                                      selection=selection or StreamSelection(), base=base, shift=shift, dst=dst,
                                      src=src, video_codec=first.codec_context.name,
                                      notice=notice or (lambda msg: None))
            try:
                dts = joined_dts([p for path in seg_paths for p in _video_pts(path)])
            except ValueError as e:
                raise OutputError(f"{dst}: the segments cannot be joined ({e})") from e
            for _, _, _, pkt in _video_packets(inputs, dts):
                tb = Fraction(pkt.time_base.numerator, pkt.time_base.denominator)
                if copier is not None:  # what the other streams have up to this packet's time, first
                    copier.pump(_sort_key(pkt) - base)
                ticks = round(shift / tb)
                if pkt.pts is not None:
                    pkt.pts -= ticks
                if pkt.dts is not None:
                    pkt.dts -= ticks
                pkt.stream = out_v
                out.mux(pkt)
                frames += 1
            if copier is not None:
                copier.pump(None)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for c in inputs:
            c.close()
    return JoinResult(output=dst, frames=frames)
