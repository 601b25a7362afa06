"""Which pixel formats an encoder takes, and the one to write for an input (no file is opened here).

Encoder capability lists come from FFmpeg (``av.codec.Codec(name, "w").video_formats``); what a pixel
format *is* (family, depth, subsampling, planes) comes from the one descriptor,
:mod:`esrgan_video.frames.pixel_formats`. A list can promise more than the linked library delivers
(libvpx-vp9 lists ``gbrap`` and ``yuva444p``, libx265 ``yuva420p``; avcodec_open2 refuses them): the chosen
format is checked by opening the encoder once on a 64×64 picture in memory (:func:`encoder_opens`, cached). An
encoder that takes any format (rawvideo) writes one its container gives back (:func:`raw_kept`: one tiny frame written
and read in memory, cached).
"""

from __future__ import annotations

import functools
import io
from fractions import Fraction
from typing import Callable, TypeVar

import av
import numpy as np

from ..errors import OptionError, OutputError, did_you_mean
from ..frames.colorspace import Range
from ..frames.pixel_formats import SUPPORTED_PIX_FMTS, PixelFormat, is_supported, pixel_format
from .chatter import quiet_encoder_options

T = TypeVar("T")

__all__ = ["ENCODER_MAX_RATE", "canonical_encoder", "check_encoder_options", "choose_pix_fmt", "encoder_name", "encoder_opens", "encoder_pix_fmts",
           "encoder_reorders", "keep_advice", "time_base_opens"]

ENCODER_MAX_RATE = {"libsvtav1": Fraction(240)}
"""Encoders that refuse a frame rate above this (SVT-AV1: "Svt[error]: The maximum allowed frame rate is 240 fps").
The rate is what their rate control is told; the frames' timestamps are passed through whatever it is."""


def encoder_pix_fmts(codec: str) -> tuple[str, ...]:
    """The pixel formats encoder ``codec`` accepts (empty when it does not say); OutputError if unknown."""
    try:
        enc = av.codec.Codec(codec, "w")
    except (ValueError, av.FFmpegError) as e:
        raise OutputError(f"unknown video encoder {codec!r} (this FFmpeg build has no such encoder)") from e
    if enc.type != "video":
        raise OutputError(f"{codec!r} is a {enc.type} encoder, not a video encoder")
    return tuple(f.name for f in (enc.video_formats or ()))


@functools.lru_cache(maxsize=1)
def video_encoders() -> tuple[str, ...]:
    """FFmpeg's names of the video encoders this build has (``libx264``, ``ffv1``, ...), sorted."""
    names = set()
    for name in av.codecs_available:
        try:
            codec = av.codec.Codec(name, "w")
        except (ValueError, av.FFmpegError):
            continue
        if codec.type == "video":
            names.add(codec.name)
    return tuple(sorted(names))


COMMON_ENCODERS = "libx264, libx265, libsvtav1, libvpx-vp9, ffv1 or prores_ks"


def check_encoder_name(codec: str) -> str:
    """FFmpeg's name of video encoder ``codec`` (:func:`encoder_name`: ``h264`` is ``libx264``); an
    :class:`OptionError` naming ``codec`` for one this FFmpeg build lacks (with the closest names it has) or one that
    is not a video encoder (``aac``), where the options are made: before any file is opened or model loaded."""
    try:
        enc = av.codec.Codec(codec, "w")
    except (ValueError, av.FFmpegError):
        hint = did_you_mean(codec, video_encoders()) or f"e.g. {COMMON_ENCODERS}; ffmpeg -encoders lists them"
        raise OptionError("codec", "a video encoder this FFmpeg build has", codec, detail=hint) from None
    if enc.type != "video":
        raise OptionError("codec", "a video encoder", codec,
                          detail=f"{codec} is an {enc.type} encoder; e.g. {COMMON_ENCODERS}")
    return enc.name


def encoder_name(codec: str) -> str:
    """FFmpeg's name of encoder ``codec`` (``h264`` → ``libx264``, ``vp8`` → ``libvpx``); ``codec`` itself when this
    FFmpeg has no such encoder."""
    try:
        return av.codec.Codec(codec, "w").name
    except (ValueError, av.FFmpegError):
        return codec


def canonical_encoder(codec: str) -> str | None:
    """The codec encoder ``codec`` writes (its canonical name: ``libx264`` → ``h264``); None for an unknown
    encoder."""
    try:
        return av.codec.Codec(codec, "w").canonical_name
    except (ValueError, av.FFmpegError):
        return None


def muxer_options(muxer: str | None) -> dict[str, str]:
    """The container options every output is opened with: ``bitexact`` (the same input and options give the same
    bytes: Matroska wrote random segment/track UIDs and the date, Ogg random serial numbers, each muxer its version
    string), and for y4m above 8 bits FFmpeg's "unofficial" extension."""
    return {"fflags": "+bitexact", **({"strict": "unofficial"} if muxer == "yuv4mpegpipe" else {})}


def written_back(muxer: str, codec: str, pix_fmt: str, read: Callable[[av.container.InputContainer], T], *,
                 frames: int = 1, size: tuple[int, int] = (16, 8), options: dict[str, str] | None = None,
                 field_order: int | None = None) -> T:
    """``read(container)`` of a ``muxer`` file written in memory: ``frames`` blank ``size`` pictures in ``pix_fmt``
    encoded by ``codec`` (25 fps, encoder ``options``, the codec context's ``field_order`` code when given), opened
    with :func:`muxer_options`. What a container or encoder does to a property is probed with it
    (:func:`raw_kept`, ``writer.field_order_kept``); av.FFmpegError, ValueError and OSError pass to the caller."""
    buf = io.BytesIO()
    w, h = size
    with av.open(buf, "w", format=muxer, container_options=muxer_options(muxer)) as out:
        vs = out.add_stream(codec, rate=25, options=options)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if field_order is not None:
            vs.codec_context.field_order = field_order
        frame = av.VideoFrame(w, h, pix_fmt)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        for i in range(frames):
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    with av.open(io.BytesIO(buf.getvalue()), format=muxer) as back:
        return read(back)


@functools.lru_cache(maxsize=None)
def raw_kept(muxer: str, pix_fmt: str) -> bool:
    """Whether a ``muxer`` file gives rawvideo in ``pix_fmt`` back as ``pix_fmt`` (one 16×8 frame written and read in
    memory: :func:`written_back`). AVI and MOV store uncompressed video under a tag for a few layouts only, NUT for
    most: a p010le or 10-bit 4:4:0 NUT, or a 4:4:4 or 16-bit grey AVI, was written without a word and read back as
    rgb555le, bgr24 or nothing; Matroska refuses most."""
    try:
        return written_back(muxer, "rawvideo", pix_fmt,
                            lambda back: back.streams.video[0].codec_context.pix_fmt == pix_fmt)
    except (av.FFmpegError, ValueError, IndexError, OSError):
        return False


FULL_RANGE_ENCODERS = frozenset({"mjpeg"})
"""Encoders (canonical names) the writer always opens on full range: FFmpeg's JPEG encoder refuses limited-range
YUV ("returned 22"), and every JPEG is written in JFIF's colour (``output_plan.jpeg_color``). They are probed so:
``--pix-fmt yuv444p`` into ``x.jpg`` was refused as "lists pixel format 'yuv444p' but this build's library refuses
it", though ``yuv444p`` on full range is what the ``yuvj444p`` it named writes."""


def encoder_opens(codec: str, pix_fmt: str) -> bool:
    """Whether encoder ``codec`` opens for ``pix_fmt`` (a 64×64 picture at 25 fps, its own log quiet; no file; on
    full range for :data:`FULL_RANGE_ENCODERS`): :func:`time_base_opens` of ``1/25`` (cached there)."""
    return time_base_opens(codec, Fraction(1, 25), pix_fmt)


@functools.lru_cache(maxsize=256)
def time_base_opens(codec: str, time_base: Fraction, pix_fmt: str = "yuv420p") -> bool:
    """Whether encoder ``codec`` opens with ``time_base`` (a 64×64 ``pix_fmt`` picture; no file). MPEG-1/2 take
    only ``1/rate`` for a rate of their frame-rate table (``1/12800``, an MP4's, is refused: "MPEG-1/2 does not
    support 12800/1 fps"), MPEG-4 Part 2 only denominators up to 65535 (not MPEG-TS's ``1/90000``)."""
    return _open_refused(codec, time_base, pix_fmt, ()) is None


@functools.lru_cache(maxsize=256)
def _open_refused(codec: str, time_base: Fraction, pix_fmt: str, options: tuple[tuple[str, str], ...]) -> str | None:
    """Why encoder ``codec`` does not open with ``time_base`` and encoder ``options`` for a 64×64 ``pix_fmt`` picture
    (FFmpeg's reason, e.g. "Invalid argument"), or None when it opens (no file)."""
    try:
        ctx = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = 64, 64, pix_fmt
        ctx.time_base = time_base
        if ctx.codec.canonical_name in FULL_RANGE_ENCODERS:
            ctx.color_range = Range.FULL.ffmpeg  # what the writer gives it (plan_output: JFIF's colour)
        # the frame rate a tick would be, but at most 240 fps: SVT-AV1 refuses a higher one (and prints
        # "Svt[error]: The maximum allowed frame rate is 240 fps"), which refused it every 1/1000 (Matroska),
        # 1/12800 or 1/90000 time base, hence every variable-rate input; the writer gives it the stream's rate
        ctx.framerate = min(1 / Fraction(time_base), ENCODER_MAX_RATE["libsvtav1"])
        ctx.options = quiet_encoder_options(codec, dict(options), verbose=False)
        ctx.open()
    except (av.FFmpegError, ValueError, OSError) as e:
        return getattr(e, "strerror", None) or str(e) or type(e).__name__
    return None


def check_encoder_options(codec: str, given: dict[str, str], others: dict[str, str], pix_fmt: str | None = None,
                          ) -> None:
    """Refuse an ``--encoder-opt`` value encoder ``codec`` does not open with (``crf=abc``, ``bf=x``, ``tune=nope``):
    an :class:`OptionError` naming ``encoder_opts`` and the option, before a model is loaded, instead of FFmpeg's
    "avcodec_open2 ... returned 22" once the output opens. ``given``: the user's options; ``others``: what the
    encoder is given besides them (its crf and preset). Judged by opening the encoder on a 64×64 picture in memory
    in ``pix_fmt`` (None: in any format it takes, as batch judges before it knows each file's: ``profile=high10``
    opens for 10-bit video only), and only where it opens without ``given``: an encoder that does not open here at
    all (NVENC without its GPU) is left for the writer to report."""
    if not given:
        return
    tb = Fraction(1, 25)
    fmts = [pix_fmt] if pix_fmt is not None else [n for n in encoder_pix_fmts(codec) if is_supported(n)] or ["yuv420p"]
    every = tuple({**others, **given}.items())
    bases = [f for f in fmts if _open_refused(codec, tb, f, tuple(others.items())) is None]
    if not bases or any(_open_refused(codec, tb, f, every) is None for f in bases):
        return
    fmt = bases[0]
    for key, value in given.items():
        reason = _open_refused(codec, tb, fmt, tuple({**others, key: value}.items()))
        if reason is not None:
            raise OptionError("encoder_opts", f"a value the {codec} encoder takes for {key}{_option_kind(codec, key)}",
                              f"{key}={value}", detail=f"FFmpeg: {reason}")
    shown = " ".join(f"{k}={v}" for k, v in given.items())
    raise OptionError("encoder_opts", f"options the {codec} encoder opens with together", shown,
                      detail=f"FFmpeg: {_open_refused(codec, tb, fmt, every)}")


def _option_kind(codec: str, key: str) -> str:
    """`` (a number)``, `` (a whole number)``, `` (one of a, b)``: what encoder ``codec``'s option ``key`` takes, for a
    message; '' where FFmpeg does not say (a string)."""
    try:
        so = av.CodecContext.create(codec, "w").supported_options
    except (ValueError, av.FFmpegError):
        return ""
    opt = next((o for o in (*so.private, *so.generic) if o.name == key), None)
    if opt is None:
        return ""
    choices = [c.name for c in (opt.choices or ())]
    kind = {"FLOAT": "a number", "DOUBLE": "a number", "INT": "a whole number", "INT64": "a whole number",
            "UINT64": "a whole number", "BOOL": "0 or 1"}.get(opt.type.name)
    if choices and kind:
        return f" ({kind} or {', '.join(choices)})"
    if choices:
        return f" (one of {', '.join(choices)})"
    return f" ({kind})" if kind else ""


@functools.lru_cache(maxsize=64)
def encoder_reorders(codec: str, pix_fmt: str, options: tuple[tuple[str, str], ...] = ()) -> bool:
    """Whether encoder ``codec`` with ``options`` (its ``--encoder-opt``, crf and preset: sorted pairs) stores frames
    out of display order (B-frames: a packet's decode time before its presentation time): libx264 and libx265 at
    their defaults, MPEG-4 Part 2 or MPEG-2 with ``bf``; not with ``bf=0``, nor FFV1, VP9, AV1. Told by the encoder
    (``has_b_frames``) or by 16 frames of a moving 64×64 ramp encoded in memory (x265 does not say). False when it
    does not open (the writer reports that)."""
    try:
        ctx = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = 64, 64, pix_fmt
        ctx.time_base, ctx.framerate = Fraction(1, 25), Fraction(25)
        ctx.options = quiet_encoder_options(codec, dict(options), verbose=False)
        ctx.open()
        if ctx.has_b_frames:
            return True
        y, x = np.mgrid[0:64, 0:64]
        for i in [*range(16), None]:
            frame = None
            if i is not None:
                ramp = ((4 * x + 2 * y + 7 * i) % 256).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(np.stack([ramp] * 3, -1), format="rgb24").reformat(format=pix_fmt)
                frame.pts = i
            if any(p.pts != p.dts for p in ctx.encode(frame)):
                return True
    except (av.FFmpegError, ValueError, OSError):
        return False
    return False


_FAMILY_FALLBACK = {"yuv": ("yuv", "rgb", "gray"), "rgb": ("rgb", "yuv", "gray"), "gray": ("gray", "yuv", "rgb")}


def _rank(cand: PixelFormat, want: PixelFormat) -> tuple:
    """Sort key: family, then depth (exact, then the closest above, then the closest below), then a format that
    loses nothing more (the same or less chroma subsampling, the input's alpha kept) before one that loses chroma or
    alpha, then chroma subsampling (exact, then less subsampled, then more), then planar, then the same alpha, then
    no padding."""
    family = _FAMILY_FALLBACK[want.family].index(cand.family)
    d = cand.bits - want.bits
    depth = (0, d) if d >= 0 else (1, -d)
    sub_diff = (cand.log2_chroma_w - want.log2_chroma_w, cand.log2_chroma_h - want.log2_chroma_h)
    if want.family == "gray" or cand.family == "gray":
        sub = (0, 0)
    elif sub_diff == (0, 0):
        sub = (0, 0)
    elif max(sub_diff) <= 0:
        sub = (1, -sum(sub_diff))
    else:
        sub = (2, sum(abs(x) for x in sub_diff))
    padded = cand.components < sum(len(p) for p in cand.planes)
    # a format that loses nothing but depth (the same or less chroma subsampling, the alpha kept) before any that
    # loses chroma or alpha: prores_ks writes yuva422p12le as yuva444p10le (its 4444 profile), not yuv422p10le
    lossy = sub[0] == 2 or (want.alpha and not cand.alpha)
    # an RGB input's alpha comes before its family: a transparent GIF (bgra) into VP9 is yuva420p, not gbrp (the
    # alpha thrown away to keep RGB; VP9's gbrap does not open). A YUV one's chroma still comes first (VP9: yuva444p
    # as yuv444p)
    rgb_alpha_lost = want.family == "rgb" and want.alpha and not cand.alpha
    return (rgb_alpha_lost, family, depth, lossy, sub, not cand.planar, cand.alpha != want.alpha, padded, cand.name)


KEEP_ADVICE = {
    "matroska": "use --codec ffv1 (or prores_ks for 10-bit YUV)",
    "mov": "use --codec prores_ks (10-bit YUV)",
    "webm": "write a .mkv output with --codec ffv1 (WebM holds VP8, VP9 and AV1 only)",
    "image2": "write a .png or .tiff",
}
"""How to keep what an encoder could not write, by the output's container (muxer name): the advice names an encoder
that container holds (FFV1 goes in Matroska, not in WebM, MOV or MP4; ProRes in MOV and Matroska); a one-picture
file's (``image2``: a one-frame video into ``x.jpg`` or ``x.bmp``) names the still formats that keep it, as the
stills path's notice does."""

ALPHA_ADVICE = {
    "matroska": "use --codec ffv1 (or prores_ks with --pix-fmt yuva444p10le)",
    "mov": "use --codec prores_ks with --pix-fmt yuva444p10le",
    "webm": "use --codec libvpx-vp9 (yuva420p)",
    "image2": "write a .png or .tiff",
}
"""How to keep an alpha channel, by the output's container (WebM: VP9's yuva420p)."""

_OTHER_KEEP = "write a .mkv output with --codec ffv1 (or prores_ks for 10-bit YUV)"
_OTHER_ALPHA = "write a .mkv output with --codec ffv1 (or a .mov with --codec prores_ks --pix-fmt yuva444p10le)"


def keep_advice(container: str | None, *, alpha: bool = False, codec: str | None = None) -> str:
    """``use ... to keep it`` for an output in ``container`` (a muxer name; None: Matroska's advice): how to keep an
    alpha channel (``alpha``) or the input's RGB / depth. ``codec``: the encoder chosen (VP9 in WebM keeps alpha with
    ``--pix-fmt yuva420p``)."""
    if alpha and container == "webm" and codec == "libvpx-vp9":
        return "use --pix-fmt yuva420p to keep it"
    table, other = (ALPHA_ADVICE, _OTHER_ALPHA) if alpha else (KEEP_ADVICE, _OTHER_KEEP)
    return f"{table.get(container or 'matroska', other)} to keep it"


def _yuv(name: str) -> str:
    """``yuvj*`` as ``yuv*`` (the full range goes in the colour tags, not the format); any other name unchanged."""
    return name.replace("yuvj", "yuv", 1) if name.startswith("yuvj") else name


def _wanted(input_pix_fmt: str, alpha: bool) -> PixelFormat:
    """The format an output aims at for an ``input_pix_fmt`` input: :func:`_yuv` of it, its alpha left out where the
    alpha plane is opaque filler (``alpha=False``)."""
    want = pixel_format(_yuv(input_pix_fmt))
    return want.same_family(alpha=False) if want.alpha and not alpha else want


def choose_pix_fmt(codec: str, input_pix_fmt: str, requested: str | None = None, *, alpha: bool = True,
                   container: str | None = None) -> tuple[str, str | None]:
    """The output pixel format for encoder ``codec`` and a one-line notice when it differs from the input's kind.

    ``requested`` (``--pix-fmt``) must be one the encoder accepts. Otherwise the default keeps the input's
    family (YUV/RGB/gray), bit depth, chroma subsampling and alpha when the encoder accepts that, else takes
    the nearest it accepts: same family first, then the closest depth at or above the input's, then the
    closest subsampling (less subsampled before more), planar before packed, the same alpha. ``yuvj*``
    inputs map to ``yuv*`` (range goes in the tags). FFV1 takes 8-bit RGB only packed, so ``gbrp`` or
    ``rgb24`` in gives ``bgr0`` out (``bgra`` with alpha), without a notice: only the layout differs. An RGB
    input's alpha is kept before its family (a transparent GIF's bgra into VP9: yuva420p).

    ``alpha=False``: the input's alpha plane is opaque filler (an opaque GIF, which FFmpeg decodes as ``bgra``):
    chosen as if the input had none. ``container`` (the output's muxer name) chooses the notice's advice
    (:func:`keep_advice`).
    """
    listed_by_encoder = encoder_pix_fmts(codec)
    if not listed_by_encoder:  # an encoder that takes any format (rawvideo): the input's own, where the file keeps it
        want_name = requested or input_pix_fmt
        if not is_supported(want_name):
            raise OutputError(f"encoder {codec}: pixel format {want_name!r} is not one this program can write")
        want_name = _yuv(want_name)
        if container is None or raw_kept(container, want_name):
            return want_name, None
        elsewhere = "--codec ffv1" if container == "nut" else "a .nut output, or --codec ffv1"
        if requested is not None:
            raise OutputError(f"the {container} container cannot carry {codec} video in {requested} (it would read "
                              f"back as another format); use another --pix-fmt or {elsewhere}")
        want = _wanted(input_pix_fmt, alpha)
        kept = sorted((pixel_format(n) for n in SUPPORTED_PIX_FMTS
                       if not pixel_format(n).full_range and raw_kept(container, n)), key=lambda c: _rank(c, want))
        if not kept or (kept[0].family == "gray" and want.family != "gray"):
            raise OutputError(f"the {container} container cannot carry {codec} video in {want_name}; use {elsewhere}")
        best = kept[0]
        if best.name == want.name:
            return best.name, None
        return best.name, (f"the {container} container cannot carry {codec} video in {want.description} "
                           f"({input_pix_fmt}); writing {best.name} ({best.description}) instead; {elsewhere} "
                           "keeps it")
    accepted = [n for n in listed_by_encoder if is_supported(n)]
    if requested is not None:
        if requested not in accepted:
            listed = ", ".join(accepted) or "none this program can write"
            raise OutputError(f"encoder {codec} cannot write pixel format {requested!r}; it accepts: {listed}")
        if not encoder_opens(codec, requested) and any(encoder_opens(codec, n) for n in accepted):
            listed = ", ".join(n for n in accepted if encoder_opens(codec, n))
            raise OutputError(f"encoder {codec} lists pixel format {requested!r} but this build's library refuses "
                              f"it; it opens with: {listed}")
        return requested, None
    if not accepted:
        raise OutputError(f"encoder {codec} accepts no pixel format this program can write")
    want = _wanted(input_pix_fmt, alpha)
    cands = sorted((pixel_format(n) for n in accepted if not pixel_format(n).full_range), key=lambda c: _rank(c, want))
    # the nearest the encoder really opens with; when it opens with none (no GPU for NVENC, a codec that needs
    # options), the nearest listed one, for the writer to report its own error
    best = next((c for c in cands if encoder_opens(codec, c.name)), cands[0])
    if best.family == "gray" and want.family != "gray":
        listed = ", ".join(listed_by_encoder)
        raise OutputError(f"encoder {codec} cannot write colour in a format this program writes (it takes {listed}); "
                          "choose another --codec")
    if best.name == want.name or (best.family, best.bits, best.subsampling, best.alpha) == (
            want.family, want.bits, want.subsampling, want.alpha):
        return best.name, None
    notice = (f"{codec} cannot encode {want.description} ({input_pix_fmt}); writing {best.name} "
              f"({best.description}) instead")
    if codec not in ("ffv1", "prores_ks") and (want.family == "rgb" or want.bits > 10 or best.bits < want.bits):
        notice += "; " + keep_advice(container)
    return best.name, notice
