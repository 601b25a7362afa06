"""ONNX Runtime backend: the fastest CPU path (fp32).

Why it exists: ONNX Runtime's CPU kernels (MLAS, with its blocked NCHWc layout applied at
``ORT_ENABLE_ALL``) run RRDB convolutions faster than PyTorch's oneDNN path on the CPUs we
measured (see benchmarks/results), and vs-mlrt, the fastest CPU peer, is built on them. This
backend runs the very graph the TensorRT path exports (:func:`export_onnx`, fp32), so the ONNX
export is exercised on every CPU run as well.

How it runs: the model is exported once per process with dynamic batch/height/width at a small
trace shape (a trace at the real tile size would cost a whole forward pass on the CPU); each
backend instance then opens one session for its fixed (batch, height, width), telling ONNX
Runtime those sizes with free-dimension overrides so it plans memory as for a static graph.
The export writes each RRDB's residual scaling as a depthwise 1x1 Conv (``scale_as_conv``), which
lets ONNX Runtime keep the whole trunk in its blocked NCHWc layout: 6-18 % faster than the
plain export that vs-mlrt runs; the compact model's PReLUs are written as depthwise convs for
the same reason (``prelu_as_convs``; see :mod:`esrgan_video.runtime.onnx_export`).
Output goes through the :class:`~esrgan_video.runtime.base.FiniteGuard` before the clamp, as
in every backend.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from esrgan_video.errors import BackendError
from esrgan_video.models.descriptor import describe
from esrgan_video.runtime.base import Backend, CommonOptions
from esrgan_video.runtime.devices import parse_device
from esrgan_video.runtime.onnx_export import INPUT_NAME, OUTPUT_NAME, ExportSpec, export_onnx

TRACE_SIDE = 16
"""Height and width of the dummy input the dynamic export is traced with."""
_EXPORTS: "OrderedDict[tuple, bytes]" = OrderedDict()
_EXPORTS_MAX = 2
_EXPORTS_LOCK = threading.Lock()


def _import():
    """``import onnxruntime`` with its telemetry off (``ORT_DISABLE_TELEMETRY=1`` unless the caller set it).

    ONNX Runtime's Linux/macOS builds (1.2x+) otherwise write a session file ``$TMPDIR/.ses``, a device id and an
    event database under ``~/.cache/Microsoft/DeveloperTools`` on import, and upload events: every run of ours
    imports it (the backend choice asks whether it is there). It reads the variable once, at import, so it is set
    only for the import and the process environment is left as it was."""
    import sys

    if "onnxruntime" in sys.modules:
        return sys.modules["onnxruntime"]
    added = "ORT_DISABLE_TELEMETRY" not in os.environ
    if added:
        os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    try:
        import onnxruntime
    finally:
        if added:
            os.environ.pop("ORT_DISABLE_TELEMETRY", None)
    return onnxruntime


@lru_cache(maxsize=1)
def onnxruntime_available() -> bool:
    """True when onnxruntime imports and offers its CPU execution provider."""
    try:
        onnxruntime = _import()
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return False
    return "CPUExecutionProvider" in onnxruntime.get_available_providers()


def import_onnxruntime():
    try:
        onnxruntime = _import()
    except ImportError as e:
        raise BackendError(
            "backend onnxruntime requested but onnxruntime is not installed; "
            "pip install onnxruntime or use --backend torch"
        ) from e
    return onnxruntime


def dynamic_onnx(model: nn.Module) -> bytes:
    """The fp32 ONNX graph of ``model`` with dynamic batch/height/width (exported once per weights).

    Keyed by the hash of the module's current state dict (0.08 s for x4plus), not by its ``.info``:
    weights changed in place after loading get a new export, never a stale one."""
    from esrgan_video.models.loading import state_dict_sha256

    u = describe(model).size_multiple
    side = max(TRACE_SIDE, u)
    spec = ExportSpec(tile_shape=(side, side), precision="fp32", dynamic=True, scale_as_conv=True, prelu_as_convs=True)
    key = (state_dict_sha256(model.state_dict()), type(model).__name__, int(getattr(model, "scale", 0)), spec)
    with _EXPORTS_LOCK:
        data = _EXPORTS.get(key)
        if data is not None:
            _EXPORTS.move_to_end(key)
            return data
    data = export_onnx(model, spec, device="cpu", check=False)
    with _EXPORTS_LOCK:
        _EXPORTS[key] = data
        while len(_EXPORTS) > _EXPORTS_MAX:
            _EXPORTS.popitem(last=False)
    return data


def session_options(ort, shape: tuple[int, int, int], threads: int):
    """SessionOptions for one fixed input shape: full graph optimisation, ``threads`` intra-op threads."""
    n, h, w = shape
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # errors only: ORT warns about unused initialisers and the like
    # No spin-waiting: ORT's pool otherwise spins after each run, taking cores from the decode/encode threads
    # and from other sessions (one per tile shape, VapourSynth's threads). Measured on 2 cores (anime 6B 64x64):
    # the same speed on an idle machine (0.383 s vs 0.381 s), and 0.396 s instead of 0.432 s right after
    # another session's run.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    for name, value in (("batch", n), ("height", h), ("width", w)):
        so.add_free_dimension_override_by_name(name, value)
    return so


@dataclass(frozen=True, kw_only=True)
class OnnxRuntimeOptions:
    """The onnxruntime backend's own options (what every backend takes is
    :class:`~esrgan_video.runtime.base.CommonOptions`); validated once, BackendError otherwise."""

    threads: int | None = None
    """Intra-op threads; None: ``torch.get_num_threads()``, which follows ``OMP_NUM_THREADS`` like the torch path does."""

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise BackendError(f"onnxruntime backend: threads must be >= 1, got {self.threads}")


class OnnxRuntimeBackend(Backend):
    """Run a network (RRDBNet or SRVGGNetCompact) through ONNX Runtime on the CPU, for one fixed (batch, height, width).

    Args:
        model: the generator (exported, not modified).
        common: device ('cpu', the default and the only device this backend runs; CUDA is TensorRT's and torch's),
            precision ('fp32', the default: ONNX Runtime's CPU kernels have no fast fp16/bf16 convolutions),
            tile_shape ((height, width) of the tiles this instance runs; required), batch (tiles per call),
            finite_check ('batch', the default, or 'off'), notice (this backend has no messages today) and reason.
        options: :class:`OnnxRuntimeOptions` (threads).
    """

    Options = OnnxRuntimeOptions

    def _setup(self, model: nn.Module, common: CommonOptions, options: OnnxRuntimeOptions) -> None:
        dev = torch.device(parse_device(common.device) or "cpu")
        if dev.type != "cpu":
            raise BackendError(f"onnxruntime backend runs on the CPU, got device {dev} (use --backend tensorrt or torch)")
        precision = common.precision or "fp32"
        if precision != "fp32":
            raise BackendError(f"onnxruntime backend runs fp32 on the CPU, got {precision} (use --backend torch)")
        h, w = common.fixed_tile_shape("onnxruntime")
        u = describe(model).size_multiple
        if h % u or w % u:
            raise BackendError(f"onnxruntime backend: a x{model.scale} model needs tile sides that are multiples of {u}, "
                               f"got {h}x{w}")
        self._model = model
        self.threads = options.threads
        self._identify(model, name="onnxruntime", device=dev, dtype=torch.float32,
                       fixed_shape=(common.batch, h, w), default_check="batch")
        self._session = None
        self.open_seconds: float | None = None

    def describe(self) -> str:
        n, h, w = self.info.fixed_shape
        threads = self.threads or torch.get_num_threads()
        return f"onnxruntime fp32 on cpu, {n}x{h}x{w}, {threads} threads"

    def _open(self) -> None:
        ort = import_onnxruntime()
        t0 = time.perf_counter()
        data = dynamic_onnx(self._model)
        so = session_options(ort, self.info.fixed_shape, self.threads or torch.get_num_threads())
        try:
            self._session = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            raise BackendError(f"onnxruntime could not load the exported model: {e}") from e
        self.open_seconds = time.perf_counter() - t0

    def _release(self) -> None:
        self._session = None

    def _infer(self, batch: torch.Tensor, stream: "torch.cuda.Stream | None") -> torch.Tensor:
        x = np.ascontiguousarray(batch.detach().to(torch.float32).numpy())
        try:
            (y,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: x})
        except Exception as e:  # noqa: BLE001
            raise BackendError(f"onnxruntime backend: inference failed ({e})") from e
        out = torch.from_numpy(y)
        self.guard.update(out)
        return out.clamp_(0.0, 1.0)
