"""What a still image file says besides its pixels, read from and written into its bytes (no imaging library).

:func:`read_meta` parses PNG, JPEG, WebP, TIFF, GIF and BMP headers for what a photo or artwork user expects to
survive an upscale: the ICC colour profile (PNG ``iCCP``, JPEG ``APP2 ICC_PROFILE``, WebP ``ICCP``, TIFF tag
34675), the EXIF block (JPEG ``APP1 Exif``, PNG ``eXIf``, WebP ``EXIF``) and its orientation (TIFF tag 274 too),
the resolution in dots per inch (JFIF density, ``pHYs``, TIFF resolution tags, BMP's header), XMP and text (JPEG
``APP1``/``APP13``, PNG ``tEXt``/``zTXt``/``iTXt``), the number of frames (APNG ``acTL``, animated WebP ``ANMF``,
GIF images, TIFF pages) and whether the file ends early (a JPEG without its end-of-image marker after the scan, a
PNG without ``IEND``, a GIF without its trailer, a WebP shorter than its RIFF size, a TIFF whose directory or
first page's strips or tiles lie past its end, a BMP shorter than its pixel data) — FFmpeg's JPEG decoder fills
a truncated picture with grey and says nothing. PyAV is not asked: reading a frame's ICC side data from FFmpeg's
PNG decoder crashes PyAV 19 (the side data carries a metadata dictionary, freed twice).

:func:`embed` writes the profile and the EXIF block (orientation reset to 1, since ``read_image`` applies it to
the pixels; the stale thumbnail dropped; the pixel dimensions updated) and the DPI into the bytes FFmpeg's encoders
wrote: PNG (``iCCP``, ``eXIf`` and, from a PNG, its ``sRGB``/``gAMA``/``cHRM``/``cICP`` chunks), JPEG (``APP1``,
``APP2`` and the JFIF density), WebP (``VP8X`` with ``ICCP``/``EXIF``; no DPI field), TIFF (the profile as tag
34675; the DPI is the encoder's ``dpi`` option), BMP (the DPI; and a header that declares a 32-bit picture's
alpha). :func:`not_kept` says what an output loses.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import zlib

__all__ = ["ImageMeta", "apply_orientation", "embed", "icc_fits", "not_kept", "read_meta"]

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR = (b"sRGB", b"gAMA", b"cHRM", b"cICP")  # copied PNG → PNG, before PLTE/IDAT
_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")
_XMP_MARK = b"http://ns.adobe.com/xap/1.0/\0"
_ICC_MARK = b"ICC_PROFILE\0"
_EXIF_MARK = b"Exif\0\0"


@dataclasses.dataclass(frozen=True)
class ImageMeta:
    """``icc``: the ICC profile's bytes; ``exif``: the EXIF block (a TIFF structure, ``II*\\0`` or ``MM\\0*``);
    ``orientation``: EXIF's 1–8 (1: as stored); ``dpi``: (x, y) dots per inch; ``frames``: pictures in the file
    (animation frames, TIFF pages); ``truncated``: a line saying how the file ends early, or None;
    ``kind``: the format read ('png', 'jpeg', 'webp', 'tiff', 'gif', 'bmp'; None for another);
    ``png_colour``: a PNG's colour chunks other than ``iCCP``, whole (length, type, data, CRC); ``png_text``: its
    text chunks (``tEXt``, ``zTXt``, ``iTXt``: comments, XMP), whole; ``jpeg_app``: a JPEG's XMP (``APP1``) and
    IPTC (``APP13``) segments, whole. These three are copied into an output of the same format only.
    ``lossless``: a WebP whose picture is lossless (``VP8L``), which ``write_image`` writes lossless again into a
    WebP (a lossy one, and other formats, at quality 95)."""

    icc: bytes | None = None
    exif: bytes | None = None
    orientation: int = 1
    dpi: tuple[float, float] | None = None
    frames: int = 1
    truncated: str | None = None
    kind: str | None = None
    png_colour: tuple[bytes, ...] = ()
    png_text: tuple[bytes, ...] = ()
    jpeg_app: tuple[bytes, ...] = ()
    lossless: bool = False


def read_meta(data: bytes) -> ImageMeta:
    """The :class:`ImageMeta` of a still image file's bytes (of a BMP: its DPI and truncation only); an empty one for
    a format it does not parse or bytes it cannot follow (the decoder judges those)."""
    try:
        if data.startswith(_PNG_SIG):
            return _png(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data[:4] in (b"II*\0", b"MM\0*"):
            return _tiff(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return _gif(data)
        if data[:2] == b"BM" and len(data) >= 46 and struct.unpack("<I", data[14:18])[0] >= 40:
            x, y = struct.unpack("<ii", data[38:46])  # BITMAPINFOHEADER's pixels per metre
            return ImageMeta(dpi=(x * 0.0254, y * 0.0254) if x > 0 and y > 0 else None, kind="bmp",
                             truncated=_bmp_truncated(data))
    except (struct.error, IndexError, ValueError, zlib.error):
        pass
    return ImageMeta()


# --- reading --------------------------------------------------------------------------------------------------

class _Chunk:
    """One PNG chunk of ``data``: its type, and its body and whole bytes sliced only when asked (IDAT is most of
    the file)."""

    __slots__ = ("data", "kind", "pos", "n")

    def __init__(self, data: bytes, kind: bytes, pos: int, n: int):
        self.data, self.kind, self.pos, self.n = data, kind, pos, n

    @property
    def body(self) -> bytes:
        return self.data[self.pos + 8:self.pos + 8 + self.n]

    @property
    def whole(self) -> bytes:
        return self.data[self.pos:self.pos + 12 + self.n]


def _png_chunks(data: bytes):
    """Each PNG chunk (:class:`_Chunk`); stops at IEND or where the bytes end."""
    pos = len(_PNG_SIG)
    while pos + 8 <= len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        end = pos + 12 + n
        if end > len(data):
            return
        yield _Chunk(data, kind, pos, n)
        if kind == b"IEND":
            return
        pos = end


def _png(data: bytes) -> ImageMeta:
    icc = exif = dpi = None
    frames, colour, text, ended = 1, [], [], False
    for chunk in _png_chunks(data):
        kind = chunk.kind
        body = chunk.body if kind in (b"iCCP", b"eXIf", b"pHYs", b"acTL") else b""
        if kind == b"iCCP":
            try:  # a damaged profile is left out; the rest of what the file says still counts
                icc = zlib.decompress(body[body.index(b"\0") + 2:])
            except (ValueError, zlib.error):
                icc = None
        elif kind == b"eXIf":
            exif = bytes(body)
        elif kind == b"pHYs" and body[8] == 1:  # pixels per metre
            x, y = struct.unpack(">II", body[:8])
            dpi = (x * 0.0254, y * 0.0254)
        elif kind == b"acTL":
            frames = struct.unpack(">I", body[:4])[0]
        elif kind in _PNG_COLOUR:
            colour.append(chunk.whole)
        elif kind in _PNG_TEXT:
            text.append(chunk.whole)
        elif kind == b"IEND":
            ended = True
    return ImageMeta(icc=icc, exif=exif, orientation=_exif_orientation(exif), dpi=dpi, frames=max(frames, 1),
                     truncated=None if ended else "the PNG ends before its IEND chunk (truncated?)", kind="png",
                     png_colour=tuple(colour), png_text=tuple(text))


def _jpeg_segments(data: bytes):
    """(marker, payload, start offset) of each JPEG marker segment up to and including the first SOS."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("not at a marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length
            pos += 2
            continue
        (n,) = struct.unpack(">H", data[pos + 2:pos + 4])
        yield marker, data[pos + 4:pos + 2 + n], pos
        if marker == 0xDA:
            return
        pos += 2 + n


def _jpeg(data: bytes) -> ImageMeta:
    icc_parts: dict[int, bytes] = {}
    exif = dpi = None
    app = []
    sos = None
    for marker, body, pos in _jpeg_segments(data):
        if marker == 0xE0 and body[:5] == b"JFIF\0" and len(body) >= 12:
            unit, x, y = body[7], *struct.unpack(">HH", body[8:12])
            if unit in (1, 2) and x and y:
                dpi = (float(x), float(y)) if unit == 1 else (x * 2.54, y * 2.54)
        elif marker == 0xE1 and body[:6] == _EXIF_MARK and exif is None:
            exif = bytes(body[6:])
        elif marker == 0xE1 and body.startswith(_XMP_MARK) or marker == 0xED:
            app.append(bytes(data[pos:pos + 4 + len(body)]))
        elif marker == 0xE2 and body[:12] == _ICC_MARK and len(body) > 14:
            icc_parts[body[12]] = bytes(body[14:])
        elif marker == 0xDA:
            sos = pos
    if dpi is None:
        dpi = _exif_dpi(exif)
    # after the first scan, FF D9 can only be the end-of-image marker (entropy-coded 0xFF is followed by 0x00)
    truncated = None if sos is not None and data.find(b"\xff\xd9", sos) >= 0 else \
        "the JPEG ends before its end-of-image marker (truncated?)"
    icc = b"".join(icc_parts[k] for k in sorted(icc_parts)) if icc_parts else None
    return ImageMeta(icc=icc, exif=exif, orientation=_exif_orientation(exif), dpi=dpi,
                     truncated=truncated, jpeg_app=tuple(app), kind="jpeg")


def _webp(data: bytes) -> ImageMeta:
    (size,) = struct.unpack("<I", data[4:8])
    icc = exif = None
    frames, lossless = 0, False
    pos = 12
    while pos + 8 <= len(data):
        kind, (n,) = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])
        body = data[pos + 8:pos + 8 + n] if kind in (b"ICCP", b"EXIF") else b""
        if kind == b"ICCP":
            icc = bytes(body)
        elif kind == b"EXIF":
            exif = bytes(body[6:]) if body[:6] == _EXIF_MARK else bytes(body)
        elif kind == b"ANMF":
            frames += 1
        elif kind == b"VP8L":  # a still's picture (an animation's frames are inside ANMF chunks)
            lossless = True
        pos += 8 + n + (n & 1)
    truncated = "the WebP file is shorter than its RIFF header says (truncated?)" if len(data) < size + 8 else None
    return ImageMeta(icc=icc, exif=exif, orientation=_exif_orientation(exif), dpi=_exif_dpi(exif),
                     frames=max(frames, 1), truncated=truncated, kind="webp", lossless=lossless)


def _tiff(data: bytes) -> ImageMeta:
    t = _Tiff(data)
    try:
        tags = t.ifd(t.first)
    except (struct.error, IndexError):  # its directory (often written last) is past the end
        return ImageMeta(kind="tiff", truncated="the TIFF ends before its directory (truncated?)")
    if _tiff_data_end(t, tags) > len(data):
        return ImageMeta(kind="tiff", truncated="the TIFF ends before its picture data does (truncated?)")
    icc = t.raw(tags[34675]) if 34675 in tags else None
    orientation = t.value(tags[274]) if 274 in tags else 1
    pages, offset, seen = 0, t.first, set()
    while offset and offset not in seen and pages < 10_000:
        seen.add(offset)
        sub = t.ifd(offset)
        if not (254 in sub and t.value(sub[254]) & 1):  # a reduced-resolution copy is not a page
            pages += 1
        offset = t.next_ifd(offset)
    return ImageMeta(icc=icc, orientation=orientation if 1 <= orientation <= 8 else 1, dpi=_tiff_dpi(t, tags),
                     frames=max(pages, 1), kind="tiff")


def _tiff_data_end(t: _Tiff, tags) -> int:
    """The end of the first page's picture data: its last strip's or tile's offset plus byte count (0 where the
    directory does not say)."""
    end = 0
    for offsets, counts in ((273, 279), (324, 325)):
        if offsets in tags and counts in tags:
            end = max([end] + [a + b for a, b in zip(t.values(tags[offsets]), t.values(tags[counts]))])
    return end


def _bmp_truncated(data: bytes) -> str | None:
    """Whether a BMP (BITMAPINFOHEADER or later) is shorter than its pixel data: rows of ``width × bits`` rounded
    up to 4 bytes, ``|height|`` of them, from the pixel offset (a compressed one: the image size it declares)."""
    offset, (w, h), (bpp, compression, size) = (struct.unpack("<I", data[10:14])[0], struct.unpack("<ii", data[18:26]),
                                                struct.unpack("<HII", data[28:38]))
    need = (offset + ((w * bpp + 31) // 32) * 4 * abs(h) if compression in (0, 3, 6) else offset + size)
    return "the BMP ends before its pixel data does (truncated?)" if len(data) < need else None


def _gif(data: bytes) -> ImageMeta:
    """Frames (image descriptors) and whether the trailer is there, walking the blocks."""

    def skip_sub_blocks(pos: int) -> int:
        while pos < len(data) and data[pos]:
            pos += 1 + data[pos]
        return pos + 1

    pos, frames = 13, 0
    if data[10] & 0x80:  # global colour table
        pos += 3 << ((data[10] & 7) + 1)
    while True:
        if pos >= len(data):  # also where a block's length runs past the end (skip_sub_blocks' IndexError)
            return ImageMeta(frames=max(frames, 1), truncated="the GIF ends before its trailer (truncated?)",
                             kind="gif")
        block = data[pos]
        if block == 0x3B:
            return ImageMeta(frames=max(frames, 1), kind="gif")
        if block == 0x21:  # extension: label, sub-blocks
            pos = skip_sub_blocks(pos + 2)
        elif block == 0x2C:  # image: descriptor, local colour table, LZW code size, sub-blocks
            frames += 1
            flags = data[pos + 9]
            pos += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
            pos = skip_sub_blocks(pos + 1)
        else:
            raise ValueError("not a GIF block")


class _Tiff:
    """Just enough of a TIFF structure (the TIFF file itself, or an EXIF block) to read and patch tags."""

    _SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}

    def __init__(self, data: bytes | bytearray):
        self.data = data
        self.e = "<" if data[:2] == b"II" else ">"
        if data[:2] not in (b"II", b"MM"):
            raise ValueError("not a TIFF structure")
        self.first = self.u32(4)

    def u16(self, pos: int) -> int:
        return struct.unpack(self.e + "H", self.data[pos:pos + 2])[0]

    def u32(self, pos: int) -> int:
        return struct.unpack(self.e + "I", self.data[pos:pos + 4])[0]

    def ifd(self, offset: int) -> dict[int, tuple[int, int, int, int]]:
        """tag → (type, count, offset of the value or of its inline bytes, offset of the entry)."""
        out = {}
        for i in range(self.u16(offset)):
            entry = offset + 2 + 12 * i
            tag, kind, count = self.u16(entry), self.u16(entry + 2), self.u32(entry + 4)
            size = self._SIZES.get(kind, 1) * count
            out[tag] = (kind, count, entry + 8 if size <= 4 else self.u32(entry + 8), entry)
        return out

    def next_ifd(self, offset: int) -> int:
        return self.u32(offset + 2 + 12 * self.u16(offset))

    def value(self, entry: tuple[int, int, int, int]) -> int:
        kind, _count, pos, _ = entry
        return self.u16(pos) if kind == 3 else self.u32(pos) if kind == 4 else self.data[pos]

    def values(self, entry: tuple[int, int, int, int]) -> list[int]:
        """Every value of a SHORT or LONG tag (a strip offsets array)."""
        kind, count, pos, _ = entry
        size = 2 if kind == 3 else 4
        if pos + size * count > len(self.data):
            raise IndexError("the tag's values are past the end")
        return [self.u16(pos + size * i) if kind == 3 else self.u32(pos + size * i) for i in range(count)]

    def rational(self, entry: tuple[int, int, int, int]) -> float:
        num, den = self.u32(entry[2]), self.u32(entry[2] + 4)
        return num / den if den else 0.0

    def raw(self, entry: tuple[int, int, int, int]) -> bytes:
        kind, count, pos, _ = entry
        return bytes(self.data[pos:pos + self._SIZES.get(kind, 1) * count])


def _tiff_dpi(t: _Tiff, tags) -> tuple[float, float] | None:
    if 282 not in tags or 283 not in tags:
        return None
    unit = t.value(tags[296]) if 296 in tags else 2  # 2 inch (the default), 3 centimetre, 1 none
    x, y = t.rational(tags[282]), t.rational(tags[283])
    if unit not in (2, 3) or x <= 0 or y <= 0:
        return None
    return (x, y) if unit == 2 else (x * 2.54, y * 2.54)


def _exif_orientation(exif: bytes | None) -> int:
    """EXIF's orientation, 1–8; 1 without an EXIF block or where it cannot be followed."""
    if not exif:
        return 1
    try:
        t = _Tiff(exif)
        tags = t.ifd(t.first)
        o = t.value(tags[274]) if 274 in tags else 1
    except (struct.error, IndexError, ValueError):
        return 1
    return o if 1 <= o <= 8 else 1


def _exif_dpi(exif: bytes | None) -> tuple[float, float] | None:
    """EXIF's DPI; None without an EXIF block, without one in it, or where it cannot be followed."""
    if not exif:
        return None
    try:
        t = _Tiff(exif)
        return _tiff_dpi(t, t.ifd(t.first))
    except (struct.error, IndexError, ValueError, ZeroDivisionError):
        return None


def apply_orientation(arr, orientation: int):
    """``arr`` (H×W or H×W×C) turned upright as EXIF ``orientation`` says a viewer shows it (PIL's
    ``ImageOps.exif_transpose``): 2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise,
    7 transverse, 8 rotate 90° counter-clockwise."""
    import numpy as np

    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = np.swapaxes(arr, 0, 1)
    elif orientation == 6:
        arr = np.swapaxes(arr, 0, 1)[:, ::-1]
    elif orientation == 7:
        arr = np.swapaxes(arr, 0, 1)[::-1, ::-1]
    elif orientation == 8:
        arr = np.swapaxes(arr, 0, 1)[::-1]
    return np.ascontiguousarray(arr)


# --- writing --------------------------------------------------------------------------------------------------

def icc_fits(icc: bytes, grey: bool) -> bool:
    """Whether the ICC profile ``icc`` describes the samples written: its data colour space (header bytes 16–19)
    'RGB ' for RGB, 'GRAY' for grey. A CMYK JPEG's profile does not (FFmpeg's decoder gave RGB), nor a grey
    picture's profile on the R=G=B a JPEG gets: a viewer would misread the colours, or refuse the file."""
    return icc[16:20] == (b"GRAY" if grey else b"RGB ")


def not_kept(ext: str, meta: ImageMeta, *, grey: bool = False) -> list[str]:
    """What of ``meta`` an output with extension ``ext`` (its samples grey when ``grey``) does not keep, for a
    notice: 'the ICC colour profile', 'the EXIF data', 'the XMP/text metadata', a PNG's gAMA/cHRM/cICP, 'the DPI'."""
    holds = ext in (".png", ".jpg", ".jpeg", ".webp")
    lost = []
    if meta.icc and not holds and ext not in (".tif", ".tiff"):
        lost.append("the ICC colour profile")
    elif meta.icc and not icc_fits(meta.icc, grey):
        space = meta.icc[16:20].decode("ascii", "replace").strip() or "unknown"
        lost.append(f"the {space} ICC colour profile (the samples are {'grey' if grey else 'RGB'})")
    if meta.exif and not holds:
        lost.append("the EXIF data")
    if meta.png_text and ext != ".png" or meta.jpeg_app and ext not in (".jpg", ".jpeg"):
        lost.append("the XMP/text metadata")
    if ext != ".png" and not meta.icc and any(c[4:8] != b"sRGB" for c in meta.png_colour):  # sRGB: the default
        lost.append("the PNG colour chunks (" + "/".join(c[4:8].decode() for c in meta.png_colour) + ")")
    if meta.dpi and ext == ".webp" and not meta.exif:
        lost.append("the DPI")
    return lost


def _exif_for(exif: bytes, width: int, height: int) -> bytes | None:
    """``exif`` with orientation 1 (the pixels are upright now), its pixel dimensions ``width``×``height`` and
    no thumbnail (IFD1, an old picture in the old orientation); None where it cannot be followed."""
    try:
        t = _Tiff(bytearray(exif))
        tags = t.ifd(t.first)

        def put(entry, v):
            kind, _count, pos, _ = entry
            if kind == 3 and v < 65536:
                t.data[pos:pos + 2] = struct.pack(t.e + "H", v)
            elif kind == 4:
                t.data[pos:pos + 4] = struct.pack(t.e + "I", v)

        if 274 in tags:
            put(tags[274], 1)
        end = t.first + 2 + 12 * t.u16(t.first)
        t.data[end:end + 4] = b"\0\0\0\0"  # no IFD1
        if 0x8769 in tags:
            sub = t.ifd(t.value(tags[0x8769]))
            for tag, v in ((0xA002, width), (0xA003, height)):
                if tag in sub:
                    put(sub[tag], v)
        return bytes(t.data)
    except (struct.error, IndexError, ValueError):
        return None  # not kept: it might say to turn the upright pixels again


def embed(data: bytes, ext: str, meta: ImageMeta, size: tuple[int, int], *, grey: bool = False) -> bytes:
    """The encoded file ``data`` (extension ``ext``) with ``meta``'s profile, EXIF block and DPI added (module
    docstring); ``size``: the picture's (width, height), for the EXIF pixel dimensions; ``grey``: the samples are
    grey (a profile that does not fit them is left out: :func:`icc_fits`)."""
    exif = _exif_for(meta.exif, *size) if meta.exif else None
    if meta.icc and not icc_fits(meta.icc, grey):
        meta = dataclasses.replace(meta, icc=None)
    if ext == ".png":
        return _embed_png(data, meta, exif)
    if ext in (".jpg", ".jpeg"):
        return _embed_jpeg(data, meta, exif)
    if ext == ".webp":
        return _embed_webp(data, meta, exif)
    if ext in (".tif", ".tiff") and meta.icc:
        return _embed_tiff(data, meta.icc)
    if ext == ".bmp" and data[:2] == b"BM":
        return _embed_bmp(data, meta)
    return data


def _embed_bmp(data: bytes, meta: ImageMeta) -> bytes:
    """The DPI into BITMAPINFOHEADER's pixels per metre; a 32-bit picture (FFmpeg's BGRA) gets a BITMAPV4HEADER
    with an alpha mask: in a plain 40-byte header the fourth byte is 'reserved', and PIL, Windows and most
    editors read the picture as opaque."""
    out = bytearray(data)
    if meta.dpi:
        ppm = [min(2**31 - 1, max(1, round(d / 0.0254))) for d in meta.dpi]
        out[38:46] = struct.pack("<ii", *ppm)
    header, (bpp, compression) = struct.unpack("<I", out[14:18])[0], struct.unpack("<HI", out[28:34])
    if header == 40 and bpp == 32 and compression == 0:
        offset = struct.unpack("<I", out[10:14])[0]
        v4 = bytearray(out[14:54])
        v4[0:4] = struct.pack("<I", 108)
        v4[16:20] = struct.pack("<I", 3)  # BI_BITFIELDS
        v4 += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)  # R, G, B, A masks (BGRA)
        v4 += b"BGRs" + bytes(36) + bytes(12)  # LCS_sRGB ('sRGB', little-endian), endpoints and gamma unused
        pixels = out[offset:]
        head = bytearray(out[:14])
        head[10:14] = struct.pack("<I", 14 + len(v4))
        head[2:6] = struct.pack("<I", 14 + len(v4) + len(pixels))
        return bytes(head + v4 + pixels)
    return bytes(out)


def _embed_tiff(data: bytes, icc: bytes) -> bytes:
    """``data`` (a TIFF) with ``icc`` as its first IFD's tag 34675: the profile and a copy of that IFD with the
    entry added are appended, and the header points at the copy (the values the old entries point at stay where
    they are; the old IFD is left unused)."""
    t = _Tiff(data)
    n = t.u16(t.first)
    entries = {t.u16(t.first + 2 + 12 * i): data[t.first + 2 + 12 * i:t.first + 14 + 12 * i] for i in range(n)}
    out = bytearray(data)
    if len(out) & 1:
        out += b"\0"
    icc_at = len(out)
    out += icc
    if len(out) & 1:
        out += b"\0"
    entries[34675] = struct.pack(t.e + "HHII", 34675, 7, len(icc), icc_at)
    ifd_at = len(out)
    out += struct.pack(t.e + "H", len(entries)) + b"".join(entries[k] for k in sorted(entries))
    out += struct.pack(t.e + "I", t.next_ifd(t.first))
    out[4:8] = struct.pack(t.e + "I", ifd_at)
    return bytes(out)


def _xmp_upright(data: bytes) -> bytes:
    """XMP's ``tiff:Orientation`` set to 1 as EXIF's is (the pixels are upright), in place: the same length."""
    return re.sub(rb"(tiff:Orientation(?:\s*=\s*[\"']|>))[2-8]", rb"\g<1>1", data)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _embed_png(data: bytes, meta: ImageMeta, exif: bytes | None) -> bytes:
    extra = []
    if meta.icc:
        extra.append(_png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(meta.icc, 9)))
    else:  # sRGB/gAMA/cHRM/cICP must not sit beside an iCCP that means something else: copied without one only
        extra += list(meta.png_colour)
    if exif:
        extra.append(_png_chunk(b"eXIf", exif))
    extra += [_png_chunk(c[4:8], _xmp_upright(c[8:-4])) for c in meta.png_text]
    if meta.dpi:
        ppm = [max(1, round(d / 0.0254)) for d in meta.dpi]
        extra.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    else:  # FFmpeg writes the stream's unset aspect ratio, 0:1, which means nothing: square pixels, 1:1
        extra.append(_png_chunk(b"pHYs", struct.pack(">IIB", 1, 1, 0)))
    drop = {b"pHYs"} | ({b"iCCP", *_PNG_COLOUR} if meta.icc or meta.png_colour else set())
    out = [data[:len(_PNG_SIG)]]
    for chunk in _png_chunks(data):
        if chunk.kind in drop:
            continue
        out.append(chunk.whole)
        if chunk.kind == b"IHDR":
            out += extra
    return b"".join(out)


def _embed_jpeg(data: bytes, meta: ImageMeta, exif: bytes | None) -> bytes:
    head, body = bytearray(data[:2]), bytearray(data[2:])
    if meta.dpi:  # JFIF's density: units 1 (dots per inch), x, y; FFmpeg writes JFIF only with an aspect ratio
        x, y = (min(65535, max(1, round(d))) for d in meta.dpi)
        if body[:2] == b"\xff\xe0" and body[4:9] == b"JFIF\0":
            body[11:16] = struct.pack(">BHH", 1, x, y)
        else:
            body[:0] = b"\xff\xe0\x00\x10JFIF\0\x01\x02" + struct.pack(">BHH", 1, x, y) + b"\0\0"
    segments = []
    if exif and len(exif) + 8 <= 65535:
        segments.append(b"\xff\xe1" + struct.pack(">H", len(exif) + 8) + _EXIF_MARK + exif)
    if meta.icc:
        step = 65519  # 65535 − 2 (length) − 12 (mark) − 2 (sequence, count)
        parts = [meta.icc[i:i + step] for i in range(0, len(meta.icc), step)]
        if len(parts) <= 255:
            for i, part in enumerate(parts, 1):
                segments.append(b"\xff\xe2" + struct.pack(">H", len(part) + 16) + _ICC_MARK
                                + bytes([i, len(parts)]) + part)
    segments += [_xmp_upright(a) for a in meta.jpeg_app]
    if not segments:
        return bytes(head + body)
    # after JFIF's APP0 (which must come first), before everything else
    at = 0
    if body[:2] == b"\xff\xe0":
        at = 2 + struct.unpack(">H", body[2:4])[0]
    return bytes(head + body[:at] + b"".join(segments) + body[at:])


def _embed_webp(data: bytes, meta: ImageMeta, exif: bytes | None) -> bytes:
    if not meta.icc and not exif:
        return data
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        (n,) = struct.unpack("<I", data[pos + 4:pos + 8])
        chunks.append((data[pos:pos + 4], data[pos + 8:pos + 8 + n]))
        pos += 8 + n + (n & 1)
    kinds = [k for k, _ in chunks]
    if b"VP8X" in kinds:
        vp8x = bytearray(chunks[kinds.index(b"VP8X")][1])
        rest = [(k, b) for k, b in chunks if k not in (b"VP8X", b"ICCP", b"EXIF")]
    else:  # a simple file (one VP8/VP8L chunk): VP8X needs the canvas size, from the bitstream
        kind, bits = chunks[0]
        if kind == b"VP8 ":
            w, h = (v & 0x3FFF for v in struct.unpack("<HH", bits[6:10]))
        elif kind == b"VP8L":
            v = struct.unpack("<I", bits[1:5])[0]
            w, h, alpha = (v & 0x3FFF) + 1, ((v >> 14) & 0x3FFF) + 1, v >> 28 & 1
        else:
            return data
        vp8x = bytearray(10)
        if kind == b"VP8L" and alpha:
            vp8x[0] |= 0x10
        vp8x[4:10] = struct.pack("<I", w - 1)[:3] + struct.pack("<I", h - 1)[:3]
        rest = chunks
    vp8x[0] |= (0x20 if meta.icc else 0) | (0x08 if exif else 0)
    order = [(b"VP8X", bytes(vp8x))] + ([(b"ICCP", meta.icc)] if meta.icc else []) + rest \
        + ([(b"EXIF", exif)] if exif else [])
    body = b"".join(k + struct.pack("<I", len(b)) + b + (b"\0" if len(b) & 1 else b"") for k, b in order)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body
