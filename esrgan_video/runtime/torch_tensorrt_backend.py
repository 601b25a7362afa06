"""torch-tensorrt backend: ``torch_tensorrt.compile(ir="dynamo")`` of the fp16 model for one static shape.

An alternative to the ONNX path (``--backend torch-tensorrt``). Explicit typing keeps the dtypes of
the half model; no ``enabled_precisions`` (deprecated, and refused beside explicit typing). Where
``torch_tensorrt.dynamo.compile`` has ``use_explicit_typing`` (up to 2.13, TensorRT 10: its default was
False up to 2.9) it is passed True; 2.14 (TensorRT 11) removed it with weak typing, explicit typing
being the only mode, and ignores unknown keywords, so there it is not passed (:func:`typing_kwargs`). The compiled module is not cached on
disk (torch-tensorrt compiles at open, minutes for x4plus); use the ``tensorrt`` backend
for cached engines. Written to torch-tensorrt's documented API and verified by the
``tensorrt``-marked tests where torch-tensorrt is installed.

Versions: every torch-tensorrt release is built against one torch minor and pins it (v2.12:
``torch>=2.12.0,<2.13.0``, ``tensorrt>=10.16.1,<10.17.0``), so torch-tensorrt X.Y runs only with
torch X.Y. :func:`import_torch_tensorrt` checks that pairing from the installed distributions'
metadata before importing (a mismatched C++ extension fails in obscure ways, or pip replaces
torch), and refuses with one line naming both versions.

A failure inside ``torch_tensorrt.compile`` (a TensorRT the driver cannot run: the ``tensorrt`` metapackage installs
``tensorrt-cu13``, whose ``trt.Builder`` raises ``TypeError: pybind11::init(): factory function returned nullptr`` on
a CUDA 12 driver; an op no converter takes with full compilation; out of memory while building) is one BackendError
line naming the model, the shape and the cause (:func:`compile_error`), with the TensorRT backend's advice for the
driver case (``tensorrt_backend.driver_advice``), not a traceback.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from dataclasses import dataclass

import torch
from torch import nn

from esrgan_video.errors import BackendError, EsrganVideoError, brief, causes
from esrgan_video.runtime.base import Backend, CommonOptions, cuda_device, precision_dtype, precision_name
from esrgan_video.runtime.torch_backend import prepare_model


def torch_tensorrt_available() -> bool:
    return importlib.util.find_spec("torch_tensorrt") is not None


INSTALL_HINT = "pip install 'esrgan-video[torch-tensorrt]' (pins the pair this project is tested with)"


def _major_minor(version: str) -> tuple[int, int] | None:
    parts = version.split("+")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def pairing_problem(torch_version: str, torch_trt_version: str) -> str:
    """'' when torch-tensorrt ``torch_trt_version`` was built for torch ``torch_version``, else why not (pure).

    The rule, from each release's own pins: torch-tensorrt X.Y requires torch X.Y.*."""
    a, b = _major_minor(torch_version), _major_minor(torch_trt_version)
    if a is None or b is None:
        return f"cannot read the versions torch {torch_version} / torch-tensorrt {torch_trt_version}"
    if a != b:
        return (f"torch-tensorrt {torch_trt_version} needs torch {b[0]}.{b[1]}.*, but torch {torch_version} is "
                f"installed; install torch-tensorrt {a[0]}.{a[1]}.* ({INSTALL_HINT}) or use --backend tensorrt")
    return ""


def installed_torch_tensorrt_version() -> str | None:
    for dist in ("torch-tensorrt", "torch_tensorrt"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def import_torch_tensorrt():
    """Import torch_tensorrt after checking it pairs with this torch; BackendError (one line) otherwise, also when
    it is installed but its import fails (a missing NVIDIA library raises OSError, not ImportError)."""
    version = installed_torch_tensorrt_version()
    if version is not None:
        problem = pairing_problem(torch.__version__, version)
        if problem:
            raise BackendError(problem)
    try:
        import torch_tensorrt
    except ImportError as e:
        raise BackendError(
            f"torch-tensorrt is not installed; {INSTALL_HINT} or use --backend torch ({e})"
        ) from e
    except Exception as e:  # noqa: BLE001 - installed but broken: OSError (libnvinfer), RuntimeError (its C++ ops)
        raise BackendError(f"torch-tensorrt is installed but cannot be imported ({brief(e)}); "
                           f"{INSTALL_HINT} or use --backend torch") from e
    return torch_tensorrt


def typing_kwargs(dynamo_compile) -> dict:
    """``{"use_explicit_typing": True}`` where ``dynamo_compile`` (``torch_tensorrt.dynamo.compile``) takes that
    keyword, ``{}`` where it does not (torch-tensorrt 2.14+: explicit typing is the only mode). A signature that
    cannot be read gets the keyword: older releases need it, newer ones drop unknown keywords silently."""
    import inspect

    try:
        takes = "use_explicit_typing" in inspect.signature(dynamo_compile).parameters
    except (TypeError, ValueError):
        takes = True
    return {"use_explicit_typing": True} if takes else {}


NULLPTR_FACTORY = "factory function returned nullptr"
"""What TensorRT's pybind11 binding says when ``trt.Builder``/``trt.Runtime`` get no object from the library: a
TensorRT built for a CUDA the driver does not support (TensorRT itself logs "CUDA initialization failure")."""


def driver_cannot_run(e: BaseException) -> bool:
    """Whether ``e``, or an exception it was raised from or while handling (torch.compile's BackendCompilerFailed wraps
    it), is the binding's nullptr factory (:data:`NULLPTR_FACTORY`) (pure)."""
    return any(NULLPTR_FACTORY in str(c) for c in causes(e))


def compile_error(e: BaseException, *, model: str, shape: tuple[int, ...], precision: str, versions: str,
                  cuda: str) -> BackendError:
    """The one-line BackendError for ``e``, raised by ``torch_tensorrt.compile`` of ``model`` for input ``shape``
    (pure). ``versions``: "torch-tensorrt X (TensorRT Y)"; ``cuda``: the CUDA major TensorRT was built for
    (``engine_cache.tensorrt_cuda_major``). A TensorRT the driver cannot run (:func:`driver_cannot_run`) gets the
    TensorRT backend's advice (``tensorrt_backend.driver_advice``); anything else the backends that need no
    torch-tensorrt."""
    from esrgan_video.runtime.tensorrt_backend import driver_advice

    what = f"{versions} could not compile {model} for {'x'.join(map(str, shape))} {precision} ({brief(e)})"
    if driver_cannot_run(e):
        return BackendError(f"{what}: TensorRT is a CUDA {cuda} build; {driver_advice(cuda)}")
    return BackendError(f"{what}; --backend tensorrt builds the model from ONNX instead, --backend torch runs it "
                        "without TensorRT")


def _versions(torch_tensorrt) -> str:
    """"torch-tensorrt X (TensorRT Y)" of the imported modules (torch_tensorrt imports tensorrt)."""
    import sys

    trt = sys.modules.get("tensorrt")
    return (f"torch-tensorrt {getattr(torch_tensorrt, '__version__', '?')} "
            f"(TensorRT {getattr(trt, '__version__', '?')})")


@dataclass(frozen=True, kw_only=True)
class TorchTensorRTOptions:
    """The torch-tensorrt backend's own options (what every backend takes is
    :class:`~esrgan_video.runtime.base.CommonOptions`)."""

    opt_level: int | None = None
    """``optimization_level`` of ``torch_tensorrt.compile`` (TensorRT's builder level, 0-5); None: its default."""

    def __post_init__(self) -> None:
        if self.opt_level is not None and (isinstance(self.opt_level, bool) or self.opt_level not in range(6)):
            raise BackendError(f"torch-tensorrt backend: opt_level must be 0-5 or None, got {self.opt_level!r}")


class TorchTensorRTBackend(Backend):
    """A torch-tensorrt compiled module for batches of exactly (batch, *tile_shape).

    Args:
        model: the generator (compiled at :meth:`open`, not modified).
        common: device (a CUDA device; default the current one), precision ('fp16', the default, or 'fp32'),
            tile_shape (required) and batch, finite_check ('deferred' by default), notice and reason.
        options: :class:`TorchTensorRTOptions` (opt_level).
    """

    Options = TorchTensorRTOptions

    def _setup(self, model: nn.Module, common: CommonOptions, options: TorchTensorRTOptions) -> None:
        dev = cuda_device(common.device, "torch-tensorrt")
        dtype = precision_dtype(common.precision or "fp16")
        if dtype == torch.bfloat16:
            raise BackendError("the torch-tensorrt backend runs fp16 or fp32, got bf16")
        self.model = model
        self.tile_shape = common.fixed_tile_shape("torch-tensorrt")
        self.opt_level = options.opt_level
        self._identify(model, name="torch-tensorrt", device=dev, dtype=dtype,
                       fixed_shape=(common.batch, *self.tile_shape), default_check="deferred")
        self._compiled = None
        self._clamp = True

    def _open(self) -> None:
        torch_tensorrt = import_torch_tensorrt()
        m, self._clamp = prepare_model(self.model, self.info.device, self.info.dtype, channels_last=False)
        n, (h, w) = self.info.fixed_shape[0], self.tile_shape
        kwargs = typing_kwargs(torch_tensorrt.dynamo.compile)
        if self.opt_level is not None:
            kwargs["optimization_level"] = self.opt_level
        t0 = time.perf_counter()
        self.notice(f"torch-tensorrt {torch_tensorrt.__version__}: compiling for {n}x{self.in_channels}x{h}x{w}...")
        shape = (n, self.in_channels, h, w)
        try:
            with torch.cuda.device(self.info.device):
                self._compiled = torch_tensorrt.compile(
                    m,
                    ir="dynamo",
                    inputs=[torch_tensorrt.Input(shape, dtype=self.info.dtype)],
                    **kwargs,
                )
        except EsrganVideoError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever torch.export, the converters or TensorRT raise: one line
            from esrgan_video.runtime import engine_cache

            raise compile_error(e, model=engine_cache.model_label(self.model), shape=shape,
                                precision=precision_name(self.info.dtype), versions=_versions(torch_tensorrt),
                                cuda=engine_cache.tensorrt_cuda_major()) from e
        self.notice(f"torch-tensorrt: compiled in {time.perf_counter() - t0:.1f} s")

    def _release(self) -> None:
        self._compiled = None

    def _infer(self, batch: torch.Tensor, stream: "torch.cuda.Stream | None") -> torch.Tensor:
        caller = stream if stream is not None else torch.cuda.current_stream(self.info.device)
        with torch.inference_mode(), torch.cuda.device(self.info.device), torch.cuda.stream(caller):
            out = self._compiled(batch.to(self.info.dtype).contiguous())
            self.guard.update(out)
            if self._clamp:
                out = out.clamp(0.0, 1.0)
        self.guard.poll()
        return out
