"""The Ray scheduler's long-lived actors on a local Ray instance: one actor process serves every task (its
Upscaler is built once), progress reaches the driver, and Ctrl-C kills the actors and removes their temporary
files. (``test_batch_run.py::test_ray_local_instance_runs_real_jobs`` runs a whole batch through Ray.)"""

from __future__ import annotations

import shutil
import tempfile
from collections import deque
from fractions import Fraction
from pathlib import Path

import pytest

from esrgan_video.batch.scheduler import RayScheduler
from esrgan_video.batch.worker import Task, WorkerSettings
from esrgan_video.options import UpscaleOptions
from esrgan_video.video.partials import partials_of
from media import make_clip
from esrgan_video.testing import save_near_identity

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    # Ray's session folder (logs, sockets) would stay in $TMPDIR/ray for good: one of its own, removed after (a short
    # path: Ray's socket paths live in it)
    temp = tempfile.mkdtemp(prefix="ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _temp_dir=temp)
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> WorkerSettings:
    path = tmp_path_factory.mktemp("model") / "tiny_x2.safetensors"
    save_near_identity(path, 2)
    return WorkerSettings(options=UpscaleOptions.from_kwargs(model=str(path), codec="ffv1"), threads=1)


class RecordingPlan:
    """A plan of fixed tasks that records what the scheduler reports."""

    def __init__(self, tasks, on_progress=None) -> None:
        self.queue = deque(tasks)
        self.running: set[str] = set()
        self.owners: dict[str, str] = {}
        self.results: dict[str, dict] = {}
        self.progress_seen: list[tuple[str, dict]] = []
        self.on_progress = on_progress

    def next_task(self):
        return self.queue.popleft() if self.queue else None

    def finished(self) -> bool:
        return not self.queue and not self.running

    def started(self, task, owner) -> None:
        self.running.add(task.key)
        self.owners[task.key] = owner

    def heartbeat(self, task, owner) -> None:
        pass

    def progress(self, task, info) -> None:
        self.progress_seen.append((task.key, info))
        if self.on_progress is not None:
            self.on_progress(task, info)

    def done(self, task, result) -> None:
        self.running.discard(task.key)
        self.results[task.key] = result

    def failed(self, task, error) -> None:
        raise AssertionError(f"{task.key} failed: {error}")

    def lost(self, task, why) -> None:
        raise AssertionError(f"{task.key} lost: {why}")


def segments(src: Path, outdir: Path, n: int, per: int, fps: int = 25) -> list[Task]:
    return [Task(key=f"s{i}", kind="segment", job_key="clip", src=str(src), dst=str(outdir / f"{i}.mkv"),
                 start=Fraction(i * per, fps), end=Fraction((i + 1) * per, fps)) for i in range(n)]


def test_one_actor_serves_every_task_and_reports_progress(tmp_path, local_ray, settings):
    src = make_clip(tmp_path / "in.mkv", codec="ffv1", size=(64, 48), frames=12)
    plan = RecordingPlan(segments(src, tmp_path, 3, 4))
    RayScheduler("local", settings, log=lambda m: None).run(plan)
    assert sorted(plan.results) == ["s0", "s1", "s2"] and all(r["frames"] == 4 for r in plan.results.values())
    assert len(set(plan.owners.values())) == 1  # one CPU: one actor, reused
    assert len({r["pid"] for r in plan.results.values()}) == 1  # ... in one process: one Upscaler, built once
    assert {key for key, _ in plan.progress_seen} == {"s0", "s1", "s2"}
    assert all(info["total"] == 4 for _, info in plan.progress_seen)
    assert ray.is_initialized()  # an instance the caller started is left running


def test_ctrl_c_kills_the_actors_and_removes_their_partials(tmp_path, local_ray, settings):
    # long enough (~7 s on a quiet 2-core machine; 96x64 took 0.6 s) that the progress the driver polls for every
    # 0.5 s arrives while the actor is still writing
    src = make_clip(tmp_path / "in.mkv", codec="ffv1", size=(320, 240), frames=60)
    out = tmp_path / "out"
    out.mkdir()
    task = Task(key="whole", kind="whole", job_key="clip", src=str(src), dst=str(out / "clip.mkv"))

    def interrupt(task, info):
        if info["frame"] < info["total"]:
            assert partials_of(task.dst), "the actor should be writing its temporary file now"
            raise KeyboardInterrupt

    plan = RecordingPlan([task], on_progress=interrupt)
    with pytest.raises(KeyboardInterrupt):
        RayScheduler("local", settings, log=lambda m: None).run(plan)
    assert list(out.iterdir()) == []  # no output, no temporary file left by the killed actor
    import time

    deadline = time.monotonic() + 20
    while ray.available_resources().get("CPU", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 1  # the killed actor's CPU is free again
