"""Each encoder's frame-size limits (``video.frame_limits``) are where this FFmpeg's encoder refuses.

For each limit, the size just inside is taken by the table and by the encoder (opened and given two frames, as the
writer gives them), the size just outside is refused by both: a limit in the table that is wrong for the FFmpeg
PyAV brings fails here. Frames are kept small (the other side 1-16 px), so each case takes well under a second.
"""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from esrgan_video.video.frame_limits import X265_BAD_WIDTHS, frame_size_refusal, picture_fits

QUIET = {"libx265": {"log-level": "none"}, "libsvtav1": {"preset": "12"},
         "libvpx": {"deadline": "realtime", "cpu-used": "8"}, "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"}}


def encodes(codec: str, pix_fmt: str, size: tuple[int, int], options: dict[str, str]) -> bool:
    """Whether FFmpeg's ``codec`` opens on ``size`` frames of ``pix_fmt`` and encodes two (libwebp refuses a size at
    the first frame sent, not at open)."""
    w, h = size
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, pix_fmt
    ctx.time_base, ctx.framerate = Fraction(1, 25), Fraction(25)
    ctx.options = QUIET.get(codec, {}) | options
    with av.logging.Capture():  # the encoder's own complaint, kept off the test's output
        try:
            ctx.open()
            for i in range(2):
                frame = av.VideoFrame(w, h, pix_fmt)
                frame.pts, frame.time_base = i, Fraction(1, 25)
                ctx.encode(frame)
            ctx.encode(None)
        except (av.FFmpegError, ValueError):
            return False
    return True


WIDEST_1 = 2080767
"""The most a picture 1 px high may be wide: FFmpeg's 8 x (width + 128) x (height + 128) < INT_MAX."""

CASES = [
    # codec, pix_fmt, taken, refused, options
    ("libx265", "yuv420p", (16, 16), (14, 16), {}),
    ("libx265", "yuv420p", (16, 16), (16, 14), {}),
    ("libx264", "yuv420p", (16384, 16), (16386, 16), {}),
    ("libx264", "yuv420p", (16, 16384), (16, 16386), {}),
    ("libx264", "yuv420p", (16, 16), (17, 16), {}),
    ("libvpx", "yuv420p", (16383, 16), (16384, 16), {}),
    ("libvpx", "yuv420p", (16, 16383), (16, 16384), {}),
    ("libvpx-vp9", "yuv420p", (65536, 16), (65538, 16), {}),
    ("libvpx-vp9", "yuv420p", (16, 65536), (16, 65538), {}),  # its height too, far inside FFmpeg's picture limit
    ("libsvtav1", "yuv420p", (16384, 64), (16386, 64), {}),
    ("libsvtav1", "yuv420p", (64, 8704), (64, 8706), {}),
    ("mpeg1video", "yuv420p", (4094, 16), (4098, 16), {}),
    ("mpeg1video", "yuv420p", (4094, 16), (4096, 16), {}),
    ("mpeg2video", "yuv420p", (16382, 16), (16384, 16), {}),
    ("mpeg2video", "yuv420p", (4094, 16), (4096, 16), {}),
    ("mpeg2video", "yuv420p", (16, 8190), (16, 8192), {}),
    ("mpeg4", "yuv420p", (8190, 16), (8192, 16), {}),
    ("mpeg4", "yuv420p", (16, 8190), (16, 8192), {}),
    ("mjpeg", "yuvj420p", (65500, 16), (65502, 16), {}),
    ("gif", "rgb8", (65535, 16), (65536, 16), {}),
    ("jpegls", "gray", (65535, 16), (65536, 16), {}),
    ("libwebp", "yuv420p", (16382, 16), (16384, 16), {}),
    ("libwebp_anim", "yuv420p", (16, 16382), (16, 16384), {}),
    ("ffv1", "yuv420p", (4, 8), (2, 8), {}),
    ("ffv1", "yuv444p", (2, 8), (1, 8), {}),
    ("huffyuv", "yuv422p", (4, 7), (3, 8), {}),
    ("ffvhuff", "yuv420p", (4, 7), (3, 8), {}),
    ("utvideo", "yuv420p", (4, 4), (3, 4), {}),
    ("utvideo", "yuv420p", (4, 4), (4, 3), {}),
    ("h263", "yuv420p", (176, 144), (160, 120), {}),
    ("dnxhd", "yuv422p", (1920, 1080), (1280, 1080), {"b": "36M"}),
    ("dnxhd", "yuv422p", (256, 120), (254, 120), {"profile": "dnxhr_sq"}),
    ("dnxhd", "yuv422p", (256, 120), (256, 118), {"profile": "dnxhr_sq"}),
    ("png", "gray", (WIDEST_1, 1), (WIDEST_1 + 1, 1), {}),
]


@pytest.mark.parametrize("codec, pix_fmt, taken, refused, options", CASES,
                         ids=[f"{c[0]}-{c[2][0]}x{c[2][1]}-{c[3][0]}x{c[3][1]}" for c in CASES])
def test_a_limit_is_where_the_encoder_refuses(codec, pix_fmt, taken, refused, options):
    assert frame_size_refusal(codec, pix_fmt, taken, options) is None
    assert encodes(codec, pix_fmt, taken, options)
    said = frame_size_refusal(codec, pix_fmt, refused, options)
    assert said is not None and f"got {refused[0]}x{refused[1]}" in said
    assert not encodes(codec, pix_fmt, refused, options)


def test_the_encoders_own_names_share_its_limits():
    """``--codec h264`` / ``vp8`` / ``hevc`` are FFmpeg's names for libx264 / libvpx / libx265: the same limits."""
    assert frame_size_refusal("h264", "yuv420p", (16386, 16)) == (
        "h264 encodes frames of at most 16384x16384, got 16386x16; use --codec libx265, or a smaller --scale or --size")
    assert frame_size_refusal("vp8", "yuv420p", (16384, 16)).startswith("vp8 encodes frames of at most 16383x16383")
    assert frame_size_refusal("hevc", "yuv420p", (8, 8)).startswith("hevc cannot encode frames smaller than 16x16")


def test_libx265s_crashing_widths_are_in_the_one_table():
    """The 33-63 px widths x265 4.3 corrupts its memory on (not encoded here: it crashed the process) are refused by
    the same table, with the message they had."""
    for w in (X265_BAD_WIDTHS.start, 40, 48, X265_BAD_WIDTHS.stop - 1):
        assert frame_size_refusal("libx265", "yuv444p", (w, 64)) == (
            f"libx265 cannot be given frames 33 to 63 px wide (x265 4.3 corrupts its memory on some, e.g. 40 or 48 "
            f"wide), got {w}x64; use --codec libx264, or a larger --scale or --size")
    assert frame_size_refusal("libx265", "yuv444p", (32, 64)) is None
    assert frame_size_refusal("libx265", "yuv444p", (64, 40)) is None


def test_ffmpegs_picture_limit():
    assert picture_fits(WIDEST_1, 1) and not picture_fits(WIDEST_1 + 1, 1)
    assert picture_fits(16255, 16255) and not picture_fits(16256, 16256)
