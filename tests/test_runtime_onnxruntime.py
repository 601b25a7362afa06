"""The ONNX Runtime CPU backend: same function as torch fp32, fixed shapes, the finite guard, selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="onnxruntime is a dependency of the default install")

from esrgan_video import Upscaler  # noqa: E402
from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams  # noqa: E402
from esrgan_video.errors import BackendError  # noqa: E402
from esrgan_video.models import load_model  # noqa: E402
from esrgan_video.runtime.base import CommonOptions, NonFiniteOutputError  # noqa: E402
from esrgan_video.runtime.onnxruntime_backend import OnnxRuntimeBackend, OnnxRuntimeOptions, dynamic_onnx  # noqa: E402
from esrgan_video.runtime.torch_backend import TorchBackend, TorchOptions  # noqa: E402
from esrgan_video.testing import near_identity_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def torch_fp32(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with TorchBackend(model, CommonOptions(device="cpu", precision="fp32"), TorchOptions(channels_last=False)) as b:
        return b(x)


def test_real_anime_weights_match_torch(real_weights_anime6b, sample_photo_crop):
    model = load_model(real_weights_anime6b)
    x = sample_photo_crop[:, :, :24, :32].contiguous()
    with OnnxRuntimeBackend(model, CommonOptions(tile_shape=(24, 32)), OnnxRuntimeOptions(threads=1)) as b:
        y = b(x)
        assert b.describe() == "onnxruntime fp32 on cpu, 1x24x32, 1 threads"
        assert b.open_seconds is not None and b.open_seconds > 0
    ref = torch_fp32(model, x)
    assert y.shape == (1, 3, 96, 128) and y.dtype == torch.float32
    assert float((y - ref).abs().max()) <= 1e-4
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0  # clamped like every backend


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_pixel_unshuffle_models_and_batches(scale):
    model = near_identity_model(scale)
    x = torch.rand(3, 3, 12, 20)
    with OnnxRuntimeBackend(model, CommonOptions(tile_shape=(12, 20), batch=3)) as b:
        assert b.info.fixed_shape == (3, 12, 20)
        y = b(x)
    assert y.shape == (3, 3, 12 * scale, 20 * scale)
    assert float((y - torch_fp32(model, x)).abs().max()) <= 1e-5


def test_one_export_serves_every_shape():
    model = near_identity_model(4)
    assert dynamic_onnx(model) is dynamic_onnx(model)
    for shape in ((8, 8), (16, 24)):
        x = torch.rand(1, 3, *shape)
        with OnnxRuntimeBackend(model, CommonOptions(tile_shape=shape)) as b:
            assert float((b(x) - torch_fp32(model, x)).abs().max()) <= 1e-5


def test_weights_changed_in_place_get_a_new_export():
    model = near_identity_model(4)
    x = torch.rand(1, 3, 8, 8)
    with OnnxRuntimeBackend(model, CommonOptions(tile_shape=(8, 8))) as b:
        before = b(x)
    with torch.no_grad():
        model.conv_last.bias.add_(0.25)  # .info still describes the old weights
    with OnnxRuntimeBackend(model, CommonOptions(tile_shape=(8, 8))) as b:
        after = b(x)
    assert float((after - torch_fp32(model, x)).abs().max()) <= 1e-5
    assert float((after - before).abs().max()) > 0.1


def test_fixed_shape_is_enforced():
    model = near_identity_model(4)
    with OnnxRuntimeBackend(model, CommonOptions(tile_shape=(8, 8))) as b:
        with pytest.raises(BackendError, match=r"only batches of 1 x 3 x 8 x 8, got \(1, 3, 8, 16\)"):
            b(torch.rand(1, 3, 8, 16))
        with pytest.raises(BackendError, match="expected the batch on cpu"):
            b(torch.rand(1, 3, 8, 8, device="meta"))


@pytest.mark.parametrize(
    "common, options, match",
    [
        (dict(device="cuda"), {}, "runs on the CPU"),
        (dict(precision="fp16"), {}, "runs fp32 on the CPU, got fp16"),
        (dict(tile_shape=None), {}, "fixed tile shape"),
        (dict(tile_shape=(0, 8)), {}, "must be positive"),
        ({}, dict(threads=0), "threads must be >= 1"),
    ],
)
def test_bad_arguments_say_what_was_expected(common, options, match):
    args = dict(tile_shape=(8, 8)) | common
    with pytest.raises(BackendError, match=match):
        OnnxRuntimeBackend(near_identity_model(4), CommonOptions(**args), OnnxRuntimeOptions(**options))


def test_unshuffle_models_need_matching_tile_sides():
    with pytest.raises(BackendError, match="multiples of 2, got 9x8"):
        OnnxRuntimeBackend(near_identity_model(2), CommonOptions(tile_shape=(9, 8)))


def test_non_finite_output_stops_the_run():
    torch.manual_seed(0)
    model = RRDBNet(RRDBParams(nf=8, nb=1, gc=4)).eval()
    with torch.no_grad():
        model.conv_last.bias[0] = float("nan")
    with OnnxRuntimeBackend(model, CommonOptions(tile_shape=(8, 8))) as b:
        with pytest.raises(NonFiniteOutputError, match="onnxruntime fp32 on cpu: the model produced non-finite"):
            b(torch.rand(1, 3, 8, 8))
    with OnnxRuntimeBackend(model, CommonOptions(tile_shape=(8, 8), finite_check="off")) as b:
        assert torch.isnan(b(torch.rand(1, 3, 8, 8))).any()  # the clamp keeps NaN: the guard is what catches it


@pytest.mark.skipif(torch.cuda.is_available(), reason="describes a machine without CUDA")
def test_upscaler_on_the_cpu_runs_onnxruntime_tiled_and_whole():
    model = near_identity_model(2)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    outs = {}
    for backend in ("auto", "torch"):
        for tile in (0, 16):
            with Upscaler(model, backend=backend, tile=tile, tile_pad=4) as up:
                outs[backend, tile] = up.upscale(frame)
                assert up.backend_info.name == ("onnxruntime" if backend == "auto" else "torch")
    for tile in (0, 16):
        diff = np.abs(outs["auto", tile].astype(int) - outs["torch", tile].astype(int))
        assert diff.max() <= 1  # uint8 rounding of values that differ by ~1e-6


def test_session_options_fix_the_shape_and_do_not_spin():
    import onnxruntime as ort

    from esrgan_video.runtime.onnxruntime_backend import session_options

    so = session_options(ort, (2, 24, 40), 3)
    assert so.intra_op_num_threads == 3
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    model = near_identity_model(4)
    sess = ort.InferenceSession(dynamic_onnx(model), so, providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [2, 3, 24, 40]  # the free dimensions are overridden
    assert sess.get_outputs()[0].shape[:2] == [2, 3]


def test_close_frees_the_session_even_when_the_last_check_fails():
    b = OnnxRuntimeBackend(near_identity_model(4), CommonOptions(tile_shape=(8, 8))).open()
    b(torch.rand(1, 3, 8, 8))

    def failing_flush():
        raise NonFiniteOutputError("a late non-finite batch")

    b.guard.flush = failing_flush
    with pytest.raises(NonFiniteOutputError, match="late non-finite"):
        b.close()  # Backend.close: flush, then _release in a finally
    assert b._session is None
