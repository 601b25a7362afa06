"""Ray actors vs local worker processes on the same segments: ``python -m benchmarks.ray_bench [options]``.

The batch's two schedulers run the same segment tasks of one clip with the same number of workers: the
``LocalScheduler`` (one worker process per ``--devices`` entry) and the ``RayScheduler`` on a local Ray instance
(one long-lived actor per CPU, holding its Upscaler). Time is measured from the first segment sent to the last
result received; starting the Ray instance (``ray.init``) is not counted. Rounds alternate the two (local, ray,
ray, local, ...) so machine load hits both alike; the result is the ratio of median throughputs (target: Ray
within 10 % of local, ratio >= 0.9). Both runs' segments must decode to the same frames (checked).

The clip is the real sample (Big Buck Bunny) shrunk to ``--size`` and coded as FFV1 (a keyframe every 12 frames, FFmpeg's default GOP), cut
into ``--segments`` equal segments; the model is ``--model`` (a registry name, default the anime 6B model, or
``tiny`` for a near-identity test model). Results go to ``benchmarks/results/ray-bench.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks import common

RESULTS = Path(__file__).resolve().parent / "results"


class TimingPlan:
    """A minimal plan for the schedulers: a fixed list of tasks, timed from the first sent to the last received."""

    def __init__(self, tasks) -> None:
        self.queue = deque(tasks)
        self.running: set[str] = set()
        self.first: float | None = None
        self.last: float | None = None
        self.results: dict[str, dict[str, Any]] = {}

    def next_task(self):
        return self.queue.popleft() if self.queue else None

    def finished(self) -> bool:
        return not self.queue and not self.running

    def started(self, task, owner: str) -> None:
        self.running.add(task.key)
        if self.first is None:
            self.first = time.perf_counter()

    def heartbeat(self, task, owner: str) -> None:
        pass

    def progress(self, task, info) -> None:
        pass

    def done(self, task, result) -> None:
        self.running.discard(task.key)
        self.last = time.perf_counter()
        self.results[task.key] = result

    def failed(self, task, error: str) -> None:
        raise RuntimeError(f"{task.key}: {error}")

    def lost(self, task, why: str) -> None:
        raise RuntimeError(f"{task.key}: {why}")

    @property
    def seconds(self) -> float:
        return self.last - self.first


def make_clip(path: Path, frames: int, size: tuple[int, int], fps: int = 24) -> Path:
    """The first ``frames`` frames of the real sample clip, resized to ``size``, as FFV1 in Matroska
    (:func:`benchmarks.clips.held_clip`, each frame once)."""
    from benchmarks.clips import held_clip
    from esrgan_video.samples import sample_clip

    return held_clip(path, [(sample_clip("bigbuckbunny.mp4", progress=False), 0, frames)], size=size, repeat=1,
                     codec="ffv1", rate=Fraction(fps))


def segment_tasks(src: Path, outdir: Path, frames: int, segments: int, fps: int = 24):
    from esrgan_video.batch.worker import Task

    per = frames // segments
    tasks = []
    for i in range(segments):
        start = Fraction(i * per, fps)
        end = None if i == segments - 1 else Fraction((i + 1) * per, fps)
        tasks.append(Task(key=f"seg{i:04d}", kind="segment", job_key="clip", src=str(src),
                          dst=str(outdir / f"{i:04d}.mkv"), start=start, end=end, overwrite=True))
    return tasks


def frames_digest(paths) -> str:
    h = hashlib.sha1()
    for p in paths:
        with av.open(str(p)) as c:
            for f in c.decode(video=0):
                h.update(np.ascontiguousarray(f.to_ndarray()).tobytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ray_bench", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="RealESRGAN_x4plus_anime_6B", help="registry name, path, or 'tiny'")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", default="64x36", help="WxH of the clip's frames (default: %(default)s)")
    ap.add_argument("--segments", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of (local, ray) pairs, alternating the order")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:  # the model, the clip, every round's outputs
        return _bench(args, Path(tmp))


def _bench(args, tmp: Path) -> int:
    import ray

    from esrgan_video.batch.scheduler import LocalScheduler, RayScheduler
    from esrgan_video.batch.worker import WorkerSettings
    from esrgan_video.options import UpscaleOptions

    w, h = (int(v) for v in args.size.lower().split("x"))
    model = args.model
    if model == "tiny":
        from esrgan_video.testing import save_near_identity

        model = str(save_near_identity(tmp / "tiny.safetensors"))
    else:
        from esrgan_video.models import model_path

        model_path(model, progress=False)  # fetched before anything is timed
    clip = make_clip(tmp / "clip.mkv", args.frames, (w, h))
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    settings = WorkerSettings(options=UpscaleOptions.from_kwargs(model=model, codec="ffv1"), threads=threads)
    load_before = os.getloadavg()
    # not timed; Ray's session folder (logs, sockets) goes in tmp, removed with it (else it stays in $TMPDIR/ray)
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, _temp_dir=str(tmp / "ray"))
    times: dict[str, list[float]] = {"local": [], "ray": []}
    task_s: dict[str, list[list[float]]] = {"local": [], "ray": []}
    digests: dict[str, set[str]] = {"local": set(), "ray": set()}
    try:
        for r in range(args.rounds):
            for kind in (("local", "ray") if r % 2 == 0 else ("ray", "local")):
                outdir = tmp / f"{kind}-{r}"
                outdir.mkdir()
                tasks = segment_tasks(clip, outdir, args.frames, args.segments)
                plan = TimingPlan(tasks)
                if kind == "local":
                    LocalScheduler(["cpu"] * args.workers, settings, log=lambda m: None).run(plan)
                else:
                    RayScheduler("local", settings, log=lambda m: None).run(plan)
                times[kind].append(plan.seconds)
                task_s[kind].append([round(float(plan.results[t.key]["seconds"]), 3) for t in tasks])
                digests[kind].add(frames_digest(sorted(outdir.glob("*.mkv"))))
                print(f"round {r} {kind:5}: {plan.seconds:.2f} s ({args.frames / plan.seconds:.2f} fps); "
                      f"per task (worker-side) {task_s[kind][-1]}", flush=True)
    finally:
        ray.shutdown()
    same = digests["local"] == digests["ray"] and len(digests["local"]) == 1
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["local"] / med["ray"]  # Ray's throughput relative to local's
    result = {
        "meta": {**common.run_header(sys.argv, "ray-bench"), "model": args.model, "frames": args.frames,
                 "size": [w, h], "segments": args.segments, "workers": args.workers, "threads_per_worker": threads,
                 "load_before": load_before, "load_after": os.getloadavg()},
        "seconds": times, "task_seconds": task_s, "median_s": med, "ray_throughput_vs_local": ratio, "target": 0.9,
        "within_target": ratio >= 0.9, "same_frames": same,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray-bench.json").write_text(json.dumps(common.jsonable(result), indent=1) + "\n")
    print(f"{args.frames} frames {w}x{h}, {args.segments} segments, {args.workers} workers ({threads} threads each), "
          f"model {args.model}; load {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"median: local {med['local']:.2f} s, ray {med['ray']:.2f} s; Ray throughput / local = {ratio:.3f} "
          f"(target >= 0.9); same frames: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
