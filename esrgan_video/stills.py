"""Still images (PNG, JPEG, TIFF, 16-bit PNG, WebP, BMP, one-frame GIF) through the same Upscaler.

Reading and writing the files is ``esrgan_video.video.images``' (PyAV, FFmpeg's image codecs).
The upscale is the core's frame transform on one packed RGB(A) plane; an alpha channel is upscaled
separately (through the model as a grey image) and kept.
16-bit input stays 16-bit where the output format allows it (PNG, TIFF).

A grey image (PNG grey or grey + alpha, 8 or 16 bits; grey JPEG; grey TIFF; a grey-palette BMP) goes through
the model as R=G=B, as before (a grey 1 → 1 model runs once on it, not on each channel: the same output), and
comes out grey — one channel, the same depth, its alpha kept — where the output
format has a grey colour type (PNG, TIFF; BMP without alpha: ``video.images.holds_grey``). The grey is the BT.709
luma of the model's RGB (:data:`GREY_WEIGHTS`), taken from a 16-bit RGB result (8-bit input too: the model sees the
same values) and rounded once, so it is within 1 code of the luma of the 8-bit RGB output (0.5 at 16 bits).
R=G=B in does not give R=G=B out: on the whole of ``skimage.data.camera()`` the output's channels differ by 2.5
8-bit codes on average, 22 at most with RealESRGAN_x4plus and 47 with realesr-animevideov3, so the weights matter a
little: BT.601's luma (PIL's ``convert("L")``) differs from BT.709's by 2 codes at most there (x4plus; 5 with
animevideov3), 0.05 (0.2) on average; the mean of the channels by up to 4 (16). BT.709 is the luma of the sRGB
primaries the RGB output is in (libpng's and scikit-image's RGB → grey use it too).
Formats that cannot hold grey (JPEG: FFmpeg's JPEG encoder takes no grey format; WebP; BMP with alpha) get that
same luma in all three channels, R=G=B — a neutral picture, not the model's slight colour fringes — and a notice.

What the file says besides its pixels (``video.image_meta``): an EXIF orientation is applied before the upscale
(the output is upright and its EXIF says 1: what viewers show, and what OpenCV's reader gives Real-ESRGAN's own
script); the ICC profile (the pixels are not converted: the model works on the values as stored; left out where
its colour space is not the samples': a CMYK JPEG's), the EXIF block and the DPI (the number kept, as GIMP and
ImageMagick keep it on a resize) are written into PNG, JPEG and WebP outputs (WebP: no DPI), the profile and DPI
into TIFF, the DPI into BMP (a notice says what a format loses); XMP and text go into an output of the input's
format. An animated PNG, WebP or GIF is refused (every frame is the video pipeline's: the
command sends one to it when the output is a video); a TIFF's first page is upscaled, with a notice when it has
more; 16-bit samples written to an 8-bit format get a notice.

A huge still (an output over :data:`BLOCK_OUTPUT_PIXELS` at the model's scale) goes through the transform in blocks
with a tile's pad around each, into one output array: memory stays about 2 GB above the output itself.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ._entry import check_upscaler_options, path_arg
from .errors import EsrganVideoError, InputError, OutputError, listed
from .files import check_can_create, check_output_place
from .options import SizeOptions, UpscaleOptions
from .frames.color import LUMA_709, ColorSpec
from .frames.pixel_formats import packed_rgb, pixel_format
from .frames.sizing import output_size, plan_size, resize_rgb
from .frames.transform import FrameFormat, FrameTransform
from .upscaler import Upscaler
from .video.image_meta import not_kept
from .video.images import (IMAGE_EXTENSIONS, ImageMeta, check_extension, damage, eight_bit_notice, holds_deep,
                           holds_grey, image_meta, is_image_file, read_image, readable_bytes, round_to_8bit, write_image)

__all__ = ["GREY_WEIGHTS", "is_still_job", "probe_still_job", "read_image", "still_options", "upscale_image", "upscale_samples"]

GREY_WEIGHTS = LUMA_709
"""BT.709 luma weights (R, G, B): a grey still's grey output from the model's RGB (see the module's docstring)."""
_GREY_INT = tuple(round(w * 10_000) for w in GREY_WEIGHTS)  # (2126, 7152, 722), for an exact integer sum


def is_still_job(src: str | os.PathLike, dst: str | os.PathLike) -> bool:
    """Whether ``esrgan-video SRC DST`` (and a batch whole-file task) upscales a still image (:func:`upscale_image`),
    not a video: SRC has an image's extension (``IMAGE_EXTENSIONS``), or DST has one and FFmpeg opens SRC as an image
    (a GIF, TGA, PPM …); but an animated PNG, WebP or GIF goes to the video pipeline (every frame) when DST is a video
    or a WebP (which holds an animation); to another image's extension it is refused there."""
    return probe_still_job(src, dst)[0]


def probe_still_job(src: str | os.PathLike, dst: str | os.PathLike) -> tuple[bool, ImageMeta | None]:
    """:func:`is_still_job`'s answer, and SRC's :func:`~esrgan_video.video.images.image_meta` where the answer read
    it (a still into a WebP or a video: is it animated?), None where it did not: pass it on as
    ``upscale_image(meta=)``, which then does not read the file a second time."""
    src_ext, dst_ext = Path(src).suffix.lower(), Path(dst).suffix.lower()
    if src_ext not in IMAGE_EXTENSIONS and not (dst_ext in IMAGE_EXTENSIONS and is_image_file(src)):
        return False, None
    if dst_ext in IMAGE_EXTENSIONS and dst_ext != ".webp":
        return True, None
    try:
        meta = image_meta(src)
    except EsrganVideoError:
        return True, None  # a missing or empty input: upscale_image says so
    return meta.frames == 1 or meta.kind == "tiff", meta


def upscale_image(
    src: str | Path,
    dst: str | Path,
    options: UpscaleOptions | None = None,
    *,
    overwrite: bool = False,
    upscaler: Upscaler | None = None,
    notice: Callable[[str], None] | None = None,
    meta: ImageMeta | None = None,
    on_damage: Callable[[str], None] | None = None,
    **flat_options,
) -> Path:
    """Upscale one still image into ``dst`` (format from its extension); returns ``dst``.

    ``options``: the model, runtime and size options (the encoding and trimming ones do not apply to stills);
    their fields may also be given as flat keywords, as for :func:`esrgan_video.upscale_video`. ``notice`` receives
    one-line messages (e.g. a TensorRT build's progress). A grey image gives a grey one where ``dst``'s format
    holds grey (module docstring). ``meta``: ``src``'s ``image_meta`` where the caller has it
    (:func:`probe_still_job`); read here when not given. A PNG, JPEG or GIF cut short is upscaled as far as it
    decodes (a progressive JPEG cut before its last scan: the whole picture, at reduced detail) and written; the line
    saying what it lost (``video.images.damage``) goes, once the output is written, to ``on_damage`` (the CLI exits 9
    on it), or to ``notice`` when that is None. A WebP, TIFF or BMP cut short is refused (InputError naming the file,
    before the model loads): FFmpeg's decoders give no picture of one."""
    from .video.output_plan import known_scale

    src, dst = path_arg("src", src), path_arg("dst", dst)
    check_upscaler_options(upscaler, flat_options)
    opts = UpscaleOptions.from_kwargs(options, **flat_options)
    unused = video_only_notice(opts, dst)
    if unused and notice is not None:
        notice(unused)
    if dst.suffix.lower() not in IMAGE_EXTENSIONS:  # photo.png → photo.mp4: not an image's "unsupported extension"
        raise OutputError(f"{dst}: {src.name} is a still image; write it to an image ({', '.join(IMAGE_EXTENSIONS)})"
                          ", not a video")
    check_extension(dst)
    check_output_place(dst, overwrite=overwrite, src=src)  # the video writer's wording (esrgan_video.files)
    check_can_create(dst)  # before the model runs, not when the result is written
    meta = image_meta(src) if meta is None else meta
    if meta.frames > 1 and meta.kind != "tiff":
        raise InputError(f"{src}: an animated image ({meta.frames} frames); a still output would keep only the "
                         "first: write it as a video (.apng, .webp, .webm, .mkv, …) to upscale every frame")
    # a PNG, JPEG or GIF cut short, made whole once for both the read and the damage line (a JPEG's rows are told by
    # two decodes); InputError, before the model loads, where no row decodes or the format gives no cut picture
    readable = readable_bytes(src, meta) if meta.truncated else None
    rgb, alpha, bits = read_image(src, keep_grey=True, meta=meta, cut=None if readable is None else readable[0])
    check_extension(dst, alpha=alpha is not None)  # before the model runs
    in_size = (rgb.shape[1], rgb.shape[0])  # upright (an EXIF orientation applied)
    scale = upscaler.scale if upscaler is not None else known_scale(opts.model)
    if scale is not None or opts.size.size is not None or opts.size.scale is not None:
        check_still_size(src, dst, in_size, opts.size, scale)  # before the model is looked up, downloaded or built
    grey = rgb.ndim == 2
    as_rgb = grey and not holds_grey(dst, alpha=alpha is not None)
    if notice is not None:
        if meta.frames > 1:
            notice(f"{src}: a TIFF of {meta.frames} pages; only the first is upscaled")
        if bits > 8 and not holds_deep(dst):
            notice(eight_bit_notice(dst, 16))
        lost = not_kept(dst.suffix.lower(), meta, grey=grey and not as_rgb)
        if lost:
            notice(f"{dst}: this format does not keep {listed(lost)} of {src.name}")
    if as_rgb and notice is not None:
        notice(f"{dst}: this format has no grey{' with alpha' if alpha is not None else ''}; the grey image is "
               "written as RGB with equal channels (.png and .tiff keep it grey)")
    own = upscaler is None
    up = upscaler or Upscaler(opts.model, opts.runtime)
    try:
        if scale is None:  # a checkpoint's scale is in its weights: checked once it is loaded, before it runs
            check_still_size(src, dst, in_size, opts.size, up.scale)
        big, big_alpha = upscale_samples(up, rgb, alpha, bits, opts.size, notice=notice, name=dst)
        if not own:  # the caller's Upscaler: its deferred non-finite checks read before the image is written
            up.flush()
    finally:
        if own:
            up.close()
    write_image(dst, big, big_alpha, bits, meta)  # grey: R=G=B where the format has no grey
    if readable is not None:
        report = on_damage or notice
        if report is not None:
            report(damage(src, meta, readable))
    return dst


def upscale_samples(up: Upscaler, samples: np.ndarray, alpha: np.ndarray | None, bits: int, size: SizeOptions, *,
                    notice: Callable[[str], None] | None = None,
                    name: str | os.PathLike = "") -> tuple[np.ndarray, np.ndarray | None]:
    """A still's samples as ``read_image(keep_grey=True)`` gives them (H×W×3 RGB or H×W grey, alpha or None, of
    ``bits``) upscaled as :func:`upscale_image` writes them: to ``size``'s scale, size or fit (its notes to ``notice``,
    after ``name``); RGB at its own depth, grey as grey of ``bits`` (the luma of the model's RGB: module docstring).
    ``esrgan-video preview`` makes a still's columns with it."""
    grey = samples.ndim == 2
    rgb = np.repeat(samples[..., None], 3, axis=2) if grey else samples  # the model runs on RGB
    h, w = rgb.shape[:2]
    (out_w, out_h), resize, notes = _planned_size((w, h), size, up.scale)
    for note in notes:
        if notice is not None:
            notice(f"{name}: {note}")
    big, big_alpha = _upscale(up, rgb, alpha, (w, h), (out_w, out_h), resize=resize, notice=notice, grey=grey)
    return _to_grey(big, big_alpha, bits) if grey else (big, big_alpha)


def _planned_size(in_size: tuple[int, int], size: SizeOptions, model_scale: int | None
                  ) -> tuple[tuple[int, int], Callable, tuple[str, ...]]:
    """A still's output (width, height) from ``in_size`` at ``size``'s scale, size or fit and the model's scale (1
    where unknown: ``--size``/``--scale`` make the size without it), its resize and the plan's notes."""
    w, h = in_size
    if size.fit is not None:  # square-pixel WxH frames: padded, cropped or stretched, as for a video
        plan = plan_size(w, h, model_scale=model_scale or 1, size=size.size, fit=size.fit)
        return plan.size, plan.resize, tuple(plan.notes)
    return output_size(w, h, model_scale=model_scale or 1, scale=size.scale, size=size.size), resize_rgb, ()


def check_still_size(src: str | os.PathLike, dst: str | os.PathLike, in_size: tuple[int, int], size: SizeOptions,
                     model_scale: int | None) -> None:
    """OutputError (exit 6), one line naming ``dst``, where the picture :func:`upscale_samples` would make of an
    ``in_size`` still (``size``'s options, the model's ``model_scale``) is larger than ``dst``'s encoder writes
    (``video.frame_limits``: libwebp's 16383x16383, FFmpeg's own picture limit for every format), so the file could
    not be written: asked before the model runs (before it is looked up where its scale is known without it), not
    after. Pure but for FFmpeg's encoder names."""
    from .video.frame_limits import ENCODER_FRAME_LIMITS, FrameLimits, frame_size_refusal, picture_fits
    from .video.images import _ENCODERS

    (w, h), _, _ = _planned_size(in_size, size, model_scale)
    codec, pix_fmt = _ENCODERS[Path(dst).suffix.lower()][:2]
    if frame_size_refusal(codec, pix_fmt, (w, h)) is None:
        return
    how = (f"--scale {size.scale:g}" if size.scale is not None and size.size is None
           else "--size" if size.size is not None else f"the model's x{model_scale}")
    made = f"{w}x{h} ({in_size[0]}x{in_size[1]} by {how})"
    most = ENCODER_FRAME_LIMITS.get(codec, FrameLimits()).most
    if picture_fits(w, h) and most is not None:
        fmt = Path(dst).suffix.lower().lstrip(".").upper()
        raise OutputError(f"{dst}: the upscaled picture would be {made}, more than {fmt} holds ({codec} writes at "
                          f"most {most[0]}x{most[1]}); use a .png output, or a smaller --scale or --size")
    raise OutputError(f"{dst}: the upscaled picture would be {made}, more than FFmpeg encodes in one picture "
                      "((width + 128) x (height + 128) under 2^28); use a smaller --scale or --size")


def still_options(opts: UpscaleOptions) -> UpscaleOptions:
    """The options a still image's upscale uses (pure): ``opts`` with the encoding and trimming groups at their
    defaults (they apply to videos: :func:`video_only_notice`; ``--verbose`` kept) and ``--reuse`` at ``exact`` (one
    image has no earlier frame to reuse). What a batch's still task runs with, given the run's options for its
    videos, and what its options hash is over (``batch.driver.job_hashes``): a resume with another ``--codec``,
    ``--crf`` or ``--start`` keeps the finished stills."""
    from .options import EncodeOptions, TrimOptions

    return dataclasses.replace(opts, encode=EncodeOptions(verbose=opts.encode.verbose), trim=TrimOptions(),
                               runtime=dataclasses.replace(opts.runtime, reuse="exact"))


def video_only_notice(opts: UpscaleOptions, where: str | Path) -> str | None:
    """The notice for the encoding and trimming options ``opts`` sets, which a still image does not use ("W: --crf and
    --start apply to videos, not to a still image; ignored", by their flags' names); None when it sets none."""
    from .cli.arguments import flag_name  # the flags' spelling (--no-audio for audio), as errors name them

    unused = []
    for group in (opts.encode, opts.trim):
        default = type(group)()
        unused += [f.name for f in dataclasses.fields(group) if getattr(group, f.name) != getattr(default, f.name)
                   and f.name != "verbose"]
    if not unused:
        return None
    names = list(dict.fromkeys(flag_name(n) for n in unused))
    return f"{where}: {listed(names)} appl{'ies' if len(names) == 1 else 'y'} to videos, not to a still image; ignored"


def _upscale(up: Upscaler, rgb: np.ndarray, alpha: np.ndarray | None, in_size: tuple[int, int],
             out_size: tuple[int, int], *, resize=resize_rgb, notice: Callable[[str], None] | None = None,
             grey: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB (and alpha) through the frame transform as one packed full-range RGB(A) plane; alpha upscaled once,
    beside the colour. ``grey``: R = G = B (a grey still), so a grey (1 → 1) model runs once, not on each channel
    (the same output); and the result is 16-bit for 8-bit samples too, for :func:`_to_grey` to round the luma once
    (code × 257 in: the model sees the same float32 values, c × 257 / 65535 being c / 255 rounded alike)."""
    if grey and rgb.dtype == np.uint8:
        rgb = rgb.astype(np.uint16) * 257
        alpha = None if alpha is None else alpha.astype(np.uint16) * 257
    deep = rgb.dtype == np.uint16
    fmt = pixel_format(packed_rgb(deep=deep, alpha=alpha is not None))
    side = FrameFormat(fmt, ColorSpec().resolved(*in_size, fmt))
    plane = rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=2)
    (w, h), s = in_size, up.scale
    blocks = _blocks(h, w, s, up.config.tile_pad) if out_size == (w * s, h * s) and up.config.tile != 0 else []
    if len(blocks) > 1:  # a huge still: blocks into one output, not the whole picture in float32 at once
        (top, bottom, _, _), (left, right, _, _) = blocks[0]
        bw, bh = right - left, bottom - top
        run = FrameTransform(up, src=side, dst=side, in_size=(bw, bh), out_size=(bw * s, bh * s), notice=notice,
                             grey=grey)
        out = np.empty((h * s, w * s, plane.shape[2]), plane.dtype)
        for (top, bottom, y0, y1), (left, right, x0, x1) in blocks:
            (part,) = run([np.ascontiguousarray(plane[top:bottom, left:right])])
            out[y0 * s:y1 * s, x0 * s:x1 * s] = part[(y0 - top) * s:(y1 - top) * s, (x0 - left) * s:(x1 - left) * s]
    else:
        (out,) = FrameTransform(up, src=side, dst=side, in_size=in_size, out_size=out_size, resize=resize,
                                notice=notice, grey=grey)([plane])
    if alpha is None:
        return out, None
    return np.ascontiguousarray(out[..., :3]), np.ascontiguousarray(out[..., 3])


BLOCK_OUTPUT_PIXELS = 1920 * 1080 * 16
"""A still whose output (at the model's scale, without a resize) has more pixels than 1080p at ×4 goes through the
frame transform in square blocks of at most this many output pixels, written into one output array (``--tile 0``
keeps it whole). The transform holds a picture in float32 several times over at the output size — 58 bytes per
output pixel measured besides the model, before the colour code lost its temporaries (e082409): a 3000×2250 photo at ×4 (108 megapixels out) took 6.3 GB above the
process's start, in blocks 1.7 GB; a 24-megapixel photo at ×4 (384 megapixels) needed some 22 GB. Each block's
input has ``tile_pad`` pixels of the picture around it, as a tile does, and only its own pixels are kept: a block
seam is a tile seam (none with a model whose reach is under the pad). The pads cost about 4·pad/side more work,
some 14 % at ×4 (1440-pixel blocks), on top of the tiles' own overlap."""


def _spans(length: int, core: int, pad: int) -> list[tuple[int, int, int, int]]:
    """(window start, window end, first, end) along one axis: cores of at most ``core`` pixels, as even as they
    divide ``length`` (no sliver of a last one computed as a whole window), each window ``pad`` wider on both sides,
    every window the same length (the backend is built for one shape): moved inside at the ends."""
    if core >= length:
        return [(0, length, 0, length)]
    core = -(-length // -(-length // core))  # ceil(length / the number of cores)
    window = min(length, core + 2 * pad)
    spans = []
    for a in range(0, length, core):
        start = min(max(0, a - pad), length - window)
        spans.append((start, start + window, a, min(length, a + core)))
    return spans


def _blocks(h: int, w: int, scale: int, pad: int, limit: int | None = None) -> list[tuple[tuple, tuple]]:
    """The (row span, column span) of each block (:func:`_spans`) of an ``h``×``w`` picture upscaled by ``scale``:
    one, the whole picture, when its output has at most ``limit`` pixels (:data:`BLOCK_OUTPUT_PIXELS`)."""
    limit = BLOCK_OUTPUT_PIXELS if limit is None else limit
    if h * w * scale * scale <= limit:
        return [((0, h, 0, h), (0, w, 0, w))]
    core = max(1, math.isqrt(limit) // scale)
    return [(r, c) for r in _spans(h, core, pad) for c in _spans(w, core, pad)]


def _to_grey(rgb: np.ndarray, alpha: np.ndarray | None, bits: int) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit RGB (and alpha) → grey of ``bits`` (8 or 16): the :data:`GREY_WEIGHTS` luma, rounded half up once, in
    integers (exact; uint32 holds 65 535 × 10 000); alpha rounded to 8 bits as ``write_image`` rounds 16-bit samples."""
    wr, wg, wb = _GREY_INT
    y = rgb[..., 0].astype(np.uint32) * wr
    y += rgb[..., 1].astype(np.uint32) * wg
    y += rgb[..., 2].astype(np.uint32) * wb  # the luma × 10 000, in 16-bit codes
    if bits > 8:
        return ((y + 5000) // 10000).astype(np.uint16), alpha
    # 8 bits: luma / 65 535 × 255 = y / (10 000 × 257), rounded half up
    y += 5000 * 257
    y //= 10000 * 257
    if alpha is not None:
        alpha = round_to_8bit(alpha)
    return y.astype(np.uint8), alpha
