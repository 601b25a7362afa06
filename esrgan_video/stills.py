"""Still images (PNG, JPEG, TIFF, 16-bit PNG, WebP) through the same Upscaler.

Reading and writing the files is ``esrgan_video.video.images``' (PyAV, FFmpeg's image codecs).
The upscale is the core's frame transform on one packed RGB(A) plane; an alpha channel is upscaled
separately (through the model as a grey image) and kept.
16-bit input stays 16-bit where the output format allows it (PNG, TIFF).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import OutputError
from .options import UpscaleOptions
from .frames.color import ColorSpec
from .frames.pixel_formats import pixel_format
from .frames.sizing import output_size, plan_size, resize_rgb
from .frames.transform import FrameFormat, FrameTransform
from .upscaler import Upscaler
from .video.images import check_extension, read_image, write_image

__all__ = ["read_image", "upscale_image"]


def upscale_image(
    src: str | Path,
    dst: str | Path,
    options: UpscaleOptions | None = None,
    *,
    overwrite: bool = False,
    upscaler: Upscaler | None = None,
    notice: Callable[[str], None] | None = None,
    **flat_options,
) -> Path:
    """Upscale one still image into ``dst`` (format from its extension); returns ``dst``.

    ``options``: the model, runtime and size options (the encoding and trimming ones do not apply to stills);
    their fields may also be given as flat keywords, as for :func:`esrgan_video.upscale_video`. ``notice`` receives
    one-line messages (e.g. a TensorRT build's progress)."""
    opts = UpscaleOptions.from_kwargs(options, **flat_options)
    scale, size = opts.size.scale, opts.size.size
    src, dst = Path(src), Path(dst)
    unused = _video_only_options(opts)
    if unused and notice is not None:
        notice(f"{dst}: {', '.join(unused)} apply to videos, not to a still image; ignored")
    check_extension(dst)
    if not dst.parent.is_dir():
        raise OutputError(f"{dst}: the directory {dst.parent} does not exist")
    if dst.exists():
        if src.exists() and os.path.samefile(src, dst):
            raise OutputError(f"{dst}: the output is the input file; choose another name")
        if not overwrite:
            raise OutputError(f"{dst}: already exists; pass -y/--overwrite to replace it")
    rgb, alpha, bits = read_image(src)
    check_extension(dst, alpha=alpha is not None)  # before the model runs
    own = upscaler is None
    up = upscaler or Upscaler(opts.model, opts.runtime)
    try:
        h, w = rgb.shape[:2]
        resize = resize_rgb
        if opts.size.fit is not None:  # square-pixel WxH frames: padded, cropped or stretched, as for a video
            plan = plan_size(w, h, model_scale=up.scale, size=size, fit=opts.size.fit)
            for note in plan.notes:
                if notice is not None:
                    notice(f"{dst}: {note}")
            (out_w, out_h), resize = plan.size, plan.resize
        else:
            out_w, out_h = output_size(w, h, model_scale=up.scale, scale=scale, size=size)
        big, big_alpha = _upscale(up, rgb, alpha, (w, h), (out_w, out_h), resize=resize, notice=notice)
    finally:
        if own:
            up.close()
    write_image(dst, big, big_alpha, bits)
    return dst


def _video_only_options(opts: UpscaleOptions) -> list[str]:
    """The encoding and trimming options ``opts`` sets (their fields' names), which a still image does not use."""
    out = []
    for group in (opts.encode, opts.trim):
        default = type(group)()
        out += [f.name for f in dataclasses.fields(group) if getattr(group, f.name) != getattr(default, f.name)
                and f.name != "verbose"]
    return out


def _upscale(up: Upscaler, rgb: np.ndarray, alpha: np.ndarray | None, in_size: tuple[int, int],
             out_size: tuple[int, int], *, resize=resize_rgb, notice: Callable[[str], None] | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB (and alpha) through the frame transform as one packed full-range RGB(A) plane; alpha upscaled once,
    beside the colour."""
    deep = rgb.dtype == np.uint16
    name = ("rgba64le" if deep else "rgba") if alpha is not None else ("rgb48le" if deep else "rgb24")
    fmt = pixel_format(name)
    side = FrameFormat(fmt, ColorSpec().resolved(*in_size, fmt))
    plane = rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=2)
    (out,) = FrameTransform(up, src=side, dst=side, in_size=in_size, out_size=out_size, resize=resize,
                            notice=notice)([plane])
    if alpha is None:
        return out, None
    return np.ascontiguousarray(out[..., :3]), np.ascontiguousarray(out[..., 3])
