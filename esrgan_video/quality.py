"""Image quality measures for tests and benchmarks (pure NumPy; torch tensors are read without importing torch).

:func:`psnr` is the one PSNR of the test suite and the benchmarks (``esrgan_video.testing.psnr`` and
``benchmarks.common.psnr`` are this function). Importing this module does not import torch, so the GPU check can
use it before it picks a device.
"""

from __future__ import annotations

import numpy as np


def psnr(a, b, *, data_range: float | None = None, border: int = 0) -> float:
    """PSNR in dB between two images of the same shape: NumPy arrays or torch tensors (any device, any layout).

    ``data_range`` defaults to 255 for uint8, 65535 for uint16, else 1.0 (float images in [0, 1]). ``border`` drops
    that many pixels on every side of the first two axes (H × W × C arrays) first. Identical → ``inf``.
    """
    a, b = _as_array(a), _as_array(b)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ: {a.shape} vs {b.shape}")
    if data_range is None:
        data_range = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(a.dtype, 1.0)
    if border:
        a = a[border:-border, border:-border]
        b = b[border:-border, border:-border]
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return float("inf")
    return 10.0 * float(np.log10(data_range * data_range / mse))


def _as_array(x) -> np.ndarray:
    """A NumPy view of ``x``; a torch tensor (found by duck typing) is detached, moved to the CPU, and read as
    float64 unless it holds 8/16-bit integers."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        return x.numpy() if str(x.dtype) in ("torch.uint8", "torch.uint16") else x.double().numpy()
    return np.asarray(x)


__all__ = ["psnr"]
