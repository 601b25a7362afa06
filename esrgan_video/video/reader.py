"""Read a video file's frames as native planes (no colour conversion, no swscale) plus every stream fact.

    with open_input("in.mkv") as inp:
        inp.info.width, inp.info.pix_fmt, inp.info.color, inp.info.time_base
        for frame in inp.frames(start=Fraction(1), end=120):   # from 1 s up to frame 120 (exclusive)
            frame.index, frame.pts, frame.planes

Frames are decoded with codec threads on (slice threads only for a decoder that conceals damage,
:data:`CONCEALING_DECODERS`, whose corrupt flags otherwise depend on frame threads' timing, and for one that refuses
damaged data only there, :data:`SLICE_CHECKED_DECODERS`); each keeps the decoder's
timestamp (``pts``) — except in containers whose timestamps count packets in decode order (AVI:
``packet_index.DECODE_ORDER_FORMATS``), where each decoded frame, coming out in presentation order, takes the smallest
timestamp of its GOP's packets sent so far that no frame has taken (:class:`_DecodeOrderClock`; decoded with slice
threads only, so that a packet the decoder refuses is refused as it is sent, not some packets later). A frame
without one (MPEG-PS times only the packs a frame starts in; raw H.264/HEVC times none) lies evenly between the
frames around it that have one, or follows the last by its spacing (:func:`fill_times`; not the packet's ``dts``,
which with B-frames is another frame's time).
In MPEG-TS/PS a clock that restarts (joined or edited recordings: timestamps that jump back, or ahead by more than
10 s) is mended as FFmpeg's command line does (``video.discont``): each piece follows on one frame step after the
last frame before it, by the packet index's offsets, which the copied streams take too; one notice says so (not
damage), and seeking is off for such a file (the demuxer seeks by the file's own, repeated, times).
A raw H.264/HEVC stream is timed at the rate its SPS's VUI timing says (FFmpeg's raw demuxer says 25 fps for every
stream), as is an x264 stream in an MPEG-PS too short for FFmpeg to measure a rate (it guessed 2000 fps); where the
stream says none, or a time base's ticks (:data:`SPS_TICK_RATE`), FFmpeg's 25 fps stands and ``notices()`` calls it
a guess.
A corrupt packet in the middle is skipped; a truncated file ends with what decoded. ``frames()`` returns a
:class:`FrameRun`, whose ``stats`` (a ``video.damage.ReadStats``: frames lost, whether it seeked, whether the file
is truncated) are set once the run has ended; the one line that says what was lost goes to the ``notice`` callback
given to :func:`open_input` (or to ``frames()``), never to ``warnings``.
"""

from __future__ import annotations

import bisect
import heapq
import os
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np
from av.sidedata.sidedata import Type as _SideData

from ..frames.color import ColorSpec
from ..frames.colorspace import ChromaLocation, Matrix, Primaries, Range, Transfer
from ..errors import InputError
from ..files import check_regular_input
from ..frames.pixel_formats import READ_AS, pixel_format, plane_layouts, read_format
from .damage import (GAP_FORMATS, RAW_STREAM_FORMATS, Promise, ReadStats, avi_truncated, cut_transport_packet,
                     judge_truncation, raw_stream_pictures, stream_promise, timestamp_gaps)
from .discont import Jump, has_discontinuities, jump_notice, jumped, tolerances
from .packet_index import (DecoderDrops, PacketIndex, decode_order_timestamps, media_origin, median_step, mpeg4_vops,
                           read_packet_index)
from .planes import read_planes, stream_see_through
from .side_data import new_side_data, side_data_kinds, stereo_mode
from .probe import Demux, open_media, pick_video_stream, video_decoder
from .trim import selected_frames
from .metadata import (
    FIELD_ORDERS,
    HdrMetadata,
    demuxer_in,
    display_matrix_from_bytes,
    rotation_from_matrix,
)

__all__ = ["DecodedFrame", "FrameCount", "FrameRun", "InputVideo", "ReadStats", "VideoInfo", "open_input"]

# Keys muxers write themselves; copying them would describe the old file, not the new one. Not ``creation_time``:
# a recording's date (what a phone or camera wrote, what photo libraries sort by) is the upscaled copy's too, and
# the bitexact muxers write none of their own (ffmpeg -i in out copies it too).
MUXER_KEYS = frozenset({"encoder", "duration", "major_brand", "minor_version", "compatible_brands",
                        "_statistics_tags", "_statistics_writing_app",
                        "_statistics_writing_date_utc", "number_of_frames", "number_of_bytes", "bps",
                        "alpha_mode"})
# (Matroska's muxer writes ``alpha_mode`` itself for a yuva420p stream: copied, it would mark an opaque output as
# having an alpha track.)


def clean_metadata(meta: dict[str, str]) -> dict[str, str]:
    """``meta`` without the keys a muxer regenerates (ENCODER, DURATION, brands, statistics tags)."""
    return {k: v for k, v in meta.items() if k.lower() not in MUXER_KEYS and not k.upper().startswith(
        ("NUMBER_OF_", "_STATISTICS", "BPS"))}


def _color_spec(**kw) -> ColorSpec:
    return ColorSpec(**kw)


CAPTION_DECODERS = frozenset({"h264", "hevc", "mpeg1video", "mpeg2video"})
"""FFmpeg decoders that export ATSC A/53 closed captions as frame side data (``A53_CC``): the reader reads
captions from these only."""

HDR10PLUS_DECODERS = frozenset({"hevc", "av1", "vp9"})
"""The codecs whose FFmpeg decoders export HDR10+ dynamic metadata as frame side data (``DYNAMIC_HDR_PLUS``: HEVC's
SEI, AV1's metadata OBUs, VP9's Matroska block additions): the reader reads it from these only."""


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame in the stream's native pixel format.

    ``index`` is the frame's position among the decoded frames of the stream (0 = first, counted from
    the start of the file even when ``frames(start=...)`` skips some); ``pts`` is in ``time_base`` units
    (the input stream's); ``planes`` are contiguous numpy arrays shaped as ``frames.pixel_formats.plane_layouts`` says
    (uint8, or uint16 above 8 bits); ``fmt`` is the FFmpeg pixel format name.
    """

    index: int
    pts: int
    time_base: Fraction
    planes: list[np.ndarray]
    fmt: str
    captions: bytes | None = None
    """The frame's ATSC A/53 closed captions (FFmpeg's ``A53_CC`` side data: CEA-608/708 ``cc_data`` triplets), read
    on every frame (a broadcast capture's may begin after its first frame); the writer puts them into the output's
    SEI."""
    hdr10plus: bytes | None = None
    """The frame's HDR10+ dynamic metadata (FFmpeg's ``DYNAMIC_HDR_PLUS`` side data: an ``AVDynamicHDRPlus``), read on
    every frame; the writer puts it into libx265's SEI (``hdr10plus.hdr10plus_t35``)."""
    side_data: tuple[str, ...] = ()
    """The kinds of side data (``side_data.SIDE_DATA_KINDS``) this frame is the first of its run to have, none of them
    in ``VideoInfo.side_data`` (the first frame's and the stream's): side data that begins later, which the writer
    names in a notice of its own (``side_data.new_side_data``)."""

    @property
    def time(self) -> Fraction:
        """Presentation time in seconds on the stream's clock."""
        return self.pts * self.time_base


PROGRAM_STREAM_FORMATS = ("mpeg",)
"""MPEG program streams (FFmpeg's demuxer name): timestamps on packs rather than frames (``_ps_timestamps``,
``fill_times``), and a rate FFmpeg may fail to measure (``_rates``)."""

GUESSED_RATE = Fraction(25)
"""The frame rate taken for a stream that says none (FFmpeg's raw demuxers' default)."""
SPS_TICK_RATE = Fraction(1000)
"""A raw H.264/HEVC stream whose SPS VUI timing says this many frames a second or more is taken to state a time base,
not a frame rate: x264 writes its time base there, so a stream made from Matroska (1/1000), MP4 (1/12800) or
MPEG-TS (1/90000) timestamps says 1000, 12800 or 90000 fps (this project's writer did until 640ce8d)."""


@dataclass(frozen=True)
class VideoInfo:
    """Everything known about the input's video stream and container before decoding it all."""

    path: Path
    container: str
    """Container format name (FFmpeg's, e.g. ``matroska,webm``, ``mov,mp4,m4a,3gp,3g2,mj2``)."""
    stream_index: int
    codec: str
    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    average_rate: Fraction | None
    guessed_rate: Fraction | None
    start_time: Fraction
    """The container's start time in seconds; "media time" (what start/end mean) counts from here."""
    duration: Fraction | None
    """Container duration in seconds, when the container says."""
    counted: FrameCount
    """What :attr:`frame_count` is told by (counted when first asked)."""
    color: ColorSpec
    """``esrgan_video.frames.color.ColorSpec`` from the first frame's tags (stream tags when the frame has none)."""
    field_order: str
    """``progressive``, ``tt``, ``bb``, ``tb``, ``bt`` or ``unknown`` (FFmpeg's AVFieldOrder)."""
    interlaced: bool
    """True when the field order or the first frame says the video is interlaced (a later interlaced frame is told
    by ``InputVideo.frames()``, see ``InputVideo.notices``)."""
    hdr: HdrMetadata | None
    display_matrix: tuple[int, ...] | None
    rotation: float
    """Counter-clockwise degrees a player rotates by (from the display matrix)."""
    sample_aspect_ratio: Fraction | None
    metadata: dict[str, str] = field(default_factory=dict)
    """Container metadata, without the keys a muxer regenerates."""
    stream_metadata: dict[str, str] = field(default_factory=dict)
    """Video stream metadata (language, title, handler), without muxer-generated keys."""
    chapters: tuple[dict, ...] = ()
    """PyAV chapter dicts: id, start, end, time_base, metadata."""
    disposition: int = 0
    """The video stream's disposition flags (``av.stream.Disposition``: default, forced, …)."""
    promise: Promise | None = None
    """What the video stream says it holds (frame count or duration), to judge truncation against."""
    source_pix_fmt: str | None = None
    """The decoder's own pixel format when the frames are read as another (``pix_fmt``), losslessly:
    ``uyvy422``/``yuyv422`` as ``yuv422p``, ``pal8`` as ``rgb24``/``rgba`` (``frames.pixel_formats.READ_AS``)."""
    rate_guess: str | None = None
    """Why ``frame_rate`` is a guess (:data:`GUESSED_RATE`, FFmpeg's raw demuxers' default 25 fps), when it is: a
    raw H.264/HEVC elementary stream whose SPS has no VUI timing, or whose timing is a time base's ticks
    (:data:`SPS_TICK_RATE`), or such a stream in an MPEG-PS that times too few frames to measure a rate (``_rates``);
    ``notices()`` says so. None: the file says the rate."""
    closed_captions: bool = False
    """The first frame carries ATSC A/53 closed captions (CEA-608/708 in the video's SEI, FFmpeg's ``A53_CC`` frame
    side data): each frame's are read (``DecodedFrame.captions``) and written into libx264's and libx265's SEI
    (``metadata.with_captions``); the writer says that other encoders' outputs lose them."""
    side_data: tuple[str, ...] = ()
    """The kinds of side data (``side_data.SIDE_DATA_KINDS``: HDR10+, Dolby Vision, stereo 3D, spherical, timecodes,
    AFD, …) the stream or its first frame carries that the pipeline does not carry over; the writer names those its
    output loses in one notice (``side_data.side_data_lost``)."""
    stereo_mode: str | None = None
    """The stereo 3D layout as Matroska's StereoMode names it (``side_data.stereo_mode``; ``left_right``, …), where it
    has one: Matroska output is written it."""

    @property
    def frame_count(self) -> int | None:
        """The frames a whole read gives, from the container header's count when it has one (MP4/MOV, AVI do,
        Matroska does not), else None: :class:`FrameCount` (an AVI's or an MPEG-4 Part 2 stream's counted by the
        packet index when first asked, not by the probe)."""
        return self.counted.value

    @property
    def is_hdr(self) -> bool:
        """PQ (16) or HLG (18) transfer, or HDR side data present."""
        return self.hdr is not None or getattr(self.color, "transfer", None) in (Transfer.PQ, Transfer.HLG)

    @property
    def frame_rate(self) -> Fraction | None:
        """The average rate, else the guessed one."""
        return self.average_rate or self.guessed_rate

    def frame_count_in(self, start=None, end=None) -> int | None:
        """How many frames ``frames(start, end)`` yields: exact for frame-index ranges of a file with a
        frame count, otherwise an estimate from the duration and the average rate; None when unknown."""
        total = self.frame_count
        rate = self.frame_rate
        if total is None and self.duration is not None and rate:
            total = round(self.duration * rate)
        if total is None:
            return None

        def to_index(v, default):
            if v is None:
                return default
            if isinstance(v, int) and not isinstance(v, bool):
                return v
            return round(Fraction(v) * rate) if rate else default

        lo = max(0, min(to_index(start, 0), total))
        hi = max(lo, min(to_index(end, total), total))
        return hi - lo


@dataclass(frozen=True)
class FrameCount:
    """``VideoInfo.frame_count``, told one way: the container header's count less what it counts that gives no frame.

    Packets the decoder drops whole (``packet_index.DecoderDrops``: an MP4 edit list's discarded ones, an open GOP's
    leading pictures) all show before the first frame, so the probe counts them on its way there (:attr:`header`).
    An AVI's header counts ticks (its empty chunks, the ticks a variable rate skips) and an MPEG-4 Part 2 stream's
    its N-VOPs (``video.mpeg4_vops``) anywhere in the file: there (:attr:`path`) the packet index's
    ``frame_count`` is the count, read when first asked — a demux pass over the whole file (~65 µs a packet: 12 s
    for a 2-hour AVI) that opening the file no longer pays; the index is cached per file, and a whole read of an
    AVI reads it anyway. A damaged or truncated file, whose index stops early, keeps :attr:`header` (what it
    promised; the read reports what it lacks)."""

    header: int | None
    """The header's frame count less the packets the decoder drops before the first frame; None without one."""
    path: Path | None = None
    """The file whose packet index counts the frames (AVI, MPEG-4 Part 2); None: :attr:`header` is the count."""
    stream_index: int = 0
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def value(self) -> int | None:
        if self.header is None or self.path is None:
            return self.header
        if "count" not in self._memo:
            index = read_packet_index(self.path, self.stream_index)
            self._memo["count"] = index.frame_count if index.complete else self.header
        return self._memo["count"]


def _frac(q) -> Fraction | None:
    if q is None:
        return None
    f = Fraction(q.numerator, q.denominator) if q.denominator else None
    return f if f else None


def _check_range(name: str, value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise ValueError(f"{name} must be a frame index (int) or seconds (Fraction/float), got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be ≥ 0, got {value!r}")


UPSCALE_INTERLACED = "the models expect progressive frames"
"""Why an interlaced input is to be deinterlaced before it is upscaled (:meth:`InputVideo.notices`)."""
TRAINING_INTERLACED = "a model trained on its frames learns the combing of their two fields as detail"
"""Why before it is trained on (``train.data.read_video``)."""


class InputVideo:
    """An opened input: ``info`` and ``frames()``. Open with :func:`open_input`; close (or use ``with``)."""

    def __init__(self, path: Path, info: VideoInfo, *, notice: Callable[[str], None] | None = None):
        self.path = path
        self.info = info
        self.notice = notice
        """Where ``frames()`` sends the one line about damage it met (None: only ``FrameRun.stats`` says)."""
        self._frame_times: list[Fraction] | None = None
        self._interlaced_why = UPSCALE_INTERLACED
        """What the notice of a video that turns interlaced after its first frame says (set by :meth:`notices`)."""
        self._told_interlaced = False
        """The notice of a video that turns interlaced later was given (once per input, over every run)."""

    def __enter__(self) -> InputVideo:
        return self

    def __exit__(self, *exc) -> None:
        """Nothing to release: no container stays open between ``frames()`` runs (each run opens and closes its
        own demuxer), so ``with open_input(...)`` only scopes the object."""

    def notices(self, *, interlaced_why: str = UPSCALE_INTERLACED) -> list[str]:
        """One-line warnings about the input a user should see (interlacing, HDR). ``interlaced_why``: why an
        interlaced video should be deinterlaced first, for what reads it (training: :data:`TRAINING_INTERLACED`).

        A video whose stream and first frame say progressive but a later frame is interlaced (a broadcast capture:
        a progressive advert, then the interlaced programme) is told by ``frames()``, at the first such frame it
        reads, once, to its ``notice`` with the same reason."""
        self._interlaced_why = interlaced_why
        out = []
        info = self.info
        if info.interlaced:
            out.append(f"{self.path}: the video is interlaced (field order {info.field_order}); "
                       f"deinterlace it first (e.g. in VapourSynth) — {interlaced_why}")
        if info.is_hdr:
            out.append(f"{self.path}: the video is HDR (transfer {getattr(info.color, 'transfer', '?')}); "
                       "the models were trained on SDR, so results may look off")
        if info.rate_guess:
            codec = {"h264": "H.264", "hevc": "HEVC"}.get(info.codec, info.codec.upper())
            out.append(f"{self.path}: the {codec} stream says no frame rate ({info.rate_guess}); its frames are "
                       f"timed at {float(info.frame_rate or 0):g} fps (FFmpeg's default), a guess")
        return out

    def open_container(self) -> av.container.InputContainer:
        """A fresh demuxer on the file (the writer uses one to copy the other streams)."""
        try:
            return open_media(self.path)
        except (av.FFmpegError, OSError) as e:
            raise InputError(f"{self.path}: cannot be reopened: {e}") from e

    def media_time(self, pts: int, time_base: Fraction) -> Fraction:
        """Seconds from the container's start for a timestamp ``pts`` in ``time_base`` units."""
        return pts * time_base - self.info.start_time

    def packet_index(self) -> PacketIndex:
        """The video stream's packet index (one demux pass, no decoding; cached per file, so the seeking, the
        trim of the copied streams and every segment of a batch run read the file once)."""
        return read_packet_index(self.path, self.info.stream_index)

    def frame_times(self) -> list[Fraction]:
        """The media time of every video frame in presentation order, from the packet index (no decoding);
        by decoding when some packet has no timestamp (raw H.264/HEVC): that pass says nothing about damage, the
        run that reads the frames does."""
        if self._frame_times is None:
            times = self.packet_index().media_times(self.info.start_time)
            if not times:
                # only the times: no planes copied, and a picture size that changes mid-stream is no error here
                # (it is one where such a frame would be read: a trim that ends before the change works)
                run = FrameRun(self._frames(None, None, None, None, times_only=True))
                times = sorted(self.media_time(f.pts, f.time_base) for f in run)
            self._frame_times = times
        return self._frame_times

    @cached_property
    def _pictures_in_bytes(self) -> int | None:
        """``damage.raw_stream_pictures`` of this file, counted once per :class:`InputVideo` (a whole-file pass;
        ``frame_times()`` of a raw stream — for a seek or a trim — runs ``frames()`` before the run that reads the
        frames)."""
        return raw_stream_pictures(self.path, self.info.container)

    def _jumps(self) -> tuple[Jump, ...]:
        """The video's timestamp jumps, which the packet index mended (``video.discont``); () without reading the
        index in containers that have none."""
        return self.packet_index().jumps if has_discontinuities(self.info.container) else ()

    def frame_count_in(self, start=None, end=None) -> int | None:
        """``info.frame_count_in`` (exact, or estimated from the duration), except for an MPEG-TS/PS whose timestamps
        jump (``video.discont``), whose duration spans one piece only: there counted from the packet index."""
        if self._jumps():
            return selected_frames(self.frame_times(), *self.resolve_range(start, end))
        return self.info.frame_count_in(start, end)

    def resolve_range(self, start=None, end=None) -> tuple[Fraction | None, Fraction | None]:
        """``start``/``end`` (frame index or seconds) as media times in seconds: ``[start, end)``."""
        _check_range("start", start)
        _check_range("end", end)

        def to_time(v):
            if v is None:
                return None
            if isinstance(v, int):
                times = self.frame_times()
                return times[v] if v < len(times) else (times[-1] + 1 if times else Fraction(0))
            return Fraction(v)

        return to_time(start), to_time(end)

    def frames(self, start=None, end=None, *, notice: Callable[[str], None] | None = None) -> FrameRun:
        """Decode frames in presentation order as native planes; returns a :class:`FrameRun` (an iterator of
        :class:`DecodedFrame` whose ``stats`` are set when it ends).

        ``start``/``end``: an ``int`` is a frame index (``end`` exclusive), a ``Fraction``/``float`` is
        seconds of media time (from the container's start): frames with ``start ≤ t < end`` are yielded.

        A ``start`` past the first keyframe seeks to the keyframe at or before it (so trimming late in a
        long file, and batch segments, don't decode everything before them), when the frame times of the
        packet index (:meth:`packet_index`) are unique. The result is checked: if the first frame decoded at or
        after ``start`` is not the one the index promised, decoding restarts from the beginning, so
        indices and counts are exact either way. In containers timed in decode order (AVI) it never seeks: a
        frame's time there is its place among the frames decoded since the start, which a seek into an open GOP
        (whose leading pictures the decoder drops) would shift without a trace; nor in MPEG-TS/PS whose timestamps
        jump (``video.discont``): ``start``/``end`` and every frame's ``pts`` are then on the mended timeline, which
        the demuxer's seek does not know.

        Lost frames and truncation (``video.damage``) are judged when the run ends; the one line about
        them goes to ``notice`` (default: the one given to :func:`open_input`). So does the one line about the first
        interlaced frame of a video :attr:`VideoInfo.interlaced` calls progressive (see :meth:`notices`).
        """
        _check_range("start", start)
        _check_range("end", end)
        return FrameRun(self._run(start, end, notice or self.notice))

    def _run(self, start, end, notice):
        target = self._seek_target(start)
        if target is not None:
            try:
                return (yield from self._frames(start, end, target, notice))
            except _SeekMiss:
                pass
        return (yield from self._frames(start, end, None, notice))

    def _seek_target(self, start) -> _SeekTarget | None:
        """Where to seek for ``start`` (from the packet index), when seeking is safe and worth it."""
        if start is None or start == 0 or decode_order_timestamps(self.info.container):
            return None
        if self._jumps():
            return None  # the demuxer seeks by the file's timestamps, which repeat across a join
        times = self.frame_times()
        if len(times) < 2 or any(a >= b for a, b in zip(times, times[1:])):
            return None  # unknown or repeated times: decode from the start
        start_t = times[start] if isinstance(start, int) and start < len(times) else (
            None if isinstance(start, int) else Fraction(start))
        if start_t is None:
            return None
        k = bisect.bisect_left(times, start_t)
        if k == 0 or k >= len(times):
            return None
        return _SeekTarget(start_t, times[k], k)

    def _frames(self, start, end, seek: _SeekTarget | None, notice, *, times_only: bool = False):
        """The frames of ``frames()``; with ``times_only``, each without its planes (``planes == []``), whatever its
        format (``frame_times()`` of a file without timestamps)."""
        info = self.info
        layouts = plane_layouts(info.pix_fmt, info.width, info.height)
        decoded_fmt = info.source_pix_fmt or info.pix_fmt  # what the decoder gives (uyvy422 read as yuv422p)
        captioning = info.codec in CAPTION_DECODERS
        dynamic = info.codec in HDR10PLUS_DECODERS
        surveying = info.codec not in ("png", "apng")  # touching a PNG frame's side data crashes PyAV 19 (see _probe)
        known = set(info.side_data)  # the side-data kinds the probe found or this run has met
        changed_at: int | None = None  # the first frame whose format or size is not the first frame's
        index = 0
        packets = 0
        no_frame = 0  # packets the decoder drops whole, no damage (packet_index.DecoderDrops)
        not_coded = 0  # MPEG-4 Part 2 N-VOPs: no frame, no damage (video.mpeg4_vops)
        out_frames = 0
        corrupt = 0
        errors = 0
        yielded = 0
        first_yielded = -1
        first_loss: str | None = None  # where the first decode error was met, when no frame time says better
        loss_times: list[Fraction] = []  # media times of frames known lost (flagged corrupt)
        good: list[int] = []  # the timestamps of the frames decoded whole
        cut_tail = False  # the one loss was the last packet, which the demuxer read short (the file ends in it)
        short_pts: int | None = None  # the pts of the last packet when the demuxer read it short
        demux_error: str | None = None
        prev_pts: int | None = None
        # one frame in ticks, at least one (packet_index.frame_step: a time base coarser than a frame rounds to 0)
        step = max(1, int(round(1 / (info.frame_rate * info.time_base)))) if info.frame_rate else 1
        reached_end = False
        checked = seek is None
        clock = _DecodeOrderClock(info.codec) if decode_order_timestamps(info.container) else None
        shown: list[int] | None = [] if demuxer_in(info.container, GAP_FORMATS) else None
        mend = has_discontinuities(info.container)  # MPEG-TS/PS: a clock that restarts is mended (video.discont)
        ps = demuxer_in(info.container, PROGRAM_STREAM_FORMATS)  # MPEG-PS: a pack's timestamps may come on two packets
        back, threshold = tolerances(info.time_base)  # a frame a little before the last is damage, not a join
        raw_prev: int | None = None  # the previous frame's timestamp as the file has it
        offset = 0  # what this piece of the timeline is moved by
        met: list[tuple] = []  # (jump, the index of the first frame after it)
        with self.open_container() as c:
            st = c.streams[info.stream_index]
            # Frame threads report a packet the decoder refuses only some packets later, when its thread's frame is
            # due: the decode-order clock would give back a later packet's timestamp and shift every frame after
            # the loss by one (a loss at 0.20 s put frame 7 at 0.32 s). Slice threads raise at the packet itself.
            # A decoder that conceals damage (CONCEALING_DECODERS) runs on slice threads only: with frame threads,
            # which frames it flags corrupt depends on their timing (MPEG-4 in Matroska: 3 frames of 4, now and then
            # 2); slice threads conceal once the picture's slices are all in, as one thread does.
            dec = video_decoder(st)  # the stream's own decoder; libvpx for a VP8/VP9 alpha track (probe.video_decoder)
            checks = dec.name in SLICE_CHECKED_DECODERS  # it refuses damaged data on slice threads only
            dec.thread_type = "SLICE" if clock is not None or info.codec in CONCEALING_DECODERS or checks else "AUTO"
            dec.thread_count = max(2, os.cpu_count() or 2) if checks else 0
            if seek is not None:
                target = int((seek.start + info.start_time) / info.time_base)
                try:
                    c.seek(target, stream=st, backward=True, any_frame=False)
                except av.FFmpegError:
                    raise _SeekMiss from None

            def decoded() -> Iterator[av.VideoFrame]:
                nonlocal packets, no_frame, not_coded, errors, first_loss, demux_error, cut_tail, short_pts
                demux = Demux(c, st)
                vops = mpeg4_vops(st)
                drops = DecoderDrops(leading=clock is None)  # an edit list's discarded packets, leading pictures
                for pkt in (_ps_timestamps(demux) if ps else demux):
                    if pkt.size and vops is not None and not vops.gives_frame(bytes(pkt)):
                        not_coded += 1
                        continue  # an N-VOP (video.mpeg4_vops): the picture before repeats; no frame, no loss
                    if pkt.size:
                        if drops.drops(pkt):
                            no_frame += 1  # the decoder drops it whole: no loss
                        else:
                            packets += 1
                        cut_tail = False
                        short_pts = pkt.pts if pkt.is_corrupt else None  # read short: the file may end in it
                        if clock is not None:
                            clock.sent(pkt)
                    try:
                        yield from dec.decode(pkt)
                    except av.FFmpegError:
                        errors += 1
                        first_loss = first_loss or _when(pkt, info.start_time)
                        cut_tail = bool(pkt.is_corrupt) and errors == 1
                        if clock is not None:
                            clock.refused(pkt)
                if demux.error is not None:  # damaged container structure: keep what decoded
                    demux_error = " ".join(demux.error.split())
                try:
                    yield from dec.decode(None)
                except av.FFmpegError:
                    pass  # flushing after damage: what decoded stays

            def timed() -> Iterator[tuple[av.VideoFrame, int | None, Jump | None]]:
                """Each frame with its timestamp (None: the file gives it none) and the jump met at it."""
                nonlocal out_frames, raw_prev, offset
                known: int | None = None  # the last timestamp given (mended)
                seen = 0  # jumps met
                # the decoder's pts, not the packet's dts (with B-frames it is another frame's time); in AVI the clock's
                frames = ((f, f.pts) for f in decoded()) if clock is None else clock.in_order(decoded())
                for frame, pts in frames:
                    out_frames += 1
                    jump = None
                    if clock is not None and pts is not None and known is not None and pts <= known:
                        pts = None  # never backwards (after a loss the clock may run out or repeat)
                    if mend and pts is not None:
                        if raw_prev is not None and jumped(raw_prev, pts, back=back, threshold=threshold):
                            jump = self._jump(seen, pts, raw_prev)
                            if jump is None:  # no join: damage gave this frame another frame's time (see _jump)
                                pts = None
                            else:
                                seen += 1
                                offset = jump.offset
                        if pts is not None:
                            raw_prev = pts
                            pts += offset
                    if pts is not None:
                        known = pts
                    yield frame, pts, jump

            for frame, pts, jump in fill_times(timed(), step, held_frames(layouts), repeats_unknown=mend):
                if jump is not None:
                    met.append((jump, index))
                if shown is not None:
                    shown.append(pts)
                if frame.is_corrupt:  # the decoder concealed damage: drop it rather than upscale garbage
                    corrupt += 1
                    cut_tail = corrupt + errors == 1 and short_pts is not None and frame.pts == short_pts
                    if pts is not None:
                        loss_times.append(self.media_time(pts, info.time_base))
                    prev_pts = pts
                    continue
                prev_pts = pts
                if pts is not None:
                    good.append(pts)
                t = self.media_time(pts, info.time_base)
                if seek is not None:
                    if not checked:
                        if t < seek.start:
                            continue  # before the range, after the keyframe we landed on
                        if t != seek.first_time:
                            raise _SeekMiss  # the demuxer landed after the first frame we need
                        checked = True
                        index = seek.first_index
                i = index
                index += 1
                changed = frame.format.name != decoded_fmt or frame.width != info.width or frame.height != info.height
                if changed and changed_at is None:
                    changed_at = i
                if isinstance(start, int) and i < start or start is not None and not isinstance(start, int) \
                        and t < start:
                    continue
                if isinstance(end, int) and i >= end or end is not None and not isinstance(end, int) and t >= end:
                    reached_end = True
                    break
                yielded += 1
                first_yielded = i if yielded == 1 else first_yielded
                if times_only:
                    yield DecodedFrame(i, pts, info.time_base, [], info.pix_fmt)
                    continue
                if frame.interlaced_frame and not info.interlaced:  # a flag read per frame
                    if not self._told_interlaced and notice is not None:
                        self._told_interlaced = True
                        # no frame number: each batch segment reads its own range, and the driver gives a file's
                        # notices once each by their text
                        notice(f"{self.path}: the video turns interlaced after its first frame (its stream and first "
                               f"frame say progressive); deinterlace it first (e.g. in VapourSynth) — "
                               f"{self._interlaced_why}")
                # a change is refused only where a changed frame would be read (a trim may end before it)
                if changed:
                    raise InputError(
                        f"{self.path}: the video changes from {info.width}x{info.height} {decoded_fmt} to "
                        f"{frame.width}x{frame.height} {frame.format.name} at frame {changed_at}; "
                        "mid-stream format changes are not supported")
                # every frame's (captions, HDR10+, timecodes, … may begin later; a few µs): touching side data of a
                # PNG frame with an ICC profile crashes PyAV 19 (see _probe)
                sd = frame.side_data if surveying else None
                cc = sd.get(_SideData.A53_CC) if captioning else None
                hp = sd.get(_SideData.DYNAMIC_HDR_PLUS) if dynamic else None
                yield DecodedFrame(i, pts, info.time_base, read_planes(frame, info.pix_fmt, layouts), info.pix_fmt,
                                   None if cc is None else bytes(cc), None if hp is None else bytes(hp),
                                   new_side_data(sd, known) if sd else ())
            if not checked:  # the seek gave no frame at all (FFmpeg's MPEG-TS seek to the last keyframe reads
                raise _SeekMiss  # to the end): decode from the start, as for a seek that lands late
        lost = 0
        gap_frames = 0
        truncated = False
        expected = None
        if not reached_end:
            # Packets that gave no frame count as lost, except in interlaced streams, where a packet may hold
            # one field (two packets, one frame): there only frames flagged corrupt and decode errors count.
            # After a seek, leading pictures of an open GOP that the decoder rightly drops (they show before the
            # keyframe, so before the range) would count too: there also only flagged frames and errors count.
            silent = 0 if info.interlaced or seek is not None else max(0, packets - out_frames - errors)
            # MPEG-TS/PS: the demuxer drops damaged packets unseen; gaps in a constant frame rate show them. The
            # frames decode errors and silent packets lost leave gaps too, so the larger count stands for both.
            missing, gap_at = timestamp_gaps(shown, max_step=threshold) if shown is not None else (0, None)
            # The packets' own times show packets the demuxer dropped too, and those its parser merged into the one
            # before: with B-frames the decoder then gives frames the wrong times, which hide the gap they leave.
            dropped, dropped_at = self._packet_gaps(shown, threshold) if shown is not None else (0, None)
            gap_frames = max(0, missing - errors - silent, dropped)
            if gap_frames:
                loss_times += [self.media_time(t, info.time_base) for t in (gap_at, dropped_at) if t is not None]
            if errors or silent:  # which frame a refused packet held: the first the index has and no frame took
                missing = self._first_missing(good, corrupt + errors + silent + gap_frames,
                                              None if seek is None else seek.first_time)
                loss_times += [missing] if missing is not None else []
            if loss_times:
                first_loss = f"{float(min(loss_times)):.3f} s"
            lost = corrupt + errors + silent + gap_frames
            rate = info.frame_rate
            end_time = None if prev_pts is None else max(prev_pts * info.time_base, self.media_time(
                prev_pts, info.time_base)) + (1 / rate if rate else 0)
            # an AVI's frame count counts ticks: its empty chunks and N-VOPs, which hold no frame, too
            empty = self._empty_ticks(prev_pts) if clock is not None else 0
            # an MP4's frame count counts the packets its edit list discards too (after a seek: the index's, all before)
            gives = self.packet_index().shown if seek is not None else None
            no_frame = no_frame if seek is None else 0 if gives is None else int((~gives).sum())
            # and an MP4's its N-VOPs (in an AVI they are among the empty ticks): 3 N-VOPs of 12 read "truncated"
            if clock is not None:
                not_coded = 0
            elif seek is not None:
                not_coded = self.packet_index().not_coded
            truncated, expected = judge_truncation(
                info.promise, frames=index + lost + empty + no_frame + not_coded, end_time=end_time, rate=rate,
                limit_frames=end if isinstance(end, int) else None,
                limit_time=None if end is None or isinstance(end, int) else Fraction(end))
            truncated = truncated or demux_error is not None
            if truncated:  # the packets cut off at the end are the truncation, not frames lost besides it
                if cut_tail and corrupt + errors == 1:  # the frame the file ends inside is the truncation too
                    corrupt, errors, first_loss = 0, 0, None
                lost = corrupt + errors + gap_frames
            else:  # raw H.264/HEVC: no index, no timestamps; the pictures its bytes hold tell (video.damage)
                pictures = self._pictures_in_bytes
                lost = lost if pictures is None or pictures < index else pictures - index
                expected = expected if pictures is None else pictures
        stats = ReadStats(
            path=self.path, frames=yielded, decoded=index, lost_frames=lost, seeked=seek is not None,
            reached_end=reached_end, truncated=truncated, expected=expected,
            estimated=info.promise is not None and info.promise.frames is None and info.promise.seconds is not None,
            demux_error=demux_error, first_loss=first_loss, gap_frames=gap_frames,
            cut_packet=info.promise.cut_packet if truncated and info.promise is not None else None)
        line = stats.report()
        if notice is not None:
            # a jump is told by the run that yields the frame after it (batch segments: once)
            told = [(j, at) for j, at in met if yielded and first_yielded <= at < first_yielded + yielded]
            if told:
                j, at = told[0]
                notice(jump_notice(stats.name, j, at, lambda t: self.media_time(t, info.time_base),
                                   more=len(told) - 1))
            if line:
                notice(line)
        return stats

    def _packet_gaps(self, shown: list[int | None], threshold: int) -> tuple[int, int | None]:
        """``damage.timestamp_gaps`` of the packet index's presentation times (mended) from the first to the last of
        the frame times ``shown`` (a run's frames, :data:`GAP_FORMATS`): (frames whose packet is missing, where the
        first would be); (0, None) unless every packet has a time (MPEG-PS times packs, not frames)."""
        index = self.packet_index()
        times = [p for p in shown if p is not None]
        if not times or not index.has_all_pts:
            return 0, None
        lo, hi = min(times), max(times)
        pts = index.presentation_pts()
        return timestamp_gaps(pts[bisect.bisect_left(pts, lo):bisect.bisect_right(pts, hi)], max_step=threshold)

    def _empty_ticks(self, upto: int | None) -> int:
        """In an AVI (timed in decode order): the ticks of the stream up to the end of the frame at tick ``upto`` (the
        last read; a frame lasting the packets' median step) that no packet of the packet index holds — empty chunks
        (frames an encoder dropped, the ticks between the frames of a variable rate) and N-VOPs. The header's frame
        count counts ticks: a 6-frame variable-rate AVI in 1/1000 ticks said 330 frames, and was reported truncated."""
        return empty_ticks(self.packet_index().presentation_pts(), upto) if upto is not None else 0

    def _first_missing(self, good: list[int], lost: int, lower: Fraction | None) -> Fraction | None:
        """The media time of the first frame the packet index times (from ``lower`` on) that no whole decoded frame
        (timestamps ``good``) has: where a run that lost frames lost the first. Not the time of the packet the decoder
        raised at: with frame threads that is a later one, and with B-frames another frame's. None when the index has
        no times, or when more frames before the last decoded one are missing than ``lost`` (the times disagree)."""
        times = self.packet_index().media_times(self.info.start_time)
        if not times or not good:
            return None
        have = {self.media_time(p, self.info.time_base) for p in good}
        last = max(have)
        missing = [t for t in times if t not in have and (lower is None or t >= lower)]
        if not missing or sum(t < last for t in missing) > lost:
            return None
        return missing[0]

    def _jump(self, k: int, raw: int, raw_prev: int) -> Jump | None:
        """The ``k``-th jump of the packet index (whose offsets the copied streams take too) when the frame the file
        times ``raw``, met after one timed ``raw_prev``, is where it lands: nearer the first frame after that jump
        than the frame before it. None otherwise: the packets' decode times show no such join, so the frame's time
        is damage — in MPEG-TS with B-frames the parser merges a corrupt packet with the next, and the decoder gives
        a frame the time of a picture decoded before it (0.12 s back) — and the frame is timed as one without a
        timestamp (``fill_times``), where the gap it leaves counts as lost."""
        jumps = self._jumps()
        if k < len(jumps) and abs(raw - jumps[k].raw) < abs(raw - raw_prev):
            return jumps[k]
        return None


CONCEALING_DECODERS = frozenset({
    "h264", "mpeg4", "h263", "h263p", "flv", "h261", "msmpeg4v1", "msmpeg4v2", "msmpeg4", "wmv1", "wmv2", "wmv3",
    "vc1", "mpeg1video", "mpeg2video", "rv10", "rv20", "rv30", "rv40", "svq3"})
"""FFmpeg's decoders with error concealment (libavcodec's ``error_resilience``): they decode a damaged picture with its
lost parts guessed and flag it corrupt (``frame.is_corrupt``), which the reader drops and counts as lost. With codec
frame threads the flags (and the guesses) depend on the threads' timing — a frame thread hands a picture on before
its concealment has run — so these decode on slice threads only (concealment runs once all of a picture's slices are
in, as on one thread): every run drops and counts the same frames, those a plain decode flags. Slice threads pay on
streams cut in slices (MPEG-2 on DVD: a slice per macroblock row; broadcast and Blu-ray H.264); a one-slice stream
decodes as on one thread (720p H.264 at over 300 fps on a 2-core machine, far ahead of any model)."""

SLICE_CHECKED_DECODERS = frozenset({"vp8"})
"""Decoders that refuse damaged data (an error at the packet, and at the frames predicted from it until the next
keyframe) only when they decode on slice threads, two or more: FFmpeg's native VP8 decoder on one thread or on frame
threads decodes a packet overwritten with noise without a word and gives the garbage as frames (24 of 24 frames of a
128x96 clip, 0 errors, whatever packet), on slice threads it raised at each damaged packet (0 clean files flagged).
So the reader decodes them on at least two slice threads (clean 640x360 VP8 on 2 cores: 3200-3500 fps against
2900-3450 on frame threads). Not libvpx (a VP8 alpha track), which gives no signal either way, nor HEVC or VP9,
which give none on any threads for bytes overwritten inside a packet (``video.damage``)."""

HELD_BYTES = 256 << 20
"""Decoded frames without a timestamp are held back, up to this many bytes of pictures (and between 8 and 64 of
them), until a later frame with a timestamp says where they lie."""


def held_frames(layouts) -> int:
    """How many frames of these plane layouts :func:`fill_times` may hold (:data:`HELD_BYTES`)."""
    size = sum(int(np.prod(p.shape)) * np.dtype(p.dtype).itemsize for p in layouts)
    return max(8, min(64, HELD_BYTES // max(1, size)))


def _ps_timestamps(packets):
    """MPEG-PS packets, each with only its own frame's timestamps: of two packets in a row (decode order) with the
    same pts and dts, the first gets none. FFmpeg's parser gives a pack's timestamps to the frame that starts in
    it and now and then to the frame before it too (the one ending there); with B-frames that one may show first,
    and ``fill_times`` would keep it and drop the right one (x264 in ``.mpg``: up to 46 of 48 frames off the
    grid)."""
    held = None
    for pkt in packets:
        if held is not None:
            if held.pts is not None and pkt.size and (pkt.pts, pkt.dts) == (held.pts, held.dts):
                held.pts = held.dts = None
            yield held
        held = pkt
    if held is not None:
        yield held


def fill_times(items, step: int, hold: int = 8, *, repeats_unknown: bool = False):
    """``(frame, pts, extra)`` in presentation order, with every ``pts`` that is None filled in (a generator).

    MPEG-PS gives a timestamp only to the packs in which a frame starts (small frames share one: H.264 in ``.mpg``
    leaves most frames without), raw H.264/HEVC gives none. A frame without one lies between the frames around it
    that have one: the frames held between two timestamps are spread evenly between them (a constant frame rate
    gives its own times back, whichever frames carried one), and those after the last one (or more than ``hold``
    in a row) follow it by the last such spacing, else by ``step`` (a frame of the stream's rate); frames before
    the first timestamp count back from it by that step; with none at all, they count from 0. A timestamp that does
    not come after the last one given is passed on as it is (the caller judges a stream that goes back), unless
    ``repeats_unknown``: MPEG-PS's demuxer gives a pack's timestamp to two frames now and then (the one starting in
    it and a later one), so there it counts as none."""
    last: int | None = None  # the last timestamp given
    spacing: Fraction | None = None  # per frame, between the last two timestamps the file gave
    held: list = []

    def after(n: int) -> Iterator:  # the first n held frames, following ``last`` (or counting from 0)
        nonlocal last
        per = step if spacing is None else spacing  # a spacing is never 0: it is set only where the times increase
        base, first = (0, 0) if last is None else (last, 1)
        out = [(frame, base + round(per * (k + first)), extra) for k, (frame, _, extra) in enumerate(held[:n])]
        del held[:n]
        if out:
            last = out[-1][1]
        yield from out

    for item in items:
        frame, pts, extra = item
        if repeats_unknown and pts is not None and last is not None and pts <= last:
            item = (frame, None, extra)
            pts = None
        if pts is None:
            held.append(item)
            if len(held) > hold:
                yield from after(1)
            continue
        if held and last is None:  # the stream's first frames have none: count back from this one, by a step
            n = len(held)  # (no spacing yet: it needs two timestamps)
            for k, (f, _, x) in enumerate(held):
                yield f, pts - step * (n - k), x
            held.clear()
        elif held and pts > last:
            per = Fraction(pts - last, len(held) + 1)
            for k, (f, _, x) in enumerate(held, 1):
                yield f, last + round(per * k), x
            held.clear()
            spacing = per
        elif held:
            yield from after(len(held))
        elif last is not None and pts > last:
            spacing = Fraction(pts - last)
        last = pts
        yield frame, pts, extra
    yield from after(len(held))


class FrameRun:
    """The iterator ``InputVideo.frames()`` returns: :class:`DecodedFrame` in presentation order, then
    ``stats`` (a :class:`~esrgan_video.video.damage.ReadStats`) once it has ended; None before, and when the
    consumer stopped early (``close()``)."""

    def __init__(self, gen) -> None:
        self._gen = gen
        self.stats: ReadStats | None = None

    def __iter__(self) -> FrameRun:
        return self

    def __next__(self) -> DecodedFrame:
        try:
            return next(self._gen)
        except StopIteration as e:
            if e.value is not None:
                self.stats = e.value
            raise StopIteration from None

    def close(self) -> None:
        """Stop decoding (closes the demuxer)."""
        self._gen.close()


class _SeekMiss(Exception):
    """A seek did not land where decoding must start; the caller decodes from the beginning instead."""


@dataclass(frozen=True)
class _SeekTarget:
    """Where ``frames(start=…)`` seeks: media times in seconds and the index of the first frame kept."""

    start: Fraction
    """The requested start (seek to the keyframe at or before it)."""
    first_time: Fraction
    """The time of the first frame at or after ``start``, as the packet index says; decoding checks it."""
    first_index: int
    """That frame's index among all frames of the stream."""


class _DecodeOrderClock:
    """Presentation timestamps for a container that times packets in decode order (AVI).

    Every packet sent to the decoder adds its timestamp (``dts``: the packet's place in decode order); every
    frame that comes out — in presentation order — takes the smallest one not yet taken of its own GOP (those of the
    packets from the keyframe at or before its packet on), so the frames get the packets' timestamps in order whatever
    the B-frame reordering (a closed GOP shows its own packets' places). A packet that gives no frame would leave its
    timestamp behind and shift every later frame by one, so: a packet the decoder refuses gives its own back
    (:meth:`refused`), and a frame never takes one of an earlier GOP — a loss shifts at most the frames of its own
    GOP. The frame's packet is found by its ``pts``, which the decoder carries over. A GOP starts at a packet flagged
    a keyframe or, in H.264, at one whose bytes begin an IDR picture or its SPS: the parser flags a keyframe by its
    slices, and an IDR packet corrupt past its first NAL header is flagged no more. :meth:`in_order` holds a few
    frames back to give them in timestamp order: with such an IDR lost, the decoder gives a picture of the new GOP
    before the old GOP's last one.
    """

    REORDER = 2
    """Frames :meth:`in_order` holds back: a frame that comes out this many frames late still takes its place."""

    def __init__(self, codec: str | None = None) -> None:
        self._free: list[int] = []
        self._gop_of: dict[int, int] = {}  # packet pts -> the timestamp of the keyframe at or before it
        self._gop: int | None = None
        self._starts: list[int] = []  # the GOPs' first timestamps, in order
        self._idr_bytes = codec == "h264"

    def sent(self, pkt) -> None:
        ts = pkt.dts if pkt.dts is not None else pkt.pts
        if ts is None:
            return
        if pkt.is_keyframe or self._idr_bytes and _h264_starts_gop(bytes(memoryview(pkt)[:64])):
            self._gop = ts
            if not self._starts or ts > self._starts[-1]:
                self._starts.append(ts)
        heapq.heappush(self._free, ts)
        if pkt.pts is not None and self._gop is not None:
            self._gop_of[pkt.pts] = self._gop

    def refused(self, pkt) -> None:
        ts = pkt.dts if pkt.dts is not None else pkt.pts
        if ts in self._free:
            self._free.remove(ts)
            heapq.heapify(self._free)
        self._gop_of.pop(pkt.pts, None)

    def take(self, frame) -> int | None:
        gop = self._gop_of.pop(frame.pts, None) if frame.pts is not None else None
        if gop is None:
            return heapq.heappop(self._free) if self._free else None
        k = bisect.bisect_left(self._starts, gop)
        floor = self._starts[k - 1] if k else gop  # the GOP before may still have a late frame to give
        while self._free and self._free[0] < floor:
            heapq.heappop(self._free)  # its packet gave no frame
        # the smallest free one, unless the GOP before left some: then the smallest of its own GOP (if any)
        own = min((t for t in self._free if t >= gop), default=None) if self._free and self._free[0] < gop else None
        if own is None:
            return heapq.heappop(self._free) if self._free else None
        self._free.remove(own)
        heapq.heapify(self._free)
        return own

    def in_order(self, frames) -> Iterator[tuple]:
        """``(frame, timestamp)`` for each decoded frame (:meth:`take`), sorted over :data:`REORDER` frames held back; a
        frame with none comes after those held."""
        held: list[tuple[int, int, object]] = []

        def release(keep: int) -> Iterator[tuple]:  # the earliest held frames, until ``keep`` are left
            while len(held) > keep:
                t, _, f = heapq.heappop(held)
                yield f, t

        for n, frame in enumerate(frames):
            ts = self.take(frame)
            if ts is None:
                yield from release(0)
                yield frame, None
                continue
            heapq.heappush(held, (ts, n, frame))
            yield from release(self.REORDER)
        yield from release(0)


def _h264_starts_gop(data: bytes) -> bool:
    """Whether the start of an H.264 packet (Annex B: its first bytes) begins an SPS or an IDR slice: its first NAL
    unit after a start code."""
    at = data.find(b"\x00\x00\x01")
    return at >= 0 and at + 3 < len(data) and data[at + 3] & 0x1F in (5, 7)


def _when(pkt, start: Fraction) -> str:
    """The media time (from the container's ``start``) of the packet the decoder raised at, for a loss the packet
    index cannot place."""
    ts = pkt.pts if pkt.pts is not None else pkt.dts
    if ts is None or pkt.time_base is None:
        return "an unknown time"
    return f"{float(ts * pkt.time_base - start):.3f} s"


def open_input(path: str | os.PathLike, *, notice: Callable[[str], None] | None = None,
               exact_count: bool = True) -> InputVideo:
    """Open ``path`` and probe its video stream (decoding the first frame for its tags and side data).

    Opening demuxes no more than the first frame: an AVI's or an MPEG-4 Part 2 stream's ``frame_count`` is counted
    by a demux pass over the whole file (the packet index, cached per file) when first asked (:class:`FrameCount`).
    ``exact_count=False``: it stays the header's (N-VOPs and empty chunks counted) even then.

    Raises InputError, naming the file, when it is missing, a named pipe or a device (never opened: a pipe would wait
    for a writer), empty, not media, has no video stream, has a video codec this FFmpeg cannot decode, or a pixel
    format the pipeline does not support.
    """
    if str(path) == "-" and not Path("-").exists():
        raise InputError("-: reading from standard input is not supported (the input is read more than once: its "
                         "packet index, then its frames); save it to a file first")
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a video file")
    check_regular_input(path)  # before any open: a named pipe's would wait for a writer
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes)")
    try:
        container = open_media(path)
    except PermissionError as e:
        raise InputError(f"{path}: cannot be read (permission denied)") from e
    except (av.InvalidDataError, av.error.EOFError) as e:
        cut = avi_truncated(path)
        if cut is not None:
            raise InputError(f"{path}: the AVI file is truncated inside its header ({cut[0]} of {cut[1]} bytes); "
                             "there is nothing FFmpeg can read") from e
        # FFmpeg's reason, not its error's text: that repeats the path and FFmpeg's error number
        raise InputError(f"{path}: not a media file FFmpeg can read (or it is damaged: {e.strerror or e})") from e
    except (av.FFmpegError, OSError) as e:
        raise InputError(f"{path}: cannot be opened: {e.strerror or e}") from e
    with container:
        return InputVideo(path, _probe(path, container, exact_count=exact_count), notice=notice)


def empty_ticks(pts: list[int], upto: int) -> int:
    """The ticks up to the end of the frame at tick ``upto`` (a frame lasting the median step of ``pts``, the packet
    index's sorted presentation timestamps) that no timestamp of ``pts`` holds: an AVI's empty chunks and N-VOPs."""
    if not pts:
        return 0
    return max(0, upto + median_step(pts) - bisect.bisect_right(pts, upto))


def _rates(container, st, ctx) -> tuple[Fraction | None, Fraction | None, str | None]:
    """The video stream's (average, guessed) frame rates, and why they are a guess when they are
    (``VideoInfo.rate_guess``).

    A raw H.264/HEVC stream: FFmpeg's raw demuxer times every stream at its framerate option (25 fps) whatever the
    stream says (a 29.97 fps stream read back at 25); the decoder has the SPS's VUI timing, so that rate, after the
    first frame, times the frames. MPEG-PS where the demuxer saw too few timestamps to measure a rate (an x264
    stream of 12 frames in one pack: one timestamp) guesses twice the codec's (2000 fps, frames 0.5 ms apart); the
    codec's own rate stands for it. Either way a codec rate of :data:`SPS_TICK_RATE` or more (x264's time base) or
    none says nothing: FFmpeg's default 25 fps is taken, and said to be a guess."""
    average, guessed = _frac(st.average_rate), _frac(st.guessed_rate)
    if demuxer_in(container.format.name, ("m4v",)) and guessed and guessed < SPS_TICK_RATE:
        # a raw MPEG-4 Part 2 stream: the demuxer's average is its framerate option (25 fps) whatever the stream
        # says, and the decoder's framerate is the VOL's time resolution (30000 for 29.97 fps); the parser times
        # the frames by their VOPs' time increments, and that rate is FFmpeg's guess (a 29.97 fps .m4v said 25)
        return guessed, guessed, None
    raw = demuxer_in(container.format.name, RAW_STREAM_FORMATS)
    unmeasured = demuxer_in(container.format.name, PROGRAM_STREAM_FORMATS) and average is None and guessed is not None \
        and guessed >= SPS_TICK_RATE
    if not (raw or unmeasured):
        return average, guessed, None
    said = _frac(ctx.framerate)
    if said and said < SPS_TICK_RATE:
        return said, said, None
    why = (f"its timing, {float(said):g} fps, is a time base's ticks" if said else "no VUI timing in its SPS")
    if unmeasured:
        why += ", and the file times too few of its frames to measure one"
    return GUESSED_RATE, GUESSED_RATE, why


def _undecodable(path: Path, container, short: bool, read: int, otherwise: str) -> str:
    """The one line for a file whose first video frame does not decode: a truncation when the file is cut short
    before that frame is whole (its header declares more bytes, it ends inside a transport packet, or the demuxer
    read a packet short), that no video packet could be read at all (``read`` = 0), else ``otherwise``."""
    size = path.stat().st_size
    cut = avi_truncated(path)
    packet = cut_transport_packet(path) if demuxer_in(container.format.name, ("mpegts",)) else None
    if cut is not None:
        why = f"{cut[0]} of the {cut[1]} bytes its header declares"
    elif packet:
        why = f"it ends inside a {packet}-byte transport packet"
    elif short:
        why = f"it ends at byte {size}, inside that frame's packet"
    elif not read:
        return (f"{path}: the demuxer found no video packet in the file's {size} bytes (the file is truncated or "
                "damaged before its first video frame); there is nothing to decode")
    else:
        return f"{path}: {otherwise}"
    return f"{path}: the file is truncated before its first complete video frame ({why}); there is nothing to decode"


def _read_as_text() -> str:
    """The formats read as supported ones, from ``frames.pixel_formats.READ_AS`` (and ``read_format``'s see-through
    variant): ``uyvy422 and yuyv422 (as yuv422p), pal8 (as rgb24/rgba)``."""
    groups: dict[str, list[str]] = {}
    for name in READ_AS:
        targets = dict.fromkeys((read_format(name), read_format(name, see_through=True)))
        groups.setdefault("/".join(targets), []).append(name)
    return ", ".join(f"{' and '.join(names)} (as {target})" for target, names in groups.items())


def _probe(path: Path, container, *, exact_count: bool = True) -> VideoInfo:
    st = pick_video_stream(path, container)
    ctx = st.codec_context
    if ctx is None or ctx.name is None:
        raise InputError(f"{path}: the video codec cannot be decoded by this FFmpeg build")
    # the decoder the reads use (libvpx for a VP8/VP9 alpha track, whose alpha FFmpeg's own vp8/vp9 drop): the first
    # frame's format is the stream's read format; ``ctx`` keeps the stream's facts (codec, tags, side data)
    dec = video_decoder(st)
    dec.thread_count = 1  # one frame wanted; and which frames a concealing decoder flags corrupt is then the reads'
    first = None
    short = False  # a packet the demuxer read short: flagged corrupt, and the file ends where it does
    size = path.stat().st_size
    read = 0  # video packets the demuxer gave
    # The first frame decoded whole, past packets the decoder refuses and frames it flags corrupt (the read drops and
    # reports those): a corrupt first packet is damage, not a file that cannot be read, if anything after it decodes.
    error: av.FFmpegError | None = None  # the last packet refused
    refused = corrupt = 0  # packets refused, frames flagged corrupt
    # Packets the decoder drops whole (an MP4 edit list's discarded ones, an open GOP's leading pictures) show before
    # the first frame that decodes, so all come before it: the header's frame count, which counts them, less those
    drops, no_frame = DecoderDrops(leading=not decode_order_timestamps(container.format.name)), 0
    try:
        for pkt in container.demux(st):
            read += bool(pkt.size)
            no_frame += bool(pkt.size) and drops.drops(pkt)
            short = short or bool(pkt.size and pkt.is_corrupt and pkt.pos is not None and pkt.pos >= 0
                                  and pkt.pos + pkt.size + 16 >= size)
            try:
                for frame in dec.decode(pkt):
                    if not frame.is_corrupt:
                        first = frame
                        break
                    corrupt += 1
            except av.FFmpegError as e:
                error = e
                refused += 1
            if first is not None:
                break
        if first is None:
            first = next((f for f in dec.decode(None) if not f.is_corrupt), None)
    except av.FFmpegError as e:  # the demuxer stopped, or the flush failed
        error = error or e
    if first is None:
        why = (f"the video stream cannot be decoded: none of its frames decodes whole ({corrupt} decoded corrupt, "
               f"{refused} packet(s) refused)" if corrupt
               else "the video stream has no decodable frame" if error is None
               else f"the video stream cannot be decoded ({error})")
        raise InputError(_undecodable(path, container, short, read, why)) from error
    source_pix_fmt = first.format.name
    clear = stream_see_through(path, st.index, first, demuxer=container.format.name)  # one picture: decoded once
    pix_fmt = read_format(source_pix_fmt, see_through=clear)
    try:
        pf = pixel_format(pix_fmt if pix_fmt is not None else source_pix_fmt)
    except ValueError as e:
        raise InputError(f"{path}: {e}; read as those: {_read_as_text()}") from e

    def tag(frame_value, stream_value):
        return frame_value if frame_value not in (None, 0, 2) else stream_value

    rng = Range.from_ffmpeg(first.color_range or ctx.color_range)
    full_range = None if rng is None else rng is Range.FULL
    if pf.full_range or pf.family == "rgb":
        full_range = True
    matrix = tag(first.colorspace, ctx.colorspace)
    siting = ChromaLocation.from_ffmpeg(first.chroma_location or ctx.chroma_sample_location)
    color = _color_spec(
        # FFmpeg's 0 (RGB) on a YUV stream is an untagged default, not the identity matrix
        matrix=matrix if matrix not in (None, 0) or pf.family == "rgb" else Matrix.UNSPECIFIED,
        primaries=tag(first.color_primaries, ctx.color_primaries) or Primaries.UNSPECIFIED,
        transfer=tag(first.color_trc, ctx.color_trc) or Transfer.UNSPECIFIED,
        full_range=full_range,
        chroma_location=None if siting is None else siting.ffmpeg_name,
    )
    coded = ctx.coded_side_data
    decoded = dec.decoded_side_data  # what decoding the first frame set (the decoder the reads use)
    # PyAV 19 frees a side-data entry's metadata dictionary with its Python wrapper, and FFmpeg again with the frame
    # (a segfault); of the decoders only PNG's sets one (its ICC profile's name): an APNG with an iCCP chunk crashed
    frame_sd = {} if ctx.name in ("png", "apng") else {t: bytes(sd) for t, sd in first.side_data.items()}
    from av.sidedata.sidedata import Type

    def side(kind: Type, coded_key: str) -> bytes | None:
        return frame_sd.get(kind) or decoded.get(kind) or coded.get(coded_key)

    hdr = HdrMetadata.from_side_data(side(Type.MASTERING_DISPLAY_METADATA, "mastering_display_metadata"),
                                     side(Type.CONTENT_LIGHT_LEVEL, "content_light_level"))
    sides = side_data_kinds({t.name: data for t, data in {**decoded, **frame_sd}.items()}, coded)
    stereo = stereo_mode(side(Type.STEREO3D, "stereo_3d"))
    matrix_bytes = coded.get("display_matrix") or frame_sd.get(Type.DISPLAYMATRIX)
    dmatrix = display_matrix_from_bytes(matrix_bytes)
    field_order = FIELD_ORDERS.get(ctx.field_order, "unknown")
    interlaced = field_order in ("tt", "bb", "tb", "bt") or bool(first.interlaced_frame)
    start = Fraction(container.start_time, 1_000_000) if container.start_time is not None else Fraction(0)
    start = media_origin(start, first.pts, Fraction(st.time_base) if st.time_base else Fraction(0),
                         container.format.name)  # the first frame's time where earlier (packet_index.media_origin)
    duration = Fraction(container.duration, 1_000_000) if container.duration else None
    average_rate, guessed_rate, rate_guess = _rates(container, st, ctx)
    if duration is None and st.duration:
        duration = st.duration * Fraction(st.time_base)
    header = max(0, st.frames - no_frame) if st.frames else None
    # an AVI's header counts ticks, an MPEG-4 Part 2 stream's its N-VOPs: the packet index counts, when asked
    indexed = exact_count and bool(header) and (decode_order_timestamps(container.format.name)
                                                or mpeg4_vops(st) is not None)
    return VideoInfo(
        path=path,
        container=container.format.name,
        stream_index=st.index,
        codec=ctx.name,
        width=first.width,
        height=first.height,
        pix_fmt=pix_fmt,
        time_base=Fraction(st.time_base),
        average_rate=average_rate,
        guessed_rate=guessed_rate,
        start_time=start,
        duration=duration,
        counted=FrameCount(header, path if indexed else None, st.index),
        color=color,
        field_order=field_order,
        interlaced=interlaced,
        hdr=hdr,
        display_matrix=dmatrix,
        rotation=rotation_from_matrix(dmatrix),
        sample_aspect_ratio=_frac(st.sample_aspect_ratio),
        metadata=clean_metadata(dict(container.metadata)),
        stream_metadata=clean_metadata(dict(st.metadata)),
        chapters=tuple(container.chapters()),
        disposition=int(st.disposition),
        promise=stream_promise(st, container),
        source_pix_fmt=source_pix_fmt if source_pix_fmt != pix_fmt else None,
        rate_guess=rate_guess,
        closed_captions=Type.A53_CC in frame_sd,
        side_data=sides,
        stereo_mode=stereo,
    )
