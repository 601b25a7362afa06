"""Colour conversion between native frame planes and RGB, as torch ops on the planes' device.

Conventions (ITU-T H.273 / Rec. BT.601, BT.709, BT.2020; FFmpeg's scaling):

* Matrix codes: 0 identity (GBR), 1 BT.709, 4 FCC, 5/6 BT.601, 7 SMPTE 240M, 9 BT.2020 NCL.
  10 (BT.2020 constant luminance) and the others (8 YCgCo, 12/13, 14 ICtCp) are refused with a
  ValueError: converting them as if they were NCL would silently shift colours.
* Range for ``b`` bits. Limited: ``Y = 16*2^(b-8) + 219*2^(b-8)*Y'``, ``C = 128*2^(b-8) + 224*2^(b-8)*C'``.
  Full: ``Y = (2^b - 1)*Y'``, ``C = 2^(b-1) + (2^b - 1)*C'`` (H.273 full range). Identity (GBR)
  and gray use the luma formula for every component.
* YUV -> RGB gives float32 in [0, 1] (values outside are clipped: the models take [0, 1]).
  RGB -> YUV rounds half up (``floor(v + 0.5)``, deterministic, no dither) and clips only to the
  code range ``[0, 2^b - 1]``; limited-range output is *not* clipped to 16-235, so over- and
  undershoots of the model survive as they would in any encoder.
* Chroma siting (FFmpeg's AVChromaLocation names): ``left`` (MPEG-2/H.264 4:2:0 default:
  co-sited with the left luma column, vertically between rows), ``center`` (JPEG/MPEG-1),
  ``topleft`` (co-sited both ways), ``top``, ``bottomleft``, ``bottom``. Upsampling interpolates
  at the exact phase of each luma sample (bilinear, or Catmull-Rom bicubic); downsampling uses
  the triangle (linear) filter centred on each chroma sample's position, its transpose.
  Both preserve linear ramps, so a round trip of a smooth image is near exact.
* Integer planes come in as uint8 / uint16 / int16 / int32 tensors (or NumPy arrays); planes
  leave :func:`rgb_to_planes` as uint8 (<= 8 bits) or uint16 (> 8 bits), which NumPy and PyAV
  take as is. Internally everything is float32 (exact for 16-bit codes).
* Alpha is not part of RGB: :func:`planes_to_rgb` ignores an alpha plane; use
  :func:`alpha_to_float` / :func:`float_to_alpha`, and pass ``alpha=`` to :func:`rgb_to_planes`
  (default: opaque). Alpha is always full range.

Plane shapes: ``H x W`` (or ``N x H x W`` for a batch) per planar component, ``H x W x C`` (or
``N x H x W x C``) for packed and semi-planar chroma planes, as :meth:`PixelFormat.plane_shapes` says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch.nn import functional as F

from .colorspace import (
    CHROMA_LOCATIONS,
    ChromaLocation,
    Matrix,
    Primaries,
    Range,
    Transfer,
    chroma_location_code,
    chroma_location_from_code,
)
from .pixel_formats import PADDING, PixelFormat

UNSPECIFIED = 2
"""H.273 code for 'unspecified' (``Matrix``, ``Primaries`` and ``Transfer.UNSPECIFIED`` all equal it)."""

MATRIX_KR_KB: dict[Matrix, tuple[float, float]] = {
    Matrix.BT709: (0.2126, 0.0722),
    Matrix.FCC: (0.30, 0.11),  # 47 CFR 73.682
    Matrix.BT470BG: (0.299, 0.114),  # BT.601 625
    Matrix.SMPTE170M: (0.299, 0.114),  # BT.601 525
    Matrix.SMPTE240M: (0.212, 0.087),
    Matrix.BT2020_NCL: (0.2627, 0.0593),
}
"""Luma coefficients (Kr, Kb) per H.273 matrix code; ``Matrix.RGB`` (0) is the identity (GBR)."""

_KR_709, _KB_709 = MATRIX_KR_KB[Matrix.BT709]
LUMA_709 = (_KR_709, 1.0 - _KR_709 - _KB_709, _KB_709)  # 0.2126, 0.7152, 0.0722
"""BT.709's luma weights (Kr, 1 − Kr − Kb, Kb) on R, G, B: grey from the RGB a model gives (grey stills, a
1-channel model fed RGB frames)."""

SUPPORTED_MATRICES = (Matrix.RGB, *MATRIX_KR_KB)

CHROMA_FILTERS = ("bilinear", "bicubic")
DEFAULT_CHROMA_FILTER = "bicubic"


@dataclass(frozen=True)
class ColorSpec:
    """Colour facts of a stream: H.273 codes as :mod:`~esrgan_video.frames.colorspace` enums.

    Plain ints are accepted and converted (an IntEnum compares equal to its number), so
    ``ColorSpec(1, 1, 1, False, "left") == ColorSpec(Matrix.BT709, Primaries.BT709, Transfer.BT709, False, "left")``.
    """

    matrix: Matrix = Matrix.UNSPECIFIED
    """Matrix coefficients: RGB (0, identity), BT709 (1), BT470BG/SMPTE170M (5/6, BT.601), BT2020_NCL (9), …"""
    primaries: Primaries = Primaries.UNSPECIFIED
    """Colour primaries, passed through to the encoder (BT709, BT470BG, SMPTE170M, BT2020, …)."""
    transfer: Transfer = Transfer.UNSPECIFIED
    """Transfer characteristics, passed through (BT709, SRGB (13), PQ (16), HLG (18), …)."""
    full_range: bool | None = None
    """True for full (JPEG/PC) range, False for limited (MPEG/TV), None if unspecified (see :attr:`range`)."""
    chroma_location: str | None = None
    """FFmpeg's name of the chroma siting, one of :data:`CHROMA_LOCATIONS`, or None if unspecified
    (see :attr:`chroma_siting`)."""

    def __post_init__(self) -> None:
        if self.chroma_location == "unspecified":
            object.__setattr__(self, "chroma_location", None)
        if self.chroma_location is not None and self.chroma_location not in CHROMA_LOCATIONS:
            raise ValueError(f"chroma_location must be one of {CHROMA_LOCATIONS} or None, got {self.chroma_location!r}")
        for field, enum in (("matrix", Matrix), ("primaries", Primaries), ("transfer", Transfer)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
                raise ValueError(f"ColorSpec.{field} must be an H.273 code 0..255, got {value!r}")
            object.__setattr__(self, field, enum(value))

    @property
    def range(self) -> Range | None:
        """:attr:`full_range` as a :class:`Range` (None when unspecified)."""
        return Range.from_full(self.full_range)

    @property
    def chroma_siting(self) -> ChromaLocation | None:
        """:attr:`chroma_location` as a :class:`ChromaLocation` (None when unspecified)."""
        return ChromaLocation.from_name(self.chroma_location)

    def resolved(self, width: int, height: int, fmt: PixelFormat | None = None) -> ColorSpec:
        """Fill unspecified values the way mpv does.

        Matrix: BT709 when ``width >= 1280`` or ``height > 576``, else SMPTE170M (BT.601);
        RGB formats get the identity (RGB); gray formats BT709 at every size (a grey picture has no chroma to
        guess for: the matrix is only the luma weights of a model's RGB output, and BT.709's are those a grey
        still, ``stills.GREY_WEIGHTS``, and a 1 -> 3 model's input use, so a grey still and the same picture
        as a one-frame video give the same pixels). Primaries: BT709 for HD, BT470BG (BT.601 625) for 576 lines,
        SMPTE170M (BT.601 525) for 480/486 lines, else BT709. Transfer: BT709, SRGB for RGB
        formats. Range: limited, except full for RGB, gray and ``yuvj*`` formats (swscale maps gray
        codes 1:1 to RGB, so untagged gray in the wild, e.g. from PNG or FFV1, is full range). Chroma location:
        ``center`` for ``yuvj*`` (JPEG), else ``left`` (MPEG-2/H.264). The reserved code 3 counts as
        unspecified, like FFmpeg; so does 0 for primaries and transfer (reserved there).
        """
        hd = width >= 1280 or height > 576
        rgb = fmt is not None and fmt.family == "rgb"
        gray = fmt is not None and fmt.family == "gray"
        matrix = self.matrix
        if not matrix.is_specified:
            matrix = Matrix.RGB if rgb else (Matrix.BT709 if hd or gray else Matrix.SMPTE170M)
        primaries = self.primaries
        if not primaries.is_specified or primaries == 0:
            sd = {576: Primaries.BT470BG, 480: Primaries.SMPTE170M, 486: Primaries.SMPTE170M}
            primaries = Primaries.BT709 if hd or rgb else sd.get(height, Primaries.BT709)
        transfer = self.transfer
        if not transfer.is_specified or transfer == 0:
            transfer = Transfer.SRGB if rgb else Transfer.BT709
        full = self.full_range
        if full is None:
            full = rgb or (fmt is not None and (fmt.full_range or fmt.family == "gray"))
        loc = self.chroma_location
        if loc is None:
            loc = "center" if fmt is not None and fmt.full_range else "left"
        return ColorSpec(matrix, primaries, transfer, full, loc)


def _check_matrix(matrix: int) -> None:
    if matrix in (Matrix.UNSPECIFIED, Matrix.RESERVED):
        raise ValueError("colour matrix is unspecified: call ColorSpec.resolved(width, height) first")
    if matrix == Matrix.BT2020_CL:
        raise ValueError(
            "BT.2020 constant-luminance YUV (matrix 10) is not supported; only non-constant luminance (9)"
        )
    if matrix not in SUPPORTED_MATRICES:
        raise ValueError(f"unsupported colour matrix {int(matrix)}; supported H.273 codes are "
                         f"{tuple(int(m) for m in SUPPORTED_MATRICES)}")


def _range(bits: int, full: bool) -> tuple[float, float, float, float]:
    """(luma offset, luma scale, chroma offset, chroma scale) in code values."""
    k = float(1 << (bits - 8)) if bits >= 8 else 1.0 / (1 << (8 - bits))
    if full:
        m = float((1 << bits) - 1)
        return 0.0, m, float(1 << (bits - 1)), m
    return 16.0 * k, 219.0 * k, 128.0 * k, 224.0 * k


def _yuv_to_rgb_matrix(matrix: int) -> list[list[float]]:
    """3x3 matrix taking (Y', Cb', Cr') (Y' in [0,1], C' in [-0.5,0.5]) to (R', G', B')."""
    if matrix == Matrix.RGB:  # Y=G, Cb=B, Cr=R
        return [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    kr, kb = MATRIX_KR_KB[matrix]
    kg = 1.0 - kr - kb
    return [
        [1.0, 0.0, 2.0 * (1.0 - kr)],
        [1.0, -2.0 * kb * (1.0 - kb) / kg, -2.0 * kr * (1.0 - kr) / kg],
        [1.0, 2.0 * (1.0 - kb), 0.0],
    ]


def _rgb_to_yuv_matrix(matrix: int) -> list[list[float]]:
    """Inverse of :func:`_yuv_to_rgb_matrix`."""
    if matrix == Matrix.RGB:
        return [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    kr, kb = MATRIX_KR_KB[matrix]
    kg = 1.0 - kr - kb
    return [
        [kr, kg, kb],
        [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
        [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
    ]


@lru_cache(maxsize=64)
def matrix_tensor(direction: str, matrix: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The 3x3 ``"to_rgb"`` or ``"to_yuv"`` matrix as a tensor on ``device``, made once per (matrix, dtype, device).

    ``torch.tensor(..., device="cuda")`` is a blocking host-to-device copy: once per frame it would
    stall the host until the device drained. Callers must not modify the returned tensor."""
    rows = _yuv_to_rgb_matrix(matrix) if direction == "to_rgb" else _rgb_to_yuv_matrix(matrix)
    return torch.tensor(rows, dtype=dtype, device=device)


def _offsets(loc: str, lw: int, lh: int) -> tuple[float, float]:
    """Position (x, y) of chroma sample 0 in luma pixels, relative to its block's first luma sample."""
    fx, fy = 1 << lw, 1 << lh
    centre_x = loc in ("center", "top", "bottom")
    ox = (fx - 1) / 2 if centre_x else 0.0
    if loc in ("left", "center"):
        oy = (fy - 1) / 2
    elif loc in ("topleft", "top"):
        oy = 0.0
    else:
        oy = float(fy - 1)
    return ox, oy


def _cubic_weights(t: float) -> list[float]:
    """Catmull-Rom (a = -0.5) weights for taps -1, 0, 1, 2 at fraction t."""
    a = -0.5

    def k(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        if x < 2:
            return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
        return 0.0

    return [k(t + 1), k(t), k(t - 1), k(t - 2)]


def _phases(factor: int, offset: float, kind: str):
    """(phase p, [(tap m, weight), …]) of an upsample: output sample ``p + factor·i`` interpolates chroma at
    ``i + (p - offset) / factor`` from samples ``i + m``; zero weights left out."""
    for p in range(factor):
        delta = (p - offset) / factor
        d = math.floor(delta)
        t = delta - d
        if kind == "bilinear":
            taps = {d: 1.0 - t, d + 1: t}
        else:
            taps = dict(zip(range(d - 1, d + 3), _cubic_weights(t)))
        yield p, [(m, w) for m, w in taps.items() if w != 0.0]


def _upsample_axis(c: torch.Tensor, factor: int, offset: float, out: torch.Tensor, axis: int, kind: str) -> None:
    """Upsample ``c`` along ``axis`` (-1: columns, -2: rows) into ``out`` (``c``'s shape but for that axis): output
    sample j interpolates chroma at (j - offset) / factor. Each phase is written straight into its every
    ``factor``-th sample of ``out`` (no stack of the phases, no transposed copy). ``c`` may be integer codes: they
    become ``out``'s dtype in the copy (``factor`` 1) or before the filter's pad, so an axis that is not subsampled
    costs no float copy of its own."""
    n, length = c.shape[axis], out.shape[axis]
    if factor == 1:
        out.copy_(c.narrow(axis, 0, length))
        return
    c = c.to(out.dtype)
    r = 2
    if axis == -1:
        padded = F.pad(c.reshape(-1, 1, n), (r, r), mode="replicate").reshape(*c.shape[:-1], n + 2 * r)
    else:
        cols = c.shape[-1]
        padded = F.pad(c.reshape(-1, 1, n, cols), (0, 0, r, r), mode="replicate")
        padded = padded.reshape(*c.shape[:-2], n + 2 * r, cols)
    for p, taps in _phases(factor, offset, kind):
        count = len(range(p, length, factor))
        if count == 0:
            continue
        dst = out[..., p::factor] if axis == -1 else out[..., p::factor, :]
        for k, (m, w) in enumerate(taps):
            src = padded.narrow(axis, r + m, count)
            if k == 0:
                torch.mul(src, w, out=dst)
            else:
                dst.add_(src * w)


def _downsample_axis(x: torch.Tensor, factor: int, offset: float, n: int, axis: int) -> torch.Tensor:
    """Downsample along ``axis`` to n samples; sample k is a triangle-filtered average at k*factor + offset (samples
    past the edges repeat the edge one). ``x`` itself when ``factor`` is 1."""
    if factor == 1:
        return x
    taps = [(q, 1.0 - abs(q - offset) / factor) for q in range(-factor + 1, 2 * factor)]
    taps = [(q, w) for q, w in taps if w > 0]
    total = sum(w for _, w in taps)
    acc = None
    for q, w in taps:
        term = _tap(x, axis, q, factor, n, w / total)
        acc = term if acc is None else acc.add_(term)
    return acc


def _tap(x: torch.Tensor, axis: int, start: int, step: int, n: int, w: float) -> torch.Tensor:
    """``w * x[clamp(start + step·k)]`` along ``axis`` for k < n (indices past the ends repeat the edge sample), a new
    tensor: the samples inside read through a strided view, no padded copy of ``x``."""
    length = x.shape[axis]
    k0 = min(n, -(start // step)) if start < 0 else 0  # k < k0 read sample 0
    k1 = max(k0, min(n, (length - 1 - start) // step + 1))  # k >= k1 read the last sample
    shape = list(x.shape)
    shape[axis] = n
    out = torch.empty(shape, dtype=x.dtype, device=x.device)
    if k1 > k0:
        inner = x.narrow(axis, start + step * k0, step * (k1 - k0 - 1) + 1)
        inner = inner[..., ::step] if axis == -1 else inner[..., ::step, :]
        torch.mul(inner, w, out=out.narrow(axis, k0, k1 - k0))
    if k0:
        out.narrow(axis, 0, k0).copy_(x.narrow(axis, 0, 1) * w)
    if k1 < n:
        out.narrow(axis, k1, n - k1).copy_(x.narrow(axis, length - 1, 1) * w)
    return out


def _upsample_chroma(dst: torch.Tensor, c: torch.Tensor, fmt: PixelFormat, loc: str, kind: str) -> None:
    """Chroma codes ``c`` (N x ch x cw, integer or float) upsampled into ``dst`` (N x H x W, float): columns, then
    rows."""
    ox, oy = _offsets(loc, fmt.log2_chroma_w, fmt.log2_chroma_h)
    height, width = dst.shape[-2:]
    fx, fy = 1 << fmt.log2_chroma_w, 1 << fmt.log2_chroma_h
    wide = dst if fy == 1 else torch.empty((*c.shape[:-1], width), dtype=dst.dtype, device=dst.device)
    _upsample_axis(c, fx, ox, wide, -1, kind)
    if fy != 1:
        _upsample_axis(wide, fy, oy, dst, -2, kind)


def _downsample_chroma(c: torch.Tensor, fmt: PixelFormat, loc: str) -> torch.Tensor:
    height, width = c.shape[-2:]
    cw, ch = fmt.chroma_size(width, height)
    ox, oy = _offsets(loc, fmt.log2_chroma_w, fmt.log2_chroma_h)
    c = _downsample_axis(c, 1 << fmt.log2_chroma_w, ox, cw, -1)
    return _downsample_axis(c, 1 << fmt.log2_chroma_h, oy, ch, -2)


def _as_tensor(plane: torch.Tensor | np.ndarray, device: torch.device | None) -> torch.Tensor:
    t = plane if isinstance(plane, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(plane))
    return t if device is None else t.to(device)


def _unshifted(plane: torch.Tensor, fmt: PixelFormat) -> torch.Tensor:
    """An integer plane with p010-style shifts undone."""
    return plane.to(torch.int32) >> fmt.shift if fmt.shift else plane


def _codes(plane: torch.Tensor, fmt: PixelFormat) -> torch.Tensor:
    """Integer plane -> a new float32 tensor of code values (p010-style shifts undone)."""
    return _unshifted(plane, fmt).to(torch.float32, copy=True)


def _split(planes: list, fmt: PixelFormat) -> dict[str, torch.Tensor]:
    """Component name -> integer tensor (N x h x w; a view into its plane), all on the first plane's device."""
    if len(planes) != fmt.nb_planes:
        raise ValueError(f"{fmt.name} has {fmt.nb_planes} planes, got {len(planes)}")
    first = _as_tensor(planes[0], None)
    device = first.device
    tensors = [first] + [_as_tensor(p, device) for p in planes[1:]]
    comps: dict[str, torch.Tensor] = {}
    for names, t in zip(fmt.planes, tensors):
        want = 2 if len(names) == 1 else 3
        if t.dim() == want:
            t = t.unsqueeze(0)
        elif t.dim() != want + 1:
            raise ValueError(f"{fmt.name} plane {names} must have {want} or {want + 1} dims, got shape {tuple(t.shape)}")
        if len(names) == 1:
            comps[names] = t
        else:
            for i, name in enumerate(names):
                comps[name] = t[..., i]
    return comps


def planes_to_rgb(
    planes: list[torch.Tensor],
    fmt: PixelFormat,
    spec: ColorSpec,
    *,
    chroma_filter: str = DEFAULT_CHROMA_FILTER,
) -> torch.Tensor:
    """Native integer planes -> RGB float32 in [0, 1], ``N x 3 x H x W`` on the planes' device.

    ``spec`` must be resolved (:meth:`ColorSpec.resolved`). Planes of shape ``H x W`` give
    ``N = 1``; planes with a leading batch axis give that ``N``. An alpha plane is ignored.

    Memory: the codes go straight into one float32 ``N x 3 x H x W`` buffer (chroma upsampled into its slots,
    scaled in place) that the 3x3 matrix reads into the output, so the peak is those two (24 bytes a pixel, 12
    for RGB and gray formats: the output and one component) besides the planes.
    """
    if chroma_filter not in CHROMA_FILTERS:
        raise ValueError(f"chroma_filter must be one of {CHROMA_FILTERS}, got {chroma_filter!r}")
    comps = _split(planes, fmt)
    full = bool(spec.full_range)
    y_off, y_scale, c_off, c_scale = _range(fmt.bits, full)
    first = comps["Y"] if "Y" in comps else comps["G"]
    n, height, width = first.shape
    out = torch.empty((n, 3, height, width), dtype=torch.float32, device=first.device)
    if fmt.family == "gray":
        y = out[:, 0]
        y.copy_(_unshifted(comps["Y"], fmt)).sub_(y_off).div_(y_scale).clamp_(0.0, 1.0)
        out[:, 1].copy_(y)
        out[:, 2].copy_(y)
        return out
    if fmt.family == "rgb":
        for i, name in enumerate("RGB"):
            out[:, i].copy_(_unshifted(comps[name], fmt))
        return out.sub_(y_off).div_(y_scale).clamp_(0.0, 1.0)
    _check_matrix(spec.matrix)
    yuv = out  # holds Y', Cb', Cr' until the matrix gives RGB
    loc = spec.chroma_location or "left"
    yuv[:, 0].copy_(_unshifted(comps["Y"], fmt))
    for i, name in ((1, "U"), (2, "V")):
        _upsample_chroma(yuv[:, i], _unshifted(comps[name], fmt), fmt, loc, chroma_filter)
    if spec.matrix == Matrix.RGB:  # GBR in YUV planes: every component scaled like luma
        yuv.sub_(y_off).div_(y_scale)
    else:
        yuv[:, 0].sub_(y_off).div_(y_scale)
        yuv[:, 1:].sub_(c_off).div_(c_scale)
    m = matrix_tensor("to_rgb", int(spec.matrix), torch.float32, yuv.device)
    rgb = torch.einsum("ij,njhw->nihw", m, yuv)
    del yuv, out
    return rgb.clamp_(0.0, 1.0)


def _quantise(x: torch.Tensor, fmt: PixelFormat, out: torch.Tensor | None = None) -> torch.Tensor:
    """Round half up, clip to [0, 2^bits - 1], apply the format's shift and sample dtype; into ``out`` when given.
    ``x`` (a float tensor of this module's own) is rounded in place."""
    q = x.add_(0.5).floor_().clamp_(0, fmt.max_code)
    if fmt.bits > 8:
        q = q.to(torch.int32)
        if fmt.shift:
            q <<= fmt.shift
    if out is None:
        return q.to(_sample_dtype(fmt))
    return out.copy_(q)


def _sample_dtype(fmt: PixelFormat) -> torch.dtype:
    return torch.uint8 if fmt.bits <= 8 else torch.uint16


def rgb_to_planes(
    rgb: torch.Tensor,
    fmt: PixelFormat,
    spec: ColorSpec,
    *,
    alpha: torch.Tensor | None = None,
    batched: bool | None = None,
) -> list[torch.Tensor]:
    """RGB float (``N x 3 x H x W`` or ``3 x H x W``, nominally [0, 1]) -> integer planes of ``fmt``.

    ``spec`` must be resolved. Plane shapes are those of :meth:`PixelFormat.plane_shapes`, with a
    leading ``N`` axis when ``batched`` is True; the default (None) keeps that axis only when
    ``N > 1``, so a ``1 x 3 x H x W`` frame gives ``H x W`` planes ready for the encoder. Chroma is
    downsampled at ``spec.chroma_location``. For formats with alpha, ``alpha`` (``N x 1 x H x W``
    float in [0, 1]) fills the alpha plane; None means opaque. Planes are on ``rgb``'s device.

    Memory: one float32 ``N x 3 x H x W`` buffer from the matrix (none for RGB formats), each component scaled and
    rounded in place and made when its plane is, so the peak besides ``rgb`` is that buffer and one subsampled
    component's filter terms.
    """
    if rgb.dim() not in (3, 4) or rgb.shape[-3] != 3:
        raise ValueError(f"rgb_to_planes expects N x 3 x H x W or 3 x H x W, got {tuple(rgb.shape)}")
    x = (rgb if rgb.dim() == 4 else rgb.unsqueeze(0)).to(torch.float32)
    if batched is None:
        batched = x.shape[0] > 1
    n, _, height, width = x.shape
    full = bool(spec.full_range)
    y_off, y_scale, c_off, c_scale = _range(fmt.bits, full)
    if fmt.alpha and alpha is not None:
        alpha = alpha if alpha.dim() == 4 else alpha.unsqueeze(0)
        if tuple(alpha.shape) != (n, 1, height, width):
            raise ValueError(f"alpha must be {n} x 1 x {height} x {width}, got {tuple(alpha.shape)}")
    yuv = None
    if fmt.family != "rgb":
        _check_matrix(spec.matrix)
        m = matrix_tensor("to_yuv", int(spec.matrix), torch.float32, x.device)
        if fmt.family != "gray":
            yuv = torch.einsum("ij,njhw->nihw", m, x)
    loc = spec.chroma_location or "left"
    chroma_like_luma = spec.matrix == Matrix.RGB

    def component(name: str) -> torch.Tensor:
        """The float code values of one component (N x h x w), a tensor this function may round in place."""
        if fmt.family == "rgb" and name in "RGB":
            return (x[:, "RGB".index(name)] * y_scale).add_(y_off)
        if name == "Y":
            if yuv is None:  # gray
                return (torch.einsum("j,njhw->nhw", m[0], x) * y_scale).add_(y_off)
            return yuv[:, 0].mul_(y_scale).add_(y_off)
        if name in "UV":
            c = yuv[:, "YUV".index(name)]
            c = c.mul_(y_scale).add_(y_off) if chroma_like_luma else c.mul_(c_scale).add_(c_off)
            return _downsample_chroma(c, fmt, loc)
        if name == "A":
            if alpha is None:
                return torch.full((n, height, width), float(fmt.max_code), device=x.device)
            return alpha[:, 0].to(device=x.device, dtype=torch.float32) * fmt.max_code
        raise AssertionError(name)

    out = []
    for names in fmt.planes:
        if len(names) == 1:
            plane = _quantise(component(names), fmt)
        else:  # packed or semi-planar: each component rounded into its slot
            plane = None
            for k, name in enumerate(names):
                if name == PADDING:  # bgr0, 0rgb, ...: the unused byte is 255, as swscale writes it
                    continue
                c = component(name)
                if plane is None:
                    plane = torch.empty((*c.shape, len(names)), dtype=_sample_dtype(fmt), device=x.device)
                _quantise(c, fmt, out=plane[..., k])
                del c
            if PADDING in names:
                plane[..., names.index(PADDING)] = fmt.max_code << fmt.shift
        out.append(plane if batched else plane[0])
    return out


def alpha_to_float(plane: torch.Tensor, fmt: PixelFormat) -> torch.Tensor:
    """Alpha plane (``H x W``/``N x H x W``, or a packed plane holding A: ``rgba``, ``argb``, …) ->
    ``N x 1 x H x W`` float32 in [0, 1]."""
    if not fmt.alpha:
        raise ValueError(f"{fmt.name} has no alpha plane")
    t = _as_tensor(plane, None)
    comps = next(names for names in fmt.planes if "A" in names)
    if len(comps) > 1:
        t = t[..., comps.index("A")]
    if t.dim() == 2:
        t = t.unsqueeze(0)
    return _codes(t, fmt).div_(fmt.max_code).unsqueeze(1)


def float_to_alpha(alpha: torch.Tensor, fmt: PixelFormat) -> torch.Tensor:
    """``N x 1 x H x W`` float alpha in [0, 1] -> integer ``N x H x W`` plane of ``fmt``'s depth."""
    if not fmt.alpha:
        raise ValueError(f"{fmt.name} has no alpha plane")
    return _quantise(alpha[:, 0].to(torch.float32) * fmt.max_code, fmt)


__all__ = [
    "CHROMA_FILTERS",
    "CHROMA_LOCATIONS",
    "MATRIX_KR_KB",
    "SUPPORTED_MATRICES",
    "UNSPECIFIED",
    "ChromaLocation",
    "ColorSpec",
    "Matrix",
    "Primaries",
    "Range",
    "Transfer",
    "alpha_to_float",
    "chroma_location_code",
    "chroma_location_from_code",
    "float_to_alpha",
    "planes_to_rgb",
    "rgb_to_planes",
]
