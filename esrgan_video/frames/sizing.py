"""Output size planning (pure): from --scale / --size / --fit / --square-pixels, the model's scale and the
source's sample aspect ratio (SAR), the frame that is encoded and how the upscaled picture lies in it.

The display aspect (DAR = width × SAR / height) of the source is what a viewer sees, and it is kept unless the
user asks for ``--fit stretch``:

- no ``--size``: the frame is ``scale`` (default: the model's) times the source's, with the source's SAR. With
  ``--square-pixels``, or where the output cannot carry a SAR, an anamorphic picture is resampled to square
  pixels by enlarging one side (the wider-than-tall pixels widen the frame, narrower ones heighten it), so no
  detail is thrown away.
- ``--size Wx`` / ``xH``: the other side follows from the display aspect at the output's SAR (the source's, or 1
  with ``--square-pixels`` / where no SAR can be stored).
- ``--size WxH``: by default the frame is exactly W×H and the output's SAR is set so that the display aspect is
  kept, as FFmpeg's scaler does (a note says so). Where the output cannot carry a SAR, or with
  ``--square-pixels``, the picture is fitted inside instead (``pad``; a note says so). ``--fit`` makes
  square-pixel W×H frames: ``pad`` fits the picture inside and fills the rest with black, ``crop`` fills the
  frame and cuts the overflow evenly from both sides, ``stretch`` resizes to W×H regardless of shape (a note
  says how the display aspect changes).

:func:`plan_size` returns a :class:`SizePlan`: the output frame, its SAR, and where the resized picture goes
(``picture`` size and ``offset``; a negative offset crops). :func:`place_rgb` applies it on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch.nn import functional as F

from ..errors import OptionError
from ..options import SizeOptions

SAR_DENOMINATOR_LIMIT = 1000
"""Largest denominator of a computed SAR (FFmpeg reduces its scaler's SAR the same way, to small terms)."""


@dataclass(frozen=True)
class SizePlan:
    """How an upscaled source picture becomes an output frame."""

    width: int
    height: int
    """The encoded output frame."""
    sar: Fraction
    """The output's sample aspect ratio (1 = square pixels)."""
    picture: tuple[int, int]
    """(width, height) the upscaled picture is resized to."""
    offset: tuple[int, int] = (0, 0)
    """Where the picture's top-left corner lies in the output frame; negative values crop it, positive ones pad it
    (black)."""
    notes: tuple[str, ...] = ()
    """One-line explanations of a choice the user should know about (a SAR written, a resample, padding)."""

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def placed(self) -> bool:
        """Whether the picture is padded or cropped (not simply resized to the frame)."""
        return self.picture != (self.width, self.height) or self.offset != (0, 0)

    @property
    def display_aspect(self) -> Fraction:
        return Fraction(self.width) * self.sar / self.height

    def resize(self, rgb: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """The frame transform's resize hook (``FrameTransform(resize=plan.resize, out_size=plan.size)``): the
        model's output placed in this plan's frame (:func:`place_rgb`)."""
        if (width, height) != (self.width, self.height):
            raise ValueError(f"SizePlan.resize: planned for {self.width}x{self.height}, asked for {width}x{height}")
        return place_rgb(rgb, self)


def _round_to(value: float, multiple: int) -> int:
    """Nearest multiple of ``multiple`` (halves round up), at least ``multiple``."""
    return max(multiple, int(math.floor(value / multiple + 0.5)) * multiple)


MOST_SIDE = 2**31 - 1
"""The largest frame side a ``--scale`` may give: what FFmpeg's frame sizes (C ints) can hold. Below it, what each
encoder takes is ``video.frame_limits``' (FFmpeg's own picture limit, 2080767 px for a 1 px high picture, and less)."""


def _side(v: float) -> str:
    """A planned side for a message: whole pixels where that reads (``1920``), else three digits (``0.0064``,
    ``6.4e+301``)."""
    if math.isinf(v):
        return "beyond 1.8e+308"
    return f"{v:.0f}" if 1 <= v < 1e7 and float(v).is_integer() else f"{v:.3g}"


def _check_scale(scale: float, width: int, height: int, fw: float, fh: float) -> None:
    """``OptionError`` naming ``scale`` where it makes a frame no encoder could be given: a side under one pixel
    (``--scale 0.0001`` of a 64x48 input: 0.0064x0.0048, which rounding made 2x2) or beyond :data:`MOST_SIDE`
    (``--scale 1e300``). ``fw``/``fh``: the input's sides as the scale multiplies them (anamorphic ones resampled)."""
    w, h = fw * scale, fh * scale
    given = f"{width}x{height} by {scale:g} is {_side(w)}x{_side(h)}"
    if min(w, h) < 1:
        raise OptionError("scale", f"a scale that makes each side at least 1 px ({1 / min(fw, fh):.3g} or more for a "
                                   f"{width}x{height} input)", scale, detail=given)
    if max(w, h) > MOST_SIDE:
        raise OptionError("scale", f"a scale that makes each side at most {MOST_SIDE} px "
                                   f"({MOST_SIDE / max(fw, fh):.3g} or less for a {width}x{height} input)", scale,
                          detail=given)


def _ratio(v: Fraction) -> str:
    return f"{v.numerator}:{v.denominator}"


def _aspect(v: Fraction) -> str:
    return f"{float(v):.3f}".rstrip("0").rstrip(".")


def plan_size(
    width: int,
    height: int,
    *,
    model_scale: int,
    sar: Fraction | None = None,
    scale: float | None = None,
    size: tuple[int | None, int | None] | str | None = None,
    fit: str | None = None,
    square_pixels: bool = False,
    sar_storable: bool = True,
    multiple: tuple[int, int] = (1, 1),
) -> SizePlan:
    """The output frame for a ``width``×``height`` source with sample aspect ratio ``sar`` (None or 0: square).

    ``sar_storable``: whether the output can record a SAR (see :func:`sar_storable`). Each side of the frame is
    rounded to ``multiple`` (what the output pixel format allows, e.g. (2, 2) for 4:2:0). Raises
    :class:`~esrgan_video.errors.OptionError` for contradictory options (``scale`` with ``size``, ``fit`` without both
    sides): the checks of :class:`~esrgan_video.options.SizeOptions`.
    """
    checked = SizeOptions(scale=scale, size=size, fit=fit, square_pixels=square_pixels)  # the one set of checks
    scale, size = checked.scale, checked.size
    src_sar = Fraction(sar) if sar else Fraction(1)
    dar = Fraction(width) * src_sar / height
    mx, my = multiple
    notes: list[str] = []
    anamorphic = src_sar != 1
    square = square_pixels or not sar_storable
    out_sar = Fraction(1) if square else src_sar
    if anamorphic and square and not square_pixels:
        notes.append(f"the output cannot store the source's sample aspect ratio {_ratio(src_sar)}; the picture is "
                     "resampled to square pixels to keep its display aspect")

    if size is None:
        s = float(model_scale if scale is None else scale)
        fw, fh = float(width), float(height)
        if anamorphic and square:
            if src_sar > 1:
                fw *= float(src_sar)
            else:
                fh /= float(src_sar)
        if scale is not None:
            _check_scale(s, width, height, fw, fh)
        w, h = fw * s, fh * s
        ow, oh = _round_to(w, mx), _round_to(h, my)
        if anamorphic and square and square_pixels:
            notes.append(f"resampled to square pixels: {width}x{height} SAR {_ratio(src_sar)} → {ow}x{oh}")
        if anamorphic and not square:
            out_sar = _exact_sar(dar, ow, oh)
        return SizePlan(ow, oh, out_sar, (ow, oh), notes=tuple(notes))

    w, h = size
    if w is None or h is None:
        if w is None:
            w = h * dar / out_sar
        else:
            h = w * out_sar / dar
        ow, oh = _round_to(w, mx), _round_to(h, my)
        if out_sar != 1:
            out_sar = _exact_sar(dar, ow, oh)
        return SizePlan(ow, oh, out_sar, (ow, oh), notes=tuple(notes))

    ow, oh = _round_to(w, mx), _round_to(h, my)
    if fit is not None:
        out_sar = Fraction(1)
    if fit is None:
        if not square:
            new_sar = _exact_sar(dar, ow, oh)
            if new_sar != out_sar and new_sar == 1:  # an anamorphic source whose display aspect is W:H
                notes.append(f"--size {ow}x{oh}: the display aspect {_aspect(dar)} is kept with square pixels "
                             f"(the source's sample aspect ratio was {_ratio(src_sar)})")
            elif new_sar != out_sar:
                notes.append(f"--size {ow}x{oh}: the display aspect {_aspect(dar)} is kept by writing the sample "
                             f"aspect ratio {_ratio(new_sar)} (use --fit pad|crop|stretch for square pixels)")
            return SizePlan(ow, oh, new_sar, (ow, oh), notes=tuple(notes))
        fit = "pad"
        if Fraction(ow) / oh != dar:
            why = "--square-pixels is set" if square_pixels else "the output cannot store a sample aspect ratio"
            notes.append(f"--size {ow}x{oh}: the picture (display aspect {_aspect(dar)}) is fitted inside with black "
                         f"bars, since {why} (--fit crop|stretch for other shapes)")
    if fit == "stretch":
        if Fraction(ow) * out_sar / oh != dar:
            notes.append(f"--fit stretch: the display aspect changes from {_aspect(dar)} to "
                         f"{_aspect(Fraction(ow) * out_sar / oh)}")
        return SizePlan(ow, oh, out_sar, (ow, oh), notes=tuple(notes))
    frame_dar = Fraction(ow) * out_sar / oh
    wider = frame_dar > dar  # the frame is wider than the picture
    if (fit == "pad") == wider:  # pad a wider frame / crop a narrower one: the picture takes the frame's height
        ph = oh
        pw = max(1, round(oh * dar / out_sar))
    else:
        pw = ow
        ph = max(1, round(ow * out_sar / dar))
    return SizePlan(ow, oh, out_sar, (pw, ph), offset=(_centre(ow, pw), _centre(oh, ph)), notes=tuple(notes))


def _centre(frame: int, picture: int) -> int:
    """Offset that centres ``picture`` in ``frame``; an odd leftover goes to the right / bottom side."""
    return (frame - picture) // 2 if frame >= picture else -((picture - frame) // 2)


def _exact_sar(dar: Fraction, width: int, height: int) -> Fraction:
    """The SAR that shows a ``width``×``height`` frame at display aspect ``dar``, in small terms."""
    return (dar * height / width).limit_denominator(SAR_DENOMINATOR_LIMIT)


def sar_storable(codec: str, container_format: str | None) -> bool:
    """Whether an output can record a sample aspect ratio: FFmpeg's Matroska muxer takes it from the stream's
    codec parameters, which PyAV does not fill for FFV1, ProRes and UT Video (the writer warns the same)."""
    return not (codec in ("ffv1", "prores_ks", "utvideo") and container_format in ("matroska", "webm"))


def output_size(
    width: int,
    height: int,
    *,
    model_scale: int,
    scale: float | None = None,
    size: tuple[int | None, int | None] | None = None,
    multiple: tuple[int, int] = (1, 1),
) -> tuple[int, int]:
    """The output (width, height) of a square-pixel picture (stills, VapourSynth clips whose SAR the caller
    handles): :func:`plan_size` with SAR 1, so ``size`` WxH is taken as is."""
    return plan_size(width, height, model_scale=model_scale, scale=scale, size=size, multiple=multiple).size


def resize_rgb(rgb: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Antialiased bicubic resize of N×C×H×W float RGB on its device; a no-op at the same size."""
    if rgb.shape[-2:] == (height, width):
        return rgb
    out = F.interpolate(rgb, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


def place_rgb(rgb: torch.Tensor, plan: SizePlan, *, fill: float = 0.0) -> torch.Tensor:
    """``rgb`` (N×C×H×W float, on its device) resized to ``plan.picture`` and placed in a ``plan.width`` ×
    ``plan.height`` frame at ``plan.offset``: cropped where it overflows, ``fill`` (black) where it does not cover."""
    pw, ph = plan.picture
    y = resize_rgb(rgb, pw, ph)
    if not plan.placed:
        return y
    ox, oy = plan.offset
    # crop what lies outside the frame, then pad what it does not cover
    x0, y0 = max(0, -ox), max(0, -oy)
    y = y[..., y0:y0 + min(ph - y0, plan.height - max(oy, 0)), x0:x0 + min(pw - x0, plan.width - max(ox, 0))]
    left, top = max(ox, 0), max(oy, 0)
    right, bottom = plan.width - left - y.shape[-1], plan.height - top - y.shape[-2]
    if left or top or right or bottom:
        y = F.pad(y, (left, right, top, bottom), value=fill)
    return y
