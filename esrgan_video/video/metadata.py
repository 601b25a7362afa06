"""Stream facts PyAV hands out as raw numbers or bytes, turned into plain values (pure functions).

Field order, display matrix → rotation, and the HDR side-data structs (mastering display, content light
level). Colour tags (H.273 codes and FFmpeg's range / chroma-location numbers) are
:mod:`esrgan_video.frames.colorspace`'s.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction

from av.stream import Disposition

from .nal_count import escaped

__all__ = [
    "FIELD_ORDERS",
    "MOV_LANGUAGES",
    "demuxer_in",
    "dispositions_lost",
    "mov_language",
    "HdrMetadata",
    "display_matrix_from_bytes",
    "rotation_from_matrix",
    "CAPTION_ENCODERS",
    "a53_sei",
    "t35_sei",
    "with_captions",
    "with_sei",
]


def demuxer_in(format_name: str, names) -> bool:
    """Whether the FFmpeg demuxer ``format_name`` — a comma list for demuxers with several names
    (``"mov,mp4,m4a,3gp,3g2,mj2"``) — is one of ``names``."""
    return not set(format_name.split(",")).isdisjoint(names)

MOV_LANGUAGES = {
    "fre": "fra", "deu": "ger", "nld": "dut", "zho": "chi", "cze": "ces", "ell": "gre", "fas": "per", "rum": "ron",
    "slo": "slk", "cym": "wel", "isl": "ice", "mkd": "mac", "msa": "may", "hye": "arm", "eus": "baq", "mya": "bur",
    "kat": "geo", "bod": "tib", "sqi": "alb",
}
"""ISO 639-2 codes FFmpeg's MOV muxer drops (it stores a language only as a QuickTime Macintosh language code, and
its table of those names each language by one of its two ISO 639-2 codes — bibliographic for some, terminology for
others: ``fra`` but ``ger``) → the other code of the same language, the one the table has. Matroska writes the
bibliographic codes (``fre``, ``ger``), so a French track into ``.mov`` lost its language. MP4 stores any code."""


def mov_language(code: str | None) -> str | None:
    """The code of language ``code`` that survives FFmpeg's MOV muxer (``MOV_LANGUAGES``; others unchanged)."""
    return MOV_LANGUAGES.get(code, code) if code else code


_NOT_JUDGED = ("attached_pic", "timed_thumbnails", "non_diegetic")
DISPOSITION_FLAGS = {name: int(bit) for name, bit in Disposition.__members__.items() if name not in _NOT_JUDGED}
"""FFmpeg's AV_DISPOSITION_* bits by PyAV's name (``av.stream.Disposition``), attached_pic, timed_thumbnails and
non_diegetic left out: cover art is its own case, the other two no muxer here writes."""

DISPOSITIONS_KEPT = {
    "matroska": frozenset({"default", "dub", "original", "comment", "forced", "hearing_impaired", "visual_impaired"}),
    "webm": frozenset({"default", "forced"}),
    "mp4": frozenset({"default", "dub", "comment", "forced", "hearing_impaired", "visual_impaired", "captions",
                      "descriptions"}),
    "mov": frozenset({"default"}),
}
"""The dispositions each FFmpeg muxer writes and its demuxer reads back (measured, FFmpeg 7/PyAV 19: MP4 stores
them as ``kind`` boxes, which MOV mode does not write; WebM keeps FlagDefault and FlagForced only). Others: unknown."""


def dispositions_lost(flags: int, muxer: str | None) -> list[str]:
    """The names of the disposition ``flags`` muxer ``muxer`` cannot store ([] for a muxer not in
    ``DISPOSITIONS_KEPT``)."""
    kept = DISPOSITIONS_KEPT.get(muxer or "")
    if kept is None:
        return []
    return [name for name, bit in DISPOSITION_FLAGS.items() if flags & bit and name not in kept]


FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
"""AVFieldOrder codes → names (``tt``: top field first, coded and displayed; ``tb``/``bt``: mixed)."""


def display_matrix_from_bytes(data: bytes | None) -> tuple[int, ...] | None:
    """The 9 int32 entries of an FFmpeg display matrix (16.16 / 2.30 fixed point), None without one."""
    if not data or len(data) < 36:
        return None
    return struct.unpack("<9i", data[:36])


def rotation_from_matrix(matrix: tuple[int, ...] | None) -> float:
    """Counter-clockwise rotation in degrees a player applies (``av_display_rotation_get``), 0 without a matrix."""
    if not matrix:
        return 0.0
    s0 = math.hypot(matrix[0], matrix[3])
    s1 = math.hypot(matrix[1], matrix[4])
    if s0 == 0 or s1 == 0:
        return 0.0
    angle = -math.degrees(math.atan2(matrix[1] / s1, matrix[0] / s0))
    return angle + 0.0  # no -0.0


def _q(num: int, den: int) -> Fraction | None:
    return Fraction(num, den) if den else None


@dataclass(frozen=True)
class HdrMetadata:
    """Static HDR metadata (SMPTE ST 2086 mastering display, CTA-861.3 content light level).

    Chromaticities are CIE 1931 xy, luminances in cd/m². ``raw_*`` keep FFmpeg's side-data bytes.
    """

    red: tuple[Fraction, Fraction] | None = None
    green: tuple[Fraction, Fraction] | None = None
    blue: tuple[Fraction, Fraction] | None = None
    white_point: tuple[Fraction, Fraction] | None = None
    min_luminance: Fraction | None = None
    max_luminance: Fraction | None = None
    max_cll: int | None = None
    max_fall: int | None = None
    raw_mastering_display: bytes | None = None
    raw_content_light: bytes | None = None

    @classmethod
    def from_side_data(cls, mastering: bytes | None, light: bytes | None) -> HdrMetadata | None:
        """Parse AVMasteringDisplayMetadata and AVContentLightMetadata bytes; None when both are absent."""
        fields: dict = {"raw_mastering_display": mastering or None, "raw_content_light": light or None}
        if mastering and len(mastering) >= 88:
            v = struct.unpack("<22i", mastering[:88])
            r = [_q(v[i], v[i + 1]) for i in range(0, 20, 2)]
            has_primaries, has_luminance = v[20], v[21]
            if has_primaries and None not in r[:8]:
                fields.update(red=(r[0], r[1]), green=(r[2], r[3]), blue=(r[4], r[5]), white_point=(r[6], r[7]))
            if has_luminance:
                fields.update(min_luminance=r[8], max_luminance=r[9])
        if light and len(light) >= 8:
            fields["max_cll"], fields["max_fall"] = struct.unpack("<2I", light[:8])
        hdr = cls(**fields)
        return hdr if (hdr.red or hdr.max_luminance or hdr.max_cll is not None) else None

    def x265_params(self) -> list[str]:
        """``master-display=…`` / ``max-cll=…`` for libx265 (chromaticity in 1/50000, luminance in 1/10000 cd/m²)."""
        return self._encoder_params("master-display", "max-cll", lambda v: str(round(v * 50000)),
                                    lambda v: str(round(v * 10000)))

    def svtav1_params(self) -> list[str]:
        """``mastering-display=…`` / ``content-light=…`` for libsvtav1 (decimal chromaticities and cd/m²)."""
        return self._encoder_params("mastering-display", "content-light", lambda v: f"{float(v):.4f}",
                                    lambda v: f"{float(v):.4f}")

    def _encoder_params(self, display_key: str, light_key: str, chroma, luminance) -> list[str]:
        """``<display_key>=G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)`` and ``<light_key>=cll,fall``, numbers written by
        ``chroma`` / ``luminance``; only the parts the metadata has."""
        out = []
        if self.red and self.max_luminance is not None:
            def xy(p):
                return f"({chroma(p[0])},{chroma(p[1])})"
            out.append(
                f"{display_key}=G{xy(self.green)}B{xy(self.blue)}R{xy(self.red)}WP{xy(self.white_point)}"
                f"L({luminance(self.max_luminance)},{luminance(self.min_luminance or 0)})"
            )
        if self.max_cll is not None:
            out.append(f"{light_key}={self.max_cll},{self.max_fall or 0}")
        return out


# -- closed captions ------------------------------------------------------------------------------------------------
CAPTION_ENCODERS = {"libx264": "h264", "libx265": "hevc"}
"""The encoders whose packets :func:`with_captions` writes ATSC A/53 captions into (an SEI NAL, as their own ``a53cc``
option writes it from a frame's side data, which PyAV 19 cannot attach to a frame), by the bitstream's codec."""


def a53_sei(cc_data: bytes, codec: str) -> bytes:
    """An Annex B SEI NAL unit (H.264 type 6, HEVC prefix SEI 39) of ``user_data_registered_itu_t_t35``: ATSC A/53's
    ``GA94`` ``cc_data`` holding ``cc_data``, the CEA-608/708 triplets of FFmpeg's ``A53_CC`` side data (at most 31:
    the field's count), as FFmpeg's ``ff_alloc_a53_sei`` builds it (em_data 0, marker 0xFF)."""
    count = min(len(cc_data) // 3, 31)
    return t35_sei(b"\xb5\x00\x31GA94\x03" + bytes([0x40 | count, 0]) + cc_data[:3 * count] + b"\xff", codec)


def _sei_number(n: int) -> bytes:
    """An SEI payload type or size: 0xFF for each 255, then the rest."""
    return b"\xff" * (n // 255) + bytes([n % 255])


def t35_sei(payload: bytes, codec: str) -> bytes:
    """An Annex B SEI NAL unit (H.264 type 6, HEVC prefix SEI 39) of one ``user_data_registered_itu_t_t35`` message
    ``payload`` (from its country code on): A/53 captions' (:func:`a53_sei`), HDR10+'s (``hdr10plus``)."""
    body = _sei_number(4) + _sei_number(len(payload)) + payload + b"\x80"  # payload type 4, its size; rbsp trailing
    header = b"\x4e\x01" if codec == "hevc" else b"\x06"
    return b"\x00\x00\x00\x01" + header + escaped(body)  # emulation prevention: no 00 00 0x (x <= 3) inside


def with_captions(data: bytes, cc_data: bytes, codec: str) -> bytes | None:
    """Annex B access unit ``data`` (an H.264 or HEVC packet as libx264 / libx265 give it) with :func:`a53_sei` of
    ``cc_data`` put before its first slice; None where ``data`` is no Annex B unit with a slice (left as it is)."""
    return with_sei(data, a53_sei(cc_data, codec), codec)


def with_sei(data: bytes, sei: bytes, codec: str) -> bytes | None:
    """Annex B access unit ``data`` (an H.264 or HEVC packet) with the SEI NAL unit ``sei`` (Annex B, start code
    included) put before its first slice; None where ``data`` is no Annex B unit with a slice."""
    if not data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        return None
    i = 0
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0 or j + 3 >= len(data):
            return None
        b = data[j + 3]
        if ((b >> 1) & 0x3F) < 32 if codec == "hevc" else 1 <= (b & 0x1F) <= 5:
            at = j - 1 if j > 0 and data[j - 1] == 0 else j
            return data[:at] + sei + data[at:]
        i = j + 3
