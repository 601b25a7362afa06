"""Output size planning (pure): from --scale / --size and the model's own scale."""

from __future__ import annotations

import math
import re

import torch
from torch.nn import functional as F

from ..errors import InputError


def parse_size(text: str) -> tuple[int | None, int | None]:
    """``"1920x1080"``, ``"1920x"`` / ``"1920x-1"`` (keep aspect) or ``"x1080"`` → (w, h) with None for "derive"."""
    m = re.fullmatch(r"\s*(\d*|-1)\s*[x×:]\s*(\d*|-1)\s*", text)
    if not m or (m.group(1) in ("", "-1") and m.group(2) in ("", "-1")):
        raise InputError(f"--size: expected WxH, Wx or xH (e.g. 1920x1080), got {text!r}")
    w = int(m.group(1)) if m.group(1) not in ("", "-1") else None
    h = int(m.group(2)) if m.group(2) not in ("", "-1") else None
    if (w is not None and w < 1) or (h is not None and h < 1):
        raise InputError(f"--size: width and height must be positive, got {text!r}")
    return w, h


def _round_to(value: float, multiple: int) -> int:
    """Nearest multiple of ``multiple`` (halves round up), at least ``multiple``."""
    return max(multiple, int(math.floor(value / multiple + 0.5)) * multiple)


def output_size(
    width: int,
    height: int,
    *,
    model_scale: int,
    scale: float | None = None,
    size: tuple[int | None, int | None] | None = None,
    multiple: tuple[int, int] = (1, 1),
) -> tuple[int, int]:
    """The output (width, height).

    No scale and no size: the model's scale. ``scale``: width·scale × height·scale. ``size``: a
    target; a missing side keeps the aspect. Each side is rounded to ``multiple`` (what the output
    pixel format allows, e.g. (2, 2) for 4:2:0).
    """
    if scale is not None and size is not None:
        raise InputError("--scale and --size: give one of them, not both")
    mx, my = multiple
    if size is not None:
        w, h = size
        if w is None and h is None:
            raise InputError("--size: give at least a width or a height")
        if w is None:
            w = width * h / height
        if h is None:
            h = height * w / width
        return _round_to(w, mx), _round_to(h, my)
    s = float(model_scale if scale is None else scale)
    if not s > 0:
        raise InputError(f"--scale: expected a positive number, got {scale}")
    return _round_to(width * s, mx), _round_to(height * s, my)


def resize_rgb(rgb: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Antialiased bicubic resize of N×C×H×W float RGB on its device; a no-op at the same size."""
    if rgb.shape[-2:] == (height, width):
        return rgb
    out = F.interpolate(rgb, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)
