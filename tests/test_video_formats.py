"""video.encoder_formats: which pixel format an encoder writes for an input (plane layouts and size
multiples are the descriptor's: tests/test_pixfmt.py)."""

from __future__ import annotations

import pytest

from esrgan_video.errors import OutputError
from esrgan_video.video.encoder_formats import choose_pix_fmt, encoder_pix_fmts


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
    # FFV1 writes 8-bit RGB only packed: planar or any packed order in, bgr0 (bgra with alpha) out, no notice
    ("ffv1", "gbrp", "bgr0", None),
    ("ffv1", "rgb24", "bgr0", None),
    ("ffv1", "bgr0", "bgr0", None),
    ("ffv1", "0rgb", "bgr0", None),
    ("ffv1", "rgba", "bgra", None),
    ("ffv1", "abgr", "bgra", None),
    ("ffv1", "gbrap", "bgra", None),
    ("ffv1", "gbrp10le", "gbrp10le", None),            # 10-bit RGB stays planar
    ("libx264", "bgr0", "yuv444p", "ffv1"),            # packed RGB into a YUV-only encoder: suggest ffv1
    ("libx265", "argb", "gbrp", "8-bit RGB"),          # alpha dropped: named
    ("huffyuv", "rgb0", "rgb24", None),                # padding-free layout preferred when both fit
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


def test_a_listed_format_the_encoder_cannot_open_is_passed_over():
    """FFmpeg's lists promise more than the linked libraries open (libvpx-vp9: gbrap, yuva444p; libx265:
    yuva420p): the nearest format that really opens is chosen, and asking for a refused one is one line."""
    from esrgan_video.video.encoder_formats import encoder_opens

    for codec, inp in (("libvpx-vp9", "gbrap"), ("libvpx-vp9", "yuva444p"), ("libx265", "yuva420p")):
        if inp not in encoder_pix_fmts(codec):
            pytest.skip(f"{codec} of this FFmpeg does not list {inp}")
        assert not encoder_opens(codec, inp)
    assert choose_pix_fmt("libvpx-vp9", "bgra")[0] == "yuva420p"   # the alpha kept (gbrap does not open)
    assert choose_pix_fmt("libvpx-vp9", "yuva444p")[0] == "yuv444p"
    assert choose_pix_fmt("libx265", "yuva420p")[0] == "yuv420p"
    assert encoder_opens("libvpx-vp9", "gbrp") and encoder_opens("libx264", "yuv420p")
    with pytest.raises(OutputError, match="libvpx-vp9 lists pixel format 'gbrap' but this build's library refuses"):
        choose_pix_fmt("libvpx-vp9", "yuv420p", requested="gbrap")


def test_colour_is_never_written_as_gray():
    """An encoder whose only colour formats this program cannot write (gif: palette and 3-3-2 RGB) is refused for a
    colour input instead of writing grey frames; a grey input still goes."""
    with pytest.raises(OutputError, match="encoder gif cannot write colour"):
        choose_pix_fmt("gif", "bgra")
    assert choose_pix_fmt("gif", "gray") == ("gray", None)
