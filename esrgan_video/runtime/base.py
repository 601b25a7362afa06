"""The small interface every inference backend implements.

A backend takes a batch of RGB tiles on its own device (N x C x h x w, float in
[0, 1]; any float dtype, converted to ``info.dtype`` inside) and returns
N x C x (h*scale) x (w*scale) in ``info.dtype`` on the same device, clamped to
[0, 1]. It states its device, dtype, and whether it needs a fixed tile shape.
Lifecycle: ``with backend: backend(batch)``; ``open()`` loads/builds, ``close()``
waits for outstanding work, runs the last non-finite checks and frees.

CUDA streams: ``infer(batch, stream=s)`` means "``batch`` is ready on ``s`` and the
result will be consumed on ``s``" (default: the current stream). A backend may run
the work on its own streams; it orders them against ``s`` with events, never with
device-wide synchronisation.

Non-finite guard: RRDB weights can overflow fp16 on some GPUs, which gives NaN
(black frames after clamping) or Inf (white). Every backend checks its raw output
(before the clamp, which would hide Inf) with :class:`FiniteGuard`:

* ``mode="batch"`` (the CPU default): one reduction per batch and an immediate raise.
* ``mode="deferred"`` (the CUDA default): one reduction per batch into a device flag,
  copied asynchronously to pinned host memory behind an event; the flag is read when
  the event has completed (polled on each later ``infer``) and at the latest in
  :meth:`Backend.flush` / ``close()``. No host sync is added, so the CPU keeps queueing
  work while the GPU runs; an error surfaces a few batches late, which only matters for
  how much of a run is thrown away, never for what is written (the run stops).

Options: a backend is built as ``SomeBackend(model, common, options)``, as vs-mlrt passes one options object per
backend whole: :class:`CommonOptions` holds what every backend takes (device, precision, tile shape, batch,
non-finite check, notice channel, reason), validated once; each backend's own options are its ``Options``
dataclass (``TorchOptions``, ``OnnxRuntimeOptions``, ``TensorRTOptions``, ``TorchTensorRTOptions``, next to
the backend they configure). Either may be omitted for its defaults.
"""

from __future__ import annotations

import abc
import collections
import operator
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from esrgan_video.errors import BackendError
from esrgan_video.runtime.devices import device_kind, parse_device

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
"""Precision names accepted everywhere (CLI, API, presets) and their torch dtypes."""

FIX_HINT = (
    "Rerun with --precision fp32 (or keep the overflowing layers in fp32 when exporting, "
    "see engines/README.md); bf16 also avoids the overflow at some cost in quality."
)


class NonFiniteOutputError(BackendError):
    """The model produced NaN or Inf: writing it would give black or broken frames."""


def precision_dtype(precision: str) -> torch.dtype:
    """Map a precision name ('fp32', 'fp16', 'bf16') to its torch dtype (BackendError otherwise)."""
    try:
        return PRECISIONS[precision]
    except KeyError:
        raise BackendError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        ) from None


def precision_name(dtype: torch.dtype) -> str:
    """Inverse of :func:`precision_dtype`."""
    for name, d in PRECISIONS.items():
        if d == dtype:
            return name
    raise BackendError(f"dtype must be one of float32, float16, bfloat16, got {dtype}")


@dataclass(frozen=True)
class BackendInfo:
    name: str
    """'torch', 'tensorrt' or 'torch-tensorrt'."""
    device: torch.device
    """Where input batches must live and where results are returned."""
    dtype: torch.dtype
    """Precision of inference (the dtype inputs are converted to and outputs have)."""
    fixed_shape: tuple[int, int, int] | None
    """(batch, height, width) when the backend only runs one input shape, else None."""
    reason: str = ""
    """Why this backend was chosen (for --backend auto)."""


def _silent(msg: str) -> None:
    """The default notice channel of a backend: nothing is printed."""


def _positive_int(value: object) -> int | None:
    """``value`` as an int when it is an integer >= 1 (bool excluded), else None."""
    if isinstance(value, bool):
        return None
    try:
        n = operator.index(value)
    except TypeError:
        return None
    return n if n >= 1 else None


@dataclass(frozen=True, kw_only=True)
class CommonOptions:
    """What every backend takes, defined and validated once (BackendError, exit status 7, saying what was
    expected and what was given). A backend's own options are its ``Options`` dataclass; ``None`` fields mean
    "the backend's default"."""

    device: str | torch.device | None = None
    """'cpu', 'cuda' or 'cuda:N'; None: the backend's default (the CPU for torch and onnxruntime, the current
    CUDA device for tensorrt and torch-tensorrt). Checked for its spelling here, against the machine by the backend."""
    precision: str | None = None
    """'fp32', 'fp16' or 'bf16'; None: the backend's default (torch: fp16 on CUDA, fp32 on the CPU; onnxruntime:
    fp32; the engine backends: fp16). What a backend cannot run it refuses itself."""
    tile_shape: tuple[int, int] | None = None
    """(height, width) of the tiles a fixed-shape backend (onnxruntime, tensorrt, torch-tensorrt) runs, required
    there; the opt shape of a dynamic TensorRT engine. The torch backend runs any shape and ignores it."""
    batch: int = 1
    """Tiles per call of a fixed-shape backend (the opt batch of a dynamic engine); ignored by torch."""
    finite_check: str | None = None
    """Non-finite output check, one of :data:`GUARD_MODES`; None: 'deferred' on CUDA, 'batch' on the CPU."""
    notice: Callable[[str], None] | None = None
    """Receives the backend's one-line messages (TensorRT build progress, "CUDA graphs are off ..."); None: silent."""
    reason: str = ""
    """Why this backend was chosen (``info.reason``, shown by --backend auto)."""

    def __post_init__(self) -> None:
        device_kind(self.device)  # BackendError for a bad spelling
        if self.precision is not None:
            precision_dtype(self.precision)
        if self.tile_shape is not None:
            try:
                sides = tuple(_positive_int(v) for v in self.tile_shape)
            except TypeError:  # not a sequence
                sides = ()
            if len(sides) != 2 or None in sides:
                raise BackendError(f"tile shape must be positive (height, width) integers, got {self.tile_shape!r}")
            object.__setattr__(self, "tile_shape", sides)
        batch = _positive_int(self.batch)
        if batch is None:
            raise BackendError(f"batch must be >= 1, got {self.batch}")
        object.__setattr__(self, "batch", batch)
        if self.finite_check is not None and self.finite_check not in GUARD_MODES:
            raise BackendError(f"finite check mode must be one of {GUARD_MODES}, got {self.finite_check!r}")
        if self.notice is not None and not callable(self.notice):
            raise BackendError(f"notice must be a callable taking one line, got {self.notice!r}")

    def fixed_tile_shape(self, backend: str) -> tuple[int, int]:
        """``tile_shape`` for a backend that runs only one; BackendError when none was given."""
        if self.tile_shape is None:
            raise BackendError(f"{backend} backend runs a fixed tile shape; none was given")
        return self.tile_shape


def cuda_device(device: str | torch.device | None, backend: str) -> torch.device:
    """The CUDA device an engine backend (TensorRT, torch-tensorrt) runs on; BackendError for anything else.
    ``"cuda"`` (or None, ``"auto"``) is the current CUDA device; other spellings as ``devices.parse_device`` reads
    them (``"1"``, ``" CUDA:1"``)."""
    if isinstance(device, str) and device.strip().lower() != "cuda":
        device = parse_device(device)
    dev = torch.device(device or "cuda")
    if dev.type != "cuda":
        raise BackendError(f"the {backend} backend needs a CUDA device, got {dev}; use --backend torch for the CPU")
    if not torch.cuda.is_available():
        raise BackendError(f"the {backend} backend needs a CUDA device, but torch.cuda.is_available() is False")
    return torch.device("cuda", torch.cuda.current_device()) if dev.index is None else dev


class Backend(abc.ABC):
    """An inference backend, built (not opened) as ``SomeBackend(model, common, options)``: the
    :class:`CommonOptions` every backend takes and the backend's own ``Options`` (each None for its defaults).
    This constructor is the only one: a backend implements :meth:`_setup`."""

    Options: type
    """The frozen dataclass of this backend's own options (``TorchOptions``, ``TensorRTOptions``, ...)."""
    common: CommonOptions
    """The shared options it was built with."""
    info: BackendInfo
    scale: int
    guard: "FiniteGuard | None" = None
    """The backend's non-finite check; :meth:`flush` settles it."""

    def __init__(self, model: torch.nn.Module, common: CommonOptions | None = None, options=None) -> None:
        common = CommonOptions() if common is None else common
        options = self.Options() if options is None else options
        name = type(self).__name__
        if not isinstance(common, CommonOptions):
            raise BackendError(f"{name}: expected a CommonOptions as the second argument, got {common!r}")
        if not isinstance(options, self.Options):
            raise BackendError(f"{name}: expected a {self.Options.__name__} as the third argument, got {options!r}")
        self.common = common
        self.options = options
        self._open_lock = threading.Lock()
        self._opened = False
        self._setup(model, common, options)

    @abc.abstractmethod
    def _setup(self, model: torch.nn.Module, common: CommonOptions, options) -> None:
        """Check ``common`` and ``options`` against what this backend runs, prepare what :meth:`open` needs, and
        state the backend's facts with :meth:`_identify`. Opens nothing."""

    def _identify(self, model, *, name: str, device: torch.device, dtype: torch.dtype,
                  fixed_shape: tuple[int, int, int] | None, default_check: str) -> None:
        """The facts every backend states: the model's scale (``model.scale``) and input channels (from its
        descriptor), the notice channel (``common.notice``, silent by default), ``info`` (with ``common.reason``) and
        the non-finite guard (``common.finite_check``, else ``default_check``)."""
        from esrgan_video.models.descriptor import describe

        common = self.common
        self.scale = int(model.scale)
        self.in_channels = describe(model).in_channels
        self.notice = common.notice or _silent
        self.info = BackendInfo(name=name, device=device, dtype=dtype, fixed_shape=fixed_shape, reason=common.reason)
        self.guard = FiniteGuard(f"{name} {precision_name(dtype)} on {device}",
                                 mode=common.finite_check or default_check, precision=precision_name(dtype))

    _retired: str | None = None
    """Why :meth:`retire` closed this backend for good (None: it reopens after :meth:`close`)."""

    def open(self) -> "Backend":
        """Make what inference needs (:meth:`_open`: a session, an engine, a compiled module) the first time; later
        calls, and calls from other threads meanwhile, wait for it and return. Reopens after :meth:`close`, never
        after :meth:`retire` (a BackendError saying why it was closed)."""
        with self._open_lock:
            if self._retired is not None:
                raise BackendError(f"{self.info.name} backend: {self._retired}")
            if not self._opened:
                self._open()
                self._opened = True
        return self

    def _open(self) -> None:
        """What :meth:`open` makes, once (under the open lock); default: nothing."""

    def close(self) -> None:
        """Settle outstanding work and checks (:meth:`flush`), then free what :meth:`open` made, even when the
        flush raises."""
        try:
            self.flush()
        finally:
            with self._open_lock:
                self._release()
                self._opened = False

    def _release(self) -> None:
        """Free sessions, engines, graphs and buffers (called by :meth:`close`, under the open lock)."""

    def retire(self, why: str) -> None:
        """:meth:`close` for good: a later :meth:`open` (and so a call) raises a BackendError ending in ``why``
        instead of reopening. For an owner that closes a backend it handed out (the Upscaler's eviction and close):
        reopened, it would live outside its owner, where neither the owner's bound nor its close reach it."""
        self._retired = why
        self.close()

    def flush(self) -> None:
        """Wait for outstanding work and raise NonFiniteOutputError if any batch was non-finite."""
        if self.guard is not None:
            self.guard.flush()

    def __enter__(self) -> "Backend":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def infer(self, batch: torch.Tensor, stream: "torch.cuda.Stream | None" = None) -> torch.Tensor:
        """Upscale one batch of tiles. ``batch`` is on ``info.device`` (checked: :meth:`check_input`); opens the
        backend first if it is not open."""
        self.check_input(batch)
        if not self._opened:
            self.open()
        return self._infer(batch, stream)

    @abc.abstractmethod
    def _infer(self, batch: torch.Tensor, stream: "torch.cuda.Stream | None") -> torch.Tensor:
        """:meth:`infer` on a checked batch, the backend open: the clamped output, on ``info.device``."""

    def __call__(self, batch: torch.Tensor, stream: "torch.cuda.Stream | None" = None) -> torch.Tensor:
        return self.infer(batch, stream)

    def check_input(self, batch: torch.Tensor) -> None:
        """Validate a batch against ``info`` and the model's input channels (device, rank, channels, fixed shape);
        BackendError otherwise."""
        where = f"{self.info.name} backend"
        channels = self.in_channels
        if not isinstance(batch, torch.Tensor):
            raise BackendError(f"{where}: expected a torch.Tensor batch, got {type(batch).__name__}")
        if batch.dim() != 4 or batch.shape[1] != channels:
            raise BackendError(f"{where}: expected an N x {channels} x H x W batch, got shape {tuple(batch.shape)}")
        if not batch.is_floating_point():
            raise BackendError(f"{where}: expected a float batch in [0, 1], got {batch.dtype}")
        if batch.device.type != self.info.device.type or (
            self.info.device.index is not None and batch.device.index != self.info.device.index
        ):
            raise BackendError(f"{where}: expected the batch on {self.info.device}, got {batch.device}")
        fixed = self.info.fixed_shape
        if fixed is not None and (batch.shape[0], batch.shape[2], batch.shape[3]) != fixed:
            n, h, w = fixed
            raise BackendError(
                f"{where}: this engine runs only batches of {n} x {channels} x {h} x {w}, "
                f"got {tuple(batch.shape)}"
            )


def check_finite(out: torch.Tensor, where: str, precision: str | None = None) -> None:
    """Raise NonFiniteOutputError when ``out`` holds NaN/Inf (one reduction, no host copy of the tensor);
    ``precision`` is the precision that ran (see :func:`nonfinite_message`)."""
    if not bool(torch.isfinite(out).all()):
        raise NonFiniteOutputError(nonfinite_message(where, precision))


def nonfinite_message(where: str, precision: str | None = None) -> str:
    """The error for a non-finite output. At fp32 the fp16-overflow advice does not apply (there is no wider
    precision to rerun in): the weights or the input are at fault. At bf16 neither does it (bf16 has fp32's
    exponent range, so what overflows fp16 is finite there, and :data:`FIX_HINT`'s "bf16 also avoids the overflow"
    would send the user back to the precision that failed): fp32 tells its coarser rounding from the weights or the
    input. Otherwise (fp16, or not known) the overflow advice, :data:`FIX_HINT`."""
    if precision == "fp32":
        return (
            f"{where}: the model produced non-finite values (NaN/Inf) at fp32, which would be written as black or "
            "white frames; this is not a precision problem: the model's weights or the input are at fault (check "
            "the model, e.g. for huge or non-finite weights)"
        )
    if precision == "bf16":
        return (
            f"{where}: the model produced non-finite values (NaN/Inf) at bf16, which would be written as black or "
            "white frames; bf16 has fp32's range, so this is not the fp16 overflow: rerun with --precision fp32 "
            "(finite there: bf16's coarser rounding is at fault, keep fp32; non-finite there too: the model's "
            "weights or the input are)"
        )
    return (
        f"{where}: the model produced non-finite values (NaN/Inf), which would be written as black or "
        f"white frames; this happens with some RRDB weights in fp16 on some GPUs. {FIX_HINT}"
    )


GUARD_MODES = ("batch", "deferred", "off")


class FiniteGuard:
    """Non-finite output check, per batch or deferred (see the module docstring). Thread-safe."""

    def __init__(self, where: str, *, mode: str = "batch", precision: str | None = None) -> None:
        if mode not in GUARD_MODES:
            raise BackendError(f"{where}: finite check mode must be one of {GUARD_MODES}, got {mode!r}")
        self.where = where
        self.precision = precision
        """The precision that runs ('fp32', 'fp16', 'bf16'; None: not known): chooses the error's advice."""
        self.mode = mode
        self._pending: collections.deque[tuple[torch.cuda.Event, torch.Tensor]] = collections.deque()
        self._lock = threading.Lock()
        self.batches_checked = 0

    def update(self, out: torch.Tensor) -> None:
        """Check ``out`` (raw, before clamping). Called on the stream that produced ``out``."""
        if self.mode == "off":
            return
        if self.mode == "batch" or out.device.type != "cuda":
            self.batches_checked += 1
            check_finite(out, self.where, self.precision)
            return
        bad = torch.logical_not(torch.isfinite(out).all())
        host = torch.empty((), dtype=torch.bool, pin_memory=True)
        host.copy_(bad, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(out.device))
        with self._lock:
            self._pending.append((event, host))
        self.poll()

    def poll(self) -> None:
        """Read the flags of completed batches without waiting; raise if one was non-finite."""
        self._drain(wait=False)

    def flush(self) -> None:
        """Wait for every pending flag; raise if one was non-finite."""
        self._drain(wait=True)

    def _drain(self, *, wait: bool) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    return
                event, host = self._pending[0]
                if not wait and not event.query():
                    return
                self._pending.popleft()
            event.synchronize()
            self.batches_checked += 1
            if bool(host):
                with self._lock:
                    self._pending.clear()
                raise NonFiniteOutputError(nonfinite_message(self.where, self.precision))
