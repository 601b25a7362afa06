"""PyTorch backend: the CPU reference path (fp32) and the CUDA fast path (fp16 by default).

CUDA: half (or bf16/fp32) weights and activations, channels_last, ``cudnn.benchmark``,
optional ``torch.compile`` and optional CUDA graphs captured per input shape (N, h, w).
CPU: fp32 under ``inference_mode`` with contiguous NCHW tensors; fp16/bf16 only when
asked for and when this torch build runs them (probed once).

torch.compile: one compiled callable per input shape (N, h, w), each with a code object of its
own. One ``torch.compile(fullgraph=True, dynamic=False)`` for every shape would recompile on each
new shape and, at Dynamo's recompile limit (``torch._dynamo.config.recompile_limit``, 8), raise
``FailOnRecompileLimitHit`` ("Hard failure due to fullgraph=True"); Dynamo counts that limit per
code object, so separate code objects keep every shape's compile independent. The modes whose
inductor options turn CUDA graphs on (``torch._inductor.list_mode_options(mode)["triton.cudagraphs"]``:
``reduce-overhead`` and ``max-autotune``) return outputs that the next replay overwrites, so those
outputs are cloned before the in-place clamp, and ``cuda_graphs=True`` is refused with them.
On torch builds whose cudagraph trees are not thread-safe (pytorch/pytorch#123177, fixed by #184357,
detected by its ``graph_capture_lock``), their per-thread state exists only in the thread that imported
``torch._inductor.cudagraph_trees`` (a module-level ``threading.local``); those modes are refused, with
one line, on any other thread instead of failing inside torch with an assertion.

Own CUDA graphs (``cuda_graphs=True``) are captured on a stream of the backend's device under the
process-wide capture lock (:mod:`esrgan_video.runtime.capture`).

The backend owns a private copy of the model (converting dtype/layout in place would
otherwise change the caller's module) with its final clamp switched off: the raw output
goes through the :class:`~esrgan_video.runtime.base.FiniteGuard` first, then is clamped,
so an Inf from an fp16 overflow is reported instead of being clamped to white.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from torch import nn

from esrgan_video.errors import BackendError
from esrgan_video.runtime.devices import runtime_device
from esrgan_video.runtime.base import Backend, CommonOptions, precision_dtype, precision_name

COMPILE_MODES = ("default", "max-autotune-no-cudagraphs", "max-autotune", "reduce-overhead")
"""torch.compile modes accepted by ``compile=``."""


@lru_cache(maxsize=None)
def mode_uses_cudagraphs(mode: str | None) -> bool:
    """Whether torch.compile ``mode`` turns on inductor's CUDA graphs (read from torch itself)."""
    if mode is None:
        return False
    from torch._inductor import list_mode_options

    return bool(list_mode_options(mode).get("triton.cudagraphs", False))


@lru_cache(maxsize=1)
def cudagraph_trees_thread_safe() -> bool:
    """True when this torch's cudagraph trees may be entered from several threads (the #184357 fix is in)."""
    try:
        from torch._inductor import cudagraph_trees
    except Exception:  # noqa: BLE001 - no inductor: nothing to be safe about
        return False
    return hasattr(cudagraph_trees, "graph_capture_lock")


def cudagraph_tls_ready() -> bool:
    """Whether this thread has cudagraph trees' per-thread state: what torch without #184357 asserts
    (``hasattr(local, attr) or torch._C._is_key_in_tls(attr)`` in ``cudagraph_trees.get_obj``)."""
    from torch._inductor import cudagraph_trees

    key = "tree_manager_containers"
    return hasattr(cudagraph_trees.local, key) or bool(torch._C._is_key_in_tls(key))


def check_cudagraph_thread(mode: str | None, device_type: str, *, thread_safe: bool, tls_ready: bool) -> None:
    """Refuse a cudagraph-tree compile mode on a thread that torch cannot run it from (pure)."""
    if device_type != "cuda" or not mode_uses_cudagraphs(mode) or thread_safe or tls_ready:
        return
    raise BackendError(
        f"torch backend: compile={mode!r} uses cudagraph trees, which this torch ({torch.__version__}) runs only on "
        "the thread that first compiled (pytorch/pytorch#123177); use one stream, or "
        "compile='max-autotune-no-cudagraphs' with cuda_graphs=True"
    )


def compile_for_shape(module: nn.Module, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile`` of ``module`` for one fixed input shape, on a code object of its own.

    Dynamo keeps its cache and its recompile limit per code object; a fresh code object per shape
    means each shape is one compile, never a recompile of another shape's graph."""

    def run(x: torch.Tensor) -> torch.Tensor:
        return module(x)

    run.__code__ = run.__code__.replace()  # an equal but distinct code object
    return torch.compile(run, mode=mode, dynamic=False, fullgraph=True)


@lru_cache(maxsize=None)
def cpu_supports(dtype: torch.dtype) -> bool:
    """Whether this torch build runs a 3x3 conv + LeakyReLU + nearest upsample in ``dtype`` on the CPU."""
    try:
        with torch.inference_mode():
            conv = nn.Conv2d(2, 2, 3, padding=1).to(dtype)
            x = torch.ones(1, 2, 4, 4, dtype=dtype)
            y = nn.functional.leaky_relu(conv(x), 0.2)
            nn.functional.interpolate(y, scale_factor=2, mode="nearest")
        return True
    except RuntimeError:
        return False


def default_precision(device: torch.device) -> str:
    """fp16 on CUDA, fp32 elsewhere."""
    return "fp16" if device.type == "cuda" else "fp32"


def bf16_native(capability: tuple[int, int]) -> bool:
    """Whether a GPU of this compute capability runs bf16 natively (Ampere, sm 8.0, and later; pure).

    Not ``torch.cuda.is_bf16_supported()``: it also counts emulation (true on Turing, sm 7.5, where
    bf16 convolutions are emulated and slow) and it reads the current device, not the backend's."""
    return int(capability[0]) >= 8


def check_precision_on(device: torch.device, precision: str) -> torch.dtype:
    """The dtype for ``precision`` on ``device``; BackendError when the device cannot run it."""
    dtype = precision_dtype(precision)
    if device.type == "cpu" and dtype != torch.float32 and not cpu_supports(dtype):
        raise BackendError(
            f"precision {precision} is not supported on the CPU by this torch build "
            f"(expected fp32 on cpu, got {precision}); use --precision fp32"
        )
    if device.type == "cuda" and dtype == torch.bfloat16:
        cap = torch.cuda.get_device_capability(device)
        if not bf16_native(cap):
            raise BackendError(
                f"precision bf16 needs a GPU with native bf16 (compute capability >= 8.0), "
                f"got {torch.cuda.get_device_name(device)} (sm {cap[0]}.{cap[1]}); use fp16 or fp32"
            )
    return dtype


class CastOutput(nn.Module):
    """Wraps a mixed-precision model so its output has one dtype (the I/O dtype)."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = inner
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).to(self.dtype)


def _cast_to_weight_dtype(module: nn.Module, args: tuple) -> tuple:
    return (args[0].to(module.weight.dtype),)


def check_fp32_layers(model: nn.Module, names) -> dict[str, nn.Module]:
    """``model``'s submodules by name; BackendError naming the first of ``names`` that is not one of them."""
    modules = dict(model.named_modules())
    for name in names:
        if not name or name not in modules:
            top = ", ".join(n for n in modules if n and "." not in n)
            raise BackendError(f"fp32_layers names unknown submodule {name!r}; top-level modules: {top}")
    return modules


def apply_fp32_layers(model: nn.Module, names: tuple[str, ...], dtype: torch.dtype) -> nn.Module:
    """Keep the named submodules in fp32 inside a ``dtype`` network (in place; returns the I/O wrapper).

    Every conv casts its input to its own weight dtype, so values leave an fp32 layer in fp32
    and stay fp32 through adds, upsampling and concatenation (torch type promotion) until an
    fp16 layer consumes them; the output is cast to ``dtype``. In ONNX this gives explicit
    Cast nodes, which a strongly typed TensorRT network honours.
    """
    modules = check_fp32_layers(model, names)
    for name in names:
        modules[name].float()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_pre_hook(_cast_to_weight_dtype)
    return CastOutput(model, dtype)


def prepare_model(
    model: nn.Module,
    device: torch.device,
    dtype: torch.dtype,
    *,
    channels_last: bool,
    fp32_layers: tuple[str, ...] = (),
) -> tuple[nn.Module, bool]:
    """A private inference copy of ``model`` on ``device`` in ``dtype``; returns (copy, clamp_wanted).

    The copy has ``clamp`` switched off (the backend clamps after the finite check), no
    autograd state, and ``fp32_layers`` kept in fp32 (see :func:`apply_fp32_layers`).
    """
    m = copy.deepcopy(model)
    clamp = bool(getattr(m, "clamp", False))
    if hasattr(m, "clamp"):
        m.clamp = False
    m.eval().requires_grad_(False)
    m = m.to(device=device, dtype=dtype)
    if fp32_layers:
        if dtype == torch.float32:
            raise BackendError("fp32_layers only applies to fp16 or bf16 inference")
        m = apply_fp32_layers(m, tuple(fp32_layers), dtype)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    return m, clamp


@dataclass
class _Graph:
    """One captured CUDA graph for a fixed input shape, with its static buffers and stream."""

    graph: "torch.cuda.CUDAGraph"
    static_in: torch.Tensor
    static_out: torch.Tensor
    stream: "torch.cuda.Stream"
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True, kw_only=True)
class TorchOptions:
    """The torch backend's own options (what every backend takes is :class:`~esrgan_video.runtime.base.CommonOptions`);
    validated once, BackendError otherwise."""

    channels_last: bool = True
    """NHWC memory layout (measured 5–25 % faster on the CPU too, see benchmarks/results)."""
    compile: str | None = None
    """A torch.compile mode from :data:`COMPILE_MODES`, or None for eager; compiled once per input shape."""
    cuda_graphs: bool = False
    """Capture one CUDA graph per input shape and replay it (CUDA only; not with the compile modes that
    already use CUDA graphs)."""
    fp32_layers: tuple[str, ...] = ()
    """Submodules kept in fp32 in an fp16/bf16 run (for checkpoints that overflow fp16)."""

    def __post_init__(self) -> None:
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise BackendError(f"torch backend: compile must be one of {COMPILE_MODES} or None, got {self.compile!r}")
        if self.cuda_graphs and mode_uses_cudagraphs(self.compile):
            raise BackendError(
                f"torch backend: compile={self.compile!r} already uses CUDA graphs; "
                "combine cuda_graphs=True with 'max-autotune-no-cudagraphs' or 'default' instead"
            )
        object.__setattr__(self, "fp32_layers", tuple(self.fp32_layers))


class TorchBackend(Backend):
    """Run a network (RRDBNet or SRVGGNetCompact) with PyTorch on the CPU or a CUDA device.

    Args:
        model: the generator (left untouched; the backend works on a copy).
        common: device ('cpu' by default, 'cuda' or 'cuda:N'), precision ('fp32', 'fp16' or 'bf16'; default
            fp16 on CUDA, fp32 on the CPU), finite_check ('batch', 'deferred' or 'off'; default deferred on CUDA,
            batch on the CPU), notice and reason; tile_shape and batch are not used (any shape runs).
        options: :class:`TorchOptions` (channels_last, compile, cuda_graphs, fp32_layers).
    """

    Options = TorchOptions

    def _setup(self, model: nn.Module, common: CommonOptions, options: TorchOptions) -> None:
        dev = runtime_device(common.device)
        precision = common.precision or default_precision(dev)
        dtype = check_precision_on(dev, precision)
        if options.cuda_graphs and dev.type != "cuda":
            raise BackendError(f"torch backend: CUDA graphs need a CUDA device, got {dev}")
        self.channels_last = options.channels_last
        self.compile_mode = options.compile
        self._cudagraph_trees = dev.type == "cuda" and mode_uses_cudagraphs(options.compile)
        """torch.compile's own CUDA graphs run this backend: outputs are cloned, the thread is checked per batch."""
        self.cuda_graphs = options.cuda_graphs
        self.fp32_layers = options.fp32_layers
        self._model, self._clamp = prepare_model(
            model, dev, dtype, channels_last=self.channels_last, fp32_layers=self.fp32_layers
        )
        self._compiled: dict[tuple[int, int, int], Callable[[torch.Tensor], torch.Tensor]] = {}
        self._compiled_lock = threading.Lock()
        self._identify(model, name="torch", device=dev, dtype=dtype, fixed_shape=None,
                       default_check="deferred" if dev.type == "cuda" else "batch")
        self._graphs: dict[tuple[int, int, int], _Graph] = {}
        self._graphs_lock = threading.Lock()

    def describe(self) -> str:
        parts = [f"torch {precision_name(self.info.dtype)} on {self.info.device}"]
        if self.channels_last:
            parts.append("channels_last")
        if self.compile_mode:
            parts.append(f"compile={self.compile_mode}")
        if self.cuda_graphs:
            parts.append("cuda graphs")
        if self.fp32_layers:
            parts.append(f"fp32 layers {','.join(self.fp32_layers)}")
        return ", ".join(parts)

    def _open(self) -> None:
        if self.info.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed tile shapes: let cuDNN pick the fastest kernels

    def _release(self) -> None:
        self._graphs.clear()
        self._compiled.clear()

    def _prepare(self, batch: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return batch.to(dtype=self.info.dtype, memory_format=fmt)

    @property
    def compiled_shapes(self) -> tuple[tuple[int, int, int], ...]:
        """The (N, h, w) shapes compiled so far (``compile=``), in order."""
        return tuple(self._compiled)

    def _runner(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The eager model, or the compiled callable for ``x``'s shape (compiled on first use)."""
        if self.compile_mode is None:
            return self._model
        key = (x.shape[0], x.shape[2], x.shape[3])
        with self._compiled_lock:
            fn = self._compiled.get(key)
            if fn is None:
                fn = self._compiled[key] = compile_for_shape(self._model, self.compile_mode)
        return fn

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self._cudagraph_trees:
            safe = cudagraph_trees_thread_safe()
            check_cudagraph_thread(self.compile_mode, "cuda", thread_safe=safe,
                                   tls_ready=safe or cudagraph_tls_ready())
        out = self._runner(x)(x)
        if self._cudagraph_trees:
            out = out.clone()  # cudagraph-tree outputs are overwritten by the next replay
        return out

    def _finish(self, out: torch.Tensor) -> torch.Tensor:
        self.guard.update(out)
        if self._clamp:
            out = out.clamp_(0.0, 1.0)
        return out

    def _infer(self, batch: torch.Tensor, stream: "torch.cuda.Stream | None") -> torch.Tensor:
        if self.info.device.type != "cuda":
            with torch.inference_mode():
                return self._finish(self._run(self._prepare(batch.contiguous())))
        caller = stream if stream is not None else torch.cuda.current_stream(self.info.device)
        if self.cuda_graphs:
            return self._infer_graph(batch, caller)
        with torch.inference_mode(), torch.cuda.device(self.info.device), torch.cuda.stream(caller):
            out = self._finish(self._run(self._prepare(batch)))
        self.guard.poll()
        return out

    # CUDA graphs -------------------------------------------------------------------------

    def _graph_for(self, batch: torch.Tensor) -> _Graph:
        key = (batch.shape[0], batch.shape[2], batch.shape[3])
        with self._graphs_lock:
            entry = self._graphs.get(key)
            if entry is None:
                entry = self._capture(key)
                self._graphs[key] = entry
            return entry

    def _capture(self, key: tuple[int, int, int]) -> _Graph:
        from esrgan_video.runtime.capture import capture_graph

        n, h, w = key
        dev = self.info.device
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        static_in = torch.zeros(n, self.in_channels, h, w, device=dev, dtype=self.info.dtype).to(memory_format=fmt)
        runner = self._runner(static_in)
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.inference_mode(), torch.cuda.device(dev):
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up: cuDNN autotuning and compile happen outside the capture
                    runner(static_in)
            torch.cuda.current_stream(dev).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # a capture stream on this backend's device, one capture at a time in the process
            static_out = capture_graph(graph, torch.cuda.Stream(dev), dev, lambda: runner(static_in))
        return _Graph(graph=graph, static_in=static_in, static_out=static_out, stream=torch.cuda.Stream(dev))

    def _infer_graph(self, batch: torch.Tensor, caller: "torch.cuda.Stream") -> torch.Tensor:
        entry = self._graph_for(batch)
        ready = torch.cuda.Event()
        ready.record(caller)
        done = torch.cuda.Event()
        with entry.lock, torch.inference_mode(), torch.cuda.device(self.info.device), torch.cuda.stream(entry.stream):
            # One stream per graph keeps replays of the shared static buffers in order.
            entry.stream.wait_event(ready)
            entry.static_in.copy_(batch)
            entry.graph.replay()
            out = self._finish(entry.static_out.clone())
            done.record(entry.stream)
        batch.record_stream(entry.stream)
        caller.wait_event(done)
        out.record_stream(caller)
        self.guard.poll()
        return out
