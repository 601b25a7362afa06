#!/usr/bin/env python3
"""GPU benchmark of the runtime: inference-only fps and % of peak, fp16 fidelity, end-to-end fps.

Runs from the source tree (``PYTHONPATH=.``) with only torch and numpy (PyAV for the end-to-end
part; tensorrt optional), so it works on a GPU machine where the project's venv cannot be built.
``benchmarks/gpu_check.sh`` runs it together with ``pytest -m "gpu or tensorrt"``.

What it measures (each step is skipped with a note when the time budget is spent):

1. Inference only, RealESRGAN_x4plus-shaped weights (random, BasicSR-style 0.1-scaled init: the
   same FLOPs as the real model), 480x270 input → 1920x1080, batch 1/2/4, through the
   runtime's own Backend objects (finite guard and clamp included):
   torch CUDA fp16 eager + channels_last, + CUDA graphs, + 2 CUDA streams, the non-finite guard
   deferred (default) vs per-batch sync vs off, + torch.compile
   (mode "default" with CUDA graphs; "max-autotune-no-cudagraphs" at batch 1 when time allows),
   fp32 for reference, and TensorRT fp16 when ``tensorrt`` imports (engine build time reported
   separately). fps = frames per second; TFLOP/s = 35.85 MFLOP x 129 600 px x fps; % of the
   device's dense fp16 peak (``benchmarks.common.GPU_PEAKS``; unknown GPUs get no %).
2. fp16 fidelity: PSNR(fp16 output, fp32 output) and PSNR(bf16, fp32) with real weights
   (anime 6B; x4plus too when given) on a real frame, and a count of non-finite values.
3. Peers: ours (``esrgan_video.Upscaler`` whole frame, its default backend on CUDA) against what a user
   would pick instead, on the same 480x270 real frame, the same weights (the step-1 model), uint8 RGB frame
   in and out for everyone, timed interleaved (``benchmarks.common.interleaved``: seeded round orders, a
   settle pause) in one process: plain PyTorch fp16 (with and without ``cudnn.benchmark``), spandrel fp16,
   the official RealESRGANer (``half=True``, ``tile=0``, ``pre_pad=0``), vs-mlrt's ONNX Runtime plugin
   (CUDA provider, fp16) and vs-mlrt's TensorRT plugin. Adapters: ``benchmarks/peers.py`` (the CPU
   harness's, with device/precision options). Per runner: median s, fps, ours speed-up (peer median / our
   median), PSNR of its 8-bit output vs ours (fp16 peers differ from our fp16 in the last bits: reported,
   not asserted); then the fastest peer and ours vs it. A peer that is missing or fails to set up is a row
   with its one-line reason.
4. End to end: ``esrgan_video.upscale_video`` on a 480x270 centre crop of the real sample clip
   (``benchmarks.run.make_slice``) with libx264 veryfast, when PyAV and the pipeline import.

Frames, weights and PSNR come from the CPU harness's own modules (``benchmarks.models``: real weights by
registry name or path, crops of the real sample clip ``bikes.mp4``; ``benchmarks.common.psnr``), so both
benchmarks measure the same content the same way. On a machine that cannot reach PyPI, carry the sample
clip in ``$ESRGAN_VIDEO_CACHE/samples/`` and the weights as a file (``--prepare-carry``; see the README's
"Checking a GPU machine" section).

``--cpu-smoke`` runs the same code on the CPU with a tiny model and tiny frames (the CI test
``tests/test_runtime_gpu_bench.py`` runs it so this script cannot rot); its peers run fp32 on the CPU.

Results: ``results.json`` and ``results.md`` in ``--out`` (default ``$OUT``, else
``benchmarks/results``), rewritten after every step so a timeout still leaves what was measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import models as bench_models  # noqa: E402
from benchmarks.common import psnr  # noqa: E402 - arrays or tensors (any device)
from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams  # noqa: E402
from esrgan_video.errors import brief  # noqa: E402
from esrgan_video.runtime.base import CommonOptions, NonFiniteOutputError  # noqa: E402
from esrgan_video.runtime.torch_backend import TorchBackend, TorchOptions  # noqa: E402


def peak_tflops(device_name: str, precision: str = "fp16") -> tuple[float | None, str]:
    """(peak TFLOP/s, basis) for a CUDA device name and precision; (None, 'unknown') when not in the table.

    One table for the whole project: ``benchmarks.common.GPU_PEAKS`` (NVIDIA datasheets, dense fp16
    tensor-core figures; fp32 is the non-tensor figure).
    """
    from benchmarks.common import gpu_peak

    peak = gpu_peak(device_name, precision)
    return (None, "unknown") if peak is None else (round(peak.flops / 1e12, 2), peak.basis)


@dataclass
class Row:
    variant: str
    batch: int
    fps: float | None = None
    ms_per_batch: float | None = None
    tflops: float | None = None
    pct_peak: float | None = None
    setup_s: float | None = None
    note: str = ""


@dataclass
class Report:
    meta: dict = field(default_factory=dict)
    inference: list[Row] = field(default_factory=list)
    fidelity: list[dict] = field(default_factory=list)
    peers: dict = field(default_factory=dict)
    end_to_end: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        return d


class Budget:
    """Wall-clock budget: steps ask before starting and are skipped with a note when it is spent."""

    def __init__(self, seconds: float) -> None:
        self.t0 = time.perf_counter()
        self.seconds = seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.t0)

    def allows(self, estimate: float) -> bool:
        return self.left() >= estimate


def x4plus_shaped(params: RRDBParams, *, seed: int = 0) -> RRDBNet:
    """Random weights with the real model's structure (so the FLOPs match), BasicSR-style init:
    kaiming-normal scaled by 0.1 in the trunk, which keeps activations in the real model's range."""
    torch.manual_seed(seed)
    model = RRDBNet(params).eval()
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight)
                m.weight.mul_(0.1 if name.startswith("body.") else 1.0)
                m.bias.zero_()
    return model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_backend(backend, x: torch.Tensor, *, iters: int, warmup: int, streams: list | None = None) -> float:
    """Seconds per batch through ``backend(x)`` (finite guard and clamp included)."""
    dev = x.device
    for i in range(warmup):
        backend(x, streams[i % len(streams)] if streams else None)
    backend.flush()
    sync(dev)
    t0 = time.perf_counter()
    for i in range(iters):
        backend(x, streams[i % len(streams)] if streams else None)
    backend.flush()
    sync(dev)
    return (time.perf_counter() - t0) / iters


# ----------------------------------------------------------------------------------- weights and frames


def load_real(path_or_name: str) -> RRDBNet:
    """Real weights by registry name or file path (``benchmarks.models.load``; fp16 files load as fp32)."""
    return bench_models.load(path_or_name)


def real_frame(h: int, w: int) -> tuple[torch.Tensor, str]:
    """1x3xHxW float RGB: the centred ``w`` x ``h`` crop of the benchmarks' real frame (``benchmarks.models``)."""
    frame = bench_models.real_frame(w, h)
    return bench_models.as_tensor(frame), (f"{bench_models.FRAME_CLIP} frame {bench_models.FRAME_INDEX}, "
                                           f"centre crop {w}x{h}")


# ----------------------------------------------------------------------------------- steps


def bench_inference(report: Report, args, budget: Budget, device: torch.device, flops_per_frame: float,
                    peak: float | None, model: RRDBNet, h: int, w: int) -> None:
    on_gpu = device.type == "cuda"
    iters, warmup = (args.iters, 3) if on_gpu else (2, 1)

    def run(variant: str, batch: int, make, *, estimate: float, streams: int = 0) -> None:
        if not budget.allows(estimate):
            report.skipped.append(f"{variant} batch {batch}: time budget spent")
            return
        row = Row(variant, batch)
        try:
            t0 = time.perf_counter()
            backend = make()
            backend.open()
            x = torch.rand(batch, 3, h, w, device=device)
            ss = [torch.cuda.Stream(device) for _ in range(streams)] if streams else None
            backend(x)  # first call: cuDNN autotune / compile / capture / engine load
            backend.flush()
            sync(device)
            row.setup_s = round(time.perf_counter() - t0, 2)
            sec = time_backend(backend, x, iters=iters, warmup=warmup, streams=ss)
            backend.close()
            row.ms_per_batch = round(sec * 1e3, 3)
            row.fps = round(batch / sec, 2)
            row.tflops = round(flops_per_frame * row.fps / 1e12, 2)
            row_peak = peak_tflops(report.meta["device_name"], "fp32")[0] if "fp32" in variant and on_gpu else peak
            row.pct_peak = None if row_peak is None else round(100 * row.tflops / row_peak, 1)
        except NonFiniteOutputError as e:
            row.note = f"non-finite output: {e}"
        except Exception as e:  # noqa: BLE001 - one failed variant must not lose the others
            row.note = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            report.errors.append(f"{variant} b{batch}: {traceback.format_exc(limit=3)}")
        report.inference.append(row)
        print(f"  {variant:<38} b{batch}: {row.fps} fps  {row.pct_peak}% peak  setup {row.setup_s}s {row.note}",
              flush=True)
        write(report, args.out)

    prec = "fp16" if on_gpu else "fp32"
    batches = [1, 2, 4] if on_gpu else [1, 2]
    for b in batches:
        run(f"torch {prec} eager" + (" channels_last" if on_gpu else ""), b,
            lambda: TorchBackend(model, CommonOptions(device=device, precision=prec)), estimate=10)
    if not on_gpu:
        return
    fp16 = CommonOptions(device=device, precision="fp16")
    for b in batches:
        run("torch fp16 eager + CUDA graphs", b,
            lambda: TorchBackend(model, fp16, TorchOptions(cuda_graphs=True)), estimate=10)
    run("torch fp16 eager, 2 streams", 1, lambda: TorchBackend(model, fp16), estimate=10, streams=2)
    # the cost of the non-finite guard: deferred (default above) vs a host sync per batch vs none
    run("torch fp16 eager, finite check per batch", 1,
        lambda: TorchBackend(model, CommonOptions(device=device, precision="fp16", finite_check="batch")), estimate=10)
    run("torch fp16 eager, finite check off", 1,
        lambda: TorchBackend(model, CommonOptions(device=device, precision="fp16", finite_check="off")), estimate=10)
    run("torch fp32 eager (reference)", 1,
        lambda: TorchBackend(model, CommonOptions(device=device, precision="fp32")), estimate=15)
    report.meta["torch_variants_done_at_s"] = round(budget.seconds - budget.left(), 1)


def bench_compile(report: Report, args, budget: Budget, device, flops_per_frame, peak, model, h, w) -> None:
    if device.type != "cuda" or args.skip_compile:
        report.skipped.append("torch.compile: " + ("--skip-compile" if args.skip_compile else "CPU smoke run"))
        return
    iters = args.iters
    for b, mode, graphs, est in [(1, "default", True, 90), (4, "default", True, 60), (2, "default", True, 60),
                                 (1, "max-autotune-no-cudagraphs", True, 150)]:
        variant = f"torch fp16 compile={mode} + CUDA graphs"
        if not budget.allows(est):
            report.skipped.append(f"{variant} batch {b}: time budget spent")
            continue
        row = Row(variant, b)
        try:
            t0 = time.perf_counter()
            backend = TorchBackend(model, CommonOptions(device=device, precision="fp16"),
                                   TorchOptions(compile=mode, cuda_graphs=graphs)).open()
            x = torch.rand(b, 3, h, w, device=device)
            backend(x)
            backend.flush()
            sync(device)
            row.setup_s = round(time.perf_counter() - t0, 1)
            sec = time_backend(backend, x, iters=iters, warmup=3)
            backend.close()
            row.ms_per_batch, row.fps = round(sec * 1e3, 3), round(b / sec, 2)
            row.tflops = round(flops_per_frame * row.fps / 1e12, 2)
            row.pct_peak = None if peak is None else round(100 * row.tflops / peak, 1)
        except Exception as e:  # noqa: BLE001
            row.note = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            report.errors.append(f"{variant} b{b}: {traceback.format_exc(limit=3)}")
        report.inference.append(row)
        print(f"  {variant:<38} b{b}: {row.fps} fps  {row.pct_peak}% peak  setup {row.setup_s}s {row.note}", flush=True)
        write(report, args.out)


def bench_tensorrt(report: Report, args, budget: Budget, device, flops_per_frame, peak, model, h, w) -> None:
    from esrgan_video.runtime.tensorrt_backend import BuildOptions, TensorRTBackend, TensorRTOptions

    if device.type != "cuda":
        report.skipped.append("tensorrt: CPU smoke run")
        return
    if report.meta.get("tensorrt_error"):  # installed but its import fails: one line, not three failed builds
        report.skipped.append(f"tensorrt: cannot be imported ({report.meta['tensorrt_error']})")
        return
    if not report.meta.get("tensorrt"):
        report.skipped.append("tensorrt: not installed (the TensorRT path is verified by pytest -m tensorrt where it is)")
        return
    import tempfile

    owned = None if args.engine_cache else tempfile.TemporaryDirectory(prefix="esrgan-engines-")
    cache = Path(args.engine_cache or owned.name)  # a temporary cache (engines of hundreds of MB) is removed after
    try:
        for b, est in [(1, 150), (4, 150), (2, 150)]:
            if not budget.allows(est):
                report.skipped.append(f"tensorrt fp16 batch {b}: time budget spent")
                continue
            row = Row("tensorrt fp16 (2 contexts)", b)
            try:
                t0 = time.perf_counter()
                backend = TensorRTBackend(
                    model,
                    CommonOptions(device=device, precision="fp16", tile_shape=(h, w), batch=b,
                                  notice=lambda m: print(f"    {m}", flush=True)),
                    TensorRTOptions(streams=2, build=BuildOptions(opt_level=args.trt_opt_level), cache_root=cache),
                ).open()
                row.setup_s = round(time.perf_counter() - t0, 1)
                x = torch.rand(b, 3, h, w, device=device)
                ss = [torch.cuda.Stream(device) for _ in range(2)]
                sec = time_backend(backend, x, iters=args.iters, warmup=3, streams=ss)
                backend.close()
                row.ms_per_batch, row.fps = round(sec * 1e3, 3), round(b / sec, 2)
                row.tflops = round(flops_per_frame * row.fps / 1e12, 2)
                row.pct_peak = None if peak is None else round(100 * row.tflops / peak, 1)
                row.note = "engine cached" if backend.outcome.hit else "engine built (setup = export + build)"
            except Exception as e:  # noqa: BLE001
                row.note = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                report.errors.append(f"tensorrt b{b}: {traceback.format_exc(limit=3)}")
            report.inference.append(row)
            print(f"  {row.variant:<38} b{b}: {row.fps} fps  {row.pct_peak}% peak  setup {row.setup_s}s {row.note}",
                  flush=True)
            write(report, args.out)
    finally:
        if owned is not None:
            owned.cleanup()

def bench_fidelity(report: Report, args, budget: Budget, device: torch.device, h: int, w: int) -> None:
    sources = []
    if args.cpu_smoke:
        from esrgan_video.testing import near_identity_model

        sources.append(("near-identity tiny model (smoke)", near_identity_model(4, nf=8, nb=1, noise=0.05)))
    for label, ref in (("RealESRGAN_x4plus_anime_6B", args.anime_weights), ("RealESRGAN_x4plus", args.x4plus_weights)):
        if not ref:
            report.skipped.append(f"fidelity {label}: no weights given (--{'anime' if 'anime' in label else 'x4plus'}-weights)")
            continue
        try:
            sources.append((label, load_real(ref)))
        except Exception as e:  # noqa: BLE001
            report.skipped.append(f"fidelity {label}: weights not loadable ({type(e).__name__}: {e})")
    try:
        frame, frame_note = real_frame(h, w)
    except Exception as e:  # noqa: BLE001 - e.g. the sample clip is not in the cache and PyPI is out of reach
        report.skipped.append(f"fidelity: no real frame ({type(e).__name__}: {e})")
        return
    frame = frame.to(device)
    for label, model in sources:
        if not budget.allows(15):
            report.skipped.append(f"fidelity {label}: time budget spent")
            continue
        entry = {"model": label, "input": frame_note}
        ref = TorchBackend(model, CommonOptions(device=device, precision="fp32", finite_check="off"))(frame).float()
        for prec in ("fp16", "bf16"):
            try:
                raw = TorchBackend(model, CommonOptions(device=device, precision=prec, finite_check="off"))
                out = raw(frame).float()
                entry[f"nonfinite_{prec}"] = int((~torch.isfinite(out)).sum())
                entry[f"psnr_{prec}_vs_fp32_db"] = round(psnr(out.clamp(0, 1), ref), 2)
            except Exception as e:  # noqa: BLE001 - e.g. bf16 unsupported on this device
                entry[f"psnr_{prec}_vs_fp32_db"] = None
                entry[f"{prec}_error"] = f"{type(e).__name__}: {e}"
        report.fidelity.append(entry)
        print(f"  fidelity {label}: {entry}", flush=True)
        write(report, args.out)


PEERS_ESTIMATE_S = 45
"""GPU peers step without TensorRT: set-ups (basicsr import, ONNX export, ONNX Runtime CUDA session, cuDNN
autotune) plus the interleaved rounds at 480x270."""
TRT_BUILD_ESTIMATE_S = 120
"""One TensorRT engine build for x4plus at 480x270 (ours when tensorrt is installed; vs-mlrt's TensorRT plugin)."""


def _db(v: float) -> float | str:
    return "inf" if math.isinf(v) else round(v, 2)


def peer_builders(model: RRDBNet, device: torch.device, workdir: Path, h: int, w: int, *,
                  trt_build_allowed: bool, opt_level: int) -> dict[str, tuple[str, Callable]]:
    """Label → (peer, factory) of each runner (``benchmarks.peers``), with the settings each tool's own program
    would use.

    On CUDA everything but ours runs fp16 the plain way; ``torch.backends.cudnn.benchmark`` is the flag each
    program has: our torch backend turns it on, a peer's script leaves torch's default (off), and one plain
    PyTorch row sets it, as a user tuning a fixed-size video loop would. On the CPU: fp32, flags untouched."""
    from benchmarks import peers

    gpu = device.type == "cuda"
    dev = str(device)

    def cudnn(runner, flag: bool):
        return peers.with_cudnn_benchmark(runner, flag) if gpu else runner

    prec = "fp16" if gpu else "fp32"
    builders = {
        "ours": ("ours", lambda: cudnn(peers.ours(model, device=dev), True)),
        f"plain PyTorch {prec}": ("pytorch", lambda: peers.plain_torch(model, device=dev, half=gpu,
                                                                      cudnn_benchmark=False if gpu else None)),
    }
    if gpu:
        builders[f"plain PyTorch {prec} + cudnn.benchmark"] = ("pytorch", lambda: peers.plain_torch(
            model, device=dev, half=True, cudnn_benchmark=True))
    builders.update({
        "spandrel": ("spandrel", lambda: cudnn(peers.spandrel_plain(model, device=dev, half=gpu), False)),
        "realesrgan": ("realesrgan", lambda: cudnn(
            peers.realesrgan(model, workdir, tile=0, pre_pad=0, device=dev, half=gpu), False)),
        "vsmlrt-ort": ("vsmlrt-ort", lambda: peers.vsmlrt_ort(
            model, workdir, height=h, width=w, provider="CUDA" if gpu else "CPU", fp16=gpu,
            device_id=device.index or 0)),
        "vsmlrt-trt": ("vsmlrt-trt", lambda: peers.vsmlrt_trt(
            model, workdir, height=h, width=w, device_id=device.index or 0, opt_level=opt_level,
            build_allowed=trt_build_allowed)),
    })
    return builders


def peer_summary(rows: list[dict]) -> dict:
    """The fastest available peer (ours excluded) and our speed relative to it: its median / ours (pure)."""
    from benchmarks.common import fastest_peer

    ours = next((r for r in rows if r["peer"] == "ours" and r["available"]), None)
    fastest = fastest_peer(rows)
    if ours is None or fastest is None:
        return {"fastest_peer": None, "ours_vs_fastest_peer": None}
    return {"fastest_peer": fastest["runner"], "ours_vs_fastest_peer": round(fastest["median_s"] / ours["median_s"], 3)}


def bench_peers(report: Report, args, budget: Budget, device: torch.device, model: RRDBNet, h: int, w: int) -> None:
    """Ours vs the peers on one real frame, interleaved; see the module docstring (step 3)."""
    import tempfile

    from benchmarks import peers
    from benchmarks.common import interleaved
    from esrgan_video.runtime.tensorrt_backend import tensorrt_available

    gpu = device.type == "cuda"
    ours_builds_engine = gpu and tensorrt_available()  # auto picks TensorRT: one engine build for ours
    estimate = (PEERS_ESTIMATE_S + (TRT_BUILD_ESTIMATE_S if ours_builds_engine else 0)) if gpu else 10
    if not budget.allows(estimate):
        report.skipped.append(f"peers: time budget spent (needs ~{estimate} s, {budget.left():.0f} s left)")
        return
    rounds = args.peer_rounds
    try:
        frame = bench_models.real_frame(w, h)
    except Exception as e:  # noqa: BLE001 - no real frame, no comparison
        report.skipped.append(f"peers: no real frame ({type(e).__name__}: {e})")
        return
    frame_note = f"{bench_models.FRAME_CLIP} frame {bench_models.FRAME_INDEX}, centre crop"
    section = report.peers
    section.update(input=f"{frame_note}, {w}x{h} uint8 RGB -> {w * model.scale}x{h * model.scale}",
                   rounds=rounds, timing="median of interleaved calls (seeded round orders, 50 ms settle pause), "
                                         "uint8 frame in, uint8 frame on the host out", rows=[])
    rows: list[dict] = section["rows"]
    runners: dict = {}
    setup_s: dict[str, float] = {}
    timed: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gpu-bench-peers-") as tmp:
            builders = peer_builders(model, device, Path(tmp), h, w, opt_level=args.trt_opt_level,
                                     trt_build_allowed=budget.allows(estimate + TRT_BUILD_ESTIMATE_S))
            for label, (peer, make) in builders.items():
                t0, r = time.perf_counter(), None
                try:
                    r = make()
                    r(frame)  # set-up that happens on the first call (engine, autotune) and runtime failures
                except peers.PeerUnavailable as e:
                    rows.append({"runner": label, "peer": peer, "available": False, "error": str(e)})
                    print(f"  peer {label}: unavailable: {e}", flush=True)
                    continue
                except Exception as e:  # noqa: BLE001 - a peer that fails on its first frame is unavailable, with why
                    if r is not None:
                        r.close()
                    rows.append({"runner": label, "peer": peer, "available": False, "error": peers.error_line(e)})
                    report.errors.append(f"peer {label}: {traceback.format_exc(limit=4)}")
                    print(f"  peer {label}: failed: {peers.error_line(e)}", flush=True)
                    continue
                runners[label] = r
                setup_s[label] = round(time.perf_counter() - t0, 2)
            if "ours" not in runners:
                report.errors.append("peers: ours could not run, so there is nothing to compare with")
                return
            try:
                stats, outs = interleaved({k: (lambda r=r: r(frame)) for k, r in runners.items()},
                                          repeats=rounds, warmup=1)
            except Exception as e:  # noqa: BLE001 - keep the availability rows
                report.errors.append(f"peers: interleaved run: {traceback.format_exc(limit=4)}")
                section["error"] = peers.error_line(e)
                return
            ref, ours_st = outs["ours"], stats["ours"]
            for label, st in stats.items():
                out, same = outs[label], outs[label].shape == ref.shape
                timed.append({
                    "runner": label, "peer": runners[label].peer, "available": True,
                    "settings": runners[label].settings,
                    "median_s": st.median, "min_s": st.min, "fps": round(1.0 / st.median, 2),
                    "ours_speedup": round(st.median / ours_st.median, 3), "setup_s": setup_s[label],
                    "psnr_vs_ours_db": _db(psnr(ref, out)) if same else None,
                    "max_abs_diff_vs_ours": int(np.abs(ref.astype(np.int16) - out.astype(np.int16)).max())
                    if same else None,
                })
    finally:  # free the peers' models, sessions and engines before the next steps
        for r in runners.values():
            r.close()
        runners.clear()
        if gpu:
            import gc

            gc.collect()
            torch.cuda.empty_cache()
        write(report, args.out)
    section["rows"] = timed + rows  # timed rows first, then the unavailable ones with their reasons
    section.update(peer_summary(section["rows"]))
    section["ours_backend"] = next(r for r in timed if r["peer"] == "ours")["settings"].get("backend")
    for r in section["rows"]:
        if r["available"]:
            print(f"  peer {r['runner']:<38} {r['fps']:>8} fps  ours x{r['ours_speedup']}  "
                  f"PSNR vs ours {r['psnr_vs_ours_db']} dB", flush=True)
    print(f"  fastest peer: {section['fastest_peer']}, ours vs it: x{section['ours_vs_fastest_peer']}", flush=True)
    write(report, args.out)


def bench_end_to_end(report: Report, args, budget: Budget, device: torch.device, model: RRDBNet, h: int, w: int,
                     infer_fps: float | None) -> None:
    try:
        import av  # noqa: F401

        from esrgan_video import upscale_video
        from esrgan_video.upscaler import Upscaler
    except Exception as e:  # noqa: BLE001
        report.skipped.append(f"end to end: pipeline or PyAV not importable ({type(e).__name__}: {e})")
        return
    frames = args.e2e_frames
    if not budget.allows(30 if device.type == "cuda" else 5):
        report.skipped.append("end to end: time budget spent")
        return
    import tempfile

    from benchmarks.run import make_slice
    from esrgan_video.samples import sample_clip

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        try:
            make_slice(sample_clip(bench_models.FRAME_CLIP, progress=False), src, width=w, height=h, frames=frames)
        except Exception as e:  # noqa: BLE001 - no real clip here (not cached, PyPI out of reach)
            report.skipped.append(f"end to end: no real clip ({type(e).__name__}: {e})")
            return
        entry = {"input": f"{bench_models.FRAME_CLIP}, first {frames} frames, centre crop {w}x{h}, H.264",
                 "codec": "libx264 veryfast"}
        try:
            up = Upscaler(model, device=str(device), backend="auto", precision="fp16" if device.type == "cuda" else "fp32")
            t0 = time.perf_counter()
            # warm-up run on a few frames (cuDNN autotune / engine) outside the timed run
            upscale_video(src, Path(tmp) / "warm.mp4", upscaler=up, end=min(8, frames), preset="veryfast", overwrite=True)
            entry["warmup_s"] = round(time.perf_counter() - t0, 2)
            result = upscale_video(src, dst, upscaler=up, preset="veryfast", overwrite=True)
            entry.update(fps=round(result.fps, 2), frames=result.frames, seconds=round(result.seconds, 2),
                         backend=result.backend, stage_seconds={k: round(v, 2) for k, v in result.stage_seconds.items()})
            if infer_fps:
                entry["pct_of_inference_only_fps"] = round(100 * result.fps / infer_fps, 1)
            up.close()
        except Exception as e:  # noqa: BLE001
            entry["error"] = f"{type(e).__name__}: {e}"
            report.errors.append(f"end to end: {traceback.format_exc(limit=4)}")
        report.end_to_end.append(entry)
        print(f"  end to end: {entry}", flush=True)
        write(report, args.out)


# ----------------------------------------------------------------------------------- output


def fmt(v) -> str:
    return "" if v is None else str(v)


def markdown(report: Report) -> str:
    m = report.meta
    lines = [
        f"# GPU benchmark — {m.get('device_name')} — {m.get('date')}",
        "",
        f"torch {m.get('torch')}, CUDA {m.get('cuda')}, cuDNN {m.get('cudnn')}, "
        f"TensorRT {m.get('tensorrt') or ('not importable' if m.get('tensorrt_error') else 'not installed')}; "
        f"model {m.get('model')} ({m.get('mflop_per_pixel')} MFLOP/px), input {m.get('input')}; "
        f"peak fp16 dense: {m.get('peak_tflops') or 'unknown'} TFLOP/s ({m.get('peak_source')}).",
        "",
        "## Inference only",
        "",
        "| variant | batch | fps | ms/batch | TFLOP/s | % of peak | setup s | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report.inference:
        lines.append(f"| {r.variant} | {r.batch} | {fmt(r.fps)} | {fmt(r.ms_per_batch)} | {fmt(r.tflops)} | "
                     f"{fmt(r.pct_peak)} | {fmt(r.setup_s)} | {r.note} |")
    if report.fidelity:
        lines += ["", "## fp16 fidelity (PSNR vs fp32, dB)", "", "| model | input | fp16 | bf16 | non-finite fp16 |",
                  "|---|---|---:|---:|---:|"]
        for f in report.fidelity:
            lines.append(f"| {f['model']} | {f['input']} | {fmt(f.get('psnr_fp16_vs_fp32_db'))} | "
                         f"{fmt(f.get('psnr_bf16_vs_fp32_db'))} | {fmt(f.get('nonfinite_fp16'))} |")
    if report.peers.get("rows"):
        p = report.peers
        lines += ["", "## Peers", "", f"{p['input']}; {p['timing']}, {p['rounds']} rounds. "
                  "`ours ×` = peer median / our median (> 1: we are faster).", "",
                  "| runner | median ms | fps | ours × | PSNR vs ours dB | max abs diff | setup s | settings |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in p["rows"]:
            if r["available"]:
                st = ", ".join(f"{k}={v}" for k, v in r["settings"].items() if v not in (None, ""))
                lines.append(f"| {r['runner']} | {round(r['median_s'] * 1e3, 2)} | {r['fps']} | {r['ours_speedup']} | "
                             f"{fmt(r['psnr_vs_ours_db'])} | {fmt(r['max_abs_diff_vs_ours'])} | {r['setup_s']} | {st} |")
            else:
                lines.append(f"| {r['runner']} | | | | | | | unavailable: {r['error']} |")
        lines += ["", f"Ours ran on: {p.get('ours_backend')}. Fastest peer: {p.get('fastest_peer') or 'none available'}; "
                      f"ours vs fastest peer: {fmt(p.get('ours_vs_fastest_peer'))}×."]
    if report.end_to_end:
        lines += ["", "## End to end", ""]
        for e in report.end_to_end:
            lines.append("- " + ", ".join(f"{k}: {v}" for k, v in e.items()))
    if report.skipped:
        lines += ["", "## Skipped", ""] + [f"- {s}" for s in report.skipped]
    if report.errors:
        lines += ["", f"## Errors ({len(report.errors)}; tracebacks in results.json)", ""]
        lines += [f"- {e.splitlines()[0]}" for e in report.errors]
    return "\n".join(lines) + "\n"


def write(report: Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report.to_json(), indent=2, default=str) + "\n")
    (out / "results.md").write_text(markdown(report))


# ----------------------------------------------------------------------------------- main


def probe_tensorrt() -> tuple[str | None, str]:
    """(tensorrt version, '') when it imports; (None, '') when it is not installed; (None, why) when it is installed
    but its import fails (a missing or mismatched NVIDIA library raises OSError or RuntimeError, not ImportError).
    Never raises: the torch rows must be measured whatever state TensorRT is in."""
    import importlib.util

    try:
        if importlib.util.find_spec("tensorrt") is None:
            return None, ""
        import tensorrt

        return str(tensorrt.__version__), ""
    except Exception as e:  # noqa: BLE001 - any failure is the recorded reason
        return None, brief(e, 300)[:300]  # the recorded reason stays within 300 characters


def installed_version(dist: str) -> str | None:
    """A distribution's version from its metadata (nothing imported), None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "benchmarks" / "results"))
    p.add_argument("--cpu-smoke", action="store_true", help="same code path on the CPU with a tiny model and frame")
    p.add_argument("--budget", type=float, default=200.0, help="seconds for the whole benchmark (default 200)")
    p.add_argument("--iters", type=int, default=20, help="timed iterations per variant")
    p.add_argument("--anime-weights", default=os.environ.get("ESRGAN_VIDEO_ANIME_WEIGHTS"),
                   help="RealESRGAN_x4plus_anime_6B weights (path or cached registry name; env ESRGAN_VIDEO_ANIME_WEIGHTS)")
    p.add_argument("--x4plus-weights", default=os.environ.get("ESRGAN_VIDEO_X4PLUS_WEIGHTS"),
                   help="RealESRGAN_x4plus weights (optional; env ESRGAN_VIDEO_X4PLUS_WEIGHTS)")
    p.add_argument("--e2e-frames", type=int, default=None, help="frames in the end-to-end clip (default 240; smoke 6)")
    p.add_argument("--peer-rounds", type=int, default=None, help="interleaved rounds in the peers step (default 12; smoke 2)")
    p.add_argument("--skip-peers", action="store_true")
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument("--skip-e2e", action="store_true")
    p.add_argument("--trt-opt-level", type=int, default=3)
    p.add_argument("--engine-cache", default=None, help="engine cache dir for the TensorRT runs (default: a temp dir)")
    p.add_argument("--prepare-carry", type=Path, default=None, metavar="DIR",
                   help="no benchmark: write what a machine without PyPI needs into DIR (wheels/, cache/, fp16 weights)")
    args = p.parse_args(argv)
    if args.e2e_frames is None:
        args.e2e_frames = 6 if args.cpu_smoke else 240
    if args.peer_rounds is None:
        args.peer_rounds = 2 if args.cpu_smoke else 12
    if args.peer_rounds < 1:
        p.error(f"--peer-rounds: expected >= 1, got {args.peer_rounds}")
    return args


CARRY_MODEL = "RealESRGAN_x4plus_anime_6B"
"""The real weights gpu_check.sh carries: 8.9 MB in fp16 (x4plus, 33 MB in fp16, does not fit beside the PyAV
wheel in one 64 MiB carry)."""
CARRY_WHEELS = ("av==19.0.2",)
"""Wheels the GPU image lacks that the GPU tests and the end-to-end step import (everything else is there)."""
CARRY_CACHED_MODELS = ("realesr-animevideov3",)
"""Registry models a GPU test loads by name (tests/test_models_compact.py: the compact model on CUDA and through
TensorRT), carried as the registry's own cache entries (file + .json record, 2.4 MiB): the GPU machine cannot
fetch them, and a fetch there fails only after its retries."""


def carry_models(cache: Path, names: tuple[str, ...] = CARRY_CACHED_MODELS) -> list[Path]:
    """Copy this machine's registry cache entries of ``names`` (weights file and its ``.json`` record; fetched here
    first when missing) into ``cache/models``, where the registry finds them offline with ``ESRGAN_VIDEO_CACHE=cache``;
    returns the weights files written."""
    from esrgan_video.models.registry import resolve

    models = cache / "models"
    models.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        src = resolve(name, progress=False).path
        for f in (src, src.with_name(src.name + ".json")):
            shutil.copyfile(f, models / f.name)
        out.append(models / src.name)
    return out


def prepare_carry(root: Path) -> list[Path]:
    """Fill ``root`` for a GPU machine that cannot reach PyPI; returns the files written.

    ``wheels/``: the PyAV wheel (``pip download``, CPython 3.12 manylinux x86-64); ``cache/samples/``: the sample
    clip and ``cache/models/``: :data:`CARRY_CACHED_MODELS` as cached entries (``ESRGAN_VIDEO_CACHE=root/cache``
    there); ``<model>.fp16.safetensors``: the real weights in fp16."""
    from safetensors.torch import save_file

    from esrgan_video.samples import sample_clip

    wheels, samples = root / "wheels", root / "cache" / "samples"
    wheels.mkdir(parents=True, exist_ok=True)
    samples.mkdir(parents=True, exist_ok=True)
    cached = carry_models(root / "cache")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                    "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform",
                    "manylinux_2_17_x86_64", "-d", str(wheels), *CARRY_WHEELS], check=True)
    clip = samples / bench_models.FRAME_CLIP
    shutil.copyfile(sample_clip(bench_models.FRAME_CLIP, progress=False), clip)
    weights = root / f"{CARRY_MODEL}.fp16.safetensors"
    model = bench_models.load(CARRY_MODEL)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(weights))
    return sorted(wheels.glob("*.whl")) + [clip, *cached, weights]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.prepare_carry is not None:
        for f in prepare_carry(args.prepare_carry):
            print(f"{f}  {f.stat().st_size / 2**20:.1f} MiB")
        return 0
    budget = Budget(args.budget)
    if args.cpu_smoke:
        device = torch.device("cpu")
        # gc=32: spandrel's ESRGAN detection assumes it (the peers step loads this model through spandrel)
        params, (h, w) = RRDBParams(nf=8, nb=1, gc=32, scale=4), (16, 24)
        torch.set_num_threads(1)
    else:
        if not torch.cuda.is_available():
            print("gpu_bench: no CUDA device (torch.cuda.is_available() is False); use --cpu-smoke on a CPU", file=sys.stderr)
            return 2
        device = torch.device("cuda", torch.cuda.current_device())
        params, (h, w) = RRDBParams(), (270, 480)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    peak, peak_src = peak_tflops(name) if device.type == "cuda" else (None, "cpu smoke run")
    flops_per_frame = params.flops_per_input_pixel * h * w
    trt_ver, trt_error = probe_tensorrt()
    report = Report(meta={
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device_name": name,
        "capability": ".".join(map(str, torch.cuda.get_device_capability(device))) if device.type == "cuda" else None,
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "tensorrt": trt_ver, "tensorrt_error": trt_error or None,
        "torch_tensorrt": installed_version("torch-tensorrt") or installed_version("torch_tensorrt"),
        "python": platform.python_version(), "host": platform.node(),
        "model": "RealESRGAN_x4plus-shaped random weights" if not args.cpu_smoke else "tiny RRDBNet nf=8 nb=1 gc=32 (smoke)",
        "mflop_per_pixel": round(params.flops_per_input_pixel / 1e6, 6),
        "input": f"{w}x{h} -> {w * params.scale}x{h * params.scale}",
        "tflop_per_frame": round(flops_per_frame / 1e12, 4),
        "peak_tflops": peak, "peak_source": peak_src, "budget_s": args.budget, "cpu_smoke": args.cpu_smoke,
    })
    print(f"gpu_bench: {name}, peak {peak} TFLOP/s ({peak_src}), {report.meta['input']}, budget {args.budget:.0f}s", flush=True)
    write(report, args.out)
    model = x4plus_shaped(params)
    bench_inference(report, args, budget, device, flops_per_frame, peak, model, h, w)
    if not args.skip_peers:
        bench_peers(report, args, budget, device, model, h, w)
    else:
        report.skipped.append("peers: --skip-peers")
    bench_fidelity(report, args, budget, device, h, w)
    best = max((r.fps for r in report.inference if r.fps and r.variant.startswith("torch fp16 eager")), default=None)
    if not args.skip_e2e:
        bench_end_to_end(report, args, budget, device, model, h, w,
                         best if device.type == "cuda" else next((r.fps for r in report.inference if r.fps), None))
    else:
        report.skipped.append("end to end: --skip-e2e")
    bench_tensorrt(report, args, budget, device, flops_per_frame, peak, model, h, w)
    bench_compile(report, args, budget, device, flops_per_frame, peak, model, h, w)
    report.meta["total_s"] = round(budget.seconds - budget.left(), 1)
    write(report, args.out)
    print(f"gpu_bench: wrote {args.out / 'results.json'} and {args.out / 'results.md'} in {report.meta['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
