"""Write the upscaled video: encode planes, copy every other stream, keep timestamps, rename when complete.

    with open_input("in.mkv") as inp, OutputVideo("out.mkv", template=inp, size=(256, 192),
                                                  color=spec) as out:
        for frame in inp.frames():
            out.write(planes_for(frame), frame.pts)      # presentation order, input time base

The file is written beside the target under a hidden temporary name that keeps the extension
(``.out.<host>.<pid>.partial.mkv``, see ``video.partials``) and renamed over the target by ``close()``
(``os.replace``, atomic on one file system). ``abort()`` — also what an exception inside ``with`` does —
removes it unless ``keep_partial``; a later writer of the same target on the same machine removes temporary
files whose process is gone (killed with SIGKILL, or kept with ``keep_partial``). Audio, subtitle, attachment and
data streams are copied packet for packet (no re-encode) from a second demuxer on the input,
interleaved with the encoded video by time, so memory stays bounded (``video.stream_copy``, the
copier the batch join uses too; text subtitles become ``mov_text`` in MP4/MOV). Timestamps: frames keep
their input pts in the input stream's time base; the container may store them coarser (Matroska: 1 ms),
which is then the only rounding. An encoder that refuses that time base (MPEG-1/2 take ``1/rate`` for a rate of
their table only, MPEG-4 Part 2 no denominator over 65535) is given the stream's frame rate and frame numbers, and
its packets get the frames' own timestamps back (:class:`EncoderClock`); a rate it cannot carry, or frames not
evenly spaced, is refused in one line before the file is opened (:func:`encoder_rate`). Decode timestamps an
encoder got wrong are repaired before muxing (:class:`DtsRepair`: libx265 on encodes of one or two frames).

``dst="-"`` writes to standard output (``format`` is then required: ``matroska``, ``nut`` or
``yuv4mpegpipe``): no temporary file, nothing to rename; on an error the stream just ends.
"""

from __future__ import annotations

import bisect
import functools
import io
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import av
import numpy as np

from ..frames.color import ColorSpec
from ..errors import OptionError, OutputError
from ..files import cannot_create, check_output_place, link_target
from ..options import codec_for
from ..frames.colorspace import Matrix, Range
from ..frames.sizing import sar_storable
from ..frames.pixel_formats import pixel_format, plane_layouts
from .encoder_settings import EncoderSettings, deterministic_options, encoder_settings
from .frame_limits import frame_size_refusal
from .chatter import quiet_encoder_options
from .encoder_formats import (ENCODER_MAX_RATE, canonical_encoder, check_encoder_options, choose_pix_fmt, encoder_name,
                              encoder_opens, encoder_pix_fmts, encoder_reorders, muxer_options, time_base_opens,
                              written_back)
from .hdr10plus import HDR10PLUS_ENCODERS, hdr10plus_sei, hdr10plus_t35, hdr10plus_t35_available
from .metadata import CAPTION_ENCODERS, FIELD_ORDERS, with_captions, with_sei
from .partials import partial_path, remove_stale_partials
from .planes import frame_from_planes
from .side_data import side_data_lost, side_data_notice
from .reader import InputVideo
from .stream_copy import (StreamCopier, StreamSelection, advanced_timecodes, container_hint, container_label,
                          container_suggestion, copy_stream_facts, extension_muxer, mpegts_holds, shifted_chapters)

__all__ = ["DtsRepair", "EncoderClock", "OutputVideo", "PIPE_FORMATS", "cfr_rate", "check_avi_times", "check_output",
           "check_frame_size", "check_video", "container_suggestion", "encoder_rate", "input_cfr_rate", "output_format",
           "partial_path", "video_time_base"]


PIPE = "-"
"""The output name that means standard output."""
PIPE_FORMATS = ("matroska", "nut", "yuv4mpegpipe")
"""Containers that can be written to a pipe (no seeking back to finish a header or an index)."""
VIDEO_ONLY_FORMATS = ("yuv4mpegpipe",)
"""Containers that carry one raw video stream and nothing else."""


def output_format(dst: str | os.PathLike, format: str | None = None) -> str | None:
    """The FFmpeg muxer that writes ``dst``: ``format`` when given, else the one FFmpeg guesses from its
    extension (None for ``-`` or a name it knows no muxer for). Nothing is created."""
    if format:
        return format
    return extension_muxer(dst)


BITSTREAM_SAR_CODECS = frozenset({"h264", "hevc", "mpeg4", "mjpeg", "mpeg1video", "mpeg2video"})
"""Codecs (FFmpeg codec names) whose pictures carry their sample aspect ratio in the bitstream (H.264/HEVC VUI,
MPEG-4 Part 2 VOL, MPEG-1/2 sequence header, JFIF density): it reads back from any container."""
SAR_FIELD_MUXERS = frozenset({"mov", "mp4"})
"""Muxers that record the sample aspect ratio of the stream's codec parameters (``pasp``), which PyAV fills. Every
other muxer (Matroska, WebM, AVI, NUT, FLV, WebP, …) takes it from the stream itself, which PyAV never sets: a
VP8, VP9, AV1, FFV1, ProRes, UT Video, HuffYUV or raw video stream there reads back 0:1 or 1:1."""


def sar_kept(codec: str, container_format: str | None) -> bool:
    """Whether an output of encoder ``codec`` in muxer ``container_format`` keeps a sample aspect ratio when written
    through PyAV: ``frames.sizing.sar_storable``, and the codec carries its SAR in the bitstream
    (:data:`BITSTREAM_SAR_CODECS`) or the muxer records it from the codec parameters (:data:`SAR_FIELD_MUXERS`).
    A 72x48 SAR 32:27 clip of every codec the writer offers, in every container that holds it, read back so."""
    if not sar_storable(codec, container_format):
        return False
    if container_format in SAR_FIELD_MUXERS:
        return True
    name = canonical_encoder(codec)
    return name is None or name in BITSTREAM_SAR_CODECS  # an unknown encoder is refused elsewhere, in one line


IMAGE2_CODECS = {".png": "png", ".bmp": "bmp", ".jpg": "mjpeg", ".jpeg": "mjpeg", ".tif": "tiff", ".tiff": "tiff"}
"""The encoder of a one-picture file (FFmpeg's image2 muxer) by its extension: a one-frame video (or a one-frame
trim) into ``frame.png`` is a PNG without ``--codec png``, into ``frame.jpg`` a JPEG (full range, BT.601: JFIF's
colour, ``output_plan.plan_output``), into ``frame.tiff`` an RGB TIFF (``output_plan.output_pix_fmt``: TIFF's YUV
is what few readers show)."""


def output_codec(dst: str | os.PathLike, codec: str | None, format: str | None = None) -> str:
    """``codec``, or when it is None the usual encoder of ``dst``'s container (``options.codec_for``: libx264;
    libvpx-vp9 in WebM, …; a one-picture file's by its extension, :data:`IMAGE2_CODECS`)."""
    if codec is not None:
        return codec
    muxer = output_format(dst, format)
    if muxer == "image2" and Path(str(dst)).suffix.lower() in IMAGE2_CODECS:
        return IMAGE2_CODECS[Path(str(dst)).suffix.lower()]
    return codec_for(muxer)


@functools.lru_cache(maxsize=64)
def _encoder_opens(muxer: str, codec: str) -> bool:
    """Whether ``codec`` opens into a ``muxer`` file with a header written (a 64x64 probe into memory, in the first
    pixel format the encoder really opens: ``encoder_formats.encoder_opens``)."""
    fmts = encoder_pix_fmts(codec)
    pix_fmt = next((f for f in fmts if encoder_opens(codec, f)), fmts[0] if fmts else "yuv420p")
    try:
        with av.open(io.BytesIO(), "w", format=muxer) as probe:
            st = probe.add_stream(codec, rate=25, options=quiet_encoder_options(codec, {}, verbose=False))
            st.width, st.height = 64, 64
            st.pix_fmt = pix_fmt
            probe.start_encoding()
    except (ValueError, av.FFmpegError, OSError):
        return False
    return True


def check_output(dst: str | os.PathLike, codec: str, *, format: str | None = None,
                 frames: int | Callable[[], int] | None = None) -> str:
    """Refuse, with one line and before any work, an output that cannot be written: ``-`` without a pipe
    format (``OptionError``), a container FFmpeg does not know, or one that cannot hold ``codec``
    (``OutputError``, naming a container that can: e.g. prores_ks in MP4, FFV1 or SVT-AV1 in MOV).
    ``frames``: how many frames the output gets (or a function that counts them, called only where it matters),
    None where not known: more than one into a single still image's name (``x.png``, ``x.jpg``, ``x.tiff``: FFmpeg's
    image2 muxer, which failed at frame 2) is an ``OutputError`` naming what holds them.
    Returns the muxer's name. (An encoder that cannot open at all — no GPU for NVENC — is left for the writer
    to report.)"""
    encoder_pix_fmts(codec)  # an unknown encoder (or not a video one): OutputError naming it
    canonical = canonical_encoder(codec)  # a known encoder: encoder_pix_fmts said
    pipe = str(dst) == PIPE
    if pipe and format not in PIPE_FORMATS:
        raise OptionError("format", f"one of {', '.join(PIPE_FORMATS)} when writing to standard output (-)",
                          format)
    muxer = output_format(dst, format)
    if muxer is None:
        raise OutputError(f"{dst}: cannot tell the container from the file name; use an extension such as "
                          ".mkv or .mp4, or --format")
    if format is not None:
        try:
            av.open(io.BytesIO(), "w", format=format).close()
        except (ValueError, av.FFmpegError) as e:
            raise OptionError("format", "an FFmpeg container (muxer) name such as matroska, mp4 or nut",
                              format) from e
    if muxer == "image2" and frames is not None:
        n = frames() if callable(frames) else frames
        if n > 1:
            raise OutputError(f"{dst}: a {Path(str(dst)).suffix} file holds one picture, not a video of {n} frames; "
                              "write .apng, an animated .webp or a video container (.mkv, .mp4, …), or keep one "
                              "frame with --start and --end (esrgan-video preview IN --at T -o OUT.png compares "
                              "models on one)")
    if muxer == "gif":
        raise OutputError(f"{dst}: GIF holds 256 colours, which would throw the upscale away, and is not written; "
                          "write .apng (lossless, --codec apng) or .webp (--codec libwebp_anim), or make the GIF "
                          "from one with FFmpeg's palettegen/paletteuse")
    if muxer in VIDEO_ONLY_FORMATS:
        if codec not in ("rawvideo", "wrapped_avframe"):
            raise OptionError("codec", f"rawvideo for {muxer} (it carries uncompressed video)", codec)
        return muxer
    where = "standard output" if pipe else f"the {container_label(dst, muxer)} container"
    name = "-" if pipe else str(dst)
    try:
        with av.open(io.BytesIO(), "w", format=muxer) as probe:
            probe.add_stream(codec, rate=25)
    except ValueError as e:
        if "does not support" not in str(e):
            return muxer  # not a container question: the writer reports it
        hint = container_hint([canonical], "" if pipe else dst, muxer)
        raise OutputError(f"{name}: {where} cannot hold {codec} video{hint}") from e
    if muxer == "mpegts" and not mpegts_holds(canonical, m2ts=Path(str(dst)).suffix.lower() == ".m2ts"):
        # FFmpeg's MPEG-TS muxer takes any codec, and writes one it has no stream type for (VP9, AV1, FFV1, ProRes)
        # as private data: the file read back with no video at all
        hint = container_hint([canonical], "" if pipe else dst, muxer, fallback=".mkv")
        raise OutputError(f"{name}: {where} cannot hold {codec} video{hint}")
    if not _encoder_opens(muxer, codec) and any(_encoder_opens(m, codec) for m in ("matroska", "nut")):
        hint = container_hint([canonical], "" if pipe else dst, muxer, fallback=".mkv")
        raise OutputError(f"{name}: {where} cannot hold {codec} video{hint}")
    return muxer


MPEG_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(50),
              Fraction(60000, 1001), Fraction(60))
"""The frame rates of MPEG-1/2's frame_rate_code table (ISO/IEC 13818-2 Table 6-4): the ones tried, after the
stream's own, for an encoder that takes only ``1/rate`` as its time base."""


def _params(*parts: str | None) -> str:
    """An encoder's ``key=value:key=value`` parameter string (``x264-params``, ``svtav1-params``, …) of ``parts``, in
    order, the empty or absent ones left out."""
    return ":".join(filter(None, parts))


def _rate_text(rate: Fraction) -> str:
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def _cfr_hint(dst) -> str:
    """What helps where a constant-rate encoder refuses the frames: libx264, or (when the output is not one already)
    an .mkv or .mp4 output, whose usual codec is libx264 (.mpg's is MPEG-2)."""
    if Path(str(dst)).suffix.lower() in (".mkv", ".mp4"):
        return "use --codec libx264"
    return "use --codec libx264, or an .mkv or .mp4 output"


class EncoderClock:
    """Frame times for an encoder that refuses the stream's time base (MPEG-1/2 take ``1/rate`` for a rate of their
    table only, MPEG-4 Part 2 no denominator over 65535): the encoder is given ``1/rate`` and each frame's number on
    that grid, counted from the first frame written; its packets get back the exact timestamps of the stream's
    time base (the frames' own), so the file's times are what any other encoder gives. A frame off the grid (a
    variable frame rate) raises :class:`OutputError`; :meth:`OutputVideo` checks the input's frame times before
    the file is opened, so that is only met by frames given without a template. libx264, whose stream says its
    time base as the H.264 tick (the SPS VUI timing: 1/12800 read as 12800 fps), gets one too for a constant-rate
    input (:func:`cfr_rate`), not ``strict``: its frames never fail, their times stay exact either way."""

    def __init__(self, rate: Fraction, time_base: Fraction, *, dst: Path, codec: str, strict: bool = True) -> None:
        self.rate = Fraction(rate)
        """The frame rate the encoder is given (its time base is ``1/rate``)."""
        self.time_base = Fraction(time_base)
        self.step = 1 / (self.rate * self.time_base)  # stream ticks per frame (33 1/3 ms at 29.97 fps in 1/1000)
        self.strict = strict
        """True (MPEG-1/2): every frame in the next slot of the grid, else OutputError. False (libx264 given its
        frame rate, :func:`cfr_rate`): a frame takes its nearest slot after the last one (a lost frame leaves one
        empty); its packets still get its exact timestamp back."""
        self._dst, self._codec = dst, codec
        self._origin: int | None = None
        self._last: int | None = None
        self._ticks: dict[int, int] = {}  # frame number -> the frame's timestamp (ticks), till no packet needs it
        self._order: list[int] = []  # those frame numbers, increasing
        self._dropped = 0

    def frame(self, pts: int) -> int:
        """The encoder's timestamp (frame number) of a frame at ``pts`` (stream ticks, increasing)."""
        if self._origin is None:
            self._origin = pts
        k = 0 if self._last is None else self._last + 1
        if not self.strict:
            k = max(k, round((pts - self._origin) / self.step))
        elif abs(pts - self._origin - k * self.step) > 1:
            at = float(pts * self.time_base)
            raise OutputError(f"{self._dst}: {self._codec} holds a constant frame rate only and the frame at "
                              f"{at:.3f} s is not on its {_rate_text(self.rate)} fps grid; {_cfr_hint(self._dst)}")
        self._last = k
        self._ticks[k] = pts
        self._order.append(k)
        return k

    def ticks(self, k: int) -> int:
        """Stream ticks of the encoder's timestamp ``k``: the frame's own, else (decode times before the first
        frame) counted back from the first frame on the grid."""
        got = self._ticks.get(k)
        return got if got is not None else self._origin + round(k * self.step)

    def rebase(self, pkt: av.Packet) -> None:
        """``pkt``'s timestamps and duration from the encoder's time base to the stream's."""
        pts, dts, duration = pkt.pts, pkt.dts, pkt.duration
        pkt.time_base = self.time_base
        pkt.pts = None if pts is None else self.ticks(pts)
        pkt.dts = None if dts is None else self.ticks(dts)
        if duration:
            pkt.duration = round(duration * self.step)
        if dts is not None:  # decode times only increase: frames shown before this one are needed no more
            while self._dropped < len(self._order) and self._order[self._dropped] < dts:
                self._ticks.pop(self._order[self._dropped], None)
                self._dropped += 1
            if self._dropped > 4096:
                del self._order[:self._dropped]
                self._dropped = 0


def encoder_rate(codec: str, pix_fmt: str, time_base: Fraction, rates: Sequence[Fraction | None],
                 times: Sequence[Fraction] | None, *, dst, src) -> Fraction | None:
    """The frame rate to give an encoder that refuses ``time_base`` (:class:`EncoderClock`), None when it takes it.

    ``rates``: the stream's (average, guessed) rates. With ``times`` (the frames' media times, presentation order)
    the first of those rates, then of :data:`MPEG_RATES` (an average such as 2997/100 that is really 29.97), that
    the encoder opens with (``encoder_formats.time_base_opens`` of ``1/rate``; MPEG-1/2: of their table only) and
    on whose grid the frames follow one another, each within one tick of ``time_base`` of its slot (no slot left
    empty: MPEG-1/2 streams carry no time of their own, and a demuxer times the frames without one by the rate);
    without ``times`` (frames given without a template), the first of ``rates`` it opens with.
    Raises :class:`OutputError`, in one line naming ``dst``, when there is none: a rate the encoder cannot carry
    (7 or 12 fps in MPEG-2) or frames on no grid (a variable frame rate)."""
    if time_base_opens(codec, Fraction(time_base), pix_fmt):
        return None
    own = list(dict.fromkeys(Fraction(r) for r in rates if r))
    mpeg = canonical_encoder(codec) in ("mpeg1video", "mpeg2video")
    # FFmpeg's MPEG-2 encoder also opens at 12 or 75 fps (frame_rate_extension), which its Main Profile forbids
    allowed = (lambda r: r in MPEG_RATES) if mpeg else (lambda r: True)  # noqa: E731
    opens = [r for r in dict.fromkeys([*own, *(MPEG_RATES if times is not None else ())])
             if allowed(r) and time_base_opens(codec, 1 / r, pix_fmt)]
    if not opens and not any(time_base_opens(codec, 1 / r, pix_fmt) for r in MPEG_RATES):
        return None  # it opens at no rate (no such encoder here, options it needs): the writer reports its error

    ticks = common_ticks(times or ())  # once for every rate tried: integers, no Fraction operation per frame

    def fits(rate: Fraction) -> int | None:
        """None when the frames fill ``rate``'s grid one after another; else the index of the first that does not."""
        return first_off_grid(ticks, rate, time_base)

    for rate in opens:
        if fits(rate) is None:
            return rate
    name = Path(str(src)).name if src is not None else "the input"
    known = (f" (MPEG-1/2 know {', '.join(_rate_text(r) for r in MPEG_RATES[:-1])} and {_rate_text(MPEG_RATES[-1])}"
             " fps)") if mpeg else ""
    hint = _cfr_hint(dst)
    carried = [r for r in own if fits(r) is None]
    if carried or not own:
        rate = f"of {_rate_text(carried[0])} fps" if carried else "(unknown)"
        raise OutputError(f"{dst}: {codec} cannot carry {name}'s frame rate {rate}{known}; {hint}")
    bad = fits(own[0])
    raise OutputError(f"{dst}: {codec} holds a constant frame rate only and {name}'s frames are not evenly spaced "
                      f"(frame {bad} at {float(times[bad]):.3f} s); {hint}")


def common_ticks(times: Sequence[Fraction]) -> tuple[int, list[int]]:
    """``times`` (Fractions or ints) as integers over one denominator: ``(den, [t * den for t in times])``."""
    den = math.lcm(*{t.denominator for t in times}) if times else 1
    return den, [t.numerator * (den // t.denominator) for t in times]


def first_off_grid(ticks: tuple[int, list[int]], rate: Fraction, time_base: Fraction) -> int | None:
    """The index of the first of the times ``ticks`` (:func:`common_ticks`) more than ``time_base`` from its slot on
    ``rate``'s grid from the first (``|t[i] - t[0] - i / rate| > time_base``), None when every one is within it. In
    integers (multiplied by den × rate's numerator × time_base's denominator): on a 2-hour input the Fraction
    arithmetic per frame took 0.7 s a rate."""
    den, nums = ticks
    rate, tb = Fraction(rate), Fraction(time_base)
    a, b, c, e = rate.numerator, rate.denominator, tb.numerator, tb.denominator
    scale, step, limit = a * e, b * den * e, c * den * a
    first = nums[0] if nums else 0
    slot = 0  # i × step
    for i, n in enumerate(nums):
        if abs((n - first) * scale - slot) > limit:
            return i
        slot += step
    return None


ENCODER_RATE_PARAMS = {"libsvtav1": ("svtav1-params", lambda r: f"fps-num={r.numerator}:fps-denom={r.denominator}")}
"""How an encoder of ``encoder_formats.ENCODER_MAX_RATE`` is told a lower rate than its stream's: its own parameter."""


TIMEBASE_TICK_ENCODERS = ("libx264", "libx264rgb")
"""Encoders whose stream states their time base, not their frame rate, as its timing: x264 (with its default
``vfr-input``) writes the SPS VUI ``num_units_in_tick``/``time_scale`` from it, so an MP4's 1/12800 (Matroska's 1/1000,
MPEG-TS's 1/90000) reads back as 12800 (1000, 90000) fps wherever the container keeps no rate of its own (MPEG-PS,
raw ``.h264``) and in the decoder's ``framerate``. (libx265 writes its VUI from the frame rate it is given.)"""


def cfr_rate(pts: Sequence[int], time_base: Fraction, rates: Sequence[Fraction | None], *,
             frames: int | None = None) -> Fraction | None:
    """The frame rate of frames at ``pts`` (ticks of ``time_base``, sorted): the first of ``rates`` (the stream's
    average and guessed rates), then of :data:`MPEG_RATES`, on whose grid every frame lies within one tick of a
    slot, each in a later slot than the one before, the ``frames`` (default: one per ``pts``; more where some
    frames have no timestamp, as in MPEG-PS) filling at least half the slots from the first to the last (a lost
    frame leaves one empty; a fine grid such as the 2000 fps an MPEG-PS says for an x264 stream of time base
    1/1000 holds any frames, but leaves most slots empty); None when there is none (a variable frame rate) or fewer
    than two timestamps."""
    if len(pts) < 2:
        return None
    frames = len(pts) if frames is None else frames
    tb = Fraction(time_base)
    for rate in dict.fromkeys([*(Fraction(r) for r in rates if r), *MPEG_RATES]):
        # slot n of the grid is at pts[0] + n * step, step = num / den ticks (integers: no Fraction per frame)
        step = 1 / (rate * tb)
        num, den = step.numerator, step.denominator
        last, fits = -1, True
        for p in pts:
            d = (p - pts[0]) * den  # the frame's distance from the first, in 1/den ticks
            n = (2 * d + num) // (2 * num)  # the nearest slot
            if n <= last or abs(d - n * num) > den:
                fits = False
                break
            last = n
        if fits and 2 * frames >= last + 1:
            return rate
    return None


def input_cfr_rate(template: InputVideo | None, time_base: Fraction, rate: Fraction | None) -> Fraction | None:
    """The constant frame rate of ``template``'s video (:func:`cfr_rate` of the whole input's packet index, so every
    batch segment gets the same answer), None for a variable rate, no template, or a ``time_base`` other than the
    input's. ``rate``: the stream's rate, tried first (and the rate of a raw H.264/HEVC stream, timed by it)."""
    if template is None:
        return None
    index = template.packet_index()
    if Fraction(index.time_base) != Fraction(time_base):
        return None  # another time base was asked for: the frames' times are not the index's
    rates = [rate, template.info.guessed_rate]
    timed = sorted(set(index.presentation_pts()))  # MPEG-PS may give a pack's timestamp twice
    if len(timed) >= 2:  # MPEG-PS times some frames only: the reader spreads the others evenly between them
        return cfr_rate(timed, Fraction(time_base), rates, frames=index.frame_count)
    return Fraction(rate) if rate else None  # a raw H.264/HEVC stream: the reader times its frames by the rate


def video_time_base(muxer: str | None, template: InputVideo | None, time_base: Fraction,
                    rate: Fraction | None) -> Fraction:
    """The output video stream's time base, the writer's and a batch join's alike: ``time_base`` (the input's), but
    ``1/rate`` in an AVI of a constant-rate input (:func:`input_cfr_rate`). AVI has one index entry per tick of its
    stream time base, which its header gives as the rate: the input's 1/12800 (stored as 1/600) or 1/1000 said 600
    or 1000 fps, with empty entries between the frames, which other tools count as dropped frames. A variable
    rate keeps the input's ticks."""
    if muxer != "avi":
        return Fraction(time_base)
    cfr = input_cfr_rate(template, time_base, rate)
    return Fraction(time_base) if cfr is None else 1 / cfr


FIELD_FIRST = {"tt": "tff", "bt": "tff", "bb": "bff", "tb": "bff"}
"""Interlaced field orders (``metadata.FIELD_ORDERS``) → the field shown first, as x264 says it."""

FIELD_ORDER_CODES = {name: code for code, name in FIELD_ORDERS.items()}
"""``metadata.FIELD_ORDERS`` the other way: a field order's name → FFmpeg's number for it."""

FIELD_NAMES = {"tt": "top field first", "bb": "bottom field first", "tb": "top field coded first, bottom shown first",
               "bt": "bottom field coded first, top shown first", "progressive": "progressive", "unknown": "no order"}


def check_avi_times(dst: str | os.PathLike, muxer: str | None, codec: str, pix_fmt: str, codec_options: dict[str, str],
                    template: InputVideo | None, *, time_base: Fraction | None = None,
                    rate: Fraction | None = None) -> None:
    """Refuse (``OutputError``, one line) an AVI of a variable-rate input from an encoder that stores frames out of
    display order (``encoder_formats.encoder_reorders``: libx264's and libx265's B-frames; ``codec_options``: the
    encoder's, ``EncoderSettings.codec_options``). AVI keeps one time per packet, in decode order; a constant-rate
    input's packets are one tick (``1/rate``, :func:`video_time_base`) apart and the reader gives the frames their
    places back, but a variable rate's ticks are the decode times, which are not the frames' (a 0, 40, 90, 100, 250,
    290 ms clip read back 0, 40, 90, 130, 180, 190). ``time_base``/``rate``: the output stream's, the input's by
    default. The writer asks before it opens a file; a batch asks when it plans a file's segments (their join into
    AVI would write the same wrong times)."""
    if muxer != "avi" or template is None:
        return
    info = template.info
    time_base = info.time_base if time_base is None else time_base
    if input_cfr_rate(template, time_base, info.frame_rate if rate is None else rate) is not None:
        return
    if encoder_reorders(codec, pix_fmt, tuple(sorted(codec_options.items()))):
        raise OutputError(f"{dst}: AVI stores no presentation times and {template.path.name} has a variable "
                          f"frame rate, so {codec}'s B-frames would be written at wrong times; use .mkv or .mp4, "
                          "or --encoder-opt bf=0")


def check_frame_size(dst: str | os.PathLike, codec: str, pix_fmt: str, size: tuple[int, int],
                     settings: EncoderSettings) -> None:
    """Refuse (``OutputError``: ``dst``, the size, the encoder's limit and what to do) a frame ``size`` encoder
    ``codec`` cannot encode in ``pix_fmt`` with ``settings`` (``frame_limits.frame_size_refusal``: its smallest and
    largest sizes, the chroma multiple, libx265's crashing widths, FFmpeg's picture limit)."""
    why = frame_size_refusal(codec, pix_fmt, tuple(size), settings.codec_options())
    if why is not None:
        raise OutputError(f"{dst}: {why}")


def check_video(dst: str | os.PathLike, muxer: str | None, codec: str, pix_fmt: str, settings: EncoderSettings,
                template: InputVideo | None, *, size: tuple[int, int] | None, time_base: Fraction,
                rate: Fraction | None, t0: Fraction | None = None, t1: Fraction | None = None) -> EncoderClock | None:
    """Refuse (``OutputError``, one line naming ``dst``) video that encoder ``codec`` in ``muxer`` cannot be given,
    before any file is opened, and return its :class:`EncoderClock` (None: the stream's time base): a pixel format the
    encoder does not take, a frame ``size`` it cannot encode (:func:`check_frame_size`: outside its smallest and
    largest sizes, not a multiple of the format's chroma subsampling where it needs one), a frame rate or frame times
    the encoder cannot carry (:func:`encoder_rate`: MPEG-1/2 at 7 fps, a variable rate), an AVI of a variable-rate
    input with B-frames (:func:`check_avi_times`), RGB into a YUV-only container. ``settings``: what the encoder is
    given; ``template``: the input whose frames (those of the trim ``[t0, t1)``, media seconds) are written;
    ``time_base``/``rate``: the output stream's. ``size`` None: not known yet (the model's scale is not), its check
    left for the writer, which asks again with the real one. Pure but for FFmpeg's tables, its encoder probes and the
    input's packet index. ``OutputVideo`` asks it before it opens a file, ``upscale_video`` (through
    ``output_plan.check_plan``) before the model is looked up."""
    dst = Path(dst)
    accepted = encoder_pix_fmts(codec)
    if accepted and pix_fmt not in accepted:
        raise OutputError(f"encoder {codec} cannot write pixel format {pix_fmt}; it accepts: {', '.join(accepted)}")
    check_settings(settings, pix_fmt)
    if size is not None:
        check_frame_size(dst, codec, pix_fmt, size, settings)
    clock = _encoder_clock(dst, codec, pix_fmt, template, time_base=Fraction(time_base), rate=rate, t0=t0, t1=t1)
    check_avi_times(dst, muxer, codec, pix_fmt, settings.codec_options(), template, time_base=time_base, rate=rate)
    if muxer in VIDEO_ONLY_FORMATS and pixel_format(pix_fmt).family == "rgb":
        raise OutputError(f"{dst}: {muxer} carries YUV or grey video only, not {pix_fmt}; add --pix-fmt yuv444p")
    return clock


def check_settings(settings: EncoderSettings, pix_fmt: str | None = None) -> None:
    """Refuse an ``--encoder-opt`` value the encoder does not open with (``encoder_formats.check_encoder_options``:
    an ``OptionError``, exit 2), for ``pix_fmt`` video (None: any format it takes)."""
    given = dict(settings.options)
    others = {k: v for k, v in settings.codec_options().items() if k not in given}
    check_encoder_options(settings.codec, given, others, pix_fmt)


def _encoder_clock(dst: Path, codec: str, pix_fmt: str, template: InputVideo | None, *, time_base: Fraction,
                   rate: Fraction | None, t0: Fraction | None, t1: Fraction | None) -> EncoderClock | None:
    """The frame clock for an encoder that refuses the stream's time base (:func:`encoder_rate`); the input's
    frames (those of the trim ``[t0, t1)``) are checked against its grid here, before any file is opened."""
    if time_base_opens(codec, time_base, pix_fmt):
        # every encoder but MPEG-1/2 (and MPEG-4 Part 2 for a 1/90000): the stream's time base, but libx264's
        return _cfr_clock(dst, codec, pix_fmt, template, time_base=time_base, rate=rate)
    times, rates, src = None, [rate], None
    if template is not None:
        times = template.frame_times()  # sorted: the trim's [t0, t1) is a slice, as trim.selected_frames counts it
        lo = 0 if t0 is None else bisect.bisect_left(times, t0)
        times = times[lo:len(times) if t1 is None else bisect.bisect_left(times, t1)]
        rates, src = [rate, template.info.guessed_rate], template.path
    got = encoder_rate(codec, pix_fmt, time_base, rates, times, dst=dst, src=src)
    return None if got is None else EncoderClock(got, time_base, dst=dst, codec=codec)


def _cfr_clock(dst: Path, codec: str, pix_fmt: str, template: InputVideo | None, *, time_base: Fraction,
               rate: Fraction | None) -> EncoderClock | None:
    """libx264 (:data:`TIMEBASE_TICK_ENCODERS`) of a constant-rate input gets the rate as its time base, so its
    stream says the frame rate (SPS VUI timing 1/(2 x 25) instead of MP4's 1/(2 x 12800)); the packets keep the
    frames' own timestamps (a non-strict :class:`EncoderClock`). Judged on the whole input's frames (the
    packet index: one demux pass, no decoding), not the trim's, so every segment of a batch run gets the same
    SPS and joins. A variable frame rate, or frames given without a template: the stream's time base."""
    if template is None or encoder_name(codec) not in TIMEBASE_TICK_ENCODERS:
        return None
    cfr = input_cfr_rate(template, time_base, rate)
    if cfr is None or cfr * time_base == 1 or not time_base_opens(codec, 1 / cfr, pix_fmt):
        return None
    return EncoderClock(cfr, time_base, dst=dst, codec=codec, strict=False)


def field_options(codec: str, field_order: str | None, options: dict[str, str]) -> dict[str, str]:
    """``options`` for encoder ``codec`` writing frames of ``field_order`` (``VideoInfo.field_order``): libx264 flags
    its stream interlaced in that order (``fake-interlaced``: the frames are still coded as frames, the SPS and the
    pictures' pic_struct say the order), before the user's own ``x264-params``; others unchanged (a new dict)."""
    out = dict(options)
    first = FIELD_FIRST.get(field_order or "")
    if first and codec in TIMEBASE_TICK_ENCODERS:
        out["x264-params"] = _params(f"fake-interlaced=1:{first}=1", out.get("x264-params"))
    return out


@functools.lru_cache(maxsize=64)
def field_order_kept(muxer: str, codec: str, pix_fmt: str, field_order: str,
                     options: tuple[tuple[str, str], ...] = ()) -> str | None:
    """The field order (``metadata.FIELD_ORDERS``' name) a ``muxer`` file of encoder ``codec`` reads back with when
    the encoder is given ``field_order`` and ``options`` (:func:`field_options`'s): six 64×64 frames written into
    memory and decoded. Matroska keeps it for any codec (its FieldOrder), MP4/MOV for most (``fiel``), libx264 in its
    stream anywhere; MPEG-2 and MPEG-4 Part 2 take it only from frame flags PyAV cannot set, AVI and WebM have no
    place for it. None when the probe cannot be written (the encoder does not open here: the writer says so)."""
    def order(back: av.container.InputContainer) -> str:
        st = back.streams.video[0]
        next(back.decode(st), None)  # H.264's order is the decoder's, from the first picture
        return FIELD_ORDERS.get(st.codec_context.field_order, "unknown")
    try:  # six frames, not 1 or 2: libx265 leaves such encodes' decode times garbage (DtsRepair)
        return written_back(muxer, codec, pix_fmt, order, frames=6, size=(64, 64),
                            options=quiet_encoder_options(codec, dict(options), verbose=False),
                            field_order=FIELD_ORDER_CODES[field_order])
    except (av.FFmpegError, ValueError, OSError):
        return None


class DtsRepair:
    """Decode timestamps checked, and repaired where an encoder got them wrong, before the muxer sees them.

    libx265 (4.x) leaves ``m_bframeDelayTime`` uninitialised when an encode holds no more frames than its
    B-frame delay (1 or 2 frames with B-frames and b-pyramid on): the DTS of those packets is the PTS minus
    whatever was in memory, so the muxer refuses them (Matroska: ``pts (0) < dts (…)``, MP4: "Not yet
    implemented") or, worse, stores them — a 1- or 2-frame preview failed half the time. A DTS is wrong when it
    is missing, after its PTS, not after the previous DTS, or more than ``reach_seconds`` (an hour: no reorder
    delay comes near, even across the long gaps of variable-rate video) before its PTS; it then becomes its PTS
    when that is after the previous DTS, else one tick after the previous DTS (the encodes that hit this emit
    every packet at the flush, in display order, so DTS = PTS is right for them). Correct streams pass through
    untouched.
    """

    def __init__(self, time_base: Fraction, *, reach_seconds: int = 3600) -> None:
        self.reach = round(reach_seconds / Fraction(time_base))
        """How far (time-base ticks) a DTS may trail its PTS before it is taken for garbage."""
        self.prev: int | None = None
        self.repaired = 0

    def __call__(self, pts: int | None, dts: int | None) -> int | None:
        """The DTS to mux for a packet with ``pts`` and encoder DTS ``dts`` (in decode order)."""
        if pts is None:
            if dts is not None:
                self.prev = dts
            return dts
        bad = (dts is None or dts > pts or pts - dts > self.reach
               or (self.prev is not None and dts <= self.prev))
        if bad:
            dts = pts if self.prev is None or pts > self.prev else self.prev + 1
            self.repaired += 1
        self.prev = dts
        return dts


def _source_video(info) -> str:
    """How a notice names the input's video: ``"NAME's video"`` (its file's name), else ``"the input video"``."""
    src = getattr(info, "path", None)
    return f"{Path(src).name}'s video" if src is not None else "the input video"


class OutputVideo:
    """An output file being written. Use as a context manager, or call ``close()`` / ``abort()``.

    ``template``: the ``InputVideo`` whose timestamps, rate, metadata, chapters, rotation, SAR, HDR
    metadata and other streams are carried over. ``size`` (W, H) and ``pix_fmt`` describe the frames
    given to ``write``; ``color`` is what the planes are encoded in (tags written on frames and encoder).
    ``start``/``end`` (frame index or seconds, as for ``InputVideo.frames``) trim the copied streams to the
    same range; ``shift_timestamps`` moves every stream by the same amount so the output starts at 0.
    ``notices`` collects one-line warnings (streams skipped, HDR metadata not writable by the encoder), each
    also given to ``notice`` when one is passed.
    ``sar``: the sample aspect ratio to write (``frames.sizing.plan_size`` chooses it); None: the template's.
    ``format``: the FFmpeg muxer (None: from the extension; required for ``dst="-"``, standard output).
    ``codec``: the encoder (None: the container's usual one, :func:`esrgan_video.options.codec_for`).
    ``selection``: which other streams to copy (``video.stream_copy.StreamSelection``; ``copy_streams=False``
    copies none). ``verbose``: let the encoder print its own log (x265's, SVT-AV1's); off, only errors.
    """

    def __init__(
        self,
        dst: str | os.PathLike,
        *,
        template: InputVideo | None = None,
        codec: str | None = None,
        pix_fmt: str | None = None,
        crf: float | None = None,
        preset: str | None = None,
        options: dict[str, str] | None = None,
        size: tuple[int, int] | None = None,
        color: ColorSpec | None = None,
        copy_streams: bool = True,
        start=None,
        end=None,
        shift_timestamps: bool = True,
        overwrite: bool = False,
        keep_partial: bool = False,
        time_base: Fraction | None = None,
        rate: Fraction | None = None,
        sar: Fraction | None = None,
        format: str | None = None,
        selection: StreamSelection | None = None,
        verbose: bool = False,
        notice: Callable[[str], None] | None = None,
    ):
        self.pipe = str(dst) == PIPE
        """Writing to standard output: no temporary file, no rename."""
        self.dst = Path(dst)
        self.template = template
        self.keep_partial = keep_partial
        self.overwrite = overwrite
        self.verbose = verbose
        self._notice = notice
        self.notices: list[str] = []
        self.frames_written = 0
        self._closed = False
        self._flushed = False
        self._last_pts: int | None = None
        self._copier: StreamCopier | None = None
        self._in = None
        codec = output_codec(dst, codec, format)
        self.format = check_output(dst, codec, format=format)
        """The muxer written (``matroska``, ``mp4``, …)."""
        if not self.pipe:
            self._check_paths()
        info = template.info if template is not None else None
        if size is None:
            if info is None:
                raise ValueError("OutputVideo: size is required without a template")
            size = (info.width, info.height)
        self.size = (int(size[0]), int(size[1]))
        if pix_fmt is None:
            if info is None:
                raise ValueError("OutputVideo: pix_fmt is required without a template")
            pix_fmt, pix_notice = choose_pix_fmt(codec, info.pix_fmt)
            if pix_notice:
                self.say(pix_notice)
        self.pix_fmt = pix_fmt
        self.codec = codec
        self.time_base = Fraction(time_base) if time_base is not None else (
            info.time_base if info is not None else None)
        if self.time_base is None:
            raise ValueError("OutputVideo: time_base is required without a template")
        self.rate = Fraction(rate) if rate is not None else (info.frame_rate if info is not None else None)
        self.sar = Fraction(sar) if sar is not None else (info.sample_aspect_ratio if info is not None else None)
        self.color = color if color is not None else (info.color if info is not None else ColorSpec())
        self.encoder_settings = encoder_settings(codec, crf=crf, preset=preset, options=dict(options or {}))
        """What the encoder is given (the project's default CRF included); ``describe()`` for a summary."""
        self._layouts = plane_layouts(pix_fmt, *self.size)
        self._tags = self._color_tags(self.color)

        # Trim window (media seconds) and the common shift of every stream.
        if template is not None:
            self.t0, self.t1 = template.resolve_range(start, end)
            base = info.start_time
        else:
            self.t0 = Fraction(start) if start is not None else None
            self.t1 = Fraction(end) if end is not None else None
            base = Fraction(0)
        self.base = base
        self.shift = (base + (self.t0 or 0)) if shift_timestamps else Fraction(0)
        # every refusal of what is written, before any file (the pipeline asks the same before the model loads)
        self._clock = check_video(self.dst, self.format, codec, pix_fmt, self.encoder_settings, template,
                                  size=self.size, time_base=self.time_base, rate=self.rate, t0=self.t0, t1=self.t1)
        self._fix_dts = DtsRepair(self.time_base)
        if self.pipe:
            self.partial = None
            target = "pipe:1"  # FFmpeg's pipe protocol writes to file descriptor 1 itself
        else:
            self.dst_file = link_target(self.dst)  # a link's file: the link stays, leading to the new output
            remove_stale_partials(self.dst_file)  # left by an earlier writer of this target that was killed
            self.partial = partial_path(self.dst_file)
            target = str(self.partial)
            try:  # FFmpeg opens the file only at start_encoding, where its error names no file
                self.partial.open("wb").close()
            except OSError as e:
                self.partial = None
                raise cannot_create(self.dst, e) from e
        try:
            self._out = av.open(target, "w", format=format, container_options=muxer_options(self.format))
        except (ValueError, av.FFmpegError, OSError) as e:
            self._remove_partial()
            raise OutputError(f"{self.dst}: cannot write this file ({e}); "
                              "use a container extension such as .mkv or .mp4") from e
        except BaseException:  # Ctrl-C or SIGTERM while opening: the file made above goes too
            self._remove_partial()
            raise
        try:
            self._setup_video(codec, info)
            if template is not None:
                self._setup_container(info)
                if copy_streams and self.format in VIDEO_ONLY_FORMATS:
                    self._say_dropped(template)
                elif copy_streams:
                    self._in = template.open_container()
                    self._copier = StreamCopier(
                        self._out, self._in, video_index=info.stream_index, selection=selection or StreamSelection(),
                        t0=self.t0, t1=self.t1, base=self.base, shift=self.shift, dst=self.dst, src=template.path,
                        video_codec=codec, notice=self.say)
            self._out.start_encoding()
        except OutputError:
            self.abort()
            raise
        except (ValueError, av.FFmpegError) as e:
            culprit = self._copier.header_culprit() if self._copier is not None else None
            self.abort()
            if culprit:
                raise OutputError(culprit) from e
            raise OutputError(f"{self.dst}: cannot set up the {codec} encoder ({e})") from e
        except BaseException:  # Ctrl-C or SIGTERM while setting up: no partial file left
            self.abort()
            raise

    # -- setup ------------------------------------------------------------------------------------

    @property
    def container(self) -> str:
        """The output container as messages name it (``stream_copy.container_label``): the file's extension, else
        the muxer's name; a ``--format`` that is not the extension's own, with both."""
        return container_label(self.dst, self.format)

    def say(self, msg: str) -> None:
        """Record a one-line notice (and hand it to the ``notice`` callback)."""
        self.notices.append(msg)
        if self._notice is not None:
            self._notice(msg)

    @property
    def copied_packets(self) -> int:
        """Packets of the other streams handed to the muxer so far (they follow the video's time)."""
        return self._copier.copied_packets if self._copier is not None else 0

    def _say_dropped(self, template: InputVideo) -> None:
        with template.open_container() as c:
            others = [f"#{st.index} ({st.type})" for st in c.streams if st.index != template.info.stream_index]
        if others:
            self.say(f"{self.dst}: {self.format} carries video only; stream{'s' if len(others) > 1 else ''} "
                     f"{', '.join(others)} of {template.path} {'are' if len(others) > 1 else 'is'} not written")

    def _check_paths(self) -> None:
        check_output_place(self.dst, overwrite=self.overwrite,
                           src=self.template.path if self.template is not None else None)

    def _setup_video(self, codec, info) -> None:
        field_order = info.field_order if info is not None and info.field_order in FIELD_FIRST else None
        codec_options = field_options(codec, field_order, self.encoder_settings.codec_options())
        options = deterministic_options(codec, quiet_encoder_options(codec, codec_options, verbose=self.verbose))
        if info is not None and info.hdr is not None:
            params = {"libx265": ("x265-params", info.hdr.x265_params()),
                      "libsvtav1": ("svtav1-params", info.hdr.svtav1_params())}.get(codec)
            if params and params[1]:
                key, extra = params
                options[key] = _params(options.get(key), *extra)
            else:
                self.say(f"{self.dst}: {codec} cannot carry the input's HDR mastering-display / "
                         "content-light metadata (libx265 and libsvtav1 can); it is not written")
        self._captions: dict[int, bytes] = {}  # encoder pts → the frame's A/53 captions, until its packet is out
        self._caption_codec = CAPTION_ENCODERS.get(encoder_name(codec))
        self._captions_lost: str | None = None  # the notice, said once, when a frame with captions cannot keep them
        if self._caption_codec is None:
            self._captions_lost = (f"{self.dst}: the closed captions in {_source_video(info)} (ATSC A/53 "
                                   f"CEA-608/708 in its SEI) are not kept: {codec} is given no captions (libx264 "
                                   "and libx265 carry them)")
            if getattr(info, "closed_captions", False):  # the first frame has them: said before any frame
                self._say_captions_lost()
        self._hdr10plus: dict[int, bytes] = {}  # encoder pts → the frame's HDR10+ T.35 message, until its packet
        self._hdr10plus_kept = encoder_name(codec) in HDR10PLUS_ENCODERS and hdr10plus_t35_available()
        self._hdr10plus_said = False  # the notice about HDR10+ not kept (this run's one line) is out
        self._side_data_lost: tuple[str, ...] = ()  # what the side-data notices named (side_data.side_data_lost)
        self._side_data_seen: set[str] = set()  # the input's side-data kinds met so far: the probe's, then frames'
        clock = self._clock
        rate = clock.rate if clock else self.rate
        most = ENCODER_MAX_RATE.get(codec)
        if most is not None and rate and rate > most:
            # SVT-AV1 refused a 250 or 300 fps input ("Svt[error]: The maximum allowed frame rate is 240 fps"). Its
            # rate control is told 240 (its own parameters, read after the encoder's frame rate, which stays the
            # stream's: the file says the input's rate); the frames keep their timestamps. The user's own win.
            key, told = ENCODER_RATE_PARAMS[codec]
            options[key] = _params(told(most), options.get(key))
            self.say(f"{self.dst}: {codec} takes at most {_rate_text(most)} fps; its rate control is told "
                     f"{_rate_text(most)} fps (the {_rate_text(rate)} fps frames keep their times)")
        try:
            vs = self._out.add_stream(codec, rate=rate, options=options)
        except ValueError as e:
            hint = container_hint([codec], self.dst, self.format)
            raise OutputError(f"{self.dst}: the {self.container} container cannot hold the "
                              f"{codec} video{hint}") from e
        vs.width, vs.height = self.size
        vs.pix_fmt = self.pix_fmt
        vs.time_base = video_time_base(self.format, self.template, self.time_base, self.rate)
        ctx = vs.codec_context
        ctx.time_base = 1 / clock.rate if clock else self.time_base  # the stream's, unless the encoder refuses it
        vs.thread_type = "AUTO"
        ctx.thread_count = 0
        if field_order is not None:  # an interlaced input's field order, which the output said was progressive
            ctx.field_order = FIELD_ORDER_CODES[field_order]
            got = field_order_kept(self._out.format.name, codec, self.pix_fmt, field_order,
                                   tuple(sorted(codec_options.items())))
            if got is not None and got != field_order:
                self.say(f"{self.dst}: the input's field order ({FIELD_NAMES[field_order]}) cannot be written for "
                         f"{codec} in {self.container} files (it reads back as {FIELD_NAMES[got]})"
                         + ("; .mkv keeps it" if self._out.format.name != "matroska" else ""))
        for name, value in self._tags.items():
            setattr(ctx, name if name != "chroma_location" else "chroma_sample_location", value)
        if self.sar:
            ctx.sample_aspect_ratio = self.sar
            if self.sar != 1 and not sar_kept(codec, self._out.format.name):
                self.say(f"{self.dst}: the sample aspect ratio {self.sar} cannot be "
                         f"written for {codec} in {self.container} files with PyAV "
                         "(it can in .mov/.mp4)")
        if info is not None:
            if info.display_matrix:
                vs.set_display_matrix(list(info.display_matrix))
            # language, title and every disposition (default, forced, …) of the input's video stream (#14.6)
            # the timecode of the first frame written: a trim's later than the input's
            copy_stream_facts(vs, vs, metadata=self._trimmed_timecode(info.stream_metadata),
                              disposition=info.disposition)
            self._side_data(vs, info)
        self._video = vs

    def _side_data(self, vs, info) -> None:
        """The input's stereo 3D layout as Matroska's StereoMode tag; one notice naming the side data of the input
        (``VideoInfo.side_data``: HDR10+, Dolby Vision, spherical, timecodes, AFD, …) the output is written without."""
        muxer = self._out.format.name
        stereo = getattr(info, "stereo_mode", None)
        vs.metadata.pop("stereo_mode", None)  # Matroska's tag, copied with the stream's: written below or not at all
        if stereo and muxer == "matroska":
            vs.metadata["stereo_mode"] = stereo
        lost = side_data_lost(getattr(info, "side_data", ()), muxer=muxer, stereo=stereo,
                              hdr10plus=self._hdr10plus_kept)
        self._side_data_lost = lost
        self._side_data_seen = set(getattr(info, "side_data", ()))
        msg = side_data_notice(self.dst, _source_video(info), lost)
        if msg:
            self.say(msg)

    def _color_tags(self, spec: ColorSpec) -> dict[str, int]:
        """FFmpeg's numbers for the encoder's and every frame's colour tags."""
        fmt = pixel_format(self.pix_fmt)
        if fmt.family == "yuv" and spec.matrix == Matrix.RGB:
            raise ValueError(f"OutputVideo: colour matrix 0 (GBR/identity) cannot describe {self.pix_fmt} output; "
                             "pass a ColorSpec resolved for a YUV format (e.g. BT.709 = 1)")
        if fmt.family == "rgb":
            return {"colorspace": Matrix.RGB.ffmpeg, "color_range": Range.FULL.ffmpeg,
                    "color_primaries": spec.primaries.ffmpeg, "color_trc": spec.transfer.ffmpeg}
        siting = spec.chroma_siting
        return {
            "colorspace": spec.matrix.ffmpeg,
            "color_range": 0 if spec.range is None else spec.range.ffmpeg,
            "color_primaries": spec.primaries.ffmpeg,
            "color_trc": spec.transfer.ffmpeg,
            "chroma_location": 0 if siting is None else siting.ffmpeg,
        }

    def _trimmed_timecode(self, metadata: dict[str, str]) -> dict[str, str]:
        """``metadata`` with its ``timecode`` tag advanced by the frames the trim leaves out before its first
        (``stream_copy.advanced_timecodes``): ``--start 1`` of a 25 fps file at 01:00:00:00 starts at 01:00:01:00."""
        if self.template is None or self.t0 is None or not any(k.lower() == "timecode" for k in metadata):
            return metadata
        skipped = bisect.bisect_left(self.template.frame_times(), self.t0)
        return advanced_timecodes(metadata, skipped, self.template.info.frame_rate)

    def _setup_container(self, info) -> None:
        self._out.metadata.update(self._trimmed_timecode(info.metadata))
        chapters = shifted_chapters(info.chapters, base=self.base, t0=self.t0, t1=self.t1, shift=self.shift)
        if chapters and self.format not in VIDEO_ONLY_FORMATS:
            self._out.set_chapters(chapters)

    # -- writing ----------------------------------------------------------------------------------

    def __enter__(self) -> OutputVideo:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, planes: Sequence[np.ndarray], pts: int, captions: bytes | None = None,
              hdr10plus: bytes | None = None, side_data: tuple[str, ...] = ()) -> None:
        """Encode one frame given as planes (shapes of ``formats.plane_layouts(pix_fmt, W, H)``; integer
        arrays, cast to the format's sample type) at ``pts`` in the input stream's time base. ``captions``: the input
        frame's ATSC A/53 closed captions (``DecodedFrame.captions``), written into its packet's SEI by libx264 and
        libx265 (``metadata.with_captions``). ``hdr10plus``: its HDR10+ dynamic metadata (``DecodedFrame.hdr10plus``),
        written into libx265's SEI (``hdr10plus.hdr10plus_sei``). ``side_data``: the kinds of side data this frame
        is the first to have (``DecodedFrame.side_data``); one notice names those the output is written without.

        Frames must come in presentation order (strictly increasing ``pts``).
        """
        if self._closed or self._flushed:
            raise ValueError(f"{self.dst}: write() after flush/close/abort")
        pts = int(pts)
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"OutputVideo.write: pts must increase (presentation order), got {pts} after "
                             f"{self._last_pts}")
        frame = frame_from_planes(planes, self.pix_fmt, self.size[0], self.size[1], layouts=self._layouts,
                                  where="OutputVideo.write")
        frame.pts = pts - round(self.shift / self.time_base)
        frame.time_base = self.time_base
        if self._clock is not None:
            frame.pts = self._clock.frame(frame.pts)
            frame.time_base = 1 / self._clock.rate
        for name, value in self._tags.items():
            setattr(frame, name, value)
        self._last_pts = pts
        if side_data:
            self._late_side_data(side_data, pts)
        if captions:
            if self._caption_codec is not None:
                self._captions[frame.pts] = captions
            elif self._captions_lost:  # captions that begin after the first frame
                self._say_captions_lost()
        if hdr10plus:
            self._keep_hdr10plus(frame.pts, hdr10plus)
        if self._copier is not None:
            self._copier.pump(pts * self.time_base - self.base)
        try:
            self._mux_video(self._video.encode(frame))
        except av.FFmpegError as e:
            raise OutputError(f"{self.dst}: encoding or writing failed at frame {self.frames_written}: {e}") from e
        self.frames_written += 1

    def _late_side_data(self, kinds: tuple[str, ...], pts: int) -> None:
        """The one line for side data that begins at the frame at ``pts`` (none of the first frame's) and is not
        kept: each kind once per output. The stereo 3D layout's StereoMode tag was written with the stream's header,
        so a later one is lost into Matroska too; HDR10+ into libx265 is kept."""
        new = tuple(k for k in kinds if k not in self._side_data_seen)
        self._side_data_seen.update(new)
        lost = side_data_lost(new, muxer=self._out.format.name, stereo=None, hdr10plus=self._hdr10plus_kept)
        if not lost:
            return
        self._side_data_lost += lost
        msg = side_data_notice(self.dst, _source_video(self.template), lost,
                               since=f"{float(pts * self.time_base - self.base):.3f} s")
        self.say(msg)

    def _keep_hdr10plus(self, pts: int, side_data: bytes) -> None:
        """Keep a frame's HDR10+ for its packet where the encoder carries it and it is one processing window; the
        one line of this run where it is not (and the probe's notice did not say it)."""
        t35 = hdr10plus_t35(side_data) if self._hdr10plus_kept else None
        if t35 is not None:
            self._hdr10plus[pts] = t35
            return
        if self._hdr10plus_said or not self._hdr10plus_kept and "hdr10plus" in self._side_data_lost:
            return
        self._hdr10plus_said = True
        self.say(f"{self.dst}: the HDR10+ dynamic metadata (SMPTE ST 2094-40) in {_source_video(self.template)} "
                 "is not kept"
                 + (" where a frame's has more than one processing window (they are placed in the source's pixels)"
                    if self._hdr10plus_kept else f": {self._video.codec_context.name} is given none (libx265 carries "
                                                 "it)"))

    def _say_captions_lost(self) -> None:
        self.say(self._captions_lost)
        self._captions_lost = None

    def _mux_video(self, packets) -> None:
        if self._captions or self._hdr10plus:
            packets = [self._captioned(pkt) for pkt in packets]
        for pkt in packets:
            if self._clock is not None:
                self._clock.rebase(pkt)
            pkt.dts = self._fix_dts(pkt.pts, pkt.dts)
        self._out.mux(packets)

    def _captioned(self, pkt):
        """``pkt`` with its frame's captions and HDR10+ in SEI before its first slice (a new packet of the same times
        and flags); ``pkt`` itself where its frame had neither or it is no Annex B unit."""
        cc = self._captions.pop(pkt.pts, None)
        hp = self._hdr10plus.pop(pkt.pts, None)
        if cc is None and hp is None:
            return pkt
        data = bytes(pkt)
        if hp is not None:
            data = with_sei(data, hdr10plus_sei(hp), "hevc") or data
        if cc is not None:
            data = with_captions(data, cc, self._caption_codec) or data
        out = av.Packet(data)
        out.stream, out.time_base = pkt.stream, pkt.time_base
        out.pts, out.dts, out.duration, out.is_keyframe = pkt.pts, pkt.dts, pkt.duration, pkt.is_keyframe
        return out

    def flush(self) -> None:
        """Drain the encoder and copy the rest of the other streams (``close`` does it if not done)."""
        if self._flushed or self._closed:
            return
        try:
            self._mux_video(self._video.encode(None))
            if self._copier is not None:
                self._copier.pump(None)
        except av.FFmpegError as e:
            raise OutputError(f"{self.dst}: finishing the encode failed: {e}") from e
        self._flushed = True

    def close(self) -> Path:
        """Flush, finish the file and rename it over the target; returns the target path."""
        if self._closed:
            return self.dst
        try:
            self.flush()
            self._out.close()
            self._close_input()
            if self.pipe:
                self._closed = True
                return self.dst
            if self.dst.exists() and not self.overwrite:
                raise OutputError(f"{self.dst}: appeared while writing; not replacing it without --overwrite")
            os.replace(self.partial, self.dst_file)
        except BaseException as e:
            self.abort()
            if isinstance(e, (av.FFmpegError, OSError)) and not isinstance(e, OutputError):
                raise OutputError(f"{self.dst}: could not finish the file: {e}") from e
            raise
        self._closed = True
        return self.dst

    def abort(self) -> None:
        """Stop writing and remove the temporary file (kept when ``keep_partial``); the target is untouched."""
        if self._closed:
            return
        self._closed = True
        try:
            self._out.close()
        except (av.FFmpegError, OSError, ValueError):
            pass  # the partial file is being discarded; its trailer does not matter
        self._close_input()
        if not self.keep_partial:
            self._remove_partial()

    def _close_input(self) -> None:
        if self._in is not None:
            self._in.close()
            self._in = None

    def _remove_partial(self) -> None:
        if self.partial is None:
            return  # a pipe: what was written has gone
        try:
            self.partial.unlink()
        except FileNotFoundError:
            pass
