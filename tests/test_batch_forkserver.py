"""Local batch workers are forked from a fork server that imported torch once (``scheduler.worker_context``), not
spawned (each importing torch again). What a spawned worker got for free must still hold: the driver's environment
of this run (not the server's, from when it started), CUDA and torch's thread pools untouched before the fork, the
script's folder on ``sys.path``, and nothing left running or half-written after a signal to the whole process group.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from esrgan_video.batch import run_batch
from esrgan_video.batch.scheduler import load_time_env, worker_context
from esrgan_video.video.partials import partials_of

from media import default_signals, descendants, make_clip, running

needs_forkserver = pytest.mark.skipif(sys.platform != "linux", reason="the fork server is tested on Linux")

# what a forked process finds when it starts, before it imports anything itself: ``eval`` is pickled by reference,
# so the pool's worker (the pytest main module is not imported again) runs nothing of this module
FACTS = ("(sorted(m for m in ('torch', 'esrgan_video.pipeline', 'esrgan_video.batch.worker') if m in __import__('sys')"
         ".modules), __import__('sys').modules['torch'].cuda.is_initialized(), __import__('os').getppid())")




@needs_forkserver
def test_workers_fork_from_a_server_that_loaded_torch_and_left_cuda_alone() -> None:
    ctx = worker_context()
    assert ctx.get_start_method() == "forkserver"
    with ctx.Pool(1) as pool:
        preloaded, cuda, server = pool.apply(eval, (FACTS,))
    assert preloaded == ["esrgan_video.batch.worker", "esrgan_video.pipeline", "torch"]
    assert cuda is False  # a fork of a process that started CUDA cannot use it
    # nor one that asked the driver anything (torch.cuda.is_available() loads libcuda and runs cuInit)
    assert "libcuda.so" not in Path(f"/proc/{server}/maps").read_text()
    # no torch thread pool was made before the fork (no torch op ran there): the server's threads are its main one
    # and at most OpenBLAS's idle pool from NumPy's import (OpenBLAS shuts it down around a fork)
    names = [Path(f"/proc/{server}/task/{t}/comm").read_text().strip() for t in os.listdir(f"/proc/{server}/task")]
    assert len(names) <= 1 + (os.cpu_count() or 1) and names.count("python") == len(names), names


@needs_forkserver
def test_a_changed_load_time_variable_starts_workers_by_spawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """OMP_NUM_THREADS is read when torch is loaded (the server's value would stay): such a run spawns."""
    assert worker_context().get_start_method() == "forkserver"
    monkeypatch.setenv("OMP_NUM_THREADS", str(int(os.environ.get("OMP_NUM_THREADS", "1")) + 1))
    assert worker_context().get_start_method() == "spawn"
    monkeypatch.undo()
    assert worker_context().get_start_method() == "forkserver"
    assert load_time_env({"OMP_NUM_THREADS": "2", "LD_PRELOAD": "x", "ESRGAN_VIDEO_CACHE": "c", "HOME": "h"}) == {
        "OMP_NUM_THREADS": "2", "LD_PRELOAD": "x"}


def test_the_driver_s_environment_of_each_run_reaches_its_workers(tmp_path: Path, near_identity_file,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Two batches in one process, the model cache moved between them (offline): the second's workers load the model
    from the new cache. A worker with the fork server's environment (from when it started) looked in the old,
    deleted one and failed every file ("offline")."""
    from esrgan_video.testing import near_identity_model

    src = make_clip(tmp_path / "in.mkv", frames=2)
    first, second = tmp_path / "cache1", tmp_path / "cache2"
    (first / "models").mkdir(parents=True)
    torch.save(near_identity_model(4).state_dict(), first / "models" / "RealESRGAN_x4plus.pth")  # placed by hand
    monkeypatch.setenv("ESRGAN_VIDEO_OFFLINE", "1")
    for n, cache in enumerate((first, second)):
        if cache is second:
            (second / "models").mkdir(parents=True)
            shutil.copy(first / "models" / "RealESRGAN_x4plus.pth", second / "models")
            shutil.rmtree(first)
        monkeypatch.setenv("ESRGAN_VIDEO_CACHE", str(cache))
        s = run_batch([src], tmp_path / f"out{n}", model="RealESRGAN_x4plus", devices="cpu", threads=1,
                      codec="ffv1", max_attempts=1, log=lambda m: None)
        assert s.exit_code == 0, [(r.status, r.error) for r in s.rows]


def test_a_script_in_another_folder_with_a_module_beside_it_runs_a_batch(tmp_path: Path, near_identity_file) -> None:
    """A worker imports the script again (its main module) with the script's folder on ``sys.path`` and the
    driver's working directory, as a spawned one did: the script's own module beside it is found."""
    src = make_clip(tmp_path / "in.mkv", frames=1)
    scripts, elsewhere = tmp_path / "scripts", tmp_path / "elsewhere"
    scripts.mkdir()
    elsewhere.mkdir()
    (scripts / "helper.py").write_text("OUT = 'out'\n")
    (scripts / "run.py").write_text(textwrap.dedent(f"""\
        import helper
        from esrgan_video.batch import run_batch

        if __name__ == "__main__":
            s = run_batch([{str(src)!r}], helper.OUT, model={str(near_identity_file(2))!r}, devices="cpu,cpu",
                          threads=1, codec="ffv1", max_attempts=1, log=lambda m: None)
            print("exit code", s.exit_code, [r.error for r in s.rows])
        """))
    p = subprocess.run([sys.executable, str(scripts / "run.py")], capture_output=True, text=True, timeout=300,
                       cwd=elsewhere)
    assert p.returncode == 0 and "exit code 0" in p.stdout, p.stdout + p.stderr
    assert (elsewhere / "out" / "in.mkv").stat().st_size > 0


@needs_forkserver
def test_a_hang_up_of_the_whole_process_group_stops_the_batch_cleanly(tmp_path: Path, near_identity_file) -> None:
    """A closed terminal's SIGHUP reaches the driver, the fork server, the resource tracker and the workers at once:
    the helpers outlive it (they start with SIGHUP and SIGTERM blocked), so the driver stops its workers, which
    remove their temporary files, and it exits 129 without a traceback, nothing left running. A tracker killed by the
    hang-up was started again by the driver and printed a KeyError traceback per queue (spawned workers had that
    too); a server killed by it took its workers with it."""
    sig = signal.SIGHUP
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "long.mkv", codec="ffv1", size=(48, 32), frames=400)
    cmd = [sys.executable, "-m", "esrgan_video", "batch", str(lib), "-o", str(out), "--model",
           str(near_identity_file(2)), "--codec", "ffv1", "--threads", "1", "--progress", "json"]

    def own_group() -> None:
        default_signals()
        os.setpgid(0, 0)

    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"),
                            preexec_fn=own_group)
    try:
        for line in proc.stderr:  # wait until the worker reports frames of the file
            if line.startswith("{") and '"frame": ' in line and '"files": []' not in line:
                break
        below = descendants(proc.pid)
        assert partials_of(out / "long.mkv"), "the worker writes the file"
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err, err
    assert not (out / "long.mkv").exists() and partials_of(out / "long.mkv") == []
    deadline = time.monotonic() + 30  # the fork server and resource tracker end once their pipes do
    while [p for p in below if running(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert below and not [p for p in below if running(p)], "a worker or a helper process outlived the driver"


def test_workers_write_to_the_drivers_stderr_of_this_run(tmp_path: Path, near_identity_file) -> None:
    """The fork server keeps the descriptors it started with; a worker forked from it wrote its C-level output
    (FFmpeg's ``--verbose`` decoder lines) to the stderr the driver had then, not to the one it has now (a later
    test's capture, a caller's redirect): ``StdStreams`` passes the driver's current 1 and 2 to each worker."""
    from media import make_corrupt

    model = near_identity_file(2)
    good = make_clip(tmp_path / "good.mkv", frames=8, options={"g": "1"})
    bad = make_corrupt(good, tmp_path / "bad.mkv", frames=[3])
    first = run_batch([good], tmp_path / "out0", model=str(model), devices="cpu", threads=1, codec="ffv1",
                      max_attempts=1, log=lambda m: None)  # the server runs, with this stderr
    assert first.exit_code == 0
    err = tmp_path / "stderr.txt"
    saved = os.dup(2)
    try:
        with open(err, "wb") as f:
            os.dup2(f.fileno(), 2)
            run_batch([bad], tmp_path / "out1", model=str(model), devices="cpu", threads=1, codec="ffv1",
                      max_attempts=1, log=lambda m: None, verbose=True)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    assert "[h264 @" in err.read_text(errors="replace")


@needs_forkserver
def test_workers_are_spawned_where_the_fork_server_cannot_start(tmp_path: Path) -> None:
    """The server listens on a Unix socket in the temporary folder: under a TMPDIR longer than a socket's path may be
    (107 bytes) it cannot start, and batch ended in an 'OSError: AF_UNIX path too long' traceback. Spawned workers
    need no socket: they start as before, and the server is not tried again."""
    long = tmp_path / ("t" * (100 - len(str(tmp_path))))
    long.mkdir()
    code = ("from esrgan_video.batch.scheduler import worker_context\n"
            "print(worker_context().get_start_method(), worker_context().get_start_method())")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, TMPDIR=str(long)))
    assert p.returncode == 0 and p.stdout.split() == ["spawn", "spawn"], p.stdout + p.stderr
