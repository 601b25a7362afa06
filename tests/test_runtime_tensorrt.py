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
