"""Every use of an ``Upscaler`` after ``close()`` is refused at the call, as a ``BackendError`` (a RuntimeError)
naming the method: "Upscaler.upscale: this Upscaler is closed ...". It was a bare RuntimeError from deep inside (the
backend cache's lookup, under a frame transform built for the call), and ``flush`` and a ``with`` block went on as if
nothing were wrong. What it knows without a backend (its plan for a size, its descriptor) stays readable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from esrgan_video.errors import BackendError
from esrgan_video.testing import near_identity_model
from esrgan_video.upscaler import Upscaler

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_every_public_method_says_the_upscaler_is_closed():
    up = Upscaler(near_identity_model(2, nf=4, nb=1, gc=2), device="cpu", backend="torch")
    up.upscale(np.zeros((8, 8, 3), np.uint8))
    up.close()
    up.close()  # a second close does nothing
    calls = {
        "upscale": lambda: up.upscale(np.zeros((8, 8, 3), np.uint8)),
        "upscale ": lambda: up.upscale(np.zeros((6, 10), np.uint16)),  # a kind of frame not seen before: new transform
        "upscale  ": lambda: up.upscale(torch.zeros(1, 3, 8, 8)),
        "upscale_tensor": lambda: up.upscale_tensor(torch.zeros(1, 3, 8, 8)),
        "prepare": lambda: up.prepare(8, 8),
        "backend_for": lambda: up.backend_for((8, 8)),
        "flush": up.flush,
        "__enter__": up.__enter__,
    }
    for name, call in calls.items():
        with pytest.raises(BackendError) as e:
            call()
        assert str(e.value) == (f"Upscaler.{name.strip()}: this Upscaler is closed (by its close(), or the end of "
                                "its with block); make a new Upscaler")
        assert isinstance(e.value, RuntimeError)
    assert up.plan(8, 8).count == 1 and up.descriptor.scale == 2 and up.backend_info is not None


def test_the_end_of_a_with_block_closes_it():
    with Upscaler(near_identity_model(2, nf=4, nb=1, gc=2), device="cpu", backend="torch") as up:
        assert up.upscale(np.zeros((4, 4, 3), np.uint8)).shape == (8, 8, 3)
    with pytest.raises(BackendError, match=r"^Upscaler\.upscale: this Upscaler is closed"):
        up.upscale(np.zeros((4, 4, 3), np.uint8))
