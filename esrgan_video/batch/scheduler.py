"""Schedulers: hand tasks to workers and report what happened to the driver's plan.

- ``LocalScheduler``: one worker process per device, each forked from a fork server that imported torch and the
  worker's code once (:func:`worker_context`; ``spawn`` where there is no ``forkserver``): CUDA starts clean in each,
  and a worker starts in a fraction of a second instead of importing torch again. Each worker takes one task at a
  time from its own queue and reports on its own one-way pipe (a worker killed
  while sending on a shared queue would hold its write lock for good, every other worker's next message waiting
  for it). The driver holds only the pipe's read end, so a worker's death closes it: a message cut short by the
  kill (one larger than the pipe's buffer is written in pieces) reads as end of file, and that worker is taken
  for dead at once. The driver reads every pipe without blocking (:class:`_Inbox`: whatever bytes are there, whole
  messages taken out as they complete), so a worker stopped in the middle of a message (SIGSTOP, a debugger) holds
  up only itself: the others are served, and it is killed once it has been silent for ``stale_s``. A background
  thread in the worker sends heartbeats. A worker that exits (crash, SIGKILL, out of memory)
  or stops sending heartbeats for ``stale_s`` seconds is killed and replaced, and its task goes back to
  the plan (``lost``), which redoes it or, after ``max_attempts``, marks it failed.
- ``RayScheduler``: the same tasks on long-lived Ray actors (``RayWorker``: one per GPU when the cluster has GPUs,
  else one per CPU), each holding its Upscaler for the whole batch; Ray restarts actors whose worker or node died
  and retries their task. Paths must be on storage every node sees.

The plan interface (``esrgan_video.batch.driver.Plan``): ``next_task()``, ``started(task, owner)``,
``heartbeat(task, owner)``, ``done(task, result)``, ``failed(task, error)``, ``lost(task, why)``,
``finished()``. Only the driver process calls it, so only the driver writes the journal.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import struct
import threading
import time
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass, field
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable, Mapping, Protocol

from .journal import owner_name
from ..video.partials import remove_partials
from .worker import (WORKER_PROCESS_NAME, Task, WorkerSettings, apply_threads, execute_task, one_line,
                     out_of_space)


class PlanLike(Protocol):
    def next_task(self) -> Task | None: ...
    def started(self, task: Task, owner: str) -> None: ...
    def heartbeat(self, task: Task, owner: str) -> None: ...
    def progress(self, task: Task, info: dict[str, Any]) -> None: ...
    def done(self, task: Task, result: dict[str, Any]) -> None: ...
    def failed(self, task: Task, error: str) -> None: ...
    def no_space(self, task: Task, error: str) -> None: ...
    def lost(self, task: Task, why: str) -> None: ...
    def finished(self) -> bool: ...


# local worker processes ----------------------------------------------------------------------------

FORKSERVER_PRELOAD = "esrgan_video.batch._forkserver"
"""The module the fork server imports before it forks any worker (torch, the pipeline, the worker's code)."""

LOAD_TIME_ENV = ("OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "LD_", "MALLOC_", "PYTHON", "TORCH", "PYTORCH_")
"""Environment variables (by prefix) read when the interpreter, torch or its libraries are loaded, not when a worker
asks: libgomp reads ``OMP_NUM_THREADS`` as torch is imported (measured: set after the import, it changes nothing),
the dynamic loader ``LD_LIBRARY_PATH`` at the process's start, torch ``TORCH_LOGS`` at its import. A fork of the
server keeps what the server read, so a run whose values differ from the server's starts its workers by ``spawn``.
The others (``ESRGAN_VIDEO_CACHE``, ``CUDA_VISIBLE_DEVICES``: CUDA starts in the worker) reach forked workers:
each takes the driver's environment first (``_worker_main``'s ``env``)."""

_server_env: dict[str, str] | None = None
"""The :data:`LOAD_TIME_ENV` variables of this process when it started the fork server (None: not started)."""
_server_failed = False
"""The fork server could not start here (its socket: see :func:`worker_context`): workers are spawned."""
_server_lock = threading.Lock()


def load_time_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that :data:`LOAD_TIME_ENV` names (pure)."""
    return {k: v for k, v in env.items() if k.startswith(LOAD_TIME_ENV)}


def worker_context() -> Any:
    """The ``multiprocessing`` context local workers start in: ``forkserver``, its server started here the first
    time (in this process: later batches, and replacements of dead workers, fork from the same server), preloading
    :data:`FORKSERVER_PRELOAD`; ``spawn`` where there is no ``forkserver`` (not Linux or macOS), where its server
    cannot start (its socket's path, in the temporary folder, too long for a Unix socket), and for a run whose
    :func:`load_time_env` is not the one the server started with. Either way a worker starts clean: the server never
    initialised CUDA or ran a torch operation, and ``multiprocessing`` hands each process the driver's ``sys.path``,
    working directory and main module, as ``spawn`` does. The server's own main module is not imported (the
    preload list replaces ``multiprocessing``'s default ``["__main__"]``): a script's unguarded ``run_batch``
    would run in it, and each worker imports the script itself
    (:func:`~esrgan_video.batch.driver.refuse_unguarded_main`).
    A server another part of the program started first is used as it is (the preload is then its own)."""
    global _server_env, _server_failed
    forkserver = "forkserver" in mp.get_all_start_methods() and not _server_failed
    now = load_time_env(os.environ)
    with _server_lock, _group_signals_blocked():
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
        if not forkserver or (_server_env is not None and now != _server_env):
            return mp.get_context("spawn")
        ctx = mp.get_context("forkserver")
        if _server_env is None:
            import multiprocessing.forkserver

            ctx.set_forkserver_preload([FORKSERVER_PRELOAD])
            try:
                multiprocessing.forkserver.ensure_running()  # now, with this environment: the one recorded
            except OSError:  # its Unix socket cannot be made: a temporary folder whose path is longer than
                _server_failed = True  # AF_UNIX's 107 bytes ("AF_UNIX path too long"), or none is writable
                return mp.get_context("spawn")
            _server_env = now
    return ctx


_GROUP_SIGNALS = {signal.SIGHUP, signal.SIGTERM}


@contextmanager
def _group_signals_blocked():
    """SIGHUP and SIGTERM blocked in this thread while the helper processes start (the fork server,
    ``multiprocessing``'s resource tracker), so that they are born with both blocked, as the tracker does itself for
    SIGINT and SIGTERM: a closed terminal's hang-up or a ``kill`` of the whole process group reaches the driver,
    which stops its workers (they remove their temporary files). A tracker killed by a hang-up was started again by
    the driver and printed a ``KeyError`` traceback for each queue it had not seen made (spawned workers had that
    too); a server killed by one would take its workers with it (their death signal) in the middle of their cleanup.
    Both still end once the driver and its workers are gone (the pipes they hold). Workers unblock both first thing
    (``_worker_main``)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _GROUP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this worker when its parent dies: the driver for a spawned worker, the fork
    server for a forked one (whose driver :func:`_watch_driver` watches)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _watch_driver(driver: int) -> Callable[[], bool]:
    """Exit (``os._exit(1)``) as soon as the driver (pid ``driver``) is gone, from a thread of its own; returns
    whether the driver is still there. A forked worker is the fork server's child, not the driver's, so its death
    signal (:func:`_die_with_parent`) is for the server's end, which outlives the driver while its workers run: the
    driver is watched through ``multiprocessing``'s parent sentinel instead, a pipe whose only write end the driver
    holds (it reads as ended when the driver dies, however). A worker started otherwise (no such parent) goes by
    its parent's pid: a driver that died before the death signal was asked for (the worker was still starting:
    under load, seconds) leaves it another process's child."""
    parent = mp.parent_process()
    if parent is None or parent.pid != driver:
        return lambda: os.getppid() == driver
    sentinel = parent.sentinel

    def alive() -> bool:
        return not multiprocessing.connection.wait([sentinel], timeout=0)

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(1)  # its successor redoes the task; the next run removes the temporary file (its pid is gone)

    threading.Thread(target=watch, name="esrgan-driver-watch", daemon=True).start()
    return alive


class StdStreams:
    """The driver's standard output and error (file descriptors 1 and 2) as its workers get them. A forked worker
    is the fork server's child and has the server's descriptors, those the driver had when the server started: a
    driver whose stderr went elsewhere since (a later test's capture, a Python caller's redirect) had the workers'
    FFmpeg lines (``--verbose``), x265's and the encoders' C-level output written to the old place. Pickled to a
    worker, each descriptor is passed as ``multiprocessing`` passes a pipe's (``reduction.DupFd``: the fork
    server's ``SCM_RIGHTS``, spawn's inherited descriptor); :meth:`adopt` puts them at 1 and 2. A descriptor the
    driver does not have open is left as the worker has it."""

    def __init__(self, fds: tuple[int, ...] = (1, 2)) -> None:
        self.fds = tuple(fd for fd in fds if _is_open(fd))
        self._passed: tuple[tuple[int, Any], ...] = ()

    def __reduce__(self):
        from multiprocessing.reduction import DupFd

        return (_passed_streams, (tuple((fd, DupFd(fd)) for fd in self.fds),))

    def adopt(self) -> None:
        """In the worker: the driver's descriptors at their numbers."""
        for fd, passed in self._passed:
            got = passed.detach()
            if got != fd:
                os.dup2(got, fd)
                os.close(got)


def _passed_streams(passed: tuple[tuple[int, Any], ...]) -> StdStreams:
    streams = StdStreams(())
    streams._passed = passed
    return streams


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _worker_main(wid: int, device: str | None, settings: WorkerSettings, tasks: Any, results: Any,
                 heartbeat_s: float, driver: int, env: dict[str, str] | None = None,
                 streams: StdStreams | None = None) -> None:
    """Entry point of a worker process; ``driver``: the pid of the driver that started it; ``env``: the driver's
    environment when it started this worker, which a forked worker takes for its own first (it was forked with the
    fork server's, from when the server started; see :func:`worker_context` for what was read before)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the driver decides
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # so does a closed terminal's hang-up

    def on_term(signum, frame):  # unwind so the writer removes its temporary file
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _GROUP_SIGNALS)  # a forked worker has the server's mask
    if env is not None and env != os.environ:
        os.environ.clear()
        os.environ.update(env)
    if streams is not None:
        streams.adopt()
    _die_with_parent()
    driver_alive = _watch_driver(driver)
    if not driver_alive():  # gone before the watch began: no one would ever send this worker a task
        os._exit(1)
    stop = threading.Event()
    sending = threading.Lock()  # the heartbeat thread and this one share the pipe: one whole message at a time

    def send(message: tuple[str, int, str | None, Any]) -> None:
        with sending:
            results.send(message)

    def beat() -> None:
        while not stop.wait(heartbeat_s):
            if not driver_alive():  # the driver died: its successor will redo this task
                os._exit(1)
            send(("hb", wid, None, None))

    threading.Thread(target=beat, name="esrgan-heartbeat", daemon=True).start()
    send(("hb", wid, None, None))
    apply_threads(settings.threads)
    try:
        while True:
            task = tasks.get()
            if task is None:
                return
            def report(info: dict[str, Any], key: str = task.key) -> None:
                send(("progress", wid, key, info))

            try:
                res = execute_task(task, settings, device, progress=report)
            except Exception as e:  # noqa: BLE001 - reported to the driver as this task's one-line error
                send(("nospace" if out_of_space(e) else "failed", wid, task.key, one_line(e)))
            else:
                send(("done", wid, task.key, res))
    finally:
        stop.set()


class _Inbox:
    """The bytes read so far from one worker's pipe, cut into its messages (pure). A ``Connection.send`` message is
    a 4-byte big-endian signed length (``-1``: an 8-byte unsigned length follows) and that many bytes of pickle —
    ``multiprocessing.connection``'s wire format, kept for compatibility with Python 3.7 and lower. The driver
    feeds whatever a non-blocking read gave, so a message whose writer stopped halfway stays here, unread, and
    holds up no one."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def __len__(self) -> int:
        """Bytes of a message not yet complete."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the messages (their pickles) it completed, in order."""
        self._buf += data
        out = []
        while len(self._buf) >= 4:
            (size,) = struct.unpack_from("!i", self._buf)
            head = 4
            if size == -1:
                if len(self._buf) < 12:
                    break
                (size,) = struct.unpack_from("!Q", self._buf, 4)
                head = 12
            elif size < 0:
                raise ValueError(f"a message header of {size} bytes")
            if len(self._buf) < head + size:
                break
            out.append(bytes(self._buf[head:head + size]))
            del self._buf[:head + size]
        return out


@dataclass
class _Worker:
    wid: int
    device: str | None
    proc: Any
    tasks: Any
    results: Any
    """The read end of this worker's result pipe (its own: see the module docstring); read without blocking."""
    task: Task | None = None
    broken: str | None = None
    """Set when its pipe ended (``""``) or held a message cut short (what was wrong): the worker is dead (or as
    good as), whatever ``proc.is_alive()`` says yet."""
    last_seen: float = 0.0
    last_journal_beat: float = 0.0
    inbox: _Inbox = field(default_factory=_Inbox)
    """What has arrived of its next message."""

    def __post_init__(self) -> None:
        os.set_blocking(self.results.fileno(), False)  # a half-sent message must not block the driver

    @property
    def owner(self) -> str:
        return f"{owner_name('driver')}/worker-{self.wid}:pid{self.proc.pid}@{self.device or 'auto'}"

    def kill(self) -> None:
        """SIGKILL the process if it still runs (also a stopped one), and reap it (waiting up to 5 s)."""
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)

    def read(self, limit: int = 64 << 20) -> tuple[list[bytes], bool]:
        """The messages (their pickles) that have arrived whole (up to about ``limit`` bytes read, so one chatty
        worker cannot starve the others), and whether the pipe ended (the worker closed it: exiting, or killed).
        Never waits. Raises what reading the pipe or cutting its bytes into messages raises."""
        got: list[bytes] = []
        fd = self.results.fileno()
        read = 0
        while read < limit:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                return got, False
            if not chunk:
                return got, True
            read += len(chunk)
            got.extend(self.inbox.feed(chunk))
        return got, False


@dataclass
class LocalScheduler:
    """One worker process per entry of ``devices`` (``"cpu"``, ``"cuda:0"``, ...)."""

    devices: list[str | None]
    settings: WorkerSettings
    _: KW_ONLY
    heartbeat_s: float = 5.0
    """Seconds between a worker's heartbeats."""
    stale_s: float = 300.0
    """A worker silent this long is killed and replaced (its task goes back to the plan)."""
    journal_beat_s: float = 60.0
    """Seconds between the journal records of a running task's heartbeat."""
    max_restarts: int = 8
    """Deaths in a row of one device's worker that are replaced; one more stops the batch."""
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        if not self.devices:
            raise ValueError("devices: expected at least one")
        self._ctx = worker_context()
        self._next_wid = 0
        self.workers: list[_Worker] = []

    def _spawn(self, device: str | None) -> _Worker:
        tasks = self._ctx.Queue()
        results, sender = self._ctx.Pipe(duplex=False)
        wid = self._next_wid
        self._next_wid += 1
        proc = self._ctx.Process(
            target=_worker_main,
            args=(wid, device, self.settings, tasks, sender, self.heartbeat_s, os.getpid(), dict(os.environ),
                  StdStreams()),
            name=f"{WORKER_PROCESS_NAME}{wid}", daemon=True)
        proc.start()
        sender.close()  # only the worker holds the write end: its death ends the pipe
        now = time.monotonic()
        return _Worker(wid, device, proc, tasks, results, last_seen=now, last_journal_beat=now)

    def _messages(self, timeout: float) -> list[tuple[str, int, str | None, Any]]:
        """What the workers have sent, waiting up to ``timeout`` seconds for the first; each worker's messages in
        the order it sent them. No read waits: a worker that stopped halfway through a message (SIGSTOP) leaves it
        in its :class:`_Inbox`, and the stale check deals with it. A pipe that ended, or whose next message is cut
        short or cannot be read, marks its worker ``broken`` (killed here if it still runs), which the liveness
        check takes for its death."""
        readers = {w.results: w for w in self.workers if w.broken is None}
        got = []
        for r in multiprocessing.connection.wait(list(readers), timeout=timeout):
            w = readers[r]
            try:
                pickles, ended = w.read()
                for p in pickles:  # one by one: those before an unreadable one are handled
                    got.append(ForkingPickler.loads(p))
            except Exception as e:  # noqa: BLE001 - OSError, UnpicklingError, a bad header ...
                self._broken(w, f"its last message was unreadable: {type(e).__name__}", wait=False)
                continue
            if ended and len(w.inbox):  # the kill cut a message short (a large one is written in pieces)
                self._broken(w, "its last message was cut short", wait=False)
            elif ended:  # the worker closed its end between messages: it is exiting
                self._broken(w, "", wait=True)
        return got

    @staticmethod
    def _broken(w: _Worker, why: str, *, wait: bool) -> None:
        """Take ``w`` for dead: it sends nothing more that could be read."""
        w.broken = why
        w.results.close()
        if wait:
            w.proc.join(5)
        w.kill()

    def run(self, plan: PlanLike) -> None:
        self.workers = [self._spawn(d) for d in self.devices]
        try:
            self._loop(plan)
        finally:
            self._shutdown()

    def _loop(self, plan: PlanLike) -> None:
        by_id = {w.wid: w for w in self.workers}
        deaths: dict[str | None, int] = {}  # consecutive worker deaths per device
        while not plan.finished():
            for w in self.workers:
                if w.task is None and w.proc.is_alive():
                    t = plan.next_task()
                    if t is None:
                        break
                    w.task = t
                    w.tasks.put(t)
                    plan.started(t, w.owner)
            if plan.finished():
                break
            if all(w.task is None and w.proc.is_alive() for w in self.workers):
                raise RuntimeError("batch scheduler: nothing running and nothing ready, but the plan is not finished")
            for kind, wid, key, payload in self._messages(0.5):  # all of them before judging liveness, so a
                self._handle(plan, by_id, kind, wid, key, payload, deaths)  # finished task is not taken for lost
            now = time.monotonic()
            for i, w in enumerate(list(self.workers)):
                dead = w.broken is not None or not w.proc.is_alive()
                stale = not dead and now - w.last_seen > self.stale_s
                if stale:
                    self.log(f"worker {w.wid} ({w.device}) sent no heartbeat for {self.stale_s:.0f} s; killing it")
                    w.kill()
                if dead or stale:
                    code = w.proc.exitcode
                    from .driver import UNGUARDED_MAIN_EXIT, UnguardedMainError, unguarded_main_message

                    if dead and code == UNGUARDED_MAIN_EXIT:  # its start ran the script's unguarded run_batch: so
                        raise UnguardedMainError(unguarded_main_message())  # would every worker's; stop, in one line
                    why = (f"worker {w.wid} ({w.device or 'auto'}) stopped responding" if stale
                           else f"worker {w.wid} ({w.device or 'auto'}) died (exit code {code}"
                                + (f"; {w.broken})" if w.broken else ")"))
                    by_id.pop(w.wid, None)  # late messages from it are ignored
                    w.results.close()
                    if w.task is not None:
                        task, w.task = w.task, None
                        remove_partials(task.dst, w.proc.pid)
                        plan.lost(task, why)
                    else:
                        self.log(why)
                    deaths[w.device] = deaths.get(w.device, 0) + 1
                    if deaths[w.device] > self.max_restarts:
                        from ..errors import BackendError

                        raise BackendError(f"device {w.device or 'auto'}: its worker died {deaths[w.device]} times in a row "
                                           f"(last exit code {code}); stopping the batch")
                    new = self._spawn(w.device)
                    self.workers[i] = new
                    by_id[new.wid] = new
                elif w.task is not None and now - w.last_journal_beat >= self.journal_beat_s:
                    w.last_journal_beat = now
                    plan.heartbeat(w.task, w.owner)

    def _handle(self, plan: PlanLike, by_id: dict[int, _Worker], kind: str, wid: int, key: str | None, payload: Any,
                deaths: dict[str | None, int]) -> None:
        w = by_id.get(wid)
        if w is None:
            return
        w.last_seen = time.monotonic()
        if kind == "hb" or w.task is None or w.task.key != key:
            return
        if kind == "progress":
            plan.progress(w.task, payload)
            return
        task, w.task = w.task, None
        deaths[w.device] = 0
        if kind == "done":
            plan.done(task, payload)
        elif kind == "nospace":  # the disk is full: the plan stops the batch (raises)
            plan.no_space(task, payload)
        else:
            plan.failed(task, payload)

    def _shutdown(self) -> None:
        """Idle workers get a stop message; busy ones (Ctrl-C) SIGTERM, so their writer cleans up."""
        for w in self.workers:
            if w.proc.is_alive():
                if w.task is None:
                    w.tasks.put(None)
                else:
                    w.proc.terminate()
        deadline = time.monotonic() + 20
        for w in self.workers:
            w.proc.join(max(0.1, deadline - time.monotonic()))
            w.kill()
            w.results.close()


# Ray ------------------------------------------------------------------------------------------------

class RayWorker:
    """The body of a Ray actor: one per GPU (or per ``cpus_per_worker`` CPUs), holding its Upscaler for the whole
    batch (the model is loaded and the backend built once, not per task), sent one task at a time.

    Progress goes to the driver through a Ray queue; results carry the actor's ``pid``; errors come back as
    ``{"error": ...}`` so the driver records one line."""

    def __init__(self, settings: WorkerSettings, threads: int | None) -> None:
        import ray

        self.settings = settings
        self.device = "cuda:0" if ray.get_gpu_ids() else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPU
        apply_threads(threads)

    def pid(self) -> int:
        return os.getpid()

    def run(self, task: Task, progress: Any) -> dict[str, Any]:
        """Run ``task``, putting ``(task.key, info)`` progress items on the Ray queue ``progress`` (given per call:
        an actor handle among the constructor's arguments would stop Ray from restarting the actor cleanly)."""
        from ray.util.queue import Full

        def report(info: dict[str, Any]) -> None:
            try:
                progress.put_nowait((task.key, info))
            except Full:  # the driver is behind: this progress line is dropped, the next one will do
                pass

        try:
            return {**execute_task(task, self.settings, self.device, progress=report), "pid": os.getpid()}
        except Exception as e:  # noqa: BLE001 - reported to the driver as this task's one-line error
            return {"error": one_line(e), **({"no_space": True} if out_of_space(e) else {})}


@dataclass
class RayScheduler:
    """Run tasks on a Ray cluster (``address``) or a local Ray instance (``address="local"``) through long-lived
    actors (:class:`RayWorker`): one per GPU when the cluster has GPUs, else one per ``cpus_per_worker`` CPUs (a
    local instance has ``num_cpus`` of them: ``--ray-cpus``). An actor that dies is restarted by Ray (up to
    ``max_retries`` times) and its task retried; on Ctrl-C the actors are killed and the temporary files of their
    unfinished tasks removed (the driver holds the journal's lock: no one else writes those targets)."""

    address: str
    """A Ray cluster's address, or ``"local"``."""
    settings: WorkerSettings
    _: KW_ONLY
    gpus_per_worker: float | None = None
    """GPUs per actor (None: 1 when the cluster has GPUs, else 0)."""
    cpus_per_worker: float = 1
    num_cpus: int | None = None
    """CPUs of a local instance (``--ray-cpus``)."""
    max_retries: int = 2
    """Restarts of a dead actor, and retries of its task."""
    log: Callable[[str], None] = print

    def _init(self, ray) -> bool:
        from ..errors import BackendError

        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        try:
            if self.address == "local":
                if self.num_cpus:
                    kwargs["num_cpus"] = self.num_cpus
                ray.init(**kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError ...
            raise BackendError(f"--ray {self.address}: cannot start or reach the Ray cluster ({one_line(e)})") from e
        return True

    def run(self, plan: PlanLike) -> None:
        try:
            import ray
        except ImportError as e:
            from ..errors import BackendError

            raise BackendError("--ray needs the ray package: pip install 'ray>=2.9'") from e
        started_here = self._init(ray)
        try:
            self._run(ray, plan)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray, plan: PlanLike) -> None:
        from ray.util.queue import Empty, Queue

        resources = ray.cluster_resources()
        gpus = self.gpus_per_worker
        if gpus is None:
            gpus = 1 if resources.get("GPU", 0) >= 1 else 0
        if gpus:
            count = int(resources.get("GPU", 0) // gpus)
            threads = self.settings.threads
        else:
            count = int(resources.get("CPU", 1) // max(self.cpus_per_worker, 1e-9))
            threads = self.settings.threads or max(1, int(self.cpus_per_worker))
        count = max(1, count)
        progress = Queue(maxsize=1000, actor_options={"num_cpus": 0})
        cls = ray.remote(RayWorker).options(num_gpus=gpus, num_cpus=self.cpus_per_worker,
                                            max_restarts=self.max_retries, max_task_retries=self.max_retries)
        actors = [cls.remote(self.settings, threads) for _ in range(count)]
        idle = list(actors)
        in_flight: dict[Any, tuple[Task, Any]] = {}
        by_key: dict[str, Task] = {}
        try:
            while not plan.finished():
                while idle:
                    t = plan.next_task()
                    if t is None:
                        break
                    actor = idle.pop()
                    ref = actor.run.remote(t, progress)
                    in_flight[ref] = (t, actor)
                    by_key[t.key] = t
                    plan.started(t, f"{owner_name('driver')}/ray-actor-{actors.index(actor)}")
                if not in_flight:
                    if plan.finished():
                        break
                    raise RuntimeError("batch scheduler: nothing running and nothing ready, but the plan is not finished")
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
                while True:
                    try:
                        key, info = progress.get_nowait()
                    except Empty:
                        break
                    if key in by_key:
                        plan.progress(by_key[key], info)
                for ref in ready:
                    t, actor = in_flight.pop(ref)
                    by_key.pop(t.key, None)
                    idle.append(actor)
                    try:
                        res = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        plan.failed(t, f"Ray: {one_line(e)[:300]}")
                        continue
                    if "error" not in res:
                        plan.done(t, res)
                    elif res.get("no_space"):  # the disk is full: the plan stops the batch
                        plan.no_space(t, res["error"])
                    else:
                        plan.failed(t, res["error"])
        finally:
            for a in [*actors, progress.actor]:
                ray.kill(a, no_restart=True)
            if in_flight:  # only after Ctrl-C or an error: the killed writers leave their temporary files
                _wait_gone(ray, [a for _, a in in_flight.values()])
                for t, _ in in_flight.values():
                    remove_partials(t.dst)


def _wait_gone(ray, actors: list, timeout: float = 10.0) -> None:
    """Wait until killed actors' processes have exited (so their temporary files are no longer written)."""
    deadline = time.monotonic() + timeout
    for a in actors:
        while time.monotonic() < deadline:
            try:
                ray.get(a.pid.remote(), timeout=0.5)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                break
            time.sleep(0.1)
