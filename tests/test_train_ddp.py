"""DDP: under torchrun two CPU processes (gloo) at batch 2 train the same weights as one process at batch 4, and a
resumed two-process run equals an uninterrupted one (each process's shuffling pool saved); a checkpoint resumes
only with the number of processes that saved it; a multi-GPU run syncs the discriminator's BatchNorm."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from esrgan_video.cli.main import main as cli
from esrgan_video.errors import InputError
from esrgan_video.models.checkpoints import save_safetensors
from esrgan_video.testing import near_identity_model
from esrgan_video.train import TrainConfig, Trainer, train
from esrgan_video.train.ddp import World, sync_batchnorm
from esrgan_video.train.discriminators import make_discriminator
from train_common import config

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path) -> dict[str, str]:
    """The runs' environment; TMPDIR inside ``tmp_path``, where torchrun makes its log folder (torchelastic_*), so
    none is left in /tmp."""
    (tmp_path / "tmp").mkdir()
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TMPDIR=str(tmp_path / "tmp"))


@pytest.mark.usefixtures("torch_one_thread")  # the in-process reference run: one thread, as each rank (OMP 1)
def test_two_gloo_processes_equal_one_at_twice_the_batch(tmp_path, capsys):
    from esrgan_video.samples import sample_clip

    train_clip = sample_clip("bikes.mp4", progress=False)
    base = tmp_path / "train_base.safetensors"
    save_safetensors(near_identity_model(4, nf=16, nb=1, gc=8, seed=5).state_dict(), base)
    common = ["--data", str(train_clip), "--base", str(base), "--patch", "32", "--steps", "4", "--ema", "0", "--lr", "1e-3",
              "--schedule", "constant", "--max-frames", "12", "--quiet", "--device", "cpu"]
    env = _env(tmp_path)
    # the one-process reference runs here (as the CLI, one torch thread): a subprocess would cost a Python and torch start
    assert cli(["train", *common, "--batch", "4", "--out", str(tmp_path / "one")]) == 0, capsys.readouterr().err
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


def test_two_processes_resume_each_ones_shuffling_pool_and_refuse_another_world_size(train_clip, tmp_path, capsys):
    # the realesrgan recipe keeps a pool of training pairs per process; a checkpoint holds every process's pool,
    # so 2 steps + resume + 1 step equals 3 steps in one go (rank 1 used to resume from rank 0's pool)
    base = tmp_path / "train_base.safetensors"
    save_safetensors(near_identity_model(4, nf=16, nb=1, gc=8, seed=5).state_dict(), base)
    toml = tmp_path / "pool.toml"
    toml.write_text("val_crops = 1\n[degradation]\npool_size = 2\n")  # full after 2 steps of 1 patch: step 3 swaps
    common = ["--data", str(train_clip), "--base", str(base), "--patch", "32", "--batch", "1", "--ema", "0", "--lr", "1e-3",
              "--recipe", "realesrgan", "--config", str(toml), "--quiet", "--device", "cpu"]
    env = _env(tmp_path)

    def torchrun(out: str, steps: int) -> None:
        r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                            "-m", "esrgan_video", "train", *common, "--steps", str(steps),
                            "--out", str(tmp_path / out)],
                           env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]

    torchrun("whole", 3)
    torchrun("resumed", 2)
    torchrun("resumed", 3)
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "whole" / "final.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "final.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = torch.load(tmp_path / "resumed" / "checkpoints" / "state_000003.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["pool"]) == 2
    assert not torch.equal(state["pool"][0]["hr"], state["pool"][1]["hr"])  # each process's own pairs
    # one process cannot resume it: one line naming the checkpoint and both numbers, exit 3
    assert cli(["train", *common, "--steps", "4", "--out", str(tmp_path / "resumed")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(
        "state_000003.pt: saved by a run of 2 processes, this one has 1 process; resume it with 2 processes "
        "(torchrun, world size 2), or start over with --restart"), err


def test_a_multi_gpu_run_syncs_the_discriminators_batchnorm():
    torch.manual_seed(0)
    d = make_discriminator("vgg128")
    before = {k: v.clone() for k, v in d.state_dict().items()}
    cuda = torch.device("cuda", 0)
    assert sync_batchnorm(d, World(), cuda) is d  # one process: as is
    assert sync_batchnorm(d, World(0, 2, 0), torch.device("cpu")) is d  # gloo on the CPU: SyncBatchNorm is GPU-only
    synced = sync_batchnorm(d, World(1, 2, 1), cuda)
    kinds = [type(m) for m in synced.modules()]
    assert kinds.count(torch.nn.SyncBatchNorm) == 9 and torch.nn.BatchNorm2d not in kinds
    after = synced.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    # the trainer builds its discriminator through it
    trainer = Trainer(TrainConfig(data=["x.mp4"], out="unused", stage="gan", discriminator="vgg128"))
    from esrgan_video.train.trainer import resolve_plan

    trainer.plan = resolve_plan(trainer.config, torch.device("cpu"), 4)
    trainer.world, trainer.device = World(0, 2, 0), cuda
    kinds = [type(m) for m in trainer._make_discriminator().modules()]
    assert kinds.count(torch.nn.SyncBatchNorm) == 9


@pytest.mark.usefixtures("torch_one_thread")
def test_a_checkpoint_resumes_only_with_the_number_of_processes_that_saved_it(train_clip, train_base, tmp_path, monkeypatch,
                                                                              capsys):
    out = tmp_path / "run"
    assert train(config(train_clip, train_base, out, steps=2)).step == 2
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.rglob("*"))
    # as torchrun describes a two-process world to each process: refused before joining the process group
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError) as e:
        train(config(train_clip, train_base, out, steps=4))
    assert str(e.value) == (f"{out / 'checkpoints' / 'state_000002.pt'}: saved by a run of 1 process, this one has "
                            "2 processes; resume it with one process (no torchrun), or start over with --restart")
    args = ["train", "--data", str(train_clip), "--base", str(train_base), "--out", str(out), "--patch", "32", "--batch", "2",
            "--steps", "4", "--quiet"]
    assert cli(args) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "state_000002.pt: saved by a run of 1 process, this one has 2 processes" in err[0]
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.rglob("*")) == before  # nothing written
