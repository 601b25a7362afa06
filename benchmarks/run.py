"""The CPU benchmark harness: ``python -m benchmarks.run --quick`` (``make bench``), ``--full`` or ``--compact``
(the compact video model beside the RRDB models and against vs-mlrt).

Sections (each one's results land in the JSON under its name):

* ``inference``: frames/s, input px/s and achieved FLOP/s of our CPU fp32 paths (``Upscaler.upscale_tensor`` with
  the default backend and with ``--backend torch``, and the bare ONNX Runtime and torch backends, torch with and
  without channels_last) per model, input size and tile size.
* ``peers``: ours vs spandrel, the official RealESRGANer (whole frame and tiled) and vs-mlrt's ONNX Runtime
  plugin on the same real frames, the same weights, in one interleaved loop; speed as ratios of medians,
  and PSNR of each peer's output against ours.
* ``fidelity``: tiled (the ``esrgan_video.tiling`` defaults) vs whole-frame PSNR on a real frame.
* ``e2e``: ``upscale_video`` on a real clip slice vs inference only on the same frames, with the time per stage.
* ``memory``: peak RSS of ``upscale_video`` on N and 10·N frames, each in a fresh process.
* ``first_frame``: import, cold and warm model load, first frame (fresh process).

Writes ``<out>/cpu-<mode>.json``, ``<out>/cpu-<mode>.png`` and regenerates ``<out>/BENCHMARKS.md`` from every
``cpu-*.json`` in ``<out>``. ``--smoke`` runs the same code on a tiny model and tiny sizes (the test suite's
guard against rot); its results go to ``--out`` only.
"""

from __future__ import annotations

import os

# Before torch is imported (OpenMP reads it once): with the default spin-waiting, torch's 2 OpenMP threads
# collapse on a shared, oversubscribed CPU (measured here: anime 6B 48x48 took 13.7 s instead of 1.9 s at
# load 11 on 2 cores). PASSIVE costs little on an idle machine. A value set by the caller is kept; the
# value in use is recorded in the results (meta.env).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common, report
from benchmarks.common import Stat, interleaved, psnr
from benchmarks.models import NEAR_IDENTITY, as_tensor, crop, load, real_frame
from esrgan_video.models.descriptor import describe

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("inference", "peers", "fidelity", "e2e", "memory", "first_frame")

Size = tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class Plan:
    """What one mode measures. Sizes are (width, height) of the model input."""

    mode: str
    inference_cases: tuple[tuple[str, Size], ...]
    """(model, input size) pairs for the inference-only section."""
    inference_tiles: tuple[int, ...]
    """0 = whole frame; T = tiles of T (only where the frame is larger than a tile)."""
    repeats: int
    inference_tile_pad: int | None
    """Overlap for the tiled inference rows; None = the tiling default."""
    peer_models: tuple[str, ...]
    peer_sizes: tuple[Size, ...]
    peer_repeats: int
    peer_tile: tuple[int, int]
    """(tile, tile_pad) for the tiled ours-vs-RealESRGANer comparison."""
    peer_tile_size: Size
    fidelity_size: Size
    fidelity_tile: int
    e2e_model: str
    e2e_clip: str
    e2e_size: Size
    e2e_frames: int
    e2e_rounds: int
    memory_model: str
    memory_frames: int
    memory_size: Size
    """Input size of the memory runs (large enough that keeping a frame per frame would show)."""
    first_frame_models: tuple[str, ...]
    first_frame_size: Size
    sections: tuple[str, ...] = SECTIONS


X4 = "RealESRGAN_x4plus"
ANIME = "RealESRGAN_x4plus_anime_6B"
COMPACT = "realesr-animevideov3"

PLANS = {
    "quick": Plan(
        mode="quick",
        inference_cases=((ANIME, (48, 48)), (ANIME, (64, 64)), (X4, (48, 48)), (COMPACT, (64, 64)),
                         (COMPACT, (160, 90))),
        inference_tiles=(0,), repeats=3, inference_tile_pad=None,
        peer_models=(ANIME, COMPACT), peer_sizes=((64, 64),), peer_repeats=8, peer_tile=(32, 8),
        peer_tile_size=(64, 48),
        fidelity_size=(128, 72), fidelity_tile=32,
        e2e_model=ANIME, e2e_clip="carphone_pristine.mp4", e2e_size=(64, 48), e2e_frames=4, e2e_rounds=4,
        memory_model=NEAR_IDENTITY, memory_frames=10, memory_size=(176, 144),
        first_frame_models=(ANIME,), first_frame_size=(64, 48),
    ),
    "full": Plan(
        mode="full",
        inference_cases=tuple((m, s) for m in (ANIME, X4, COMPACT) for s in ((64, 64), (96, 54), (160, 90)))
        + ((COMPACT, (320, 180)),),
        inference_tiles=(0, 64), repeats=5, inference_tile_pad=None,
        peer_models=(ANIME, X4, COMPACT), peer_sizes=((64, 64), (96, 54)), peer_repeats=7, peer_tile=(64, 16),
        peer_tile_size=(160, 90),
        fidelity_size=(160, 90), fidelity_tile=48,
        e2e_model=ANIME, e2e_clip="carphone_pristine.mp4", e2e_size=(96, 72), e2e_frames=8, e2e_rounds=5,
        memory_model=NEAR_IDENTITY, memory_frames=12, memory_size=(176, 144),
        first_frame_models=(ANIME, X4), first_frame_size=(64, 48),
    ),
    "compact": Plan(
        mode="compact",
        inference_cases=((ANIME, (64, 64)), (X4, (64, 64)), (COMPACT, (64, 64)), (COMPACT, (160, 90)),
                         (COMPACT, (320, 180))),
        inference_tiles=(0,), repeats=5, inference_tile_pad=None,
        peer_models=(COMPACT,), peer_sizes=((64, 64), (160, 90), (320, 180)), peer_repeats=9, peer_tile=(64, 18),
        peer_tile_size=(320, 180),
        fidelity_size=(320, 180), fidelity_tile=64,
        e2e_model=COMPACT, e2e_clip="carphone_pristine.mp4", e2e_size=(176, 144), e2e_frames=8, e2e_rounds=5,
        memory_model=COMPACT, memory_frames=10, memory_size=(176, 144),
        first_frame_models=(COMPACT,), first_frame_size=(176, 144),
        sections=("inference", "peers", "fidelity", "e2e", "first_frame"),
    ),
    "smoke": Plan(
        mode="smoke",
        inference_cases=((NEAR_IDENTITY, (24, 16)),), inference_tiles=(0, 8), repeats=2, inference_tile_pad=4,
        peer_models=(NEAR_IDENTITY,), peer_sizes=((24, 16),), peer_repeats=2, peer_tile=(8, 4),
        peer_tile_size=(24, 16),
        fidelity_size=(80, 24), fidelity_tile=8,
        e2e_model=NEAR_IDENTITY, e2e_clip="carphone_pristine.mp4", e2e_size=(32, 24), e2e_frames=3, e2e_rounds=1,
        memory_model=NEAR_IDENTITY, memory_frames=2, memory_size=(32, 24),
        first_frame_models=(NEAR_IDENTITY,), first_frame_size=(24, 16),
    ),
}


@dataclass
class Context:
    """What sections share: a work directory and loaded models."""

    plan: Plan
    workdir: Path
    models: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = print

    def model(self, name: str):
        if name not in self.models:
            self.models[name] = load(name)
        return self.models[name]


def _fps_row(stat: Stat, width: int, height: int, fpp: float, peak: common.Peak | None,
             executed_px: int | None = None) -> dict[str, Any]:
    fps = 1.0 / stat.median
    useful = common.achieved_flops(fps, height, width, fpp)
    row = {
        "median_s": stat.median, "min_s": stat.min, "max_s": stat.max, "runs": stat.n, "fps": fps,
        "input_px_per_s": fps * width * height, "useful_gflops": useful / 1e9,
        "pct_cpu_peak": common.percent_of_peak(useful, peak),
    }
    if executed_px is not None:
        row["executed_px_per_frame"] = executed_px
        row["executed_px_per_s"] = fps * executed_px
        row["executed_gflops"] = fps * executed_px * fpp / 1e9
    return row


# --------------------------------------------------------------------------------------------
# inference only


def section_inference(ctx: Context) -> dict[str, Any]:
    """Our CPU fp32 throughput per model, size and tile (Upscaler.upscale_tensor and the bare backends)."""
    from esrgan_video.runtime.base import CommonOptions
    from esrgan_video.runtime.onnxruntime_backend import OnnxRuntimeBackend, onnxruntime_available
    from esrgan_video.runtime.torch_backend import TorchBackend, TorchOptions
    from esrgan_video.upscaler import Upscaler

    plan, peak = ctx.plan, common.cpu_peak_flops()
    rows = []
    for name, (w, h) in plan.inference_cases:
        model = ctx.model(name)
        fpp = describe(model).flops_per_input_pixel
        x = as_tensor(real_frame(w, h))
        runners: dict[str, Callable[[], Any]] = {}
        meta: dict[str, dict[str, Any]] = {}
        closers = []
        for tile in plan.inference_tiles:
            for backend in ("auto", "torch"):
                up = Upscaler(model, tile=tile, tile_pad=plan.inference_tile_pad, backend=backend, device="cpu")
                p = up.plan(h, w)
                if tile and p.count == 1:
                    up.close()
                    continue  # the frame fits in one tile: same as whole frame
                chosen = up.prepare(h, w).info.name
                label = "Upscaler" + (f" tile={tile}" if tile else "") + ("" if backend == "auto" else " torch")
                runners[label] = lambda up=up: up.upscale_tensor(x)
                meta[label] = {"api": "Upscaler.upscale_tensor", "backend": f"{chosen} cpu fp32", "tile": tile,
                               "tile_pad": up.config.tile_pad if tile else None, "tiles": p.count,
                               "tile_shape": list(p.tile_shape),
                               "executed_px": common.executed_pixels(p.count, p.tile_shape)}
                closers.append(up.close)
        if onnxruntime_available():
            ob = OnnxRuntimeBackend(model, CommonOptions(tile_shape=(h, w))).open()
            runners["backend onnxruntime"] = lambda ob=ob: ob.infer(x)
            meta["backend onnxruntime"] = {"api": "OnnxRuntimeBackend.infer", "backend": "onnxruntime cpu fp32",
                                           "tile": 0, "tiles": 1, "tile_shape": [h, w], "executed_px": h * w}
            closers.append(ob.close)
        for cl in (False, True):
            be = TorchBackend(model, CommonOptions(device="cpu", precision="fp32"),
                              TorchOptions(channels_last=cl)).open()
            label = "backend torch" + (" channels_last" if cl else " NCHW")
            runners[label] = lambda be=be: be.infer(x)
            meta[label] = {"api": "TorchBackend.infer", "backend": "torch cpu fp32", "tile": 0, "channels_last": cl,
                           "tiles": 1, "tile_shape": [h, w], "executed_px": h * w}
            closers.append(be.close)
        ctx.log(f"inference: {name} {w}x{h}: {', '.join(runners)}")
        cpu: dict[str, list[float]] = {}
        stats, _ = interleaved(runners, repeats=plan.repeats, warmup=1, cpu=cpu)
        for label, st in stats.items():
            rows.append({"model": name, "width": w, "height": h, "variant": label,
                         "flops_per_input_pixel": fpp, "cpu_s_median": Stat.of(cpu[label]).median, **meta[label],
                         **_fps_row(st, w, h, fpp, peak, meta[label]["executed_px"])})
        for c in closers:
            c()
    return {"rows": rows, "cpu_peak_fp32_gflops": peak.flops / 1e9 if peak else None,
            "cpu_peak_basis": peak.basis if peak else None}


# --------------------------------------------------------------------------------------------
# peers


def realesrgan_tile_pixels(height: int, width: int, tile: int, pad: int) -> int:
    """Input pixels RealESRGANer.tile_process feeds the model for one frame (its tiling, reproduced; pure)."""
    total = 0
    for y in range(0, height, tile):
        ty = min(min(y + tile, height) + pad, height) - max(y - pad, 0)
        for x in range(0, width, tile):
            tx = min(min(x + tile, width) + pad, width) - max(x - pad, 0)
            total += ty * tx
    return total


def _build(ctx: Context, builders: dict[str, Callable[[], Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Build each runner; a peer that cannot be set up becomes a row with its error line."""
    from benchmarks.peers import PeerUnavailable

    runners, failed = {}, []
    for label, make in builders.items():
        try:
            runners[label] = make()
        except PeerUnavailable as e:
            ctx.log(f"peers: {label} unavailable: {e}")
            failed.append({"runner": label, "available": False, "error": str(e)})
    return runners, failed


def section_peers(ctx: Context) -> dict[str, Any]:
    """Ours vs each peer, same frames, same weights, interleaved; PSNR of each output against ours."""
    from benchmarks import peers
    from esrgan_video import tiling

    plan, peak = ctx.plan, common.cpu_peak_flops()
    groups = []
    for name in plan.peer_models:
        model = ctx.model(name)
        desc = describe(model)
        fpp, scale = desc.flops_per_input_pixel, desc.scale
        # whole frame, equal settings --------------------------------------------------------
        for w, h in plan.peer_sizes:
            frame = real_frame(w, h)
            runners, failed = _build(ctx, {
                "ours": lambda: peers.ours(model),
                "ours --backend torch (diagnostic)": lambda: peers.ours_torch(model),
                "spandrel": lambda: peers.spandrel_plain(model),
                "realesrgan": lambda: peers.realesrgan(model, ctx.workdir, pre_pad=0),
                "vsmlrt-ort": lambda: peers.vsmlrt_ort(model, ctx.workdir, height=h, width=w),
                "vsmlrt-ort on our graph (diagnostic)": lambda: peers.vsmlrt_ort(
                    model, ctx.workdir, height=h, width=w, scale_as_conv=True,
                    label="vsmlrt-ort on our graph (diagnostic)"),
            })
            ctx.log(f"peers: {name} {w}x{h} whole frame: {', '.join(runners)}")
            groups.append(_compare(runners, failed, frame, "whole frame", name, fpp, peak, ctx))
            # the official default pre_pad=10 (reflect): fidelity only
            if "realesrgan" in runners:
                try:
                    rp = peers.realesrgan(model, ctx.workdir, pre_pad=10, label="realesrgan pre_pad=10")
                    ref = groups[-1]["_outputs"]["ours"]
                    out = rp(frame)
                    band = 10 * scale
                    groups[-1]["realesrgan_default_pre_pad"] = {
                        "pre_pad": 10, "psnr_vs_ours_db": psnr(ref, out),
                        "psnr_vs_ours_excluding_bottom_right_band_db": psnr(ref[:-band, :-band], out[:-band, :-band]),
                        "band_px": band,
                    }
                    rp.close()
                except peers.PeerUnavailable as e:
                    groups[-1]["realesrgan_default_pre_pad"] = {"error": str(e)}
            for r in runners.values():
                r.close()
        # tiled, equal tile and pad options ------------------------------------------------------
        tile, pad = plan.peer_tile
        w, h = plan.peer_tile_size
        frame = real_frame(w, h)
        runners, failed = _build(ctx, {
            "ours": lambda: peers.ours(model),
            f"ours tile={tile}": lambda: peers.ours(model, tile=tile, tile_pad=pad),
            f"realesrgan tile={tile}": lambda: peers.realesrgan(model, ctx.workdir, tile=tile, tile_pad=pad),
        })
        our_plan = tiling.plan_tiles(h, w, tile=tile, pad=pad, scale=scale, multiple=desc.size_multiple)
        executed = {"ours": h * w, f"ours tile={tile}": common.executed_pixels(our_plan.count, our_plan.tile_shape),
                    f"realesrgan tile={tile}": realesrgan_tile_pixels(h, w, tile, pad)}
        ctx.log(f"peers: {name} {w}x{h} tile={tile} pad={pad}: {', '.join(runners)}")
        g = _compare(runners, failed, frame, f"tile={tile} pad={pad}", name, fpp, peak, ctx, executed=executed,
                     ours_label=f"ours tile={tile}", reference_label="ours")
        g["our_blend"] = tiling.DEFAULT_BLEND
        g["our_tiles"] = our_plan.count
        g["realesrgan_tiles"] = -(-h // tile) * -(-w // tile)
        groups.append(g)
        for r in runners.values():
            r.close()
    for g in groups:
        g.pop("_outputs", None)
    summary = _peer_summary(groups)
    return {"groups": groups, **summary}


def _compare(runners, failed, frame, setting, model_name, fpp, peak, ctx, *, executed=None, ours_label="ours",
             reference_label="ours") -> dict[str, Any]:
    h, w = frame.shape[:2]
    calls = {label: (lambda r=r: r(frame)) for label, r in runners.items()}
    cpu: dict[str, list[float]] = {}
    stats, outs = interleaved(calls, repeats=ctx.plan.peer_repeats, warmup=1, cpu=cpu)
    ref = outs.get(reference_label)
    rows = []
    for label, st in stats.items():
        row = {"runner": label, "peer": runners[label].peer, "available": True, "settings": runners[label].settings,
               **_fps_row(st, w, h, fpp, peak, (executed or {}).get(label, h * w))}
        if ours_label in stats:
            row["ours_speedup"] = common.ratio_of_medians(stats[ours_label], st)
            row["ours_speedup_best"] = st.min / stats[ours_label].min  # best-of-n: least disturbed by other load
        row["cpu_s_median"] = Stat.of(cpu[label]).median
        if ref is not None:
            row["psnr_vs_ours_db"] = psnr(ref, outs[label])
            row["max_abs_diff_vs_ours"] = int(np.abs(ref.astype(np.int16) - outs[label].astype(np.int16)).max())
        rows.append(row)
    rows += failed
    return {"model": model_name, "width": w, "height": h, "setting": setting, "ours": ours_label,
            "reference": reference_label, "rows": rows, "_outputs": outs}


def _peer_summary(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """Per group: the fastest peer at equal settings and our speed relative to it (> 1: we are faster)."""
    out = []
    for g in groups:
        fastest = common.fastest_peer(g["rows"])
        peers_ = [r for r in g["rows"] if common.is_peer(r)]
        diag = next((r for r in g["rows"] if r.get("available") and r["peer"] == "ours-diagnostic"), None)
        peer_diag = next((r for r in g["rows"] if r.get("available") and r["peer"] == "peer-diagnostic"), None)
        ours_row = next((r for r in g["rows"] if r.get("runner") == g["ours"]), None)
        if fastest is None or ours_row is None:
            continue
        out.append({"model": g["model"], "width": g["width"], "height": g["height"], "setting": g["setting"],
                    "fastest_peer": fastest["runner"], "ours_vs_fastest_peer": fastest["ours_speedup"],
                    "ours_vs_fastest_peer_best_of_n": min(r["ours_speedup_best"] for r in peers_),
                    "diagnostic_torch_vs_fastest_peer":
                        fastest["median_s"] / diag["median_s"] if diag else None,
                    "ours_vs_peer_on_our_graph": peer_diag["ours_speedup"] if peer_diag else None,
                    "peer_on_our_graph": peer_diag["runner"] if peer_diag else None})
    return {"summary": out}


# --------------------------------------------------------------------------------------------
# fidelity


def section_fidelity(ctx: Context) -> dict[str, Any]:
    """PSNR of tiled output (tiling defaults: pad, feather blend; and crop seams) vs the whole frame."""
    from esrgan_video import tiling
    from esrgan_video.upscaler import Upscaler

    plan = ctx.plan
    w, h = plan.fidelity_size
    pads = {name: describe(ctx.model(name)).tile_pad for name in plan.peer_models}
    w = max(w, 2 * plan.fidelity_tile + 2 * max(pads.values()))  # at least two windows across, whatever the pad
    frame = real_frame(w, h)
    rows = []
    for name in plan.peer_models:
        model = ctx.model(name)
        with Upscaler(model, tile=0, device="cpu") as up:
            whole = up.upscale(frame)
        with Upscaler(model, tile=plan.fidelity_tile, device="cpu") as up:
            p = up.plan(h, w)
            tiled = up.upscale(frame)
        ctx.log(f"fidelity: {name} {w}x{h} tile={plan.fidelity_tile} ({p.count} tiles)")
        rows.append({"model": name, "width": w, "height": h, "tile": plan.fidelity_tile,
                     "tile_pad": pads[name], "blend": tiling.DEFAULT_BLEND, "tiles": p.count,
                     "tile_shape": list(p.tile_shape), "psnr_tiled_vs_whole_db": psnr(whole, tiled),
                     "max_abs_diff": int(np.abs(whole.astype(np.int16) - tiled.astype(np.int16)).max())})
    return {"rows": rows, "frame": "bikes.mp4 frame 40, centre crop"}


# --------------------------------------------------------------------------------------------
# end to end


def make_slice(clip: Path, dst: Path, *, width: int, height: int, frames: int) -> Path:
    """Centre-crop the first ``frames`` frames of a real clip into a small H.264 file (crf 12, same rate)."""
    import av

    with av.open(str(clip)) as src, av.open(str(dst), "w") as out:
        sin = src.streams.video[0]
        s = out.add_stream("libx264", rate=sin.average_rate)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": "12", "preset": "medium"}
        for i, fr in enumerate(src.decode(sin)):
            if i >= frames:
                break
            rgb = crop(fr.to_ndarray(format="rgb24"), width, height)
            nf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            nf.pts = i
            nf.time_base = 1 / sin.average_rate
            for pkt in s.encode(nf):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return dst


def decoded_rgb(path: Path, frames: int) -> list:
    """The RGB tensors the pipeline's to-RGB stage makes for the first ``frames`` frames (reader + colour)."""
    import torch

    from esrgan_video.frames import color
    from esrgan_video.frames.pixel_formats import pixel_format
    from esrgan_video.video.reader import open_input

    out = []
    with open_input(path) as inp:
        fmt = pixel_format(inp.info.pix_fmt)
        spec = inp.info.color.resolved(inp.info.width, inp.info.height)
        for f in inp.frames(end=frames):
            out.append(color.planes_to_rgb([torch.from_numpy(np.ascontiguousarray(p)) for p in f.planes], fmt, spec))
    return out


def section_e2e(ctx: Context) -> dict[str, Any]:
    """upscale_video on a real clip slice vs inference only on the same frames, interleaved."""
    from esrgan_video.pipeline import upscale_video
    from esrgan_video.samples import sample_clip
    from esrgan_video.upscaler import Upscaler

    plan = ctx.plan
    w, h = plan.e2e_size
    src = make_slice(sample_clip(plan.e2e_clip, progress=False), ctx.workdir / f"slice_{w}x{h}.mp4",
                     width=w, height=h, frames=plan.e2e_frames)
    frames = decoded_rgb(src, plan.e2e_frames)
    model = ctx.model(plan.e2e_model)
    results = []
    with Upscaler(model, tile=0, device="cpu") as up:
        up.upscale_tensor(frames[0])  # backend built and warm before either is timed

        def e2e():
            r = upscale_video(src, ctx.workdir / "e2e_out.mkv", upscaler=up, codec="libx264", crf=18,
                              preset="veryfast", overwrite=True)
            results.append(r)
            return r.frames

        def inference_only():
            for f in frames:
                up.upscale_tensor(f)
            return len(frames)

        ctx.log(f"e2e: {plan.e2e_model} on {plan.e2e_clip} slice {w}x{h}, {len(frames)} frames")
        stats, _ = interleaved({"e2e": e2e, "inference_only": inference_only}, repeats=plan.e2e_rounds, warmup=0)
    n = len(frames)
    last = results[-1]
    e2e_fps, inf_fps = n / stats["e2e"].median, n / stats["inference_only"].median
    stages = {k: sum(r.stage_seconds.get(k, 0.0) for r in results) / len(results) for k in last.stage_seconds}
    wall = sum(r.seconds for r in results) / len(results)
    return {
        "model": plan.e2e_model, "clip": f"{plan.e2e_clip}, first {n} frames, centre crop {w}x{h}, "
        "re-encoded H.264 crf 12", "frames": n, "width": w, "height": h, "output_codec": "libx264 crf 18 veryfast",
        "e2e_fps": e2e_fps, "inference_only_fps": inf_fps, "ratio": e2e_fps / inf_fps,
        "e2e_median_s": stats["e2e"].median, "inference_only_median_s": stats["inference_only"].median,
        "rounds": plan.e2e_rounds, "stage_seconds": stages,
        "stage_share_of_wall": {k: v / wall for k, v in stages.items()}, "wall_s": wall,
        "frames_written": last.frames, "backend": last.backend,
    }


# --------------------------------------------------------------------------------------------
# fresh-process measurements


def _child(args: list[str], timeout: float = 600) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.child", *args]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                        os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise RuntimeError(f"{' '.join(cmd[1:])} exited {p.returncode}: {tail}")
    return json.loads(p.stdout.strip().splitlines()[-1])


MEMORY_FLOOR = 8 * 2**20
"""RSS noise between two fresh processes stays below this (allocator arenas, lazily loaded code)."""


def memory_allowance(*, growth_frames: int, output_frame_bytes: int) -> int:
    """Allowed peak-RSS growth: a quarter of one 8-bit RGB output frame per extra frame, at least MEMORY_FLOOR.

    Keeping anything frame-sized per frame (an output, a decoded frame at 4x) exceeds it (pure).
    """
    return max(MEMORY_FLOOR, growth_frames * output_frame_bytes // 4)


def section_memory(ctx: Context) -> dict[str, Any]:
    """Peak RSS of upscale_video on N and 10·N frames, each in its own process: RSS must not grow."""
    import torch

    from esrgan_video.samples import sample_clip

    plan = ctx.plan
    n = plan.memory_frames
    w, h = plan.memory_size
    src = make_slice(sample_clip(plan.e2e_clip, progress=False), ctx.workdir / f"mem_{w}x{h}.mp4",
                     width=w, height=h, frames=10 * n)
    runs = {}
    for frames in (n, 10 * n):
        ctx.log(f"memory: {frames} frames ({plan.memory_model}, {w}x{h})")
        runs[frames] = _child(["memory", "--clip", str(src), "--frames", str(frames), "--model", plan.memory_model])
    small, big = runs[n], runs[10 * n]
    growth = big["run_peak_rss_bytes"] - small["run_peak_rss_bytes"]
    scale = ctx.model(plan.memory_model).scale
    out_frame = w * scale * h * scale * 3
    allowed = memory_allowance(growth_frames=big["frames"] - small["frames"], output_frame_bytes=out_frame)
    return {
        "model": plan.memory_model, "width": w, "height": h, "frames_n": small["frames"],
        "frames_10n": big["frames"], "peak_rss_n_bytes": small["run_peak_rss_bytes"],
        "peak_rss_10n_bytes": big["run_peak_rss_bytes"], "growth_bytes": growth,
        "growth_ratio": big["run_peak_rss_bytes"] / small["run_peak_rss_bytes"],
        "process_peak_rss_n_bytes": small["process_peak_rss_bytes"],
        "process_peak_rss_10n_bytes": big["process_peak_rss_bytes"],
        "rss_after_run_n_bytes": small["rss_after_run_bytes"], "rss_after_run_10n_bytes": big["rss_after_run_bytes"],
        "output_frame_bytes": out_frame, "allowed_growth_bytes": allowed,
        "growth_per_extra_frame_bytes": growth / max(1, big["frames"] - small["frames"]),
        "bounded": growth <= allowed,
        "gpu_peak_bytes": big.get("gpu_peak_bytes"),
        "gpu_note": None if torch.cuda.is_available() else "no CUDA device on this machine",
        "runs": {str(k): v for k, v in runs.items()},
    }


def section_first_frame(ctx: Context) -> dict[str, Any]:
    """Time to first frame in a fresh process: import, cold load, first frame; then warm load + first frame."""
    w, h = ctx.plan.first_frame_size
    rows = []
    for name in ctx.plan.first_frame_models:
        ctx.log(f"first_frame: {name} {w}x{h}")
        rows.append({"model": name, "width": w, "height": h,
                     **_child(["first-frame", "--model", name, "--width", str(w), "--height", str(h)])})
    return {"rows": rows, "note": "cold = first load in a fresh process (weights already in the local cache, OS file "
                                  "cache warm); warm = a second load in the same process"}


SECTION_FUNCS = {
    "inference": section_inference, "peers": section_peers, "fidelity": section_fidelity, "e2e": section_e2e,
    "memory": section_memory, "first_frame": section_first_frame,
}


# --------------------------------------------------------------------------------------------


def run(plan: Plan, out_dir: Path, *, command: list[str], log: Callable[[str], None] = print,
        plot: bool = True) -> dict[str, Any]:
    """Run every section of ``plan``; write JSON (+ PNG, BENCHMARKS.md) into ``out_dir``; return the results."""
    results: dict[str, Any] = {"meta": common.run_header(command, plan.mode), "plan": asdict(plan), "errors": {}}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="esrgan-bench-") as tmp:
        ctx = Context(plan=plan, workdir=Path(tmp), log=log)
        for name in plan.sections:
            ts = time.perf_counter()
            try:
                results[name] = SECTION_FUNCS[name](ctx)
            except Exception as e:  # noqa: BLE001 - recorded in the results and reflected in the exit status
                log(f"{name}: FAILED: {type(e).__name__}: {e}")
                results["errors"][name] = "".join(traceback.format_exception_only(type(e), e)).strip()
                traceback.print_exc()
            results.setdefault("section_seconds", {})[name] = time.perf_counter() - ts
    meta = results["meta"]
    meta["seconds"] = time.perf_counter() - t0
    meta["load_average_end"] = list(os.getloadavg())
    cores = meta["machine"]["usable_cores"]
    meta["loaded_machine"] = common.is_loaded(meta["machine"]["load_average"], cores) or common.is_loaded(
        meta["load_average_end"], cores)
    json_path = common.write_json(results, out_dir / f"cpu-{plan.mode}.json")
    if plot:
        results["plot"] = report.plot(results, out_dir / f"cpu-{plan.mode}.png")
        common.write_json(results, json_path)
    report.write_markdown(out_dir)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_const", const="quick", dest="mode", help="≤ 5 min on 2 CPU cores")
    mode.add_argument("--full", action="store_const", const="full", dest="mode", help="more sizes, models, repeats")
    mode.add_argument("--compact", action="store_const", const="compact", dest="mode",
                      help="the compact video model (realesr-animevideov3) beside anime 6B and x4plus, and against "
                           "vs-mlrt's ONNX Runtime plugin on the same graph, up to 320x180")
    mode.add_argument("--smoke", action="store_const", const="smoke", dest="mode",
                      help="tiny model and sizes (the test suite); needs --out")
    ap.add_argument("--out", type=Path, default=None, help=f"results folder (default {RESULTS})")
    ap.add_argument("--only", default=None, help=f"comma-separated sections out of {','.join(SECTIONS)}")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed rounds per interleaved comparison (overrides the mode's inference and peer repeats)")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG")
    a = ap.parse_args(argv)
    plan = PLANS[a.mode]
    if a.mode == "smoke" and a.out is None:
        ap.error("--smoke writes only where --out says (it must not overwrite the committed results)")
    if a.only:
        wanted = tuple(s.strip() for s in a.only.split(",") if s.strip())
        unknown = [s for s in wanted if s not in SECTIONS]
        if unknown:
            ap.error(f"--only: unknown section(s) {', '.join(unknown)}; expected some of {', '.join(SECTIONS)}")
        plan = replace(plan, sections=wanted)
    if a.repeats is not None:
        if a.repeats < 1:
            ap.error(f"--repeats: expected >= 1, got {a.repeats}")
        plan = replace(plan, repeats=a.repeats, peer_repeats=a.repeats)
    out_dir = a.out or RESULTS
    command = ["python", "-m", "benchmarks.run", *(argv if argv is not None else sys.argv[1:])]
    results = run(plan, out_dir, command=command, plot=not a.no_plot)
    print(report.summary_text(results))
    print(f"results: {out_dir / f'cpu-{plan.mode}.json'}, {out_dir / 'BENCHMARKS.md'}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
