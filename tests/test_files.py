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
