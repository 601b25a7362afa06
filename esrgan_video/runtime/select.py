"""Pick and build a backend: ``make_backend(model, backend="auto", ...)``.

``auto`` picks TensorRT when tensorrt and a CUDA device are present (and the tile shape is
fixed), else torch on CUDA; on the CPU it picks ONNX Runtime (fp32, fixed tile shape) when
onnxruntime is installed, else torch. It says why in ``info.reason``, e.g.
"tensorrt not installed → torch CUDA fp16" or "no CUDA device, onnxruntime found → ONNX Runtime CPU fp32".
The decision itself is the pure :func:`choose_backend`; :func:`make_backend` feeds it the
facts of this machine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from esrgan_video.errors import BackendError, brief
from esrgan_video.options import BACKENDS
from esrgan_video.runtime.base import PRECISIONS, Backend, CommonOptions
from esrgan_video.runtime.devices import device_kind

TRT_PRECISIONS = ("fp16", "fp32")


def choose_backend(
    requested: str,
    *,
    device: str | None,
    cuda_available: bool,
    tensorrt_available: bool,
    torch_tensorrt_available: bool = False,
    onnxruntime_available: bool = False,
    precision: str | None = None,
    fixed_shape: bool = True,
) -> tuple[str, str, str]:
    """(backend name, device, reason) for a request and the machine's facts (pure).

    ``device`` None means "the best there is"; an explicit device is honoured or refused.
    ``fixed_shape`` says whether a tile shape is known (engines need one).
    Raises BackendError (expected vs got) for impossible combinations.
    """
    if requested not in BACKENDS:
        raise BackendError(f"backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    if precision is not None and precision not in PRECISIONS:
        raise BackendError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    kind = device_kind(device)
    if kind == "cuda" and not cuda_available:
        raise BackendError(f"device {device} requested but no CUDA device is available")
    cuda_dev = device if kind == "cuda" else "cuda"

    if requested in ("tensorrt", "torch-tensorrt"):
        if kind == "cpu":
            raise BackendError(f"backend {requested} needs a CUDA device (expected --device cuda, got {device})")
        if not cuda_available:
            raise BackendError(f"backend {requested} needs a CUDA device, but none is available")
        installed = tensorrt_available if requested == "tensorrt" else torch_tensorrt_available
        if not installed:
            pkg = "tensorrt" if requested == "tensorrt" else "torch-tensorrt"
            raise BackendError(f"backend {requested} requested but {pkg} is not installed; "
                               f"pip install 'esrgan-video[{pkg}]' or use --backend torch")
        if precision is not None and precision not in TRT_PRECISIONS:
            raise BackendError(f"backend {requested} runs {' or '.join(TRT_PRECISIONS)}, got {precision}")
        if not fixed_shape:
            raise BackendError(f"backend {requested} builds for a fixed tile shape; none was given")
        return requested, cuda_dev, f"--backend {requested} requested"

    if requested == "onnxruntime":
        if kind == "cuda":
            raise BackendError(f"backend onnxruntime runs on the CPU (expected --device cpu, got {device}); "
                               "use --backend tensorrt or torch on a GPU")
        if not onnxruntime_available:
            raise BackendError("backend onnxruntime requested but onnxruntime is not installed; "
                               "pip install onnxruntime or use --backend torch")
        if precision not in (None, "fp32"):
            raise BackendError(f"backend onnxruntime runs fp32, got {precision}")
        if not fixed_shape:
            raise BackendError("backend onnxruntime runs a fixed tile shape; none was given")
        return "onnxruntime", "cpu", "--backend onnxruntime requested → ONNX Runtime CPU"

    if requested == "torch":
        if kind == "cpu" or (kind is None and not cuda_available):
            why = "device cpu requested" if kind == "cpu" else "no CUDA device"
            return "torch", "cpu", f"--backend torch, {why} → torch CPU"
        return "torch", cuda_dev, "--backend torch → torch CUDA"

    # auto
    if kind == "cpu" or not cuda_available:
        why = "device cpu requested" if kind == "cpu" else "no CUDA device"
        if not onnxruntime_available:
            return "torch", "cpu", f"{why}, onnxruntime not installed → torch CPU"
        if precision not in (None, "fp32"):
            return "torch", "cpu", f"{why}, {precision} requested (ONNX Runtime runs fp32) → torch CPU"
        if not fixed_shape:
            return "torch", "cpu", f"{why}, no fixed tile shape → torch CPU"
        return "onnxruntime", "cpu", f"{why}, onnxruntime found → ONNX Runtime CPU"
    if not tensorrt_available:
        return "torch", cuda_dev, "tensorrt not installed → torch CUDA"
    if precision is not None and precision not in TRT_PRECISIONS:
        return "torch", cuda_dev, f"{precision} requested (TensorRT engines are fp16/fp32) → torch CUDA"
    if not fixed_shape:
        return "torch", cuda_dev, "no fixed tile shape for an engine → torch CUDA"
    return "tensorrt", cuda_dev, "tensorrt and a CUDA device found → tensorrt"


def choose_precision(requested: str | None, device_type: str) -> str:
    """The precision to run: the request, else fp16 on CUDA and fp32 on the CPU (pure)."""
    if requested is not None:
        if requested not in PRECISIONS:
            raise BackendError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
        return requested
    return "fp16" if device_type == "cuda" else "fp32"


def backend_class(name: str) -> type[Backend]:
    """The class of a backend by its name (``choose_backend``'s first answer), imported on demand."""
    if name == "torch":
        from esrgan_video.runtime.torch_backend import TorchBackend

        return TorchBackend
    if name == "onnxruntime":
        from esrgan_video.runtime.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend
    if name == "tensorrt":
        from esrgan_video.runtime.tensorrt_backend import TensorRTBackend

        return TensorRTBackend
    if name == "torch-tensorrt":
        from esrgan_video.runtime.torch_tensorrt_backend import TorchTensorRTBackend

        return TorchTensorRTBackend
    raise BackendError(f"backend must be one of {', '.join(BACKENDS[1:])}, got {name!r}")


def make_backend(
    model: nn.Module,
    *,
    backend: str = "auto",
    device: str | torch.device | None = None,
    precision: str | None = None,
    tile_shape: tuple[int, int] | None = None,
    batch: int = 1,
    streams: int = 2,
    finite_check: str | None = None,
    notice: Callable[[str], None] | None = None,
    **options,
) -> Backend:
    """Build the backend ``choose_backend`` picks on this machine (not yet opened).

    The shared arguments become one :class:`~esrgan_video.runtime.base.CommonOptions` (validated before anything
    is picked; its ``device``, ``precision`` and ``reason`` are then what was picked and why). ``notice`` receives
    the backend's one-line messages (TensorRT build progress, "CUDA graphs are off ..."); default silent: backends
    never print. ``streams`` is TensorRT's (its contexts); the other backends ignore it. ``options`` are the
    fields of the picked backend's own ``Options`` dataclass (torch, :class:`TorchOptions`: ``channels_last``,
    ``compile``, ``cuda_graphs``, ``fp32_layers``; onnxruntime, :class:`OnnxRuntimeOptions`: ``threads``; tensorrt,
    :class:`TensorRTOptions`: ``fp32_layers``, ``build`` (a ``BuildOptions``), ``cuda_graphs``, ``cache_root``;
    torch-tensorrt, :class:`TorchTensorRTOptions`: ``opt_level``); a name it does not have is a TypeError.
    """
    from esrgan_video.runtime.onnxruntime_backend import onnxruntime_available
    from esrgan_video.runtime.tensorrt_backend import tensorrt_available
    from esrgan_video.runtime.torch_tensorrt_backend import torch_tensorrt_available

    common = CommonOptions(device=device, precision=precision, tile_shape=tile_shape, batch=batch,
                           finite_check=finite_check, notice=notice)
    name, dev, why = choose_backend(
        backend,
        device=None if device is None else str(device),
        cuda_available=torch.cuda.is_available(),
        tensorrt_available=tensorrt_available(),
        torch_tensorrt_available=torch_tensorrt_available(),
        onnxruntime_available=onnxruntime_available(),
        precision=precision,
        fixed_shape=tile_shape is not None,
    )
    if backend == "auto" and name == "tensorrt":  # found is not importable: a wheel without its NVIDIA libraries
        from esrgan_video.runtime.tensorrt_backend import import_tensorrt

        try:
            import_tensorrt()
        except BackendError as e:
            name = "torch"
            why = f"tensorrt is installed but does not import ({brief(e.__cause__ or e)}) → torch CUDA"
    prec = choose_precision(precision, device_kind(dev))
    common = dataclasses.replace(common, device=dev, precision=prec, reason=f"{why} {prec}")
    cls = backend_class(name)
    own = cls.Options(streams=streams, **options) if name == "tensorrt" else cls.Options(**options)
    return cls(model, common, own)
