"""A rerun names the same files another way (relative here, absolute there; ``./``; through a symbolic link):
it is the same run and resumes. Another file is still a different configuration."""

from __future__ import annotations

import os
import shutil

import pytest
from train_common import config

from esrgan_video.errors import InputError
from esrgan_video.train import Trainer


def test_the_same_files_named_another_way_resume_the_run(train_clip, train_base, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(train_clip, work / "clip.mp4")
    shutil.copy(train_base, work / "base.safetensors")
    os.symlink(work / "clip.mp4", work / "link.mp4")
    first = Trainer(config(work / "clip.mp4", work / "base.safetensors", work / "run", steps=1, val_every=100,
                           preview_every=100)).run()
    assert first.step == 1
    monkeypatch.chdir(work)
    again = Trainer(config("./link.mp4", "base.safetensors", "run", steps=2, val_every=100, preview_every=100))
    assert again.run().step == 2  # resumed from step 1, not refused
    monkeypatch.chdir(tmp_path)  # from another folder, by other relative names
    assert Trainer(config("work/clip.mp4", "work/base.safetensors", "work/run", steps=3, val_every=100,
                          preview_every=100)).run().step == 3
    shutil.copy(train_clip, work / "other.mp4")
    with pytest.raises(InputError, match=r"different configuration \(data: "):
        Trainer(config("work/other.mp4", "work/base.safetensors", "work/run", steps=4)).run()
