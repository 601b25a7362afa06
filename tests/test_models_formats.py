"""Checkpoint formats with small random-weight models: detection, every layout/wrapper/prefix/file type, spandrel
equality, and refusal of files that are not RRDB generators (including a pickle that would run code)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from esrgan_video import load_model
from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams
from esrgan_video.errors import ModelError
from esrgan_video.models.detection import detect_params
from esrgan_video.testing import near_identity_model, spandrel_output, to_bsrgan_names, to_old_arch

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def run(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def photo_like(h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 4, w // 4, generator=g)
    return (torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)
            + 0.05 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


# gc=32 everywhere spandrel takes part: spandrel's ESRGAN hard-codes it
SPANDREL_SHAPES = {
    1: RRDBParams(scale=1, nf=8, nb=1, gc=32),
    2: RRDBParams(scale=2, nf=8, nb=1, gc=32),
    4: RRDBParams(scale=4, nf=8, nb=2, gc=32),
    8: RRDBParams(scale=8, nf=8, nb=1, gc=32),
}


def model_sd(p: RRDBParams, seed: int = 0) -> dict[str, torch.Tensor]:
    m = near_identity_model(p.scale, nf=p.nf, nb=p.nb, gc=p.gc, in_nc=p.in_nc, noise=0.2, seed=seed)
    return {k: v.clone() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_each_scale_matches_spandrel_new_and_old_arch(tmp_path: Path, scale: int) -> None:
    p = SPANDREL_SHAPES[scale]
    sd = model_sd(p, seed=scale)
    x = photo_like(16, 16, seed=scale)
    ref = spandrel_output(sd, x)
    assert ref.shape[-1] == 16 * scale
    assert 0.01 < ref.mean() < 0.99  # a model that does something, so equality means something
    for layout, obj in (("new", sd), ("old", to_old_arch(sd))):
        path = tmp_path / f"{layout}.pth"
        torch.save(obj, path)
        model = load_model(path)
        assert model.params == p, layout
        assert model.scale == scale and model.info.scale == scale
        out = run(model, x)
        assert out.shape == ref.shape
        assert (out - ref).abs().max() <= 1e-5, layout


def test_old_arch_x4_and_x8_key_numbers() -> None:
    # the numbering spandrel itself uses: x4 up convs at model.3/6, HR at model.8, last at model.10;
    # x8 at model.3/6/9, HR at model.11, last at model.13
    from spandrel.architectures.ESRGAN import ESRGAN

    for scale, nb in ((4, 2), (8, 1)):
        sd = model_sd(SPANDREL_SHAPES[scale])
        mine = set(to_old_arch(sd))
        theirs = set(ESRGAN(num_filters=8, num_blocks=nb, scale=scale).state_dict())
        assert mine == theirs


def test_wrappers_prefixes_and_file_types_all_load_the_same_weights(tmp_path: Path) -> None:
    p = SPANDREL_SHAPES[4]
    sd = model_sd(p, seed=7)
    other = model_sd(p, seed=8)
    x = photo_like(16, 16, seed=3)
    ref = spandrel_output(sd, x)
    expected_sha = load_model(_save(tmp_path / "ref.safetensors", sd)).info.sha256
    variants: dict[str, object] = {
        "new": sd,
        "old-arch": to_old_arch(sd),
        "bsrgan-names": to_bsrgan_names(sd),
        "params_ema": {"params_ema": sd},
        "params": {"params": sd},
        "params_ema preferred over params": {"params": other, "params_ema": sd},
        "state_dict": {"state_dict": sd, "epoch": 12, "optimizer": {"lr": 1e-4}},
        "model": {"model": sd},
        "net": {"net": sd},
        "netG": {"netG": sd},
        "module. prefix": {f"module.{k}": v for k, v in sd.items()},
        "netG. prefix": {f"netG.{k}": v for k, v in sd.items()},
        "wrapped old-arch with module.": {"params_ema": {f"module.{k}": v for k, v in to_old_arch(sd).items()}},
        "netG beside netD": {"state_dict": {**{f"netG.{k}": v for k, v in sd.items()},
                                            "netD.conv0_0.weight": torch.zeros(8, 3, 3, 3)}},
    }
    for label, obj in variants.items():
        files = [tmp_path / f"{label}.pth", tmp_path / f"{label}.pt"]
        torch.save(obj, files[0])
        torch.save(obj, files[1], _use_new_zipfile_serialization=False)  # legacy pickle format too
        if all(isinstance(v, torch.Tensor) for v in obj.values()):  # flat dicts also as safetensors
            files.append(_save(tmp_path / f"{label}.safetensors", obj))
        for f in files:
            model = load_model(f)
            assert model.params == p, (label, f.suffix)
            assert model.info.sha256 == expected_sha, (label, f.suffix)
            assert (run(model, x) - ref).abs().max() <= 1e-5, (label, f.suffix)


def _save(path: Path, sd: dict[str, torch.Tensor]) -> Path:
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


@pytest.mark.parametrize(
    "params",
    [
        RRDBParams(scale=4, nf=16, nb=2, gc=8),
        RRDBParams(scale=8, nf=8, nb=1, gc=4),
        RRDBParams(scale=2, nf=8, nb=3, gc=4),
        RRDBParams(scale=1, nf=8, nb=1, gc=4),
        RRDBParams(scale=4, nf=8, nb=1, gc=4, in_nc=1, out_nc=1),
        RRDBParams(scale=4, nf=8, nb=1, gc=4, in_nc=4, out_nc=3),
    ],
    ids=lambda p: f"x{p.scale}-nf{p.nf}-nb{p.nb}-gc{p.gc}-in{p.in_nc}-out{p.out_nc}",
)
def test_hyperparameters_are_read_from_the_weights(tmp_path: Path, params: RRDBParams) -> None:
    sd = RRDBNet(params).state_dict()
    assert detect_params(dict(sd), "test") == params
    path = _save(tmp_path / "m.safetensors", dict(sd))
    model = load_model(path)
    assert model.params == params
    x = torch.rand(1, params.in_nc, 12, 10)
    assert run(model, x).shape == (1, params.out_nc, 12 * params.scale, 10 * params.scale)


def test_loaded_model_is_frozen_eval_and_takes_dtype(tmp_path: Path) -> None:
    path = _save(tmp_path / "m.safetensors", model_sd(SPANDREL_SHAPES[4]))
    model = load_model(path, dtype=torch.float16)
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    assert all(p.dtype == torch.float16 for p in model.parameters())
    assert model.info.name == "m.safetensors" and model.info.source == str(path)
    # the identity hash is of the canonical fp32 weights, whatever dtype the module runs in
    assert model.info.sha256 == load_model(path).info.sha256


def test_sha256_tells_different_weights_apart(tmp_path: Path) -> None:
    a = load_model(_save(tmp_path / "a.safetensors", model_sd(SPANDREL_SHAPES[4], seed=1)))
    b = load_model(_save(tmp_path / "b.safetensors", model_sd(SPANDREL_SHAPES[4], seed=2)))
    assert a.info.sha256 != b.info.sha256


# --------------------------------------------------------------------------- refusals


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def test_pickle_that_would_run_code_is_refused_and_the_code_does_not_run(tmp_path: Path) -> None:
    # the payload is live: plain unpickling runs it
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps({"conv_first.weight": torch.zeros(1), "x": _RunsCode(proof)}))
    assert proof.exists()

    marker = tmp_path / "marker"
    payload = {"params_ema": {"conv_first.weight": torch.zeros(1)}, "evil": _RunsCode(marker)}
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps(payload, protocol=2))
    zipped = tmp_path / "zipped.pth"
    torch.save(payload, zipped)
    for path in (legacy, zipped):
        with pytest.raises(ModelError, match="refused") as info:
            load_model(path)
        assert str(path) in str(info.value)
        assert not marker.exists(), f"unpickling {path.name} ran code"


def _rrdb_bytes(tmp_path: Path) -> tuple[bytes, bytes]:
    sd = model_sd(SPANDREL_SHAPES[4])
    torch.save(sd, tmp_path / "ok.pth")
    _save(tmp_path / "ok.safetensors", sd)
    return (tmp_path / "ok.pth").read_bytes(), (tmp_path / "ok.safetensors").read_bytes()


@pytest.mark.filterwarnings("ignore:torch.meshgrid")  # from building spandrel's SwinIR
def test_files_that_are_not_rrdb_generators_get_one_clear_sentence(tmp_path: Path) -> None:
    pth, st = _rrdb_bytes(tmp_path)
    discriminator = {f"conv{i}_{j}.weight": torch.zeros(8, 8, 3, 3) for i in range(3) for j in range(2)}
    discriminator.update({"bn0_1.weight": torch.zeros(8), "linear1.weight": torch.zeros(100, 8)})
    from spandrel.architectures.Compact import Compact  # a compact model without its PReLU weights (ReLU-trained)
    from spandrel.architectures.SwinIR import SwinIR

    compact = Compact(num_feat=8, num_conv=2).state_dict()
    swinir = SwinIR(embed_dim=12, depths=[1], num_heads=[2], window_size=4, img_size=16, upscale=2).state_dict()
    cases: dict[str, tuple[bytes | object, str]] = {
        "random.pth": (bytes(range(256)) * 40, "not a PyTorch checkpoint"),
        "random.safetensors": (b"\x93" * 5000, "not a readable safetensors"),
        "empty.pth": (b"", "is empty"),
        "truncated.pth": (pth[: len(pth) // 2], "damaged or truncated"),
        "truncated.safetensors": (st[: len(st) // 2], "not a readable safetensors"),
        "discriminator.pth": (discriminator, "discriminator"),
        "relu_compact.pth": ({k: v for k, v in compact.items() if k.endswith("bias") or k.count(".") and
                              int(k.split(".")[1]) % 2 == 0}, "without PReLU weights"),
        "swinir.safetensors": (swinir, "not an ESRGAN-family (RRDB"),
        "tensor.pth": (torch.zeros(3), "not a dictionary"),
        "no_tensors.pth": ({"epoch": 3, "net_d": {"lr": 0.1}}, "no weight tensors"),
    }
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif path.suffix == ".safetensors":
            _save(path, content)
        else:
            torch.save(content, path)
        with pytest.raises(ModelError) as info:
            load_model(path)
        message = str(info.value)
        assert expected in message, (name, message)
        assert str(path) in message, (name, message)
        assert "\n" not in message
    # what was found is listed
    with pytest.raises(ModelError, match=r"conv0_0"):
        load_model(tmp_path / "discriminator.pth")


def test_incomplete_or_misshapen_generator(tmp_path: Path) -> None:
    sd = model_sd(SPANDREL_SHAPES[4])
    missing = dict(sd)
    del missing["body.1.rdb2.conv3.weight"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(ModelError, match=r"missing \[body\.1\.rdb2\.conv3\.weight\]"):
        load_model(tmp_path / "missing.pth")
    bad = dict(sd)
    bad["conv_hr.weight"] = torch.zeros(8, 8, 1, 1)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ModelError, match=r"conv_hr\.weight has shape \(8, 8, 1, 1\)"):
        load_model(tmp_path / "bad.pth")


def test_scale_in_a_file_name() -> None:
    from esrgan_video.models.detection import scale_in_name

    said = {"3x_Name.pth": 3, "Name_x3.pth": 3, "3xName.safetensors": 3, "x3.pth": 3, "4X-Foo.pth": 4,
            "1x_DeJPEG.pth": 1, "RealESRGAN_x4plus.pth": 4, "realesr-general-x4v3.pth": 4, "16x_Big.pth": 16,
            "3x_v1.2.pth": 3}
    silent = ["Name.pth", "BSRGANx2.pth", "conv1x1.pth", "anime_x264.pth", "2x_to_4x.pth", "4x4.pth", "max3.pth",
              "5x_Odd.pth"]
    assert {n: scale_in_name(n) for n in said} == said
    assert {n: scale_in_name(n) for n in silent} == dict.fromkeys(silent)


def test_cli_runs_a_3x_old_arch_file_at_x3_and_says_why(tmp_path: Path, capfd) -> None:
    import media
    from esrgan_video.testing import run_cli

    sd = to_old_arch(dict(near_identity_model(3, nf=8, nb=1, gc=4).state_dict()))  # one up conv: x2 keys
    model = tmp_path / "3x_Tiny.pth"
    torch.save(sd, model)
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=2)
    p = run_cli(capfd, src, tmp_path / "out.mkv", "--model", model, "--progress", "none")
    assert p.returncode == 0, p.stderr
    said = [line for line in p.stderr.splitlines() if "runs at x3" in line]
    assert len(said) == 1 and str(model) in said[0], p.stderr
    import av

    with av.open(str(tmp_path / "out.mkv")) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.width, ctx.height) == (96, 72)
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    with av.open(str(src)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    # a near-identity model: the output is the input enlarged 3x (nearest), within the codec's and noise's error
    assert abs(frame.astype(float) - first.repeat(3, 0).repeat(3, 1)).mean() < 12


def test_a_slip_of_a_registry_name_is_answered_with_the_name() -> None:
    """A name one slip off a registry name (a letter short, the ncnn files' hyphens, the release file's .pth) says
    which it likely meant; it listed all eight and left the user to compare."""
    for given, meant in (("RealESRGAN_x4plu", "RealESRGAN_x4plus"), ("realesrgan-x4plus", "RealESRGAN_x4plus"),
                         ("realesr-animevideo-v3", "realesr-animevideov3"), ("RealESRGAN_x2plus.pth", "RealESRGAN_x2plus")):
        with pytest.raises(ModelError) as e:
            load_model(given)
        assert str(e.value).startswith(f"model {given!r} is neither a file nor a known model name (did you mean "
                                       f"{meant}? known: RealESRGAN_x4plus, "), str(e.value)
    with pytest.raises(ModelError) as e:
        load_model("foo")
    assert "did you mean" not in str(e.value)


def test_unknown_name_or_missing_file() -> None:
    with pytest.raises(ModelError, match="neither a file nor a known model name.*RealESRGAN_x4plus"):
        load_model("no_such_model_or_file.pth")
    with pytest.raises(ModelError, match="dtype"):
        load_model("RealESRGAN_x4plus", dtype=torch.int8)
