"""TensorRT backend pieces that need neither TensorRT nor a GPU: option checks, profiles, the missing-TensorRT message.

The engine build and run are in tests/test_gpu.py (marked tensorrt).
"""

from __future__ import annotations

import pytest
import torch

from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams
from esrgan_video.errors import BackendError
from esrgan_video.runtime.base import CommonOptions
from esrgan_video.runtime.onnx_export import ExportSpec
from esrgan_video.runtime.tensorrt_backend import (
    BuildOptions,
    TensorRTBackend,
    build_engine,
    import_tensorrt,
    profile_shapes,
    tensorrt_available,
)
from esrgan_video.runtime.torch_tensorrt_backend import TorchTensorRTBackend, torch_tensorrt_available


def tiny() -> RRDBNet:
    torch.manual_seed(0)
    return RRDBNet(RRDBParams(nf=8, nb=1, gc=4)).eval()


def test_engines_need_a_cuda_device():
    with pytest.raises(BackendError, match="needs a CUDA device, got cpu"):
        TensorRTBackend(tiny(), CommonOptions(device="cpu", tile_shape=(16, 16)))
    with pytest.raises(BackendError, match="needs a CUDA device"):
        TorchTensorRTBackend(tiny(), CommonOptions(device="cpu", tile_shape=(16, 16)))


@pytest.mark.skipif(tensorrt_available(), reason="checks the message shown when TensorRT is missing")
def test_missing_tensorrt_says_how_to_install():
    with pytest.raises(BackendError, match=r"pip install 'esrgan-video\[tensorrt\]'"):
        import_tensorrt()
    with pytest.raises(BackendError, match="TensorRT is not installed"):
        build_engine(b"", shapes=((1, 8, 8),) * 3, in_channels=3, options=BuildOptions())


@pytest.mark.skipif(torch_tensorrt_available(), reason="checks the message shown when torch-tensorrt is missing")
def test_missing_torch_tensorrt_says_how_to_install():
    from esrgan_video.runtime.torch_tensorrt_backend import import_torch_tensorrt

    with pytest.raises(BackendError, match="torch-tensorrt is not installed"):
        import_torch_tensorrt()


def test_profiles():
    spec = ExportSpec((64, 96), batch=2)
    assert profile_shapes(spec, BuildOptions()) == ((2, 64, 96),) * 3
    assert profile_shapes(spec, BuildOptions(min_shape=(1, 32, 32), max_shape=(4, 128, 128))) == (
        (1, 32, 32), (2, 64, 96), (4, 128, 128))
    with pytest.raises(BackendError, match="both min_shape and max_shape"):
        BuildOptions(min_shape=(1, 32, 32))
    with pytest.raises(BackendError, match="workspace"):
        BuildOptions(workspace_mib=-1)


# ------------------------------------------------------------------------------ addresses (pure logic)


class FakeContext:
    """Records set_tensor_address calls and answers like TensorRT: False for a name it does not know."""

    def __init__(self, names=("input", "output")) -> None:
        self.names, self.calls = set(names), []

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.calls.append((name, ptr))
        return name in self.names


def test_unaligned_slices_are_copied_into_aligned_buffers():
    from esrgan_video.runtime.tensorrt_backend import TENSOR_ALIGNMENT, aligned_empty, bindable, is_aligned

    frames = aligned_empty((2, 3, 270, 480), torch.float16, torch.device("cpu"))
    frames.copy_(torch.rand(2, 3, 270, 480))
    assert is_aligned(frames) and bindable(frames, torch.float16) is frames  # used in place
    second = frames[1:2]  # contiguous, but 3*270*480*2 bytes = 777600 past an aligned base
    assert second.is_contiguous() and second.data_ptr() % TENSOR_ALIGNMENT == 128
    copy = bindable(second, torch.float16)
    assert copy is not second and is_aligned(copy) and copy.is_contiguous()
    torch.testing.assert_close(copy, second, atol=0, rtol=0)
    as_half = bindable(frames.float(), torch.float16)  # another dtype: converted, aligned
    assert as_half.dtype == torch.float16 and is_aligned(as_half)
    strided = bindable(frames.permute(0, 1, 3, 2), torch.float16)  # not contiguous: copied
    assert strided.is_contiguous() and is_aligned(strided)
    for shape in [(1, 3, 7, 9), (3, 3, 5, 5), (1,)]:
        t = aligned_empty(shape, torch.float16, torch.device("cpu"))
        assert t.shape == shape and is_aligned(t) and t.is_contiguous()


def test_tensor_addresses_are_checked():
    from esrgan_video.runtime.tensorrt_backend import aligned_empty, set_address

    ctx = FakeContext()
    t = aligned_empty((1, 3, 8, 8), torch.float16, torch.device("cpu"))
    set_address(ctx, "input", t)
    assert ctx.calls == [("input", t.data_ptr())]
    with pytest.raises(BackendError, match="rejected the address of tensor 'other'"):
        set_address(ctx, "other", t)  # set_tensor_address returned False
    flat = aligned_empty((64,), torch.float16, torch.device("cpu"))
    with pytest.raises(BackendError, match="not 256-byte aligned"):
        set_address(ctx, "input", flat[1:])
    assert len(ctx.calls) == 2  # refused before TensorRT saw it
    with pytest.raises(BackendError, match="contiguous"):
        set_address(ctx, "input", aligned_empty((8, 8), torch.float16, torch.device("cpu")).t())


# ------------------------------------------------------------------------------ the capture lock


class FakeGraphContext:
    """Stands in for torch.cuda.graph: records its arguments and how many captures overlap."""

    active = 0
    most = 0
    seen: list = []
    guard = __import__("threading").Lock()

    def __init__(self, graph, *, stream, capture_error_mode) -> None:
        type(self).seen.append((graph, stream, capture_error_mode))

    def __enter__(self):
        with self.guard:
            type(self).active += 1
            type(self).most = max(type(self).most, type(self).active)

    def __exit__(self, *exc):
        with self.guard:
            type(self).active -= 1


class FakeStream:
    def __init__(self, device: str) -> None:
        self.device = torch.device(device)


def test_captures_are_one_at_a_time_on_an_explicit_stream_of_the_right_device():
    import threading
    import time

    from esrgan_video.runtime.capture import capture_graph

    dev = torch.device("cuda", 1)
    results = []

    def work(i):
        time.sleep(0.02)  # a capture takes a while; a second one must not start meanwhile
        return i

    threads = [threading.Thread(target=lambda i=i: results.append(
        capture_graph(f"g{i}", FakeStream("cuda:1"), dev, lambda: work(i), graph_context=FakeGraphContext)))
        for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(6)) and FakeGraphContext.most == 1
    assert all(s is not None and mode == "thread_local" for _g, s, mode in FakeGraphContext.seen)
    with pytest.raises(BackendError, match="explicit stream"):
        capture_graph("g", None, dev, lambda: 0, graph_context=FakeGraphContext)
    with pytest.raises(BackendError, match="capture stream is on cuda:0, the backend on cuda:1"):
        capture_graph("g", FakeStream("cuda:0"), dev, lambda: 0, graph_context=FakeGraphContext)


class FailingCapture:
    """torch.cuda.graph's shape where a capture fails: ``__enter__`` enters ``stream_ctx`` (making the capture
    stream current) and ``__exit__`` raises from ``capture_end`` before it would leave ``stream_ctx`` again, which
    is what torch 2.14's ``graph.__exit__`` does; ``fail_in="none"`` is a capture that succeeds."""

    def __init__(self, graph, *, stream, capture_error_mode, fail_in: str = "end", log: list) -> None:
        class StreamContext:
            src_prev_stream = None  # what torch.cuda.StreamContext holds until it is entered

            def __enter__(self):
                self.src_prev_stream = "the caller's stream"
                log.append("current: capture stream")

            def __exit__(self, *exc):
                log.append(f"current: {self.src_prev_stream}")

        self.stream_ctx, self.fail_in = StreamContext(), fail_in

    def __enter__(self):
        if self.fail_in == "synchronize":  # torch.cuda.synchronize() fails before the stream context is entered
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        self.stream_ctx.__enter__()
        if self.fail_in == "begin":
            raise RuntimeError("capture_begin failed")

    def __exit__(self, *exc):
        if self.fail_in == "end":
            raise RuntimeError("operation failed due to a previous error during capture")
        self.stream_ctx.__exit__(*exc)


@pytest.mark.parametrize("fail_in", ["end", "begin", "work", "synchronize", "none"])
def test_a_failed_capture_makes_the_callers_stream_current_again(fail_in):
    """A capture that fails must not leave the backend's capture stream current for the rest of the thread (the
    TensorRT backend then runs that context without a graph; the caller's later kernels must stay on its stream)."""
    import functools

    from esrgan_video.runtime.capture import capture_graph

    log: list[str] = []
    context = functools.partial(FailingCapture, fail_in=fail_in, log=log)

    def work():
        if fail_in == "work":  # e.g. execute_async_v3 returned False inside the capture: BackendError
            raise BackendError("TensorRT execute_async_v3 failed")
        return "out"

    if fail_in == "none":
        assert capture_graph("g", FakeStream("cuda:0"), torch.device("cuda", 0), work, graph_context=context) == "out"
    else:
        with pytest.raises((RuntimeError, BackendError)):
            capture_graph("g", FakeStream("cuda:0"), torch.device("cuda", 0), work, graph_context=context)
    if fail_in == "synchronize":
        assert log == []  # nothing was made current, nothing is undone
    else:
        assert log[0] == "current: capture stream" and log[-1] == "current: the caller's stream", log


def test_a_failed_execution_quotes_the_errors_of_the_engines_own_logger(monkeypatch):
    """execute_async_v3 returning False: the BackendError carries what the logger of this engine's runtime
    (LoadedEngine.logger) recorded, whatever the module-wide logger holds meanwhile."""
    import types

    from esrgan_video.runtime import tensorrt_backend as tb

    fake = FakeTRT()
    logger = tb._make_logger(fake)
    logger.log(fake.ILogger.Severity.ERROR, "[executionContext.cpp::enqueueV3::2666] Error Code 1: Cuda Runtime")
    monkeypatch.setattr(tb, "_LOGGER", tb._make_logger(fake))  # another logger, with no errors

    class Context:
        def execute_async_v3(self, stream_handle) -> bool:
            assert stream_handle == 1234
            return False

    backend = object.__new__(TensorRTBackend)  # only what _execute reads
    backend._loaded = tb.LoadedEngine(engine=None, runtime=None, logger=logger)
    slot = tb._Slot(index=0, context=Context(), stream=types.SimpleNamespace(cuda_stream=1234))
    with pytest.raises(BackendError, match=r"execute_async_v3 failed: \[executionContext.cpp::enqueueV3"):
        backend._execute(slot)


# ------------------------------------------------------------------------------ torch-tensorrt pairing


def test_torch_tensorrt_must_match_the_torch_minor(monkeypatch):
    from esrgan_video.runtime import torch_tensorrt_backend as ttb

    assert ttb.pairing_problem("2.14.1+cu130", "2.14.0") == ""
    assert ttb.pairing_problem("2.12.0", "2.12.1") == ""
    msg = ttb.pairing_problem("2.14.1+cu130", "2.12.0")
    assert "torch-tensorrt 2.12.0 needs torch 2.12.*" in msg and "torch 2.14.1+cu130 is installed" in msg
    assert "\n" not in msg
    monkeypatch.setattr(ttb, "installed_torch_tensorrt_version", lambda: "2.10.0")
    with pytest.raises(BackendError) as e:
        ttb.import_torch_tensorrt()
    assert "needs torch 2.10.*" in str(e.value) and "\n" not in str(e.value)


def test_explicit_typing_is_asked_for_only_where_torch_tensorrt_has_the_switch():
    """torch-tensorrt up to 2.13 (TensorRT 10) has use_explicit_typing (default False up to 2.9); 2.14 (TensorRT 11)
    removed it and drops unknown keywords silently, so passing it there would be a no-op that reads as a setting."""
    from esrgan_video.runtime.torch_tensorrt_backend import typing_kwargs

    def compile_2_12(exported_program, inputs=None, *, use_explicit_typing=True, optimization_level=None, **kwargs):
        """torch_tensorrt.dynamo.compile's shape in 2.10-2.13."""

    def compile_2_14(exported_program, inputs=None, *, optimization_level=None, **kwargs):
        """The same in 2.14: no typing switch."""

    assert typing_kwargs(compile_2_12) == {"use_explicit_typing": True}
    assert typing_kwargs(compile_2_14) == {}


def test_backends_take_a_notice_callback_and_never_print(capsys):
    from esrgan_video.runtime.select import make_backend

    got: list[str] = []
    for name in ("torch", "onnxruntime"):
        b = make_backend(tiny(), backend=name, device="cpu", tile_shape=(8, 8), notice=got.append)
        assert b.notice == got.append
        b(torch.rand(1, 3, 8, 8))
        b.close()
    assert make_backend(tiny(), backend="torch", device="cpu").notice("x") is None  # default: silent
    assert capsys.readouterr() == ("", "")  # nothing on stdout or stderr: notices are the only channel


# ------------------------------------------------------------------------------ the build, against a fake tensorrt


class FakeTRT:
    """The parts of the ``tensorrt`` module that :func:`build_engine` calls, recording what it is asked, with the
    documented return values (TensorRT 10.12+/11 Python API): ``add_optimization_profile`` gives the profile's
    index or -1, ``create_timing_cache`` None for bytes it cannot parse, ``build_serialized_network`` an
    ``IHostMemory`` (buffer protocol, ``nbytes``) or None. ``release`` picks the enums: "10" (10.12-10.16:
    ``EXPLICIT_BATCH`` 0, ``STRONGLY_TYPED`` 1, ``BuilderFlag.FP16``), "11" (11.0-11.4, as the 11.4.0 binding
    has them: ``STRONGLY_TYPED`` deprecated and ignored, no ``BuilderFlag.FP16``), "later" (neither)."""

    __version__ = "10.99.0-fake"

    def __init__(self, *, release: str = "10", profile_index: int | None = None,
                 build_fails: bool = False) -> None:
        import types

        fake = self
        self.calls: list[tuple] = []
        self.profile_index = profile_index
        self.build_fails = build_fails
        flags = {"PREFER_AOT_PYTHON_PLUGINS": 2, "PREFER_JIT_PYTHON_PLUGINS": 3}
        builder_flags = {"TF32": 2, "REFIT": 3}
        if release == "10":
            flags.update(EXPLICIT_BATCH=0, STRONGLY_TYPED=1)
            builder_flags.update(FP16=0, INT8=1, BF16=17)
        elif release == "11":
            flags.update(STRONGLY_TYPED=0)
        self.NetworkDefinitionCreationFlag = types.SimpleNamespace(**flags)
        self.BuilderFlag = types.SimpleNamespace(**builder_flags)
        self.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")

        class ILogger:
            Severity = types.SimpleNamespace(INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4)

            def __init__(self) -> None:
                pass

        class IProgressMonitor:
            def __init__(self) -> None:
                pass

        class Profile:
            def __init__(self) -> None:
                self.shapes = {}

            def set_shape(self, name, lo, opt, hi) -> None:
                self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

        class HostMemory(bytes):
            @property
            def nbytes(self) -> int:
                return len(self)

        class Config:
            def __init__(self) -> None:
                self.profiles: list[Profile] = []
                self.builder_optimization_level = None
                self.progress_monitor = None
                self.timing_cache = None

            def set_flag(self, flag) -> None:
                fake.calls.append(("set_flag", flag))

            def set_memory_pool_limit(self, pool, size) -> None:
                fake.calls.append(("set_memory_pool_limit", pool, size))

            def create_timing_cache(self, data):
                return FakeTimingCache(bytes(data))

            def set_timing_cache(self, cache, ignore_mismatch) -> bool:
                self.timing_cache = cache
                return True

            def add_optimization_profile(self, profile) -> int:
                self.profiles.append(profile)
                return len(self.profiles) - 1 if fake.profile_index is None else fake.profile_index

        class Network:
            def __init__(self, flags) -> None:
                self.flags = flags

        class Builder:
            def __init__(self, logger) -> None:
                fake.builder, self.logger = self, logger

            def create_network(self, flags=0):
                fake.network = Network(flags)
                return fake.network

            def create_builder_config(self):
                fake.config = Config()
                return fake.config

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                fake.calls.append(("build", network.flags, config.builder_optimization_level, len(config.profiles)))
                monitor = config.progress_monitor
                if monitor is not None:  # what the builder's threads call
                    monitor.phase_start("Building engine", None, 3)
                    monitor.phase_start("Tactic search", "Building engine", 7)
                    assert monitor.step_complete("Tactic search", 1) is True
                    monitor.phase_finish("Tactic search")
                    monitor.phase_finish("Building engine")
                severity = ILogger.Severity
                self.logger.log(severity.INFO, "Detected 1 inputs and 1 output network tensors.")
                self.logger.log(severity.WARNING, "Weights [name=conv.weight] had the following issues")
                if fake.build_fails:
                    self.logger.log(severity.ERROR, "[resizingAllocator.cpp::allocate] out of memory")
                    return None
                config.timing_cache.timings += b"+t"
                return HostMemory(b"ENGINE")

        class OnnxParser:
            def __init__(self, network, logger) -> None:
                self.num_errors = 0

            def parse(self, data) -> bool:
                fake.calls.append(("parse", bytes(data)))
                return True

        self.ILogger, self.IProgressMonitor, self.Builder, self.OnnxParser = ILogger, IProgressMonitor, Builder, OnnxParser


class FakeTimingCache:
    def __init__(self, timings: bytes) -> None:
        self.timings = timings

    def serialize(self) -> bytes:
        return self.timings

    def combine(self, other, ignore_mismatch) -> bool:
        return True


def _build(monkeypatch, fake, **kwargs):
    from esrgan_video.runtime import tensorrt_backend as tb

    monkeypatch.setattr(tb, "import_tensorrt", lambda: fake)
    return build_engine(b"ONNX", in_channels=3, **kwargs)


def test_a_static_build_uses_a_strongly_typed_network_and_no_precision_flags(monkeypatch, tmp_path):
    fake, log = FakeTRT(), []
    static = ((2, 64, 96),) * 3
    data = _build(monkeypatch, fake, shapes=static, options=BuildOptions(opt_level=2),
                  timing_cache=tmp_path / "t.timing", profiles=0, log=log.append)
    assert data == b"ENGINE" and isinstance(data, bytes)
    assert fake.network.flags == 1 << 1  # 1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED), 10.x's value
    assert ("parse", b"ONNX") in fake.calls
    # strongly typed: the precision is the ONNX graph's; no BuilderFlag (FP16 is gone in TensorRT 11) is ever set,
    # and no workspace limit unless one is asked for
    assert not any(c[0] in ("set_flag", "set_memory_pool_limit") for c in fake.calls), fake.calls
    assert fake.config.builder_optimization_level == 2 and fake.config.profiles == []
    assert (tmp_path / "t.timing").read_bytes() == b"+t"  # the builder's timings saved
    assert any("Building engine (3 steps)" in line for line in log) and not any("Tactic" in line for line in log)
    assert any(line.startswith("TensorRT 10.99.0-fake: building engine for NxHxW (2, 64, 96)") for line in log)


def test_a_dynamic_build_adds_one_profile_per_stream_and_the_workspace_limit(monkeypatch):
    fake = FakeTRT()
    _build(monkeypatch, fake, shapes=((1, 16, 16), (2, 32, 48), (4, 64, 64)),
           options=BuildOptions(workspace_mib=256, min_shape=(1, 16, 16), max_shape=(4, 64, 64)), profiles=3)
    assert [p.shapes for p in fake.config.profiles] == [
        {"input": ((1, 3, 16, 16), (2, 3, 32, 48), (4, 3, 64, 64))}] * 3
    assert ("set_memory_pool_limit", "WORKSPACE", 256 << 20) in fake.calls


@pytest.mark.parametrize("release", ["11", "later"])
def test_a_release_without_weak_typing_builds_with_no_flags(monkeypatch, release):
    """11.x removed BuilderFlag.FP16 with weak typing; its STRONGLY_TYPED is deprecated and ignored, so it is not
    passed (a later release may drop it), and no precision flag is set either."""
    fake = FakeTRT(release=release)  # strong typing is then the only mode
    assert _build(monkeypatch, fake, shapes=((1, 8, 8),) * 3, options=BuildOptions()) == b"ENGINE"
    assert fake.network.flags == 0
    assert not any(c[0] == "set_flag" for c in fake.calls)


def test_an_invalid_profile_is_refused_not_built(monkeypatch):
    fake = FakeTRT(profile_index=-1)  # add_optimization_profile's answer for an invalid profile
    with pytest.raises(BackendError, match="rejected the optimisation profile"):
        _build(monkeypatch, fake, shapes=((1, 16, 16), (1, 32, 32), (2, 64, 64)),
               options=BuildOptions(min_shape=(1, 16, 16), max_shape=(2, 64, 64)), profiles=2)
    assert not any(c[0] == "build" for c in fake.calls)


def test_tensorrt_messages_go_to_stderr_and_a_failed_build_says_its_error(monkeypatch, capsys):
    """TensorRT's own trt.Logger prints to stdout, where vspipe writes its y4m: the backend's logger prints
    warnings and errors to stderr only, drops INFO, and a failed build's BackendError carries the error."""
    fake = FakeTRT(build_fails=True)
    with pytest.raises(BackendError, match=r"failed to build the engine: \[resizingAllocator.cpp::allocate\] out of"):
        _build(monkeypatch, fake, shapes=((1, 8, 8),) * 3, options=BuildOptions())
    out, err = capsys.readouterr()
    assert out == ""
    assert "[TensorRT] warning: Weights [name=conv.weight]" in err and "[TensorRT] error: [resizingAllocator" in err
    assert "Detected 1 inputs" not in err
    from esrgan_video.runtime.tensorrt_backend import trt_errors, trt_logger

    logger = trt_logger(fake)
    assert fake.builder.logger is logger and trt_errors(logger) == ""  # one logger; the error went with its message
    fake.build_fails = False
    assert _build(monkeypatch, fake, shapes=((1, 8, 8),) * 3, options=BuildOptions()) == b"ENGINE"
    assert fake.builder.logger is logger  # every builder (and runtime) gets the same one


def test_selecting_a_profile_checks_the_raise_and_the_return_value():
    from esrgan_video.runtime.tensorrt_backend import select_profile

    class Context:
        def __init__(self, answer) -> None:
            self.answer, self.calls = answer, []

        def set_optimization_profile_async(self, index, stream_handle):
            self.calls.append((index, stream_handle))
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    ok = Context(True)
    select_profile(ok, 1, 1234)
    assert ok.calls == [(1, 1234)]
    with pytest.raises(BackendError, match="optimisation profile 2 for context 2"):
        select_profile(Context(RuntimeError("Error in set optimization profile async.")), 2, 0)
    with pytest.raises(BackendError, match="optimisation profile 0"):
        select_profile(Context(False), 0, 0)


def _broken_package(tmp_path, monkeypatch, name: str) -> None:
    """``name`` importable from ``tmp_path`` but failing the way a wheel without its NVIDIA libraries does."""
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text('raise OSError("libnvinfer.so.10: cannot open shared object file")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, name, raising=False)


@pytest.mark.skipif(tensorrt_available(), reason="shadows a real tensorrt with a broken one")
def test_a_broken_tensorrt_install_is_a_one_line_backend_error(tmp_path, monkeypatch):
    _broken_package(tmp_path, monkeypatch, "tensorrt")
    with pytest.raises(BackendError) as e:
        import_tensorrt()
    msg = str(e.value)
    assert "pip install 'esrgan-video[tensorrt]'" in msg and "OSError: libnvinfer.so.10" in msg and "\n" not in msg


@pytest.mark.skipif(torch_tensorrt_available(), reason="shadows a real torch_tensorrt with a broken one")
def test_a_broken_torch_tensorrt_install_is_a_one_line_backend_error(tmp_path, monkeypatch):
    from esrgan_video.runtime import torch_tensorrt_backend as ttb

    _broken_package(tmp_path, monkeypatch, "torch_tensorrt")
    monkeypatch.setattr(ttb, "installed_torch_tensorrt_version", lambda: None)
    with pytest.raises(BackendError) as e:
        ttb.import_torch_tensorrt()
    assert "installed but cannot be imported (OSError: libnvinfer.so.10" in str(e.value) and "\n" not in str(e.value)


def _driver_too_old(fake):
    """``fake`` as a TensorRT built for a CUDA the driver lacks: its Builder and Runtime log TensorRT's error and
    raise what the pybind11 binding raises for a factory that returned nullptr."""

    def refuse(logger):
        logger.log(fake.ILogger.Severity.ERROR, "CUDA initialization failure with error: 35. Please check your CUDA "
                                                "installation: CUDA driver version is insufficient for CUDA runtime")
        raise TypeError("pybind11::init(): factory function returned nullptr")

    fake.Builder = fake.Runtime = refuse
    return fake


def test_a_tensorrt_the_driver_cannot_run_is_one_line_and_keeps_the_cached_engines(monkeypatch, tmp_path, capsys):
    """The tensorrt metapackage installs tensorrt-cu13, also where the driver supports only CUDA 12: trt.Builder and
    trt.Runtime then raise TypeError (pybind11's "factory function returned nullptr"). That was a traceback; and on
    a cache hit, the Runtime made inside the cache's load step failed there, so a sound engine was taken for a
    broken one, deleted, and the rebuild died with the same TypeError. Now one BackendError line naming the CUDA,
    before the cache is touched."""
    import contextlib

    from esrgan_video.runtime import engine_cache as ec
    from esrgan_video.runtime import tensorrt_backend as tb

    fake = _driver_too_old(FakeTRT())
    monkeypatch.setattr(tb, "import_tensorrt", lambda: fake)
    with pytest.raises(BackendError) as e:
        build_engine(b"ONNX", in_channels=3, shapes=((1, 8, 8),) * 3, options=BuildOptions())
    msg = str(e.value)
    cuda = ec.tensorrt_cuda_major()
    assert msg.startswith(f"TensorRT 10.99.0-fake (a CUDA {cuda} build) could not create its builder (TypeError: "
                          "pybind11::init(): factory function returned nullptr): CUDA initialization failure"), msg
    assert f"the GPU driver must support CUDA {cuda}" in msg and "\n" not in msg
    with pytest.raises(BackendError, match=r"could not create its runtime \(TypeError: pybind11"):
        tb.deserialize(b"ENGINE")
    none = FakeTRT()
    none.Runtime = lambda logger: None
    monkeypatch.setattr(tb, "import_tensorrt", lambda: none)
    with pytest.raises(BackendError, match=r"could not create its runtime \(it returned None\): no TensorRT error"):
        tb.deserialize(b"ENGINE")

    # a cached engine for exactly this request stays where it is
    monkeypatch.setattr(tb, "import_tensorrt", lambda: fake)
    monkeypatch.setattr(ec, "gpu_facts", lambda device: ("NVIDIA H200", "9.0"))
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())  # no CUDA device here
    model, spec = tiny(), ExportSpec((16, 16))
    key = tb.make_key(model, spec, BuildOptions(), trt_ver=fake.__version__, cuda_major=cuda,
                      gpu_name="NVIDIA H200", capability="9.0")
    paths = ec.engine_paths(key, ec.model_label(model), tmp_path)
    ec.write_entry(paths, key, b"ENGINE", label=ec.model_label(model), build_seconds=1.0)
    with pytest.raises(BackendError, match="could not create its runtime"):
        tb.build_or_load(model, spec, BuildOptions(), torch.device("cuda"), root=tmp_path)
    assert ec.validate_entry(paths, key) == (b"ENGINE", "")
    assert "rebuilding" not in capsys.readouterr().err
