"""A grey (1 → 1) model on a grey still runs once per tile batch, on one channel, not on each of R, G and B (the
still goes to the model as R = G = B): the written image is bit for bit the old path's (the model on each channel,
``stills._upscale`` without ``grey`` on 16-bit samples, then the same luma), with a third of the model calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from esrgan_video import stills
from esrgan_video.testing import near_identity_model
from esrgan_video.upscaler import Upscaler
from esrgan_video.video.images import image_meta, read_image, write_image

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def grey_up():
    model = near_identity_model(2, nf=8, nb=1, gc=4, in_nc=1, noise=0.2)
    calls: list[int] = []
    model.register_forward_hook(lambda *_: calls.append(1))  # the backend's deep copy keeps this same hook
    with Upscaler(model, backend="torch", device="cpu", tile=16, tile_pad=4) as up:
        up.calls = calls
        yield up


def _old_path(up: Upscaler, src: Path, dst: Path) -> None:
    """What upscale_image wrote before: the grey still as RGB, the model on each channel, then the luma."""
    meta = image_meta(src)
    grey, alpha, bits = read_image(src, keep_grey=True, meta=meta)
    h, w = grey.shape
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if rgb.dtype == np.uint8:  # a 16-bit result for the luma, as before (code × 257: the model sees the same values)
        rgb = rgb.astype(np.uint16) * 257
        alpha = None if alpha is None else alpha.astype(np.uint16) * 257
    big, big_alpha = stills._upscale(up, rgb, alpha, (w, h), (2 * w, 2 * h))
    write_image(dst, *stills._to_grey(big, big_alpha, bits), bits, meta)


@pytest.mark.parametrize("case", ["png8", "png16", "png8_alpha", "jpeg_out"])
def test_a_grey_model_runs_once_on_a_grey_still_with_the_old_output(grey_up: Upscaler, tmp_path: Path,
                                                                    case: str) -> None:
    import skimage.data

    grey = np.ascontiguousarray(skimage.data.camera()[100:136, 210:250])  # 36×40: several 16-pixel tiles
    h, w = grey.shape
    alpha = np.tile(np.linspace(0, 255, w).round().astype(np.uint8), (h, 1)) if case == "png8_alpha" else None
    if case == "png16":
        grey = grey.astype(np.uint16) * 257 + (np.arange(h * w).reshape(h, w) % 251).astype(np.uint16)
    src = tmp_path / "in.png"
    write_image(src, grey, alpha, 16 if case == "png16" else 8)
    ext = ".jpg" if case == "jpeg_out" else ".png"  # JPEG: no grey, the luma as R = G = B
    grey_up.calls.clear()
    stills.upscale_image(src, tmp_path / f"new{ext}", upscaler=grey_up)
    once = len(grey_up.calls)
    grey_up.calls.clear()
    _old_path(grey_up, src, tmp_path / f"old{ext}")
    thrice = len(grey_up.calls)
    tiles = grey_up.plan(h, w).count
    extra = tiles if alpha is not None else 0  # the alpha plane: upscaled as grey, once, on both paths
    assert tiles > 1 and (once, thrice) == (tiles + extra, 3 * tiles + extra), case
    new, new_alpha, new_bits = read_image(tmp_path / f"new{ext}", keep_grey=True)
    old, old_alpha, old_bits = read_image(tmp_path / f"old{ext}", keep_grey=True)
    assert new.shape[:2] == (2 * h, 2 * w) and new_bits == old_bits and new.dtype == old.dtype
    assert np.array_equal(new, old), case
    assert (new_alpha is None) == (alpha is None) and (alpha is None or np.array_equal(new_alpha, old_alpha))
    assert new.astype(float).std() > 10  # a picture, not a blank
