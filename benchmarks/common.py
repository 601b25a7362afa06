"""What every benchmark shares: FLOP counting, device peaks, PSNR, interleaved timing, machine facts, memory.

Pure helpers first (FLOPs, PSNR, statistics), then the ones that read the machine (peaks, versions,
RSS). Nothing here imports torch at module level, so the GPU check script can import this module
before it decides which device to use.

Conventions (the same in the CPU harness and in ``gpu_bench.py``):

* "useful" FLOP/s = fps x flops_per_input_pixel x H x W of the frame (what the brief calls achieved FLOP/s);
  "executed" FLOP/s also counts the pixels recomputed in tile overlaps (tiles x tile area);
* throughput ratios are ratios of MEDIANS of runs interleaved in one loop (every round in a different seeded
  order, with a short pause before each timed call so one runner's idle threads do not slow the next), because
  the machines are shared and noisy;
* PSNR is on the 8-bit (or float [0, 1]) output, ``inf`` for identical arrays.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------
# FLOPs


def frame_flops(height: int, width: int, flops_per_input_pixel: float) -> float:
    """FLOPs to upscale one ``height x width`` frame once (no tile overlap)."""
    return float(flops_per_input_pixel) * height * width


def achieved_flops(fps: float, height: int, width: int, flops_per_input_pixel: float) -> float:
    """Useful FLOP/s: ``fps x flops_per_input_pixel x height x width``."""
    return fps * frame_flops(height, width, flops_per_input_pixel)


def executed_pixels(tile_count: int, tile_shape: tuple[int, int]) -> int:
    """Input pixels the model actually runs on per frame when tiled (overlaps counted twice)."""
    return tile_count * tile_shape[0] * tile_shape[1]


# --------------------------------------------------------------------------------------------
# Device peaks


@dataclass(frozen=True)
class Peak:
    """A device's nominal peak and where the number comes from."""

    flops: float
    """FLOP/s (2 per fused multiply-add)."""
    basis: str
    """How the number was obtained (datasheet, or cores x clock x FLOP/cycle)."""


CPU_FLOP_PER_CYCLE = (("avx512f", 64), ("avx2", 32), ("avx", 16), ("sse2", 8))
"""fp32 FLOP per cycle per core by widest vector ISA, assuming 2 FMA pipes (AVX2: 2 x 8 lanes x 2)."""


def cpu_peak(flags: set[str], cores: int, mhz: float) -> Peak | None:
    """Nominal fp32 peak of ``cores`` cores at ``mhz`` with these /proc/cpuinfo ``flags`` (pure)."""
    if cores < 1 or mhz <= 0:
        return None
    fma = "fma" in flags
    for flag, per_cycle in CPU_FLOP_PER_CYCLE:
        if flag in flags:
            if not fma and per_cycle > 16:
                per_cycle //= 2
            return Peak(
                flops=cores * mhz * 1e6 * per_cycle,
                basis=f"{cores} cores x {mhz:.0f} MHz x {per_cycle} fp32 FLOP/cycle ({flag}{'+fma' if fma else ''}, "
                "2 FMA pipes assumed; nominal clock, no turbo)",
            )
    return None


def read_cpuinfo(text: str | None = None) -> dict[str, Any]:
    """Model name, flags and MHz of the first processor in /proc/cpuinfo (or ``text``)."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
    info: dict[str, Any] = {"model": platform.processor() or platform.machine(), "flags": set(), "mhz": 0.0}
    named = False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and value and not named:
            info["model"], named = value, True
        elif key == "flags" and not info["flags"]:
            info["flags"] = set(value.split())
        elif key == "cpu MHz" and not info["mhz"]:
            try:
                info["mhz"] = float(value)
            except ValueError:
                pass
    return info


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_peak_flops() -> Peak | None:
    """Nominal fp32 peak of the cores this process may use."""
    info = read_cpuinfo()
    return cpu_peak(info["flags"], usable_cores(), info["mhz"])


GPU_PEAKS: tuple[tuple[str, float, float], ...] = (
    # (name pattern, fp32 non-tensor TFLOP/s, fp16/bf16 dense tensor TFLOP/s); NVIDIA datasheets, no sparsity.
    (r"H200", 67.0, 989.4),
    (r"H100.*(PCIe)", 51.2, 756.0),
    (r"H100.*NVL", 60.0, 835.0),
    (r"H100", 67.0, 989.4),  # SXM5 (e.g. "NVIDIA H100 80GB HBM3")
    (r"A100", 19.5, 312.0),
    (r"L40S", 91.6, 362.1),
    (r"L4\b", 30.3, 121.0),
    (r"T4\b", 8.1, 65.0),
)


def gpu_peak(device_name: str, precision: str) -> Peak | None:
    """Datasheet peak for an NVIDIA GPU name (``torch.cuda.get_device_name``) and a precision (pure).

    ``fp16``/``bf16`` use the dense tensor-core figure; ``fp32`` the non-tensor figure (TF32 convolutions,
    torch's default for cuDNN, can exceed it).
    """
    for pattern, fp32, fp16 in GPU_PEAKS:
        if re.search(pattern, device_name):
            tflops = fp32 if precision == "fp32" else fp16
            kind = "fp32 (non-tensor)" if precision == "fp32" else f"{precision} dense tensor core"
            return Peak(flops=tflops * 1e12, basis=f"NVIDIA datasheet for {pattern!r}: {tflops:g} TFLOP/s {kind}")
    return None


def percent_of_peak(flops: float, peak: Peak | None) -> float | None:
    return None if peak is None or peak.flops <= 0 else 100.0 * flops / peak.flops


# --------------------------------------------------------------------------------------------
# Fidelity


from esrgan_video.quality import psnr  # noqa: E402,F401 - the one PSNR of the tests and benchmarks (no torch import)


def planes_psnr(a: Sequence[Sequence[np.ndarray]], b: Sequence[Sequence[np.ndarray]]) -> float:
    """:func:`psnr` over every plane of every frame of two frame lists (each a list of planes, e.g. Y, U, V),
    each sample counted once; the lists must hold the same shapes."""
    def flat(frames: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        return np.concatenate([p.ravel() for f in frames for p in f])

    return psnr(flat(a), flat(b))


# --------------------------------------------------------------------------------------------
# Timing


@dataclass(frozen=True)
class Stat:
    """Summary of repeated timings in seconds."""

    median: float
    min: float
    max: float
    n: int
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> "Stat":
        if not values:
            raise ValueError("Stat.of: no timings")
        return cls(statistics.median(values), min(values), max(values), len(values), tuple(values))


SETTLE_S = 0.05
"""Pause before each timed call. ONNX Runtime's thread pool spins for a while after a run; measured here, an ORT
session run right after another one's took 13 % longer (0.432 s vs 0.381 s, anime 6B 64x64) — a bias against
whichever runner follows an ORT-based one. torch's OpenMP threads do the same unless OMP_WAIT_POLICY=PASSIVE."""


def round_orders(names: Sequence[str], rounds: int, *, seed: int = 0) -> list[list[str]]:
    """The order of each round: round 0 as given, later rounds shuffled with a seeded RNG, so no runner always
    goes first or always follows the same runner (a fixed rotation keeps each runner's predecessor fixed) (pure)."""
    import random

    rng = random.Random(seed)
    orders = []
    for r in range(rounds):
        order = list(names)
        if r:
            rng.shuffle(order)
        orders.append(order)
    return orders


def interleaved(
    runners: Mapping[str, Callable[[], Any]],
    *,
    repeats: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
    cpu: dict[str, list[float]] | None = None,
    settle: float = SETTLE_S,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Stat], dict[str, Any]]:
    """Time every runner ``repeats`` times, interleaved; returns (stats, output of each runner's first call).

    Each runner is called ``warmup`` times untimed first, then the timed calls go round by round in the
    orders of :func:`round_orders`, each after a pause of ``settle`` seconds (see :data:`SETTLE_S`). The output of each runner's first call (warm-up or timed) is returned,
    e.g. for PSNR checks. When ``cpu`` is a dict, it receives each timed call's process CPU seconds
    (all threads): on a shared machine that counts work done rather than time spent waiting for a core.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"interleaved: expected repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    names = list(runners)
    first: dict[str, Any] = {}
    for name in names:
        for _ in range(warmup):
            out = runners[name]()
            first.setdefault(name, out)
    times: dict[str, list[float]] = {n: [] for n in names}
    for order in round_orders(names, repeats):
        for name in order:
            if settle > 0:
                sleep(settle)
            c = time.process_time()
            t = clock()
            out = runners[name]()
            times[name].append(clock() - t)
            if cpu is not None:
                cpu.setdefault(name, []).append(time.process_time() - c)
            first.setdefault(name, out)
    return {n: Stat.of(v) for n, v in times.items()}, first


def is_peer(row: Mapping[str, Any]) -> bool:
    """An available peer's row: not ours and not a diagnostic row (``peer`` starting with "ours" or ending in
    "diagnostic") (pure)."""
    return bool(row.get("available")) and not row["peer"].startswith("ours") and not row["peer"].endswith("diagnostic")


def fastest_peer(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The :func:`is_peer` row with the lowest median; None when there is none (pure)."""
    peers = [r for r in rows if is_peer(r)]
    return min(peers, key=lambda r: r["median_s"]) if peers else None


def ratio_of_medians(ours: Stat, theirs: Stat) -> float:
    """How many times faster ours is: their median time / our median time (> 1: we are faster)."""
    return theirs.median / ours.median


# --------------------------------------------------------------------------------------------
# Memory


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB, macOS in bytes)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def current_rss_bytes() -> int:
    """Resident set size now (psutil when installed, else /proc/self/statm)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------------------------
# The machine and the software


VERSIONED = (
    "esrgan-video", "torch", "torchvision", "numpy", "av", "onnx", "onnxruntime", "spandrel", "basicsr",
    "realesrgan", "opencv-python", "vapoursynth", "vapoursynth-mlrt-ort", "tensorrt", "torch-tensorrt",
    "matplotlib", "psutil",
)


def versions(dists: Sequence[str] = VERSIONED) -> dict[str, str | None]:
    """Installed version of each distribution (None when not installed)."""
    out: dict[str, str | None] = {}
    for d in dists:
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            out[d] = None
    return out


def git_revision(root: Path | None = None) -> str | None:
    """``<commit>`` or ``<commit>+dirty`` of the checkout, None outside git."""
    root = root or Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def memory_total_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_info() -> dict[str, Any]:
    """CPU model, cores, clock, RAM, OS, Python, load average, torch threads and GPUs (when torch has CUDA)."""
    cpu = read_cpuinfo()
    peak = cpu_peak(cpu["flags"], usable_cores(), cpu["mhz"])
    info: dict[str, Any] = {
        "cpu": cpu["model"],
        "cpu_mhz": cpu["mhz"],
        "cpu_isa": [f for f in ("avx512f", "avx2", "fma", "avx") if f in cpu["flags"]],
        "logical_cpus": os.cpu_count(),
        "usable_cores": usable_cores(),
        "cpu_peak_fp32_flops": peak.flops if peak else None,
        "cpu_peak_basis": peak.basis if peak else None,
        "memory_bytes": memory_total_bytes(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "niceness": os.nice(0) if hasattr(os, "nice") else None,
    }
    if "torch" in sys.modules:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


THREAD_ENV = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_PROC_BIND")
"""Environment variables that change CPU threading; recorded with every run."""


def run_header(command: Sequence[str], mode: str) -> dict[str, Any]:
    """The facts every results file starts with: date, command, mode, machine, versions, git revision."""
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(command),
        "mode": mode,
        "git": git_revision(),
        "machine": machine_info(),
        "versions": versions(),
        "env": {k: os.environ.get(k) for k in THREAD_ENV},
    }


def is_loaded(load_average: Sequence[float] | None, cores: int) -> bool:
    """Whether another workload competed for the CPU: 1-minute load above 1.25 x the cores we use (pure)."""
    return bool(load_average) and load_average[0] > 1.25 * cores


# --------------------------------------------------------------------------------------------
# JSON


def jsonable(obj: Any) -> Any:
    """Dataclasses, numpy scalars, Paths, sets and non-finite floats made JSON-safe (inf → "inf")."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v) for v in items]
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return "inf" if obj > 0 else ("-inf" if obj < 0 else "nan")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(data: Any, path: Path) -> Path:
    """Write ``data`` (made JSON-safe) atomically to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jsonable(data), indent=2) + "\n")
    tmp.replace(path)
    return path
