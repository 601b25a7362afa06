"""What a run's output frames are, decided before anything is opened (pure but for FFmpeg's encoder and muxer tables).

From the input's facts, the options and the model's scale: the input planes' format and resolved colour, the
output pixel format (the encoder's closest to the input's family and depth, or ``--pix-fmt``), the output
colour, and the :class:`~esrgan_video.frames.sizing.SizePlan` (frame size, SAR, where the picture goes). The
streaming core and ``esrgan-video preview`` build their frame transform from the same plan, so a preview frame
is the frame a video run writes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import av

from ..frames.color import ColorSpec
from ..frames.colorspace import Matrix
from ..frames.pixel_formats import packed_rgb, pixel_format
from ..frames.sizing import SizePlan, plan_size
from ..frames.transform import FrameFormat
from ..options import UpscaleOptions
from .encoder_formats import canonical_encoder, choose_pix_fmt, keep_advice
from .encoder_settings import EncoderSettings, encoder_settings
from .images import eight_bit_notice
from .probe import gif_transparent
from .writer import check_frame_size, check_settings, check_video, output_codec, output_format, sar_kept


@dataclass(frozen=True)
class OutputPlan:
    """The frames a run writes."""

    src: FrameFormat
    """The input planes: pixel format and resolved colour."""
    dst: FrameFormat
    """The output planes: pixel format and the colour written."""
    pix_fmt: str
    """The output pixel format's name (what the encoder is given)."""
    size: SizePlan
    """Frame size, SAR and placement of the picture."""
    notices: tuple[str, ...] = ()
    """One-line notes for the user (pixel format chosen, alpha dropped, SAR written, resampled, padded)."""


def alpha_used(info) -> bool:
    """Whether the input ``info`` (a ``video.reader.VideoInfo``) has an alpha plane that may carry anything: False
    for a format without alpha. An opaque alpha plane is filler, as for stills (``video.images.read_image``): FFmpeg
    decodes every GIF as ``bgra``, an opaque one too, whose alpha is told here from the file's blocks
    (``probe.gif_transparent``, read once per file) without decoding it twice; other inputs' alpha planes are kept."""
    if not pixel_format(info.pix_fmt).alpha:
        return False
    if info.codec == "gif":
        return gif_transparent(info.path) is not False
    return True


def output_color(spec: ColorSpec, in_fmt, out_fmt, width: int, height: int) -> ColorSpec:
    """The colour facts written to the output (pure).

    Same family in and out: the input's (resolved) facts, guessed ones included, so players don't
    guess differently at the new size. RGB in, YUV/gray out: a YUV matrix, range and chroma siting
    chosen for the output size by the same rule. YUV in, RGB out: the identity matrix, full range.
    Primaries and transfer always pass through.
    """
    if in_fmt.family == out_fmt.family or (in_fmt.family != "rgb" and out_fmt.family != "rgb"):
        return spec
    if out_fmt.family == "rgb":
        return dataclasses.replace(spec, matrix=Matrix.RGB, full_range=True, chroma_location=None).resolved(width, height, out_fmt)
    fresh = dataclasses.replace(spec, matrix=Matrix.UNSPECIFIED, full_range=None, chroma_location=None)
    return fresh.resolved(width, height, out_fmt)


def with_codec(options: UpscaleOptions, dst: str | Path) -> UpscaleOptions:
    """``options`` with the encoder chosen for ``dst``'s container when none was asked for (``codec=None``), its
    ``crf``, ``preset`` and ``encoder_opts`` checked against that encoder
    (:func:`~esrgan_video.video.encoder_settings.encoder_settings`: an :class:`OptionError`, exit 2, before a model is
    loaded, e.g. ``--preset nope`` for libx264, not FFmpeg's "avcodec_open2 ... returned 22" once the output opens).
    An encoder this FFmpeg build lacks is left for ``writer.check_output`` to name."""
    enc = options.encode
    if enc.codec is None:
        enc = dataclasses.replace(enc, codec=output_codec(dst, None, enc.format))
        options = dataclasses.replace(options, encode=enc)
    try:
        av.codec.Codec(enc.codec, "w")
    except (ValueError, av.FFmpegError):
        return options
    output_encoder(enc)
    return options


def output_encoder(enc) -> EncoderSettings:
    """What the writer gives encoder ``enc.codec`` (``enc``: the ``EncodeOptions``, codec chosen): the settings
    ``OutputVideo`` builds from the pipeline's ``crf``, ``preset`` and ``options`` (``enc.encoder_options``), which
    batch's checks (``batch.driver._check_encoding``, ``batch.worker.join_times_refused``) ask by."""
    return encoder_settings(enc.codec, crf=enc.crf, preset=enc.preset, options=enc.encoder_options)


def output_pix_fmt(info, enc, container: str | None) -> tuple[str, str | None]:
    """The pixel format an output of encoder ``enc.codec`` (``enc``: the ``EncodeOptions``, codec chosen) into
    ``container`` is written in for the input ``info``, and its notice: ``choose_pix_fmt`` with ``--pix-fmt`` and the
    input's alpha only where it is used (:func:`alpha_used`). What :func:`plan_output` and batch's join check
    (``batch.worker.join_times_refused``) both write by."""
    src_fmt = info.pix_fmt
    if enc.pix_fmt is None and container == "image2" and canonical_encoder(enc.codec) in RGB_STILL_CODECS:
        src_fmt = _as_rgb(src_fmt)
    return choose_pix_fmt(enc.codec, src_fmt, requested=enc.pix_fmt, alpha=alpha_used(info), container=container)


RGB_STILL_CODECS = frozenset({"png", "tiff", "bmp"})
"""Encoders of a one-picture file (FFmpeg's image2 muxer) whose picture is written as RGB for a YUV input, of the
input's depth and alpha (rgb24, rgba; above 8 bits rgb48le, rgba64le, which PNG takes big-endian: rgb48be,
rgba64be; grey stays grey, 16-bit above 8 bits): the stills path's formats. TIFF's encoder also takes YUV, which
few readers show, and PNG's nearest format to 10-bit YUV was 8-bit RGB."""


def _as_rgb(pix_fmt: str) -> str:
    """The RGB pixel format of ``pix_fmt``'s depth and alpha (pure but for the table): ``yuv420p10le`` →
    ``rgb48le``, ``yuva420p`` → ``rgba``; an RGB, grey or palette format as it is."""
    fmt = pixel_format(pix_fmt)
    if fmt.family != "yuv":
        return pix_fmt
    return packed_rgb(deep=fmt.bits > 8, alpha=fmt.alpha)


def jpeg_color(spec: ColorSpec) -> ColorSpec:
    """The colour a JPEG file (JFIF) is written in: full range, the BT.601 matrix, chroma centred (JFIF's, what
    every reader decodes a JPEG by); primaries and transfer as ``spec``'s (JPEG has no field for them)."""
    return dataclasses.replace(spec, matrix=Matrix.SMPTE170M, full_range=True, chroma_location="center")


def check_plan(info, options: UpscaleOptions, *, src: str | Path, dst: str | Path, inp=None,
               model_scale: int | None = None) -> None:
    """Raise, before a model is looked up, downloaded or built (``upscale_video`` and ``esrgan-video preview`` call it
    first), every refusal of the output that needs nothing from the model: what :func:`plan_output` raises (a
    ``--pix-fmt`` the encoder cannot write, ``--pix-fmt rgb24`` into ``x.jpg``; an encoder that writes no colour
    format; contradictory size options; a ``--preset`` or ``--crf`` the encoder refuses) and, with ``inp`` (the
    ``InputVideo`` of ``info``, whose trim ``options.trim`` selects the frames written), what the writer would refuse
    when it is set up (``writer.check_video``: a frame rate or frame times the encoder cannot carry, MPEG-2 at 7 fps;
    AVI times of a variable-rate input with B-frames; RGB into a YUV-only container). Without ``inp``, the frame size
    alone where it is known (a ``model_scale``, or ``--size``/``--scale``): batch's check of each file before it
    starts (``batch.driver``), ``esrgan-video preview``'s before its first model.

    ``model_scale``: the model's scale where it is known without loading the model (:func:`known_scale`). The frame
    size checks (``writer.check_frame_size``: a size outside the encoder's smallest and largest, libx265's 8x8, MPEG-4
    Part 2 above 8191 px; not a multiple of its chroma subsampling) are made on the real planned size when it is
    known: the scale is, or ``--size``/``--scale`` make the size without it; else they are left for
    :func:`check_planned_size`, right after the model is loaded. No check here depends on the scale otherwise: the
    plan is made at the given scale (1 when unknown) and dropped (its notices come with the real plan's)."""
    plan = plan_output(info, options, model_scale=model_scale or 1, src=src, dst=dst)
    sized = model_scale or options.size.size is not None or options.size.scale is not None
    if inp is None:  # no frames to judge: the frame size only, where it is known (batch's check of each file, preview)
        check_settings(output_encoder(with_codec(options, dst).encode), plan.pix_fmt)  # --encoder-opt crf=abc
        if sized:
            check_planned_size(plan, options, dst=dst)
        return
    opts = with_codec(options, dst)
    enc, trim = opts.encode, opts.trim
    t0, t1 = inp.resolve_range(trim.start, trim.end)
    check_video(dst, output_format(dst, enc.format), enc.codec, plan.pix_fmt, output_encoder(enc), inp,
                size=plan.size.size if sized else None, time_base=info.time_base, rate=info.frame_rate,
                t0=t0, t1=t1)


def check_planned_size(plan: OutputPlan, options: UpscaleOptions, *, dst: str | Path) -> None:
    """Refuse a planned frame size encoder ``options.encode.codec`` (``dst``'s when None) cannot encode
    (``writer.check_frame_size``, one line naming ``dst``): what :func:`check_plan` checks before the model when the
    size is known without it, asked with the real plan once the model is loaded (a checkpoint file's scale is in its
    weights), before a backend is built or a frame is read."""
    enc = with_codec(options, dst).encode
    check_frame_size(dst, enc.codec, plan.pix_fmt, plan.size.size, output_encoder(enc))


def known_scale(model) -> int | None:
    """The scale of the model ``model`` (``options.ModelOptions``) names, where it is known without loading it: a
    registry name's (``models.registry``: the scale its file is checked against when fetched), else None (a checkpoint
    file's scale is in its weights; a loaded module's in its layers)."""
    name = model.model
    if not isinstance(name, str) or Path(name).exists():
        return None
    from ..errors import ModelError
    from ..models.registry import get_entry

    try:
        return get_entry(name).scale
    except ModelError:
        return None  # not a registry name: the model's lookup says so


def _many_frames(info, options: UpscaleOptions) -> bool:
    """More than one frame will be written (exact or estimated from the duration; False when unknown)."""
    count = getattr(info, "frame_count_in", None)
    n = count(options.trim.start, options.trim.end) if count is not None else None
    return n is not None and n > 1


def plan_output(info, options: UpscaleOptions, *, model_scale: int, src: str | Path, dst: str | Path) -> OutputPlan:
    """The output plan of ``src`` (its ``video.reader.VideoInfo`` ``info``) written to ``dst`` with ``options``
    by a model of scale ``model_scale``. Raises ``OptionError`` for contradictory size options."""
    options = with_codec(options, dst)
    enc, size = options.encode, options.size
    notices: list[str] = []
    in_fmt = pixel_format(info.pix_fmt)
    spec = info.color.resolved(info.width, info.height, in_fmt)
    container = output_format(dst, enc.format)
    alpha = alpha_used(info)
    out_pix_fmt, pix_notice = output_pix_fmt(info, enc, container)
    still = container == "webp" or (container == "image2"
                                    and canonical_encoder(enc.codec) in RGB_STILL_CODECS | {"mjpeg"})
    if pix_notice and still and pixel_format(out_pix_fmt).bits < in_fmt.bits:
        # a deep frame into a .bmp, .jpg or .webp: in the user's terms, not FFmpeg's pixel formats
        pix_notice = eight_bit_notice(dst, in_fmt.bits, "video's frame",
                                      animated=container == "webp" and _many_frames(info, options))
    if pix_notice:
        notices.append(pix_notice)
    out_fmt = pixel_format(out_pix_fmt)
    if alpha and not out_fmt.alpha:
        notices.append(f"{src}: the alpha channel is dropped because {out_pix_fmt} has none; "
                       + keep_advice(container, alpha=True, codec=enc.codec))
    plan = plan_size(
        info.width, info.height, model_scale=model_scale, sar=info.sample_aspect_ratio, scale=size.scale,
        size=size.size, fit=size.fit, square_pixels=size.square_pixels,
        sar_storable=sar_kept(enc.codec, container),
        multiple=(1 << out_fmt.log2_chroma_w, 1 << out_fmt.log2_chroma_h),
    )
    notices.extend(f"{dst}: {note}" for note in plan.notes)
    out_spec = output_color(spec, in_fmt, out_fmt, plan.width, plan.height)
    if out_fmt.family == "yuv" and canonical_encoder(enc.codec) == "mjpeg":
        # FFmpeg's JPEG encoder opens on full range only ("returned 22" for limited), and its decoder reads every
        # JPEG (in .jpg, .avi or .mkv alike) as BT.601: JFIF's colour
        out_spec = jpeg_color(out_spec)
    return OutputPlan(src=FrameFormat(in_fmt, spec), dst=FrameFormat(out_fmt, out_spec), pix_fmt=out_pix_fmt,
                      size=plan, notices=tuple(notices))
