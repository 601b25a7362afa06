"""Batch progress: the running files' frames, fps and ETA, and the batch's total, while files run.

Workers report each task's progress (``frame``, ``total``, ``fps``) to the driver (the local scheduler's result
queue, Ray actors' progress queue); the driver's plan feeds it here. :class:`BatchProgress` is pure state (the
clock is injected): a file's progress is the sum of its tasks' (several segments of one file may run at once on
several workers), and the batch's fraction weighs each file by its duration (from its header; files whose
header states none count as the mean). :meth:`BatchProgress.snapshot` is what a reporter shows:

    ep03.mkv   1234/3000 frames  23.5 fps  ETA 1:15
    batch      2/5 files done, 41 %, 24.0 fps, ETA 12:30
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class FileProgress:
    """One running file."""

    key: str
    frames: int
    total: int | None
    fps: float
    eta: float | None
    frames_reused: int | None = None
    """Of ``frames``, those whose every tile was reused (``--reuse``); None until its worker reports it."""
    tiles_reused: int | None = None
    """Tiles of ``frames`` whose output was reused; None until its worker reports it."""

    def line(self) -> str:
        total = f"/{self.total}" if self.total else ""
        return f"{self.key}  {self.frames}{total} frames  {self.fps:.1f} fps  ETA {format_eta(self.eta)}"


@dataclass(frozen=True)
class BatchSnapshot:
    """What a progress reporter shows: the running files and the batch's total."""

    files: tuple[FileProgress, ...]
    done_files: int
    total_files: int
    fraction: float
    """Of the batch's media time done, 0..1."""
    frames: int
    """Frames rendered by this run so far (finished and running files)."""
    fps: float
    eta: float | None
    frames_reused: int = 0
    """Of ``frames``, those whose every tile was reused (``--reuse``), as the workers reported them."""
    tiles_reused: int = 0
    """Tiles of ``frames`` whose output was reused."""

    def line(self) -> str:
        return (f"batch  {self.done_files}/{self.total_files} files done, {self.fraction:.0%}, {self.fps:.1f} fps, "
                f"ETA {format_eta(self.eta)}")

    def as_json(self) -> dict:
        files = []
        for f in self.files:
            d = {"file": f.key, "frame": f.frames, "total": f.total, "fps": round(f.fps, 3),
                 "eta": None if f.eta is None else round(f.eta, 1)}
            if f.frames_reused is not None:  # its worker reports reuse (as the single-file --progress json)
                d["frames_reused"], d["tiles_reused"] = f.frames_reused, f.tiles_reused or 0
            files.append(d)
        return {
            "files": files,
            "batch": {"done": self.done_files, "files": self.total_files, "fraction": round(self.fraction, 4),
                      "frames": self.frames, "fps": round(self.fps, 3),
                      "eta": None if self.eta is None else round(self.eta, 1),
                      "frames_reused": self.frames_reused, "tiles_reused": self.tiles_reused},
        }


def format_eta(seconds: float | None) -> str:
    """``"1:02:03"``, ``"2:05"``, or ``"?"`` (pure)."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass
class _Job:
    duration: float | None
    total: int | None = None
    finished: bool = False
    tasks: dict[str, tuple[int, int | None, float]] = field(default_factory=dict)  # task -> (frames, total, fps)
    done_frames: int = 0  # of finished tasks
    reused: dict[str, tuple[int, int]] = field(default_factory=dict)  # task -> (frames, tiles) reused so far
    done_reused: tuple[int, int] | None = None  # of finished tasks; None: none reported reuse
    kept: int = 0  # frames of segments an earlier run finished (a resumed file): done, but not by this run


class BatchProgress:
    """The driver's view of the batch's progress (see the module docstring)."""

    def __init__(self, durations: dict[str, float | None], *, clock: Callable[[], float] = time.monotonic) -> None:
        """``durations``: job key → its media duration in seconds (None: unknown), for every job this run runs."""
        self._clock = clock
        self._t0 = clock()
        self._jobs = {k: _Job(d) for k, d in durations.items()}
        self._finished_frames = 0
        self._finished_reused = (0, 0)

    def __contains__(self, job: str) -> bool:
        return job in self._jobs

    def drop(self, job: str) -> None:
        """The job will not run after all (refused when judged, before any worker had it): it is no file of the
        batch's total, and weighs nothing in its fraction."""
        self._jobs.pop(job, None)

    def set_duration(self, job: str, seconds: float | None) -> None:
        """A job's media duration in seconds (None: unknown), once read (the driver judges each file's source as
        the batch runs; until then it weighs as the mean of the known ones)."""
        self._jobs[job].duration = seconds

    def set_total(self, job: str, frames: int | None) -> None:
        """A job's frame count, when known before its tasks report (a segmented file's scan)."""
        self._jobs[job].total = frames

    def set_kept(self, job: str, frames: int) -> None:
        """Frames of a resumed file's segments that an earlier run finished: the file's line counts them (its
        position and ETA), the batch's fraction leaves them out of the file's weight (they take this run no time:
        its fraction, and so its ETA, is of the work left), and they are no frames of this run's."""
        self._jobs[job].kept = max(0, int(frames))

    def update(self, job: str, task: str, frames: int, total: int | None, fps: float = 0.0, *,
               frames_reused: int | None = None, tiles_reused: int | None = None) -> None:
        """Task ``task`` of ``job`` has written ``frames`` of its ``total``, at ``fps`` (the worker's measure), and
        reused ``frames_reused`` whole frames and ``tiles_reused`` tiles of them (None: not reported)."""
        j = self._jobs[job]
        j.tasks[task] = (frames, total, fps)
        if frames_reused is not None or tiles_reused is not None:
            j.reused[task] = (int(frames_reused or 0), int(tiles_reused or 0))

    def task_done(self, job: str, task: str, frames: int, *, frames_reused: int | None = None,
                  tiles_reused: int | None = None) -> None:
        """Task ``task`` of ``job`` finished with ``frames`` written, ``frames_reused``/``tiles_reused`` of them
        reused (None: what it last reported)."""
        j = self._jobs[job]
        j.tasks.pop(task, None)
        last = j.reused.pop(task, None)
        if frames_reused is not None or tiles_reused is not None:
            last = (int(frames_reused or 0), int(tiles_reused or 0))
        if last is not None:
            self._add_done_reused(j, last)
        j.done_frames += frames
        self._finished_frames += frames

    def task_lost(self, job: str, task: str) -> None:
        """Task ``task`` of ``job`` died with its worker and will be redone: what it had written is gone (the file's
        line no longer shows the dead worker's frames, fps and ETA, and the batch's share drops by them)."""
        j = self._jobs[job]
        j.tasks.pop(task, None)
        j.reused.pop(task, None)

    def _add_done_reused(self, j: _Job, counts: tuple[int, int]) -> None:
        prev = j.done_reused or (0, 0)
        j.done_reused = (prev[0] + counts[0], prev[1] + counts[1])
        self._finished_reused = (self._finished_reused[0] + counts[0], self._finished_reused[1] + counts[1])

    def job_done(self, job: str) -> None:
        """The job finished (done, failed or skipped): it counts as complete in the batch's fraction."""
        j = self._jobs[job]
        j.finished = True
        for frames, _t, _f in j.tasks.values():
            self._finished_frames += frames
        for counts in j.reused.values():
            self._add_done_reused(j, counts)
        j.tasks.clear()
        j.reused.clear()

    def _job_frames(self, j: _Job) -> tuple[int, int | None]:
        running = sum(f for f, _, _ in j.tasks.values())
        total = j.total
        if total is None and j.tasks and all(t for _, t, _ in j.tasks.values()) and not j.done_frames:
            total = sum(t for _, t, _ in j.tasks.values())  # a whole-file task reports the file's total
        return j.kept + j.done_frames + running, total

    @staticmethod
    def _todo_share(j: _Job) -> float:
        """The share of a job this run has to do: all of it, less the segments kept from an earlier run."""
        return max(0.0, 1.0 - j.kept / j.total) if j.kept and j.total else 1.0

    def snapshot(self) -> BatchSnapshot:
        now = self._clock()
        elapsed = max(now - self._t0, 1e-9)
        known = [j.duration for j in self._jobs.values() if j.duration]
        mean = sum(known) / len(known) if known else 1.0
        weight_total = fraction_done = 0.0
        files = []
        frames_now = self._finished_frames
        reused_now = list(self._finished_reused)
        for key, j in self._jobs.items():
            w = (j.duration or mean) * self._todo_share(j)
            weight_total += w
            if j.finished:
                fraction_done += w
                continue
            frames, total = self._job_frames(j)
            frames_now += sum(f for f, _, _ in j.tasks.values())
            for fr, tr in j.reused.values():
                reused_now[0] += fr
                reused_now[1] += tr
            if total and total > j.kept:
                fraction_done += w * min(1.0, (frames - j.kept) / (total - j.kept))
            if j.tasks:
                fps = sum(f for _, _, f in j.tasks.values())  # segments running at once add up
                eta = max(0.0, (total - frames) / fps) if total and fps > 0 else None
                reported = [*j.reused.values(), *([j.done_reused] if j.done_reused is not None else [])]
                fr = sum(a for a, _ in reported) if reported else None
                tr = sum(b for _, b in reported) if reported else None
                files.append(FileProgress(key, frames, total, fps, eta, fr, tr))
        fraction = fraction_done / weight_total if weight_total else 1.0
        done = sum(j.finished for j in self._jobs.values())
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        return BatchSnapshot(tuple(files), done, len(self._jobs), fraction, frames_now, frames_now / elapsed, eta,
                             reused_now[0], reused_now[1])
