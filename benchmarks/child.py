"""Measurements that need a fresh process: peak RSS over a run, and time to first frame.

Run by the harness as ``python -m benchmarks.child <what> ...``; prints one JSON object on its last
stdout line. Peak RSS (``ru_maxrss``) is a whole-process high-water mark, so each run gets its own
process; a cold model load is only cold in a process that has not loaded it yet.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

SAMPLE_S = 0.005
"""RSS sampling period during a memory run (ru_maxrss alone is dominated by the import-time peak)."""



def _load(model: str):
    from benchmarks.models import load

    return load(model)


def memory(clip: str, frames: int, model: str) -> dict:
    """Upscale the first ``frames`` frames of ``clip`` with ``upscale_video``; RSS sampled during the run.

    The process-wide ``ru_maxrss`` is reported too, but importing torch peaks above a small run, so the
    sampled peak during the run is the number that can show growth.
    """
    import torch

    from benchmarks.common import current_rss_bytes, peak_rss_bytes
    from esrgan_video.pipeline import upscale_video
    from esrgan_video.upscaler import Upscaler

    up = Upscaler(_load(model), device="cpu")
    rss_before = current_rss_bytes()
    peak_before = peak_rss_bytes()
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(current_rss_bytes())
            stop.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            res = upscale_video(clip, Path(tmp) / "out.mkv", upscaler=up, end=frames, codec="libx264", crf=18,
                                preset="ultrafast", overwrite=True)
    finally:
        stop.set()
        sampler.join()
    out = {
        "frames": res.frames,
        "seconds": res.seconds,
        "fps": res.fps,
        "rss_before_run_bytes": rss_before,
        "run_peak_rss_bytes": max(samples + [current_rss_bytes()]),
        "rss_samples": len(samples),
        "process_peak_rss_before_run_bytes": peak_before,
        "process_peak_rss_bytes": peak_rss_bytes(),
        "rss_after_run_bytes": current_rss_bytes(),
    }
    if torch.cuda.is_available():
        out["gpu_peak_bytes"] = torch.cuda.max_memory_allocated()
    up.close()
    return out


def first_frame(model: str, width: int, height: int) -> dict:
    """Import, cold model load, first frame; then a warm load (same process) and its first frame."""
    t0 = time.perf_counter()
    import torch

    import esrgan_video  # noqa: F401
    from esrgan_video.upscaler import Upscaler

    t_import = time.perf_counter() - t0
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))

    def once() -> tuple[float, float, float, float, str]:
        ta = time.perf_counter()
        m = _load(model)
        tb = time.perf_counter()
        with Upscaler(m, tile=0, device="cpu") as up:
            info = up.prepare(height, width).info  # the backend: ONNX export + session (ORT), engine (TensorRT)
            tp = time.perf_counter()
            up.upscale_tensor(x)
            tc = time.perf_counter()
            up.upscale_tensor(x)
            td = time.perf_counter()
        return tb - ta, tc - tb, td - tc, tp - tb, info.name

    cold = once()
    warm = once()
    return {
        "import_s": t_import,
        "load_cold_s": cold[0],
        "first_frame_cold_s": cold[1],
        "backend_build_cold_s": cold[3],
        "time_to_first_frame_cold_s": t_import + cold[0] + cold[1],
        "load_warm_s": warm[0],
        "first_frame_warm_s": warm[1],
        "backend_build_warm_s": warm[3],
        "time_to_first_frame_warm_s": warm[0] + warm[1],
        "steady_frame_s": min(cold[2], warm[2]),
        "backend": cold[4],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.child")
    sub = ap.add_subparsers(dest="what", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--clip", required=True)
    m.add_argument("--frames", type=int, required=True)
    m.add_argument("--model", required=True)
    f = sub.add_parser("first-frame")
    f.add_argument("--model", required=True)
    f.add_argument("--width", type=int, required=True)
    f.add_argument("--height", type=int, required=True)
    a = ap.parse_args(argv)
    if a.what == "memory":
        out = memory(a.clip, a.frames, a.model)
    else:
        out = first_frame(a.model, a.width, a.height)
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
