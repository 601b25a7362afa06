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


def test_a_source_changed_under_its_name_is_refused_not_resumed(train_clip, train_base, tmp_path):
    """The user re-encodes (or re-cuts) clip.mp4 and reruns the command: the run would resume on other frames
    under the same name, silently (the file names alone were compared; the sampler's position and the held-out
    frames belong to the old ones). One line naming the file; the run folder is left as it was. A run folder of
    an earlier version (no record of its frames) still resumes."""
    import json

    import media

    clip = tmp_path / "clip.mp4"
    shutil.copy(train_clip, clip)
    run = tmp_path / "run"
    kw = dict(val_every=100, preview_every=100)
    assert Trainer(config(clip, train_base, run, steps=1, **kw)).run().step == 1
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*"))
    media.bikes_crop(clip, frames=16, size=(96, 64), origin=(40, 100), crf=10)  # the same size, another picture
    with pytest.raises(InputError, match=rf"^{clip}: changed since the run in {run} began \(16 frames of 96x64, "
                                         r"other pictures\); resuming would train on other frames: use --restart"):
        Trainer(config(clip, train_base, run, steps=2, **kw)).run()
    media.bikes_crop(clip, frames=12, size=(96, 64), origin=(100, 260), crf=10)  # cut shorter
    with pytest.raises(InputError, match=r"\(16 frames of 96x64 then, 12 of 96x64 now\)"):
        Trainer(config(clip, train_base, run, steps=2, **kw)).run()
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*")) == before
    recorded = json.loads((run / "config.json").read_text())
    del recorded["data_frames"]  # as an earlier version wrote it
    (run / "config.json").write_text(json.dumps(recorded))
    assert Trainer(config(clip, train_base, run, steps=2, **kw)).run().step == 2
