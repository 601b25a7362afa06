"""How long a local batch worker takes to start (``python -m benchmarks.worker_start_bench [--repeats N]``): not a test.

``LocalScheduler`` forks its workers from a fork server that imported torch and the worker's code once
(``scheduler.worker_context``); before, each worker was spawned and imported them itself. This times, interleaved in
one run, a worker's start until its first heartbeat reaches the driver (the worker is then waiting for a task) in
both contexts, the server already running (as for every worker after a process's first), and reports the medians
and their ratio; writes ``benchmarks/results/worker_start.json``. The first heartbeat comes before the first task
imports the pipeline (which the fork server has loaded too), so the ratio understates what a worker saves.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

from benchmarks.common import interleaved, machine_info, write_json
from esrgan_video.batch.scheduler import LocalScheduler, worker_context
from esrgan_video.batch.worker import WorkerSettings
from esrgan_video.options import UpscaleOptions

RESULTS = Path(__file__).resolve().parent / "results"


def start_once(sched: LocalScheduler) -> float:
    """Seconds from starting one worker to its first heartbeat at the driver; the worker is then stopped."""
    t0 = time.perf_counter()
    w = sched._spawn("cpu")
    sched.workers = [w]
    try:
        while True:
            if any(kind == "hb" and wid == w.wid for kind, wid, *_ in sched._messages(60)):
                return time.perf_counter() - t0
            if w.broken is not None or not w.proc.is_alive():
                raise RuntimeError(f"the worker died before its first heartbeat (exit code {w.proc.exitcode})")
    finally:
        sched._shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    settings = WorkerSettings(options=UpscaleOptions.from_kwargs(model="RealESRGAN_x4plus"), threads=1)
    scheds = {}
    for name, ctx in (("spawn", mp.get_context("spawn")), ("forkserver", worker_context())):
        s = LocalScheduler(["cpu"], settings, log=lambda m: None)
        s._ctx = ctx
        scheds[name] = s
    assert scheds["forkserver"]._ctx.get_start_method() == "forkserver", "no fork server on this machine"
    stats, _ = interleaved({n: (lambda s=s: start_once(s)) for n, s in scheds.items()}, repeats=args.repeats,
                           warmup=1)
    med = {n: st.median for n, st in stats.items()}
    out = {"machine": machine_info(), "repeats": args.repeats, "median_s": med,
           "all_s": {n: st.values for n, st in stats.items()},
           "spawn_over_forkserver": med["spawn"] / med["forkserver"]}
    write_json(out, RESULTS / "worker_start.json")
    print(f"worker start to first heartbeat, median of {args.repeats}: spawn {med['spawn']:.3f} s, "
          f"forkserver {med['forkserver']:.3f} s ({out['spawn_over_forkserver']:.1f}x)")


if __name__ == "__main__":
    main()
