"""The training loop's journal on the CPU with a train_base near-identity model and a small real train_clip: step values (losses,
gradient norm) stay on the device and reach the host once per log interval, not every step (on a GPU each read
is a sync), and are the numbers a read every step gave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from esrgan_video.train import Trainer, train
from train_common import config
from esrgan_video.train.steplog import StepLog

pytestmark = pytest.mark.usefixtures("torch_one_thread")

READS = {"item", "tolist", "__float__", "__int__", "__bool__", "__index__", "__format__", "numpy"}
"""Tensor methods that hand a value to Python (on a GPU each waits for the work queued before it)."""


class HostReads(TorchFunctionMode):
    """Counts the calls that read tensor values into Python while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in READS:
            self.count += 1
        return func(*args, **(kwargs or {}))


def journal_steps(out: Path) -> list[dict]:
    lines = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    return [r for r in lines if not r.get("validation")]



def test_step_log_reads_its_tensors_once_per_flush_and_keeps_their_values():
    log = StepLog()
    values = [torch.tensor(0.1, dtype=torch.float32) * (i + 1) / 3 for i in range(6)]
    recs = [{"step": i + 1, "lr": 1e-4, "loss": v, "l_pix": v / 7, "grad_norm": (v * 3).to(torch.bfloat16)}
            for i, v in enumerate(values)]
    with HostReads() as reads:
        for rec in recs[:5]:
            log.add(rec)
    assert reads.count == 0 and len(log) == 5 and log.host_reads == 0  # adding reads nothing
    with HostReads() as reads:
        out = log.flush()
    assert reads.count == 1 and log.host_reads == 1 and len(log) == 0  # all 15 values in one read
    want = [{k: (float(v.item()) if isinstance(v, torch.Tensor) else v) for k, v in rec.items()} for rec in recs[:5]]
    assert out == want  # the per-step .item() numbers, bit for bit (bfloat16 included)
    assert all(type(r["loss"]) is float for r in out)
    log.add({"step": 6, "it_s": 2.5})
    assert log.flush() == [{"step": 6, "it_s": 2.5}] and log.host_reads == 1  # nothing on the device: no read


def test_the_journal_is_written_once_per_log_interval_with_the_per_step_numbers(train_clip, train_base, tmp_path):
    cfg = config(train_clip, train_base, tmp_path / "run", steps=8, log_every=4, val_every=8, preview_every=8, save_every=8)
    trainer = Trainer(cfg)
    result = trainer.run()
    assert result.step == 8
    assert trainer.log.host_reads == 2  # after steps 4 and 8: not one read (CUDA sync) per step
    got = journal_steps(tmp_path / "run")
    assert [r["step"] for r in got] == list(range(1, 9))
    # the same run, each step's values read at once as the trainer did before it kept them on the device
    ref = Trainer(config(train_clip, train_base, tmp_path / "ref", steps=8))
    ref.setup()
    for i, rec in enumerate(got):
        want = {k: (float(v.item()) if isinstance(v, torch.Tensor) else v) for k, v in ref.step(i).items()}
        assert {k: rec[k] for k in want} == want, i
    assert json.loads((tmp_path / "run" / "config.json").read_text())["log_every"] == 4
    # log_every may change on a rerun (it does not change the run)
    assert train(config(train_clip, train_base, tmp_path / "run", steps=10, log_every=3, val_every=8, preview_every=8,
                        save_every=8)).step == 10
    assert [r["step"] for r in journal_steps(tmp_path / "run")] == list(range(1, 11))


def test_log_every_is_a_command_line_option_too():
    from esrgan_video.cli.train import config_from_args, parser as train_parser

    args = train_parser().parse_args(["--data", "x.mkv", "--out", "run", "--log-every", "3"])
    assert config_from_args(args).log_every == 3
    assert config_from_args(train_parser().parse_args(["--data", "x.mkv", "--out", "run"])).log_every in (None, 10)
