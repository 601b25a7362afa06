"""A grey (1 → 1) model on a grey source runs once per tile batch, on the luma, not once per R, G and B.

R = G = B for a grey pixel format (gray, gray10le, gray12le, gray16le), so the three per-channel runs of
``model_on_rgb`` gave three equal results: the output must be bit for bit the old path's (the chain written out
with ``upscale_tensor`` on the RGB, as ``tests/test_transform.py`` writes it), with a third of the model calls.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import media
from esrgan_video.frames import color
from esrgan_video.frames.pixel_formats import pixel_format
from esrgan_video.frames.sizing import resize_rgb
from esrgan_video.frames.transform import FrameFormat, FrameTransform
from esrgan_video.testing import near_identity_model
from esrgan_video.upscaler import Upscaler

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def counted(model: torch.nn.Module) -> list[int]:
    """The model with a forward hook that counts its calls, registered before an Upscaler is made of it: the
    torch backend runs a deep copy of the network, whose hook is this same function (a function deep-copies as
    itself), so the list counts the backend's calls."""
    calls: list[int] = []
    model.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.fixture(scope="module")
def grey_up():
    model = near_identity_model(2, nf=8, nb=1, gc=4, in_nc=1, noise=0.2)
    calls = counted(model)
    with Upscaler(model, backend="torch", device="cpu", tile=16, tile_pad=4) as up:
        up.calls = calls
        yield up


def fmt_of(name: str, width: int, height: int) -> FrameFormat:
    f = pixel_format(name)
    return FrameFormat(f, color.ColorSpec().resolved(width, height, f))


def old_path(up: Upscaler, planes, fmt: FrameFormat, out_size) -> list[np.ndarray]:
    """The chain with the model on each of R, G and B (``upscale_tensor`` without ``grey``)."""
    with torch.inference_mode():
        t = [torch.from_numpy(np.ascontiguousarray(p)) for p in planes]
        rgb = color.planes_to_rgb(t, fmt.pixel_format, fmt.color)
        y = resize_rgb(up.upscale_tensor(rgb), *out_size)
        return [p.numpy() for p in color.rgb_to_planes(y, fmt.pixel_format, fmt.color)]


@pytest.mark.parametrize("name", ["gray", "gray10le", "gray12le", "gray16le"])
def test_grey_model_on_grey_frames_runs_once_with_the_old_output(grey_up: Upscaler, name: str) -> None:
    w, h = 40, 36  # tile 16, pad 4: several tiles, one a batch (the CPU batch)
    fmt = fmt_of(name, w, h)
    planes = media.frame_planes(name, (w, h), 2)
    tr = FrameTransform(grey_up, src=fmt, dst=fmt, in_size=(w, h))
    grey_up.calls.clear()
    got = tr(planes)
    once = len(grey_up.calls)
    grey_up.calls.clear()
    want = old_path(grey_up, planes, fmt, (w * 2, h * 2))
    thrice = len(grey_up.calls)
    tiles = grey_up.plan(h, w).count
    assert tiles > 1 and (once, thrice) == (tiles, 3 * tiles)
    assert [p.shape for p in got] == [(h * 2, w * 2)]
    assert got[0].dtype == want[0].dtype and np.array_equal(got[0], want[0])
    assert np.abs(got[0].astype(float)).mean() > 0  # the model did something to compare


def test_upscale_tensor_grey_is_the_per_channel_result_and_only_for_grey_models(grey_up: Upscaler) -> None:
    g = torch.rand(2, 1, 12, 16, generator=torch.Generator().manual_seed(5))
    rgb = g.expand(-1, 3, -1, -1).contiguous()
    with torch.inference_mode():
        assert torch.equal(grey_up.upscale_tensor(rgb, grey=True), grey_up.upscale_tensor(rgb))
    # a 3-channel model on the same frames: grey changes nothing (its one call already sees R, G and B)
    model = near_identity_model(2, nf=8, nb=1, gc=4)
    calls = counted(model)
    with Upscaler(model, backend="torch", device="cpu") as up:
        with torch.inference_mode():
            a = up.upscale_tensor(rgb, grey=True)
            n = len(calls)
            b = up.upscale_tensor(rgb)
        assert torch.equal(a, b) and n > 0 and len(calls) == 2 * n
