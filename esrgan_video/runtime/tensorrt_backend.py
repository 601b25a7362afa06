"""TensorRT backend: ONNX → strongly typed network → serialized engine (cached) → contexts on CUDA streams.

Written to the documented Python API of TensorRT 10.12+ and 11.x and verified by the
``tensorrt``-marked tests on a machine that has TensorRT (``pytest -m tensorrt``); this
project's own build machines cannot install TensorRT, so nothing here runs in CI.

Build (:func:`build_engine`):
  ``trt.Builder`` → ``create_network(1 << STRONGLY_TYPED)`` on 10.x, ``create_network(0)`` where
  ``BuilderFlag.FP16`` is gone (11.x: strong typing is the only mode and the flag is deprecated and ignored;
  :func:`network_flags`; the precision comes from the fp16 ONNX graph, no builder precision flag is ever set)
  → ``trt.OnnxParser`` → builder config (workspace pool limit, ``builder_optimization_level``,
  a persistent timing cache shared safely between processes (:func:`engine_cache.load_timing_cache`),
  one optimisation profile per execution context for dynamic shapes, a progress monitor)
  → ``build_serialized_network``. An engine is dynamic exactly when ``min_shape != max_shape``
  (the ONNX graph gets dynamic axes only then, and then always gets its profiles); a dynamic
  engine carries one identical profile per stream, because "each execution context in concurrent
  use must use a separate optimization profile" (``NvInferRuntime.h``, ``IExecutionContext``).

Run (:class:`TensorRTBackend`):
  one ``IExecutionContext`` per CUDA stream (2-4), kept in a pool; each ``infer`` takes a
  free context+stream, orders it after the caller's stream with an event, runs
  ``execute_async_v3`` and orders the caller's stream after it with another event (no
  device-wide sync, no host sync). Input and output are fp16 device tensors owned by torch
  (``set_tensor_address(name, tensor.data_ptr())``, every return value checked, as vs-mlrt's
  ``vstrt/trt_utils.h`` does). TensorRT wants tensor addresses aligned to 256 bytes: the input
  batch is used in place only when it is contiguous, of the engine's dtype and 256-byte aligned
  (a slice such as ``frames[1:2]`` of an fp16 270x480 batch is not), else it is copied into an
  aligned buffer (:func:`bindable`); outputs are fresh aligned tensors from torch's caching
  allocator (no cudaMalloc after warm-up).

TensorRT's messages: one process-wide ``trt.ILogger`` subclass (:func:`trt_logger`) for every builder and
runtime, warnings and errors to stderr (``trt.Logger`` writes to stdout, where ``vspipe`` writes video), the
last errors quoted in the BackendError of a failed parse, build, deserialisation or execution.

CUDA graphs (``cuda_graphs=True``, static engines only: a dynamic context may reallocate its
scratch memory when the shape changes): every context gets static input/output buffers and one
graph, all captured in :meth:`TensorRTBackend.open` under the process-wide capture lock
(:mod:`esrgan_video.runtime.capture`), after TensorRT has run the context once, as vs-mlrt does
per instance at setup; ``infer`` copies in, replays and copies out. A context whose capture fails
runs plain ``execute_async_v3`` and says so once through ``notice``; ``graphs_captured`` counts the
contexts that have a graph.
"""

from __future__ import annotations

import collections
import importlib.util
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from esrgan_video.errors import BackendError, brief, first_line
from esrgan_video.models.descriptor import describe
from esrgan_video.runtime import engine_cache
from esrgan_video.runtime.base import Backend, CommonOptions, cuda_device
from esrgan_video.runtime.onnx_export import INPUT_NAME, OUTPUT_NAME, ExportSpec, export_onnx
from esrgan_video.runtime.torch_backend import check_fp32_layers

MAX_STREAMS = 4
"""At most this many execution contexts (CUDA streams) per backend; a dynamic engine has one profile per stream."""
TENSOR_ALIGNMENT = 256
"""Bytes: the alignment of every address handed to ``set_tensor_address``."""
DEFAULT_OPT_LEVEL = 3
DEFAULT_WORKSPACE_MIB = 0
"""0: no explicit limit (TensorRT may use up to the device memory while building)."""

INSTALL_HINT = (
    "TensorRT is not installed; install it with pip install 'esrgan-video[tensorrt]' "
    "(the tensorrt wheels fetch NVIDIA's libraries at install time), or use --backend torch"
)


def _silent(msg: str) -> None:
    """The default ``notice``: backends never print."""


def tensorrt_available() -> bool:
    """Whether the ``tensorrt`` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("tensorrt") is not None


def import_tensorrt():
    """Import tensorrt lazily; BackendError with the install hint when it is missing or broken.

    Broken counts: a wheel whose NVIDIA libraries are missing or do not match the driver fails with an OSError or
    a RuntimeError from the native module rather than an ImportError, and must give the same one-line refusal."""
    try:
        import tensorrt as trt
    except Exception as e:  # noqa: BLE001 - ImportError, OSError (libnvinfer), RuntimeError (CUDA init)
        raise BackendError(f"{INSTALL_HINT} ({brief(e)})") from e
    return trt


def trt_version() -> str:
    return import_tensorrt().__version__


_LOGGER = None
_LOGGER_LOCK = threading.Lock()


def trt_logger(trt):
    """The one TensorRT logger of this process (an ``ILogger`` subclass, as the Python API documents for custom
    loggers), given to every builder and runtime.

    Not ``trt.Logger``: its messages go to stdout (``std::cout``), which corrupts a video written there (``vspipe
    -c y4m ... -``); and TensorRT keeps the first logger it is given as its global one, warning whenever a builder
    or runtime gets another. Warnings and errors go to stderr, INFO and VERBOSE nowhere; the last errors are kept
    for the BackendError of a failed build or execution (:func:`trt_errors`)."""
    global _LOGGER
    with _LOGGER_LOCK:
        if _LOGGER is None or _LOGGER.module is not trt:
            _LOGGER = _make_logger(trt)
        return _LOGGER


def _make_logger(trt):
    base = trt.ILogger
    severity = trt.ILogger.Severity
    warning, error = int(severity.WARNING), int(severity.ERROR)

    class Logger(base):
        def __init__(self) -> None:
            base.__init__(self)
            self.module = trt
            self.errors: collections.deque[str] = collections.deque(maxlen=4)
            self._lock = threading.Lock()

        def log(self, sev, msg) -> None:  # called from TensorRT's threads (the binding holds the GIL)
            level = int(sev)
            if level > warning:
                return
            if level <= error:
                with self._lock:
                    self.errors.append(str(msg))
            print(f"[TensorRT] {'error' if level <= error else 'warning'}: {msg}", file=sys.stderr, flush=True)

    return Logger()


def trt_errors(logger) -> str:
    """'': no TensorRT error logged since the last call; else the last ones, '; '-joined (and forgotten)."""
    with logger._lock:
        text = "; ".join(logger.errors)
        logger.errors.clear()
    return text


def _with_errors(message: str, logger) -> str:
    errors = trt_errors(logger) if logger is not None else ""
    return f"{message}: {errors}" if errors else f"{message} (no TensorRT error was logged)"


def create(trt, factory, what: str, logger):
    """``factory(logger)`` (``trt.Builder`` or ``trt.Runtime``), or a one-line BackendError when TensorRT cannot make
    one. A TensorRT built for a CUDA the driver does not support (the ``tensorrt`` metapackage installs
    ``tensorrt-cu13``, also on a CUDA 12 driver) fails here: TensorRT logs "CUDA driver version is insufficient for
    CUDA runtime version" and the binding raises ``TypeError: pybind11::init(): factory function returned nullptr``
    (or gives None), which would otherwise be a traceback, and on a cache hit a valid engine thrown away."""
    trt_errors(logger)  # this attempt's errors only
    try:
        obj, cause = factory(logger), "it returned None"
    except (TypeError, RuntimeError) as e:  # the binding's nullptr factory, or a CUDA error it raises
        obj, cause = None, brief(e)
    if obj is None:
        cuda = engine_cache.tensorrt_cuda_major()
        errors = trt_errors(logger) or "no TensorRT error was logged"
        raise BackendError(
            f"TensorRT {getattr(trt, '__version__', '?')} (a CUDA {cuda} build) could not create its {what} ({cause}): "
            f"{errors}; {driver_advice(cuda)}")
    return obj


def driver_advice(cuda: str) -> str:
    """The way out when TensorRT built for CUDA ``cuda`` cannot create a builder or runtime (pure): what :func:`create`
    says, and the torch-tensorrt backend where that failure comes from inside ``torch_tensorrt.compile``."""
    return (f"the GPU driver must support CUDA {cuda} (nvidia-smi shows the CUDA it supports), else install the "
            "TensorRT build for the driver's CUDA (pip install tensorrt-cu12 for a CUDA 12 driver)")


@dataclass(frozen=True)
class BuildOptions:
    """Builder options that shape the engine (all part of the cache key)."""

    opt_level: int = DEFAULT_OPT_LEVEL
    """builder_optimization_level, 0 (fast build) to 5 (slowest build, maybe faster engine)."""
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    min_shape: tuple[int, int, int] | None = None
    """(N, H, W) lower bound of a dynamic engine; None (with max_shape None) builds a static engine."""
    max_shape: tuple[int, int, int] | None = None

    @property
    def dynamic(self) -> bool:
        """True exactly when the profile spans more than one shape (``min_shape != max_shape``)."""
        return self.min_shape is not None and tuple(self.min_shape) != tuple(self.max_shape)

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


def canonical_fp32_layers(names) -> tuple[str, ...]:
    """The submodules ``names`` keep in fp32, one way (pure): sorted, each once, without a name inside another one
    given (``body`` already keeps ``body.3`` in fp32: ``apply_fp32_layers`` casts each named module whole). Two
    lists with one canonical form export the same graph."""
    unique = sorted(set(names))
    return tuple(n for n in unique if not any(n.startswith(p + ".") for p in unique if p != n))


def profile_count(dynamic: bool, streams: int) -> int:
    """Optimisation profiles a build adds: one per stream for a dynamic engine, none for a static one (pure)."""
    if not 1 <= streams <= MAX_STREAMS:
        raise BackendError(f"tensorrt backend: streams must be 1-{MAX_STREAMS}, got {streams}")
    return streams if dynamic else 0


def make_key(
    model: nn.Module, spec: ExportSpec, options: BuildOptions, *, trt_ver: str, cuda_major: str, gpu_name: str,
    capability: str, streams: int = 1,
) -> engine_cache.EngineKey:
    """The cache key for building ``model`` with ``spec`` and ``options`` on a given GPU and TensorRT (pure).

    Over the resolved options, so equal effective options give equal keys: the fp32 layers as the set of
    submodules they keep in fp32 (:func:`canonical_fp32_layers`: order, repeats and a layer inside another named
    one change nothing), the profile as its (min, opt, max) shapes (a static engine's min/max given or not)."""
    lo, opt, hi = profile_shapes(spec, options)
    check_fp32_layers(model, spec.fp32_layers)  # a cached engine's key must not hide a misspelt layer
    if spec.dynamic != options.dynamic:
        raise BackendError(f"TensorRT: the export's dynamic axes ({spec.dynamic}) must follow min != max "
                           f"({options.dynamic})")
    return engine_cache.EngineKey(
        weights_sha256=engine_cache.weights_sha256(model),
        scale=int(model.scale),
        min_shape=lo,
        opt_shape=opt,
        max_shape=hi,
        precision=spec.precision,
        fp32_layers=canonical_fp32_layers(spec.fp32_layers),
        opset=spec.opset,
        exporter=engine_cache.exporter_tag(spec.exporter),
        trt_version=trt_ver,
        cuda_major=cuda_major,
        gpu_name=gpu_name,
        compute_capability=capability,
        opt_level=options.opt_level,
        workspace_mib=options.workspace_mib,
        dynamic=spec.dynamic,
        profiles=profile_count(spec.dynamic, streams),
    )


# ----------------------------------------------------------------------------- build


def network_flags(trt) -> int:
    """``create_network`` flags for a strongly typed network, by feature, never by version string.

    Where weak typing still exists (``BuilderFlag.FP16`` is there: 10.x), ``1 << STRONGLY_TYPED``. Where it is
    gone (11.x removed ``BuilderFlag.FP16`` with every weak-typing API: "createNetworkV2() produces a strongly
    typed network by default"), 0: the flag is "deprecated ... retained for API compatibility but is ignored"
    there, and a later release may drop it."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    weak_typing = hasattr(trt.BuilderFlag, "FP16")
    return 1 << int(flag) if flag is not None and weak_typing else 0


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
    profiles: int | None = None,
    log: Callable[[str], None] = _silent,
) -> bytes:
    """Parse ``onnx_bytes`` into a strongly typed network and return the serialized engine.

    ``profiles``: optimisation profiles to add when the shapes span a range (default: one per
    possible stream); none for a static engine. ``log`` receives the build's progress lines."""
    trt = import_tensorrt()
    logger = trt_logger(trt)
    builder = create(trt, trt.Builder, "builder", logger)  # forgets earlier errors: a failure below names this build's
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)) or trt_errors(logger)
        raise BackendError(f"TensorRT could not parse the exported ONNX graph: {errors}")
    config = builder.create_builder_config()
    if options.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.builder_optimization_level = options.opt_level
    cache = engine_cache.load_timing_cache(config, timing_cache, log)
    lo, opt, hi = shapes
    if lo != hi:
        for _ in range(MAX_STREAMS if profiles is None else profiles):  # one per concurrently running context
            profile = builder.create_optimization_profile()
            profile.set_shape(
                INPUT_NAME, (lo[0], in_channels, lo[1], lo[2]), (opt[0], in_channels, opt[1], opt[2]),
                (hi[0], in_channels, hi[1], hi[2]),
            )
            if config.add_optimization_profile(profile) < 0:  # the profile's index, or -1 when it is invalid
                raise BackendError(f"TensorRT rejected the optimisation profile NxHxW {lo}..{hi} (opt {opt})")
    monitor = _progress_monitor(trt, log)
    if monitor is not None:
        config.progress_monitor = monitor
    log(f"TensorRT {trt.__version__}: building engine for NxHxW {opt} (opt level {options.opt_level})...")
    t0 = time.perf_counter()
    trt_errors(logger)  # what the timing cache's parsing logged is not this build's failure
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(_with_errors("TensorRT failed to build the engine", logger))
    trt_errors(logger)  # errors TensorRT recovered from (a tactic that failed) are no later failure's cause
    log(f"TensorRT: engine built in {time.perf_counter() - t0:.1f} s ({serialized.nbytes / 2**20:.1f} MiB)")
    if timing_cache is not None:  # the builder added its new timings to the attached cache
        try:
            engine_cache.save_timing_cache(config, cache, timing_cache, log)
        except OSError as e:  # a full or read-only disk costs the next build its timings, never this engine
            log(f"TensorRT: timing cache {timing_cache} not saved ({e})")
    return bytes(serialized)


@dataclass
class LoadedEngine:
    """A deserialised engine with the runtime that made it (the runtime must outlive the engine)."""

    engine: object
    runtime: object
    logger: object


def deserialize(data: bytes, runtime=None) -> LoadedEngine:
    """bytes → engine; raises BackendError when TensorRT rejects them (stale or corrupt). ``runtime``: a
    ``trt.Runtime`` made beforehand with :func:`create` (one is made here otherwise)."""
    trt = import_tensorrt()
    logger = trt_logger(trt)
    if runtime is None:
        runtime = create(trt, trt.Runtime, "runtime", logger)
    trt_errors(logger)
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise BackendError(_with_errors(
            "TensorRT could not deserialize the engine (built by another TensorRT version or corrupt)", logger))
    trt_errors(logger)
    return LoadedEngine(engine=engine, runtime=runtime, logger=logger)


def build_or_load(
    model: nn.Module,
    spec: ExportSpec,
    options: BuildOptions,
    device: torch.device,
    *,
    root: Path | None = None,
    streams: int = 1,
    log: Callable[[str], None] = _silent,
):
    """(LoadedEngine, CacheOutcome, key): the cached engine for this model/shape/GPU, built when missing or untrusted."""
    trt = import_tensorrt()
    name, cc = engine_cache.gpu_facts(device)
    key = make_key(model, spec, options, trt_ver=trt.__version__, cuda_major=engine_cache.tensorrt_cuda_major(),
                   gpu_name=name, capability=cc, streams=streams)
    root = engine_cache.engines_dir() if root is None else root
    in_nc = describe(model).in_channels

    def build() -> bytes:
        t0 = time.perf_counter()
        onnx_bytes = export_onnx(model, spec, device=device)
        log(f"ONNX export ({spec.precision}, opset {spec.opset}) took {time.perf_counter() - t0:.1f} s")
        with torch.cuda.device(device):
            return build_engine(
                onnx_bytes, shapes=(key.min_shape, key.opt_shape, key.max_shape), in_channels=in_nc,
                options=options, timing_cache=engine_cache.timing_cache_path(key, root), profiles=key.profiles,
                log=log,
            )

    with torch.cuda.device(device):
        # made before the cache is read: a TensorRT that cannot run here is refused in one line, not taken for an
        # engine that failed to load (get_or_build deletes and rebuilds those)
        runtime = create(trt, trt.Runtime, "runtime", trt_logger(trt))
        engine, outcome = engine_cache.get_or_build(
            key, label=engine_cache.model_label(model), root=root, build=build,
            load=lambda data: deserialize(data, runtime), log=log,
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


def is_aligned(t: torch.Tensor, alignment: int = TENSOR_ALIGNMENT) -> bool:
    return t.data_ptr() % alignment == 0


def aligned_empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised contiguous tensor whose address is :data:`TENSOR_ALIGNMENT`-aligned.

    torch's CUDA caching allocator already returns 512-byte aligned blocks, so this is one
    ``torch.empty``; where an allocator gives less (the CPU one aligns to 64), the tensor is a view
    into a slightly larger buffer at the first aligned offset."""
    t = torch.empty(shape, dtype=dtype, device=device)
    if is_aligned(t):
        return t
    item = torch.empty((), dtype=dtype).element_size()
    n = t.numel()
    buf = torch.empty(n + TENSOR_ALIGNMENT // item, dtype=dtype, device=device)
    offset = (-buf.data_ptr() % TENSOR_ALIGNMENT) // item
    return buf[offset : offset + n].view(shape)


def bindable(batch: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``batch`` itself when TensorRT can read it in place (contiguous, ``dtype``, aligned), else an aligned copy.

    Runs on the current stream (the copy is queued there, like the kernels that read it)."""
    if batch.dtype == dtype and batch.is_contiguous() and is_aligned(batch):
        return batch
    out = aligned_empty(tuple(batch.shape), dtype, batch.device)
    out.copy_(batch)
    return out


def set_address(context, name: str, tensor: torch.Tensor) -> None:
    """``context.set_tensor_address`` with its preconditions and its return value checked."""
    ptr = tensor.data_ptr()
    if ptr % TENSOR_ALIGNMENT:
        raise BackendError(f"TensorRT: tensor {name!r} at {ptr:#x} is not {TENSOR_ALIGNMENT}-byte aligned")
    if not tensor.is_contiguous():
        raise BackendError(f"TensorRT: tensor {name!r} must be contiguous, got strides {tensor.stride()}")
    if not context.set_tensor_address(name, ptr):
        raise BackendError(f"TensorRT rejected the address of tensor {name!r} (set_tensor_address returned False)")


def select_profile(context, index: int, stream_handle: int) -> None:
    """``context.set_optimization_profile_async(index, stream_handle)``, BackendError when TensorRT refuses: the
    binding raises RuntimeError ("Error in set optimization profile async.") rather than returning False, so both
    are checked."""
    try:
        ok = context.set_optimization_profile_async(index, stream_handle)
    except RuntimeError as e:
        raise BackendError(f"TensorRT could not select optimisation profile {index} for context {index} ({e})") from e
    if ok is False:
        raise BackendError(f"TensorRT could not select optimisation profile {index} for context {index}")


@dataclass
class _Slot:
    """One execution context with its stream, and (for CUDA graphs) its static buffers and captured graph."""

    index: int
    context: object
    stream: "torch.cuda.Stream"
    shape: tuple[int, ...] | None = None
    static_in: torch.Tensor | None = None
    static_out: torch.Tensor | None = None
    graph: "torch.cuda.CUDAGraph | None" = None


@dataclass(frozen=True, kw_only=True)
class TensorRTOptions:
    """The tensorrt backend's own options (what every backend takes is
    :class:`~esrgan_video.runtime.base.CommonOptions`); validated once, BackendError otherwise."""

    streams: int = 2
    """Execution contexts/CUDA streams, 1-:data:`MAX_STREAMS` (a dynamic engine gets one profile per stream)."""
    fp32_layers: tuple[str, ...] = ()
    """Submodules kept in fp32 inside the fp16 graph (see onnx_export)."""
    build: BuildOptions = BuildOptions()
    """Builder options; ``min_shape`` != ``max_shape`` makes a dynamic engine."""
    cuda_graphs: bool = False
    """Capture one CUDA graph per context at open (static engines only)."""
    cache_root: Path | None = None
    """Engine cache directory; None: :func:`engine_cache.engines_dir`."""

    def __post_init__(self) -> None:
        profile_count(self.build.dynamic, self.streams)  # validates streams
        object.__setattr__(self, "fp32_layers", tuple(self.fp32_layers))
        if self.cache_root is not None:
            object.__setattr__(self, "cache_root", Path(self.cache_root))
        if self.cuda_graphs and self.build.dynamic:
            raise BackendError(
                "tensorrt backend: CUDA graphs need a static engine (a dynamic context may reallocate its "
                "scratch memory when the input shape changes, which a captured graph cannot follow)"
            )


class TensorRTBackend(Backend):
    """Run a TensorRT engine built from a network (RRDBNet or SRVGGNetCompact; cached, see :mod:`engine_cache`).

    Args:
        model: the generator (exported to ONNX when the engine must be built).
        common: device (a CUDA device, 'cuda' or 'cuda:N'; default the current one), precision ('fp16', the
            default, or 'fp32'), tile_shape ((H, W) the engine is built for, the opt shape when dynamic; required),
            batch (the opt batch when dynamic), finite_check ('batch', 'deferred' (default) or 'off'), notice
            (build progress, cache hits, "CUDA graphs are off ..."; default silent) and reason.
        options: :class:`TensorRTOptions` (streams, fp32_layers, build, cuda_graphs, cache_root).
    """

    Options = TensorRTOptions

    def _setup(self, model: nn.Module, common: CommonOptions, options: TensorRTOptions) -> None:
        dev = cuda_device(common.device, "tensorrt")
        self.spec = ExportSpec(common.fixed_tile_shape("tensorrt"), batch=common.batch,
                               precision=common.precision or "fp16", fp32_layers=options.fp32_layers,
                               dynamic=options.build.dynamic)
        profile_shapes(self.spec, options.build)  # validate early
        self.model = model
        self.streams = options.streams
        self.cuda_graphs = options.cuda_graphs
        self.cache_root = options.cache_root
        fixed = None if self.spec.dynamic else (common.batch, *self.spec.tile_shape)
        self._identify(model, name="tensorrt", device=dev, dtype=self.spec.dtype, fixed_shape=fixed,
                       default_check="deferred")
        self.engine = None
        self.outcome: engine_cache.CacheOutcome | None = None
        self.key: engine_cache.EngineKey | None = None
        self.graphs_captured = 0
        """Contexts that replay a captured CUDA graph (``cuda_graphs=True``; the others run plain)."""
        self._pool: queue.Queue[_Slot] = queue.Queue()
        self._slots: list[_Slot] = []
        self._loaded: LoadedEngine | None = None

    def _open(self) -> None:
        trt = import_tensorrt()
        loaded, self.outcome, self.key = build_or_load(
            self.model, self.spec, self.options.build, self.info.device, root=self.cache_root,
            streams=self.streams, log=self.notice,
        )
        engine = loaded.engine
        self._loaded = loaded
        if self.outcome.hit:
            self.notice(f"TensorRT: using cached engine {self.outcome.paths.engine}")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        modes = {n: engine.get_tensor_mode(n) for n in names}
        inputs = [n for n in names if modes[n] == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if modes[n] == trt.TensorIOMode.OUTPUT]
        if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
            raise BackendError(f"TensorRT engine has I/O {inputs} -> {outputs}, expected [{INPUT_NAME!r}] -> [{OUTPUT_NAME!r}]")
        self.in_dtype = _torch_dtype(trt, engine.get_tensor_dtype(INPUT_NAME))
        self.out_dtype = _torch_dtype(trt, engine.get_tensor_dtype(OUTPUT_NAME))
        if self.spec.dynamic and engine.num_optimization_profiles < self.streams:
            raise BackendError(f"TensorRT engine has {engine.num_optimization_profiles} optimisation profiles, "
                               f"expected one per stream ({self.streams})")
        slots = []
        with torch.cuda.device(self.info.device):
            for i in range(self.streams):
                ctx = engine.create_execution_context()
                if ctx is None:
                    raise BackendError("TensorRT could not create an execution context (out of device memory?)")
                stream = torch.cuda.Stream(self.info.device)
                if self.spec.dynamic:
                    select_profile(ctx, i, stream.cuda_stream)
                slots.append(_Slot(index=i, context=ctx, stream=stream))
            if self.cuda_graphs:
                for slot in slots:
                    self._capture(slot)
                if self.graphs_captured < len(slots):
                    self.notice(f"TensorRT: CUDA graphs are on for {self.graphs_captured} of {len(slots)} "
                                "contexts; the others run without graphs")
        for slot in slots:
            self._slots.append(slot)
            self._pool.put(slot)
        self.engine = engine

    def _release(self) -> None:
        for slot in self._slots:
            slot.stream.synchronize()
        self._slots.clear()
        self._pool = queue.Queue()
        self.engine = None
        self._loaded = None
        self.graphs_captured = 0

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
        set_address(slot.context, INPUT_NAME, inp)
        set_address(slot.context, OUTPUT_NAME, out)

    def _execute(self, slot: _Slot) -> None:
        if not slot.context.execute_async_v3(slot.stream.cuda_stream):
            # the errors of the logger this engine's runtime was given (LoadedEngine.logger), not whatever the
            # module's global holds now: trt_logger replaces it when another tensorrt module is seen
            logger = self._loaded.logger if self._loaded is not None else None
            raise BackendError(_with_errors("TensorRT execute_async_v3 failed", logger))

    def _capture(self, slot: _Slot) -> None:
        """Static buffers and one CUDA graph for ``slot`` (in open, under the process-wide capture lock)."""
        from esrgan_video.runtime.capture import capture_graph

        dev = self.info.device
        shape = (self.spec.batch, self.in_channels, *self.spec.tile_shape)
        with torch.cuda.stream(slot.stream):
            out_shape = self._set_shape(slot, shape)
            slot.static_in = aligned_empty(shape, self.in_dtype, dev).zero_()
            slot.static_out = aligned_empty(out_shape, self.out_dtype, dev)
            self._bind(slot, slot.static_in, slot.static_out)
            self._execute(slot)  # TensorRT must have run the context once before capture
        slot.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            capture_graph(graph, slot.stream, dev, lambda: self._execute(slot))
        except (RuntimeError, BackendError) as e:
            self.notice(f"TensorRT: CUDA graphs are off for context {slot.index}: capture failed "
                        f"({first_line(e) or type(e).__name__})")
            return
        slot.graph = graph
        self.graphs_captured += 1

    def _infer(self, batch: torch.Tensor, stream: "torch.cuda.Stream | None") -> torch.Tensor:
        caller = stream if stream is not None else torch.cuda.current_stream(self.info.device)
        shape = tuple(batch.shape)
        ready = torch.cuda.Event()
        ready.record(caller)
        done = torch.cuda.Event()
        slot = self._pool.get()
        try:
            with torch.cuda.device(self.info.device), torch.cuda.stream(slot.stream):
                slot.stream.wait_event(ready)
                if slot.static_in is not None:  # cuda_graphs: static buffers (and a graph unless its capture failed)
                    slot.static_in.copy_(batch)
                    if slot.graph is not None:
                        slot.graph.replay()
                    else:
                        self._bind(slot, slot.static_in, slot.static_out)
                        self._execute(slot)
                    out = slot.static_out.clone()
                else:
                    inp = bindable(batch, self.in_dtype)
                    out = aligned_empty(self._set_shape(slot, shape), self.out_dtype, self.info.device)
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
