"""Before/after in one process: ``upscale_video`` of two trees of the package, interleaved rounds.

    python -m benchmarks.ab_trees --a REV_OR_DIR --b REV_OR_DIR [--rounds 10] [--size 96x72] [--frames 8]

Each side is a git revision (exported with ``git archive``) or a directory holding an ``esrgan_video`` package;
its package is copied under a new name (``esrgan_video_a`` / ``esrgan_video_b``, absolute self-imports rewritten),
so both import side by side and run the same clip slice (``benchmarks.run``'s e2e: carphone, H.264 CRF 12,
libx264 CRF 18 veryfast out) with their own Upscaler on the same weights, alternating which goes first. Reports
the medians and the median of per-round ratios of wall seconds and of process CPU seconds (the steadier one on a
shared machine). Its defaults are ``make bench-full``'s e2e case; used to check that the core's rewrite kept
the e2e figures (docs/ARCHITECTURE.md, the streaming core).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import importlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _export(side: str, name: str, into: Path) -> Path:
    """The package of ``side`` (revision or directory) as ``into/name`` with its self-imports renamed."""
    src = Path(side)
    if not (src / "esrgan_video").is_dir():
        tree = into / f"tree_{name}"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", side, "esrgan_video"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        src = tree
    dst = into / name
    shutil.copytree(src / "esrgan_video", dst)
    for p in dst.rglob("*.py"):
        p.write_text(re.sub(r"\besrgan_video\b", name, p.read_text()))
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--size", default="96x72")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--model", default="RealESRGAN_x4plus_anime_6B")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    from benchmarks.run import make_slice
    from esrgan_video.models import model_path
    from esrgan_video.samples import sample_clip

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for side, name in ((args.a, "esrgan_video_a"), (args.b, "esrgan_video_b")):
            _export(side, name, work)
        sys.path.insert(0, str(work))
        run = {t: importlib.import_module(f"esrgan_video_{t}.pipeline").upscale_video for t in "ab"}
        ups = {t: importlib.import_module(f"esrgan_video_{t}.upscaler").Upscaler for t in "ab"}
        src = make_slice(sample_clip("carphone_pristine.mp4", progress=False), work / "slice.mp4", width=w,
                         height=h, frames=args.frames)
        weights = str(model_path(args.model, progress=False))
        up = {t: ups[t](weights, tile=0, device="cpu") for t in "ab"}
        for t in "ab":
            up[t].prepare(h, w)
        wall: dict[str, list[float]] = {"a": [], "b": []}
        cpu: dict[str, list[float]] = {"a": [], "b": []}
        for r in range(args.rounds):
            for t in ("ab" if r % 2 == 0 else "ba"):
                t0, c0 = time.perf_counter(), time.process_time()
                run[t](src, work / f"out_{t}.mkv", upscaler=up[t], codec="libx264", crf=18, preset="veryfast",
                       overwrite=True)
                wall[t].append(time.perf_counter() - t0)
                cpu[t].append(time.process_time() - c0)
                print(f"{t} round {r}: {wall[t][-1]:.2f} s wall, {cpu[t][-1]:.2f} s CPU, load {os.getloadavg()[0]:.1f}",
                      flush=True)
        for t in "ab":
            up[t].close()
    out = {
        "a": args.a, "b": args.b, "clip": f"carphone_pristine first {args.frames} frames {w}x{h}", "model": args.model,
        "rounds": args.rounds, "wall_median_s": {t: statistics.median(v) for t, v in wall.items()},
        "cpu_median_s": {t: statistics.median(v) for t, v in cpu.items()},
        "b_over_a_wall": statistics.median(b / a for a, b in zip(wall["a"], wall["b"])),
        "b_over_a_cpu": statistics.median(b / a for a, b in zip(cpu["a"], cpu["b"])),
        "load_end": os.getloadavg(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
