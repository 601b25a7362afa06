"""torch-tensorrt backend: a failure inside ``torch_tensorrt.compile`` is one BackendError line.

The translation (:func:`compile_error`) is pure and runs here. The backend's ``open`` is driven here against a stand-in
``torch_tensorrt`` module whose ``compile`` raises what the real one raises for a TensorRT the driver cannot run (this
machine has no CUDA and no torch-tensorrt); the real compile is the GPU test at the end (marked tensorrt), which skips
with a reason where there is no CUDA or no torch-tensorrt.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types

import pytest
import torch

from esrgan_video.errors import BackendError
from esrgan_video.runtime import torch_tensorrt_backend as ttb
from esrgan_video.runtime.base import CommonOptions
from esrgan_video.runtime.tensorrt_backend import driver_advice

NULLPTR = "pybind11::init(): factory function returned nullptr"
VERSIONS = "torch-tensorrt 2.12.0 (TensorRT 10.16.1)"


def _raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    """``exc`` as raised (from ``cause``), with its traceback and chain as Python sets them."""
    try:
        if cause is None:
            raise exc
        raise exc from cause
    except BaseException as e:  # noqa: BLE001 - handing the raised object back
        return e


def test_a_tensorrt_the_driver_cannot_run_is_one_line_with_the_tensorrt_backends_advice():
    """The cu13 TensorRT on a CUDA 12 driver: ``trt.Builder`` inside ``torch_tensorrt.compile`` raises the binding's
    nullptr TypeError. The line names torch-tensorrt's and TensorRT's versions, the model, the shape and precision, the
    cause, and ends with exactly the TensorRT backend's advice (one function, ``driver_advice``). The same where
    torch.compile's wrapper (``BackendCompilerFailed``, raised from the TypeError, its message quoting it) comes
    first."""
    direct = _raised(TypeError(NULLPTR))
    wrapped = _raised(RuntimeError(f"backend='torch_tensorrt' raised:\nTypeError: {NULLPTR}"), direct)
    chained_only = _raised(RuntimeError("lowering failed"), _raised(TypeError(NULLPTR)))
    for e in (direct, wrapped, chained_only):
        assert ttb.driver_cannot_run(e), e
        err = ttb.compile_error(e, model="RealESRGAN_x4plus", shape=(1, 3, 270, 480), precision="fp16",
                                versions=VERSIONS, cuda="13")
        msg = str(err)
        assert isinstance(err, BackendError) and err.exit_code == 7 and "\n" not in msg, msg
        assert msg.startswith(f"{VERSIONS} could not compile RealESRGAN_x4plus for 1x3x270x480 fp16 ("), msg
        assert msg.endswith(f": TensorRT is a CUDA 13 build; {driver_advice('13')}"), msg
        assert "pip install tensorrt-cu12" in msg and "--backend tensorrt" not in msg
    assert f"(TypeError: {NULLPTR})" in str(ttb.compile_error(direct, model="m", shape=(1, 3, 8, 8), precision="fp16",
                                                                versions=VERSIONS, cuda="13"))


def test_any_other_compile_failure_is_one_line_naming_the_way_round():
    """An op without a converter (with full compilation), a torch.export failure, out of memory while building: the
    first line of the cause, and the backends that do without torch-tensorrt; no driver advice."""
    e = _raised(RuntimeError("Conversion of function torch._ops.aten.foo.default not currently supported!\n"
                             "  File \"x.py\", line 1\n    more detail"))
    assert not ttb.driver_cannot_run(e)
    msg = str(ttb.compile_error(e, model="rrdb-x4", shape=(2, 3, 64, 64), precision="fp32", versions=VERSIONS,
                                cuda="12"))
    assert msg == (f"{VERSIONS} could not compile rrdb-x4 for 2x3x64x64 fp32 (RuntimeError: Conversion of function "
                   "torch._ops.aten.foo.default not currently supported!); --backend tensorrt builds the model from "
                   "ONNX instead, --backend torch runs it without TensorRT"), msg
    assert "driver" not in msg


def _stand_in(raises: BaseException) -> types.ModuleType:
    """A ``torch_tensorrt`` module with the names the backend uses (``__version__``, ``Input``, ``dynamo.compile``,
    ``compile``), whose ``compile`` raises ``raises`` as the real one would from inside."""
    mod = types.ModuleType("torch_tensorrt")
    mod.__version__ = "2.12.0"
    mod.Input = lambda shape, dtype: (shape, dtype)

    def dynamo_compile(exported_program, inputs, *, use_explicit_typing=False, **kwargs):
        raise raises

    mod.dynamo = types.SimpleNamespace(compile=dynamo_compile)

    def compile(module, ir, inputs, **kwargs):
        assert ir == "dynamo" and inputs == [((1, 3, 16, 16), torch.float16)]
        return mod.dynamo.compile(None, inputs, **kwargs)

    mod.compile = compile
    return mod


@pytest.mark.parametrize("case", ["driver", "other"])
def test_open_turns_a_compile_failure_into_the_line(monkeypatch, near_identity_file, case):
    """``open`` of the backend (a real model, loaded by name from its file) where ``torch_tensorrt.compile`` raises:
    the BackendError line naming the model as loaded, not the TypeError's traceback. CUDA is stood in for (no device
    here): the model is prepared on the CPU and ``torch.cuda.device`` is a no-op."""
    from esrgan_video.models.loading import load_model
    from esrgan_video.runtime import engine_cache
    from esrgan_video.runtime import torch_backend

    raises = TypeError(NULLPTR) if case == "driver" else RuntimeError("out of memory while building\nmore")
    monkeypatch.setattr(ttb, "import_torch_tensorrt", lambda: _stand_in(raises))
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.16.1"))
    monkeypatch.setattr(ttb, "cuda_device", lambda device, backend: torch.device("cuda"))
    monkeypatch.setattr(ttb, "prepare_model", lambda model, device, dtype, channels_last: torch_backend.prepare_model(
        model, torch.device("cpu"), dtype, channels_last=channels_last))
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())

    model = load_model(near_identity_file(4))
    label = engine_cache.model_label(model)
    assert label and label != "rrdb-x4"  # the loaded model's own name
    backend = ttb.TorchTensorRTBackend(model, CommonOptions(device="cuda", tile_shape=(16, 16)))
    with pytest.raises(BackendError) as e:
        backend.open()
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(
        f"torch-tensorrt 2.12.0 (TensorRT 10.16.1) could not compile {label} for 1x3x16x16 fp16 ("), msg
    assert e.value.__cause__ is raises
    if case == "driver":
        assert msg.endswith(f"TensorRT is a CUDA {engine_cache.tensorrt_cuda_major()} build; "
                            f"{driver_advice(engine_cache.tensorrt_cuda_major())}"), msg
    else:
        assert "(RuntimeError: out of memory while building); --backend tensorrt" in msg, msg


CUDA = torch.cuda.is_available()
TORCH_TRT = importlib.util.find_spec("torch_tensorrt") is not None


class _Refuses(torch.nn.Module):
    """A model torch.export cannot trace: its forward raises."""

    scale = 4

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, x):
        raise RuntimeError("this model cannot be traced")


@pytest.mark.tensorrt
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.skipif(not TORCH_TRT, reason="needs torch-tensorrt")
def test_a_real_compile_failure_is_one_line(near_identity_file):
    """The real ``torch_tensorrt.compile`` of a model whose trace fails: one BackendError line, not the traceback."""
    from esrgan_video.models.loading import load_model

    inner = load_model(near_identity_file(4))
    model = _Refuses(inner)
    model.info = inner.info
    with pytest.raises(BackendError) as e:
        ttb.TorchTensorRTBackend(model, CommonOptions(device="cuda", tile_shape=(16, 16))).open()
    msg = str(e.value)
    assert "\n" not in msg and f"could not compile {inner.info.name} for 1x3x16x16 fp16" in msg, msg
