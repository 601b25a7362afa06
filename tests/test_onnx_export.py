"""ONNX export checked on the CPU with onnxruntime against the torch model.

fp32 graphs must match torch within 1e-4 (max abs) for RealESRGAN_x4plus and anime 6B (real
weights, a 16x16 crop of a real photo to keep the time down) and for the x2 pixel-unshuffle
variant (random weights of RealESRGAN_x2plus's exact shape: nf=64, nb=23, gc=32).
fp16 graphs run on onnxruntime's CPU provider too, but that provider has no fp16 Conv: it
inserts Casts and runs the convolutions in fp32, so the PSNR check here (>= 50 dB; measured
x4plus 72 dB, anime 6B 70 dB on this crop) covers the fp16 rounding of weights and I/O, not
fp16 arithmetic. fp16 arithmetic and overflow are checked with torch's fp16 CPU kernels
(tests/test_runtime_torch.py) and on a GPU (tests/test_gpu.py, benchmarks/gpu_bench.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams
from esrgan_video.errors import BackendError
from esrgan_video.testing import psnr
from esrgan_video.runtime.onnx_export import (
    FP16_MAX,
    ExportSpec,
    activation_peaks,
    export_onnx,
    graph_ops,
    io_types,
    suggest_fp32_layers,
)

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # On a shared, oversubscribed CPU two OpenMP threads run ~10x slower than one.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def run_ort(data: bytes, x: torch.Tensor) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    (y,) = s.run(None, {"input": x.numpy()})
    return y


def raw_output(model: RRDBNet, x: torch.Tensor) -> np.ndarray:
    """The model's output before the clamp (the graph ends at conv_last; the runtime clamps)."""
    model.clamp = False
    try:
        with torch.no_grad():
            return model(x).numpy()
    finally:
        model.clamp = True


@pytest.fixture(scope="module")
def x4plus(real_weights_x4plus):
    from esrgan_video.models import load_model

    return load_model(real_weights_x4plus)


@pytest.fixture(scope="module")
def anime6b(real_weights_anime6b):
    from esrgan_video.models import load_model

    return load_model(real_weights_anime6b)


def test_x4plus_fp32_matches_torch(x4plus, sample_photo_crop):
    x = sample_photo_crop[..., :16, :16].contiguous()
    data = export_onnx(x4plus, ExportSpec((16, 16), precision="fp32"), device="cpu")
    assert io_types(data) == {"input": (1, [1, 3, 16, 16]), "output": (1, [1, 3, 64, 64])}
    assert "Clip" not in graph_ops(data)
    y = run_ort(data, x)
    assert np.abs(y - raw_output(x4plus, x)).max() <= 1e-4


def test_anime6b_fp32_and_fp16(anime6b, sample_photo_crop, tmp_path):
    x = sample_photo_crop[..., 8:24, 8:24].contiguous()
    ref = raw_output(anime6b, x)
    path = tmp_path / "anime.onnx"
    data = export_onnx(anime6b, ExportSpec((16, 16), precision="fp32"), path, device="cpu")
    assert path.read_bytes() == data
    assert np.abs(run_ort(data, x) - ref).max() <= 1e-4

    half = export_onnx(anime6b, ExportSpec((16, 16), precision="fp16"), device="cpu")
    f16 = onnx.TensorProto.FLOAT16
    assert io_types(half) == {"input": (f16, [1, 3, 16, 16]), "output": (f16, [1, 3, 64, 64])}
    init_types = {t.data_type for t in onnx.load_from_string(half).graph.initializer}
    assert init_types == {f16}
    y16 = run_ort(half, x.half()).astype(np.float32)
    assert np.isfinite(y16).all()
    assert psnr(np.clip(y16, 0, 1), np.clip(ref, 0, 1), data_range=1.0) >= 50.0


def test_scale_as_conv_is_the_same_function_and_keeps_ort_in_its_blocked_layout(anime6b, sample_photo_crop, tmp_path):
    """The ONNX Runtime export: each RRDB's ×0.2 as a depthwise 1×1 Conv. Same output; ORT's NCHWc transformer
    then leaves no Reorder inside the trunk (the plain export has one before and after nearly every conv)."""
    x = sample_photo_crop[..., 8:24, 8:24].contiguous()
    plain = export_onnx(anime6b, ExportSpec((16, 16), precision="fp32"), device="cpu")
    conv = export_onnx(anime6b, ExportSpec((16, 16), precision="fp32", scale_as_conv=True), device="cpu")
    nb = anime6b.params.nb
    count = lambda data, op: sum(n.op_type == op for n in onnx.load_from_string(data).graph.node)  # noqa: E731
    assert count(conv, "Conv") == count(plain, "Conv") + nb and count(conv, "Mul") == count(plain, "Mul") - nb
    assert np.abs(run_ort(conv, x) - raw_output(anime6b, x)).max() <= 1e-4
    assert np.abs(run_ort(conv, x) - run_ort(plain, x)).max() <= 1e-5

    def reorders(data: bytes) -> int:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(tmp_path / "opt.onnx")
        ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
        return sum(op.startswith("Reorder") for op in ops)

    if reorders(plain) == 0:
        pytest.skip("ONNX Runtime has no NCHWc kernels on this CPU (no AVX2/AVX-512): no layout to keep")
    assert reorders(plain) > 10 * nb
    assert reorders(conv) <= 2  # at most around the graph's input/output


def test_x2_pixel_unshuffle_exports_as_reshape_transpose():
    torch.manual_seed(0)
    model = RRDBNet(RRDBParams(nf=64, nb=23, gc=32, scale=2)).eval()  # RealESRGAN_x2plus's shape
    for h, w in [(15, 13)]:  # odd sides: the pad + crop is traced for this static shape
        x = torch.rand(1, 3, h, w)
        data = export_onnx(model, ExportSpec((h, w), precision="fp32"), device="cpu")
        ops = graph_ops(data)
        assert {"Reshape", "Transpose"} <= ops
        assert not ops & {"SpaceToDepth", "DepthToSpace", "PixelUnshuffle"}
        assert np.abs(run_ort(data, x) - raw_output(model, x)).max() <= 1e-4


def test_dynamic_axes_run_other_shapes():
    torch.manual_seed(1)
    model = RRDBNet(RRDBParams(nf=8, nb=1, gc=4, scale=2)).eval()
    data = export_onnx(model, ExportSpec((16, 16), precision="fp32", dynamic=True), device="cpu")
    types = io_types(data)
    assert types["input"][1] == ["batch", 3, "height", "width"]
    for n, h, w in [(1, 16, 16), (3, 10, 24)]:
        x = torch.rand(n, 3, h, w)
        y = run_ort(data, x)
        assert y.shape == (n, 3, 2 * h, 2 * w)
        assert np.abs(y - raw_output(model, x)).max() <= 1e-4
    with pytest.raises(BackendError, match="multiples of 2"):
        export_onnx(model, ExportSpec((15, 16), precision="fp32", dynamic=True), device="cpu")


def overflowing() -> RRDBNet:
    torch.manual_seed(0)
    model = RRDBNet(RRDBParams(nf=8, nb=1, gc=4, scale=4)).eval()
    with torch.no_grad():
        model.conv_first.weight.mul_(1e5)
        model.conv_first.bias.mul_(1e5)
    return model


def test_fp32_layers_fix_an_fp16_overflow():
    from esrgan_video.runtime.base import CommonOptions, NonFiniteOutputError
    from esrgan_video.runtime.torch_backend import TorchBackend, TorchOptions, cpu_supports

    model = overflowing()
    x = torch.rand(1, 3, 8, 8)
    peaks = activation_peaks(model, x)
    assert max(peaks.values()) > FP16_MAX  # the fp32 network is fine, fp16 cannot hold it
    layers = suggest_fp32_layers(peaks)
    assert "conv_first" in layers and "body" in layers
    ref = raw_output(model, x)

    if cpu_supports(torch.float16):  # fp16 arithmetic: torch's CPU kernels round every op to fp16
        with pytest.raises(NonFiniteOutputError):
            TorchBackend(model, CommonOptions(precision="fp16"))(x)
        y = TorchBackend(model, CommonOptions(precision="fp16"), TorchOptions(fp32_layers=layers))(x).float().numpy()
        assert psnr(np.clip(y, 0, 1), np.clip(ref, 0, 1), data_range=1.0) >= 40.0

    mixed = export_onnx(model, ExportSpec((8, 8), fp32_layers=layers), device="cpu")
    assert "Cast" in graph_ops(mixed)
    f16, f32 = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT
    assert io_types(mixed)["input"][0] == f16 and io_types(mixed)["output"][0] == f16
    graph = onnx.load_from_string(mixed).graph
    weight_types = {}
    for node in graph.node:
        if node.op_type == "Conv":
            weight_types[node.input[1]] = None
    inits = {t.name: t.data_type for t in graph.initializer if t.name in weight_types}
    assert set(inits.values()) == {f16, f32}  # listed layers in fp32, the rest in fp16
    n32 = sum(1 for t in inits.values() if t == f32)
    n_listed = 1 + 15 + 1 + 2  # conv_first, body (1 RRDB = 15 convs), conv_body, conv_up1..2 per `layers`
    assert n32 == n_listed, (layers, n32)
    y = run_ort(mixed, x.half()).astype(np.float32)
    assert np.isfinite(y).all()
    assert psnr(np.clip(y, 0, 1), np.clip(ref, 0, 1), data_range=1.0) >= 40.0


def test_suggest_fp32_layers_is_pure_thresholding():
    assert suggest_fp32_layers({"conv_first": 1.0, "body.3": 20000.0, "trunk_sum": 70000.0}) == ("body.3", "body")
    assert suggest_fp32_layers({"conv_hr": 10000.0}, headroom=8.0) == ("conv_hr",)
    assert suggest_fp32_layers({"conv_hr": 10000.0}, headroom=2.0) == ()


def test_spec_is_validated():
    with pytest.raises(BackendError, match="opset"):
        ExportSpec((16, 16), opset=13)
    with pytest.raises(BackendError, match="precision"):
        ExportSpec((16, 16), precision="bf16")
    with pytest.raises(BackendError, match="fp16"):
        ExportSpec((16, 16), precision="fp32", fp32_layers=("conv_first",))
    with pytest.raises(BackendError, match="positive"):
        ExportSpec((0, 16))
    model = RRDBNet(RRDBParams(nf=8, nb=1, gc=4)).eval()
    with pytest.raises(BackendError, match="unknown submodule 'trunk'.*conv_first"):
        export_onnx(model, ExportSpec((8, 8), fp32_layers=("trunk",)), device="cpu")
