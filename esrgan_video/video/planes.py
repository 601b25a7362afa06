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


def copy_planes(frame: av.VideoFrame, layouts) -> list[np.ndarray]:
    """Copy each plane out of the AVFrame, dropping the line padding (``line_size`` ≥ row bytes)."""
    out = []
    for plane, lay in zip(frame.planes, layouts):
        rows = lay.shape[0]
        ls = plane.line_size
        buf = np.frombuffer(plane, np.uint8, count=ls * (rows - 1) + lay.row_bytes)
        view = np.lib.stride_tricks.as_strided(buf, shape=(rows, lay.row_bytes), strides=(ls, 1))
        out.append(np.ascontiguousarray(view).view(lay.dtype).reshape(lay.shape))
    return out


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
        a = np.ascontiguousarray(a, dtype=lay.dtype)
        ls = plane.line_size
        rows = lay.shape[0]
        buf = np.frombuffer(plane, np.uint8, count=ls * (rows - 1) + lay.row_bytes)
        np.lib.stride_tricks.as_strided(buf, shape=(rows, lay.row_bytes), strides=(ls, 1))[...] = \
            a.view(np.uint8).reshape(rows, lay.row_bytes)
    return frame


__all__ = ["copy_planes", "frame_from_planes"]
