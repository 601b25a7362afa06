"""Checkpoints on the CPU with a train_base near-identity model and a small real train_clip: pruning keeps the newest two and
deletes a model file whose state file was never written (a run stopped between the two writes)."""

from __future__ import annotations

import pytest

from esrgan_video.errors import OutputError
from esrgan_video.train import train
from train_common import config

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_a_model_file_written_just_before_its_state_file_is_pruned(train_clip, train_base, tmp_path, monkeypatch):
    from esrgan_video.train import run_folder

    out = tmp_path / "run"
    real = run_folder.RunFolder.save_state

    def stopped(self, step, state):  # the run stops between the model file and the state file of step 4
        if step == 4:
            raise OSError(28, "No space left on device", str(self.state_path(step)))
        return real(self, step, state)

    monkeypatch.setattr(run_folder.RunFolder, "save_state", stopped)
    with pytest.raises(OutputError):
        train(config(train_clip, train_base, out, steps=4, save_every=2))
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["model_000002.safetensors", "model_000004.safetensors", "state_000002.pt"]
    monkeypatch.setattr(run_folder.RunFolder, "save_state", real)
    # the rerun resumes from step 2 and checkpoints every 3 steps: step 4 is never written again
    r = train(config(train_clip, train_base, out, steps=9, save_every=3))
    assert r.step == 9
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["model_000006.safetensors", "model_000009.safetensors", "state_000006.pt", "state_000009.pt"]
