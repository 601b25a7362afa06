"""How many pictures a raw H.264 or HEVC elementary stream holds, counted from its bytes (pure; no decoder).

A raw Annex B stream (``.h264``, ``.264``, ``.h265``, ``.hevc``) has no container: no frame count, no
duration, no timestamps. When it is damaged, FFmpeg's parser merges or drops the damaged NAL units without a word,
so the packets and frames the reader sees cannot tell how many pictures are missing. The bytes can: every NAL unit
starts with a start code (``00 00 01``, which emulation prevention keeps out of the payload), and the first slice of
every primary coded picture says so in its first bits:

- H.264: slice NAL units (types 1 and 5) whose ``first_mb_in_slice`` is 0 — the first bit after the one-byte NAL
  header is 1 (``ue(v)`` of 0). In a stream that may hold field pictures (an SPS with ``frame_mbs_only_flag`` 0),
  the slice header is read on to ``field_pic_flag``: the two fields of a frame (opposite parity, the same
  ``frame_num``, one right after the other) are one picture, as the decoder gives one frame for them.
- HEVC: VCL NAL units (types 0–9 and 16–21; the reserved ones are discarded by decoders) of the base layer
  (``nuh_layer_id`` 0) with ``first_slice_segment_in_pic_flag`` set — the first bit after the two-byte header —
  and ``pic_output_flag`` not 0. RASL pictures (types 8, 9) that belong to a CRA starting the stream (or following
  an end of sequence) or to a BLA are not counted: the decoder must drop them (they refer to pictures before the
  stream's start). After pictures that come before any IRAP picture (the stream's start is gone), the first CRA's
  RASL pictures count: they belong to the stream, and are lost.

Damage that wipes out whole pictures, start codes and all, leaves no first slice to count; it leaves gaps in the
picture order counts (POC) of the pictures around it, which the slice headers carry (H.264 POC types 0 and 2 in
frame streams; HEVC), so those are read too: :attr:`PictureCount.missing` (:func:`numbering_gaps`, judged only on
an even numbering, as ``damage.timestamp_gaps`` judges timestamps), plus, in H.264, an IDR picture gone where
``frame_num`` starts again without one. Pictures lost after the last one left in presentation order of an IDR
period leave no gap: there the count stays a lower bound.

:class:`PictureCounter` takes the bytes chunk by chunk (a start code, or the header after it, may be split across
chunks), so a file is counted in one streaming pass: :func:`count_pictures_in_file`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = ["CODECS", "PictureCount", "PictureCounter", "count_pictures", "count_pictures_in_file",
           "numbering_gaps"]

CODECS = ("h264", "hevc")
"""The codecs counted (FFmpeg's names; the raw demuxers share them)."""

START_CODE = b"\x00\x00\x01"
HEAD = 32
"""Bytes of a NAL unit looked at (after its start code): a slice header up to ``field_pic_flag`` fits easily."""
PARAMETER_SET_HEAD = 1024
"""Bytes of a sequence parameter set looked at (H.264's scaling lists, HEVC's profile_tier_level make it longer
than a slice header)."""
CHUNK = 1 << 20

_H264_SPS, _H264_PPS = 7, 8
_HEVC_RASL = (8, 9)
_HEVC_BLA = (16, 17, 18)
_HEVC_CRA = 21
_HEVC_EOS = 36
_HEVC_SPS, _HEVC_PPS = 33, 34
_HEVC_IDR = (19, 20)
_HEVC_RADL = (6, 7)
_HEVC_VCL = frozenset(range(0, 10)) | frozenset(range(16, 22))


class _Bits:
    """An RBSP bit reader (emulation prevention bytes already removed); reading past the end raises IndexError."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.value = int.from_bytes(data, "big")
        self.size = len(data) * 8
        self.pos = pos

    def u(self, n: int) -> int:
        end = self.pos + n
        if end > self.size:
            raise IndexError("past the end of the NAL unit's head")
        self.pos = end
        return (self.value >> (self.size - end)) & ((1 << n) - 1)

    def ue(self) -> int:
        rest = self.value & ((1 << (self.size - self.pos)) - 1)
        if not rest:
            raise IndexError("past the end of the NAL unit's head")
        zeros = self.size - self.pos - rest.bit_length()
        if zeros > 31:
            raise ValueError("not an Exp-Golomb code")
        self.pos += zeros
        return self.u(zeros + 1) - 1

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def escaped(rbsp: bytes) -> bytes:
    """``rbsp`` with emulation prevention bytes put in (a ``03`` after every ``00 00`` followed by a byte <= 3), as a
    NAL unit's payload must carry it: the inverse of :func:`_rbsp`."""
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _rbsp(data: bytes) -> bytes:
    """``data`` without its emulation prevention bytes (the ``03`` of every ``00 00 03``): :func:`escaped` undone."""
    if b"\x00\x00\x03" not in data:
        return data
    out = bytearray()
    zeros = 0
    for b in data:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


@dataclass(frozen=True)
class _Sps:
    separate_colour_plane: bool
    log2_max_frame_num: int
    frame_mbs_only: bool
    poc_type: int
    log2_max_poc_lsb: int


def _parse_h264_sps(rbsp: bytes) -> tuple[int, _Sps]:
    """(seq_parameter_set_id, what a slice header needs) from an SPS NAL unit (header byte included)."""
    r = _Bits(rbsp, 8)
    profile = r.u(8)
    r.u(16)  # constraint flags, level_idc
    sps_id = r.ue()
    separate = False
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma_format = r.ue()
        if chroma_format == 3:
            separate = bool(r.u(1))
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format != 3 else 12):
                if r.u(1):
                    last, nxt = 8, 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt:
                            nxt = (last + r.se()) % 256
                        last = nxt or last
    log2_max_frame_num = r.ue() + 4
    poc_type = r.ue()
    log2_max_poc_lsb = 0
    if poc_type == 0:
        log2_max_poc_lsb = r.ue() + 4
    elif poc_type == 1:
        r.u(1)
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    r.ue()  # pic_width_in_mbs_minus1
    r.ue()  # pic_height_in_map_units_minus1
    return sps_id, _Sps(separate, log2_max_frame_num, bool(r.u(1)), poc_type, log2_max_poc_lsb)


@dataclass(frozen=True)
class _HevcSps:
    separate_colour_plane: bool
    log2_max_poc_lsb: int


@dataclass(frozen=True)
class _HevcPps:
    sps_id: int
    output_flag_present: bool
    extra_slice_header_bits: int


def _parse_hevc_sps(rbsp: bytes) -> tuple[int, _HevcSps]:
    """(sps_seq_parameter_set_id, what a slice header needs) from an HEVC SPS NAL unit (2-byte header included)."""
    r = _Bits(rbsp, 16)
    r.u(4)  # sps_video_parameter_set_id
    sub_layers = r.u(3)  # sps_max_sub_layers_minus1
    r.u(1)  # sps_temporal_id_nesting_flag
    r.u(96)  # general profile (88 bits) and level_idc
    present = [(r.u(1), r.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        r.u(2 * (8 - sub_layers))  # reserved_zero_2bits
    for profile, level in present:
        r.u(88 * profile + 8 * level)
    sps_id = r.ue()
    chroma_format = r.ue()
    separate = bool(r.u(1)) if chroma_format == 3 else False
    r.ue()  # pic_width_in_luma_samples
    r.ue()  # pic_height_in_luma_samples
    if r.u(1):  # conformance_window_flag
        for _ in range(4):
            r.ue()
    r.ue()  # bit_depth_luma_minus8
    r.ue()  # bit_depth_chroma_minus8
    return sps_id, _HevcSps(separate, r.ue() + 4)


def _parse_hevc_pps(rbsp: bytes) -> tuple[int, _HevcPps]:
    r = _Bits(rbsp, 16)
    pps_id = r.ue()
    sps_id = r.ue()
    r.u(1)  # dependent_slice_segments_enabled_flag
    output = bool(r.u(1))
    return pps_id, _HevcPps(sps_id, output, r.u(3))


@dataclass(frozen=True)
class PictureCount:
    """What the bytes of a raw stream say about its pictures."""

    pictures: int
    """Primary coded pictures whose first slice is there (its NAL header and first bits readable)."""
    missing: int = 0
    """Pictures the numbering shows missing between them (gaps in the picture order counts, see
    :func:`numbering_gaps`; H.264: and IDR pictures gone, seen from ``frame_num`` starting again without one): damage
    that wiped out whole pictures, start codes and all, leaves these. Pictures lost at the end of an IDR period
    (after the last one there in presentation order) leave no gap: the count stays a lower bound there."""

    @property
    def expected(self) -> int:
        """The pictures the stream held: those there and those missing."""
        return self.pictures + self.missing


MIN_STEPS = 8
"""Fewer picture-order steps than this: too few to tell a regular numbering; no gap is judged."""
REGULAR_SHARE = (3, 4)
"""The share of steps that must be one step for the numbering to count as regular (as ``damage.GAP_REGULAR_SHARE``)."""


def numbering_gaps(periods: Iterable[Sequence[int]]) -> int:
    """Pictures missing from the picture order counts (POC) of ``periods`` — each the POCs of the frames from one
    IDR picture to the next (HEVC: from one IRAP picture that starts the numbering again — IDR, BLA, a CRA first in
    the stream — to the next), in any order (pure).

    Within a period every frame has its own POC, and encoders number frames evenly (x264: 0, 2, 4, …; x265: 0, 1,
    2, …), so a step of
    *k* steps is *k* − 1 frames missing. As for timestamps (``damage.timestamp_gaps``), only a regular numbering is
    judged: at least :data:`MIN_STEPS` steps, at least :data:`REGULAR_SHARE` of them the most common one, and every
    step a whole number of it; anything else is 0 (no false alarm). A period where a POC repeats is left out (its
    IDR picture was lost, so two periods ran together, or the numbering restarted within it)."""
    steps: list[int] = []
    for period in periods:
        pocs = sorted(period)
        if len(set(pocs)) != len(pocs):
            continue
        steps += [b - a for a, b in zip(pocs, pocs[1:])]
    if len(steps) < MIN_STEPS:
        return 0
    step = sorted(steps)[len(steps) // 2]
    share_n, share_d = REGULAR_SHARE
    if step <= 0 or share_d * steps.count(step) < share_n * len(steps) or any(d % step for d in steps):
        return 0
    return sum(d // step - 1 for d in steps)


class PictureCounter:
    """Counts the primary coded pictures of a raw H.264 (``codec="h264"``) or HEVC (``"hevc"``) Annex B stream fed
    to :meth:`feed` in chunks of any size; :meth:`close` ends the stream and returns a :class:`PictureCount`.
    Damaged bytes are skipped: a NAL unit whose header is broken is not counted, a picture whose parameter sets are
    unknown counts as one frame (and gives no POC)."""

    def __init__(self, codec: str) -> None:
        if codec not in CODECS:
            raise ValueError(f"cannot count pictures of {codec!r}: only {', '.join(CODECS)}")
        self.codec = codec
        self.pictures = 0
        self._buf = b""
        self._sps: dict[int, _Sps] = {}
        self._pps: dict[int, int] = {}  # pic_parameter_set_id -> seq_parameter_set_id
        self._field: tuple[int, int] | None = None  # H.264: an unpaired field (bottom, frame_num) just counted
        self._poc: list[int] | None = []  # the period now open (None: a picture without a number was met);
        # before the first IDR/IRAP picture, one that numbers from the stream's start (whose first picture is gone)
        self._periods: list[list[int]] = [self._poc]  # the frames' POCs, one list per IDR (HEVC: IRAP) period
        self._poc_seen: set[int] = set()  # the same, as a set
        self._ref_num: int | None = None  # H.264: frame_num of the last reference picture of the open period
        self._lost_idr = 0  # H.264: IDR pictures gone, seen from frame_num starting again without one
        self._prev_ref = (0, 0)  # H.264 POC type 0: (PicOrderCntMsb, pic_order_cnt_lsb) of the last reference
        self._prev_num = (0, 0)  # H.264 POC type 2: (frame_num, FrameNumOffset) of the previous picture
        self._skip_rasl = True  # HEVC: RASL pictures now belong to a CRA that starts the stream, or to a BLA
        self._sequence_start = True  # HEVC: no IRAP picture yet since the start (or since an end of sequence)
        self._hevc_sps: dict[int, _HevcSps] = {}
        self._hevc_pps: dict[int, _HevcPps] = {}
        self._prev_tid0: int | None = None  # HEVC: POC of the last TemporalId-0 picture (8.3.1's prevTid0Pic)
        self._leading = 0  # HEVC: pictures before the first IRAP picture (the stream's start is gone)

    def feed(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else bytes(data)
        self._buf = buf[self._scan(buf, final=False):]

    def close(self) -> PictureCount:
        self._scan(self._buf, final=True)
        self._buf = b""
        return PictureCount(self.pictures, self._lost_idr + numbering_gaps(self._periods))

    def _scan(self, buf: bytes, *, final: bool) -> int:
        """Take every NAL unit of ``buf`` whose head is complete (all of them when ``final``); returns where the
        bytes still needed begin."""
        pos = 0
        while True:
            j = buf.find(START_CODE, pos)
            if j < 0:
                return len(buf) if final else max(pos, len(buf) - 2)  # a start code may begin in the last 2 bytes
            start = j + 3
            if start >= len(buf) and not final:
                return j
            want = PARAMETER_SET_HEAD if self._is_sps(buf, start) else HEAD
            if start + want > len(buf) and not final:
                # the head runs on into the next chunk, unless the next start code already ends this NAL unit
                nxt = buf.find(START_CODE, start)
                if nxt < 0:
                    return j
                want = nxt - start
            self._nal(buf[start:start + want])
            pos = start

    def _is_sps(self, buf: bytes, start: int) -> bool:
        if start >= len(buf):
            return False
        return buf[start] & 0x1F == _H264_SPS if self.codec == "h264" else buf[start] >> 1 == _HEVC_SPS

    def _nal(self, head: bytes) -> None:
        if not head or head[0] & 0x80:  # empty, or forbidden_zero_bit set: not a NAL unit (damage)
            return
        try:
            if self.codec == "h264":
                self._h264(head)
            else:
                self._hevc(head)
        except (IndexError, ValueError):
            pass  # a parameter set cut short or broken: what it would have said is unknown

    def _h264(self, head: bytes) -> None:
        kind = head[0] & 0x1F
        if kind == _H264_SPS:
            sps_id, sps = _parse_h264_sps(_rbsp(head))
            self._sps[sps_id] = sps
        elif kind == _H264_PPS:
            r = _Bits(_rbsp(head[:HEAD]), 8)
            pps_id = r.ue()
            self._pps[pps_id] = r.ue()
        elif kind in (1, 5):
            if len(head) < 2 or not head[1] & 0x80:
                return  # first_mb_in_slice > 0: a later slice of the picture (or a head cut before it)
            self._h264_picture(head, idr=kind == 5, ref=head[0] >> 5 & 3)

    def _h264_picture(self, head: bytes, *, idr: bool, ref: int) -> None:
        sps = field = frame_num = lsb = None
        try:
            r = _Bits(_rbsp(head), 8)
            r.ue()  # first_mb_in_slice (0)
            r.ue()  # slice_type
            sps = self._sps.get(self._pps.get(r.ue(), -1))
            if sps is not None:
                if sps.separate_colour_plane:
                    r.u(2)
                frame_num = r.u(sps.log2_max_frame_num)
                if not sps.frame_mbs_only and r.u(1):  # field_pic_flag
                    field = (r.u(1), frame_num)
                if idr:
                    r.ue()  # idr_pic_id
                if sps.poc_type == 0:
                    lsb = r.u(sps.log2_max_poc_lsb)
        except (IndexError, ValueError):
            sps = None  # unreadable: it counts as a frame, with no number
        prev, self._field = self._field, None
        if field is not None and prev is not None and prev[0] != field[0] and prev[1] == field[1]:
            return  # the second field of the frame just counted
        self._field = field
        self.pictures += 1
        if sps is None or frame_num is None or not sps.frame_mbs_only:
            self._poc = self._ref_num = None  # a picture without a number (or field pictures): not judged
            return
        if not idr and self._ref_num is not None and frame_num <= self._ref_num and self._restarted(
                sps, frame_num, lsb, ref=ref):
            # frame_num started again at an IDR picture that is gone: a new period, whose IDR picture had POC 0
            self._lost_idr += 1
            self._poc, self._poc_seen = [0], {0}
            self._periods.append(self._poc)
            self._prev_ref, self._prev_num = (0, 0), (0, 0)
        elif idr:
            self._poc, self._poc_seen = [], set()
            self._periods.append(self._poc)
            self._prev_ref, self._prev_num = (0, 0), (0, 0)
        if ref:
            self._ref_num = frame_num
        poc = self._h264_poc(sps, frame_num, lsb, idr=idr, ref=ref)
        if self._poc is not None and poc is not None:
            self._poc.append(poc)
            self._poc_seen.add(poc)
        elif self._poc is not None:
            self._poc = None

    def _restarted(self, sps: _Sps, frame_num: int, lsb: int | None, *, ref: int) -> bool:
        """Whether ``frame_num``, back at or below the last reference picture's, started again (its IDR picture is
        gone) rather than wrapped past references that are gone: it went back by more than half its range, or
        the picture order count it would have in the open period is one a picture there already has."""
        if (frame_num - self._ref_num - 1) % (1 << sps.log2_max_frame_num) >= 1 << (sps.log2_max_frame_num - 1):
            return True
        if self._poc is None:
            return False
        state = self._prev_ref, self._prev_num
        poc = self._h264_poc(sps, frame_num, lsb, idr=False, ref=ref)
        self._prev_ref, self._prev_num = state
        return poc is not None and poc in self._poc_seen

    def _h264_poc(self, sps: _Sps, frame_num: int, lsb: int | None, *, idr: bool, ref: int) -> int | None:
        """The frame's picture order count (8.2.1.1, 8.2.1.3), for POC types 0 and 2; None for type 1."""
        if sps.poc_type == 0 and lsb is not None:
            prev_msb, prev_lsb = self._prev_ref
            msb = _poc_msb(lsb, prev_lsb, prev_msb, 1 << sps.log2_max_poc_lsb)
            if ref:
                self._prev_ref = (msb, lsb)
            return msb + lsb
        if sps.poc_type == 2:
            prev_num, prev_offset = self._prev_num
            offset = 0 if idr else prev_offset + (1 << sps.log2_max_frame_num) if prev_num > frame_num \
                else prev_offset
            self._prev_num = (frame_num, offset)
            return 0 if idr else 2 * (offset + frame_num) - (0 if ref else 1)
        return None

    def _hevc(self, head: bytes) -> None:
        if len(head) < 2:
            return
        kind = head[0] >> 1
        layer = ((head[0] & 1) << 5) | (head[1] >> 3)
        tid = (head[1] & 7) - 1
        if tid < 0 or layer:  # nuh_temporal_id_plus1 0 is forbidden; other layers are not decoded
            return
        if kind == _HEVC_EOS:
            self._skip_rasl = self._sequence_start = True
            self._leading = 0
            return
        if kind == _HEVC_SPS:
            sps_id, sps = _parse_hevc_sps(_rbsp(head))
            self._hevc_sps[sps_id] = sps
            return
        if kind == _HEVC_PPS:
            pps_id, pps = _parse_hevc_pps(_rbsp(head))
            self._hevc_pps[pps_id] = pps
            return
        if kind not in _HEVC_VCL or len(head) < 3 or not head[2] & 0x80:
            return  # not a picture's first slice segment
        restart = False
        if kind >= 16:
            # IRAP: IDR and a CRA in mid-stream decode their RASL pictures; BLA and a CRA that starts the stream do
            # not. A first CRA after pictures that are no IRAP (the stream's start is gone) goes on numbering them,
            # and its RASL pictures, which the decoder drops as it drops those, count (they are lost).
            first_cra = kind == _HEVC_CRA and self._sequence_start and not self._leading
            restart = kind in _HEVC_BLA or kind in _HEVC_IDR or first_cra or (
                self._sequence_start and self._poc is None)  # the pictures before it had no number: start anew
            self._skip_rasl = kind in _HEVC_BLA or first_cra
            self._sequence_start = False
        elif kind in _HEVC_RASL and self._skip_rasl:
            return
        output, lsb, sps = True, None, None
        try:
            r = _Bits(_rbsp(head), 17)
            if kind >= 16:
                r.u(1)  # no_output_of_prior_pics_flag
            pps = self._hevc_pps.get(r.ue())
            sps = self._hevc_sps.get(pps.sps_id) if pps is not None else None
            if sps is not None:
                r.u(pps.extra_slice_header_bits)  # slice_reserved_flag
                r.ue()  # slice_type
                if pps.output_flag_present:
                    output = bool(r.u(1))  # pic_output_flag
                if sps.separate_colour_plane:
                    r.u(2)
                lsb = 0 if kind in _HEVC_IDR else r.u(sps.log2_max_poc_lsb)
        except (IndexError, ValueError):
            sps = None  # unreadable: it counts as a picture, with no number
        if not output:
            return  # pic_output_flag 0: decoded but never shown
        self.pictures += 1
        self._leading += self._sequence_start
        if restart:
            self._poc, self._poc_seen = ([], set()) if sps is not None else (None, set())
            if self._poc is not None:
                self._periods.append(self._poc)
            self._prev_tid0 = None
        if sps is None or lsb is None:
            self._poc = None  # a picture without a number: this period is not judged
            return
        max_lsb = 1 << sps.log2_max_poc_lsb
        if restart or self._prev_tid0 is None:
            msb = 0
        else:
            prev_lsb = self._prev_tid0 % max_lsb
            msb = _poc_msb(lsb, prev_lsb, self._prev_tid0 - prev_lsb, max_lsb)
        poc = msb + lsb
        sub_layer_non_reference = kind < 16 and kind % 2 == 0
        if tid == 0 and kind not in _HEVC_RASL and kind not in _HEVC_RADL and not sub_layer_non_reference:
            self._prev_tid0 = poc
        if self._poc is not None:
            self._poc.append(poc)
            self._poc_seen.add(poc)


def _poc_msb(lsb: int, prev_lsb: int, prev_msb: int, max_lsb: int) -> int:
    """The picture order count's most significant part from its ``lsb`` and the previous reference's (H.264
    8.2.1.1, HEVC 8.3.1: the same wrap rule), ``max_lsb`` being MaxPicOrderCntLsb."""
    if lsb < prev_lsb and prev_lsb - lsb >= max_lsb // 2:
        return prev_msb + max_lsb
    if lsb > prev_lsb and lsb - prev_lsb > max_lsb // 2:
        return prev_msb - max_lsb
    return prev_msb


def count_pictures(chunks: Iterable[bytes], codec: str) -> PictureCount:
    """The pictures of the Annex B stream given as ``chunks`` (see :class:`PictureCounter`)."""
    counter = PictureCounter(codec)
    for chunk in chunks:
        counter.feed(chunk)
    return counter.close()


def count_pictures_in_file(path: str | os.PathLike, codec: str, *, chunk: int = CHUNK) -> PictureCount:
    """The pictures of the raw H.264/HEVC file ``path``, read in ``chunk``-byte pieces (one pass, bounded memory).
    OSError when it cannot be read."""
    def chunks():
        with open(path, "rb") as f:
            while data := f.read(chunk):
                yield data

    return count_pictures(chunks(), codec)
