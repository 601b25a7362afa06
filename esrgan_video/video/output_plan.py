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
from ..frames.pixel_formats import pixel_format
from ..frames.sizing import SizePlan, plan_size
from ..frames.transform import FrameFormat
from ..options import UpscaleOptions
from .encoder_formats import choose_pix_fmt
from .encoder_settings import encoder_settings
from .writer import output_codec, output_format, sar_kept


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
    encoder_settings(enc.codec, crf=enc.crf, preset=enc.preset, options=enc.encoder_options)
    return options


def plan_output(info, options: UpscaleOptions, *, model_scale: int, src: str | Path, dst: str | Path) -> OutputPlan:
    """The output plan of ``src`` (its ``video.reader.VideoInfo`` ``info``) written to ``dst`` with ``options``
    by a model of scale ``model_scale``. Raises ``OptionError`` for contradictory size options."""
    options = with_codec(options, dst)
    enc, size = options.encode, options.size
    notices: list[str] = []
    in_fmt = pixel_format(info.pix_fmt)
    spec = info.color.resolved(info.width, info.height, in_fmt)
    out_pix_fmt, pix_notice = choose_pix_fmt(enc.codec, info.pix_fmt, requested=enc.pix_fmt)
    if pix_notice:
        notices.append(pix_notice)
    out_fmt = pixel_format(out_pix_fmt)
    if in_fmt.alpha and not out_fmt.alpha:
        notices.append(f"{src}: the alpha channel is dropped because {out_pix_fmt} has none; "
                       "use --codec ffv1 (or prores_ks with --pix-fmt yuva444p10le) to keep it")
    plan = plan_size(
        info.width, info.height, model_scale=model_scale, sar=info.sample_aspect_ratio, scale=size.scale,
        size=size.size, fit=size.fit, square_pixels=size.square_pixels,
        sar_storable=sar_kept(enc.codec, output_format(dst, enc.format)),
        multiple=(1 << out_fmt.log2_chroma_w, 1 << out_fmt.log2_chroma_h),
    )
    notices.extend(f"{dst}: {note}" for note in plan.notes)
    out_spec = output_color(spec, in_fmt, out_fmt, plan.width, plan.height)
    return OutputPlan(src=FrameFormat(in_fmt, spec), dst=FrameFormat(out_fmt, out_spec), pix_fmt=out_pix_fmt,
                      size=plan, notices=tuple(notices))
