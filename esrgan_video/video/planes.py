"""Native planes in and out of PyAV frames, without a colour conversion (no ``reformat``/swscale).

``copy_planes`` copies each plane out of a decoded ``av.VideoFrame`` (dropping FFmpeg's line padding);
``frame_from_planes`` builds a frame to encode from planes. Shapes and dtypes are the format's
``PlaneLayout``s (``frames.pixel_formats.plane_layouts``). ``read_planes`` also reads the formats
``frames.pixel_formats.READ_AS`` names, exactly: packed 4:2:2 (``uyvy422``, ``yuyv422``) repacked into
``yuv422p``'s three planes, a palette (``pal8``) looked up into ``rgb24``/``rgba``.
"""

from __future__ import annotations

import functools
import os
from typing import Sequence

import av
import numpy as np

from ..frames.pixel_formats import BIG_ENDIAN, PlaneLayout, plane_layouts
from .probe import Demux, file_key, open_media


def _rows(plane, lay) -> np.ndarray:
    """The plane's picture bytes in place: a (rows, row bytes) uint8 view that skips each line's padding
    (``line_size`` ≥ row bytes)."""
    rows, ls = lay.shape[0], plane.line_size
    buf = np.frombuffer(plane, np.uint8, count=ls * (rows - 1) + lay.row_bytes)
    return np.lib.stride_tricks.as_strided(buf, shape=(rows, lay.row_bytes), strides=(ls, 1))


def copy_planes(frame: av.VideoFrame, layouts) -> list[np.ndarray]:
    """Copy each plane out of the AVFrame, dropping the line padding."""
    return [np.ascontiguousarray(_rows(plane, lay)).view(lay.dtype).reshape(lay.shape)
            for plane, lay in zip(frame.planes, layouts)]


_PACKED_422 = {"uyvy422": (1, 0, 3, 2), "yuyv422": (0, 1, 2, 3)}
"""Where Y0, U, Y1, V lie in each 4-byte pair of pixels."""


def _bytes(plane, rows: int, row_bytes: int) -> np.ndarray:
    """(rows, row_bytes) uint8 of a plane, line padding skipped; rows shorter than ``row_bytes`` zero-padded."""
    n = min(row_bytes, plane.line_size)
    out = np.ascontiguousarray(_rows(plane, PlaneLayout((rows, n), np.dtype(np.uint8))))
    return out if n == row_bytes else np.pad(out, ((0, 0), (0, row_bytes - n)))


def _palette(frame: av.VideoFrame) -> np.ndarray:
    """A ``pal8`` frame's 256 palette entries, (256, 4) uint8: FFmpeg's native 32-bit ARGB, bytes B, G, R, A here."""
    return np.frombuffer(frame.planes[1], np.uint8, count=1024).reshape(256, 4)


def read_planes(frame: av.VideoFrame, pix_fmt: str, layouts) -> list[np.ndarray]:
    """The frame's planes as ``pix_fmt``'s ``layouts``: :func:`copy_planes` when the frame is in ``pix_fmt``, else
    the exact repacking of a format read as another (``frames.pixel_formats.READ_AS``): ``uyvy422``/``yuyv422`` to
    ``yuv422p``, ``pal8`` to ``rgb24``/``rgba`` by its palette (whose entries FFmpeg stores as native 32-bit ARGB:
    bytes B, G, R, A here); a big-endian format (``frames.pixel_formats.BIG_ENDIAN``: a 16-bit PNG's ``rgb48be``) to
    its little-endian twin."""
    src = frame.format.name
    if src == pix_fmt:
        return copy_planes(frame, layouts)
    if BIG_ENDIAN.get(src) == pix_fmt:  # a 16-bit PNG's rgb48be as rgb48le: the same samples, bytes swapped
        # read in place as big-endian words; the swap to little-endian is the one copy
        return [_rows(plane, lay).view(">u2").reshape(lay.shape).astype(lay.dtype, order="C")
                for plane, lay in zip(frame.planes, layouts)]
    if src in _PACKED_422 and pix_fmt == "yuv422p":
        (h, w), (_, cw) = layouts[0].shape, layouts[1].shape
        quads = _bytes(frame.planes[0], h, 4 * cw).reshape(h, cw, 4)
        y0, u, y1, v = (quads[..., k] for k in _PACKED_422[src])
        y = np.empty((h, 2 * cw), np.uint8)
        y[:, 0::2], y[:, 1::2] = y0, y1
        return [np.ascontiguousarray(y[:, :w]), np.ascontiguousarray(u), np.ascontiguousarray(v)]
    if src == "pal8" and pix_fmt in ("rgb24", "rgba"):
        h, w = layouts[0].shape[:2]
        index = _bytes(frame.planes[0], h, w)
        palette = _palette(frame)
        order = [2, 1, 0] if pix_fmt == "rgb24" else [2, 1, 0, 3]
        return [np.ascontiguousarray(palette[:, order][index])]
    raise ValueError(f"read_planes: cannot read a {src} frame as {pix_fmt}")


def see_through(frame: av.VideoFrame) -> bool:
    """Whether a ``pal8`` frame shows a palette entry that is not opaque (read it as ``rgba``, else ``rgb24``)."""
    if frame.format.name != "pal8":
        return False
    clear = _palette(frame)[:, 3] != 255
    if not clear.any():  # an opaque palette: no need to look at the picture
        return False
    index = _bytes(frame.planes[0], frame.height, frame.width)
    return bool(clear[index].any())


def stream_see_through(path: str | os.PathLike, stream_index: int, first: av.VideoFrame, *,
                       demuxer: str | None = None) -> bool:
    """Whether any frame of a ``pal8`` video stream shows a see-through palette entry (:func:`see_through`), so the
    stream is read as ``rgba``: ``first`` (its first frame, already decoded) decides when it shows one; else the
    stream is decoded to its end, stopping at the first frame that does. A palette may change from frame to frame
    (a PNG-in-MOV/NUT clip's frames each carry their own PLTE/tRNS, a raw NUT frame its own palette), so the first
    frame alone would drop the alpha of a later one. ``demuxer``: the container's format name; a one-picture file's
    (:func:`one_picture`: a palette PNG, BMP, TGA) first frame is its only one, so it decides alone and the file is
    not decoded a second time. The answer is kept per file (path, size, mtime), so the probes of one run (and a
    batch's segments) scan once. False for other formats."""
    if first.format.name != "pal8":
        return False
    if see_through(first):
        return True
    if demuxer is not None and one_picture(demuxer):
        return False
    return _scan_see_through(*file_key(path), stream_index)


def one_picture(demuxer: str) -> bool:
    """Whether FFmpeg's demuxer ``demuxer`` (a format name) reads one picture from a file: ``image2`` (one file,
    as an input path opens it) and the ``*_pipe`` image readers (``png_pipe``, ``bmp_pipe`` …); GIF and the video
    containers hold more."""
    return demuxer == "image2" or demuxer.endswith("_pipe")


@functools.lru_cache(maxsize=8)
def _scan_see_through(path: str, size: int, mtime_ns: int, stream_index: int) -> bool:
    with open_media(path) as container:
        stream = container.streams[stream_index]
        for packet in Demux(container, stream):  # damage that stops the demuxer ends the scan, as it ends reads
            try:  # a damaged packet: the frames that decode decide, as the reader reads as far as they go
                frames = packet.decode()
            except av.FFmpegError:
                continue
            if any(see_through(f) for f in frames):
                return True
    return False


def frame_from_planes(planes: Sequence[np.ndarray], pix_fmt: str, width: int, height: int, *,
                      layouts=None, where: str = "frame_from_planes") -> av.VideoFrame:
    """A new ``av.VideoFrame`` of ``pix_fmt`` holding ``planes`` (integer arrays of the layouts' shapes, cast to
    the format's sample type); ValueError naming ``where`` for a wrong plane count or shape."""
    layouts = layouts or plane_layouts(pix_fmt, width, height)
    if len(planes) != len(layouts):
        raise ValueError(f"{where}: expected {len(layouts)} planes for {pix_fmt}, got {len(planes)}")
    frame = av.VideoFrame(width, height, pix_fmt)
    for i, (plane, arr, lay) in enumerate(zip(frame.planes, planes, layouts)):
        a = np.asarray(arr)
        if a.shape != lay.shape:
            raise ValueError(f"{where}: plane {i} of {pix_fmt} {width}x{height} must have shape {lay.shape}, "
                             f"got {a.shape}")
        data = np.ascontiguousarray(a, dtype=lay.dtype).view(np.uint8)
        _rows(plane, lay)[...] = data.reshape(lay.shape[0], lay.row_bytes)
    return frame


__all__ = ["copy_planes", "frame_from_planes", "one_picture", "read_planes", "see_through", "stream_see_through"]
