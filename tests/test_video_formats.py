"""video.formats: encoder pixel-format choice, plane layouts, size rounding (pure)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from esrgan_video.errors import OutputError
from esrgan_video.frames.pixel_formats import SUPPORTED_PIX_FMTS
from esrgan_video.video.encoder_formats import (
    choose_pix_fmt,
    encoder_pix_fmts,
    format_facts,
    is_supported,
    plane_layouts,
    round_size,
    size_multiple,
)


@pytest.mark.parametrize("codec,inp,want,notice", [
    ("libx264", "yuv420p", "yuv420p", None),
    ("libx264", "yuvj420p", "yuv420p", None),           # range goes in the tags, not the format
    ("libx264", "yuv420p10le", "yuv420p10le", None),    # 10-bit stays 10-bit
    ("libx264", "yuv422p10le", "yuv422p10le", None),
    ("libx264", "gray", "gray", None),
    ("libx264", "nv12", "yuv420p", None),               # same kind, planar layout
    ("libx264", "gbrp", "yuv444p", "ffv1"),             # RGB: nearest YUV, suggest a codec that keeps RGB
    ("libx264", "yuv422p12le", "yuv422p10le", "ffv1"),  # deeper than accepted: closest below
    ("libsvtav1", "yuv444p", "yuv420p", "4:2:0"),       # only 4:2:0
    ("libsvtav1", "yuv422p10le", "yuv420p10le", "4:2:0"),
    ("prores_ks", "yuv420p", "yuv422p10le", "yuv422p10le"),  # closest depth above, less subsampled
    ("libx265", "gbrp", "gbrp", None),
    ("ffv1", "yuv444p16le", "yuv444p16le", None),
])
def test_choose_pix_fmt(codec, inp, want, notice):
    got, note = choose_pix_fmt(codec, inp)
    assert got == want
    assert got in encoder_pix_fmts(codec)
    if notice is None:
        assert note is None
    else:
        assert note is not None and notice in note and codec in note and "\n" not in note


def test_choose_pix_fmt_requested():
    assert choose_pix_fmt("libx264", "yuv420p", requested="yuv444p10le") == ("yuv444p10le", None)
    with pytest.raises(OutputError, match="libx264 cannot write pixel format 'gbrp'.*yuv420p"):
        choose_pix_fmt("libx264", "yuv420p", requested="gbrp")
    with pytest.raises(OutputError, match="unknown video encoder"):
        choose_pix_fmt("x999", "yuv420p")
    with pytest.raises(OutputError, match="audio encoder"):
        choose_pix_fmt("aac", "yuv420p")


@pytest.mark.parametrize("name", SUPPORTED_PIX_FMTS)
@pytest.mark.parametrize("size", [(64, 48), (63, 47)])
def test_plane_layouts_match_ffmpeg_frames(name, size):
    """Shapes and row bytes agree with what FFmpeg allocates (line_size ≥ row bytes, plane count)."""
    frame = av.VideoFrame(size[0], size[1], name)
    lays = plane_layouts(name, *size)
    assert len(lays) == len(frame.planes)
    for lay, plane in zip(lays, frame.planes):
        assert lay.shape[0] == plane.height
        assert lay.row_bytes <= plane.line_size
        assert lay.row_bytes == plane.width * np.prod(lay.shape[2:], dtype=int) * lay.dtype.itemsize
    assert is_supported(name)


def test_format_facts_and_sizes():
    f = format_facts("yuv422p10le")
    assert (f.family, f.depth, f.log2_chroma_w, f.log2_chroma_h, f.planar) == ("yuv", 10, 1, 0, True)
    assert format_facts("gbrp").family == "rgb" and format_facts("gray10le").family == "gray"
    assert size_multiple("yuv420p") == (2, 2) and size_multiple("yuv422p") == (2, 1)
    assert size_multiple("yuv444p") == (1, 1)
    assert round_size(255, 143, "yuv420p") == (256, 144)
    assert round_size(255, 143, "yuv444p") == (255, 143)
    assert round_size(1, 1, "yuv420p") == (2, 2)
    assert not is_supported("yuv411p") and not is_supported("bayer_rggb8")
