"""One demux-only pass over an input's video stream: every packet's timestamps, duration and keyframe flag.

    index = read_packet_index("in.mkv")          # cached: the same file is demuxed once per process
    index.media_times()                          # presentation times in seconds, sorted (for seeking)
    index.keyframe_packets()                     # (pts, is_keyframe) in decode order (for segmenting)
    index.frame_count, index.duration            # frames and their span (for probing / progress)
    index.packet_count                           # packets, those that give no frame too (keyframe scan, damage)

No packet is decoded. Packets of size 0 (demuxer flush markers) are left out, and so are an MPEG-4 Part 2 stream's
not-coded VOPs (``video.mpeg4_vops``: Xvid's "N-VOPs", which repeat the picture before and give no frame). Packets the
decoder drops whole (:class:`DecoderDrops`: an MP4 edit list's discarded ones, an open-GOP cut's leading B-frames) are
kept, for the keyframe scan, but are no frames: ``shown`` marks them and the frames' times, count
(``frame_count``; ``packet_count`` counts every packet) and span (``duration``) leave them out. In
containers whose timestamps count packets in decode order (:data:`DECODE_ORDER_FORMATS`: AVI, which stores no
presentation times) the index keeps each packet's decode-order counter as its ``pts`` too: the sorted counters are the
frames' presentation times (the reader gives each decoded frame the smallest unused one), and a keyframe's counter is
its own time when no packet before it in decode order shows after it (closed GOPs). A demuxer that stops at damaged or
truncated data ends the index there: ``complete`` is False and ``error`` says why, and what was read stands. In
MPEG-TS/PS the timestamps are mended across jumps (``video.discont``: joined or edited recordings): ``pts``/``dts``
hold the moved times, which are the reader's, and ``jumps`` says where and by how much. Timestamps stay in the
stream's ``time_base`` (integers) until a caller asks for seconds, so they are rounded once; media time counts from
the origin the caller gives (``media_times(start_time=)``: the reader gives its own, ``VideoInfo.start_time``, which
may be earlier than the container's ``start_time``, the default: the first frame's).

The reader (``InputVideo.frames(start=…)``, ``resolve_range``), the keyframe scan (``video.keyframes``: batch's
segment plan, ``--reuse near``'s reset points) and the segment join's fallback (``video.segment_join``: each
segment's PTS, where its one-read clock guessed wrong) all read this one index; it is cached per file (path,
size, modification time and stream; the last 8), so a run — and every segment a worker process renders of the
same source — demuxes the file once.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import InputError
from .discont import Jump, find_jumps, has_discontinuities, tolerances
from .metadata import demuxer_in
from .mpeg4_vops import VopCounter
from .probe import Demux, file_key, open_media, pick_video_stream

__all__ = ["DECODE_ORDER_FORMATS", "DecoderDrops", "NOPTS", "PacketIndex", "clear_cache", "decode_order_timestamps",
           "media_origin", "read_packet_index"]

NOPTS = np.iinfo(np.int64).min
"""Stands for a missing timestamp in ``pts``/``dts`` (FFmpeg's ``AV_NOPTS_VALUE``)."""

DECODE_ORDER_FORMATS = ("avi",)
"""Containers (FFmpeg demuxer names) whose packet timestamps count packets in decode order rather than saying when
each frame shows: AVI stores one chunk per frame and no presentation time, so with B-frames FFmpeg's guess
(``pts = dts + 1`` for H.264, the parser's for MPEG-4 Part 2) does not follow the frames' order."""


def decode_order_timestamps(format_name: str) -> bool:
    """Whether the container (FFmpeg demuxer name, any of a comma list) times packets in decode order."""
    return demuxer_in(format_name, DECODE_ORDER_FORMATS)


def media_origin(container_start: Fraction, first_pts: int | None, time_base: Fraction,
                 format_name: str) -> Fraction:
    """Where media time counts from (``VideoInfo.start_time``; pure): the container's start (seconds), or the first
    frame's time (``first_pts`` in ``time_base`` units) where that is earlier. FFmpeg times a video stream whose
    packets have no dts (Matroska, B-frames) only once its reorder delay has gone by: in a clip of 1-3 frames never,
    and it then gives the stream the start of the others (a subtitle cue at 0.04 s), which would move everything by
    that (the first frame to -0.04 s, the cue to 0 s in an MP4). Not in containers whose timestamps count decode
    order (AVI, :func:`decode_order_timestamps`) nor raw H.264/HEVC streams (``damage.RAW_STREAM_FORMATS``: their
    packets carry no timestamps), where the container's start stands. The reader gives its first decoded frame's
    pts, batch's plan the packet index's first presentation time (``batch.segments.media_origin``): the same
    frame."""
    from .damage import RAW_STREAM_FORMATS

    if (first_pts is not None and time_base and not decode_order_timestamps(format_name)
            and not demuxer_in(format_name, RAW_STREAM_FORMATS)):
        return min(container_start, first_pts * Fraction(time_base))
    return container_start


@dataclass(frozen=True, eq=False)
class PacketIndex:
    """The video stream's packets in decode order (NumPy arrays, one entry per packet)."""

    path: Path
    stream_index: int
    time_base: Fraction
    start_time: Fraction
    """The container's start time in seconds; media time counts from here."""
    pts: np.ndarray
    """int64 presentation timestamps in ``time_base`` units, :data:`NOPTS` where the packet has none."""
    dts: np.ndarray
    """int64 decode timestamps, :data:`NOPTS` where missing."""
    durations: np.ndarray
    """int64 packet durations in ``time_base`` units, 0 where the container does not say."""
    keyframes: np.ndarray
    """bool: the packet starts a GOP (``AV_PKT_FLAG_KEY``)."""
    complete: bool = True
    """False when the demuxer stopped early at damaged or truncated data."""
    error: str | None = None
    """The demuxer's message when it stopped early."""
    jumps: tuple[Jump, ...] = ()
    """Timestamp discontinuities (MPEG-TS/PS: ``video.discont``), in decode order; ``pts``/``dts`` hold the times
    they mended (each packet after a jump moved by its offset), which are the reader's frame times too."""
    shown: np.ndarray | None = None
    """bool: the packet gives a frame (:class:`DecoderDrops`: not one the decoder drops whole, an MP4 edit list's
    discarded packet or a leading picture of the open GOP the stream starts at); None: every packet does."""
    not_coded: int = 0
    """MPEG-4 Part 2 not-coded VOPs (N-VOPs) the index leaves out: packets that give no frame (the picture before
    repeats), which a container's header frame count (AVI, MP4) counts."""
    decode_order: bool = False
    """The container times packets in decode order (:data:`DECODE_ORDER_FORMATS`): ``pts`` holds each packet's
    decode-order counter (its ``dts``), whose sorted values are the frames' presentation times."""
    format_name: str = ""
    """The container (FFmpeg demuxer name, a comma list for some): what :func:`media_origin` tells by."""
    cut_tail: bool = False
    """The stream's last packet was read short where the file ends (the demuxer flags it corrupt): a truncated file
    ends inside it, and it gives no whole frame (the read counts it as the truncation, not as a frame lost)."""
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def packet_count(self) -> int:
        """Packets in the stream (one per frame for progressive video; field-coded video may have two), those the
        decoder drops whole (:attr:`shown`) too: what the keyframe scan and the damage checks count. The frames a
        read gives are :attr:`frame_count`."""
        return int(self.pts.shape[0])

    @property
    def frame_count(self) -> int:
        """Packets that give a frame: :attr:`packet_count` less those the decoder drops whole (:attr:`shown`: an MP4
        edit list's discarded packets, an open-GOP cut's leading pictures), those without a timestamp counted. What
        a read of the whole stream gives when nothing is damaged: the count progress totals and summaries mean. The
        packet a truncated file ends inside (:attr:`cut_tail`) is not counted: a cut AVI's count was one more than
        the frames its read gives, and its progress stopped at 16/17."""
        count = self.packet_count if self.shown is None else int(self.shown.sum())
        return count - self.tail_lost

    @property
    def tail_lost(self) -> bool:
        """The last packet is :attr:`cut_tail` and would otherwise count as a frame (not one the decoder drops
        anyway): the one frame :attr:`frame_count` and ``keyframes.scan_keyframes`` leave out."""
        return self.cut_tail and (self.shown is None or bool(self.shown[-1]))

    @property
    def has_all_pts(self) -> bool:
        """Every packet carries a presentation timestamp (else seeking by the index is not possible)."""
        return bool(self.packet_count) and not bool((self.pts == NOPTS).any())

    def presentation_pts(self) -> list[int]:
        """The frames' presentation timestamps sorted: the packets' (those without one, and those the decoder drops
        whole, :attr:`shown`, left out)."""
        if "pts" not in self._memo:
            keep = self.pts != NOPTS
            if self.shown is not None:
                keep &= self.shown
            self._memo["pts"] = sorted(int(p) for p in self.pts[keep])
        return self._memo["pts"]

    def media_times(self, start_time: Fraction | None = None) -> list[Fraction]:
        """Presentation times in seconds from ``start_time`` (default: the container's start, :attr:`start_time`;
        the reader gives its own, ``VideoInfo.start_time``, which may be earlier: the first frame's), sorted; []
        unless :attr:`has_all_pts`."""
        base = self.start_time if start_time is None else Fraction(start_time)
        key = ("times", base)
        if key not in self._memo:
            tb = self.time_base
            self._memo[key] = [p * tb - base for p in self.presentation_pts()] if self.has_all_pts else []
        return self._memo[key]

    def keyframe_packets(self) -> list[tuple[int, bool]]:
        """``(pts, is_keyframe)`` in decode order, for packets with a pts (what a keyframe scan needs; the packets the
        decoder drops, :attr:`shown`, too: they are where the GOPs are)."""
        keep = self.pts != NOPTS
        return [(int(p), bool(k)) for p, k in zip(self.pts[keep], self.keyframes[keep])]

    @property
    def keyframe_count(self) -> int:
        return int(self.keyframes.sum())

    @property
    def duration(self) -> Fraction | None:
        """Seconds from the first frame's presentation to the end of the last one (its duration included; without
        durations, the median frame step stands in for the last one): the frames' span, packets the decoder drops
        whole (:attr:`shown`) left out; None without timestamps."""
        keep = self.pts != NOPTS
        if self.shown is not None:
            keep &= self.shown
        pts = self.pts[keep]
        if pts.size == 0:
            return None
        last = int(pts.argmax())
        tail = int(self.durations[keep][last])
        if tail <= 0 and pts.size > 1:
            steps = np.diff(np.sort(pts))
            tail = int(np.median(steps[steps > 0])) if (steps > 0).any() else 0
        return (int(pts.max()) + tail - int(pts.min())) * self.time_base


_CACHE: OrderedDict[tuple, PacketIndex] = OrderedDict()
_CACHE_SIZE = 8
_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every cached index (tests; a long-lived process that rewrites files in place)."""
    with _LOCK:
        _CACHE.clear()


def read_packet_index(path: str | os.PathLike, stream_index: int | None = None) -> PacketIndex:
    """The packet index of ``path``'s video stream (``stream_index``, else the one the reader picks).

    Cached per (resolved path, size, modification time, stream): a file changed on disk is read again.
    InputError naming the file when it does not open or has no video stream; damage part-way through ends
    the index there (``complete`` False) rather than raising.
    """
    p = Path(path)
    try:
        key = (*file_key(p), stream_index)
    except OSError as e:
        raise InputError(f"{p}: cannot be read ({e.strerror or e})") from e
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    index, is_default = _scan(p, stream_index)
    with _LOCK:
        # one index answers both "the video stream" and that stream's number
        _CACHE[key[:3] + (index.stream_index,)] = index
        if is_default:
            _CACHE[key[:3] + (None,)] = index
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return index


def _decodes_alone(stream, pkt) -> bool:
    """Whether the packet a truncated file ends inside still gives a picture: an intra-only codec's decoder (MJPEG,
    HuffYUV) decodes what there is of it, and the reader gives that frame (a cut AVI's count was one short of its
    read, 10/9); another's (H.264, MPEG-4 Part 2, FFV1 and rawvideo refuse it alone) is taken as no frame. Decoded
    on its own, in a decoder of its own: only ever one packet, of a truncated file."""
    if pkt is None or not stream.codec_context.codec.intra_only:
        return False
    try:
        ctx = av.CodecContext.create(stream.codec_context.codec.name, "r")
        ctx.extradata = stream.codec_context.extradata
        ctx.width, ctx.height = stream.codec_context.width, stream.codec_context.height
        ctx.pix_fmt = stream.codec_context.pix_fmt
        return bool(ctx.decode(pkt)) or bool(ctx.decode(None))
    except (av.FFmpegError, ValueError):
        return False


def _scan(path: Path, stream_index: int | None) -> tuple[PacketIndex, bool]:
    """The index of the stream and whether that stream is the one :func:`pick_video_stream` picks."""
    try:
        container = open_media(path)
    except (av.FFmpegError, OSError) as e:
        raise InputError(f"{path}: cannot be read as a video ({e})") from e
    with container as c:
        if stream_index is None:
            stream = pick_video_stream(path, c)
        else:
            try:
                stream = c.streams[stream_index]
            except IndexError:
                raise InputError(f"{path}: has no stream #{stream_index}") from None
            if stream.type != "video":
                raise InputError(f"{path}: stream #{stream_index} is {stream.type}, not video")
        pts: list[int] = []
        dts: list[int] = []
        durations: list[int] = []
        keys: list[bool] = []
        gives: list[bool] = []
        decode_order = decode_order_timestamps(c.format.name)
        drops = DecoderDrops(leading=not decode_order)
        demux = Demux(c, stream)  # damaged or truncated: what was read stands
        vops = mpeg4_vops(stream)
        not_coded = 0
        size = path.stat().st_size
        cut_tail, tail = False, None
        for pkt in demux:
            if pkt.size == 0:
                continue
            # read short at the end of the file (as the probe tells a file cut inside its first frame)
            cut_tail = bool(pkt.is_corrupt and pkt.pos is not None and pkt.pos >= 0 and pkt.pos + pkt.size + 16 >= size)
            tail = pkt if cut_tail else None
            if vops is not None and not vops.gives_frame(bytes(pkt)):
                not_coded += 1
                cut_tail = False  # not indexed
                continue  # an N-VOP: no frame (the one before repeats)
            shown = pkt.dts if decode_order and pkt.dts is not None else pkt.pts
            pts.append(NOPTS if shown is None else int(shown))
            dts.append(NOPTS if pkt.dts is None else int(pkt.dts))
            durations.append(int(pkt.duration or 0))
            keys.append(bool(pkt.is_keyframe))
            gives.append(not drops.drops(pkt))
        start = Fraction(c.start_time, 1_000_000) if c.start_time is not None else Fraction(0)
        jumps = _mend(c.format.name, stream, pts, dts)
        try:
            is_default = stream_index is None or pick_video_stream(path, c).index == stream.index
        except InputError:
            is_default = False
        index = PacketIndex(
            path=path,
            stream_index=stream.index,
            time_base=Fraction(stream.time_base),
            start_time=start,
            pts=np.array(pts, dtype=np.int64),
            dts=np.array(dts, dtype=np.int64),
            durations=np.array(durations, dtype=np.int64),
            keyframes=np.array(keys, dtype=bool),
            shown=None if all(gives) else np.array(gives, dtype=bool),
            complete=demux.error is None,
            error=demux.error,
            decode_order=decode_order,
            jumps=tuple(jumps),
            format_name=c.format.name,
            not_coded=not_coded,
            cut_tail=cut_tail and bool(pts) and not _decodes_alone(stream, tail),
        )
        return index, is_default


class DecoderDrops:
    """Tells, packet by packet in decode order, those the decoder drops whole without a frame, which are no damage:

    - a packet flagged discard (``AV_PKT_FLAG_DISCARD``): an MP4 edit list that starts the video after its first
      packets (FFmpeg decodes them, for the frames after, and drops their frames);
    - a leading picture of the open GOP the stream starts at: after its first keyframe in decode order, before the
      next one, shown before it (a cut transport stream's B-frames that refer to the GOP cut off; H.264, MPEG-2 and
      HEVC decoders drop them).

    The packet index leaves them out of the frames' times; the reader does not count them among the packets that
    should have given a frame (its lost-frame report).
    """

    def __init__(self, *, leading: bool = True) -> None:
        self._leading = leading  # False in containers timed in decode order (AVI): no packet's pts says it leads
        self._first_key: int | None = None  # the first keyframe's pts (decode order), while its GOP lasts
        self._keys = 0

    def drops(self, pkt) -> bool:
        """Whether ``pkt`` (PyAV packet of the video stream, size > 0, given in decode order) gives no frame."""
        if pkt.is_keyframe:
            self._keys += 1
            if self._keys == 1:
                self._first_key = pkt.pts
        if pkt.is_discard:
            return True
        if not self._leading or self._keys != 1 or pkt.is_keyframe or pkt.pts is None or self._first_key is None:
            return False
        return pkt.pts < self._first_key


def mpeg4_vops(stream) -> VopCounter | None:
    """A :class:`~esrgan_video.video.mpeg4_vops.VopCounter` for PyAV video ``stream`` when it is MPEG-4 Part 2 (its
    packets may be N-VOPs, which give no frame), else None. The reader's decoding and this index skip the same
    packets."""
    ctx = stream.codec_context
    if ctx is None or ctx.name != "mpeg4":
        return None
    return VopCounter(ctx.extradata)


def frame_step(stream, pts) -> int:
    """One frame's step in ``stream``'s time base: from its average (else guessed) frame rate, else the median step
    of ``pts`` (any order, NOPTS for none; sorted only then; 1 when unknown). The reader steps by the same."""
    tb = Fraction(stream.time_base)
    rate = stream.average_rate or stream.guessed_rate
    if rate and rate.denominator and Fraction(rate.numerator, rate.denominator):
        return max(1, int(round(1 / (Fraction(rate.numerator, rate.denominator) * tb))))
    return median_step(sorted(p for p in pts if p != NOPTS))


def median_step(shown: list[int]) -> int:
    """The median step between the increasing times of ``shown`` (sorted, no NOPTS); 1 without one."""
    steps = sorted(b - a for a, b in zip(shown, shown[1:]) if b > a)
    return steps[len(steps) // 2] if steps else 1


def _mend(format_name: str, stream, pts: list[int], dts: list[int]) -> list[Jump]:
    """In containers that restart their clocks (``video.discont``): find the jumps and move ``pts``/``dts`` (in place)
    so the timeline follows on across each; [] (nothing moved) elsewhere or without a jump."""
    if not has_discontinuities(format_name) or not pts:
        return []
    back, threshold = tolerances(Fraction(stream.time_base))
    opt = lambda v: None if v == NOPTS else v  # noqa: E731
    jumps = find_jumps([opt(d) for d in dts], [opt(p) for p in pts], step=frame_step(stream, pts),
                       threshold=threshold, back=back)
    bounds = [j.packet for j in jumps] + [len(pts)]
    for j, (lo, hi) in zip(jumps, zip(bounds, bounds[1:])):
        for i in range(lo, hi):
            if pts[i] != NOPTS:
                pts[i] += j.offset
            if dts[i] != NOPTS:
                dts[i] += j.offset
    return jumps
