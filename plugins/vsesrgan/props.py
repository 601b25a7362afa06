"""VapourSynth frame props ↔ the core's colour facts (pure functions, no VapourSynth import).

VapourSynth tags colour with the H.273 codes FFmpeg and :class:`esrgan_video.frames.color.ColorSpec`
use for ``_Matrix``, ``_Primaries`` and ``_Transfer``, but the range and chroma siting are its own:

* ``_Range`` (API 4.2, VapourSynth R7x and later, what ``core.resize`` writes): **1 = full, 0 = limited**
  (``vs.Range.RANGE_FULL == 1``). The deprecated ``_ColorRange`` it replaced counts the other way
  round: **0 = full, 1 = limited**. R81's resizer honours both; so does this module (``_Range`` wins).
  FFmpeg's ``color_range`` is different again (1 = limited, 2 = full).
* ``_ChromaLocation``: 0 left, 1 center, 2 top_left, 3 top, 4 bottom_left, 5 bottom (FFmpeg's
  AVChromaLocation is the same list shifted by one, with 0 = unspecified).

The numbers live in one place, :mod:`esrgan_video.frames.colorspace` (``Range.vapoursynth``,
``Range.from_vapoursynth_legacy``, ``ChromaLocation.vapoursynth``, …); this module only maps props to a
``ColorSpec`` and back.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Mapping

from esrgan_video.frames.color import ColorSpec
from esrgan_video.frames.colorspace import ChromaLocation, Matrix, Primaries, Range, Transfer

RANGE_FULL = Range.FULL.vapoursynth
RANGE_LIMITED = Range.LIMITED.vapoursynth
"""``_Range`` values (API 4.2)."""
LEGACY_COLOR_RANGE_FULL = Range.FULL.vapoursynth_legacy
LEGACY_COLOR_RANGE_LIMITED = Range.LIMITED.vapoursynth_legacy
"""``_ColorRange`` values (deprecated prop)."""

COLOR_PROPS = ("_Matrix", "_Primaries", "_Transfer", "_Range", "_ChromaLocation")
"""The frame props that carry colour facts."""


def _code(props: Mapping[str, object], key: str, enum):
    value = props.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        return enum.from_vapoursynth(value)
    return enum.UNSPECIFIED


def _range(props: Mapping[str, object]) -> Range | None:
    rng = Range.from_vapoursynth(props.get("_Range"))
    return rng if rng is not None else Range.from_vapoursynth_legacy(props.get("_ColorRange"))


def spec_from_props(props: Mapping[str, object]) -> ColorSpec:
    """The :class:`ColorSpec` a frame's props describe; missing or unknown values stay unspecified.

    ``_Range`` wins over the deprecated ``_ColorRange``. Call :meth:`ColorSpec.resolved` on the result to
    fill the gaps with the mpv rule.
    """
    rng = _range(props)
    loc = ChromaLocation.from_vapoursynth(props.get("_ChromaLocation"))
    return ColorSpec(
        matrix=_code(props, "_Matrix", Matrix),
        primaries=_code(props, "_Primaries", Primaries),
        transfer=_code(props, "_Transfer", Transfer),
        full_range=None if rng is None else rng is Range.FULL,
        chroma_location=None if loc is None else loc.ffmpeg_name,
    )


def props_from_spec(spec: ColorSpec, *, chroma: bool) -> dict[str, int]:
    """The colour props (plain ints) that describe ``spec`` (a resolved one); ``chroma``: include ``_ChromaLocation``."""
    out = {"_Matrix": spec.matrix.vapoursynth, "_Primaries": spec.primaries.vapoursynth,
           "_Transfer": spec.transfer.vapoursynth}
    if spec.range is not None:
        out["_Range"] = spec.range.vapoursynth
    siting = spec.chroma_siting
    if chroma and siting is not None:
        out["_ChromaLocation"] = siting.vapoursynth
    return out


def adjusted_sar(
    props: Mapping[str, object], in_size: tuple[int, int], out_size: tuple[int, int]
) -> tuple[int, int] | None:
    """The ``(_SARNum, _SARDen)`` that keeps the display aspect after resizing ``in_size`` → ``out_size``.

    None when the scale is uniform (the SAR is unchanged). A missing or zero SAR counts as square pixels.
    Sizes are ``(width, height)``.
    """
    (w, h), (ow, oh) = in_size, out_size
    if Fraction(ow, w) == Fraction(oh, h):
        return None
    num, den = props.get("_SARNum", 0), props.get("_SARDen", 0)
    sar = Fraction(num, den) if isinstance(num, int) and isinstance(den, int) and num > 0 and den > 0 else Fraction(1)
    new = sar * Fraction(w * oh, h * ow)
    return new.numerator, new.denominator


__all__ = [
    "COLOR_PROPS",
    "LEGACY_COLOR_RANGE_FULL",
    "LEGACY_COLOR_RANGE_LIMITED",
    "RANGE_FULL",
    "RANGE_LIMITED",
    "adjusted_sar",
    "props_from_spec",
    "spec_from_props",
]
