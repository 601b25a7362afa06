"""Network interpolation: θ = (1 − α)·θ_A + α·θ_B through load_model(blend=...)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from esrgan_video import load_model
from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams
from esrgan_video.errors import ModelError
from esrgan_video.models.interpolate import parse_blend
from esrgan_video.testing import near_identity_model

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def save(path: Path, model: torch.nn.Module) -> Path:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    a = save(tmp_path / "a.safetensors", near_identity_model(4, nf=8, nb=2, gc=4, noise=0.3, seed=1))
    b = save(tmp_path / "b.safetensors", near_identity_model(4, nf=8, nb=2, gc=4, noise=0.3, seed=2))
    return a, b


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_blend_is_the_linear_interpolation_of_the_weights(pair: tuple[Path, Path]) -> None:
    a, b = pair
    wa, wb = weights(load_model(a)), weights(load_model(b))
    blended = load_model(a, blend=(str(b), 0.3))
    for k, v in weights(blended).items():
        assert torch.allclose(v, 0.7 * wa[k] + 0.3 * wb[k], atol=1e-7), k
    assert blended.info.name == "a.safetensors+b.safetensors@0.3"
    assert blended.info.sha256 not in (load_model(a).info.sha256, load_model(b).info.sha256)
    # the string form gives the same model
    assert load_model(a, blend=f"{b}:0.3").info.sha256 == blended.info.sha256


def test_blend_0_and_1_give_a_and_b_exactly(pair: tuple[Path, Path]) -> None:
    a, b = pair
    x = torch.rand(1, 3, 8, 8)
    for alpha, expected in ((0.0, a), (1.0, b)):
        blended = load_model(a, blend=(str(b), alpha))
        ref = load_model(expected)
        assert blended.info.sha256 == ref.info.sha256
        with torch.no_grad():
            assert torch.equal(blended(x), ref(x))


def test_incompatible_models_name_both_and_the_first_mismatching_key(pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = pair
    wider = save(tmp_path / "wider.safetensors", RRDBNet(RRDBParams(nf=8, nb=2, gc=8)))
    with pytest.raises(ModelError, match=r"cannot blend a\.safetensors with wider\.safetensors: "
                                         r"body\.0\.rdb1\.conv1\.weight has shape \(4, 8, 3, 3\)"):
        load_model(a, blend=(str(wider), 0.5))
    deeper = save(tmp_path / "deeper.safetensors", RRDBNet(RRDBParams(nf=8, nb=3, gc=4)))
    with pytest.raises(ModelError, match=r"cannot blend a\.safetensors with deeper\.safetensors: body\.2\..* only in deeper"):
        load_model(a, blend=(str(deeper), 0.5))


def test_models_of_other_architectures_or_hyperparameters_say_what_each_is(pair: tuple[Path, Path],
                                                                           tmp_path: Path) -> None:
    """An RRDB blended with a compact model said only 'conv_first.weight exists only in a.safetensors'; two of one
    architecture that are not one network said their first differing key, and an x2/x3 pair of the same keys the
    raw RRDBParams(...) reprs. Each now says what both models are, as 'esrgan-video blend' does."""
    from esrgan_video.arch import CompactParams, SRVGGNetCompact

    a, _ = pair
    compact = save(tmp_path / "compact.safetensors", SRVGGNetCompact(CompactParams(nf=8, num_conv=2, scale=4)))
    with pytest.raises(ModelError) as e:
        load_model(a, blend=(str(compact), 0.5))
    assert str(e.value) == ("cannot blend a.safetensors with compact.safetensors: ESRGAN x4 3->3, nf=8 nb=2 gc=4 vs "
                            "Compact x4 3->3, nf=8 num_conv=2 (network interpolation needs two models of one "
                            "architecture and size)")
    x2 = save(tmp_path / "x2.safetensors", near_identity_model(2, nf=8, nb=2, gc=4))
    with pytest.raises(ModelError, match=r"cannot blend a\.safetensors with x2\.safetensors: conv_first\.weight has "
                                         r"shape .* \(ESRGAN x4 3->3, nf=8 nb=2 gc=4 vs ESRGAN x2 3->3, nf=8 nb=2 gc=4 "
                                         r"unshuffle=2\)$"):
        load_model(a, blend=(str(x2), 0.5))


def test_blend_spec_validation() -> None:
    assert parse_blend("RealESRNet_x4plus:0.3") == ("RealESRNet_x4plus", 0.3)
    assert parse_blend(("C:/models/x.pth", 1)) == ("C:/models/x.pth", 1.0)
    assert parse_blend("C:/models/x.pth:0.25") == ("C:/models/x.pth", 0.25)
    for bad, message in (("RealESRNet_x4plus", "OTHER_MODEL:ALPHA"), ("x:abc", "not a number"),
                         ("x:1.5", "between 0 and 1"), (("x", -0.1), "between 0 and 1"), (("x",), "OTHER:ALPHA")):
        with pytest.raises(ModelError, match=message):
            parse_blend(bad)
