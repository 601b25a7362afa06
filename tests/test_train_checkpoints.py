"""Checkpoints on the CPU with a tiny near-identity model and a small real clip: pruning keeps the newest two and
deletes a model file whose state file was never written (a run stopped between the two writes)."""

from __future__ import annotations

from pathlib import Path

import pytest

import media
from esrgan_video.errors import OutputError
from esrgan_video.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """16 frames, 96×64, cut from the real clip bikes.mp4."""
    return media.bikes_crop(tmp_path_factory.mktemp("clip") / "bikes_tiny.mp4", frames=16, size=(96, 64),
                            origin=(100, 260), crf=10)


@pytest.fixture(scope="module")
def tiny(near_identity_file) -> Path:
    return near_identity_file(4, nf=16, nb=1, gc=8, seed=3)


def config(clip, tiny, out, **kw) -> TrainConfig:
    values = dict(data=[str(clip)], base=str(tiny), out=str(out), patch=32, batch=2, quiet=True, ema=0,
                  lr=5e-4, schedule="constant")
    values.update(kw)
    return TrainConfig(**values)


def test_a_model_file_written_just_before_its_state_file_is_pruned(clip, tiny, tmp_path, monkeypatch):
    from esrgan_video.train import run_folder

    out = tmp_path / "run"
    real = run_folder.RunFolder.save_state

    def stopped(self, step, state):  # the run stops between the model file and the state file of step 4
        if step == 4:
            raise OSError(28, "No space left on device", str(self.state_path(step)))
        return real(self, step, state)

    monkeypatch.setattr(run_folder.RunFolder, "save_state", stopped)
    with pytest.raises(OutputError):
        train(config(clip, tiny, out, steps=4, save_every=2))
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["model_000002.safetensors", "model_000004.safetensors", "state_000002.pt"]
    monkeypatch.setattr(run_folder.RunFolder, "save_state", real)
    # the rerun resumes from step 2 and checkpoints every 3 steps: step 4 is never written again
    r = train(config(clip, tiny, out, steps=9, save_every=3))
    assert r.step == 9
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["model_000006.safetensors", "model_000009.safetensors", "state_000006.pt", "state_000009.pt"]
