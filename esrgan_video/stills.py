"""Still images (PNG, JPEG, TIFF, 16-bit PNG, WebP) through the same Upscaler.

Decoding and encoding use PyAV (FFmpeg's image codecs), so there is no second imaging library.
The upscale is the core's frame transform on one packed RGB(A) plane; an alpha channel is upscaled
separately (through the model as a grey image) and kept.
16-bit input stays 16-bit where the output format allows it (PNG, TIFF).
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from .errors import InputError, OutputError
from .options import UpscaleOptions
from .frames.color import ColorSpec
from .frames.pixel_formats import pixel_format
from .frames.sizing import output_size
from .frames.transform import FrameFormat, FrameTransform
from .upscaler import Upscaler

# output extension → (codec, pix_fmt for 8-bit RGB, for 8-bit RGBA, for 16-bit RGB, for 16-bit RGBA)
_ENCODERS = {
    ".png": ("png", "rgb24", "rgba", "rgb48be", "rgba64be"),
    ".tif": ("tiff", "rgb24", "rgba", "rgb48le", "rgba64le"),
    ".tiff": ("tiff", "rgb24", "rgba", "rgb48le", "rgba64le"),
    ".jpg": ("mjpeg", "yuvj444p", None, None, None),
    ".jpeg": ("mjpeg", "yuvj444p", None, None, None),
    ".webp": ("libwebp", "yuv420p", "yuva420p", None, None),
    ".bmp": ("bmp", "rgb24", "bgra", None, None),
}


def read_image(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(RGB H×W×3, alpha H×W or None, bits) with samples as uint8 or uint16."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    try:
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0))
    except (av.FFmpegError, StopIteration, IndexError) as e:
        raise InputError(f"{path}: not a readable image ({e})") from e
    fmt = frame.format
    bits = max(c.bits for c in fmt.components) if fmt.components else 8
    has_alpha = fmt.has_alpha if hasattr(fmt, "has_alpha") else any(c.is_alpha for c in fmt.components)
    deep = bits > 8
    target = ("rgba64le" if deep else "rgba") if has_alpha else ("rgb48le" if deep else "rgb24")
    arr = frame.to_ndarray(format=target)
    rgb = arr[..., :3]
    alpha = arr[..., 3] if has_alpha else None
    return np.ascontiguousarray(rgb), alpha, 16 if deep else 8


def upscale_image(
    src: str | Path,
    dst: str | Path,
    options: UpscaleOptions | None = None,
    *,
    overwrite: bool = False,
    upscaler: Upscaler | None = None,
    **flat_options,
) -> Path:
    """Upscale one still image into ``dst`` (format from its extension); returns ``dst``.

    ``options``: the model, runtime and size options (the encoding and trimming ones do not apply to stills);
    their fields may also be given as flat keywords, as for :func:`esrgan_video.upscale_video`."""
    opts = UpscaleOptions.from_kwargs(options, **flat_options)
    scale, size = opts.size.scale, opts.size.size
    src, dst = Path(src), Path(dst)
    ext = dst.suffix.lower()
    if ext not in _ENCODERS:
        raise OutputError(f"{dst}: unsupported image extension; use one of {', '.join(sorted(_ENCODERS))}")
    if dst.exists():
        if src.exists() and os.path.samefile(src, dst):
            raise OutputError(f"{dst}: the output is the input file; choose another name")
        if not overwrite:
            raise OutputError(f"{dst}: already exists; pass -y/--overwrite to replace it")
    rgb, alpha, bits = read_image(src)
    own = upscaler is None
    up = upscaler or Upscaler(opts.model, opts.runtime)
    try:
        h, w = rgb.shape[:2]
        out_w, out_h = output_size(w, h, model_scale=up.scale, scale=scale, size=size)
        big, big_alpha = _upscale(up, rgb, alpha, (w, h), (out_w, out_h))
    finally:
        if own:
            up.close()
    _write_image(dst, big, big_alpha, bits)
    return dst


def _upscale(up: Upscaler, rgb: np.ndarray, alpha: np.ndarray | None, in_size: tuple[int, int],
             out_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB (and alpha) through the frame transform as one packed full-range RGB(A) plane; alpha upscaled once,
    beside the colour."""
    deep = rgb.dtype == np.uint16
    name = ("rgba64le" if deep else "rgba") if alpha is not None else ("rgb48le" if deep else "rgb24")
    fmt = pixel_format(name)
    side = FrameFormat(fmt, ColorSpec().resolved(*in_size, fmt))
    plane = rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=2)
    (out,) = FrameTransform(up, src=side, dst=side, in_size=in_size, out_size=out_size)([plane])
    if alpha is None:
        return out, None
    return np.ascontiguousarray(out[..., :3]), np.ascontiguousarray(out[..., 3])


def _write_image(dst: Path, rgb: np.ndarray, alpha: np.ndarray | None, bits: int) -> None:
    codec, fmt8, fmt8a, fmt16, fmt16a = _ENCODERS[dst.suffix.lower()]
    deep = bits > 8 and fmt16 is not None
    if alpha is not None and (fmt16a if deep else fmt8a) is None:
        raise OutputError(f"{dst}: this format cannot keep the alpha channel; use .png or .tiff")
    if not deep and rgb.dtype == np.uint16:
        rgb = (rgb.astype(np.uint32) * 255 + 32767) // 65535
        rgb = rgb.astype(np.uint8)
        if alpha is not None:
            alpha = ((alpha.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if alpha is not None:
        data = np.concatenate([rgb, alpha[..., None]], axis=2)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(data), format="rgba64le" if deep else "rgba")
        pix_fmt = fmt16a if deep else fmt8a
    else:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb48le" if deep else "rgb24")
        pix_fmt = fmt16 if deep else fmt8
    tmp = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
    try:
        with av.open(str(tmp), "w", format="image2") as c:
            s = c.add_stream(codec, rate=1)
            s.width, s.height = rgb.shape[1], rgb.shape[0]
            s.pix_fmt = pix_fmt
            if codec == "mjpeg":
                s.codec_context.color_range = 2  # full range JPEG
                s.options = {"qmin": "1", "qmax": "2"}
            for packet in s.encode(frame.reformat(format=pix_fmt)):
                c.mux(packet)
            for packet in s.encode(None):
                c.mux(packet)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
