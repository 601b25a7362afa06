"""Ctrl-C, and SIGTERM and SIGHUP handled like it (nothing left behind, status 130 / 143 / 129), and stale temporary files of a
killed run removed by the next run on the same target."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import media
from esrgan_video.video.partials import (join_partial_path, partial_path, partials_of, process_alive,
                                         remove_partials, remove_stale_partials)


@pytest.fixture(scope="module")
def tiny_model(near_identity_file) -> Path:
    return near_identity_file(4)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert not process_alive(p.pid)
    return p.pid


@pytest.mark.parametrize("sig,status,said", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM"),
                                             (signal.SIGHUP, 129, "SIGHUP")], ids=["Ctrl-C", "SIGTERM", "SIGHUP"])
def test_signal_leaves_nothing_and_exits_128_plus_signal(tmp_path, tiny_model, sig, status, said):
    src = media.make_clip(tmp_path / "in.mp4", size=(64, 48), frames=200)
    dst = tmp_path / "out.mp4"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "esrgan_video", str(src), str(dst), "--model", str(tiny_model),
                             "--progress", "json"], stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=media.default_signals)
    line = proc.stderr.readline()  # frames are flowing: the partial file exists now
    assert line.startswith("{"), line
    assert [p.name for p, _ in partials_of(dst)] == [partial_path(dst, proc.pid).name]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert f"interrupted ({said})" in err and "Traceback" not in err
    last = json.loads([ln for ln in err.splitlines() if ln.startswith("{")][-1])  # --progress json's last object
    assert (last["done"], last["error"], last["exit_code"]) == (False, f"interrupted ({said})", status), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_stale_partials_of_dead_processes_are_removed_by_the_next_run(tmp_path, tiny_model):
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=2)
    dst = tmp_path / "out.mp4"
    gone = dead_pid()
    stale = partial_path(dst, gone)
    stale_join = join_partial_path(dst, gone)
    alive = partial_path(dst, os.getppid())  # a live process's file (a run still writing): never touched
    other = partial_path(tmp_path / "other.mp4", gone)  # another target's: not this run's business
    for p in (stale, stale_join, alive, other):
        p.write_bytes(b"")  # a writer killed before its header reached the disk leaves zero bytes
    p = subprocess.run([sys.executable, "-m", "esrgan_video", str(src), str(dst), "--model", str(tiny_model), "-q"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"), timeout=300)
    assert p.returncode == 0, p.stderr
    assert dst.stat().st_size > 0
    assert not stale.exists() and not stale_join.exists()
    assert alive.exists() and other.exists()


def test_partials_helpers(tmp_path):
    dst = tmp_path / "a.b.mkv"
    mine, gone = partial_path(dst), partial_path(dst, dead_pid())
    join = join_partial_path(dst, 12345678)
    for p in (mine, gone, join, tmp_path / ".a.b.1.partial.mp4", tmp_path / ".a.b.x.partial.mkv"):
        p.write_bytes(b"x")
    assert sorted(p.name for p, _ in partials_of(dst)) == sorted([mine.name, gone.name, join.name])
    assert sorted(remove_stale_partials(dst)) == sorted([gone, join])  # pid 12345678 is above any pid_max
    assert mine.exists() and not gone.exists()
    assert remove_partials(dst, os.getpid()) == [mine]
    assert partials_of(dst) == []
    assert partials_of(tmp_path / "missing" / "x.mkv") == []
    assert not process_alive(0) and process_alive(os.getpid())


def test_ignored_hangup_stays_ignored():
    """Under ``nohup`` SIGHUP is ignored: stop_signals keeps it so (the run goes on after the terminal closes)."""
    code = ("import os, signal\n"
            "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
            "from esrgan_video.cli.signals import stop_signals\n"
            "with stop_signals():\n"
            "    os.kill(os.getpid(), signal.SIGHUP)\n"
            "    try:\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "        import time; time.sleep(1)\n"
            "    except KeyboardInterrupt as e:\n"
            "        print(type(e).__name__, e.signum)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       preexec_fn=media.default_signals)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["Terminated", str(int(signal.SIGTERM))]


def test_exit_statuses_are_documented_once():
    """-h lists every status (1 included), the README the same ones, and the usage errors of #14 are 2."""
    from esrgan_video.cli.exit_codes import EXIT_CODES

    help_text = subprocess.run([sys.executable, "-m", "esrgan_video", "-h"], capture_output=True, text=True,
                               timeout=60).stdout
    flat = " ".join(help_text.split())
    for code, text in EXIT_CODES:
        if code != 8:  # batch only: in 'esrgan-video batch -h'
            assert f"{code} {' '.join(text.split())}" in flat, code
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    for code, text in EXIT_CODES:  # each meaning whole, up to its ';' or the list's '.'
        assert f"{code} {text};" in readme or f"{code} {text}." in readme, code
    batch_help = " ".join(subprocess.run([sys.executable, "-m", "esrgan_video", "batch", "-h"], capture_output=True,
                                         text=True, timeout=60).stdout.split())
    assert "8 batch finished, but some files failed" in batch_help and "143 terminated" in batch_help


@pytest.mark.parametrize("command", ["preview", "models", "engine", "demo", "train", "blend"])
def test_every_command_lists_its_exit_statuses(command, capsys):
    from esrgan_video.cli.main import SUBCOMMANDS, main

    assert command in SUBCOMMANDS
    try:
        status = main([command, "-h"])
    except SystemExit as e:  # argparse's exit, where the face lets it through
        status = e.code
    assert status in (0, None)
    flat = " ".join(capsys.readouterr().out.split())
    assert f"usage: esrgan-video {command}" in flat
    assert "Exit codes: 0 done; 1 unexpected error" in flat and "2 bad command line or option value" in flat
    assert "130 interrupted (Ctrl-C, SIGINT)" in flat and "8 batch finished" not in flat


@pytest.mark.parametrize("args", [["--scale", "0"], ["--scale", "3", "--size", "100x"], ["--fit", "pad"],
                                  ["--size", "100x", "--fit", "crop"], ["--crf", "18", "--codec", "ffv1"]])
def test_command_line_errors_exit_2_before_anything_is_written(tmp_path, tiny_model, args):
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=2)
    p = subprocess.run([sys.executable, "-m", "esrgan_video", str(src), str(tmp_path / "o.mkv"),
                        "--model", str(tiny_model), *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and "error:" in p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["in.mp4"]


def test_sigterm_stops_a_batch_like_ctrl_c(tmp_path, tiny_model):
    """The driver stops its busy worker (which removes its temporary file), prints the summary and exits 143; the
    same command then resumes."""
    lib = tmp_path / "lib"
    lib.mkdir()
    media.make_clip(lib / "long.mkv", codec="ffv1", size=(48, 32), frames=400)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "esrgan_video", "batch", str(lib), "-o", str(out), "--model", str(tiny_model),
           "--codec", "ffv1", "--threads", "1", "--progress", "json"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=media.default_signals)
    for line in proc.stderr:  # wait until the worker reports frames of the file
        if line.startswith("{") and '"frame": ' in line and '"files": []' not in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    assert not (out / "long.mkv").exists() and partials_of(out / "long.mkv") == []
    again = subprocess.run(cmd[:-2] + ["-q"], capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert (out / "long.mkv").stat().st_size > 0


@pytest.mark.parametrize("argv", [["--reuse", "bogus", "a.mp4", "b.mp4"], ["a.mp4"], ["batch", "x.mp4"],
                                  ["preview", "--bogus", "x.mp4"], ["models", "--nope"], ["engine", "build", "--nope"],
                                  ["demo", "--nope"], ["train", "--nope"], ["blend", "--nope"]])
def test_a_bad_command_line_is_one_line_and_exit_2(argv, capsys):
    """argparse's errors, in every face: the one line (naming the problem and where the options are listed), not the
    usage block before it."""
    from esrgan_video.cli.main import main

    try:
        status = main(argv)
    except SystemExit as e:
        status = e.code
    assert status == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("esrgan-video") and ": error: " in err and "-h lists the options" in err


# The process's command with a slow atexit callback of its own, announcing itself: a signal sent then lands
# deterministically in the atexit phase, after the command's status is final. Registered after the CLI's import,
# it runs before the CLI's own callback (last in, first out), as torch's and the weakref finalizers' do (those take
# ~10 ms in all after a tiny run, measured: too short a window to hit on purpose).
SLOW_EXIT = """import atexit, sys, time
from esrgan_video.cli.main import main
def slow():
    print("atexit phase", file=sys.stderr, flush=True)
    time.sleep(2)
atexit.register(slow)
sys.exit(main())
"""


def _signalled(args: list[str], sigs: list[int], *, after: str, slow_exit: bool = True,
               module: str | None = None) -> tuple[int, str, float]:
    """Runs ``esrgan-video ARGS`` (with :data:`SLOW_EXIT`'s callback, or plainly), sends ``sigs`` 0.1 s apart once
    a stderr line contains ``after``; returns the status, stderr and the seconds from the first signal to exit.
    ``module``: run as ``python -m MODULE ARGS`` instead (its ``__main__``)."""
    code = SLOW_EXIT if slow_exit else "import sys; from esrgan_video.cli.main import main; sys.exit(main())"
    if module is not None:
        code = code.replace("sys.exit(main())",
                            f"import runpy; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"),
                            preexec_fn=media.default_signals)
    before = []
    for line in proc.stderr:
        before.append(line)
        if after in line:
            break
    start = time.monotonic()
    for sig in sigs:
        proc.send_signal(sig)
        time.sleep(0.1)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, "".join(before) + err, time.monotonic() - start


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["Ctrl-C", "SIGTERM", "SIGHUP"])
def test_a_signal_in_an_atexit_callback_leaves_the_commands_status_and_no_traceback(sig):
    # the command is done (models: listed); without quiet_shutdown Ctrl-C printed "Exception ignored in atexit
    # callback ... KeyboardInterrupt" with a traceback, and SIGTERM / SIGHUP killed the finished process
    status, err, _ = _signalled(["models"], [sig], after="atexit phase")
    assert status == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err and "interrupted" not in err, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_python_m_cli_batch_shuts_down_as_quietly_as_esrgan_video_batch(tmp_path, sig):
    """``python -m esrgan_video.cli.batch`` is ``esrgan-video batch``: its status (here 3, no inputs found) is final
    before Python shuts down, so a signal then leaves it and prints nothing (its own ``__main__`` skipped
    ``quiet_shutdown``: Ctrl-C printed "Exception ignored in atexit callback", SIGTERM killed it, status -15)."""
    args = [str(tmp_path / "none" / "*.mkv"), "-o", str(tmp_path / "out")]
    status, err, _ = _signalled(args, [sig], after="atexit phase", module="esrgan_video.cli.batch")
    assert status == 3, err
    assert "Traceback" not in err and "Exception ignored" not in err and "interrupted" not in err, err
    assert err.splitlines()[0].startswith("esrgan-video: error: ") and "matches no file" in err, err


def test_a_second_signal_in_a_slow_shutdown_exits_at_once_with_the_status():
    status, err, took = _signalled(["models"], [signal.SIGINT, signal.SIGINT], after="atexit phase")
    assert status == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert took < 1.5  # did not wait for the 2 s callback


def test_ctrl_c_just_after_an_upscale_wrote_its_output_keeps_it_and_exits_0(tmp_path, tiny_model):
    # The real window (no test callback): after "wrote", Python frees the run and shuts down (~0.4 s with torch):
    # weakref finalizers in atexit (a traceback, status 0), then C-level teardown where Python has put SIGINT back
    # to its default (killed: 130 for work that was done); before the status was known, "no output was written".
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=2)
    dst = tmp_path / "out.mp4"
    status, err, _ = _signalled([str(src), str(dst), "--model", str(tiny_model)], [signal.SIGINT, signal.SIGINT],
                                after="esrgan-video: wrote", slow_exit=False)
    assert status == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err and "interrupted" not in err, err
    assert dst.stat().st_size > 0 and sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


@pytest.mark.parametrize("sig,status,said", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")],
                         ids=["Ctrl-C", "SIGTERM"])
def test_a_signal_that_lands_in_a_weakref_callback_still_stops_the_run(tmp_path, tiny_model, capfd, monkeypatch,
                                                                       sig, status, said):
    """A signal whose handler runs inside a weakref callback or a finalizer (importlib's module locks take one on
    every import: Ctrl-C at startup landed there about one time in five) raised where Python prints "Exception
    ignored in ..." with a traceback and drops the exception: the run went on, wrote its output and exited 0. Here the
    signal arrives inside such a callback in the middle of the run: it stops the run as anywhere else."""
    import threading
    import weakref

    import importlib

    cli_main = importlib.import_module("esrgan_video.cli.main")  # the package exports the function main
    from esrgan_video.testing import run_cli

    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=3)
    dst = tmp_path / "out.mp4"
    landed = []

    def callback(_ref) -> None:
        assert threading.current_thread() is threading.main_thread()
        landed.append(sig)
        signal.raise_signal(sig)  # its handler runs here, inside the callback

    class Thing:
        pass

    report = cli_main._ProgressReporter.__call__

    def reporting(self, p) -> None:
        if not landed:
            thing = Thing()
            ref = weakref.ref(thing, callback)  # noqa: F841 - the callback runs when thing goes
            del thing
            time.sleep(2)  # the run goes on: the signal, sent again (cli.signals.REDELIVER_DELAY), ends it here
        report(self, p)

    monkeypatch.setattr(cli_main._ProgressReporter, "__call__", reporting)
    # Python's own Ctrl-C handler, as in a terminal: a suite started in the background (`make test &`, nohup)
    # inherits SIGINT ignored, which the command rightly leaves ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        p = run_cli(capfd, src, dst, "--model", tiny_model, "--progress", "json")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert landed and p.returncode == status, p.stderr
    assert f"interrupted ({said})" in p.stderr and "Traceback" not in p.stderr and "Exception ignored" not in p.stderr
    assert sorted(q.name for q in tmp_path.iterdir()) == ["in.mp4"]
