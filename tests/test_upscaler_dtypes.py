"""A frame of a dtype the ``Upscaler`` does not take is one InputError naming the dtype and what it takes, with the
conversion that keeps the values where they fit (an int64 array, what ``np.array`` of Python ints gives, said only
"expected uint8, uint16 or float"; NumPy's float128 was a ValueError from the plane copy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from esrgan_video.errors import InputError
from esrgan_video.testing import near_identity_model
from esrgan_video.upscaler import Upscaler

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TAKES = ("the Upscaler takes uint8 (codes 0-255), uint16 (0-65535; int16 or int32 holding such codes), or floats in "
         "[0, 1] (float16, float32, float64; a tensor also bfloat16)")


@pytest.fixture(scope="module")
def up():
    return Upscaler(near_identity_model(2, nf=4, nb=1, gc=2), device="cpu", backend="torch")


@pytest.mark.parametrize("frames, said", [
    (np.full((4, 4, 3), 200, np.int64), "int64; " + TAKES + "; its values (200 to 200) fit uint8: frames.astype(np.uint8)"),
    (np.full((4, 4), 4000, np.int64), "int64; " + TAKES + "; its values (4000 to 4000) fit uint16: frames.astype(np.uint16)"),
    (np.full((4, 4, 4), -3, np.int64), "int64; " + TAKES + "; its values run from -3 to -3, beyond the codes 0-65535"),
    (np.full((4, 4, 3), 9, ">i8"), "int64; " + TAKES + "; its values (9 to 9) fit uint8: frames.astype(np.uint8)"),
    pytest.param(np.zeros((4, 4, 3), np.longdouble), f"{np.dtype(np.longdouble).name}; " + TAKES,
                 marks=pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is float64 here")),
    (np.zeros((4, 4, 3), bool), "bool; " + TAKES + "; True/False are not codes: scale them to codes first"),
    (torch.full((1, 3, 4, 4), 7, dtype=torch.int64), "int64; " + TAKES + "; its values (7 to 7) fit uint8: "
                                                     "frames.to(torch.uint8)"),
    (torch.full((1, 4, 4), 7, dtype=torch.int64), "int64; " + TAKES + "; its values (7 to 7) fit uint8: "
                                                  "frames.to(torch.uint8)"),  # grey goes by way of NumPy: torch's words
    (torch.zeros(1, 3, 4, 4, dtype=torch.complex64), "complex64; " + TAKES),
])
def test_an_unsupported_dtype_is_named_with_what_is_taken(up, frames, said):
    with pytest.raises(InputError) as e:
        up.upscale(frames)
    assert str(e.value) == f"unsupported frame dtype {said}"


def test_the_dtypes_it_takes_still_run(up):
    for dtype in (np.uint8, np.uint16, np.int16, np.int32, np.float16, np.float32, np.float64):
        assert up.upscale(np.zeros((4, 4, 3), dtype)).dtype == dtype
    for dtype in (torch.uint8, torch.int32, torch.bfloat16, torch.float32):
        assert up.upscale(torch.zeros(1, 3, 4, 4, dtype=dtype)).dtype == dtype
