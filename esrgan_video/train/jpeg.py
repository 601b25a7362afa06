"""JPEG compression as tensor maths, so the Real-ESRGAN degradation can run on the training device.

Baseline JPEG as libjpeg does it: RGB → YCbCr (JFIF, full range), 4:2:0 chroma by 2×2 averaging, 8×8 DCT-II,
quantisation with the standard luminance/chrominance tables scaled by the quality (libjpeg's
``jpeg_quality_scaling``: 5000/q below 50, 200 − 2q above, integer tables clipped to 1..255), dequantisation,
inverse DCT, chroma upsampling, YCbCr → RGB and rounding to 8 bits. The entropy coding is lossless and skipped.
Not differentiable (the rounding is not relaxed): degradations make training inputs, no gradient passes them.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
_CHROMA = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, *([99] * 32),
)


def quant_table(quality: float, chroma: bool) -> torch.Tensor:
    """The 8×8 quantisation table libjpeg uses at ``quality`` (1..100)."""
    q = min(100.0, max(1.0, float(quality)))
    scale = 5000.0 / q if q < 50 else 200.0 - 2.0 * q
    base = torch.tensor(_CHROMA if chroma else _LUMA, dtype=torch.float64).view(8, 8)
    return torch.floor((base * scale + 50.0) / 100.0).clamp(1, 255)


def _dct_matrix(device: torch.device) -> torch.Tensor:
    n = torch.arange(8, dtype=torch.float64)
    k = n.view(8, 1)
    m = torch.cos((2 * n + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m.to(device=device, dtype=torch.float32)


def _blocks(x: torch.Tensor) -> torch.Tensor:
    """N×H×W (multiples of 8) → N×(H/8)×(W/8)×8×8."""
    n, h, w = x.shape
    return x.view(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)


def _unblocks(b: torch.Tensor) -> torch.Tensor:
    n, bh, bw, _, _ = b.shape
    return b.permute(0, 1, 3, 2, 4).reshape(n, bh * 8, bw * 8)


def _code(plane: torch.Tensor, table: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Level shift, DCT, quantise, dequantise, inverse DCT (plane in 0..255, table N×8×8)."""
    b = _blocks(plane - 128.0)
    coef = d @ b @ d.T
    t = table.view(-1, 1, 1, 8, 8)
    coef = torch.round(coef / t) * t
    return _unblocks(d.T @ coef @ d) + 128.0


def jpeg(rgb: torch.Tensor, quality: torch.Tensor | float) -> torch.Tensor:
    """JPEG-compress and decode ``rgb`` (N×3×H×W in [0, 1]) at ``quality`` (a float or one per image).

    Returns N×3×H×W in [0, 1], rounded to 8 bits, on ``rgb``'s device.
    """
    n, c, h, w = rgb.shape
    if c != 3:
        raise ValueError(f"jpeg expects N x 3 x H x W, got {tuple(rgb.shape)}")
    q = torch.as_tensor(quality, dtype=torch.float64).flatten()
    if q.numel() == 1:
        q = q.expand(n)
    if q.numel() != n:
        raise ValueError(f"jpeg: {q.numel()} qualities for {n} images")
    dev = rgb.device
    ph, pw = (-h) % 16, (-w) % 16
    x = torch.round(rgb.float().clamp(0, 1) * 255.0)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0
    cb = F.avg_pool2d(cb.unsqueeze(1), 2).squeeze(1)
    cr = F.avg_pool2d(cr.unsqueeze(1), 2).squeeze(1)
    d = _dct_matrix(dev)
    tl = torch.stack([quant_table(v, False) for v in q.tolist()]).to(dev, torch.float32)
    tc = torch.stack([quant_table(v, True) for v in q.tolist()]).to(dev, torch.float32)
    y = _code(y, tl, d)
    cb = F.interpolate(_code(cb, tc, d).unsqueeze(1), scale_factor=2, mode="bilinear", align_corners=False).squeeze(1)
    cr = F.interpolate(_code(cr, tc, d).unsqueeze(1), scale_factor=2, mode="bilinear", align_corners=False).squeeze(1)
    cb, cr = cb - 128.0, cr - 128.0
    out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], dim=1)
    out = torch.round(out.clamp(0, 255)) / 255.0
    return out[..., :h, :w].to(rgb.dtype)


__all__ = ["jpeg", "quant_table"]
