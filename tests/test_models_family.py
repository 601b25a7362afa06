"""Every ESRGAN-family checkpoint shape spandrel 0.4.2 loads, and the compact model, on random weights of that
shape: detected hyperparameters, the descriptor, and output equality with spandrel (≤ 1e-5, unclamped, so a
wrong layer cannot hide behind the clamp). Layouts: new-arch, old-arch, BSRGAN names, safetensors and .pth."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from esrgan_video import load_model
from esrgan_video.arch import CompactParams, RRDBNet, RRDBParams, SRVGGNetCompact
from esrgan_video.errors import ModelError
from esrgan_video.models import describe
from esrgan_video.models.detection import detect_params
from esrgan_video.testing import to_bsrgan_names, to_old_arch

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TOLERANCE = 1e-5


def random_model(params, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = (RRDBNet if isinstance(params, RRDBParams) else SRVGGNetCompact)(params, clamp=False).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.05, 0.05)
            elif p.ndim == 1:  # PReLU slopes: per channel, some negative
                p.uniform_(-0.3, 0.6)
    return net


def spandrel_load(sd: dict[str, torch.Tensor]):
    import spandrel

    desc = spandrel.ModelLoader().load_from_state_dict({k: v.clone() for k, v in sd.items()})
    desc.model.eval()
    return desc


# gc=32 wherever spandrel takes part: its ESRGAN hard-codes it
RRDB_CASES = {
    "x1 old-arch restoration (no up conv)": RRDBParams(scale=1, unshuffle=1, nf=8, nb=1),
    "x1 Real-ESRGAN (unshuffle 4)": RRDBParams(scale=1, nf=8, nb=1),
    "x2 one up conv": RRDBParams(scale=2, unshuffle=1, nf=8, nb=1),
    "x2 Real-ESRGAN (unshuffle 2)": RRDBParams(scale=2, nf=8, nb=1),
    "x4 unshuffle 2, three up convs": RRDBParams(scale=4, unshuffle=2, nf=8, nb=1),
    "x4": RRDBParams(scale=4, nf=8, nb=2),
    "x8": RRDBParams(scale=8, nf=8, nb=1),
    "x16": RRDBParams(scale=16, nf=4, nb=1),
    "x4 grey 1->1": RRDBParams(scale=4, nf=8, nb=1, in_nc=1, out_nc=1),
    "x4 RGBA 4->4": RRDBParams(scale=4, nf=8, nb=1, in_nc=4, out_nc=4),
    "x2 grey->RGB 1->3": RRDBParams(scale=2, unshuffle=1, nf=8, nb=1, in_nc=1, out_nc=3),
    "x1 RGB->grey 3->1": RRDBParams(scale=1, unshuffle=1, nf=8, nb=1, in_nc=3, out_nc=1),
    "x2 grey, unshuffle 2": RRDBParams(scale=2, nf=8, nb=1, in_nc=1, out_nc=1),
    "ESRGAN+ x4": RRDBParams(scale=4, nf=8, nb=1, plus=True),
    "ESRGAN+ x1 old-arch": RRDBParams(scale=1, unshuffle=1, nf=8, nb=2, plus=True),
}


@pytest.mark.parametrize("case", list(RRDB_CASES))
def test_esrgan_family_matches_spandrel(tmp_path: Path, case: str) -> None:
    p = RRDB_CASES[case]
    net = random_model(p, seed=len(case))
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    old = to_old_arch(sd)
    # spandrel reads the old-arch layout (its own) and, except for ESRGAN+, the new one
    theirs = spandrel_load(old)
    assert (theirs.scale, theirs.input_channels, theirs.output_channels) == (p.scale, p.in_nc, p.out_nc)
    x = torch.rand(1, p.in_nc, 8, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = theirs.model(x)
    assert ref.shape == (1, p.out_nc, 8 * p.scale, 12 * p.scale)
    layouts = {"new": sd, "old": old, "bsrgan": to_bsrgan_names(sd)}
    for layout, obj in layouts.items():
        assert detect_params(_canonical(obj), layout) == p, layout
        for suffix in (".pth", ".safetensors"):
            path = tmp_path / f"{layout}{suffix}"
            torch.save(obj, path) if suffix == ".pth" else save_file(obj, str(path))
            model = load_model(path)
            assert model.params == p, (layout, suffix)
            d = model.info.descriptor
            assert d == describe(model)
            assert (d.architecture, d.scale, d.in_channels, d.out_channels, d.size_multiple) == (
                "ESRGAN", p.scale, p.in_nc, p.out_nc, p.unshuffle)
            model.clamp = False
            with torch.no_grad():
                out = model(x)
            assert (out - ref).abs().max() <= TOLERANCE, (layout, suffix)
    assert ref.abs().mean() > 1e-3  # a model that does something, so equality means something


def _canonical(obj: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from esrgan_video.models.esrgan import to_new_arch

    return to_new_arch(obj, "test")


COMPACT_CASES = {
    "x4 (animevideov3 shape, smaller)": CompactParams(nf=8, num_conv=4, scale=4),
    "x2": CompactParams(nf=8, num_conv=2, scale=2),
    "x1": CompactParams(nf=8, num_conv=1, scale=1),
    "x3": CompactParams(nf=4, num_conv=1, scale=3),
    "x2 grey": CompactParams(nf=8, num_conv=2, scale=2, in_nc=1, out_nc=1),
    "x2 RGBA": CompactParams(nf=8, num_conv=2, scale=2, in_nc=4, out_nc=4),
    "x4 grey in, RGB out": CompactParams(nf=8, num_conv=1, scale=4, in_nc=1, out_nc=3),
}


@pytest.mark.parametrize("case", list(COMPACT_CASES))
def test_compact_matches_spandrel(tmp_path: Path, case: str) -> None:
    p = COMPACT_CASES[case]
    net = random_model(p, seed=len(case))
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    theirs = spandrel_load(sd)
    assert (theirs.scale, theirs.input_channels, theirs.output_channels) == (p.scale, p.in_nc, p.out_nc)
    x = torch.rand(1, p.in_nc, 9, 7, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = theirs.model(x)
    assert detect_params(sd, case) == p
    # Real-ESRGAN saves compact models under "params"; also flat safetensors
    torch.save({"params": sd}, tmp_path / "m.pth")
    save_file(sd, str(tmp_path / "m.safetensors"))
    for path in (tmp_path / "m.pth", tmp_path / "m.safetensors"):
        model = load_model(path)
        assert model.params == p and isinstance(model, SRVGGNetCompact)
        d = describe(model)
        assert (d.architecture, d.scale, d.in_channels, d.out_channels, d.size_multiple) == (
            "Compact", p.scale, p.in_nc, p.out_nc, 1)
        assert d.receptive_radius == d.tile_pad == p.num_conv + 2
        model.clamp = False
        with torch.no_grad():
            out = model(x)
        assert out.shape == ref.shape
        assert (out - ref).abs().max() <= TOLERANCE, path.suffix


class _OldRDB(torch.nn.Module):
    """The 2018 ESRGAN code's ResidualDenseBlock_5C (``block.py``): conv blocks as Sequential(conv, LeakyReLU)."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        for i in range(1, 6):
            conv = torch.nn.Conv2d(nf + (i - 1) * gc, gc if i < 5 else nf, 3, 1, 1)
            act = [torch.nn.LeakyReLU(0.2)] if i < 5 else []
            setattr(self, f"conv{i}", torch.nn.Sequential(conv, *act))

    def forward(self, x):
        x1 = self.conv1(x)
        x2 = self.conv2(torch.cat((x, x1), 1))
        x3 = self.conv3(torch.cat((x, x1, x2), 1))
        x4 = self.conv4(torch.cat((x, x1, x2, x3), 1))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5.mul(0.2) + x


class _OldRRDB(torch.nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.RDB1, self.RDB2, self.RDB3 = _OldRDB(nf, gc), _OldRDB(nf, gc), _OldRDB(nf, gc)

    def forward(self, x):
        return self.RDB3(self.RDB2(self.RDB1(x))).mul(0.2) + x


class _Shortcut(torch.nn.Module):
    def __init__(self, sub: torch.nn.Module) -> None:
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return x + self.sub(x)


class OldArchX3(torch.nn.Module):
    """The 2018 ESRGAN code's ``RRDBNet(upscale=3)`` (``architecture.py``), written out: fea_conv, the shortcut
    around nb RRDBs + LR_conv, ONE ``upconv_blcok(nf, nf, 3)`` (nn.Upsample(scale_factor=3) + conv + LeakyReLU),
    HR_conv0 + LeakyReLU, HR_conv1, flattened into ``model`` as B.sequential does: model.0, model.1.sub.*, model.3,
    model.5, model.7, the keys of an x2 model."""

    def __init__(self, nf: int = 8, nb: int = 2, gc: int = 32, in_nc: int = 3, out_nc: int = 3) -> None:
        super().__init__()
        conv = lambda a, b: torch.nn.Conv2d(a, b, 3, 1, 1)  # noqa: E731
        trunk = torch.nn.Sequential(*[_OldRRDB(nf, gc) for _ in range(nb)], conv(nf, nf))
        self.model = torch.nn.Sequential(
            conv(in_nc, nf), _Shortcut(trunk),
            torch.nn.Upsample(scale_factor=3, mode="nearest"), conv(nf, nf), torch.nn.LeakyReLU(0.2),
            conv(nf, nf), torch.nn.LeakyReLU(0.2), conv(nf, out_nc))

    def forward(self, x):
        return self.model(x)


def test_old_arch_x3_runs_like_the_2018_code_when_its_file_name_says_x3(tmp_path: Path) -> None:
    torch.manual_seed(3)
    ref_net = OldArchX3().eval()
    with torch.no_grad():
        for name, p in ref_net.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.05, 0.05)
    sd = {k: v.clone() for k, v in ref_net.state_dict().items()}
    assert {"model.3.weight", "model.5.weight", "model.7.weight"} <= set(sd) and "model.8.weight" not in sd
    assert spandrel_load(sd).scale == 2  # the keys alone: spandrel 0.4.2 (and our loader) read x2
    x = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = ref_net(x)
    assert ref.shape == (1, 3, 21, 27) and ref.abs().mean() > 1e-3
    for name in ("3x_Old.pth", "Old_x3.safetensors", "3xOld.pth"):
        path = tmp_path / name
        torch.save(sd, path) if path.suffix == ".pth" else save_file(sd, str(path))
        model = load_model(path)
        assert model.params == RRDBParams(scale=3, unshuffle=1, nf=8, nb=2, gc=32), name
        assert describe(model).scale == 3 and model.info.scale == 3
        assert len(model.info.notices) == 1 and str(path) in model.info.notices[0], model.info.notices
        assert "runs at x3" in model.info.notices[0] and "\n" not in model.info.notices[0]
        model.clamp = False
        with torch.no_grad():
            out = model(x)
        assert out.shape == ref.shape
        assert (out - ref).abs().max() <= TOLERANCE, name
    # no hint: the keys' x2, silently; a wrong hint: a notice, and still the keys' x2
    torch.save(sd, tmp_path / "Old.pth")
    plain = load_model(tmp_path / "Old.pth")
    assert plain.scale == 2 and plain.info.notices == ()
    torch.save(sd, tmp_path / "4x_Old.pth")
    wrong = load_model(tmp_path / "4x_Old.pth")
    assert wrong.scale == 2 and wrong.params == plain.params
    (notice,) = wrong.info.notices
    assert "file name says x4" in notice and "it runs at x2" in notice and str(tmp_path / "4x_Old.pth") in notice
    # new-arch keys with one up conv are no old-arch file: the name does not make them x3
    torch.save(dict(plain.state_dict()), tmp_path / "3x_new_arch.pth")
    new = load_model(tmp_path / "3x_new_arch.pth")
    assert new.scale == 2 and "file name says x3" in new.info.notices[0]


@pytest.mark.parametrize("act", ["relu", "leakyrelu"])
def test_relu_and_leakyrelu_compact_models_are_refused_as_spandrel_does_in_one_line(tmp_path: Path, capfd,
                                                                                   act: str) -> None:
    import media
    import spandrel
    from spandrel.architectures.Compact import Compact

    from esrgan_video.testing import run_cli

    # Real-ESRGAN's SRVGGNetCompact(act_type=relu|leakyrelu): no PReLU slopes, so nothing in the file says which
    sd = Compact(num_feat=8, num_conv=4, upscale=2, act_type=act).state_dict()
    assert set(sd) == {f"body.{i}.{k}" for i in range(0, 11, 2) for k in ("weight", "bias")}
    with pytest.raises(spandrel.UnsupportedModelError):
        spandrel.ModelLoader().load_from_state_dict(sd)
    path = tmp_path / f"{act}_compact.pth"
    torch.save({"params": sd}, path)
    with pytest.raises(ModelError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    assert ("without PReLU weights (6 convs [body.0, body.2, body.4, body.6 and 2 more], no body.1.weight): its "
            "activation (ReLU or LeakyReLU) cannot be told from the weights") in message
    src = media.make_clip(tmp_path / "in.mp4", size=(16, 16), frames=1)
    p = run_cli(capfd, src, tmp_path / "out.mp4", "--model", path)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 4 and lines == [f"esrgan-video: error: {message}"], p.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_flops_follow_the_structure() -> None:
    # realesr-animevideov3: 9 * (3*64 + 16*64*64 + 64*48) MACs per input pixel; ~9x cheaper than anime 6B
    # and ~29x cheaper than x4plus, as the issue states
    compact = describe(SRVGGNetCompact(CompactParams()))
    assert compact.macs_per_input_pixel == 9 * (3 * 64 + 16 * 64 * 64 + 64 * 48)
    anime = describe(RRDBNet(RRDBParams(nb=6)))
    x4plus = describe(RRDBNet(RRDBParams()))
    assert 9 < anime.flops_per_input_pixel / compact.flops_per_input_pixel < 9.5
    assert 28.5 < x4plus.flops_per_input_pixel / compact.flops_per_input_pixel < 29.5
    # count the MACs of the real convolutions with hooks, for every family member with a different structure
    for net in (RRDBNet(RRDBParams(scale=1, unshuffle=1, nf=8, nb=1, gc=4, plus=True)),
                RRDBNet(RRDBParams(scale=2, nf=8, nb=1, gc=4)), RRDBNet(RRDBParams(scale=16, nf=4, nb=1, gc=4)),
                RRDBNet(RRDBParams(scale=3, nf=8, nb=1, gc=4)),
                SRVGGNetCompact(CompactParams(nf=8, num_conv=3, scale=3))):
        assert describe(net).macs_per_input_pixel == _hooked_macs(net, 16, 16) // (16 * 16), net.params


def _hooked_macs(net: torch.nn.Module, h: int, w: int) -> int:
    total = 0

    def hook(mod, _inp, out):
        nonlocal total
        total += out.shape[-2] * out.shape[-1] * mod.out_channels * mod.in_channels * mod.kernel_size[0] ** 2

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.rand(1, net.params.in_nc, h, w))
    for handle in handles:
        handle.remove()
    return total


def test_receptive_radius_is_what_a_pixel_reaches() -> None:
    # one changed input pixel changes outputs exactly up to the radius (compact), and not beyond it
    p = CompactParams(nf=4, num_conv=3, scale=2)
    net = random_model(p, seed=5)
    x = torch.rand(1, 3, 1, 31)
    y = x.clone()
    y[..., 15] += 0.5
    with torch.no_grad():
        changed = (net(x) - net(y)).abs().amax(dim=(0, 1, 2)) > 0
    cols = changed.nonzero().flatten() // 2  # output column -> input column
    assert int(cols.min()) == 15 - describe(net).receptive_radius and int(cols.max()) == 15 + describe(net).receptive_radius


def test_detection_failures_list_what_was_found(tmp_path: Path) -> None:
    sd = dict(random_model(RRDBParams(scale=4, nf=8, nb=1), 0).state_dict())
    old = to_old_arch(sd)
    # old-arch with its HR conv renumbered: the indices found are listed
    bad = {("model.9" + k[len("model.8"):] if k.startswith("model.8.") else k): v for k, v in old.items()}
    torch.save(bad, tmp_path / "bad_numbers.pth")
    with pytest.raises(ModelError, match=r"convs after the trunk are model\.3, model\.6, model\.9, model\.10"):
        load_model(tmp_path / "bad_numbers.pth")
    # one up conv after a pixel-unshuffle by 4 would be a scale of 1/2: what was read is named
    half = dict(random_model(RRDBParams(scale=2, unshuffle=1, nf=8, nb=1), 0).state_dict())
    half["conv_first.weight"] = torch.zeros(8, 48, 3, 3)  # 48 = 16 * 3: unshuffled by 4
    torch.save(half, tmp_path / "half.pth")
    with pytest.raises(ModelError, match=r"1 up-sampling convs with a pixel-unshuffle of 4 \(conv_first takes 48 "
                                         r"channels, conv_last gives 3\) is a scale of 2\*\*1/4"):
        load_model(tmp_path / "half.pth")
    # an unknown architecture: the first key under each top-level name, with its shape
    torch.save({"head.weight": torch.zeros(8, 3, 3, 3), "tail.0.weight": torch.zeros(3, 8, 3, 3)},
               tmp_path / "unknown.pth")
    with pytest.raises(ModelError) as info:
        load_model(tmp_path / "unknown.pth")
    assert "head.weight (8, 3, 3, 3)" in str(info.value) and "tail.0.weight (3, 8, 3, 3)" in str(info.value)
    assert "ESRGAN-family" in str(info.value) and "Compact" in str(info.value)
    # a compact model whose conv count does not fit its PReLUs
    c = dict(random_model(CompactParams(nf=4, num_conv=2, scale=2), 0).state_dict())
    del c["body.3.weight"]
    torch.save(c, tmp_path / "gap.pth")
    with pytest.raises(ModelError, match=r"missing \[body\.3\.weight\]"):
        load_model(tmp_path / "gap.pth")
