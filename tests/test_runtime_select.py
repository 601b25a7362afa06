"""Backend selection: the pure decision for every combination of facts, and make_backend on this machine."""

from __future__ import annotations

import pytest
import torch

from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams
from esrgan_video.errors import BackendError
from esrgan_video.runtime.select import choose_backend, choose_precision, make_backend


def pick(requested="auto", device=None, cuda=True, trt=True, ttrt=False, ort=False, precision=None, fixed=True):
    return choose_backend(requested, device=device, cuda_available=cuda, tensorrt_available=trt,
                          torch_tensorrt_available=ttrt, onnxruntime_available=ort, precision=precision,
                          fixed_shape=fixed)


def test_auto_prefers_tensorrt_then_torch_cuda_then_cpu():
    assert pick()[:2] == ("tensorrt", "cuda")
    name, dev, why = pick(trt=False)
    assert (name, dev) == ("torch", "cuda") and why == "tensorrt not installed → torch CUDA"
    name, dev, why = pick(cuda=False)
    assert (name, dev) == ("torch", "cpu") and why == "no CUDA device, onnxruntime not installed → torch CPU"
    assert pick(cuda=False, trt=False)[:2] == ("torch", "cpu")


def test_auto_on_the_cpu_prefers_onnxruntime_when_it_can():
    name, dev, why = pick(cuda=False, ort=True)
    assert (name, dev) == ("onnxruntime", "cpu") and why == "no CUDA device, onnxruntime found → ONNX Runtime CPU"
    assert pick(device="cpu", ort=True)[:2] == ("onnxruntime", "cpu")
    assert pick(ort=True)[0] == "tensorrt"  # a GPU still wins
    assert pick(trt=False, ort=True)[:2] == ("torch", "cuda")
    name, _, why = pick(cuda=False, ort=True, precision="bf16")
    assert name == "torch" and "ONNX Runtime runs fp32" in why
    name, _, why = pick(cuda=False, ort=True, fixed=False)
    assert name == "torch" and "no fixed tile shape" in why
    assert pick(cuda=False, ort=True, precision="fp32")[0] == "onnxruntime"


def test_auto_respects_device_precision_and_shape():
    assert pick(device="cpu")[:2] == ("torch", "cpu")
    assert pick(device="cuda:1")[:2] == ("tensorrt", "cuda:1")
    name, _, why = pick(precision="bf16")
    assert name == "torch" and "bf16" in why
    name, _, why = pick(fixed=False)
    assert name == "torch" and "tile shape" in why
    assert pick(precision="fp32")[0] == "tensorrt"


def test_explicit_requests():
    assert pick("torch")[:2] == ("torch", "cuda")
    assert pick("torch", cuda=False)[:2] == ("torch", "cpu")
    assert pick("torch", device="cpu")[:2] == ("torch", "cpu")
    assert pick("tensorrt", trt=True)[:2] == ("tensorrt", "cuda")
    assert pick("torch-tensorrt", ttrt=True)[:2] == ("torch-tensorrt", "cuda")
    assert pick("onnxruntime", ort=True)[:2] == ("onnxruntime", "cpu")
    assert pick("torch", cuda=False, ort=True)[:2] == ("torch", "cpu")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(requested="tensorrt", device="cpu"), "expected --device cuda, got cpu"),
        (dict(requested="tensorrt", cuda=False), "needs a CUDA device"),
        (dict(requested="tensorrt", trt=False), "tensorrt is not installed"),
        (dict(requested="torch-tensorrt", ttrt=False), "torch-tensorrt is not installed"),
        (dict(requested="tensorrt", precision="bf16"), "fp16 or fp32, got bf16"),
        (dict(requested="tensorrt", fixed=False), "fixed tile shape"),
        (dict(requested="onnx"), "backend must be one of auto, torch, onnxruntime, tensorrt, torch-tensorrt, got 'onnx'"),
        (dict(requested="onnxruntime", ort=False), "onnxruntime is not installed"),
        (dict(requested="onnxruntime", ort=True, device="cuda"), "runs on the CPU"),
        (dict(requested="onnxruntime", ort=True, cuda=False, precision="fp16"), "runs fp32, got fp16"),
        (dict(requested="onnxruntime", ort=True, cuda=False, fixed=False), "fixed tile shape"),
        (dict(device="cuda", cuda=False), "no CUDA device is available"),
        (dict(device="mps"), "device must be"),
        (dict(precision="int8"), "precision must be one of"),
    ],
)
def test_impossible_combinations_name_expected_and_got(kwargs, match):
    with pytest.raises(BackendError, match=match):
        pick(**kwargs)


def test_choose_precision():
    assert choose_precision(None, "cuda") == "fp16"
    assert choose_precision(None, "cpu") == "fp32"
    assert choose_precision("bf16", "cuda") == "bf16"
    with pytest.raises(BackendError):
        choose_precision("half", "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="describes a machine without CUDA")
def test_make_backend_on_this_cpu_machine():
    torch.manual_seed(0)
    model = RRDBNet(RRDBParams(nf=8, nb=1, gc=4)).eval()
    b = make_backend(model, tile_shape=(8, 8))
    assert b.info.name == "onnxruntime" and b.info.device.type == "cpu" and b.info.dtype == torch.float32
    assert b.info.reason == "no CUDA device, onnxruntime found → ONNX Runtime CPU fp32"
    x = torch.rand(1, 3, 8, 8)
    with b, torch.no_grad():
        torch.testing.assert_close(b(x), model(x), atol=1e-5, rtol=0)
    t = make_backend(model, backend="torch")
    assert t.info.name == "torch" and t.info.reason == "--backend torch, no CUDA device → torch CPU fp32"
    with t, torch.no_grad():
        torch.testing.assert_close(t(x), model(x), atol=1e-6, rtol=0)
    unshaped = make_backend(model)
    assert unshaped.info.name == "torch" and "no fixed tile shape" in unshaped.info.reason
    with pytest.raises(BackendError, match="needs a CUDA device"):
        make_backend(model, backend="tensorrt", tile_shape=(8, 8))
    with pytest.raises(BackendError, match="batch must be"):
        make_backend(model, batch=0)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("device", "gpu", "device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
        ("precision", "int8", "precision must be one of fp32, fp16, bf16, got 'int8'"),
        ("tile_shape", (0, 8), r"tile shape must be positive \(height, width\) integers, got \(0, 8\)"),
        ("tile_shape", (8,), "tile shape must be positive"),
        ("batch", 0, "batch must be >= 1, got 0"),
        ("finite_check", "sometimes", "finite check mode must be one of"),
        ("notice", "stderr", "notice must be a callable"),
    ],
)
def test_common_options_are_validated_once(field, value, match):
    from esrgan_video.runtime.base import CommonOptions

    with pytest.raises(BackendError, match=match):
        CommonOptions(**{field: value})


def test_backends_take_the_common_and_their_own_options_whole():
    from esrgan_video.runtime.base import CommonOptions
    from esrgan_video.runtime.onnxruntime_backend import OnnxRuntimeOptions
    from esrgan_video.runtime.torch_backend import TorchBackend, TorchOptions

    model = RRDBNet(RRDBParams(nf=8, nb=1, gc=4)).eval()
    common = CommonOptions(device="cpu", tile_shape=[8, 16], batch=2)
    assert common.tile_shape == (8, 16) and common.fixed_tile_shape("x") == (8, 16)
    b = TorchBackend(model, common, TorchOptions(channels_last=False))
    assert b.common is common and b.options.channels_last is False and not b.channels_last
    assert TorchBackend(model).options == TorchOptions()  # both omitted: the defaults
    with pytest.raises(BackendError, match="TorchBackend: expected a CommonOptions as the second argument, got 'cpu'"):
        TorchBackend(model, "cpu")  # the flat signature of old
    with pytest.raises(BackendError, match="expected a TorchOptions as the third argument"):
        TorchBackend(model, common, OnnxRuntimeOptions())
    # make_backend routes its keywords: the shared ones to CommonOptions, the rest to the picked backend's Options
    t = make_backend(model, backend="torch", device="cpu", finite_check="off", channels_last=False)
    assert t.options == TorchOptions(channels_last=False) and t.guard.mode == "off"
    assert t.common.device == "cpu" and t.common.precision == "fp32" and t.common.reason == t.info.reason
    with pytest.raises(TypeError, match="threads"):
        make_backend(model, backend="torch", device="cpu", threads=1)  # an onnxruntime option
    pytest.importorskip("onnxruntime")
    o = make_backend(model, backend="onnxruntime", device="cpu", tile_shape=(8, 8), batch=2, threads=1)
    assert o.options == OnnxRuntimeOptions(threads=1) and o.info.fixed_shape == (2, 8, 8)


def test_the_backend_lifecycle_opens_once_checks_batches_and_reopens_after_close():
    """Backend.open/infer/close, written once for every backend: ``_open`` runs once however many threads call
    ``open`` or ``infer`` at the same time, a bad batch is refused before the backend sees it, and ``close``
    releases so that the next ``infer`` opens again."""
    import threading
    import time

    from esrgan_video.runtime.base import Backend

    events: list[str] = []

    class Counting(Backend):
        class Options:
            pass

        def _setup(self, model, common, options):
            self._identify(model, name="counting", device=torch.device("cpu"), dtype=torch.float32,
                           fixed_shape=None, default_check="off")

        def _open(self):
            events.append("open")
            time.sleep(0.05)  # a slow build: the other threads must wait for it, not build again

        def _infer(self, batch, stream):
            events.append("infer")
            return batch.repeat_interleave(self.scale, -1).repeat_interleave(self.scale, -2)

        def _release(self):
            events.append("release")

    b = Counting(RRDBNet(RRDBParams(nb=1, nf=8, gc=4, scale=2)))
    x = torch.rand(1, 3, 4, 4)
    threads = [threading.Thread(target=b.infer, args=(x,)) for _ in range(4)] + [threading.Thread(target=b.open)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert events.count("open") == 1 and events.count("infer") == 4 and events.index("open") == 0
    with pytest.raises(BackendError, match=r"expected an N x 3 x H x W batch, got shape \(1, 1, 4, 4\)"):
        b.infer(torch.rand(1, 1, 4, 4))
    assert events.count("infer") == 4
    b.close()
    assert events[-1] == "release"
    assert b.infer(x).shape == (1, 3, 8, 8) and events[-2:] == ["open", "infer"]


def test_device_spellings_the_options_accept_reach_the_backends_as_devices():
    """Every spelling CommonOptions accepts (a GPU number, case, spaces, auto) is a device to the backends too: a
    one-line BackendError where the backend cannot run there, never torch's 'Invalid device string'."""
    from esrgan_video.runtime.base import CommonOptions, cuda_device
    from esrgan_video.runtime.onnxruntime_backend import OnnxRuntimeBackend

    m = RRDBNet(RRDBParams(nb=1, nf=8, gc=4, scale=2))
    assert OnnxRuntimeBackend(m, CommonOptions(device=" CPU", tile_shape=(8, 8))).info.device == torch.device("cpu")
    assert OnnxRuntimeBackend(m, CommonOptions(device="auto", tile_shape=(8, 8))).info.device == torch.device("cpu")
    with pytest.raises(BackendError, match="runs on the CPU, got device cuda:1"):
        OnnxRuntimeBackend(m, CommonOptions(device="1", tile_shape=(8, 8)))
    with pytest.raises(BackendError, match="needs a CUDA device, got cpu"):
        cuda_device(" Cpu", "tensorrt")
    if not torch.cuda.is_available():
        for spelling in ("1", "Cuda:0", "auto", "cuda"):
            with pytest.raises(BackendError, match="torch.cuda.is_available"):
                cuda_device(spelling, "tensorrt")


def test_auto_falls_back_to_torch_cuda_when_tensorrt_is_installed_but_broken(monkeypatch):
    """A tensorrt wheel without its NVIDIA libraries is found but does not import: auto picks torch CUDA and says
    why, rather than failing when the engine backend opens; an explicit --backend tensorrt still refuses in one line."""
    import sys

    from esrgan_video.runtime import tensorrt_backend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(tensorrt_backend, "tensorrt_available", lambda: True)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError
    from esrgan_video.runtime import select

    real = select.backend_class

    def built(name):  # the class make_backend picked, built without moving the model to a GPU this machine lacks
        def init(self, model, common, options):
            self.name, self.common = name, common
        return type(real(name).__name__, (), {"Options": real(name).Options, "__init__": init})

    monkeypatch.setattr(select, "backend_class", built)
    m = RRDBNet(RRDBParams(nb=1, nf=8, gc=4, scale=2))
    be = make_backend(m, backend="auto", tile_shape=(8, 8))
    assert type(be).__name__ == "TorchBackend"
    assert be.common.reason.startswith("tensorrt is installed but does not import (ModuleNotFoundError: ")
    assert be.common.reason.endswith(") → torch CUDA fp16")

    def broken():
        try:
            raise OSError("libnvinfer.so.10: cannot open shared object file (No such file or directory)")
        except OSError as e:
            raise BackendError(f"{tensorrt_backend.INSTALL_HINT} (OSError: {e})") from e

    monkeypatch.setattr(tensorrt_backend, "import_tensorrt", broken)
    be = make_backend(m, backend="auto", tile_shape=(8, 8))
    assert type(be).__name__ == "TorchBackend"
    assert be.common.reason == ("tensorrt is installed but does not import (OSError: libnvinfer.so.10: cannot open "
                                "shared object file (No such file or directory)) → torch CUDA fp16")
    be = make_backend(m, backend="tensorrt", tile_shape=(8, 8))  # asked for: picked, and refused when it opens
    assert type(be).__name__ == "TensorRTBackend"
