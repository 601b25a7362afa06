"""esrgan_video.files: whole files or nothing, and a lock between processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time

import pytest

from esrgan_video.files import atomic_write, atomic_write_text, locked


def test_concurrent_writers_of_one_target_leave_one_whole_payload_and_no_temporary_file(tmp_path):
    target = tmp_path / "cache" / "entry.bin"
    payloads = [bytes([i]) * (1 << 16) for i in range(12)]
    threads = [threading.Thread(target=atomic_write, args=(target, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_bytes() in payloads
    assert os.listdir(target.parent) == ["entry.bin"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_a_write_killed_before_the_rename_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    target = atomic_write_text(tmp_path / "record.json", "old\n")

    def interrupted(src, dst):
        assert os.path.exists(src) and open(src).read() == "new\n"  # the whole payload was on disk
        raise KeyboardInterrupt

    monkeypatch.setattr("esrgan_video.files.os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["record.json"]


def _hold(lock_path, started, held_s):
    with locked(lock_path):
        started.set()
        time.sleep(held_s)


def test_locked_excludes_another_process(tmp_path):
    lock = tmp_path / ".x.lock"
    ctx = mp.get_context("spawn")
    started = ctx.Event()
    p = ctx.Process(target=_hold, args=(lock, started, 1.0))
    p.start()
    assert started.wait(60)
    t0 = time.monotonic()
    with locked(lock):
        waited = time.monotonic() - t0
    p.join()
    assert waited > 0.5  # the other process held it; we got it only after it let go


def test_a_failed_write_has_one_wording_for_images_and_blends(tmp_path):
    """``files.cannot_write`` is the one "F: cannot be written (reason)" line: the image writer and blend's writes
    both say it (each wrote it out itself), for the OS's error and for one without a strerror."""
    import numpy as np
    import pytest

    from esrgan_video.errors import OutputError
    from esrgan_video.files import cannot_write
    from esrgan_video.train.blend import _writing
    from esrgan_video.video.images import write_image

    blocker = tmp_path / "a file"
    blocker.write_text("x")
    dst = blocker / "x.png"
    with pytest.raises(OutputError) as image:
        write_image(dst, np.zeros((4, 4, 3), np.uint8), None, 8)
    with pytest.raises(OutputError) as blend, _writing(dst):
        dst.open("wb")
    expected = f"{dst}: cannot be written (Not a directory)"
    assert str(image.value) == str(blend.value) == str(cannot_write(dst, NotADirectoryError(20, "Not a directory")))
    assert str(image.value) == expected
    assert str(cannot_write(dst, OSError("no reason given"))) == f"{dst}: cannot be written (no reason given)"
