"""The Upscaler's backends under threads, with the real ONNX Runtime backend on a tiny near-identity model: a
fixed-shape backend is never closed under a call running on it (the LRU eviction)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import esrgan_video
from esrgan_video import upscaler as upscaler_mod
from esrgan_video.runtime.base import CommonOptions
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
