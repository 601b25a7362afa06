"""Colour exactness across the faces' paths (frames/color.py, video/planes.py), on real files made with PyAV.

* An untagged grey picture: one rule (``ColorSpec.resolved``) decides its matrix and range, the one the still path
  uses (BT.709 luma, full range), so the same grey picture as a PNG and as a one-frame video gives the same pixels
  (within the one code a still's 16-bit intermediate can round differently).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from esrgan_video.frames.color import MATRIX_KR_KB, ColorSpec, Matrix
from esrgan_video.frames.pixel_formats import pixel_format
from esrgan_video.stills import GREY_WEIGHTS
from esrgan_video.testing import run_cli

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _grey_picture() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.camera()[100:148, 200:264])  # 64 x 48, SD: the mpv rule would say BT.601


@pytest.mark.parametrize("name", ["gray", "gray10le", "gray16le"])
@pytest.mark.parametrize("size", [(64, 48), (720, 576), (1920, 1080)])
def test_untagged_grey_resolves_to_the_still_paths_luma(name, size):
    spec = ColorSpec().resolved(*size, pixel_format(name))
    assert spec.matrix == Matrix.BT709 and spec.full_range is True
    kr, kb = MATRIX_KR_KB[spec.matrix]
    assert (kr, 1 - kr - kb, kb) == pytest.approx(GREY_WEIGHTS, abs=1e-12)
    # a tag is kept
    assert ColorSpec(matrix=6, full_range=False).resolved(*size, pixel_format(name)).matrix == Matrix.SMPTE170M


def test_grey_still_and_one_frame_grey_video_give_the_same_pixels(tmp_path, near_identity_file, capfd):
    """An untagged grey PNG and the same picture as an untagged one-frame gray FFV1 file, upscaled by a model whose
    R, G and B differ (so the luma weights matter): the same grey output (it was BT.601 luma for SD video)."""
    img = _grey_picture()
    model = near_identity_file(2, noise=0.6, seed=3)
    png, mkv = tmp_path / "g.png", tmp_path / "g.mkv"
    Image.fromarray(img).save(png)
    with av.open(str(mkv), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], "gray"
        c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="gray")))
        c.mux(s.encode())
    for src, dst, extra in ((png, tmp_path / "o.png", ()), (mkv, tmp_path / "o.mkv", ("--codec", "ffv1"))):
        p = run_cli(capfd, src, dst, "--model", model, "--device", "cpu", "-q", *extra)
        assert p.returncode == 0, p.stderr
    still = np.asarray(Image.open(tmp_path / "o.png"))
    with av.open(str(tmp_path / "o.mkv")) as c:
        frame = next(c.decode(video=0))
        assert frame.format.name == "gray"
        video = frame.to_ndarray()
    assert still.shape == video.shape == (96, 128)
    diff = np.abs(still.astype(int) - video)
    assert diff.max() <= 1 and (diff != 0).mean() < 0.02, (diff.max(), (diff != 0).mean())
