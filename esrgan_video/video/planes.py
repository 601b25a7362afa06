"""Native planes in and out of PyAV frames, without a colour conversion (no ``reformat``/swscale).

``copy_planes`` copies each plane out of a decoded ``av.VideoFrame`` (dropping FFmpeg's line padding);
``frame_from_planes`` builds a frame to encode from planes. Shapes and dtypes are the format's
``PlaneLayout``s (``frames.pixel_formats.plane_layouts``).
"""

from __future__ import annotations

from typing import Sequence

import av
import numpy as np

from ..frames.pixel_formats import plane_layouts


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


__all__ = ["copy_planes", "frame_from_planes"]
