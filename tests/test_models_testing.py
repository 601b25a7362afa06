"""esrgan_video.testing.near_identity_model: close to an upscaled copy of the input, and not degenerate."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams
from esrgan_video.testing import near_identity_model, psnr

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def box_then_nearest(x: torch.Tensor, scale: int, unshuffle: int) -> torch.Tensor:
    """What the noise-free model computes: average each unshuffle block, then nearest-upscale."""
    if unshuffle > 1:
        x = F.avg_pool2d(x, unshuffle)
        return F.interpolate(x, scale_factor=4, mode="nearest")
    return F.interpolate(x, scale_factor=scale, mode="nearest")


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_close_to_an_upscaled_copy_and_not_degenerate(scale: int, sample_photo_crop: torch.Tensor) -> None:
    x = sample_photo_crop
    model = near_identity_model(scale)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    with torch.no_grad():
        y = model(x)
        exact = near_identity_model(scale, noise=0)(x)
    assert y.shape == (1, 3, 32 * scale, 32 * scale)
    unshuffle = RRDBParams(scale=scale).unshuffle
    # noise=0 is exactly the (box-)nearest upscale
    assert torch.allclose(exact, box_then_nearest(x, scale, unshuffle), atol=1e-6)
    # the default noise keeps it close but not identical
    assert 30 < psnr(y, exact) < 80
    if scale in (4, 8):
        assert psnr(y, F.interpolate(x, scale_factor=scale, mode="nearest")) > 30
    assert (y == 0).float().mean() < 0.01 and (y == 1).float().mean() < 0.01


def test_random_init_is_degenerate_which_is_why_this_exists(sample_photo_crop: torch.Tensor) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        y = RRDBNet(RRDBParams(nf=8, nb=1, gc=4)).eval()(sample_photo_crop)
        z = near_identity_model(4)(sample_photo_crop)
    assert psnr(y, F.interpolate(sample_photo_crop, scale_factor=4)) < 15
    assert psnr(z, F.interpolate(sample_photo_crop, scale_factor=4)) > 30


def test_saved_copy_loads_with_the_same_identity(tmp_path) -> None:
    from safetensors.torch import save_file

    from esrgan_video import load_model

    model = near_identity_model(2, seed=3)
    save_file(dict(model.state_dict()), str(tmp_path / "m.safetensors"))
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.info.sha256 == model.info.sha256 and loaded.params == model.params


def test_seed_and_options() -> None:
    a, b, c = near_identity_model(seed=1), near_identity_model(seed=1), near_identity_model(seed=2)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.conv_first.weight, c.conv_first.weight)
    # .info like load_model's, with the same weight identity a saved copy gets
    assert a.info.sha256 == b.info.sha256 != c.info.sha256
    assert a.info.params == a.params and a.info.scale == 4
    m = near_identity_model(4, nf=16, nb=2, gc=8, in_nc=1)
    assert m.params == RRDBParams(in_nc=1, out_nc=1, nf=16, nb=2, gc=8, scale=4)
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        assert psnr(m(x), F.interpolate(x, scale_factor=4)) > 30
    with torch.no_grad():  # x3: the old ESRGAN code's one nearest-x3 stage
        y = torch.rand(1, 3, 8, 8)
        assert psnr(near_identity_model(3)(y), F.interpolate(y, scale_factor=3)) > 30
    with pytest.raises(ValueError, match="scale"):
        near_identity_model(5)
    with pytest.raises(ValueError, match="nf"):
        near_identity_model(4, nf=2)
