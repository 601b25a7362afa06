"""The colour codes of ITU-T H.273 as IntEnums, with their FFmpeg and VapourSynth values (pure data).

Matrix coefficients, colour primaries and transfer characteristics use the same numbers in H.273, FFmpeg
(``AVColorSpace``, ``AVColorPrimaries``, ``AVColorTransferCharacteristic``) and VapourSynth (``_Matrix``,
``_Primaries``, ``_Transfer``), so for :class:`Matrix`, :class:`Primaries` and :class:`Transfer` the
``ffmpeg`` and ``vapoursynth`` values are the enum's own. Range and chroma siting are numbered differently
by each:

============================  ==========  ===============================  ===========================
fact                          H.273       FFmpeg                           VapourSynth
============================  ==========  ===============================  ===========================
range                         limited 0,  ``AVColorRange``: unspecified 0, ``_Range`` (R7x+): limited 0,
                              full 1      limited (MPEG) 1, full (JPEG) 2  full 1; deprecated
                                                                           ``_ColorRange``: full 0,
                                                                           limited 1
chroma sample location        left 0 …    ``AVChromaLocation``: the H.273  ``_ChromaLocation``: the
                              bottom 5    number + 1, 0 = unspecified      H.273 number
============================  ==========  ===============================  ===========================

:class:`Range` and :class:`ChromaLocation` take the H.273 numbers as their values (so ``ChromaLocation.LEFT``
is 0 and falsy: compare with ``is None``) and convert with ``ffmpeg`` / ``vapoursynth`` and
``from_ffmpeg`` / ``from_vapoursynth``. Codes H.273 reserves, or that a newer edition added, are kept
as pseudo-members named ``CODE_<n>`` (0..255), so a file tagged with them passes its tags through
unchanged; numbers outside 0..255 raise ValueError. vs-jetpack's ``vstools.enums.color`` is the model.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CHROMA_LOCATIONS",
    "ChromaLocation",
    "Matrix",
    "Primaries",
    "Range",
    "Transfer",
    "chroma_location_code",
    "chroma_location_from_code",
]


class _H273Code(IntEnum):
    """An H.273 code point (0..255); unnamed ones become ``CODE_<n>`` pseudo-members."""

    @classmethod
    def _missing_(cls, value):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
            return None  # Enum raises "… is not a valid <cls>"
        member = cls._value2member_map_.get(value)
        if member is None:
            member = int.__new__(cls, value)
            member._name_ = f"CODE_{value}"
            member._value_ = value
            member = cls._value2member_map_.setdefault(value, member)
        return member

    @property
    def ffmpeg(self) -> int:
        """The FFmpeg value (the same number as H.273's)."""
        return int(self)

    @property
    def vapoursynth(self) -> int:
        """The VapourSynth frame-prop value (the same number as H.273's)."""
        return int(self)

    @classmethod
    def from_ffmpeg(cls, code: int | None):
        """FFmpeg's number → member (None → ``UNSPECIFIED``)."""
        return cls.UNSPECIFIED if code is None else cls(int(code))

    from_vapoursynth = from_ffmpeg

    @property
    def is_specified(self) -> bool:
        """False for ``UNSPECIFIED`` (2) and the reserved code 3, which FFmpeg also treats as unspecified."""
        return self not in (2, 3)


class Matrix(_H273Code):
    """Matrix coefficients (H.273 table 4; FFmpeg ``AVColorSpace``; VapourSynth ``_Matrix``)."""

    RGB = 0
    """Identity: the planes hold G, B, R (IEC 61966-2-1 sRGB, also YZX)."""
    BT709 = 1
    """Kr 0.2126, Kb 0.0722 (Rec. ITU-R BT.709)."""
    UNSPECIFIED = 2
    RESERVED = 3
    FCC = 4
    """Kr 0.30, Kb 0.11 (United States FCC Title 47)."""
    BT470BG = 5
    """Kr 0.299, Kb 0.114 (BT.470 System B/G, BT.601 625 lines)."""
    SMPTE170M = 6
    """Kr 0.299, Kb 0.114 (SMPTE 170M, BT.601 525 lines): numerically the same as BT470BG."""
    SMPTE240M = 7
    """Kr 0.212, Kb 0.087."""
    YCGCO = 8
    BT2020_NCL = 9
    """Kr 0.2627, Kb 0.0593, non-constant luminance (Rec. ITU-R BT.2020)."""
    BT2020_CL = 10
    """BT.2020 constant luminance (not a matrix: the conversion is non-linear)."""
    SMPTE2085 = 11
    CHROMA_DERIVED_NCL = 12
    CHROMA_DERIVED_CL = 13
    ICTCP = 14

    GBR = RGB
    BT601 = SMPTE170M


class Primaries(_H273Code):
    """Colour primaries (H.273 table 2; FFmpeg ``AVColorPrimaries``; VapourSynth ``_Primaries``)."""

    BT709 = 1
    UNSPECIFIED = 2
    RESERVED = 3
    BT470M = 4
    BT470BG = 5
    """BT.601 625 lines (PAL/SECAM)."""
    SMPTE170M = 6
    """BT.601 525 lines (NTSC)."""
    SMPTE240M = 7
    FILM = 8
    BT2020 = 9
    SMPTE428 = 10
    """CIE 1931 XYZ (SMPTE ST 428-1)."""
    SMPTE431 = 11
    """DCI-P3."""
    SMPTE432 = 12
    """Display P3 (P3 D65)."""
    EBU3213 = 22


class Transfer(_H273Code):
    """Transfer characteristics (H.273 table 3; FFmpeg ``AVColorTransferCharacteristic``; VapourSynth ``_Transfer``)."""

    BT709 = 1
    UNSPECIFIED = 2
    RESERVED = 3
    GAMMA22 = 4
    """BT.470 System M."""
    GAMMA28 = 5
    """BT.470 System B/G."""
    SMPTE170M = 6
    """BT.601."""
    SMPTE240M = 7
    LINEAR = 8
    LOG100 = 9
    LOG316 = 10
    IEC61966_2_4 = 11
    """xvYCC."""
    BT1361 = 12
    IEC61966_2_1 = 13
    """sRGB."""
    BT2020_10 = 14
    BT2020_12 = 15
    SMPTE2084 = 16
    """PQ (HDR10)."""
    SMPTE428 = 17
    ARIB_STD_B67 = 18
    """HLG."""

    SRGB = IEC61966_2_1
    PQ = SMPTE2084
    HLG = ARIB_STD_B67

    @property
    def is_hdr(self) -> bool:
        """PQ or HLG."""
        return self in (Transfer.SMPTE2084, Transfer.ARIB_STD_B67)


# The FFV1/VapourSynth/FFmpeg numbering of range and siting differ; these two enums hold H.273's.

class Range(IntEnum):
    """Quantisation range: H.273's ``video_full_range_flag`` (limited 0, full 1)."""

    LIMITED = 0
    """Studio / TV / MPEG range: Y 16..235, C 16..240 at 8 bits."""
    FULL = 1
    """PC / JPEG range: every code 0..2^b - 1."""

    @property
    def ffmpeg(self) -> int:
        """``AVColorRange``: 1 (MPEG) limited, 2 (JPEG) full."""
        return 2 if self is Range.FULL else 1

    @property
    def vapoursynth(self) -> int:
        """``_Range`` (VapourSynth R7x and later, ``vs.Range``): 0 limited, 1 full."""
        return int(self)

    @property
    def vapoursynth_legacy(self) -> int:
        """The deprecated ``_ColorRange``: 0 full, 1 limited (the other way round)."""
        return 0 if self is Range.FULL else 1

    @classmethod
    def from_ffmpeg(cls, code: int | None) -> Range | None:
        """``AVColorRange`` → Range; None for 0 (unspecified), None and unknown codes."""
        return {1: cls.LIMITED, 2: cls.FULL}.get(int(code or 0))

    @classmethod
    def from_vapoursynth(cls, code: object) -> Range | None:
        """``_Range`` → Range; None when it is not 0 or 1."""
        return {0: cls.LIMITED, 1: cls.FULL}.get(code) if _plain_int(code) else None

    @classmethod
    def from_vapoursynth_legacy(cls, code: object) -> Range | None:
        """``_ColorRange`` → Range; None when it is not 0 or 1."""
        return {0: cls.FULL, 1: cls.LIMITED}.get(code) if _plain_int(code) else None

    @classmethod
    def from_full(cls, full_range: bool | None) -> Range | None:
        """``ColorSpec.full_range`` → Range (None stays None)."""
        return None if full_range is None else (cls.FULL if full_range else cls.LIMITED)


class ChromaLocation(IntEnum):
    """Where chroma samples sit relative to luma: H.273's ``chroma_sample_loc_type`` (left 0 … bottom 5).

    ``ffmpeg_name`` is FFmpeg's name (``av_chroma_location_name``): what ``ColorSpec.chroma_location`` holds.
    """

    LEFT = 0
    """MPEG-2 / H.264 / HEVC 4:2:0 default: co-sited with the left luma column, between two rows."""
    CENTER = 1
    """JPEG / MPEG-1: centred between the four luma samples."""
    TOP_LEFT = 2
    """Co-sited both ways (BT.2020 / DV 4:2:0)."""
    TOP = 3
    BOTTOM_LEFT = 4
    BOTTOM = 5

    @property
    def ffmpeg(self) -> int:
        """``AVChromaLocation`` (the H.273 number + 1; 0 is unspecified there)."""
        return int(self) + 1

    @property
    def vapoursynth(self) -> int:
        """``_ChromaLocation`` (the H.273 number)."""
        return int(self)

    @property
    def ffmpeg_name(self) -> str:
        """``left``, ``center``, ``topleft``, ``top``, ``bottomleft`` or ``bottom``."""
        return CHROMA_LOCATIONS[self]

    @classmethod
    def from_name(cls, name: str | None) -> ChromaLocation | None:
        """FFmpeg's name → member (None and ``"unspecified"`` → None); ValueError for other names."""
        if name is None or name == "unspecified":
            return None
        try:
            return cls(CHROMA_LOCATIONS.index(name))
        except ValueError:
            raise ValueError(f"unknown chroma location {name!r}; expected one of {CHROMA_LOCATIONS} or None") from None

    @classmethod
    def from_ffmpeg(cls, code: int | None) -> ChromaLocation | None:
        """``AVChromaLocation`` → member; None for 0 (unspecified), None and codes past 6."""
        code = int(code or 0)
        return cls(code - 1) if 1 <= code <= len(cls) else None

    @classmethod
    def from_vapoursynth(cls, code: object) -> ChromaLocation | None:
        """``_ChromaLocation`` → member; None when it is not 0..5."""
        return cls(code) if _plain_int(code) and 0 <= code < len(cls) else None


CHROMA_LOCATIONS: tuple[str, ...] = ("left", "center", "topleft", "top", "bottomleft", "bottom")
"""FFmpeg's chroma-location names in H.273 order (``ChromaLocation(i).ffmpeg_name``)."""


def chroma_location_code(name: str | None) -> int:
    """FFmpeg's ``AVChromaLocation`` number for a chroma-location name (None → 0, unspecified)."""
    loc = ChromaLocation.from_name(name)
    return 0 if loc is None else loc.ffmpeg


def chroma_location_from_code(code: int | None) -> str | None:
    """FFmpeg's ``AVChromaLocation`` number → name; None for 0 (unspecified) and None.

    ValueError for numbers FFmpeg does not define (past 6), so a garbled tag is not taken for "unspecified".
    """
    if code is None or code == 0:
        return None
    loc = ChromaLocation.from_ffmpeg(code)
    if loc is None:
        raise ValueError(f"unknown chroma location code {code}; expected 0..{len(ChromaLocation)}")
    return loc.ffmpeg_name


def _plain_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
