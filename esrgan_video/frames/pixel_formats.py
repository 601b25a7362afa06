"""The one descriptor of the FFmpeg pixel formats the pipeline reads and writes (pure data).

A :class:`PixelFormat` says how a frame's samples are laid out: family (``yuv``, ``rgb``,
``gray``), bit depth, chroma subsampling, the planes in FFmpeg's order (``gbrp`` stores
G, B, R!), packed vs planar, alpha, the frame-size multiple, and each plane's NumPy shape and
dtype (:meth:`PixelFormat.plane_layouts`). The layouts are little-endian, which is what FFmpeg's
decoders produce on every platform we run on, but for three 16-bit big-endian ones that only the PNG and APNG
encoders take (:data:`BIG_ENDIAN`: ``rgb48be``, ``rgba64be``, ``gray16be``, what a 16-bit PNG stores): the
pipeline's planes of those are native ``uint16`` like the others' (the frame transform makes them so), and the
byte order is swapped where a frame is built from them (their layouts' dtype is ``>u2``). A decoder's frame in one
of them (a 16-bit PNG in an APNG or MOV) is read as its little-endian twin (:func:`read_format`). Which formats
an *encoder* takes is ``video.encoder_formats``' business.

Plane shapes follow FFmpeg: chroma sizes are ceil-divided (``-(-w >> log2_chroma_w)``);
packed formats have one ``H x W x C`` plane whose components are listed in memory order
(``bgr0`` is ``("BGRX",)``: ``X`` is a padding byte, not a component); semi-planar formats
(``nv12``, ``p010le``) have a luma plane and one ``Hc x Wc x 2`` interleaved chroma plane;
``p010le`` keeps its 10 bits in the high bits of each 16-bit word (``shift == 6``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

FAMILIES = ("yuv", "rgb", "gray")

_SUBSAMPLING_NAMES = {"444": (0, 0), "422": (1, 0), "420": (1, 1), "440": (0, 1), "411": (2, 0)}

PADDING = "X"
"""The letter of an unused byte in a packed plane (FFmpeg's ``0`` in ``bgr0``, ``0rgb``)."""


@dataclass(frozen=True)
class PlaneLayout:
    """One plane of a frame as a NumPy array: ``shape`` ((h, w) or (h, w, channels)) and ``dtype``."""

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
class PixelFormat:
    """The layout of one FFmpeg pixel format."""

    name: str
    """FFmpeg's name, e.g. ``yuv420p10le``."""
    family: str
    """``yuv``, ``rgb`` or ``gray``."""
    bits: int
    """Significant bits per sample (8, 10, 12 or 16)."""
    log2_chroma_w: int = 0
    """Horizontal chroma subsampling (1 for 4:2:0 and 4:2:2)."""
    log2_chroma_h: int = 0
    """Vertical chroma subsampling (1 for 4:2:0)."""
    planes: tuple[str, ...] = ()
    """Components of each plane in memory order: ``("Y", "U", "V")``, ``("G", "B", "R")``,
    ``("RGB",)``/``("BGRX",)``/``("ARGB",)`` for packed RGB, ``("Y", "UV")`` for semi-planar."""
    full_range: bool = False
    """True for the deprecated ``yuvj*`` formats, which imply full (JPEG) range."""
    shift: int = 0
    """Bits the samples are shifted left inside their word (6 for ``p010le``)."""
    big_endian: bool = False
    """A 16-bit big-endian layout (:data:`BIG_ENDIAN`: PNG's ``rgb48be``, ``rgba64be``, ``gray16be``)."""

    @property
    def layout(self) -> str:
        """``planar``, ``packed`` (one interleaved plane) or ``semiplanar`` (Y + interleaved UV)."""
        if len(self.planes) == 1 and len(self.planes[0]) > 1:
            return "packed"
        if any(len(p) > 1 for p in self.planes):
            return "semiplanar"
        return "planar"

    @property
    def planar(self) -> bool:
        """True when every component has its own plane."""
        return self.layout == "planar"

    @property
    def alpha(self) -> bool:
        """True when the format carries an alpha component."""
        return any("A" in p for p in self.planes)

    @property
    def components(self) -> int:
        """Number of components, alpha included, padding not (1 for gray, 3 for YUV/RGB, 4 with alpha)."""
        return sum(len(p.replace(PADDING, "")) for p in self.planes)

    @property
    def size_multiple(self) -> tuple[int, int]:
        """The (x, y) multiple a frame size must have (2 for 4:2:0 chroma, 1 for 4:4:4)."""
        return 1 << self.log2_chroma_w, 1 << self.log2_chroma_h

    @property
    def description(self) -> str:
        """``8-bit RGB``, ``10-bit YUV 4:2:0``, ``16-bit gray`` (for messages)."""
        if self.family == "gray":
            return f"{self.bits}-bit gray"
        if self.family == "rgb":
            return f"{self.bits}-bit RGB"
        sub = {(0, 0): "4:4:4", (1, 0): "4:2:2", (1, 1): "4:2:0", (0, 1): "4:4:0", (2, 0): "4:1:1", (2, 2): "4:1:0"}
        return f"{self.bits}-bit YUV {sub.get(self.subsampling, 'subsampled')}"

    @property
    def nb_planes(self) -> int:
        """Number of planes in memory."""
        return len(self.planes)

    @property
    def subsampling(self) -> tuple[int, int]:
        """``(log2_chroma_w, log2_chroma_h)``."""
        return self.log2_chroma_w, self.log2_chroma_h

    @property
    def sample_dtype(self) -> str:
        """NumPy dtype name of one sample word: ``uint8`` up to 8 bits, else ``uint16``."""
        return "uint8" if self.bits <= 8 else "uint16"

    @property
    def numpy_dtype(self) -> np.dtype:
        """The exact dtype of a sample word in the frame: ``uint8``, or ``<u2`` above 8 bits (``>u2`` for a
        :attr:`big_endian` format)."""
        return np.dtype(np.uint8 if self.bits <= 8 else ">u2" if self.big_endian else "<u2")

    @property
    def bytes_per_sample(self) -> int:
        """1 or 2."""
        return 1 if self.bits <= 8 else 2

    @property
    def max_code(self) -> int:
        """Largest code value, ``2**bits - 1``."""
        return (1 << self.bits) - 1

    @property
    def _slots(self) -> str:
        """The planes with alpha and padding both written ``_`` (``BGR_`` for ``bgra`` and ``bgr0``)."""
        return "|".join(self.planes).replace("A", "_").replace(PADDING, "_")

    @property
    def _colour_order(self) -> str:
        """The colour letters in memory order, without alpha and padding (``BGR`` for ``bgra``)."""
        return "".join(self.planes).replace("A", "").replace(PADDING, "")

    def chroma_size(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` of a chroma plane, ceil-divided like FFmpeg."""
        return -(-width >> self.log2_chroma_w), -(-height >> self.log2_chroma_h)

    def plane_shapes(self, width: int, height: int) -> tuple[tuple[int, ...], ...]:
        """Array shape of each plane for a ``width x height`` frame (rows first)."""
        if width < 1 or height < 1:
            raise ValueError(f"{self.name}: frame size must be positive, got {width}x{height}")
        cw, ch = self.chroma_size(width, height)
        shapes: list[tuple[int, ...]] = []
        for comps in self.planes:
            is_chroma = comps in ("U", "V", "UV")
            h, w = (ch, cw) if is_chroma else (height, width)
            shapes.append((h, w) if len(comps) == 1 else (h, w, len(comps)))
        return tuple(shapes)

    def plane_layouts(self, width: int, height: int) -> tuple[PlaneLayout, ...]:
        """The NumPy shape and dtype of each plane of a ``width x height`` frame (what readers copy
        out of an AVFrame and writers copy in)."""
        return tuple(PlaneLayout(shape, self.numpy_dtype) for shape in self.plane_shapes(width, height))

    def same_family(
        self,
        *,
        bits: int | None = None,
        subsampling: tuple[int, int] | str | None = None,
        alpha: bool | None = None,
    ) -> PixelFormat:
        """The supported format of this family with the given bit depth / subsampling / alpha.

        ``subsampling`` is ``(log2 w, log2 h)`` or ``"444"``, ``"422"``, ``"420"``. Packed and
        semi-planar formats map to their planar relatives (``rgb24`` -> ``gbrp10le`` for 10 bits).
        Raises ValueError when no supported format matches.
        """
        want_bits = self.bits if bits is None else bits
        if isinstance(subsampling, str):
            if subsampling not in _SUBSAMPLING_NAMES:
                raise ValueError(f"unknown subsampling {subsampling!r}; use one of {sorted(_SUBSAMPLING_NAMES)}")
            subsampling = _SUBSAMPLING_NAMES[subsampling]
        want_sub = self.subsampling if subsampling is None else tuple(subsampling)
        want_alpha = self.alpha if alpha is None else alpha
        if (want_bits, want_sub, want_alpha) == (self.bits, self.subsampling, self.alpha):
            return self
        def matching(full_range: bool, big_endian: bool = self.big_endian) -> list[PixelFormat]:
            return [f for f in _FORMATS.values()
                    if (f.family, f.bits, f.subsampling, f.alpha, f.full_range, f.shift, f.big_endian)
                    == (self.family, want_bits, want_sub, want_alpha, full_range, 0, big_endian)]

        candidates = matching(self.full_range)
        if not candidates and self.full_range:  # yuvj only exists in 8 bits
            candidates = matching(False)
        if not candidates and self.big_endian:  # the big-endian ones are 16-bit packed only
            candidates = matching(False, False)
        if not candidates:
            raise ValueError(
                f"no supported {self.family} pixel format with {want_bits} bits, subsampling {want_sub}"
                f"{' and alpha' if want_alpha else ''} (from {self.name})"
            )
        # Prefer the same layout, then the same bytes with alpha for padding or back (bgr0 <-> bgra), then the
        # same colour order (bgr0 -> bgr48le), then planar, then alpha/padding last (rgba before argb), then none.
        candidates.sort(key=lambda f: (f.layout != self.layout, f._slots != self._slots,
                                       f._colour_order != self._colour_order, f.layout != "planar",
                                       f._slots.startswith("_"), any(PADDING in p for p in f.planes), f.name))
        return candidates[0]


def _yuv(name: str, bits: int, lw: int, lh: int, *, alpha: bool = False, full: bool = False) -> PixelFormat:
    planes = ("Y", "U", "V", "A") if alpha else ("Y", "U", "V")
    return PixelFormat(name, "yuv", bits, lw, lh, planes, full_range=full)


def _build() -> dict[str, PixelFormat]:
    fmts: list[PixelFormat] = []
    subs = {"420": (1, 1), "422": (1, 0), "444": (0, 0)}
    for sub, (lw, lh) in subs.items():
        fmts.append(_yuv(f"yuv{sub}p", 8, lw, lh))
        fmts.append(_yuv(f"yuvj{sub}p", 8, lw, lh, full=True))
        fmts.append(_yuv(f"yuva{sub}p", 8, lw, lh, alpha=True))
        for bits in (10, 12, 16):
            fmts.append(_yuv(f"yuv{sub}p{bits}le", bits, lw, lh))
        for bits in (10, 12, 16) if sub != "420" else (10, 16):  # FFmpeg has no yuva420p12
            fmts.append(_yuv(f"yuva{sub}p{bits}le", bits, lw, lh, alpha=True))
    # DV NTSC (4:1:1) and JPEG's 4:4:0 (chroma halved vertically only)
    for sub, (lw, lh) in {"411": (2, 0), "440": (0, 1)}.items():
        fmts.append(_yuv(f"yuv{sub}p", 8, lw, lh))
        fmts.append(_yuv(f"yuvj{sub}p", 8, lw, lh, full=True))
    for bits in (10, 12):
        fmts.append(_yuv(f"yuv440p{bits}le", bits, 0, 1))
    fmts.append(PixelFormat("nv12", "yuv", 8, 1, 1, ("Y", "UV")))
    fmts.append(PixelFormat("p010le", "yuv", 10, 1, 1, ("Y", "UV"), shift=6))
    fmts.append(PixelFormat("gray", "gray", 8, planes=("Y",)))
    for bits in (10, 12, 16):
        fmts.append(PixelFormat(f"gray{bits}le", "gray", bits, planes=("Y",)))
    fmts.append(PixelFormat("gbrp", "rgb", 8, planes=("G", "B", "R")))
    fmts.append(PixelFormat("gbrap", "rgb", 8, planes=("G", "B", "R", "A")))
    for bits in (10, 12, 16):
        fmts.append(PixelFormat(f"gbrp{bits}le", "rgb", bits, planes=("G", "B", "R")))
        fmts.append(PixelFormat(f"gbrap{bits}le", "rgb", bits, planes=("G", "B", "R", "A")))
    # Packed RGB: components in memory (byte) order; X is padding. FFV1 writes 8-bit RGB only as bgr0/bgra.
    for name, planes in (("rgb24", "RGB"), ("bgr24", "BGR"), ("rgba", "RGBA"), ("bgra", "BGRA"), ("argb", "ARGB"),
                         ("abgr", "ABGR"), ("rgb0", "RGBX"), ("bgr0", "BGRX"), ("0rgb", "XRGB"), ("0bgr", "XBGR")):
        fmts.append(PixelFormat(name, "rgb", 8, planes=(planes,)))
    for name, planes in (("rgb48le", "RGB"), ("bgr48le", "BGR"), ("rgba64le", "RGBA"), ("bgra64le", "BGRA")):
        fmts.append(PixelFormat(name, "rgb", 16, planes=(planes,)))
    little = {f.name: f for f in fmts}  # each big-endian one is its little-endian twin, bytes swapped
    fmts += [replace(little[twin], name=name, big_endian=True) for name, twin in BIG_ENDIAN.items()]
    return {f.name: f for f in fmts}


BIG_ENDIAN: dict[str, str] = {"rgb48be": "rgb48le", "rgba64be": "rgba64le", "gray16be": "gray16le"}
"""The big-endian formats described, and their little-endian twins (the same samples, bytes swapped): FFmpeg's PNG
and APNG encoders take 16-bit samples only so (a 16-bit PNG stores them big-endian), and its PNG decoder gives them
so. Without them a 10-bit video's one frame into ``x.png`` (or an ``.apng``) was written in 8 bits."""

_FORMATS = _build()

SUPPORTED_PIX_FMTS: tuple[str, ...] = tuple(sorted(n for n in _FORMATS if not _FORMATS[n].big_endian))
"""Every FFmpeg pixel format name :func:`pixel_format` knows but the :data:`BIG_ENDIAN` ones (a raw video's format
is chosen among these: its little-endian twin is as good, and what a decoder gives)."""


def pixel_format(name: str) -> PixelFormat:
    """The descriptor of FFmpeg pixel format ``name``; ValueError for unsupported ones."""
    try:
        return _FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unsupported pixel format {name!r}: supported are planar YUV 4:2:0/4:2:2/4:4:4/4:1:1/4:4:0 "
            "(8/10/12/16-bit, yuvj, yuva, nv12, p010le), gray (8/10/12/16-bit), "
            "planar RGB gbrp/gbrap (8/10/12/16-bit) and packed RGB (rgb24, bgr24, rgba, bgra, argb, abgr, "
            "rgb0, bgr0, 0rgb, 0bgr, rgb48le, bgr48le, rgba64le, bgra64le; big-endian rgb48be, rgba64be, gray16be)"
        ) from None


READ_AS: dict[str, str] = {"uyvy422": "yuv422p", "yuyv422": "yuv422p", "pal8": "rgb24"}
"""Formats decoders give that are read losslessly as a supported one (and never written): packed 4:2:2 (``2vuy``
MOV, ``YUY2`` AVI captures), repacked into planar ``yuv422p``; a palette (8-bit AVI/QuickTime, ``pal8`` PNG),
looked up into ``rgb24`` — ``rgba`` when the picture has see-through entries (:func:`read_format`)."""


def read_format(name: str, *, see_through: bool = False) -> str | None:
    """The supported format frames decoded as ``name`` are read as (:data:`READ_AS`): ``yuv422p`` for
    ``uyvy422``/``yuyv422``, ``rgb24`` for ``pal8`` (``rgba`` when ``see_through``: a palette entry the picture
    uses is not opaque); a :data:`BIG_ENDIAN` format's little-endian twin (``rgb48be`` as ``rgb48le``, its bytes
    swapped); ``name`` itself when it is supported as it is; None when it is neither."""
    if name == "pal8" and see_through:
        return "rgba"
    if name in READ_AS:
        return READ_AS[name]
    if name in BIG_ENDIAN:
        return BIG_ENDIAN[name]
    return name if is_supported(name) else None


def packed_rgb(*, deep: bool, alpha: bool) -> str:
    """The packed RGB format of 8 or 16 bits (``deep``), with or without alpha: ``rgb24``, ``rgba``, ``rgb48le``,
    ``rgba64le`` (a still's samples, a YUV input's still written as RGB)."""
    return ("rgba64le" if deep else "rgba") if alpha else ("rgb48le" if deep else "rgb24")


def is_supported(name: str) -> bool:
    """Whether frames in pixel format ``name`` can be read and written as planes."""
    return isinstance(name, str) and name in _FORMATS


@lru_cache(maxsize=256)
def plane_layouts(name: str, width: int, height: int) -> tuple[PlaneLayout, ...]:
    """:meth:`PixelFormat.plane_layouts` of format ``name``; ValueError for unsupported formats."""
    return pixel_format(name).plane_layouts(width, height)


def size_multiple(name: str) -> tuple[int, int]:
    """:attr:`PixelFormat.size_multiple` of format ``name`` (2 for 4:2:0 chroma, 1 for 4:4:4)."""
    return pixel_format(name).size_multiple


def round_size(width: int, height: int, name: str) -> tuple[int, int]:
    """``width`` x ``height`` rounded to the nearest size format ``name`` allows (at least one multiple)."""
    mx, my = size_multiple(name)
    return max(mx, round(width / mx) * mx), max(my, round(height / my) * my)


__all__ = [
    "BIG_ENDIAN",
    "FAMILIES",
    "PADDING",
    "READ_AS",
    "SUPPORTED_PIX_FMTS",
    "PixelFormat",
    "PlaneLayout",
    "is_supported",
    "packed_rgb",
    "pixel_format",
    "plane_layouts",
    "read_format",
    "round_size",
    "size_multiple",
]
