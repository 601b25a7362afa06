"""Which packets of an MPEG-4 Part 2 stream (Xvid, DivX, FFmpeg's ``mpeg4``) give a picture, from their bytes (pure).

A VOP (video object plane: a picture) starts with ``00 00 01 B6``; its header says whether it is coded at all
(``vop_coded``). An encoder writes a not-coded VOP ("N-VOP") where the picture repeats the one before: Xvid's dropped
frames, and in AVI — one chunk per tick of the stream's rate — the ticks between the frames of a lower rate.
FFmpeg's decoder gives no frame for it, so a reader that counts one frame per packet took it for a lost frame, and a
reader that times an AVI's frames by the packets' decode order (``reader._DecodeOrderClock``) gave its tick to the
next frame, and every frame after it came one tick early.

DivX/Xvid "packed bitstream" AVIs put a P-VOP and the B-VOP shown before it into one packet and an N-VOP placeholder
into the next: there the decoder gives the held B-VOP's frame for the placeholder. :class:`VopCounter` follows that:
a packet whose VOPs are all not coded gives no frame unless an earlier packet held more coded VOPs than frames given.

To read ``vop_coded`` the length of ``vop_time_increment`` is needed, from the VOL header's
``vop_time_increment_resolution`` (ISO/IEC 14496-2 6.2.3; FFmpeg's ``decode_vol_header``); the VOL comes in the
codec's extradata (MP4, Matroska) or in the stream's first packet (AVI). Until one is seen every packet counts as a
picture, as before.
"""

from __future__ import annotations

__all__ = ["VopCounter", "time_increment_bits", "vops"]

_VOP = 0xB6


class _Bits:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.bit = data, pos * 8

    def read(self, n: int) -> int:
        v = 0
        for _ in range(n):
            byte = self.bit >> 3
            if byte >= len(self.data):
                raise EOFError
            v = (v << 1) | ((self.data[byte] >> (7 - (self.bit & 7))) & 1)
            self.bit += 1
        return v


def _start_codes(data: bytes):
    """(code, offset of the byte after it) for each ``00 00 01 xx`` start code in ``data``."""
    i = data.find(b"\x00\x00\x01")
    while 0 <= i and i + 3 < len(data):
        yield data[i + 3], i + 4
        i = data.find(b"\x00\x00\x01", i + 3)


def time_increment_bits(data: bytes) -> int | None:
    """The length in bits of ``vop_time_increment`` from the first VOL header (start code ``00 00 01 20``–``2F``) in
    ``data``, None without one (or a VOL too short or not rectangular-or-grey to read)."""
    for code, at in _start_codes(data):
        if not 0x20 <= code <= 0x2F:
            continue
        b = _Bits(data, at)
        try:
            b.read(1)  # random_accessible_vol
            b.read(8)  # video_object_type_indication
            verid = 1
            if b.read(1):  # is_object_layer_identifier
                verid = b.read(4)
                b.read(3)  # video_object_layer_priority
            if b.read(4) == 15:  # aspect_ratio_info: extended PAR
                b.read(16)
            if b.read(1):  # vol_control_parameters
                b.read(3)  # chroma_format, low_delay
                if b.read(1):  # vbv_parameters
                    b.read(79)
            shape = b.read(2)
            if shape == 3 and verid != 1:
                b.read(4)  # video_object_layer_shape_extension
            b.read(1)  # marker
            resolution = b.read(16)
        except EOFError:
            return None
        if resolution == 0:
            return None
        return max(1, (resolution - 1).bit_length())
    return None


def vops(data: bytes, bits: int) -> list[bool]:
    """Whether each VOP in packet ``data`` is coded (``vop_coded``), with ``vop_time_increment`` ``bits`` long."""
    out = []
    for code, at in _start_codes(data):
        if code != _VOP:
            continue
        b = _Bits(data, at)
        try:
            b.read(2)  # vop_coding_type
            while b.read(1):  # modulo_time_base
                pass
            b.read(1)  # marker
            b.read(bits)  # vop_time_increment
            b.read(1)  # marker
            out.append(bool(b.read(1)))
        except EOFError:
            out.append(True)  # cut short: a picture, as far as the count goes
    return out


class VopCounter:
    """Tells, packet by packet in decode order, whether a packet of an MPEG-4 Part 2 stream gives a frame.

    ``extradata``: the codec's (may hold the VOL). :meth:`gives_frame` is False only for a packet whose VOPs are all
    not coded, with no coded VOP of an earlier packet still held (packed bitstream); True for every other packet,
    and for all of them until a VOL header has been seen."""

    def __init__(self, extradata: bytes | None = None) -> None:
        self.bits = time_increment_bits(extradata) if extradata else None
        self.held = 0
        """Coded VOPs of earlier packets not yet given as frames (a packed P+B packet holds its B)."""

    def gives_frame(self, data: bytes) -> bool:
        if self.bits is None:
            self.bits = time_increment_bits(data)
            if self.bits is None:
                return True
        found = vops(data, self.bits)
        if not found:
            return True  # no VOP start code: not for this count to judge
        coded = sum(found)
        if coded:
            self.held += coded - 1
            return True
        if self.held:
            self.held -= 1  # the placeholder after a packed packet: the decoder gives the held VOP
            return True
        return False
