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


def _upsample_last(c: torch.Tensor, factor: int, offset: float, length: int, kind: str) -> torch.Tensor:
    """Upsample along the last axis: output sample j interpolates chroma at (j - offset) / factor."""
    if factor == 1:
        return c[..., :length]
    n = c.shape[-1]
    r = 2
    padded = F.pad(c.reshape(-1, 1, n), (r, r), mode="replicate").reshape(*c.shape[:-1], n + 2 * r)
    phases = []
    for p in range(factor):
        delta = (p - offset) / factor
        d = math.floor(delta)
        t = delta - d
        if kind == "bilinear":
            taps = {d: 1.0 - t, d + 1: t}
        else:
            taps = dict(zip(range(d - 1, d + 3), _cubic_weights(t)))
        acc = None
        for m, w in taps.items():
            if w == 0.0:
                continue
            term = padded[..., r + m : r + m + n] * w
            acc = term if acc is None else acc + term
        phases.append(acc)
    out = torch.stack(phases, dim=-1).reshape(*c.shape[:-1], n * factor)
    return out[..., :length]


def _downsample_last(x: torch.Tensor, factor: int, offset: float, n: int) -> torch.Tensor:
    """Downsample along the last axis to n samples; sample k is a triangle-filtered average at k*factor + offset."""
    if factor == 1:
        return x
    length = x.shape[-1]
    left = factor
    right = factor * n + factor - length
    padded = F.pad(x.reshape(-1, 1, length), (left, right), mode="replicate").reshape(*x.shape[:-1], length + left + right)
    taps = [(q, 1.0 - abs(q - offset) / factor) for q in range(-factor + 1, 2 * factor)]
    taps = [(q, w) for q, w in taps if w > 0]
    total = sum(w for _, w in taps)
    acc = None
    for q, w in taps:
        term = padded[..., left + q : left + q + factor * n : factor] * (w / total)
        acc = term if acc is None else acc + term
    return acc


def _upsample_chroma(c: torch.Tensor, fmt: PixelFormat, loc: str, height: int, width: int, kind: str) -> torch.Tensor:
    ox, oy = _offsets(loc, fmt.log2_chroma_w, fmt.log2_chroma_h)
    c = _upsample_last(c, 1 << fmt.log2_chroma_w, ox, width, kind)
    c = _upsample_last(c.transpose(-1, -2), 1 << fmt.log2_chroma_h, oy, height, kind).transpose(-1, -2)
    return c


def _downsample_chroma(c: torch.Tensor, fmt: PixelFormat, loc: str) -> torch.Tensor:
    height, width = c.shape[-2:]
    cw, ch = fmt.chroma_size(width, height)
    ox, oy = _offsets(loc, fmt.log2_chroma_w, fmt.log2_chroma_h)
    c = _downsample_last(c, 1 << fmt.log2_chroma_w, ox, cw)
    c = _downsample_last(c.transpose(-1, -2), 1 << fmt.log2_chroma_h, oy, ch).transpose(-1, -2)
    return c


def _as_tensor(plane: torch.Tensor | np.ndarray, device: torch.device | None) -> torch.Tensor:
    t = plane if isinstance(plane, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(plane))
    return t if device is None else t.to(device)


def _codes(plane: torch.Tensor, fmt: PixelFormat) -> torch.Tensor:
    """Integer plane -> float32 code values (p010-style shifts undone)."""
    if fmt.shift:
        plane = plane.to(torch.int32) >> fmt.shift
    return plane.to(torch.float32)


def _split(planes: list, fmt: PixelFormat) -> dict[str, torch.Tensor]:
    """Component name -> float32 code tensor (N x h x w), all on the first plane's device."""
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
        codes = _codes(t, fmt)
        if len(names) == 1:
            comps[names] = codes
        else:
            for i, name in enumerate(names):
                comps[name] = codes[..., i]
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
    """
    if chroma_filter not in CHROMA_FILTERS:
        raise ValueError(f"chroma_filter must be one of {CHROMA_FILTERS}, got {chroma_filter!r}")
    comps = _split(planes, fmt)
    full = bool(spec.full_range)
    y_off, y_scale, c_off, c_scale = _range(fmt.bits, full)
    if fmt.family == "gray":
        y = ((comps["Y"] - y_off) / y_scale).clamp(0.0, 1.0)
        return y.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    if fmt.family == "rgb":
        rgb = torch.stack([comps["R"], comps["G"], comps["B"]], dim=1)
        return ((rgb - y_off) / y_scale).clamp(0.0, 1.0)
    _check_matrix(spec.matrix)
    y = comps["Y"]
    height, width = y.shape[-2:]
    loc = spec.chroma_location or "left"
    u = _upsample_chroma(comps["U"], fmt, loc, height, width, chroma_filter)
    v = _upsample_chroma(comps["V"], fmt, loc, height, width, chroma_filter)
    if spec.matrix == Matrix.RGB:  # GBR in YUV planes: every component scaled like luma
        yuv = (torch.stack([y, u, v], dim=1) - y_off) / y_scale
    else:
        yuv = torch.stack([(y - y_off) / y_scale, (u - c_off) / c_scale, (v - c_off) / c_scale], dim=1)
    m = matrix_tensor("to_rgb", int(spec.matrix), torch.float32, y.device)
    rgb = torch.einsum("ij,njhw->nihw", m, yuv)
    return rgb.clamp(0.0, 1.0)


def _quantise(x: torch.Tensor, fmt: PixelFormat) -> torch.Tensor:
    """Round half up, clip to [0, 2^bits - 1], apply the format's shift and sample dtype."""
    q = torch.floor(x + 0.5).clamp(0, fmt.max_code)
    if fmt.bits <= 8:
        return q.to(torch.uint8)
    q = q.to(torch.int32)
    if fmt.shift:
        q = q << fmt.shift
    return q.to(torch.uint16)


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
    """
    if rgb.dim() not in (3, 4) or rgb.shape[-3] != 3:
        raise ValueError(f"rgb_to_planes expects N x 3 x H x W or 3 x H x W, got {tuple(rgb.shape)}")
    x = (rgb if rgb.dim() == 4 else rgb.unsqueeze(0)).to(torch.float32)
    if batched is None:
        batched = x.shape[0] > 1
    n, _, height, width = x.shape
    full = bool(spec.full_range)
    y_off, y_scale, c_off, c_scale = _range(fmt.bits, full)
    comps: dict[str, torch.Tensor] = {}
    if fmt.family == "rgb":
        for i, name in enumerate("RGB"):
            comps[name] = x[:, i] * y_scale + y_off
    else:
        _check_matrix(spec.matrix)
        m = matrix_tensor("to_yuv", int(spec.matrix), torch.float32, x.device)
        if fmt.family == "gray":
            comps["Y"] = torch.einsum("j,njhw->nhw", m[0], x) * y_scale + y_off
        else:
            yuv = torch.einsum("ij,njhw->nihw", m, x)
            loc = spec.chroma_location or "left"
            comps["Y"] = yuv[:, 0] * y_scale + y_off
            if spec.matrix == Matrix.RGB:
                u, v = yuv[:, 1] * y_scale + y_off, yuv[:, 2] * y_scale + y_off
            else:
                u, v = yuv[:, 1] * c_scale + c_off, yuv[:, 2] * c_scale + c_off
            comps["U"] = _downsample_chroma(u, fmt, loc)
            comps["V"] = _downsample_chroma(v, fmt, loc)
    if fmt.alpha:
        if alpha is None:
            comps["A"] = torch.full((n, height, width), float(fmt.max_code), device=x.device)
        else:
            a = alpha if alpha.dim() == 4 else alpha.unsqueeze(0)
            if tuple(a.shape) != (n, 1, height, width):
                raise ValueError(f"alpha must be {n} x 1 x {height} x {width}, got {tuple(alpha.shape)}")
            comps["A"] = a[:, 0].to(device=x.device, dtype=torch.float32) * fmt.max_code
    if any(PADDING in names for names in fmt.planes):  # bgr0, 0rgb, ...: the unused byte is 255, as swscale writes it
        comps[PADDING] = torch.full((n, height, width), float(fmt.max_code), device=x.device)
    out = []
    for names in fmt.planes:
        if len(names) == 1:
            plane = _quantise(comps[names], fmt)
        else:
            plane = _quantise(torch.stack([comps[c] for c in names], dim=-1), fmt)
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
    return (_codes(t, fmt) / fmt.max_code).unsqueeze(1)


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
