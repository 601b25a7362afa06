"""The local scheduler's result pipes: a worker SIGKILLed while it writes a message larger than the pipe's buffer
leaves half a message behind; the driver takes that for the worker's death and the file is redone by a new worker
(the whole batch is exercised in ``test_batch_run.py``)."""

from __future__ import annotations

import array
import fcntl
import multiprocessing as mp
import os
import signal
import termios
import threading
import time
from collections import deque
from pathlib import Path

import pytest

from esrgan_video.batch.scheduler import LocalScheduler, _Worker
from esrgan_video.batch.worker import Task, WorkerSettings
from esrgan_video.options import UpscaleOptions
from media import make_clip, read_frames

BIG = 4 << 20  # far over a pipe's buffer (64 KiB on Linux): written in pieces, the writer waiting for the reader


def _sends_then_a_big_one(conn) -> None:
    conn.send(("hb", 0, None, None))
    conn.send(("progress", 0, "whole", {"frame": 1, "total": 4, "blob": b"x" * BIG}))


def _queued_bytes(conn) -> int:
    n = array.array("i", [0])
    fcntl.ioctl(conn.fileno(), termios.FIONREAD, n)
    return n[0]


@pytest.fixture
def settings(near_identity_file) -> WorkerSettings:
    """A worker's settings: the session's tiny x2 model (conftest), FFV1 out, one thread."""
    return WorkerSettings(options=UpscaleOptions.from_kwargs(model=str(near_identity_file(2)), codec="ffv1"),
                          threads=1)


class Plan:
    """One task, already handed to the half-writing worker; a lost task goes back to be redone."""

    def __init__(self, task: Task) -> None:
        self.queue: deque[Task] = deque()
        self.running = {task.key}
        self.lost_why: list[str] = []
        self.results: dict[str, dict] = {}

    def next_task(self):
        if not self.queue:
            return None
        t = self.queue.popleft()
        self.running.add(t.key)
        return t

    def finished(self) -> bool:
        return not self.queue and not self.running

    def started(self, task, owner) -> None: ...
    def heartbeat(self, task, owner) -> None: ...
    def progress(self, task, info) -> None: ...

    def done(self, task, result) -> None:
        self.running.discard(task.key)
        self.results[task.key] = result

    def failed(self, task, error) -> None:
        raise AssertionError(f"{task.key} failed: {error}")

    no_space = failed

    def lost(self, task, why) -> None:
        self.running.discard(task.key)
        self.lost_why.append(why)
        self.queue.append(task)


def _stand_in_inside_a_big_message(target):
    """A forked stand-in worker running ``target(writer)`` (it only writes to its pipe), once more than 32 KiB of
    its messages wait on the pipe: it is then blocked inside a message larger than the pipe's buffer."""
    ctx = mp.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(writer,), daemon=True)
    proc.start()
    writer.close()
    deadline = time.monotonic() + 30
    while _queued_bytes(reader) < 32 << 10:
        assert time.monotonic() < deadline, "the stand-in worker never filled its pipe"
        time.sleep(0.01)
    return ctx, reader, proc


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # the child only writes
@pytest.mark.skipif(not hasattr(termios, "FIONREAD"), reason="needs FIONREAD to see the pipe fill")
def test_a_worker_killed_mid_message_is_taken_for_dead_and_its_file_redone(tmp_path: Path,
                                                                          settings: WorkerSettings) -> None:
    src = make_clip(tmp_path / "in.mkv", codec="ffv1", size=(64, 48), frames=4)
    out = tmp_path / "out"
    out.mkdir()
    task = Task(key="whole", kind="whole", job_key="clip", src=str(src), dst=str(out / "clip.mkv"))

    # the big message cannot be written whole until the driver reads: once more than the first message's bytes
    # are queued, the writer is blocked inside the big one; killing it now leaves half a message on the pipe
    ctx, reader, proc = _stand_in_inside_a_big_message(_sends_then_a_big_one)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL

    sched = LocalScheduler(["cpu"], settings, log=lambda m: None)
    now = time.monotonic()
    sched.workers = [_Worker(0, "cpu", proc, ctx.Queue(), reader, task=task, last_seen=now, last_journal_beat=now)]
    sched._next_wid = 1
    plan = Plan(task)
    started = time.monotonic()
    try:
        sched._loop(plan)
    finally:
        sched._shutdown()
    assert len(plan.lost_why) == 1 and "worker 0 (cpu) died" in plan.lost_why[0], plan.lost_why
    assert "cut short" in plan.lost_why[0], plan.lost_why
    assert plan.results["whole"]["frames"] == 4  # redone by the worker that replaced it
    assert len(read_frames(out / "clip.mkv")[0]) == 4
    assert time.monotonic() - started < 120  # not after a stale timeout (300 s)


def _worker_after_its_driver(settings: WorkerSettings) -> None:
    """A stand-in "driver" (this process) starts a worker and is SIGKILLed before the worker reaches its start:
    the worker waits until it is another process's child, then runs ``_worker_main`` as a late-starting worker."""
    import multiprocessing as mp  # noqa: F811 - in the forked child
    from esrgan_video.batch.scheduler import _worker_main

    ctx = mp.get_context("fork")
    tasks = ctx.Queue()
    _, sender = ctx.Pipe(duplex=False)
    me = os.getpid()

    def late() -> None:
        while os.getppid() == me:
            time.sleep(0.01)
        _worker_main(0, "cpu", settings, tasks, sender, 0.2, me)

    ctx.Process(target=late).start()
    time.sleep(120)  # killed by the test


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_worker_whose_driver_died_while_it_started_exits(settings: WorkerSettings) -> None:
    """The driver killed (SIGKILL) while its worker still starts (imports: seconds under load), before the worker
    asked for its death signal: the worker, now another process's child, exits instead of waiting for a task for
    ever (the 30 s wait for the workers to die with their driver in test_batch_run.py flaked on this)."""
    ctx = mp.get_context("fork")
    driver = ctx.Process(target=_worker_after_its_driver, args=(settings,))
    driver.start()
    deadline = time.monotonic() + 30
    while not (kids := Path(f"/proc/{driver.pid}/task/{driver.pid}/children").read_text().split()):
        assert time.monotonic() < deadline, "the stand-in driver started no worker"
        time.sleep(0.01)
    worker = int(kids[0])
    driver.kill()
    driver.join(30)
    deadline = time.monotonic() + 30
    while not _gone(worker):
        if time.monotonic() > deadline:
            os.kill(worker, signal.SIGKILL)
            raise AssertionError("the orphaned worker kept running")
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has exited
    except FileNotFoundError:
        return True


def test_the_inbox_cuts_a_pipe_s_bytes_into_its_messages() -> None:
    """``_Inbox`` reads multiprocessing's wire format, fed in pieces as a non-blocking read gives them: a message
    is kept until its last byte arrives, the 8-byte length of a message over 2 GiB is understood, and what is left
    of a message cut short is counted (the driver takes that for the worker's death)."""
    from multiprocessing.reduction import ForkingPickler

    from esrgan_video.batch.scheduler import _Inbox

    reader, writer = mp.Pipe(duplex=False)
    messages = [("hb", 0, None, None), ("progress", 0, "k", {"blob": b"y" * 70000}), ("done", 0, "k", {"frames": 4})]

    def send() -> None:  # from a thread: the big message fills the pipe until it is read
        for m in messages:
            writer.send(m)
        writer.close()

    sender = threading.Thread(target=send)
    sender.start()
    wire = b""
    while chunk := os.read(reader.fileno(), 1000):
        wire += chunk
    sender.join()
    inbox, got = _Inbox(), []
    for i in range(0, len(wire), 777):  # pieces that cut headers and pickles alike
        got += [ForkingPickler.loads(m) for m in inbox.feed(wire[i:i + 777])]
    assert got == messages and len(inbox) == 0
    assert inbox.feed(wire[:10]) == [] and len(inbox) == 10  # half a header, then part of a pickle: kept
    long_form = b"\xff\xff\xff\xff" + (3).to_bytes(8, "big") + b"abc"
    assert _Inbox().feed(long_form) == [b"abc"] and _Inbox().feed(long_form[:11]) == []
    with pytest.raises(ValueError):
        _Inbox().feed(b"\xff\xff\xff\xfe")


def _sleeps() -> None:
    time.sleep(120)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_worker_is_killed_and_reaped_by_one_method() -> None:
    """``_Worker.kill``: SIGKILL if alive (a stopped process too), then reaped; on a dead worker, nothing."""
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=_sleeps, daemon=True)
    proc.start()
    os.kill(proc.pid, signal.SIGSTOP)
    reader, writer = ctx.Pipe(duplex=False)
    w = _Worker(0, "cpu", proc, None, reader)
    w.kill()
    assert proc.exitcode == -signal.SIGKILL
    w.kill()  # already dead and reaped: nothing to do
    assert proc.exitcode == -signal.SIGKILL
    writer.close()
    reader.close()


def _sends_a_big_one_and_waits(conn) -> None:
    conn.send(("hb", 0, None, None))
    conn.send(("progress", 0, "stopped", {"frame": 1, "total": 4, "blob": b"x" * BIG}))


class TwoTasks(Plan):
    """A task handed to the stopped stand-in, and one in the queue for the real worker; the lost one is not redone
    (the test is about the other worker being served meanwhile). Once the other file is done, ``then`` runs."""

    def __init__(self, stuck: Task, other: Task, then) -> None:
        super().__init__(stuck)
        self.queue.append(other)
        self.then = then
        self.done_at: dict[str, float] = {}
        self.lost_at: list[float] = []

    def done(self, task, result) -> None:
        super().done(task, result)
        self.done_at[task.key] = time.monotonic()
        self.then()

    def lost(self, task, why) -> None:
        self.running.discard(task.key)
        self.lost_why.append(why)
        self.lost_at.append(time.monotonic())


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.skipif(not hasattr(termios, "FIONREAD"), reason="needs FIONREAD to see the pipe fill")
def test_a_worker_stopped_mid_message_does_not_freeze_the_others(tmp_path: Path, settings: WorkerSettings) -> None:
    """A worker SIGSTOPped while it writes a message larger than the pipe's buffer leaves half of it on its pipe.
    The driver reads no pipe with a blocking read, so it goes on serving the other worker (its file is done while
    the stopped one still holds its half message), and kills the stopped one once it has been silent for
    ``stale_s``. A blocking ``recv`` waited for the rest of the message for ever (a watchdog here kills the stopped
    worker after 90 s, which lets such a driver go on: the other file is then done only after it).
    ``stale_s`` stays 20 s, so the real worker is never taken for stale while it starts (imports torch) on a busy
    machine; the stopped one's silence is the test's to say: once the other file is done, its last heartbeat is
    made ``stale_s`` old (rather than waiting those 20 s)."""
    src = make_clip(tmp_path / "in.mkv", codec="ffv1", size=(64, 48), frames=4)
    out = tmp_path / "out"
    out.mkdir()
    stuck = Task(key="stopped", kind="whole", job_key="a", src=str(src), dst=str(out / "a.mkv"))
    other = Task(key="other", kind="whole", job_key="b", src=str(src), dst=str(out / "b.mkv"))

    ctx, reader, proc = _stand_in_inside_a_big_message(_sends_a_big_one_and_waits)
    os.kill(proc.pid, signal.SIGSTOP)

    sched = LocalScheduler(["cpu"], settings, heartbeat_s=1.0, stale_s=20.0, log=lambda m: None)
    now = time.monotonic()
    stopped = _Worker(0, "cpu", proc, ctx.Queue(), reader, task=stuck, last_seen=now, last_journal_beat=now)
    sched.workers = [stopped, sched._spawn("cpu")]

    def silent_for_stale_s() -> None:
        stopped.last_seen = time.monotonic() - sched.stale_s - 1

    plan = TwoTasks(stuck, other, then=silent_for_stale_s)
    watchdog_fired = []

    def watchdog() -> None:
        if proc.is_alive():
            watchdog_fired.append(time.monotonic())
            os.kill(proc.pid, signal.SIGKILL)

    timer = threading.Timer(90, watchdog)
    timer.start()
    try:
        sched._loop(plan)
    finally:
        timer.cancel()
        sched._shutdown()
    assert not watchdog_fired, "the driver was blocked on the stopped worker's half message"
    assert plan.results["other"]["frames"] == 4 and len(read_frames(out / "b.mkv")[0]) == 4
    assert len(plan.lost_why) == 1 and "worker 0 (cpu) stopped responding" in plan.lost_why[0], plan.lost_why
    assert plan.done_at["other"] <= plan.lost_at[0]  # served while the stopped one still held its half message
    assert proc.exitcode == -signal.SIGKILL


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_the_messages_before_an_unreadable_one_are_handled() -> None:
    """A message that cannot be unpickled marks its worker broken (and kills it); those it sent before it, read in
    the same pass, still reach the plan (a finished file is done, not lost and redone), as ``recv`` one by one gave
    them."""
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=_sleeps, daemon=True)
    proc.start()
    reader, writer = ctx.Pipe(duplex=False)
    writer.send(("done", 0, "k", {"frames": 4}))
    writer.send_bytes(b"not a pickle")
    sched = LocalScheduler(["cpu"], WorkerSettings(options=UpscaleOptions()), log=lambda m: None)
    sched.workers = [_Worker(0, "cpu", proc, None, reader)]
    try:
        assert sched._messages(5.0) == [("done", 0, "k", {"frames": 4})]
        assert sched.workers[0].broken == "its last message was unreadable: UnpicklingError"
        assert proc.exitcode == -signal.SIGKILL
    finally:
        writer.close()
        sched.workers[0].kill()
