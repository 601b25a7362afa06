"""VapourSynth frame props ↔ the core's colour facts (pure functions, no VapourSynth import).

VapourSynth tags colour with the H.273 codes FFmpeg and :class:`esrgan_video.frames.color.ColorSpec`
use for ``_Matrix``, ``_Primaries`` and ``_Transfer``, but the range and chroma siting are its own:

* ``_Range`` (API 4.2, VapourSynth R7x and later, what ``core.resize`` writes): **1 = full, 0 = limited**
  (``vs.Range.RANGE_FULL == 1``). The deprecated ``_ColorRange`` it replaced counts the other way
  round: **0 = full, 1 = limited**. R81's resizer honours both; so does this module (``_Range`` wins).
  FFmpeg's ``color_range`` is different again (1 = limited, 2 = full).
* ``_ChromaLocation``: 0 left, 1 center, 2 top_left, 3 top, 4 bottom_left, 5 bottom (FFmpeg's
  AVChromaLocation is the same list shifted by one, with 0 = unspecified).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Mapping

from esrgan_video.frames.color import CHROMA_LOCATIONS, UNSPECIFIED, ColorSpec

RANGE_FULL = 1
RANGE_LIMITED = 0
"""``_Range`` values (API 4.2)."""
LEGACY_COLOR_RANGE_FULL = 0
LEGACY_COLOR_RANGE_LIMITED = 1
"""``_ColorRange`` values (deprecated prop)."""

COLOR_PROPS = ("_Matrix", "_Primaries", "_Transfer", "_Range", "_ChromaLocation")
"""The frame props that carry colour facts."""


def _code(props: Mapping[str, object], key: str) -> int:
    value = props.get(key, UNSPECIFIED)
    return int(value) if isinstance(value, int) and 0 <= value <= 255 else UNSPECIFIED


def _full_range(props: Mapping[str, object]) -> bool | None:
    rng = props.get("_Range")
    if isinstance(rng, int) and rng in (RANGE_FULL, RANGE_LIMITED):
        return rng == RANGE_FULL
    legacy = props.get("_ColorRange")
    if isinstance(legacy, int) and legacy in (LEGACY_COLOR_RANGE_FULL, LEGACY_COLOR_RANGE_LIMITED):
        return legacy == LEGACY_COLOR_RANGE_FULL
    return None


def spec_from_props(props: Mapping[str, object]) -> ColorSpec:
    """The :class:`ColorSpec` a frame's props describe; missing or unknown values stay unspecified.

    Call :meth:`ColorSpec.resolved` on the result to fill the gaps with the mpv rule.
    """
    full_range = _full_range(props)
    loc = props.get("_ChromaLocation")
    chroma_location = CHROMA_LOCATIONS[loc] if isinstance(loc, int) and 0 <= loc < len(CHROMA_LOCATIONS) else None
    return ColorSpec(
        matrix=_code(props, "_Matrix"),
        primaries=_code(props, "_Primaries"),
        transfer=_code(props, "_Transfer"),
        full_range=full_range,
        chroma_location=chroma_location,
    )


def props_from_spec(spec: ColorSpec, *, chroma: bool) -> dict[str, int]:
    """The colour props that describe ``spec`` (a resolved one); ``chroma``: include ``_ChromaLocation``."""
    out = {"_Matrix": spec.matrix, "_Primaries": spec.primaries, "_Transfer": spec.transfer}
    if spec.full_range is not None:
        out["_Range"] = RANGE_FULL if spec.full_range else RANGE_LIMITED
    if chroma and spec.chroma_location is not None:
        out["_ChromaLocation"] = CHROMA_LOCATIONS.index(spec.chroma_location)
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
