"""GPU tests: torch CUDA (marked gpu) and TensorRT / torch-tensorrt (marked tensorrt).

They skip with a reason where there is no CUDA device or no TensorRT, and they exercise the real
code where there is: ``pytest -m "gpu or tensorrt"`` (``benchmarks/gpu_check.sh`` runs them).
Nothing here imitates TensorRT: the tensorrt tests build real engines for tiny models.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

import pytest
import torch

from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams
from esrgan_video.runtime import engine_cache as ec
from esrgan_video.runtime.base import CommonOptions, NonFiniteOutputError

import media

CUDA = torch.cuda.is_available()
TRT = importlib.util.find_spec("tensorrt") is not None
TORCH_TRT = importlib.util.find_spec("torch_tensorrt") is not None

gpu = [pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")]
trt = [
    pytest.mark.tensorrt,
    pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU"),
    pytest.mark.skipif(not TRT, reason="needs TensorRT (pip install 'esrgan-video[tensorrt]')"),
]


def tiny(scale: int = 4, seed: int = 0, nf: int = 8) -> RRDBNet:
    torch.manual_seed(seed)
    return RRDBNet(RRDBParams(nf=nf, nb=1, gc=4, scale=scale)).eval()


def ref_fp32(model: RRDBNet, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.cpu()(x.float().cpu())


def close_fp16(a: torch.Tensor, b: torch.Tensor, atol: float = 2e-2) -> None:
    torch.testing.assert_close(a.float().cpu(), b.float().cpu(), atol=atol, rtol=0)


def in_flight(src: torch.Tensor, spin_cycles: int = 20_000_000) -> tuple[torch.Tensor, "torch.cuda.Stream"]:
    """(batch, stream): a copy of ``src`` produced on a fresh stream behind a ~10 ms spin kernel, still in flight
    when this returns. A backend that does not order its own stream after ``stream`` (the ready event) reads the
    batch before it is written and returns the wrong frame."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())  # src was made on the current stream
    with torch.cuda.stream(s):
        torch.cuda._sleep(spin_cycles)
        x = torch.empty_like(src)
        x.copy_(src)
    src.record_stream(s)
    return x, s


def overflowing(model: RRDBNet) -> RRDBNet:
    """``model`` with conv_first scaled by 1e5: its activations overflow fp16 (max 65504), the output (about 7.5e3
    for ``tiny()``) does not."""
    with torch.no_grad():
        model.conv_first.weight.mul_(1e5)
        model.conv_first.bias.mul_(1e5)
    return model


# --------------------------------------------------------------------------------- torch CUDA


def _mark(marks):
    def deco(f):
        for m in reversed(marks):
            f = m(f)
        return f
    return deco


@_mark(gpu)
@pytest.mark.parametrize("scale", [2, 4])
def test_torch_cuda_fp16_matches_cpu_fp32(scale):
    from esrgan_video.runtime.torch_backend import TorchBackend

    model = tiny(scale)
    x = torch.rand(2, 3, 24, 32)
    with TorchBackend(model, CommonOptions(device="cuda")) as b:
        assert b.info.dtype == torch.float16 and b.channels_last and torch.backends.cudnn.benchmark
        y = b(x.cuda())
        assert y.device.type == "cuda" and y.dtype == torch.float16 and y.shape == (2, 3, 24 * scale, 32 * scale)
    close_fp16(y, ref_fp32(model, x))


@_mark(gpu)
def test_cuda_graphs_replay_new_inputs_per_shape():
    from esrgan_video.runtime.torch_backend import TorchBackend, TorchOptions

    model = tiny()
    eager = TorchBackend(model, CommonOptions(device="cuda", precision="fp16"))
    graphs = TorchBackend(model, CommonOptions(device="cuda", precision="fp16"), TorchOptions(cuda_graphs=True))
    for shape in [(1, 3, 16, 24), (2, 3, 16, 24), (1, 3, 16, 24)]:
        x = torch.rand(shape, device="cuda")
        torch.testing.assert_close(graphs(x), eager(x), atol=2e-3, rtol=0)
    assert len(graphs._graphs) == 2
    graphs.close()


@_mark(gpu)
def test_bf16_and_fp32_on_cuda():
    from esrgan_video.runtime.torch_backend import TorchBackend

    model = tiny()
    x = torch.rand(1, 3, 16, 16)
    y32 = TorchBackend(model, CommonOptions(device="cuda", precision="fp32"))(x.cuda())
    torch.testing.assert_close(y32.cpu(), ref_fp32(model, x), atol=2e-3, rtol=0)  # TF32 may be on
    if torch.cuda.is_bf16_supported():
        yb = TorchBackend(model, CommonOptions(device="cuda", precision="bf16"))(x.cuda())
        assert yb.dtype == torch.bfloat16
        close_fp16(yb, ref_fp32(model, x), atol=6e-2)


@_mark(gpu)
def test_concurrent_streams_from_threads_match_sequential():
    from esrgan_video.runtime.torch_backend import TorchBackend

    model = tiny()
    b = TorchBackend(model, CommonOptions(device="cuda", precision="fp16"))
    xs = [torch.rand(2, 3, 24, 24, device="cuda") for _ in range(8)]
    expected = [b(x).clone() for x in xs]
    torch.cuda.synchronize()
    results: dict[int, torch.Tensor] = {}

    def worker(i: int) -> None:
        x, s = in_flight(xs[i])  # the producer's copy is still running when infer is called
        results[i] = b(x, s)
        s.synchronize()

    media.in_threads(worker, 8)
    for i in range(8):
        torch.testing.assert_close(results[i], expected[i], atol=0, rtol=0)
    b.close()


@_mark(gpu)
def test_deferred_guard_raises_at_the_latest_on_flush():
    from esrgan_video.runtime.torch_backend import TorchBackend

    model = tiny()
    with torch.no_grad():
        model.conv_last.bias.fill_(float("nan"))
    b = TorchBackend(model, CommonOptions(device="cuda", precision="fp16"))
    assert b.guard.mode == "deferred"
    with pytest.raises(NonFiniteOutputError, match="--precision fp32"):
        for _ in range(50):
            b(torch.rand(1, 3, 16, 16, device="cuda"))
        b.flush()


@_mark(gpu)
def test_fp16_overflow_on_gpu_and_the_fp32_layers_way_out():
    from esrgan_video.runtime.onnx_export import activation_peaks, suggest_fp32_layers
    from esrgan_video.runtime.torch_backend import TorchBackend, TorchOptions

    model = overflowing(tiny())
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(NonFiniteOutputError):
        with TorchBackend(model, CommonOptions(device="cuda", precision="fp16")) as b:
            b(x.cuda())
    layers = suggest_fp32_layers(activation_peaks(model, x))
    with TorchBackend(model, CommonOptions(device="cuda", precision="fp16"), TorchOptions(fp32_layers=layers)) as b:
        y = b(x.cuda())
    assert torch.isfinite(y).all()


@_mark(gpu)
def test_torch_compile_matches_eager():
    from esrgan_video.runtime.torch_backend import TorchBackend, TorchOptions

    model = tiny()
    x = torch.rand(1, 3, 16, 24, device="cuda")
    eager = TorchBackend(model, CommonOptions(device="cuda", precision="fp16"))(x)
    with TorchBackend(model, CommonOptions(device="cuda", precision="fp16"), TorchOptions(compile="default")) as b:
        torch.testing.assert_close(b(x), eager, atol=5e-3, rtol=0)


@_mark(gpu)
def test_auto_selection_on_this_gpu_machine():
    from esrgan_video.runtime.select import make_backend

    b = make_backend(tiny(), tile_shape=(16, 16), batch=1)
    if TRT:
        assert b.info.name == "tensorrt" and b.info.reason.endswith("tensorrt fp16")
    else:
        assert b.info.name == "torch" and b.info.reason == "tensorrt not installed → torch CUDA fp16"
    assert b.info.device.type == "cuda"


@_mark(gpu)
def test_real_anime_weights_fp16_fidelity():
    path = os.environ.get("ESRGAN_VIDEO_ANIME_WEIGHTS")
    if not path:
        pytest.skip("set ESRGAN_VIDEO_ANIME_WEIGHTS to RealESRGAN_x4plus_anime_6B weights for this check")
    from benchmarks import models as bench_models
    from benchmarks.common import psnr
    from esrgan_video.runtime.torch_backend import TorchBackend

    model = bench_models.load(path)
    x = bench_models.as_tensor(bench_models.real_frame(96, 64))
    ref = TorchBackend(model, CommonOptions(device="cuda", precision="fp32"))(x.cuda()).float()
    out = TorchBackend(model, CommonOptions(device="cuda", precision="fp16"))(x.cuda()).float()
    assert torch.isfinite(out).all()
    assert psnr(out.cpu().numpy(), ref.cpu().numpy(), data_range=1.0) >= 50.0


# --------------------------------------------------------------------------------- TensorRT


def _trt_backend(model, tmp_path: Path, *, precision="fp16", tile_shape=(32, 48), batch=1, notice=None, **options):
    """A TensorRT backend on cuda caching in ``tmp_path``; ``options`` are TensorRTOptions fields."""
    from esrgan_video.runtime.tensorrt_backend import BuildOptions, TensorRTBackend, TensorRTOptions

    options.setdefault("build", BuildOptions(opt_level=0))
    common = CommonOptions(device="cuda", precision=precision, tile_shape=tile_shape, batch=batch, notice=notice)
    return TensorRTBackend(model, common, TensorRTOptions(cache_root=tmp_path, **options))


@_mark(trt)
def test_tensorrt_engine_matches_torch_and_is_cached(tmp_path):
    model = tiny()
    x = torch.rand(1, 3, 32, 48)
    b = _trt_backend(model, tmp_path).open()
    assert not b.outcome.hit and b.outcome.paths.engine.exists() and b.outcome.paths.sidecar.exists()
    assert list(tmp_path.glob("timing-*.timing"))  # timing cache persisted
    assert b.info.fixed_shape == (1, 32, 48) and b.info.dtype == torch.float16
    y = b(x.cuda())
    b.close()
    assert y.dtype == torch.float16 and y.shape == (1, 3, 128, 192)
    close_fp16(y, ref_fp32(model, x))
    again = _trt_backend(model, tmp_path).open()
    assert again.outcome.hit
    torch.testing.assert_close(again(x.cuda()), y, atol=1e-3, rtol=0)
    again.close()
    entries = ec.list_entries(tmp_path)
    assert len(entries) == 1 and entries[0].problem == "" and entries[0].key == again.key


@_mark(trt)
def test_tensorrt_corrupt_engine_is_rebuilt(tmp_path):
    model = tiny()
    b = _trt_backend(model, tmp_path).open()
    paths, key = b.outcome.paths, b.key
    b.close()
    garbage = os.urandom(4096)
    # a sidecar that matches the garbage: only TensorRT's deserialisation can tell
    ec.write_entry(paths, key, garbage, label="rrdb-x4", build_seconds=0)
    rebuilt = _trt_backend(model, tmp_path).open()
    assert not rebuilt.outcome.hit and "failed to load" in rebuilt.outcome.note
    assert paths.engine.read_bytes() != garbage
    x = torch.rand(1, 3, 32, 48)
    close_fp16(rebuilt(x.cuda()), ref_fp32(model, x))
    rebuilt.close()


@_mark(trt)
def test_tensorrt_stale_key_is_rebuilt(tmp_path):
    model = tiny()
    b = _trt_backend(model, tmp_path).open()
    paths, key = b.outcome.paths, b.key
    b.close()
    data = paths.engine.read_bytes()
    ec.write_entry(paths, dataclasses.replace(key, trt_version="0.0.0"), data, label="rrdb-x4", build_seconds=0)
    again = _trt_backend(model, tmp_path).open()
    assert not again.outcome.hit and "key mismatch" in again.outcome.note
    again.close()


@_mark(trt)
def test_tensorrt_multi_stream_concurrent_infer(tmp_path):
    model = tiny()
    b = _trt_backend(model, tmp_path, batch=2, streams=3).open()
    xs = [torch.rand(2, 3, 32, 48, device="cuda") for _ in range(12)]
    expected = [b(x).clone() for x in xs]
    torch.cuda.synchronize()
    results: dict[int, torch.Tensor] = {}

    def worker(i: int) -> None:
        x, s = in_flight(xs[i])  # the producer's copy is still running when infer is called
        results[i] = b(x, s)
        s.synchronize()

    media.in_threads(worker, 12)
    for i in range(12):
        torch.testing.assert_close(results[i], expected[i], atol=0, rtol=0)
    b.close()


@_mark(trt)
def test_tensorrt_cuda_graphs_and_fp32(tmp_path):
    model = tiny()
    x = torch.rand(1, 3, 32, 48)
    plain = _trt_backend(model, tmp_path).open()
    notices: list[str] = []
    graphs = _trt_backend(model, tmp_path, cuda_graphs=True, notice=notices.append).open()
    # every context captured its graph in open(); a silent fallback to plain execution fails here
    assert graphs.graphs_captured == graphs.streams == 2 and plain.graphs_captured == 0, notices
    assert all(slot.graph is not None for slot in graphs._slots)
    kept = []
    for _ in range(3):
        xi = torch.rand(1, 3, 32, 48, device="cuda")
        y = graphs(xi)
        kept.append((y, plain(xi)))
        torch.testing.assert_close(y, kept[-1][1], atol=1e-3, rtol=0)
    for y, ref in kept:  # earlier outputs are copies, never the static buffer the next replay overwrites
        torch.testing.assert_close(y, ref, atol=1e-3, rtol=0)
    plain.close()
    graphs.close()
    f32 = _trt_backend(model, tmp_path, precision="fp32").open()
    assert f32.info.dtype == torch.float32
    torch.testing.assert_close(f32(x.cuda()).cpu(), ref_fp32(model, x), atol=2e-3, rtol=0)
    f32.close()


@_mark(trt)
def test_tensorrt_a_context_whose_capture_fails_runs_plain_on_its_static_buffers(tmp_path, monkeypatch):
    """A failed capture leaves that context without a graph: infer then binds its static buffers again and runs
    execute_async_v3 (no stale or missing address), and the results match a plain backend's."""
    from esrgan_video.runtime import capture

    def failing(graph, stream, device, work, **kwargs):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing (test)")

    monkeypatch.setattr(capture, "capture_graph", failing)
    model = tiny()
    notices: list[str] = []
    graphs = _trt_backend(model, tmp_path, cuda_graphs=True, notice=notices.append).open()
    assert graphs.graphs_captured == 0 and any("CUDA graphs are off for context 0" in n for n in notices), notices
    assert all(slot.graph is None and slot.static_in is not None for slot in graphs._slots)
    plain = _trt_backend(model, tmp_path).open()
    for _ in range(4):  # both contexts, twice each
        x = torch.rand(1, 3, 32, 48, device="cuda")
        torch.testing.assert_close(graphs(x), plain(x), atol=1e-3, rtol=0)
    graphs.close()
    plain.close()


@_mark(trt)
def test_tensorrt_dynamic_profile_and_x2(tmp_path):
    from esrgan_video.runtime.tensorrt_backend import BuildOptions

    model = tiny(scale=2)
    b = _trt_backend(model, tmp_path, tile_shape=(32, 32), batch=1, streams=2,
                     build=BuildOptions(opt_level=0, min_shape=(1, 16, 16), max_shape=(2, 64, 64))).open()
    assert b.info.fixed_shape is None and not b.key.static
    for shape in [(2, 3, 48, 40), (1, 3, 16, 24), (1, 3, 64, 64)]:
        x = torch.rand(shape)
        close_fp16(b(x.cuda()), ref_fp32(model, x))
    from esrgan_video.errors import BackendError

    with pytest.raises(BackendError, match="profile"):
        b(torch.rand(1, 3, 80, 80, device="cuda"))
    b.close()


@_mark(trt)
def test_tensorrt_fp32_layers_engine(tmp_path):
    from esrgan_video.runtime.onnx_export import activation_peaks, suggest_fp32_layers

    model = tiny()
    x = torch.rand(1, 3, 32, 48)
    b = _trt_backend(model, tmp_path, fp32_layers=("conv_first", "body")).open()
    assert b.key.fp32_layers == ("body", "conv_first")  # the key holds them one way: sorted (canonical_fp32_layers)
    close_fp16(b(x.cuda()), ref_fp32(model, x))
    b.close()
    # the layers must really stay fp32 in the engine: the 1e5-scaled model overflows a plain fp16 engine ...
    hot = overflowing(tiny())
    with pytest.raises(NonFiniteOutputError):
        with _trt_backend(hot, tmp_path) as plain:
            plain(x.cuda())
    # ... and runs finite with the suggested fp32 layers (conv_last alone stays fp16: its output is ~7.5e3)
    layers = suggest_fp32_layers(activation_peaks(hot, x))
    assert "conv_first" in layers and "conv_last" not in layers
    with _trt_backend(hot, tmp_path, fp32_layers=layers) as kept:
        y = kept(x.cuda())
        kept.flush()
    assert torch.isfinite(y).all()
    assert float((y.float().cpu() - ref_fp32(hot, x).clamp(0, 1)).abs().mean()) < 0.1


@pytest.mark.tensorrt
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.skipif(not TORCH_TRT, reason="needs torch-tensorrt")
def test_torch_tensorrt_backend():
    from esrgan_video.runtime.torch_tensorrt_backend import TorchTensorRTBackend

    model = tiny()
    x = torch.rand(1, 3, 32, 48)
    with TorchTensorRTBackend(model, CommonOptions(device="cuda", tile_shape=(32, 48))) as b:
        close_fp16(b(x.cuda()), ref_fp32(model, x))


@_mark(trt)
def test_tensorrt_unaligned_input_slices_and_a_min_equal_max_profile(tmp_path):
    from esrgan_video.runtime.tensorrt_backend import TENSOR_ALIGNMENT, BuildOptions

    model = tiny()
    # min == opt == max: a static engine (no dynamic axes without a profile), not a build failure
    b = _trt_backend(model, tmp_path, tile_shape=(270, 480),
                     build=BuildOptions(opt_level=0, min_shape=(1, 270, 480), max_shape=(1, 270, 480))).open()
    assert b.key.static and not b.key.dynamic and b.key.profiles == 0 and b.info.fixed_shape == (1, 270, 480)
    frames = torch.rand(2, 3, 270, 480, device="cuda", dtype=torch.float16)
    second = frames[1:2]  # contiguous, 777600 bytes past the base: not 256-byte aligned
    assert second.data_ptr() % TENSOR_ALIGNMENT != 0
    y = b(second)
    torch.testing.assert_close(y, b(second.clone()), atol=0, rtol=0)
    close_fp16(y, ref_fp32(model, second.float().cpu()))
    b.close()


@_mark(trt)
def test_tensorrt_corrupt_timing_cache_does_not_fail_a_build(tmp_path):
    from esrgan_video.runtime.tensorrt_backend import BuildOptions

    model = tiny()
    first = _trt_backend(model, tmp_path).open()
    (timing,) = tmp_path.glob("timing-*.timing")
    first.close()
    timing.write_bytes(os.urandom(64))  # create_timing_cache returns None for this
    notices: list[str] = []
    again = _trt_backend(model, tmp_path, build=BuildOptions(opt_level=1), notice=notices.append).open()
    assert not again.outcome.hit and any("timing cache" in n for n in notices), notices
    assert timing.stat().st_size > 64  # rewritten with real timings
    again.close()


@_mark(gpu)
def test_max_autotune_outputs_survive_the_next_call():
    """max-autotune turns on cudagraph trees like reduce-overhead: an output not cloned is overwritten by the
    next replay (and the in-place clamp would write into the graph's buffer)."""
    from esrgan_video.runtime.torch_backend import TorchBackend, TorchOptions

    import torch._inductor.config as inductor_config

    model = tiny()
    eager = TorchBackend(model, CommonOptions(device="cuda", precision="fp16"))
    # ATen kernels only: the Triton template search would take minutes and is not what is tested here
    with inductor_config.patch(max_autotune_conv_backends="ATEN", max_autotune_gemm_backends="ATEN"), \
            TorchBackend(model, CommonOptions(device="cuda", precision="fp16"),
                         TorchOptions(compile="max-autotune")) as b:
        xs = [torch.rand(1, 3, 16, 16, device="cuda") for _ in range(4)]
        ys = [b(x) for x in xs]
        for x, y in zip(xs, ys):
            torch.testing.assert_close(y, eager(x), atol=5e-3, rtol=0)


@_mark(gpu)
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_cuda_graphs_on_the_second_gpu():
    from esrgan_video.runtime.torch_backend import TorchBackend, TorchOptions

    model = tiny()
    torch.cuda.set_device(0)  # the process-wide default capture stream would live here
    x = torch.rand(1, 3, 16, 24, device="cuda:1")
    g = TorchBackend(model, CommonOptions(device="cuda:1", precision="fp16"), TorchOptions(cuda_graphs=True))
    plain = TorchBackend(model, CommonOptions(device="cuda:1", precision="fp16"))
    torch.testing.assert_close(g(x), plain(x), atol=2e-3, rtol=0)
    assert g._graphs and all(e.static_out.device == torch.device("cuda", 1) for e in g._graphs.values())


FAILED_CAPTURE = """
import torch
from esrgan_video.runtime.capture import capture_graph

dev = torch.device("cuda", torch.cuda.current_device())
before = torch.cuda.current_stream(dev)
capture = torch.cuda.Stream(dev)
x = torch.ones(8, device=dev)
try:
    capture_graph(torch.cuda.CUDAGraph(), capture, dev, lambda: x.cpu())  # a synchronising copy: not capturable
    print("capture: no error")
except RuntimeError as e:
    print("capture: failed:", type(e).__name__)
now = torch.cuda.current_stream(dev)
print("current stream:", "as before" if now == before else ("the capture stream" if now == capture else "another"))
print("device runs:", float((x + 1).sum()))
"""


@_mark(gpu)
def test_a_failed_capture_leaves_the_callers_stream_current():
    """Real torch.cuda.graph, in a child process (a failed capture must not cost the other tests their CUDA
    context): work that synchronises fails the capture, and afterwards the thread's current stream is the one it
    had before, not the capture stream (torch's graph.__exit__ leaves its stream context only when capture_end
    succeeds; capture.capture_graph leaves it on failure), and the device still runs."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, "-c", FAILED_CAPTURE], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("capture: failed:"), proc.stdout
    assert lines[1:] == ["current stream: as before", "device runs: 16.0"], proc.stdout
