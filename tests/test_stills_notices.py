"""A deep picture written into a format of 8 bits per channel is said in the user's terms: a 10-bit video's frame
into ``x.bmp`` printed "bmp cannot encode 16-bit RGB (rgb48le); writing bgr24 (8-bit RGB) instead" — FFmpeg's
names for the model's output, which the user never asked for, where their video was 10-bit YUV. Now one line says
what the format holds, what depth is written and what keeps it (``video.images.eight_bit_notice``); a 16-bit still
into a BMP, JPEG or WebP gets the same wording."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from esrgan_video.testing import run_cli
from esrgan_video.video.images import write_image

from media import make_clip

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def model(near_identity_file) -> Path:
    return near_identity_file(2)


def _notices(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("esrgan-video: wrote")]


def _bmp_bits(path: Path) -> int:
    data = path.read_bytes()
    assert data[:2] == b"BM"
    return struct.unpack("<H", data[28:30])[0]


@pytest.mark.parametrize("pix_fmt,bits", [("yuv420p10le", 10), ("yuv444p12le", 12)])
def test_a_deep_video_frame_into_a_bmp_says_the_depth_in_user_terms(tmp_path, capfd, model, pix_fmt, bits):
    src = make_clip(tmp_path / "deep.mkv", codec="ffv1", pix_fmt=pix_fmt, frames=1)
    dst = tmp_path / "one.bmp"
    p = run_cli(capfd, src, dst, "--model", model)
    assert p.returncode == 0, p.stderr
    assert _notices(p.stderr) == [f"esrgan-video: {dst}: BMP holds 8 bits per channel; the {bits}-bit video's frame "
                                  f"is rounded to 8 (.png and .tiff keep its {bits} bits, in 16-bit samples)"], p.stderr
    assert _bmp_bits(dst) == 24


def test_a_16_bit_still_into_an_8_bit_format_names_the_format(tmp_path, capfd, model):
    src = tmp_path / "deep.png"
    write_image(src, skimage.data.astronaut()[100:132, 150:190].astype(np.uint16) * 257, None, 16)
    for ext, name in ((".bmp", "BMP"), (".jpg", "JPEG"), (".webp", "WebP")):
        dst = tmp_path / f"out{ext}"
        p = run_cli(capfd, src, dst, "--model", model)
        assert p.returncode == 0, p.stderr
        assert _notices(p.stderr) == [f"esrgan-video: {dst}: {name} holds 8 bits per channel; the 16-bit image is "
                                      "rounded to 8 (.png and .tiff keep 16)"], p.stderr
