"""DDP under torchrun: two CPU processes (gloo) at batch 2 train the same weights as one process at batch 4."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from esrgan_video.models.checkpoints import save_safetensors
from esrgan_video.testing import near_identity_model

ROOT = Path(__file__).resolve().parents[1]


def test_two_gloo_processes_equal_one_at_twice_the_batch(tmp_path):
    from esrgan_video.samples import sample_clip

    clip = sample_clip("bikes.mp4", progress=False)
    base = tmp_path / "tiny.safetensors"
    save_safetensors(near_identity_model(4, nf=16, nb=1, gc=8, seed=5).state_dict(), base)
    common = ["--data", str(clip), "--base", str(base), "--patch", "32", "--steps", "4", "--ema", "0", "--lr", "1e-3",
              "--schedule", "constant", "--max-frames", "12", "--quiet", "--device", "cpu"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "esrgan_video", "train", *common, "--batch", "4",
                          "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "esrgan_video", "train", *common, "--batch", "2", "--out", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "one" / "final.safetensors"))
    b = load_file(str(tmp_path / "two" / "final.safetensors"))
    start = load_file(str(base))
    moved = max((a[k] - start[k]).abs().max().item() for k in a)
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert moved > 1e-3  # the runs trained
    assert diff < 1e-6, (diff, moved)  # float rounding of the gradient all-reduce (measured 1.7e-8)
    import json

    cfg = json.loads((tmp_path / "two" / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["batch"] == 2
