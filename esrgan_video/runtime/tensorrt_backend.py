"""TensorRT backend: ONNX → strongly typed network → serialized engine (cached) → contexts on CUDA streams.

Written to the documented Python API of TensorRT 10.12+ and 11.x and verified by the
``tensorrt``-marked tests on a machine that has TensorRT (``pytest -m tensorrt``); this
project's own build machines cannot install TensorRT, so nothing here runs in CI.

Build (:func:`build_engine`):
  ``trt.Builder`` → ``create_network(1 << STRONGLY_TYPED)`` (required on 10.x, implied on 11.x,
  where ``BuilderFlag.FP16`` no longer exists: the precision comes from the fp16 ONNX graph)
  → ``trt.OnnxParser`` → builder config (workspace pool limit, ``builder_optimization_level``,
  a persistent timing cache, one optimisation profile per execution context for dynamic
  shapes, a progress monitor) → ``build_serialized_network``.

Run (:class:`TensorRTBackend`):
  one ``IExecutionContext`` per CUDA stream (2-4), kept in a pool; each ``infer`` takes a
  free context+stream, orders it after the caller's stream with an event, runs
  ``execute_async_v3`` and orders the caller's stream after it with another event (no
  device-wide sync, no host sync). Input and output are fp16 device tensors owned by torch
  (``set_tensor_address(name, tensor.data_ptr())``). Without CUDA graphs the input batch is
  used in place when it already is contiguous fp16, and each output is a fresh tensor from
  torch's caching allocator (no cudaMalloc after warm-up). With ``cuda_graphs=True`` every
  context gets static input/output buffers, allocated once per shape, and one captured graph
  per shape; infer copies in, replays, and copies the result out.

CUDA graph caveats: static engines only (a dynamic context may reallocate its scratch memory
when the shape changes); TensorRT must have run the context once at that shape before capture
(done here); engines with data-dependent shapes or device-side allocations cannot be captured
(capture failure falls back to plain ``execute_async_v3`` for that context, with a warning);
a captured graph pins the buffer addresses, so the static buffers are never reallocated.
"""

from __future__ import annotations

import importlib.util
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from esrgan_video.errors import BackendError
from esrgan_video.runtime import engine_cache
from esrgan_video.runtime.base import Backend, BackendInfo, FiniteGuard
from esrgan_video.runtime.onnx_export import INPUT_NAME, OUTPUT_NAME, ExportSpec, export_onnx

MAX_STREAMS = 4
"""Dynamic engines carry this many identical profiles: one per execution context that may run at once."""
DEFAULT_OPT_LEVEL = 3
DEFAULT_WORKSPACE_MIB = 0
"""0: no explicit limit (TensorRT may use up to the device memory while building)."""

INSTALL_HINT = (
    "TensorRT is not installed; install it with pip install 'esrgan-video[tensorrt]' "
    "(the tensorrt wheels fetch NVIDIA's libraries at install time), or use --backend torch"
)


def tensorrt_available() -> bool:
    """Whether the ``tensorrt`` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("tensorrt") is not None


def import_tensorrt():
    """Import tensorrt lazily; BackendError with the install hint when it is missing or broken."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendError(f"{INSTALL_HINT} ({e})") from e
    return trt


def trt_version() -> str:
    return import_tensorrt().__version__


@dataclass(frozen=True)
class BuildOptions:
    """Builder options that shape the engine (all part of the cache key)."""

    opt_level: int = DEFAULT_OPT_LEVEL
    """builder_optimization_level, 0 (fast build) to 5 (slowest build, maybe faster engine)."""
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    min_shape: tuple[int, int, int] | None = None
    """(N, H, W) lower bound of a dynamic engine; None (with max_shape None) builds a static engine."""
    max_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.opt_level <= 5:
            raise BackendError(f"TensorRT builder optimisation level must be 0-5, got {self.opt_level}")
        if self.workspace_mib < 0:
            raise BackendError(f"TensorRT workspace must be >= 0 MiB, got {self.workspace_mib}")
        if (self.min_shape is None) != (self.max_shape is None):
            raise BackendError("TensorRT profile: give both min_shape and max_shape, or neither (static engine)")


def profile_shapes(spec: ExportSpec, options: BuildOptions) -> tuple[tuple[int, int, int], ...]:
    """(min, opt, max) (N, H, W) shapes; all equal for a static engine. Validates min <= opt <= max."""
    opt = (spec.batch, *spec.tile_shape)
    if options.min_shape is None:
        return opt, opt, opt
    lo, hi = tuple(options.min_shape), tuple(options.max_shape)
    if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
        raise BackendError(f"TensorRT profile: expected min <= opt <= max per dimension, got {lo}, {opt}, {hi}")
    return lo, opt, hi


def make_key(
    model: nn.Module, spec: ExportSpec, options: BuildOptions, *, trt_ver: str, gpu_name: str, capability: str
) -> engine_cache.EngineKey:
    """The cache key for building ``model`` with ``spec`` and ``options`` on a given GPU and TensorRT (pure)."""
    lo, opt, hi = profile_shapes(spec, options)
    return engine_cache.EngineKey(
        weights_sha256=engine_cache.weights_sha256(model),
        scale=int(model.scale),
        min_shape=lo,
        opt_shape=opt,
        max_shape=hi,
        precision=spec.precision,
        fp32_layers=tuple(spec.fp32_layers),
        opset=spec.opset,
        exporter=engine_cache.exporter_tag(spec.exporter),
        trt_version=trt_ver,
        gpu_name=gpu_name,
        compute_capability=capability,
        opt_level=options.opt_level,
        workspace_mib=options.workspace_mib,
    )


# ----------------------------------------------------------------------------- build


def _progress_monitor(trt, log: Callable[[str], None]):
    """An IProgressMonitor that logs top-level phases and step counts (None if this TensorRT lacks it)."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class Monitor(base):
        def __init__(self) -> None:
            base.__init__(self)
            self._lock = threading.Lock()
            self._steps: dict[str, int] = {}
            self._t0 = time.perf_counter()

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self._lock:
                self._steps[phase_name] = num_steps
                if parent_phase is None:
                    log(f"  [{time.perf_counter() - self._t0:6.1f}s] {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            return True  # never cancel

        def phase_finish(self, phase_name):
            with self._lock:
                self._steps.pop(phase_name, None)

    return Monitor()


def build_engine(
    onnx_bytes: bytes,
    *,
    shapes: tuple[tuple[int, int, int], ...],
    in_channels: int,
    options: BuildOptions,
    timing_cache: Path | None = None,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> bytes:
    """Parse ``onnx_bytes`` into a strongly typed network and return the serialized engine."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT could not parse the exported ONNX graph: {errors}")
    config = builder.create_builder_config()
    if options.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.builder_optimization_level = options.opt_level
    cache_bytes = b""
    if timing_cache is not None and timing_cache.exists():
        cache_bytes = timing_cache.read_bytes()
    cache = config.create_timing_cache(cache_bytes)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log(f"TensorRT: timing cache {timing_cache} does not match this GPU/TensorRT; starting a new one")
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    lo, opt, hi = shapes
    if not (lo == opt == hi):
        for _ in range(MAX_STREAMS):  # one profile per concurrently running context
            profile = builder.create_optimization_profile()
            profile.set_shape(
                INPUT_NAME, (lo[0], in_channels, lo[1], lo[2]), (opt[0], in_channels, opt[1], opt[2]),
                (hi[0], in_channels, hi[1], hi[2]),
            )
            config.add_optimization_profile(profile)
    monitor = _progress_monitor(trt, log)
    if monitor is not None:
        config.progress_monitor = monitor
    log(f"TensorRT {trt.__version__}: building engine for NxHxW {opt} (opt level {options.opt_level})...")
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError("TensorRT failed to build the engine (see the TensorRT messages above)")
    log(f"TensorRT: engine built in {time.perf_counter() - t0:.1f} s ({serialized.nbytes / 2**20:.1f} MiB)")
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = timing_cache.with_name(timing_cache.name + ".tmp")
        tmp.write_bytes(bytes(cache.serialize()))  # the builder added its new timings to the attached cache
        tmp.replace(timing_cache)
    return bytes(serialized)


@dataclass
class LoadedEngine:
    """A deserialised engine with the runtime that made it (the runtime must outlive the engine)."""

    engine: object
    runtime: object
    logger: object


def deserialize(data: bytes) -> LoadedEngine:
    """bytes → engine; raises BackendError when TensorRT rejects them (stale or corrupt)."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise BackendError("TensorRT could not deserialize the engine (built by another TensorRT version or corrupt)")
    return LoadedEngine(engine=engine, runtime=runtime, logger=logger)


def build_or_load(
    model: nn.Module,
    spec: ExportSpec,
    options: BuildOptions,
    device: torch.device,
    *,
    root: Path | None = None,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
):
    """(LoadedEngine, CacheOutcome, key): the cached engine for this model/shape/GPU, built when missing or untrusted."""
    trt = import_tensorrt()
    name, cc = engine_cache.gpu_facts(device)
    key = make_key(model, spec, options, trt_ver=trt.__version__, gpu_name=name, capability=cc)
    root = engine_cache.engines_dir() if root is None else root
    in_nc = int(model.params.in_nc) if hasattr(model, "params") else 3

    def build() -> bytes:
        t0 = time.perf_counter()
        onnx_bytes = export_onnx(model, spec, device=device)
        log(f"ONNX export ({spec.precision}, opset {spec.opset}) took {time.perf_counter() - t0:.1f} s")
        with torch.cuda.device(device):
            return build_engine(
                onnx_bytes, shapes=(key.min_shape, key.opt_shape, key.max_shape), in_channels=in_nc,
                options=options, timing_cache=engine_cache.timing_cache_path(key, root), log=log,
            )

    with torch.cuda.device(device):
        engine, outcome = engine_cache.get_or_build(
            key, label=engine_cache.model_label(model), root=root, build=build, load=deserialize, log=log
        )
    return engine, outcome, key


# ----------------------------------------------------------------------------- run


def _torch_dtype(trt, dt) -> torch.dtype:
    table = {trt.DataType.HALF: torch.float16, trt.DataType.FLOAT: torch.float32}
    if hasattr(trt.DataType, "BF16"):
        table[trt.DataType.BF16] = torch.bfloat16
    if dt not in table:
        raise BackendError(f"TensorRT engine tensor dtype {dt} is not supported by this runtime (expected HALF or FLOAT)")
    return table[dt]


@dataclass
class _Slot:
    """One execution context with its stream, and (for CUDA graphs) static buffers per shape."""

    index: int
    context: object
    stream: "torch.cuda.Stream"
    shape: tuple[int, ...] | None = None
    static: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    graphs: dict[tuple[int, ...], "torch.cuda.CUDAGraph | None"] = field(default_factory=dict)


class TensorRTBackend(Backend):
    """Run a TensorRT engine built from an RRDBNet (cached; see :mod:`engine_cache`).

    Args:
        model: the generator (exported to ONNX when the engine must be built).
        device: a CUDA device ('cuda', 'cuda:N').
        precision: 'fp16' (default) or 'fp32'.
        tile_shape: (H, W) the engine is built for (the opt shape when dynamic).
        batch: batch size (the opt batch when dynamic).
        streams: execution contexts/CUDA streams, 1-4.
        fp32_layers: submodules kept in fp32 inside the fp16 graph (see onnx_export).
        options: builder options; ``min_shape``/``max_shape`` make a dynamic engine.
        cuda_graphs: capture one CUDA graph per context and shape.
        finite_check: 'batch', 'deferred' (default) or 'off'.
        cache_root: engine cache directory (default :func:`engine_cache.engines_dir`).
        reason: why this backend was chosen.
    """

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device | None = "cuda",
        precision: str | None = None,
        *,
        tile_shape: tuple[int, int],
        batch: int = 1,
        streams: int = 2,
        fp32_layers: tuple[str, ...] = (),
        options: BuildOptions | None = None,
        cuda_graphs: bool = False,
        finite_check: str | None = None,
        cache_root: Path | None = None,
        log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
        reason: str = "",
    ) -> None:
        dev = torch.device(device or "cuda")
        if dev.type != "cuda":
            raise BackendError(f"the tensorrt backend needs a CUDA device, got {dev}; use --backend torch for the CPU")
        if not torch.cuda.is_available():
            raise BackendError("the tensorrt backend needs a CUDA device, but torch.cuda.is_available() is False")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        if not 1 <= streams <= MAX_STREAMS:
            raise BackendError(f"tensorrt backend: streams must be 1-{MAX_STREAMS}, got {streams}")
        self.spec = ExportSpec(tuple(tile_shape), batch=batch, precision=precision or "fp16",
                               fp32_layers=tuple(fp32_layers),
                               dynamic=options is not None and options.min_shape is not None)
        self.options = options or BuildOptions()
        profile_shapes(self.spec, self.options)  # validate early
        if cuda_graphs and self.spec.dynamic:
            raise BackendError(
                "tensorrt backend: CUDA graphs need a static engine (a dynamic context may reallocate its "
                "scratch memory when the input shape changes, which a captured graph cannot follow)"
            )
        self.model = model
        self.scale = int(model.scale)
        self.in_channels = int(model.params.in_nc) if hasattr(model, "params") else 3
        self.streams = streams
        self.cuda_graphs = cuda_graphs
        self.cache_root = cache_root
        self.log = log
        fixed = None if self.spec.dynamic else (batch, *self.spec.tile_shape)
        self.info = BackendInfo(name="tensorrt", device=dev, dtype=self.spec.dtype, fixed_shape=fixed, reason=reason)
        self.guard = FiniteGuard(f"tensorrt {self.spec.precision} on {dev}", mode=finite_check or "deferred")
        self.engine = None
        self.outcome: engine_cache.CacheOutcome | None = None
        self.key: engine_cache.EngineKey | None = None
        self._pool: queue.Queue[_Slot] = queue.Queue()
        self._slots: list[_Slot] = []
        self._open_lock = threading.Lock()

    def open(self) -> "TensorRTBackend":
        with self._open_lock:
            if self.engine is not None:
                return self
            trt = import_tensorrt()
            loaded, self.outcome, self.key = build_or_load(
                self.model, self.spec, self.options, self.info.device, root=self.cache_root, log=self.log
            )
            engine = loaded.engine
            if self.outcome.hit:
                self.log(f"TensorRT: using cached engine {self.outcome.paths.engine}")
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            modes = {n: engine.get_tensor_mode(n) for n in names}
            inputs = [n for n in names if modes[n] == trt.TensorIOMode.INPUT]
            outputs = [n for n in names if modes[n] == trt.TensorIOMode.OUTPUT]
            if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
                raise BackendError(f"TensorRT engine has I/O {inputs} -> {outputs}, expected [{INPUT_NAME!r}] -> [{OUTPUT_NAME!r}]")
            self.in_dtype = _torch_dtype(trt, engine.get_tensor_dtype(INPUT_NAME))
            self.out_dtype = _torch_dtype(trt, engine.get_tensor_dtype(OUTPUT_NAME))
            with torch.cuda.device(self.info.device):
                for i in range(self.streams):
                    ctx = engine.create_execution_context()
                    if ctx is None:
                        raise BackendError("TensorRT could not create an execution context (out of device memory?)")
                    stream = torch.cuda.Stream(self.info.device)
                    if self.spec.dynamic:
                        ctx.set_optimization_profile_async(i, stream.cuda_stream)
                    slot = _Slot(index=i, context=ctx, stream=stream)
                    self._slots.append(slot)
                    self._pool.put(slot)
            self._loaded = loaded
            self.engine = engine
        return self

    def _release(self) -> None:
        with self._open_lock:
            for slot in self._slots:
                slot.stream.synchronize()
            self._slots.clear()
            self._pool = queue.Queue()
            self.engine = None
            self._loaded = None

    def _set_shape(self, slot: _Slot, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Set the context's input shape (when it changed); returns the output shape TensorRT reports."""
        ctx = slot.context
        if slot.shape != shape:
            if not ctx.set_input_shape(INPUT_NAME, shape):
                raise BackendError(f"TensorRT engine rejects input shape {shape} (outside its optimisation profile)")
            slot.shape = shape
        out_shape = tuple(ctx.get_tensor_shape(OUTPUT_NAME))
        n, _, h, w = shape
        if out_shape[0] != n or tuple(out_shape[2:]) != (h * self.scale, w * self.scale):
            raise BackendError(f"TensorRT engine gives output {out_shape} for input {shape}, expected x{self.scale}")
        return out_shape

    @staticmethod
    def _bind(slot: _Slot, inp: torch.Tensor, out: torch.Tensor) -> None:
        slot.context.set_tensor_address(INPUT_NAME, inp.data_ptr())
        slot.context.set_tensor_address(OUTPUT_NAME, out.data_ptr())

    def _execute(self, slot: _Slot) -> None:
        if not slot.context.execute_async_v3(slot.stream.cuda_stream):
            raise BackendError("TensorRT execute_async_v3 failed (see the TensorRT messages above)")

    def _graph(self, slot: _Slot, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, "torch.cuda.CUDAGraph | None"]:
        if shape not in slot.static:
            dev = self.info.device
            out_shape = self._set_shape(slot, shape)
            inp = torch.zeros(shape, device=dev, dtype=self.in_dtype)
            out = torch.empty(out_shape, device=dev, dtype=self.out_dtype)
            slot.static[shape] = (inp, out)
            self._bind(slot, inp, out)
            self._execute(slot)  # TensorRT must run once at this shape before capture
            slot.stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph, stream=slot.stream, capture_error_mode="thread_local"):
                    self._execute(slot)
            except RuntimeError as e:
                self.log(f"TensorRT: CUDA graph capture failed ({e}); running without graphs for {shape}")
                graph = None
            slot.graphs[shape] = graph
        inp, out = slot.static[shape]
        return inp, out, slot.graphs[shape]

    def infer(self, batch: torch.Tensor, stream: "torch.cuda.Stream | None" = None) -> torch.Tensor:
        self.check_input(batch, self.in_channels)
        if self.engine is None:
            self.open()
        caller = stream if stream is not None else torch.cuda.current_stream(self.info.device)
        shape = tuple(batch.shape)
        ready = torch.cuda.Event()
        ready.record(caller)
        done = torch.cuda.Event()
        slot = self._pool.get()
        try:
            with torch.cuda.device(self.info.device), torch.cuda.stream(slot.stream):
                slot.stream.wait_event(ready)
                if self.cuda_graphs:
                    inp, out_buf, graph = self._graph(slot, shape)
                    inp.copy_(batch)
                    if graph is not None:
                        graph.replay()
                    else:
                        self._bind(slot, inp, out_buf)
                        self._execute(slot)
                    out = out_buf.clone()
                else:
                    inp = batch.to(self.in_dtype).contiguous()  # in place when already contiguous fp16
                    out = torch.empty(self._set_shape(slot, shape), device=self.info.device, dtype=self.out_dtype)
                    self._bind(slot, inp, out)
                    self._execute(slot)
                self.guard.update(out)
                out = out.clamp_(0.0, 1.0).to(self.info.dtype)
                done.record(slot.stream)
            batch.record_stream(slot.stream)
        finally:
            self._pool.put(slot)
        caller.wait_event(done)
        out.record_stream(caller)
        self.guard.poll()
        return out
