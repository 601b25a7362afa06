"""The pairing rule of paired training data, in pixels, and what to do when a pair breaks it.

A model upscales stored pixels: a ×4 model turns a 720×480 DVD frame into 2880×1920 and the output keeps the
DVD's sample aspect ratio (SAR 32:27, shown 16:9). So an LR/HR pair is matched in stored pixels: the HR frame must be
exactly scale × the LR frame, width and height, with the LR's pixel shape. A Blu-ray (1920×1080, square pixels) of a
DVD episode is neither: it must be cut to the DVD's picture and resampled to scale × the DVD's stored size first, and
it holds only ×2 of a DVD without being enlarged (1920/720 and 1080/480 are below 3).
"""

from __future__ import annotations

import math
from fractions import Fraction


def _ratio(sar: Fraction) -> str:
    return f"{sar.numerator}:{sar.denominator}"


def _ffmpeg(lr_size: tuple[int, int], scale: int, sar: Fraction) -> str:
    return f"e.g. ffmpeg -vf scale={lr_size[0] * scale}:{lr_size[1] * scale}" + (
        f",setsar={_ratio(sar)}" if sar != 1 else "")


def _shown(size: tuple[int, int], sar: Fraction) -> tuple[int, int]:
    """The display size of ``size`` stored pixels of shape ``sar`` (the width stretched or squeezed)."""
    return round(size[0] * sar), size[1]


def pair_rule(lr_size: tuple[int, int], hr_size: tuple[int, int], scale: int, *,
              lr_sar: Fraction | None = None, hr_sar: Fraction | None = None) -> str:
    """What an HR frame of ``hr_size`` (w, h) must be to pair with an LR frame of ``lr_size`` at ``scale``, and how
    to make it, for the refusal that names both: the size in pixels, the pixel shapes when one is anamorphic, the
    picture shapes when they differ (a crop is needed), and the largest scale the HR holds when it is smaller than
    the rule asks (a model of that scale pairs it without enlarging it). Sizes are after any crop."""
    lr_sar, hr_sar = Fraction(lr_sar or 1), Fraction(hr_sar or 1)
    (lw, lh), (hw, hh) = lr_size, hr_size
    need = f"{lw * scale}x{lh * scale}"
    parts = [f"a pair is matched in stored pixels (the model upscales them), so the HR must be exactly {need} "
             f"({scale} × {lw}x{lh})"]
    if lr_sar != 1 or hr_sar != lr_sar:
        sw, sh = _shown(lr_size, lr_sar)
        parts[0] += (f" with the LR's pixel shape (SAR {_ratio(lr_sar)}: the LR is anamorphic, shown {sw}x{sh}, "
                     f"and the HR is {'anamorphic, SAR ' + _ratio(hr_sar) if hr_sar != 1 else 'square-pixelled'})"
                     if lr_sar != 1 else f" with square pixels (the HR is anamorphic, SAR {_ratio(hr_sar)})")
    lr_dar, hr_dar = lw * lr_sar / lh, hw * hr_sar / hh
    if abs(float(lr_dar / hr_dar) - 1) > 0.01:
        parts.append(f"the pictures differ in shape ({float(lr_dar):.3f}:1 vs {float(hr_dar):.3f}:1 shown): cut both "
                     "to the same picture with --hr-crop/--lr-crop")
    fits = math.floor(min(hw / lw, hh / lh))
    if fits >= scale:
        parts.append(f"resize the HR frames to {need} ({_ffmpeg(lr_size, scale, lr_sar)}) and pair the result")
    elif fits >= 2:
        parts.append(f"the HR holds only x{fits} of the LR: enlarged to {need} it would teach resampling, not "
                     f"detail; pair it with a x{fits} model instead (a x{fits} --base, or --scale {fits} from "
                     f"scratch) and the HR resized to {lw * fits}x{lh * fits} ({_ffmpeg(lr_size, fits, lr_sar)})")
    else:
        parts.append("the HR holds not even x2 of the LR, so it has no detail to teach: train on it alone (without "
                     "--lr-data, its LR made by --degradation)")
    return "; ".join(parts)


__all__ = ["pair_rule"]
