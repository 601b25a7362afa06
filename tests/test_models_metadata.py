"""The hyperparameters a model file this project writes records in its safetensors metadata: an x3 RRDB (the keys
of an x2) keeps its scale through ``esrgan-video blend`` and a fine-tune's save, whatever the file's name; a file
whose record contradicts its keys is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from esrgan_video import load_model
from esrgan_video.arch.rrdbnet import RRDBParams
from esrgan_video.errors import ModelError
from esrgan_video.models.checkpoints import HYPERPARAMETERS_KEY, save_safetensors
from esrgan_video.testing import near_identity_model, to_old_arch
from esrgan_video.train.blend import blend_models

pytestmark = pytest.mark.usefixtures("torch_one_thread")

X3 = RRDBParams(nf=8, nb=1, gc=4, scale=3, unshuffle=1)


def _old_arch_x3(path: Path, seed: int) -> Path:
    """A 2018-code x3 file (one up conv: the keys of an x2), named so that it loads as x3."""
    torch.save(to_old_arch(dict(near_identity_model(3, seed=seed, noise=0.2).state_dict())), path)
    return path


def _recorded(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()[HYPERPARAMETERS_KEY])


def test_a_blend_of_two_x3_models_loads_as_x3_whatever_its_name(tmp_path: Path) -> None:
    a, b = _old_arch_x3(tmp_path / "3x_A.pth", 1), _old_arch_x3(tmp_path / "3x_B.pth", 2)
    ma, mb = load_model(a), load_model(b)
    assert ma.params == mb.params == X3
    out = blend_models(str(a), str(b), 0.25, tmp_path / "mix.safetensors")  # a name that says no scale
    assert _recorded(out) == {"architecture": "ESRGAN", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4,
                              "scale": 3, "unshuffle": 1, "plus": False}
    mixed = load_model(out)
    assert mixed.params == X3 and mixed.info.scale == 3 and mixed.info.notices == ()
    x = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = mixed(x)
        assert y.shape == (1, 3, 15, 21)
        ref = load_model(a, blend=(str(b), 0.25))(x)  # the in-memory blend of the two x3 models
    assert torch.allclose(y, ref, atol=1e-6)
    # a name that says another scale: a notice, and the record and the weights decide
    named = out.rename(tmp_path / "2x_mix.safetensors")
    m2 = load_model(named)
    assert m2.scale == 3
    (notice,) = m2.info.notices
    assert "file name says x2" in notice and "metadata and weights make an x3" in notice and str(named) in notice


def test_a_fine_tune_style_save_keeps_x3_in_new_arch_keys(tmp_path: Path) -> None:
    net = near_identity_model(3, noise=0.1)
    path = save_safetensors(net.state_dict(), tmp_path / "final.safetensors", params=net.params)
    model = load_model(path)
    assert model.params == net.params == X3
    x = torch.rand(1, 3, 6, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(x), net(x))
    # without the record the same keys read as x2 (as before: nothing else can tell)
    save_file(dict(net.state_dict()), str(tmp_path / "bare.safetensors"))
    assert load_model(tmp_path / "bare.safetensors").scale == 2
    # x2 recorded on the same keys is x2, and a 3x name does not override the record
    x2 = RRDBParams(nf=8, nb=1, gc=4, scale=2, unshuffle=1)
    two = save_safetensors(net.state_dict(), tmp_path / "3x_two.safetensors", params=x2)
    assert load_model(two).params == x2 and "it runs at x2" in load_model(two).info.notices[0]


def test_a_record_that_contradicts_the_keys_is_refused_in_one_line(tmp_path: Path) -> None:
    x4 = near_identity_model(4)  # two up convs
    sd = {k: v.contiguous() for k, v in x4.state_dict().items()}
    bad = tmp_path / "bad.safetensors"
    save_file(sd, str(bad), metadata={HYPERPARAMETERS_KEY: json.dumps(
        {"architecture": "ESRGAN", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4, "scale": 3, "unshuffle": 1,
         "plus": False})})
    with pytest.raises(ModelError) as e:
        load_model(bad)
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg and "metadata records ESRGAN x3" in msg and "ESRGAN x4" in msg
    # the writer checks the same before writing, and writes nothing
    with pytest.raises(ModelError, match="metadata records ESRGAN x3.*weights make ESRGAN x4"):
        save_safetensors(sd, tmp_path / "never.safetensors", params=X3)
    assert not (tmp_path / "never.safetensors").exists()
    # another field (nb) that the keys contradict, and a record that is no record
    for text, words in ((json.dumps({"architecture": "ESRGAN", "nf": 8, "nb": 2, "gc": 4, "scale": 4}),
                         "metadata records ESRGAN x4 3->3, nf=8 nb=2"),
                        ("{not json", "metadata is unreadable"),
                        (json.dumps({"architecture": "Other", "scale": 4}), "metadata is unreadable"),
                        (json.dumps({"architecture": "ESRGAN", "scale": 4, "nf": 8.5}), "nf is 8.5, not an integer")):
        save_file(sd, str(bad), metadata={HYPERPARAMETERS_KEY: text})
        with pytest.raises(ModelError) as e:
            load_model(bad)
        assert words in str(e.value) and "\n" not in str(e.value) and str(bad) in str(e.value), (text, str(e.value))


def test_blend_refuses_an_x2_with_an_x3_of_the_same_keys(tmp_path: Path) -> None:
    a = _old_arch_x3(tmp_path / "3x_A.pth", 1)
    b = tmp_path / "B.pth"
    torch.save(torch.load(a), b)  # the same keys, no x3 in the name: x2
    with pytest.raises(ModelError, match=r"cannot blend 3x_A.pth with B.pth: ESRGAN x3 .* vs ESRGAN x2"):
        blend_models(str(a), str(b), 0.5, tmp_path / "mix.safetensors")
    assert not (tmp_path / "mix.safetensors").exists()
