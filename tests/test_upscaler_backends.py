"""The Upscaler's backends under threads and memory trouble, with real backends (ONNX Runtime, torch) on a tiny
near-identity model: a fixed-shape backend is never closed under a call running on it (the LRU eviction), and an
allocation failure inside inference is one line of advice (a smaller ``--tile``), for the API and the CLI."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import esrgan_video
from esrgan_video import upscaler as upscaler_mod
from esrgan_video.errors import BackendError
from esrgan_video.runtime.base import CommonOptions
from esrgan_video.runtime.torch_backend import TorchBackend
from esrgan_video.testing import near_identity_model

sys.path.insert(0, str(Path(__file__).parent))
import media  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

RNG = np.random.default_rng(11)


@pytest.fixture(scope="module")
def net():
    return near_identity_model(2, seed=3)


# the fixed-shape backend cache ---------------------------------------------------------------------------------
def test_no_call_runs_on_a_backend_an_eviction_closed(net, monkeypatch):
    # the eviction took a backend for a call in one critical section and counted the call busy in the next: another
    # thread's build in between (it holds the lock, so the first waits right there) saw no call busy and closed the
    # least recently used backends, which could be the one the first was about to run on
    ort_mod = pytest.importorskip("esrgan_video.runtime.onnxruntime_backend")
    pytest.importorskip("onnxruntime")
    hits: list[tuple[int, int, int]] = []
    built: list["Counting"] = []

    class Counting(ort_mod.OnnxRuntimeBackend):
        """The real ONNX Runtime backend, counting its closes; a batch run on it after one is a hit."""

        closes = 0

        def close(self) -> None:
            self.closes += 1
            super().close()

        def _infer(self, batch, stream):
            if self.closes:
                hits.append(self.info.fixed_shape)
            out = super()._infer(batch, stream)
            if self.closes:  # closed while it ran
                hits.append(self.info.fixed_shape)
            return out

    def make(model, *, tile_shape, batch, **_):
        b = Counting(model, CommonOptions(device="cpu", precision="fp32", tile_shape=tile_shape, batch=batch),
                     ort_mod.OnnxRuntimeOptions(threads=1))
        built.append(b)
        return b

    monkeypatch.setattr(upscaler_mod, "make_backend", make)
    monkeypatch.setattr(upscaler_mod, "MAX_FIXED_BACKENDS", 2)  # evictions on almost every build
    # upscale_tensor, the entry every face's frame transform calls (Upscaler.upscale's transform runs one frame at a
    # time on the CPU; VapourSynth's and the pipeline's threads call it side by side)
    frames = [torch.rand(1, 3, 8 + 2 * i, 6 + 2 * (i % 3), generator=torch.Generator().manual_seed(i))
              for i in range(9)]
    with esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu") as serial:
        want = [serial.upscale_tensor(f) for f in frames]
    got: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(frames))}
    built.clear()
    with esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu") as u:
        def work(k: int) -> None:
            for r in range(3):
                for i in range(len(frames)):
                    j = (i * (k + 1) + r) % len(frames)  # each thread its own order of sizes
                    got[j].append(u.upscale_tensor(frames[j]))

        media.in_threads(work, 6)
        assert hits == []
        assert sum(k is not None for k in u._backends) <= 2  # bounded again once the calls are done
        assert not u._in_use
    assert sum(b.closes > 0 for b in built) >= len(built) - 2  # evictions did happen
    for i, outs in got.items():
        assert len(outs) == 18
        for out in outs:
            torch.testing.assert_close(out, want[i], rtol=0, atol=0)


def test_a_backend_a_call_holds_is_kept_beyond_the_bound_and_the_others_closed(net, monkeypatch):
    # the other side of the same rule: a backend a call holds is never closed, however long ago it was asked for,
    # and the others are closed down to the bound as their calls end (evictions were skipped while any call ran, so
    # an Upscaler that was never idle kept every size it had seen)
    ort_mod = pytest.importorskip("esrgan_video.runtime.onnxruntime_backend")
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(upscaler_mod, "MAX_FIXED_BACKENDS", 1)
    inside, go_on = threading.Event(), threading.Event()
    real_infer = ort_mod.OnnxRuntimeBackend._infer

    def slow_infer(self, batch, stream):
        if self.info.fixed_shape[1:] == (12, 10) and not go_on.is_set():
            inside.set()
            assert go_on.wait(30)
        return real_infer(self, batch, stream)

    monkeypatch.setattr(ort_mod.OnnxRuntimeBackend, "_infer", slow_infer)
    a = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(5))
    others = [torch.rand(1, 3, 6 + 2 * i, 8) for i in range(3)]
    with esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu") as u:
        out: list[torch.Tensor] = []
        t = threading.Thread(target=lambda: out.append(u.upscale_tensor(a)))
        t.start()
        assert inside.wait(30)
        held = u._backends[(12, 10, 1)]
        for f in others:  # each builds its own, beyond the bound, and closes it once done: never the held one
            u.upscale_tensor(f)
            assert list(u._backends) == [(12, 10, 1)] and held._opened
        go_on.set()
        t.join()
        u.upscale_tensor(others[0])  # the held one, done with now, is the least recently used: it goes
        assert list(u._backends) == [(others[0].shape[2], 8, 1)] and not held._opened
    with esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu") as fresh:
        torch.testing.assert_close(out[0], fresh.upscale_tensor(a), rtol=0, atol=0)


def _flushing_a_deferred_nan(ort_mod, built: list, which: int = 0):
    """``make_backend`` of real ONNX Runtime backends whose ``which``-th one's flush (and so its close) raises what a
    deferred non-finite check raises from its flush there (TensorRT's default check on a GPU: a batch's flag read
    after its call returned), once."""
    from esrgan_video.runtime.base import NonFiniteOutputError

    class Deferred(ort_mod.OnnxRuntimeBackend):
        def flush(self) -> None:
            super().flush()
            if len(built) > which and self is built[which] and not getattr(self, "told", False):
                self.told = True
                raise NonFiniteOutputError("onnxruntime fp32 on cpu: the model produced non-finite values (NaN/Inf)")

    def make(model, *, tile_shape, batch, **_):
        b = Deferred(model, CommonOptions(device="cpu", precision="fp32", tile_shape=tile_shape, batch=batch),
                     ort_mod.OnnxRuntimeOptions(threads=1))
        built.append(b)
        return b

    return make


def test_an_eviction_whose_close_raises_holds_nothing_and_the_bound_stands(net, monkeypatch):
    # the call that evicted counted its backend in use before the eviction; the close raising (a deferred flag of
    # the evicted backend) left it counted for good: never evicted again, so the bound no longer held
    ort_mod = pytest.importorskip("esrgan_video.runtime.onnxruntime_backend")
    pytest.importorskip("onnxruntime")
    from esrgan_video.runtime.base import NonFiniteOutputError

    built: list = []
    monkeypatch.setattr(upscaler_mod, "make_backend", _flushing_a_deferred_nan(ort_mod, built))
    monkeypatch.setattr(upscaler_mod, "MAX_FIXED_BACKENDS", 1)
    a, b, c = (torch.rand(1, 3, 6 + 2 * i, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))
    with esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu") as u:
        u.upscale_tensor(a)
        with pytest.raises(NonFiniteOutputError):  # b's call evicts a, whose close tells its flag
            u.upscale_tensor(b)
        assert not u._in_use and not built[0]._opened
        u.upscale_tensor(c)  # b goes now, as the bound says
        assert list(u._backends) == [(10, 8, 1)] and not built[1]._opened


def test_close_closes_every_backend_when_one_close_raises(net, monkeypatch):
    # close() stopped at the first backend whose close raised: the others stayed open, the Upscaler not closed
    ort_mod = pytest.importorskip("esrgan_video.runtime.onnxruntime_backend")
    pytest.importorskip("onnxruntime")
    from esrgan_video.runtime.base import NonFiniteOutputError

    built: list = []
    monkeypatch.setattr(upscaler_mod, "make_backend", _flushing_a_deferred_nan(ort_mod, built))
    u = esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu")
    for i in range(3):
        u.upscale_tensor(torch.rand(1, 3, 6 + 2 * i, 8))
    assert len(built) == 3 and all(b._opened for b in built)
    with pytest.raises(NonFiniteOutputError):
        u.close()
    assert not any(b._opened for b in built) and not u._backends
    with pytest.raises(RuntimeError, match="this Upscaler is closed"):
        u.upscale_tensor(torch.rand(1, 3, 6, 8))


def _held_while(ort_mod, monkeypatch, shape: tuple[int, int]):
    """Make a call on tiles of ``shape`` wait inside the real ONNX Runtime inference until released: (inside,
    go_on) events."""
    inside, go_on = threading.Event(), threading.Event()
    real_infer = ort_mod.OnnxRuntimeBackend._infer

    def slow_infer(self, batch, stream):
        if self.info.fixed_shape[1:] == shape and not go_on.is_set():
            inside.set()
            assert go_on.wait(30)
        return real_infer(self, batch, stream)

    monkeypatch.setattr(ort_mod.OnnxRuntimeBackend, "_infer", slow_infer)
    return inside, go_on


@pytest.mark.parametrize("told_by", ["the next call", "close"])
def test_a_finished_call_returns_its_frames_when_the_close_of_its_eviction_raises(net, monkeypatch, told_by):
    # _release evicted after the call's work was done, and a close that raised there (a deferred non-finite flag)
    # replaced the call's result: the caller's frames were lost. They are returned now, and the error is raised as
    # the backends raise a deferred check: by the next call (whichever thread makes it) or by close()
    ort_mod = pytest.importorskip("esrgan_video.runtime.onnxruntime_backend")
    pytest.importorskip("onnxruntime")
    from esrgan_video.runtime.base import NonFiniteOutputError

    built: list = []
    monkeypatch.setattr(upscaler_mod, "make_backend", _flushing_a_deferred_nan(ort_mod, built, which=1))
    monkeypatch.setattr(upscaler_mod, "MAX_FIXED_BACKENDS", 1)
    inside, go_on = _held_while(ort_mod, monkeypatch, (12, 10))
    a = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(5))
    b = torch.rand(1, 3, 6, 8, generator=torch.Generator().manual_seed(6))
    with esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu") as fresh:
        want = fresh.upscale_tensor(b)
    built.clear()
    u = esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu")
    t = threading.Thread(target=u.upscale_tensor, args=(a,))
    t.start()
    try:
        assert inside.wait(30)
        # a is held, so b's backend is the one beyond the bound that no call holds once b is done: b's call closes
        # it, and that close reads b's deferred flag
        torch.testing.assert_close(u.upscale_tensor(b), want, rtol=0, atol=0)
        assert not built[1]._opened and not u._in_use.get((6, 8, 1))
    finally:
        go_on.set()
        t.join()
    if told_by == "close":
        with pytest.raises(NonFiniteOutputError, match="non-finite"):
            u.close()
        u.close()  # told once
        return
    with pytest.raises(NonFiniteOutputError, match="non-finite"):
        u.upscale_tensor(b)
    torch.testing.assert_close(u.upscale_tensor(b), want, rtol=0, atol=0)  # told once; the Upscaler goes on
    assert not u._in_use
    u.close()


def test_a_backend_got_from_backend_for_is_the_upscalers_and_never_reopens_outside_it(net, monkeypatch):
    # backend_for/prepare handed out a backend the Upscaler then evicted (closed); calling it reopened it outside the
    # Upscaler, where neither MAX_FIXED_BACKENDS nor close() reached it (an ONNX Runtime session or a TensorRT
    # engine left open after Upscaler.close()). Once the Upscaler closes it, it stays closed and says why.
    ort_mod = pytest.importorskip("esrgan_video.runtime.onnxruntime_backend")
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(upscaler_mod, "MAX_FIXED_BACKENDS", 1)
    tiles = torch.rand(1, 3, 20, 20)
    u = esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu")
    first = u.prepare(20, 20)
    assert isinstance(first, ort_mod.OnnxRuntimeBackend) and u._backends[(20, 20, 1)] is first and first._opened
    out = first(tiles)  # it is the Upscaler's and open: it runs until the Upscaler closes it
    for i in range(2):
        u.upscale_tensor(torch.rand(1, 3, 6 + 2 * i, 8))
    assert not first._opened and first not in u._backends.values()
    with pytest.raises(BackendError, match=r"^onnxruntime backend: closed by its Upscaler \(evicted: it keeps 1 "
                                           r"fixed-shape backends .*Upscaler.backend_for gives the current one\)$"):
        first(tiles)
    assert not first._opened
    again = u.backend_for((20, 20), 1)  # a new one, the Upscaler's
    assert again is not first and u._backends[(20, 20, 1)] is again
    torch.testing.assert_close(again(tiles), out, rtol=0, atol=0)
    u.close()
    with pytest.raises(BackendError, match=r"closed by its Upscaler \(Upscaler.close\(\)\)$"):
        again(tiles)
    assert not again._opened


def test_close_waits_for_the_calls_running_and_frees_no_backend_under_them(net, monkeypatch):
    # close() from one thread freed the backends under another thread's running call: its ONNX Runtime session went
    # None mid-call ("inference failed ('NoneType' object has no attribute 'run')"; a TensorRT engine's memory would
    # be freed under its enqueue). The running call now finishes and returns its frames; later calls are refused.
    ort_mod = pytest.importorskip("esrgan_video.runtime.onnxruntime_backend")
    pytest.importorskip("onnxruntime")
    inside, go_on = _held_while(ort_mod, monkeypatch, (12, 10))
    a = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(5))
    u = esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu")
    out: list = []
    call = threading.Thread(target=lambda: out.append(u.upscale_tensor(a)))
    call.start()
    assert inside.wait(30)
    closing = threading.Thread(target=u.close)
    closing.start()
    closing.join(0.3)
    try:
        assert closing.is_alive()  # waiting for the call (it cannot end before go_on)
        with pytest.raises(RuntimeError, match="this Upscaler is closed"):  # refused as soon as close has begun
            u.upscale_tensor(a)
    finally:
        go_on.set()
        call.join()
        closing.join()
    held = u._in_use, u._backends
    assert held == ({}, {}) and len(out) == 1
    with esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu") as fresh:
        torch.testing.assert_close(out[0], fresh.upscale_tensor(a), rtol=0, atol=0)


def test_a_deferred_check_read_when_the_run_settles_leaves_no_output(net, monkeypatch, tmp_path, capsys):
    # the last frames' deferred non-finite flags (TensorRT's and CUDA torch's default check) were first read by
    # Upscaler.close() in upscale_video's finally, after the output file had been renamed into place: the error came
    # with a finished-looking output of black frames. The pipeline now flushes the Upscaler before the output is kept.
    ort_mod = pytest.importorskip("esrgan_video.runtime.onnxruntime_backend")
    pytest.importorskip("onnxruntime")
    from safetensors.torch import save_file

    from esrgan_video.cli.main import main

    built: list = []
    monkeypatch.setattr(upscaler_mod, "make_backend", _flushing_a_deferred_nan(ort_mod, built))
    model = tmp_path / "tiny_x2.safetensors"
    save_file(net.state_dict(), str(model))
    clip = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=2)
    out = tmp_path / "out.mkv"
    assert main([str(clip), str(out), "--model", str(model), "--backend", "onnxruntime", "--device", "cpu"]) == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("esrgan-video: error: onnxruntime fp32 on cpu: the model produced non-finite values")
    assert "Traceback" not in "\n".join(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "tiny_x2.safetensors"]  # no output, no temporary
    assert len(built) == 1 and not built[0]._opened


def test_a_deferred_check_of_a_callers_upscaler_is_read_before_a_still_is_written(net, monkeypatch, tmp_path):
    # upscale_image(upscaler=u) wrote the image without settling u's backends: their deferred non-finite flags were
    # left for the caller's next call or close, after a black image had been written where the finished one belongs
    ort_mod = pytest.importorskip("esrgan_video.runtime.onnxruntime_backend")
    pytest.importorskip("onnxruntime")
    from PIL import Image

    from esrgan_video.runtime.base import NonFiniteOutputError

    built: list = []
    monkeypatch.setattr(upscaler_mod, "make_backend", _flushing_a_deferred_nan(ort_mod, built))
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(src)
    with esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu") as u:
        with pytest.raises(NonFiniteOutputError, match="non-finite"):
            esrgan_video.upscale_image(src, dst, upscaler=u)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]
        esrgan_video.upscale_image(src, dst, upscaler=u)  # told once; the Upscaler goes on
    assert Image.open(dst).size == (20, 24)


# out of memory ---------------------------------------------------------------------------------------------------
class OutOfMemory(TorchBackend):
    """The real torch backend, whose batches fail as CUDA's allocator fails them."""

    def _infer(self, batch, stream):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total "
                                          "capacity; 77.52 GiB already allocated)")


@pytest.fixture
def oom_backend(monkeypatch):
    monkeypatch.setattr(upscaler_mod, "make_backend",
                        lambda model, **kw: OutOfMemory(model, CommonOptions(device="cpu", precision="fp32")))


def test_out_of_memory_in_upscale_is_one_line_naming_a_smaller_tile(net, oom_backend):
    # was torch.cuda.OutOfMemoryError's own message (a traceback in the CLI, in VapourSynth the frame's error text)
    frame = RNG.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    with esrgan_video.Upscaler(net, backend="torch", device="cpu", tile=128) as u:
        with pytest.raises(BackendError) as caught:
            u.upscale(frame)
        assert u.config.tile_pad == 48 and u.plan(300, 200).tile_shape == (224, 200)
    assert str(caught.value) == ("out of memory on cpu upscaling 200×300 frames in 2 tiles of 200×224 input pixels, "
                                 "1 at a time: use smaller tiles (--tile 16)")
    assert isinstance(caught.value.__cause__, torch.cuda.OutOfMemoryError)  # the original stays the cause
    with esrgan_video.Upscaler(net, backend="torch", device="cpu", tile=512) as u:  # a bigger side: a bigger tile
        with pytest.raises(BackendError, match=r"in one tile of 200×300 input pixels, 1 at a time: use smaller tiles "
                                               r"\(--tile 48\)$"):
            u.upscale(frame)
        with pytest.raises(BackendError, match=r"^out of memory on cpu upscaling 600×500 frames in one tile of "
                                               r"600×500 input pixels, 1 at a time: use smaller tiles \(--tile 192\)$"):
            u.upscale_tensor(torch.rand(1, 3, 500, 600))


def test_memory_errors_are_recognised_by_kind_and_by_the_runtimes_words(net):
    from esrgan_video.upscaler import out_of_memory

    ort = RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running Conv "
                       "node. Status Message: bfc_arena.cc:376 AllocateRawInternal Failed to allocate memory for "
                       "requested buffer of size 1073741824")
    wrapped = BackendError(f"onnxruntime backend: inference failed ({ort})")
    for e in (torch.cuda.OutOfMemoryError("x"), RuntimeError("CUDA error: out of memory"), ort, wrapped,
              RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you "
                           "tried to allocate 123 bytes"), MemoryError()):
        assert out_of_memory(e), e
    for e in (RuntimeError("shape mismatch"), BackendError("the model produced non-finite values"),
              esrgan_video.errors.InputError("out of memory.mkv: no such file")):
        assert not out_of_memory(e), e
    with esrgan_video.Upscaler(net, backend="torch", device="cpu") as u:  # CPU default: whole frames up to 640×360
        assert str(u.memory_error(wrapped, 200, 300)) == ("out of memory on cpu upscaling 300×200 frames in one tile "
                                                          "of 300×200 input pixels, 1 at a time: use smaller tiles "
                                                          "(--tile 48)")
        # a side that, halved, leaves less than the pad: the pad halved too
        assert str(u.memory_error(wrapped, 24, 32)).endswith("use smaller tiles (--tile 16 with --tile-pad 24)")
        assert u.memory_error(RuntimeError("shape mismatch"), 200, 300) is None


def test_out_of_memory_in_a_cli_run_is_one_line_and_exit_7(net, oom_backend, tmp_path, capsys):
    from safetensors.torch import save_file

    from esrgan_video.cli.main import main

    model = tmp_path / "tiny_x2.safetensors"
    save_file(net.state_dict(), str(model))
    clip = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=2)
    out = tmp_path / "out.mkv"
    assert main([str(clip), str(out), "--model", str(model), "--backend", "torch", "--device", "cpu",
                 "--tile", "16"]) == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("esrgan-video: error: out of memory on cpu upscaling 32×24 frames in one tile of 32×24 input "
                       "pixels, 1 at a time: use smaller tiles (--tile 16 with --tile-pad 24)")
    assert "Traceback" not in "\n".join(err)
    assert not out.exists()
