"""A run of frames through a real encoder and back, in memory (training's ``video`` degradation).

``codec_round_trip`` encodes frames given as native planes with an FFmpeg encoder (x264, x265, ...) as one
run — so P/B-frame artefacts appear, not only intra ones — and decodes the packets again with the matching
decoder; planes in, planes out, no colour conversion (the caller converts with ``frames.color``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Mapping, Sequence

import av
import numpy as np

from ..frames.colorspace import Matrix
from ..frames.pixel_formats import plane_layouts
from .planes import copy_planes, frame_from_planes


def codec_round_trip(
    frames: Sequence[Sequence[np.ndarray]],
    *,
    codec: str,
    width: int,
    height: int,
    pix_fmt: str = "yuv420p",
    options: Mapping[str, str] | None = None,
    matrix: Matrix = Matrix.BT709,
    full_range: bool = False,
    rate: Fraction = Fraction(25),
) -> list[list[np.ndarray]]:
    """Encode ``frames`` (each a list of planes of ``pix_fmt`` at ``width``×``height``) with ``codec`` and
    ``options`` (e.g. ``{"crf": "30", "g": "8", "bf": "3"}``), decode them, and return the decoded planes in
    presentation order. The stream is tagged ``matrix`` and limited/full range. RuntimeError when the decoder
    gives back a different number of frames than were encoded."""
    layouts = plane_layouts(pix_fmt, width, height)
    enc = av.CodecContext.create(codec, "w")
    enc.width, enc.height, enc.pix_fmt = width, height, pix_fmt
    enc.time_base = 1 / rate
    enc.framerate = rate
    enc.color_range = 2 if full_range else 1  # AVColorRange: 1 MPEG (limited), 2 JPEG (full)
    enc.colorspace = int(matrix)
    enc.options = dict(options or {})
    packets = []
    for i, planes in enumerate(frames):
        frame = frame_from_planes(planes, pix_fmt, width, height, layouts=layouts, where="codec_round_trip")
        frame.pts = i
        packets.extend(enc.encode(frame))
    packets.extend(enc.encode(None))
    dec = av.CodecContext.create(av.codec.Codec(codec, "w").canonical_name, "r")
    dec.thread_count = 1
    decoded = []
    for pkt in packets:
        decoded.extend(dec.decode(pkt))
    decoded.extend(dec.decode(None))
    if len(decoded) != len(frames):
        raise RuntimeError(f"codec_round_trip: {len(frames)} frames encoded with {codec} but {len(decoded)} decoded")
    decoded.sort(key=lambda f: f.pts)
    return [copy_planes(f, layouts) for f in decoded]


__all__ = ["codec_round_trip"]
