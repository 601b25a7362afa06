"""Pictures a run writes: preview grids (LR | base | current | HR) and the validation curves, as PNG.

PNGs are written by the project's still-image writer (PyAV's png encoder). The plot is drawn with
plain tensor maths and a 5×7 bitmap font, so it needs no plotting package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F


def write_png(path: str | Path, rgb: torch.Tensor | np.ndarray) -> Path:
    """Write 3×H×W float [0, 1] (or H×W×3 uint8) as an 8-bit PNG through the project's image writer
    (``esrgan_video.video.images.write_image``: atomic, never half written)."""
    from ..video.images import write_image

    if isinstance(rgb, torch.Tensor):
        arr = (rgb.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    else:
        arr = rgb
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.ascontiguousarray(arr), None, 8)
    return path


def grid(rows: list[list[torch.Tensor]], gap: int = 2) -> torch.Tensor:
    """Rows of 3×h×w images (each row's images the same height) → one 3×H×W image, white gaps."""
    width = max(sum(t.shape[-1] for t in row) + gap * (len(row) - 1) for row in rows)
    height = sum(row[0].shape[-2] for row in rows) + gap * (len(rows) - 1)
    out = torch.ones(3, height, width)
    y = 0
    for row in rows:
        x = 0
        for t in row:
            out[:, y:y + t.shape[-2], x:x + t.shape[-1]] = t.float().cpu()
            x += t.shape[-1] + gap
        y += row[0].shape[-2] + gap
    return out


def preview_grid(lr: torch.Tensor, base: torch.Tensor, current: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """One row per crop: LR (nearest-upscaled) | base model | current model | HR. Inputs n×3×h×w in [0, 1]."""
    size = hr.shape[-2:]
    up = F.interpolate(lr.float(), size=size, mode="nearest")
    return grid([[up[i], base[i], current[i], hr[i]] for i in range(hr.shape[0])])


# --------------------------------------------------------------------------- the curves

_FONT = {
    "0": "01110100011001110101110011000101110", "1": "00100011000010000100001000010001110",
    "2": "01110100010000100010001000100011111", "3": "11111000100010000010000011000101110",
    "4": "00010001100101010010111110001000010", "5": "11111100001111000001000011000101110",
    "6": "00110010001000011110100011000101110", "7": "11111000010001000100010000100001000",
    "8": "01110100011000101110100011000101110", "9": "01110100011000101111000010001001100",
    ".": "00000000000000000000000000110001100", "-": "00000000000000011111000000000000000",
    " ": "0" * 35, "P": "11110100011000111110100001000010000", "S": "01111100001000001110000010000111110",
    "N": "10001100011100110101100111000110001", "R": "11110100011000111110101001001010001",
    "d": "00001000010110110011100011000101111", "B": "11110100011000111110100011000111110",
    "V": "10001100011000110001100010101000100", "G": "01110100011000010111100011000101111",
    "L": "10000100001000010000100001000011111", "s": "00000000000111010000011100000111110",
    "t": "01000010001110001000010000100100110", "e": "00000000000111010001111111000001110",
    "p": "00000000001111010001111101000010000",
}


def _text(img: torch.Tensor, x: int, y: int, text: str, color=(0.1, 0.1, 0.1)) -> None:
    for ch in text:
        bits = _FONT.get(ch, _FONT[" "])
        for r in range(7):
            for c in range(5):
                if bits[r * 5 + c] == "1" and 0 <= y + r < img.shape[1] and 0 <= x + c < img.shape[2]:
                    img[:, y + r, x + c] = torch.tensor(color)
        x += 6


def _line(img: torch.Tensor, x0: float, y0: float, x1: float, y1: float, color) -> None:
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = torch.linspace(x0, x1, n).round().long().clamp(0, img.shape[2] - 1)
    ys = torch.linspace(y0, y1, n).round().long().clamp(0, img.shape[1] - 1)
    for dy in (0, 1):
        img[:, (ys + dy).clamp(max=img.shape[1] - 1), xs] = torch.tensor(color).view(3, 1)


def _panel(img, left, top, w, h, steps, values, title, color) -> None:
    img[:, top, left:left + w] = 0.3
    img[:, top + h, left:left + w] = 0.3
    img[:, top:top + h, left] = 0.3
    img[:, top:top + h + 1, left + w] = 0.3
    _text(img, left, top - 10, title)
    pts = [(s, v) for s, v in zip(steps, values) if v is not None and np.isfinite(v)]
    if not pts:
        return
    s0, s1 = min(p[0] for p in pts), max(p[0] for p in pts)
    v0, v1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if v1 - v0 < 1e-9:
        v0, v1 = v0 - 0.5, v1 + 0.5
    _text(img, left + 3, top + 3, f"{v1:.3f}")
    _text(img, left + 3, top + h - 10, f"{v0:.3f}")
    _text(img, left, top + h + 4, f"{s0}")
    _text(img, left + w - 6 * len(str(s1)), top + h + 4, f"{s1}")
    _text(img, left + w // 2 - 12, top + h + 4, "step")

    def xy(s, v):
        x = left + 4 + (w - 8) * ((s - s0) / max(1, s1 - s0))
        y = top + h - 4 - (h - 8) * ((v - v0) / (v1 - v0))
        return x, y

    prev = None
    for s, v in pts:
        p = xy(s, v)
        if prev is not None:
            _line(img, *prev, *p, color)
        img[:, int(p[1]) - 1:int(p[1]) + 2, int(p[0]) - 1:int(p[0]) + 2] = torch.tensor(color).view(3, 1, 1)
        prev = p


def curves_image(steps: list[int], psnr: list[float | None], perceptual: list[float | None]) -> torch.Tensor:
    """Two panels, held-out PSNR (dB) and VGG-feature L1 against the step, as a 3×H×W image."""
    img = torch.ones(3, 200, 600)
    _panel(img, 20, 20, 260, 150, steps, psnr, "PSNR dB", (0.1, 0.3, 0.8))
    _panel(img, 320, 20, 260, 150, steps, perceptual, "VGG L1", (0.8, 0.3, 0.1))
    return img


__all__ = ["curves_image", "grid", "preview_grid", "write_png"]
