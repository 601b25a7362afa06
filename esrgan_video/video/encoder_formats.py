"""Pixel-format facts at the container/codec level: plane layouts, encoder format choice, size rounding.

Pure functions over FFmpeg's pixel-format descriptors (``av.VideoFormat``) and encoder capability lists
(``av.codec.Codec(name, "w").video_formats``); no media is opened here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import av
import numpy as np

from ..errors import OutputError
from ..frames.pixel_formats import pixel_format

__all__ = [
    "PlaneLayout",
    "FormatFacts",
    "choose_pix_fmt",
    "encoder_pix_fmts",
    "format_facts",
    "is_supported",
    "plane_layouts",
    "round_size",
    "size_multiple",
]


@dataclass(frozen=True)
class PlaneLayout:
    """One plane of a frame as a numpy array: ``shape`` ((h, w) or (h, w, channels)) and ``dtype``."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def row_bytes(self) -> int:
        """Bytes of real data in one row (the AVFrame's line size may be larger: padding)."""
        n = self.dtype.itemsize
        for d in self.shape[1:]:
            n *= d
        return n


@dataclass(frozen=True)
class FormatFacts:
    """What format choice needs to know about a pixel format (from FFmpeg's descriptor)."""

    name: str
    family: str  # "yuv", "rgb" or "gray"
    depth: int  # bits per component (max over components)
    log2_chroma_w: int
    log2_chroma_h: int
    alpha: bool
    planar: bool  # one component per plane
    full_range_alias: bool  # yuvj*: deprecated full-range aliases of yuv*


@lru_cache(maxsize=None)
def format_facts(name: str) -> FormatFacts:
    """Describe the pixel format ``name``; ValueError when FFmpeg does not know it."""
    try:
        fmt = av.VideoFormat(name, 64, 64)
    except (ValueError, av.FFmpegError) as e:
        raise ValueError(f"unknown pixel format {name!r}") from e
    comps = fmt.components
    alpha = any(c.is_alpha for c in comps)
    colour = [c for c in comps if not c.is_alpha]
    if fmt.is_rgb:
        family = "rgb"
    elif len(colour) == 1:
        family = "gray"
    else:
        family = "yuv"
    chroma = [c for c in comps if c.is_chroma]
    lw = lh = 0
    if chroma:
        lw = (64 // chroma[0].width).bit_length() - 1
        lh = (64 // chroma[0].height).bit_length() - 1
    planes = {c.plane for c in comps}
    return FormatFacts(
        name=name,
        family=family,
        depth=max(c.bits for c in comps),
        log2_chroma_w=lw,
        log2_chroma_h=lh,
        alpha=alpha,
        planar=len(planes) == len(comps),
        full_range_alias=name.startswith("yuvj"),
    )


def is_supported(name: str) -> bool:
    """Whether frames in pixel format ``name`` can be read and written as planes (``esrgan_video.frames.pixel_formats`` decides)."""
    try:
        pixel_format(name)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=None)
def plane_layouts(name: str, width: int, height: int) -> tuple[PlaneLayout, ...]:
    """The numpy shape and dtype of each plane of a ``width``×``height`` frame in format ``name``.

    Shapes come from ``esrgan_video.frames.pixel_formats`` ((h, w) per planar component, (h, w, c) for packed and
    semi-planar planes); samples above 8 bits are little-endian uint16. ValueError for unsupported formats.
    """
    pf = pixel_format(name)
    dtype = np.dtype(np.uint8 if pf.bytes_per_sample == 1 else "<u2")
    return tuple(PlaneLayout(shape, dtype) for shape in pf.plane_shapes(width, height))


def size_multiple(name: str) -> tuple[int, int]:
    """The (x, y) multiple a frame size must have in format ``name`` (2 for 4:2:0 chroma, 1 for 4:4:4)."""
    f = format_facts(name)
    return 1 << f.log2_chroma_w, 1 << f.log2_chroma_h


def round_size(width: int, height: int, name: str) -> tuple[int, int]:
    """``width``×``height`` rounded to the nearest size format ``name`` allows (at least one multiple)."""
    mx, my = size_multiple(name)
    return max(mx, round(width / mx) * mx), max(my, round(height / my) * my)


def encoder_pix_fmts(codec: str) -> tuple[str, ...]:
    """The pixel formats encoder ``codec`` accepts (empty when it does not say); OutputError if unknown."""
    try:
        enc = av.codec.Codec(codec, "w")
    except (ValueError, av.FFmpegError) as e:
        raise OutputError(f"unknown video encoder {codec!r} (this FFmpeg build has no such encoder)") from e
    if enc.type != "video":
        raise OutputError(f"{codec!r} is a {enc.type} encoder, not a video encoder")
    return tuple(f.name for f in (enc.video_formats or ()))


_FAMILY_FALLBACK = {"yuv": ("yuv", "rgb", "gray"), "rgb": ("rgb", "yuv", "gray"), "gray": ("gray", "yuv", "rgb")}


def _rank(cand: FormatFacts, want: FormatFacts) -> tuple:
    """Sort key: family, then depth (exact, then the closest above, then the closest below), then chroma
    subsampling (exact, then less subsampled, then more), then planar, then the same alpha."""
    family = _FAMILY_FALLBACK[want.family].index(cand.family)
    d = cand.depth - want.depth
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
    return (family, depth, sub, not cand.planar, cand.alpha != want.alpha, cand.name)


def _describe(f: FormatFacts) -> str:
    if f.family == "gray":
        return f"{f.depth}-bit gray"
    if f.family == "rgb":
        return f"{f.depth}-bit RGB"
    sub = {(0, 0): "4:4:4", (1, 0): "4:2:2", (1, 1): "4:2:0", (0, 1): "4:4:0", (2, 0): "4:1:1", (2, 2): "4:1:0"}
    return f"{f.depth}-bit YUV {sub.get((f.log2_chroma_w, f.log2_chroma_h), 'subsampled')}"


def choose_pix_fmt(codec: str, input_pix_fmt: str, requested: str | None = None) -> tuple[str, str | None]:
    """The output pixel format for encoder ``codec`` and a one-line notice when it differs from the input's kind.

    ``requested`` (``--pix-fmt``) must be one the encoder accepts. Otherwise the default keeps the input's
    family (YUV/RGB/gray), bit depth and chroma subsampling when the encoder accepts that, else takes the
    nearest it accepts: same family first, then the closest depth at or above the input's, then the closest
    subsampling (less subsampled before more). ``yuvj*`` inputs map to ``yuv*`` (range goes in the tags).
    """
    accepted = [n for n in encoder_pix_fmts(codec) if is_supported(n)]
    if requested is not None:
        if requested not in accepted:
            listed = ", ".join(accepted) or "none this program can write"
            raise OutputError(f"encoder {codec} cannot write pixel format {requested!r}; it accepts: {listed}")
        return requested, None
    if not accepted:
        raise OutputError(f"encoder {codec} accepts no pixel format this program can write")
    want = format_facts(input_pix_fmt)
    if want.full_range_alias:
        want = format_facts(input_pix_fmt.replace("yuvj", "yuv", 1))
    cands = [format_facts(n) for n in accepted if not format_facts(n).full_range_alias]
    best = min(cands, key=lambda c: _rank(c, want))
    if best.name == want.name or (best.family, best.depth, best.log2_chroma_w, best.log2_chroma_h) == (
            want.family, want.depth, want.log2_chroma_w, want.log2_chroma_h) and best.alpha == want.alpha:
        return best.name, None
    notice = (f"{codec} cannot encode {_describe(want)} ({input_pix_fmt}); writing {best.name} "
              f"({_describe(best)}) instead")
    if codec not in ("ffv1", "prores_ks") and (want.family == "rgb" or want.depth > 10 or best.depth < want.depth):
        notice += "; use --codec ffv1 (or prores_ks for 10-bit YUV) to keep it"
    return best.name, notice
