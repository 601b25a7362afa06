"""Still images in and out with PyAV (FFmpeg's image codecs), so there is no second imaging library.

``read_image`` gives packed RGB (and alpha) samples — or, with ``keep_grey``, one grey channel for a grey
image — and ``write_image`` encodes them into the format the extension names, through a temporary file beside
the target that is renamed when complete. 16-bit input stays 16-bit where the output format allows it (PNG,
TIFF); others get it rounded to 8 bits. Grey samples stay grey where the format has a grey colour type
(:func:`holds_grey`: PNG, TIFF, and BMP without alpha); elsewhere they are written as R=G=B. The lossy formats
are written near their best: JPEG 4:4:4 at qmax 2, WebP (4:2:0, as lossy WebP always is) at quality 95 — but a
lossless WebP's upscale is written lossless (``ImageMeta.lossless``).
What the file says besides its pixels (``video.image_meta``): an EXIF orientation is applied to the pixels as a
viewer would (the output is upright, its EXIF says 1); the ICC profile, the EXIF block and the DPI are written
into the output where its format holds them (PNG, JPEG, WebP without the DPI, TIFF without the EXIF, BMP the DPI
only). A truncated file is an InputError, not a picture FFmpeg filled with grey; but ``read_image(cut=...)``
(a still's upscale) reads a file cut short where FFmpeg's decoder gives a picture of it (:func:`readable_bytes`, made
once), and :func:`damage` says what it lost, never hidden: a PNG, a baseline JPEG or a GIF as far as its data goes
(only its end marker lost, or the rows from R on); a progressive JPEG cut before its last scan is whole but at
reduced detail (blurred) throughout, and said so. A WebP, TIFF or BMP cut short (FFmpeg's decoders give no picture of
one), an interlaced PNG or GIF cut before its last pass, or a file of which no row decodes, stays an InputError: one
line naming the file and how it is cut.
The upscaling itself is ``esrgan_video.stills``' (the core's frame transform).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from ..errors import InputError, OutputError
from ..files import cannot_write, check_regular_input, link_target
from ..frames.colorspace import Range
from ..frames.pixel_formats import PlaneLayout, packed_rgb
from .image_meta import ImageMeta, _jpeg_segments, apply_orientation, embed, read_meta
from .partials import partial_path, remove_stale_partials
from .planes import frame_from_planes
from .probe import file_key

__all__ = ["IMAGE_EXTENSIONS", "ImageMeta", "check_extension", "damage", "eight_bit_notice", "holds_deep", "holds_grey",
           "image_meta",
           "is_image_file", "read_image", "readable_bytes", "round_to_8bit", "write_image"]

# output extension → (codec, pix_fmt for 8-bit RGB, for 8-bit RGBA, for 16-bit RGB, for 16-bit RGBA)
_ENCODERS = {
    ".png": ("png", "rgb24", "rgba", "rgb48be", "rgba64be"),
    ".tif": ("tiff", "rgb24", "rgba", "rgb48le", "rgba64le"),
    ".tiff": ("tiff", "rgb24", "rgba", "rgb48le", "rgba64le"),
    ".jpg": ("mjpeg", "yuvj444p", None, None, None),
    ".jpeg": ("mjpeg", "yuvj444p", None, None, None),
    ".webp": ("libwebp", "yuv420p", "yuva420p", None, None),
    ".bmp": ("bmp", "bgr24", "bgra", None, None),  # FFmpeg's BMP encoder takes bgr24, not rgb24
}

# output extension → (pix_fmt for 8-bit grey, for 8-bit grey + alpha, for 16-bit grey, for 16-bit grey + alpha);
# None where the format has no such colour type. FFmpeg's JPEG encoder (mjpeg) takes no grey format and WebP has
# none; BMP keeps 8-bit grey as an 8-bit image with a grey palette (what other tools read as grey), not with alpha.
_GREY_ENCODERS = {
    ".png": ("gray", "ya8", "gray16be", "ya16be"),
    ".tif": ("gray", "ya8", "gray16le", "ya16le"),
    ".tiff": ("gray", "ya8", "gray16le", "ya16le"),
    ".bmp": ("gray", None, None, None),
}

_STILL_BRANDS = ("avif", "heic", "heix", "mif1")  # ISO BMFF major brands of HEIF still images

_LINEAR = {"exr": "OpenEXR", "hdr": "Radiance HDR"}  # decoders of scene-linear float pictures: refused

IMAGE_EXTENSIONS: tuple[str, ...] = tuple(sorted(_ENCODERS))
"""The output extensions :func:`write_image` can encode (lower case, with the dot)."""


_last_cut: tuple[tuple[str, int, int], bytes] | None = None
"""(:func:`~esrgan_video.video.probe.file_key`, bytes) of the last truncated file :func:`image_meta` read, which
:func:`readable_bytes` then takes instead of reading the file again (one still's upscale asks both, in turn)."""


def image_meta(path: str | os.PathLike) -> ImageMeta:
    """The ICC profile, EXIF block and orientation, DPI, frame count and truncation of the image file at ``path``
    (``video.image_meta.read_meta``). InputError naming the file when it is missing, a named pipe or a device
    (never opened: a pipe would wait for a writer), or empty. A truncated file's
    bytes are kept for :func:`readable_bytes` (the last one only; a file changed since is read again)."""
    global _last_cut
    path = Path(path)
    if path.is_dir():  # the video reader's wording: a folder is there, so not "no such file"
        raise InputError(f"{path}: is a directory, not an image file")
    check_regular_input(path)  # before any open: a named pipe's would wait for a writer
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    try:
        key = file_key(path)
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or e})") from e
    meta = read_meta(data)
    if meta.truncated and len(data) == key[1]:
        _last_cut = key, data
    return meta


def read_image(path: str | os.PathLike, *, keep_grey: bool = False, meta: ImageMeta | None = None,
               cut: bytes | None = None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(RGB H×W×3, alpha H×W or None, bits) with samples as uint8 (bits 8) or uint16 (bits 16), upright: turned as
    the EXIF orientation says (``meta``: the file's :func:`image_meta`, read when not given).

    ``keep_grey``: a grey image gives its one channel, H×W, in place of RGB (otherwise R=G=B). Grey is a decoded
    pixel format with one colour component (PNG grey / grey+alpha, grey JPEG, grey TIFF, 1-bit images), or a
    palette whose pixels are all grey (a grey BMP, which FFmpeg decodes as a palette). InputError naming the file
    when it is missing, empty, truncated or not an image FFmpeg decodes. ``cut``: a PNG or JPEG cut short made whole
    (:func:`readable_bytes`' bytes), decoded in place of the file, which is then read as far as its data goes (the
    caller says what it lost: :func:`damage`), not refused.
    """
    path = Path(path)
    meta = image_meta(path) if meta is None else meta
    if meta.truncated and cut is None:
        raise InputError(f"{path}: {meta.truncated}")
    source = io.BytesIO(cut) if meta.truncated else str(path)
    try:
        with av.open(source) as c:
            codec = c.streams.video[0].codec_context.name
            frame = next(c.decode(video=0))
    except (av.FFmpegError, StopIteration, IndexError) as e:
        raise InputError(f"{path}: not a readable image ({e})") from e
    if codec in _LINEAR:  # scene-linear floats: read as 16-bit codes they would come out dark and clipped
        raise InputError(f"{path}: {_LINEAR[codec]} holds linear (HDR) light, which the models are not trained on; "
                         "convert it to a 16-bit PNG or TIFF in sRGB first")
    fmt = frame.format
    bits = max(c.bits for c in fmt.components) if fmt.components else 8
    has_alpha = fmt.has_alpha if hasattr(fmt, "has_alpha") else any(c.is_alpha for c in fmt.components)
    # a palette (PNG/GIF with a tRNS chunk) carries its alpha in the palette, which the format does not declare:
    # read it as RGBA and keep the alpha when any entry is see-through. JPEG has no alpha: the fourth plane FFmpeg
    # gives an Adobe CMYK JPEG (converted to RGB) is opaque filler. FFmpeg decodes every lossless WebP as ARGB, one
    # without alpha too: an opaque alpha there is filler as well (else such a WebP could not be written to a JPEG).
    palette = fmt.name == "pal8"
    deep = bits > 8
    target = packed_rgb(deep=deep, alpha=has_alpha or palette)
    arr = frame.to_ndarray(format=target)
    rgb = arr[..., :3]
    alpha = arr[..., 3] if arr.shape[-1] == 4 else None
    filler = palette or codec in ("mjpeg", "jpegls", "webp")
    if alpha is not None and filler and alpha.min() == np.iinfo(alpha.dtype).max:
        alpha = None
    if keep_grey and (_grey_format(fmt) or palette and _all_grey(rgb)):
        rgb = rgb[..., 0]  # swscale copies grey codes 1:1
    if meta.orientation != 1:
        rgb = apply_orientation(rgb, meta.orientation)
        alpha = None if alpha is None else apply_orientation(alpha, meta.orientation)
    return np.ascontiguousarray(rgb), alpha, 16 if deep else 8


class Readable(NamedTuple):
    """A still cut short made whole for FFmpeg's decoder (:func:`readable_bytes`)."""

    data: bytes
    """The bytes to decode in place of the file's."""
    rows: int
    """Rows from the top whose data is all there."""
    height: int
    """The picture's height."""
    scans: int | None = None
    """A JPEG whose whole scans do not hold its whole picture (a progressive JPEG cut before its last scan): how many
    scans are whole; the picture FFmpeg gives is whole but at reduced detail. None otherwise."""
    progressive: bool = False
    """A progressive JPEG (its scans refine the whole picture; a baseline JPEG's scans each code components whole)."""
    interlaced: bool = False
    """An interlaced (Adam7) PNG or interlaced GIF: no row is whole before its last pass."""


_CUT_READ = "only a PNG, JPEG or GIF cut short is read as far as its data goes"
_KIND_NAMES = {"png": "PNG", "jpeg": "JPEG", "gif": "GIF", "webp": "WebP", "tiff": "TIFF", "bmp": "BMP"}


def damage(path: str | os.PathLike, meta: ImageMeta, readable: Readable | None = None) -> str | None:
    """The one line about what a truncated PNG, JPEG or GIF (``meta.truncated``) lost, None for an intact file: only
    its end marker ("every pixel decoded"), part of its picture ("the rows from R of H (P %) did not decode"), or, a
    progressive JPEG cut before its last scan, the detail of the whole picture ("only its first K scans are whole:
    the whole picture is at reduced detail (blurred)", and the rows its cut scan did not reach). Never hidden: the
    picture written is what FFmpeg's decoder gives of the bytes there. A cut WebP, TIFF or BMP (FFmpeg's decoders
    give no picture of one), a PNG, JPEG or GIF of which no row decodes, an interlaced PNG or GIF whose last pass is
    cut, is an InputError naming the file (:func:`readable_bytes`): there is no picture to write. ``readable``: the
    file's :func:`readable_bytes` where the caller has them; made here when not given."""
    if not meta.truncated:
        return None
    readable = readable_bytes(path, meta) if readable is None else readable
    rows, height, scans = readable.rows, readable.height, readable.scans
    lost = f"the rows from {rows + 1} of {height} ({100 * (height - rows) / height:.0f} %) did not decode"
    if scans is not None:
        first = "the first scan is" if scans == 1 else f"the first {scans} scans are"
        said = (f"a progressive JPEG of which only {first} whole: the whole picture is at reduced detail (blurred)"
                if readable.progressive else
                f"a JPEG of which only {first} whole: the whole picture lacks the colour components of the scans lost")
        if rows < height:
            said += f" and {lost.replace('did not decode', 'lack even the scan that was cut')}"
        return f"{path}: {meta.truncated}; {said}, the output is kept"
    if rows >= height:
        return f"{path}: {meta.truncated}; every pixel decoded, the output is kept"
    return f"{path}: {meta.truncated}; {lost}, the output is kept"


def readable_bytes(path: str | os.PathLike, meta: ImageMeta) -> Readable:
    """A truncated PNG, JPEG or GIF made whole for FFmpeg's decoder (:class:`Readable`: the bytes, the rows whose
    data is all there, the height, a progressive JPEG's whole scans): a PNG with its IDAT data (its cut chunk too) in
    one chunk and an IEND; a JPEG with its end-of-image marker; a GIF with its cut data block ended and a trailer.
    InputError naming the file, in one line that says the file is cut and how, for another format (a WebP, TIFF or
    BMP cut short: FFmpeg's decoders give no picture of one), or where no row's data is there (an interlaced PNG or
    GIF: no row is whole before its last pass). The bytes :func:`image_meta` read of the file are taken where it has
    not changed since (they are given up then: the caller keeps what this returns)."""
    global _last_cut
    held = _last_cut
    if held is not None and held[0] == file_key(path):
        _last_cut, data = None, held[1]
    else:
        data = Path(path).read_bytes()
    whole = {"png": _png_whole, "jpeg": _jpeg_whole, "gif": _gif_whole}.get(meta.kind)
    if whole is None:
        name = _KIND_NAMES.get(meta.kind, "file of this format")
        raise InputError(f"{path}: {meta.truncated}; FFmpeg gives no picture of a cut {name} ({_CUT_READ})")
    fixed = whole(data)
    if fixed is None or (fixed.rows == 0 and not fixed.scans):
        why = (f"an interlaced {_KIND_NAMES[meta.kind]} cut before its last pass: no row of the picture is whole"
               if fixed is not None and fixed.interlaced else "no row of the picture decodes")
        raise InputError(f"{path}: {meta.truncated}; {why}")
    return fixed


def _png_whole(data: bytes) -> Readable | None:
    """A PNG cut short made whole (its IDAT data, the cut chunk's too, in one chunk, and an IEND), the rows whose
    data is all there (an interlaced one's: all or none) and its height; None where its header is cut too."""
    pos, head, idat = 8, [], []
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I", data[pos:pos + 4])[0], data[pos + 4:pos + 8]
        body = data[pos + 8:min(pos + 8 + n, len(data))]
        if kind == b"IDAT":
            idat.append(body)
        elif not idat and pos + 12 + n <= len(data):
            head.append(data[pos:pos + 12 + n])
        if kind == b"IEND":
            break
        pos += 12 + n
    if not head or head[0][4:8] != b"IHDR":
        return None
    w, h, depth, colour, interlace = struct.unpack(">IIBBxxB", head[0][8:21])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 1)
    if interlace:  # Adam7: a row is whole only when every pass is, so count the bytes of the passes
        passes = [(8, 8, 0, 0), (8, 8, 4, 0), (4, 8, 0, 4), (4, 4, 2, 0), (2, 4, 0, 2), (2, 2, 1, 0), (1, 2, 0, 1)]
        need = sum(((h - y0 + dy - 1) // dy) * (1 + ((w - x0 + dx - 1) // dx * channels * depth + 7) // 8)
                   for dx, dy, x0, y0 in passes if w > x0 and h > y0)
        row = None
    else:
        row = 1 + (w * channels * depth + 7) // 8
        need = h * row
    body = b"".join(idat)
    try:
        got = len(zlib.decompressobj().decompress(body, need))
    except zlib.error:
        got = 0
    rows = h if got >= need else 0 if row is None else got // row

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return Readable(data[:8] + b"".join(head) + chunk(b"IDAT", body) + chunk(b"IEND", b""), rows, h,
                    interlaced=bool(interlace))


def _jpeg_whole(data: bytes) -> Readable | None:
    """A JPEG cut short with its end-of-image marker, the rows whose data is there, and (a progressive JPEG's) how
    many scans are whole where they do not hold the whole picture; None where it ends before its first scan. The
    rows are told by decoding it twice, with two different fillers before the marker: FFmpeg's decoder reads filler
    only where the picture's own data ran out (the cut scan's rows). The whole scans hold the whole picture when each
    component's 64 coefficients are all coded to their last bit (a scan of ``Al`` 0) by them; a baseline JPEG's one
    scan does, a progressive JPEG's do only when its last scan is whole."""
    try:
        segments = {marker: body for marker, body, _ in reversed(list(_jpeg_segments(data)))}  # the first of each
    except (ValueError, struct.error):
        return None
    marker = next((m for m in sorted(segments) if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC)), None)
    sof = None if marker is None else segments[marker]
    if sof is None or 0xDA not in segments or len(sof) < 6 or len(sof) < 6 + 3 * sof[5]:
        return None
    h = struct.unpack(">H", sof[1:3])[0]
    components = [sof[6 + 3 * i] for i in range(sof[5])]
    ends = data if data[-2:] != b"\xff\xd9" else data[:-2]
    pictures = []
    for filler in (b"\x00", b"\x5a"):
        try:
            with av.open(io.BytesIO(ends + filler * 256 + b"\xff\xd9")) as c:
                pictures.append(next(c.decode(video=0)).to_ndarray(format="rgb24"))
        except (av.FFmpegError, StopIteration, IndexError):
            return None
    differ = np.flatnonzero((pictures[0] != pictures[1]).any(axis=(1, 2)))
    rows = h if differ.size == 0 else int(differ[0])
    scans = _jpeg_scans(ends)
    if rows < h and scans:
        scans.pop()  # the scan the cut ran through
    coded = {(c, k) for ids, first, last, al in scans if al == 0 for c in ids for k in range(first, last + 1)}
    whole = all((c, k) in coded for c in components for k in range(64))
    return Readable(ends + b"\xff\xd9", rows, h, None if whole or not scans else len(scans),
                    progressive=marker in (0xC2, 0xC6, 0xCA, 0xCE))


_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # in entropy-coded data: a marker (not a stuffed 0xFF, RSTn)


def _jpeg_scans(data: bytes) -> list[tuple[tuple[int, ...], int, int, int]]:
    """(component ids, first and last coefficient, ``Al``) of each scan of a JPEG (the bytes may stop in one)."""
    scans, pos = [], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD9, *range(0xD0, 0xD8)):  # no length
            pos += 2
            continue
        (n,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker == 0xDA:
            body = data[pos + 4:pos + 2 + n]
            count = body[0] if body else 0
            if len(body) < 1 + 2 * count + 3:
                break
            ids = tuple(body[1 + 2 * i] for i in range(count))
            first, last, al = body[1 + 2 * count], body[2 + 2 * count], body[3 + 2 * count] & 0x0F
            scans.append((ids, first, last, al))
            found = _JPEG_MARKER.search(data, pos + 2 + n)
            if found is None:
                break
            pos = found.start()
            continue
        pos += 2 + n
    return scans


def _gif_whole(data: bytes) -> Readable | None:
    """A GIF cut in its first image made whole (its data block ended where the bytes end, and a trailer), the rows of
    its canvas whose pixels are all there, and its height; None where it ends before its first image's data or is
    not one. The rows are told from the pixels its LZW codes there give (:func:`_lzw_pixels`); an interlaced GIF's
    rows are whole only when its last pass is (0 before). FFmpeg's decoder fills the rest with the background."""
    height = struct.unpack("<H", data[8:10])[0]
    pos = 13 + ((3 << ((data[10] & 7) + 1)) if data[10] & 0x80 else 0)
    while pos < len(data) and data[pos] == 0x21:  # extensions before the image
        pos += 2
        while pos < len(data) and data[pos]:
            pos += 1 + data[pos]
        pos += 1
    if pos + 11 > len(data) or data[pos] != 0x2C:
        return None
    top, w, h, flags = *struct.unpack("<HHH", data[pos + 3:pos + 9]), data[pos + 9]
    pos += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
    if pos + 1 > len(data):
        return None
    code_size, pos = data[pos], pos + 1
    head, blocks = data[:pos], []
    while pos < len(data) and data[pos]:
        blocks.append(data[pos + 1:pos + 1 + data[pos]])
        pos += 1 + data[pos]
    body = b"".join(blocks)
    pixels = _lzw_pixels(body, code_size, w * h)
    rows = pixels // w if w else 0
    if flags & 0x40:  # interlaced: passes of every 8th, 8th, 4th, 2nd row; a row is whole only after the last
        rows = h if rows >= h else 0
    whole_rows = height if rows >= h else min(height, top + rows)
    blocked = b"".join(bytes([len(body[i:i + 255])]) + body[i:i + 255] for i in range(0, len(body), 255))
    return Readable(head + blocked + b"\x00\x3b", whole_rows, height, interlaced=bool(flags & 0x40))


def _lzw_pixels(body: bytes, code_size: int, limit: int) -> int:
    """How many pixels (at most ``limit``) GIF LZW data ``body`` of minimum code size ``code_size`` decodes to:
    each code's string length, no strings built (a whole code only; the bytes may stop mid-code)."""
    if not 2 <= code_size <= 11:
        return 0
    clear, out, at, buffer, held = 1 << code_size, 0, 0, 0, 0  # the bits not yet read: ``held`` of them
    size, free, prev = code_size + 1, clear + 2, None
    lengths = [1] * clear + [0, 0] + [0] * (4096 - clear - 2)
    while out < limit:
        while held < size and at < len(body):
            buffer |= body[at] << held
            at, held = at + 1, held + 8
        if held < size:
            break
        code = buffer & ((1 << size) - 1)
        buffer, held = buffer >> size, held - size
        if code == clear:
            size, free, prev = code_size + 1, clear + 2, None
            continue
        if code == clear + 1:
            break
        if prev is None:
            n = lengths[code] if code < clear else 0
            if n == 0:
                break
        elif code < free:
            n = lengths[code]
            if free < 4096:
                lengths[free], free = lengths[prev] + 1, free + 1
        elif code == free and free < 4096:
            n = lengths[prev] + 1
            lengths[free], free = n, free + 1
        else:
            break  # a code not yet defined: damaged data, where the decoder stops too
        out += n
        prev = code
        if free == 1 << size and size < 12:
            size += 1
    return min(out, limit)


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether FFmpeg opens ``path`` as an image (its demuxer: image2, an ``*_pipe`` image reader, or GIF; an MP4
    demuxer with a HEIF still's brand), not a video container: a TGA, PPM, EXR, GIF, AVIF, HEIC …, whatever its
    extension. False when it is not a file (``-``, standard
    input, is not read here) or cannot be opened."""
    if not Path(path).is_file():
        return False
    try:
        with av.open(str(path)) as c:
            name, brand = c.format.name, c.metadata.get("major_brand")
    except (av.FFmpegError, OSError):
        return False
    # AVIF and HEIC stills open with the MP4 demuxer; their brand says so ('avis', an AVIF sequence, is a video)
    return name in ("image2", "gif") or name.endswith("_pipe") or brand in _STILL_BRANDS


def _grey_format(fmt: av.VideoFormat) -> bool:
    """Whether ``fmt`` holds one colour component (gray*, ya*, monob/monow), alpha aside."""
    return (not fmt.is_rgb and not fmt.has_palette and not fmt.is_bayer
            and sum(not c.is_alpha for c in fmt.components) == 1)


def _all_grey(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))


def check_extension(dst: str | os.PathLike, *, alpha: bool = False) -> None:
    """OutputError unless ``dst``'s extension is one :func:`write_image` encodes (with an alpha channel when
    ``alpha``)."""
    dst = Path(dst)
    if dst.suffix.lower() not in _ENCODERS:
        raise OutputError(f"{dst}: unsupported image extension; use one of {', '.join(IMAGE_EXTENSIONS)}")
    if alpha and _ENCODERS[dst.suffix.lower()][2] is None:
        keep = ", ".join(ext for ext in IMAGE_EXTENSIONS if _ENCODERS[ext][2] is not None)
        raise OutputError(f"{dst}: this format cannot keep the alpha channel; use one that does ({keep})")


def holds_grey(dst: str | os.PathLike, *, alpha: bool = False) -> bool:
    """Whether :func:`write_image` writes grey samples (with an alpha channel when ``alpha``) into ``dst``'s format
    as grey: PNG and TIFF (8 or 16 bits, with or without alpha), BMP (8 bits, without alpha). JPEG and WebP
    cannot (FFmpeg's JPEG encoder takes no grey format), nor BMP with alpha: there grey is written as R=G=B."""
    grey = _GREY_ENCODERS.get(Path(dst).suffix.lower())
    return grey is not None and grey[1 if alpha else 0] is not None


def holds_deep(dst: str | os.PathLike) -> bool:
    """Whether :func:`write_image` keeps 16-bit samples in ``dst``'s format (PNG, TIFF); others get 8 bits."""
    enc = _ENCODERS.get(Path(dst).suffix.lower())
    return enc is not None and enc[3] is not None


_FORMAT_NAMES = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WebP",
                 ".bmp": "BMP"}


def eight_bit_notice(dst: str | os.PathLike, bits: int, what: str = "image", *, animated: bool = False) -> str:
    """The notice for samples of ``bits`` (above 8) written into ``dst``'s format of 8 bits per channel (pure), in
    the user's terms, not FFmpeg's pixel formats: "x.bmp: BMP holds 8 bits per channel; the 10-bit video's frame is
    rounded to 8 (.png and .tiff keep its 10 bits, in 16-bit samples)". ``what``: the picture's name (a still's
    "image", a video's "video's frame"). ``animated``: many frames into an animated WebP, whose keepers are .apng and
    FFV1 in .mkv, not the still formats."""
    name = _FORMAT_NAMES.get(Path(dst).suffix.lower(), "this format")
    if animated:
        return (f"{dst}: {name} holds 8 bits per channel; the {bits}-bit video is rounded to 8 (.apng, or .mkv with "
                f"--codec ffv1, keeps its {bits} bits)")
    keep = "16" if bits >= 16 else f"its {bits} bits, in 16-bit samples"
    return f"{dst}: {name} holds 8 bits per channel; the {bits}-bit {what} is rounded to 8 (.png and .tiff keep {keep})"


def round_to_8bit(samples: np.ndarray) -> np.ndarray:
    """16-bit samples → 8-bit ones, rounded to the nearest (code × 255 / 65 535, half up): how :func:`write_image`
    writes 16-bit samples into a format of 8 bits."""
    return ((samples.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def write_image(dst: str | os.PathLike, rgb: np.ndarray, alpha: np.ndarray | None, bits: int,
                meta: ImageMeta | None = None) -> None:
    """Encode ``rgb`` (H×W×3 uint8/uint16, or H×W grey) and ``alpha`` (H×W or None) into ``dst`` (format from its
    extension); ``meta``: the ICC profile, EXIF block and DPI to write with it where the format holds them (the
    source's :func:`image_meta`; its orientation is taken as applied).

    ``bits`` 16 keeps 16 bits where the format can (PNG, TIFF). Grey samples are written as grey where the format
    has a grey colour type (:func:`holds_grey`), else as R=G=B. OutputError when the extension is unknown or the
    format cannot keep an alpha channel. Written to a temporary file beside ``dst`` and renamed over it when
    complete, so ``dst`` is never half written.
    """
    dst = Path(dst)
    check_extension(dst, alpha=alpha is not None)
    ext = dst.suffix.lower()
    codec, fmt8, fmt8a, fmt16, fmt16a = _ENCODERS[ext]
    deep = bits > 8 and fmt16 is not None
    if not deep and rgb.dtype == np.uint16:
        rgb = round_to_8bit(rgb)
        if alpha is not None:
            alpha = round_to_8bit(alpha)
    grey = rgb.ndim == 2
    if grey and not holds_grey(dst, alpha=alpha is not None):
        rgb, grey = np.repeat(rgb[..., None], 3, axis=2), False
    if grey:
        frame, pix_fmt = _grey_frame(rgb, alpha, deep), _GREY_ENCODERS[ext][2 * deep + (alpha is not None)]
    elif alpha is not None:
        data = np.concatenate([rgb, alpha[..., None]], axis=2)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(data), format="rgba64le" if deep else "rgba")
        pix_fmt = fmt16a if deep else fmt8a
    else:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb48le" if deep else "rgb24")
        pix_fmt = fmt16 if deep else fmt8
    lossless = codec == "libwebp" and meta is not None and meta.lossless  # lossless WebP in, lossless WebP out
    if lossless:
        pix_fmt = "bgra"  # libwebp's lossless input (its YUV formats go through 4:2:0); no alpha flag when opaque
    target = link_target(dst)  # a link's file: the link stays, leading to the new image
    remove_stale_partials(target)  # left by an earlier writer of this target killed outright (SIGKILL)
    tmp = partial_path(target)
    try:
        with av.open(str(tmp), "w", format="image2") as c:
            s = c.add_stream(codec, rate=1)
            s.width, s.height = rgb.shape[1], rgb.shape[0]
            s.pix_fmt = pix_fmt
            if meta is not None and meta.dpi and codec == "tiff":
                s.options = {"dpi": str(min(65536, max(1, round(meta.dpi[0]))))}
            if codec == "mjpeg":
                s.codec_context.color_range = Range.FULL.ffmpeg  # JPEG range
                s.options = {"qmin": "1", "qmax": "2"}
            if codec == "libwebp":  # libwebp's default, 75, is 5 dB below the JPEG above: 95 is within 1 dB of it
                s.options = {"lossless": "1"} if lossless else {"quality": "95"}
            for packet in s.encode(frame.reformat(format=pix_fmt)):
                c.mux(packet)
            for packet in s.encode(None):
                c.mux(packet)
        encoded = tmp.read_bytes()
        embedded = embed(encoded, ext, meta or ImageMeta(), (rgb.shape[1], rgb.shape[0]), grey=grey)
        if embedded is not encoded:  # embed gives the file back as it is where it adds nothing (a TIFF, a WebP)
            tmp.write_bytes(embedded)
        os.replace(tmp, target)
    except (av.FFmpegError, OSError) as e:  # an unwritable folder, a full disk
        _remove(tmp)
        raise cannot_write(dst, e) from e
    except BaseException:
        _remove(tmp)
        raise


def _grey_frame(grey: np.ndarray, alpha: np.ndarray | None, deep: bool) -> av.VideoFrame:
    """A gray/gray16le or ya8/ya16le frame holding the samples as they are (swscale's RGB → grey is not exact at
    16 bits, and PyAV has no NumPy path for ya*); the encoders' big-endian formats are a byte swap away."""
    h, w = grey.shape
    dtype = np.dtype("<u2" if deep else "u1")
    if alpha is None:
        return frame_from_planes([grey], "gray16le" if deep else "gray", w, h, layouts=(PlaneLayout((h, w), dtype),))
    ya = np.stack([grey, alpha], axis=2)
    return frame_from_planes([ya], "ya16le" if deep else "ya8", w, h, layouts=(PlaneLayout((h, w, 2), dtype),))


def _remove(tmp: Path) -> None:
    """Remove a temporary file if it was made (its folder may not even be one)."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        tmp.unlink()
