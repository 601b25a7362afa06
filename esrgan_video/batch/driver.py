"""The batch driver: plan jobs, consult the journal, run tasks on a scheduler, summarise.

Only this process writes the journal; workers report results to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import __version__
from ..errors import EsrganVideoError, InputError, OptionError, OutputError, printable
from ..frames.reuse import ReuseStats
from .inputs import VIDEO_EXTENSIONS, Job, discover, link_problem, plan_jobs
from .journal import JOURNAL_NAME, Journal, fraction_text, parse_fraction, parse_lines
from .progress import BatchProgress, BatchSnapshot
from ..options import UpscaleOptions
from ..runtime.devices import parse_devices, resolve_device
from ..video.probe import container_duration, probe
from ..video.partials import remove_partials
from ..video.side_data import without_since
from .worker import WORKER_PROCESS_NAME, Task, WorkerSettings

BATCH_FAILED_EXIT = 8
"""Exit code when the batch ran to the end but at least one file failed (the CLI's documented code)."""

SEGMENTS_DIR = ".esrgan-video-segments"

UNGUARDED_MAIN_EXIT = 86
"""The exit status of a batch worker whose start ran ``run_batch`` again (:func:`refuse_unguarded_main`): the
scheduler stops the batch with :class:`UnguardedMainError` when one exits with it."""


class UnguardedMainError(EsrganVideoError, RuntimeError):
    """``run_batch`` called at a script's top level, without ``if __name__ == "__main__":``. Workers are started
    processes (forked from a fork server, or spawned), which import the script again before they start: each would
    run the batch again and die (the output folder is locked by the driver), and every file would fail."""


def unguarded_main_message() -> str:
    """The one line of :class:`UnguardedMainError`, naming the script (the main module's file)."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None) or "the main script"
    return (f"{script}: run_batch is called when the script is imported, and each batch worker (a spawned process) "
            "imports the script again, which would start the batch again; put the call under "
            "`if __name__ == \"__main__\":`")


def refuse_unguarded_main() -> None:
    """Stop a ``run_batch`` called while ``multiprocessing`` starts a process, which imports the parent's main script
    again (as ``__mp_main__``, ``spawn``'s and ``forkserver``'s bootstrap: ``current_process()._inheriting``, what
    ``multiprocessing``'s own check of a process started there asks; the parent is not known yet,
    ``parent_process()`` is None until the bootstrap ends). In a batch worker (:data:`WORKER_PROCESS_NAME`) it exits
    with :data:`UNGUARDED_MAIN_EXIT` and says nothing: the driver stops the batch with the line, once, not each
    worker. In another program's process it raises :class:`UnguardedMainError`. A ``run_batch`` in a started
    process's own code (its target) runs."""
    import multiprocessing

    me = multiprocessing.current_process()
    if not getattr(me, "_inheriting", False):
        return
    if me.name.startswith(WORKER_PROCESS_NAME):  # os._exit: a forked worker's bootstrap (the fork server's
        sys.stderr.flush()  # child) catches no SystemExit: it would exit 1, taken for a crash and retried
        os._exit(UNGUARDED_MAIN_EXIT)
    raise UnguardedMainError(unguarded_main_message())

def options_hash(model_sha256: str, options: UpscaleOptions, *, segment_seconds: float | None,
                 codec: str | None = None) -> str:
    """sha256 (first 16 hex digits) over everything that changes an output's bytes (pure): the model's weights
    hash, the options that can change an output (``UpscaleOptions.output_affecting``: not the device, threads,
    heartbeats or Ray settings; a ``--crf`` or ``--preset`` the encoder uses anyway is as if not given), the segment
    length and the package version. ``--backend`` is in it: torch and ONNX Runtime give outputs that differ in float
    rounding, and ``auto`` may pick another one on another node. ``codec``: the encoder of the output's container
    when no ``--codec`` is given (:func:`container_codec`), whose defaults those are. What each file's record is
    made with: :func:`job_hashes`."""

    def norm(v: Any) -> Any:
        if isinstance(v, Fraction):
            return f"{v.numerator}/{v.denominator}"
        if isinstance(v, dict):
            return {str(k): norm(x) for k, x in sorted(v.items())}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return v

    doc = {
        "model": model_sha256,
        "options": {k: norm(v) for k, v in sorted(options.output_affecting(codec).items())},
        # a float whatever the caller passed: the CLI's 2.0 and run_batch(segment_seconds=2) are one length
        "segment_seconds": None if segment_seconds is None else float(segment_seconds),
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def job_hashes(model_sha256: str, options: UpscaleOptions, *, segment_seconds: float | None,
               still: bool, codec: str | None = None) -> tuple[str, str]:
    """A job's options hashes (pure): the one its whole-file record is made with, and the one of its segments and
    their join. A file rendered in one piece is the same whatever ``--segment-seconds`` says (a segmented run aims
    at exactly that single pass), so its hash leaves the segment length out; where a file's cuts lie is part of a
    joined file's (keyframe placement) and of its segments'. A still's hash is over ``stills.still_options``, what
    its task runs with. ``codec``: the encoder of a video's output container (:func:`container_codec`)."""
    if still:
        from ..stills import still_options

        h = options_hash(model_sha256, still_options(options), segment_seconds=None)
        return h, h
    return (options_hash(model_sha256, options, segment_seconds=None, codec=codec),
            options_hash(model_sha256, options, segment_seconds=segment_seconds, codec=codec))


def container_codec(dst: Path, options: UpscaleOptions) -> str:
    """The encoder ``dst``'s container takes when no ``--codec`` is given (``writer.output_codec``: libx264, or
    libvpx-vp9 in WebM, ...): whose default CRF and preset a video's options hash compares ``--crf`` and
    ``--preset`` with, and which an explicit ``--codec`` equal to it stands for (:func:`options_hash`)."""
    from ..video.writer import output_codec

    return output_codec(dst, None, options.encode.format)


def _is_still(job: Job) -> bool:
    """Whether ``job`` upscales a still image (``stills.is_still_job``, the worker's rule); only an image output's
    source is looked at (cheap: a header), a video's never."""
    from ..stills import is_still_job
    from ..video.images import IMAGE_EXTENSIONS

    return job.dst.suffix.lower() in IMAGE_EXTENSIONS and is_still_job(job.src, job.dst)


def counted(n: int, noun: str) -> str:
    """``"1 frame"``, ``"12 frames"``, ``"3 files"`` (pure)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def verify_done(rec: dict[str, Any], path: str | os.PathLike) -> str | None:
    """Why a recorded output can no longer be trusted, or ``None`` when it is intact (cheap: a stat and
    a header probe, no decoding)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "output is missing"
    except OSError as e:
        return f"output cannot be read ({e})"
    if st.st_size != rec.get("size") or st.st_mtime_ns != rec.get("mtime_ns"):
        return "output changed since it was made"
    try:
        facts = probe(path)
    except Exception as e:  # noqa: BLE001 - any failure to open means "redo"
        return f"output does not open ({type(e).__name__})"
    if facts != rec.get("probe"):
        return "output's header (frame count, duration or streams) differs from the record"
    return None


def reuse_from_record(d: Any) -> ReuseStats | None:
    """A ``ReuseStats`` from its ``as_dict()`` (a worker's result, a journal record's ``reuse``); None when absent
    or not such a dict (a record written before batch reported reuse)."""
    if not isinstance(d, dict) or "mode" not in d:
        return None
    try:
        return ReuseStats.from_dict(d)
    except (TypeError, ValueError):
        return None


def add_reuse(a: ReuseStats | None, b: ReuseStats | None) -> ReuseStats | None:
    """The sum of two runs' reuse (a file's segments, the batch's files; pure). Modes that differ (``exact`` and
    ``off`` share an options hash, so kept segments may have been made with the other) are named together,
    ``exact+off``."""
    if a is None or b is None:
        return a if b is None else b
    modes = sorted(set(a.mode.split("+")) | set(b.mode.split("+")))
    return ReuseStats(mode="+".join(modes), frames=a.frames + b.frames, frames_reused=a.frames_reused + b.frames_reused,
                      tiles=a.tiles + b.tiles, tiles_reused=a.tiles_reused + b.tiles_reused,
                      resets=a.resets + b.resets)


def segment_reuse(stats: ReuseStats | None, start: Any) -> ReuseStats | None:
    """A segment's reuse as its share of the file's (pure): its worker's ``ReuseStats``, plus the reset
    that one pass counts where it begins — with ``near`` a segment after the first starts at one of near's reset
    points (``plan_segments``), where one pass drops its references and counts a reset, while the segment's own
    run starts without references and counts none. So a file's segments sum to one pass's record."""
    if stats is not None and stats.mode == "near" and start is not None:
        stats = replace(stats, resets=stats.resets + 1)
    return stats


def _own_outputs(outdir: Path) -> list[Path]:
    """The outputs the journal in ``outdir`` knows (its files' keys, not their segments'): never inputs of a rerun,
    also when the output folder is an input folder or a glob matches them. Read without the lock (only the
    names are needed; a second driver is refused when the journal is opened); an unreadable journal names none
    here and is reported when it is opened."""
    try:
        text = (outdir / JOURNAL_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [outdir / key for key, rec in parse_lines(text).items() if rec.get("kind") != "segment"]


def _source_changed(rec: dict[str, Any], src: Path) -> bool:
    """Whether ``src`` differs (size or mtime) from the fingerprint a journal record holds; False when the record
    holds none (written before failures kept it) or the source cannot be read (the run says so)."""
    if "src_size" not in rec:
        return False
    try:
        fp = _src_fingerprint(src)
    except OSError:
        return False
    return not _same_source(rec, fp)


def _unreadable(src: Path, e: OSError) -> str:
    """The one line for a source that cannot be opened: a broken link or a link loop (a library's walk takes the
    names it finds), else the system's reason, without repeating the path."""
    return f"{src}: {link_problem(src) or f'cannot be read ({e.strerror or e})'}"


def _other_source(rec: dict[str, Any], src: Path) -> bool:
    """Whether a file's journal record was made from another file than ``src``: it names another path (``src``)
    and its fingerprint is not ``src``'s (a library that moved, unchanged, is the same source). False for a record
    that names none (made before records named their source)."""
    made_from = rec.get("src")
    if made_from is None or made_from == str(src):
        return False
    try:
        return not _same_source(rec, _src_fingerprint(src))
    except OSError:
        return False  # the run reports the unreadable source


def _src_fingerprint(path: Path) -> dict[str, int]:
    st = os.stat(path)
    return {"src_size": st.st_size, "src_mtime_ns": st.st_mtime_ns}


def segment_key(job_key: str, number: int) -> str:
    """The journal key of segment ``number`` of a file (``_segment_tasks`` makes them; ``Plan._planned`` finds the
    kept ones by them)."""
    return f"{job_key}#seg{number:04d}"


def _same_source(rec: dict[str, Any], fp: dict[str, int]) -> bool:
    """Whether a journal record was made from the source whose fingerprint (``_src_fingerprint``) is ``fp``."""
    return all(rec.get(k) == v for k, v in fp.items())


@dataclass
class JobRow:
    """One line of the summary."""

    key: str
    src: Path
    dst: Path
    status: str = "pending"  # done | damaged | skipped | failed | interrupted | vanished
    frames: int = 0
    seconds: float = 0.0
    error: str = ""
    segments: int = 1
    lost_frames: int = 0
    damage: list[str] = field(default_factory=list)
    """What the input lost (``RunResult.damage`` of the file or of its segments): the output is kept and the
    status is ``damaged``."""
    rendered: int = 0
    """Frames this run upscaled for the file (its whole-file task or the segments it rendered; segments kept from an
    earlier run and the join count none), what :attr:`fps` is over."""
    still: bool = False
    """A still image (``stills.is_still_job``): its log line and the table say its time, not a frame rate."""
    reuse: ReuseStats | None = None
    """What ``--reuse`` did for the whole output, summed over its segments (those kept from an earlier run as
    journaled); a skipped file's is its journal record's. None: not known (a record from before it was kept)."""
    run_reuse: ReuseStats | None = None
    """What ``--reuse`` did for the frames this run rendered of the file (:attr:`rendered`: its whole-file task or
    the segments it rendered, not those kept from an earlier run): what the batch's total sums."""
    already_done: bool = False
    """Finished by an earlier run and verified: skipped (or ``damaged`` as journaled); this run did nothing for it."""
    failed_before: bool = False
    """Failed in an earlier run and not retried (no ``--retry-failed``): this run did nothing for it."""
    refused: bool = False
    """Failed before it ran: its output cannot be written (:func:`_judged`, judged as the batch runs); no worker had
    it, it is not journalled, and it is no file of the run's progress (``BatchProgress.drop``)."""

    @property
    def one_image(self) -> bool:
        """One still image: it has a time, not a frame rate (its log line says so)."""
        return self.still and self.frames == 1

    @property
    def has_rate(self) -> bool:
        """Whether :attr:`fps` means something: frames were rendered, and not just :attr:`one_image`; a join alone
        renders nothing. The table and the JSON give no fps otherwise."""
        return bool(self.rendered) and not self.one_image

    @property
    def fps(self) -> float:
        """Frames rendered by this run over this run's seconds for the file; 0 when it rendered none (a resumed
        file whose only work left was the join, a skipped file)."""
        return self.rendered / self.seconds if self.rendered and self.seconds > 0 else 0.0


@dataclass
class BatchSummary:
    rows: list[JobRow]
    seconds: float
    stopped: int | None = None
    """The exit status of the signal that stopped the run (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), what
    :attr:`exit_code` is then; None: it ran to the end."""

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    @property
    def refused(self) -> int:
        """Of the failed files, those refused before they ran (:attr:`JobRow.refused`)."""
        return sum(r.refused for r in self.rows)

    @property
    def frames(self) -> int:
        """Frames rendered by this run, what :attr:`fps` is over: the segments a failed or interrupted file
        rendered count (they took the run's time, and the journal keeps them for a resume); skipped files, and
        segments kept from an earlier run, render none."""
        return sum(r.rendered for r in self.rows)

    @property
    def stills(self) -> int:
        """Of :attr:`frames`, the still images this run rendered (one frame each, never reused)."""
        return sum(r.rendered for r in self.rows if r.still)

    @property
    def reuse(self) -> ReuseStats | None:
        """What ``--reuse`` did for the frames this run rendered, summed over the files (:attr:`JobRow.run_reuse`;
        the segments of a failed or interrupted file too, as in :attr:`frames`): its ``frames`` are this run's video
        frames, :attr:`frames` less :attr:`stills` (a still is one image that reuse never sees). None when this run
        rendered no video frame. Each file's whole reuse, journaled parts included, is its row's
        :attr:`JobRow.reuse`."""
        total = None
        for r in self.rows:
            total = add_reuse(total, r.run_reuse)
        return total

    @property
    def nothing_to_do(self) -> bool:
        """Every file was finished (or failed, not retried) by an earlier run, or its record was dropped
        (``vanished``): this run had nothing to render, and no frame rate to speak of."""
        return all(r.already_done or r.failed_before or r.status == "vanished" for r in self.rows)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def totals_text(self) -> str:
        """What the last line says after the counts of files (pure): this run's rendered frames (and of them the
        stills), time and fps, and the reuse of this run's video frames, its ratio over those frames; when nothing
        was rendered no frame rate (``all 3 files already done`` for a rerun with nothing to do)."""
        if not self.frames:
            if not self.nothing_to_do:  # a resumed file's join alone, files that failed at once
                return f"no frames rendered ({self.seconds:.1f} s)"
            done = sum(r.already_done for r in self.rows)
            failed = sum(r.failed_before for r in self.rows)
            said = ([f"{'all ' if done == len(self.rows) > 1 else ''}{counted(done, 'file')} already done"] if done
                    else [])
            if failed:
                said.append(f"{failed} failed in an earlier run (--retry-failed retries them)")
            return "nothing to do" + (f": {', '.join(said)}" if said else "")
        stills = self.stills
        what = (f" ({counted(self.frames - stills, 'video frame')}, {counted(stills, 'still')})" if stills else "")
        text = f"{counted(self.frames, 'frame')} rendered{what} in {self.seconds:.1f} s ({self.fps:.2f} fps)"
        total = self.reuse
        if total is not None:
            if total.mode == "off" or not stills:
                text += f"; {total.summary()}"
            else:  # the ratio is over the video frames: say so beside a count that holds stills
                text += (f"; reuse {total.mode}: {total.frames_reused} of the {counted(total.frames, 'video frame')}, "
                         f"{total.tiles_reused}/{total.tiles} tiles ({100 * total.tile_fraction:.0f} %) reused")
        return text

    @property
    def exit_code(self) -> int:
        """The signal's status when the run was stopped (:attr:`stopped`, the CLI's exit status); else 8 when a file
        failed, was interrupted or its input was damaged (truncated, undecodable frames)."""
        if self.stopped is not None:
            return self.stopped
        return BATCH_FAILED_EXIT if any(r.status in ("failed", "interrupted", "damaged") for r in self.rows) else 0

    def as_json(self) -> dict:
        """The summary as one JSON object (``--progress json``'s last line): every file's status, frames, frames
        rendered by this run, seconds, fps and ``reuse`` (``ReuseStats.as_dict()`` or None: the whole file's), and
        the batch's totals as the table's last line says them: ``frames`` rendered by this run, ``stills`` of them,
        ``fps`` (None when it rendered none; ``nothing_to_do``: every file was done, or failed, in an earlier run), and
        ``reuse``, of this run's video frames (:attr:`reuse`)."""
        total = self.reuse
        return {
            "done": True,
            "files": [{"file": r.key, "status": r.status, "frames": r.frames, "rendered": r.rendered,
                       "seconds": round(r.seconds, 3), "fps": round(r.fps, 3) if r.has_rate else None,
                       "segments": r.segments, "error": r.error or None, "damage": "; ".join(r.damage) or None,
                       "reuse": None if r.reuse is None else r.reuse.as_dict()} for r in self.rows],
            "batch": {"files": len(self.rows), **{k: self.count(k) for k in ("done", "damaged", "skipped", "failed",
                                                                              "interrupted", "vanished")},
                      "refused": self.refused,
                      "frames": self.frames, "stills": self.stills, "seconds": round(self.seconds, 3),
                      "fps": round(self.fps, 3) if self.frames else None, "nothing_to_do": self.nothing_to_do,
                      "exit_code": self.exit_code},
            "reuse": None if total is None else total.as_dict(),
        }

    def table(self) -> str:
        lines = [f"{'status':<11} {'frames':>8} {'seconds':>9} {'fps':>8}  file"]
        for r in self.rows:
            fps = f"{r.fps:>8.2f}" if r.has_rate else f"{'-':>8}"
            nums = (f"{r.frames:>8} {r.seconds:>9.1f} {fps}" if r.status in ("done", "damaged") and r.seconds
                    else f"{'-':>8} {'-':>9} {'-':>8}")
            notes = []
            if r.status in ("done", "damaged") and r.segments > 1:
                notes.append(f"{r.segments} segments")
            if r.status in ("done", "damaged", "skipped") and r.reuse is not None and r.reuse.mode != "off":
                notes.append(r.reuse.summary())
            if r.status == "damaged":
                notes.append("WARNING: " + "; ".join(r.damage or [f"{r.lost_frames} undecodable frame(s) of the "
                                                                  "source skipped"]))
            note = f"  ({'; '.join(notes)})" if notes else ""
            err = f": {r.error}" if r.error else ""
            lines.append(printable(f"{r.status:<11} {nums}  {r.key}{note}{err}"))
        lines.append(
            f"{counted(len(self.rows), "file")}: {self.count('done')} done, "
            + (f"{self.count('damaged')} damaged, " if self.count("damaged") else "")
            + f"{self.count('skipped')} skipped, "
            f"{self.count('failed')} failed" + (f" ({self.refused} refused before running)" if self.refused else "")
            + (f", {self.count('interrupted')} interrupted" if self.count("interrupted") else "")
            + (f", {self.count('vanished')} vanished" if self.count("vanished") else "")
            + f"; {self.totals_text()}")
        return "\n".join(lines)


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch; ``summary`` holds what finished. Rerun the same command to resume."""

    def __init__(self, summary: BatchSummary) -> None:
        super().__init__("batch interrupted")
        self.summary = summary


@dataclass
class _JobState:
    job: Job
    row: JobRow
    owned: bool
    whole_hash: str
    """The options hash of the file's whole-file record (:func:`job_hashes`: a video's or a still's)."""
    parts_hash: str
    """The options hash of its segments, their join and a failed file's record (:func:`job_hashes`' second: the
    segment length in it; per file, as the encoder's defaults depend on the output's container)."""
    parts_before: str
    """The parts hash of the options as given (``job_hashes`` without the container's encoder): what records made
    before an encoder's defaults were compared carry; a segment made with it is kept (the same bytes)."""
    join: Task | None = None
    waiting: set[str] = field(default_factory=set)  # segment keys not yet done
    seg_dir: Path | None = None
    noticed: set[str] = field(default_factory=set)  # the notices already logged (segments repeat them)

    def whole_task(self) -> Task:
        j = self.job
        return Task(key=j.key, kind="whole", job_key=j.key, src=str(j.src), dst=str(j.dst), overwrite=self.owned,
                    still=self.row.still)


class Plan:
    """The driver's state machine over tasks; the schedulers call it, it writes the journal."""

    def __init__(self, journal: Journal, *, max_attempts: int, log: Callable[[str], None],
                 progress: Callable[[BatchSnapshot], None] | None = None,
                 options: UpscaleOptions | None = None) -> None:
        self.journal = journal
        self.options = options
        """The run's options: which encoder and container a file's segments are rendered in (``_segment_tasks``);
        None: in the output's own container."""
        self.report = progress
        """Receives a :class:`BatchSnapshot` whenever a worker reports progress or a task ends."""
        self.tracker: BatchProgress | None = None
        """Set by :meth:`start_progress` once every job to run is known."""
        self.outdir = journal.outdir
        self.max_attempts = max_attempts
        self.log = log
        self.queue: deque[Task] = deque()
        self.judging: deque[tuple[_JobState, Future]] = deque()
        """Jobs whose source is being judged (:func:`_judged`, in a thread: their output's refusal and duration), in
        order; each is admitted (its tasks queued, or it fails alone) when the queue has nothing else to hand out."""
        self.segment_seconds: float | None = None
        """Split a video at least twice this long (None: never): the run's ``--segment-seconds``."""
        self.running: set[str] = set()
        self.jobs: dict[str, _JobState] = {}
        self.attempts: dict[str, int] = {}
        self.src_fp: dict[str, dict[str, int]] = {}
        self.refused = 0
        """Jobs refused when judged (:meth:`admit`): they never run."""

    # scheduler interface --------------------------------------------------------------------
    def next_task(self) -> Task | None:
        self.admit()
        return self.queue.popleft() if self.queue else None

    def finished(self) -> bool:
        return not self.queue and not self.running and not self.judging

    def admit(self) -> None:
        """While nothing is queued, admit the next judged job (waiting for its judgement, which a thread made ahead
        of time): its tasks are queued, or, where its output cannot be written, it fails alone, not journalled (it
        is judged again next run), in the line its worker would have said."""
        while not self.queue and self.judging:
            st, judgement = self.judging.popleft()
            refusal, duration = judgement.result()
            if refusal is not None:  # no file of the batch's progress: it will not run
                st.row.status, st.row.error, st.row.refused = "failed", refusal, True
                self.refused += 1
                self.log(f"failed   {st.row.key}: {refusal}")
                if self.tracker is not None and st.job.key in self.tracker:
                    self.tracker.drop(st.job.key)
                    self._report()
                if not self.judging:  # the last judged: the start's "N to run" counted these
                    self._say_refused()
                continue
            if self.tracker is not None and st.job.key in self.tracker:
                self.tracker.set_duration(st.job.key, _seconds(duration))
            job, seg_s = st.job, self.segment_seconds
            if seg_s and duration is not None and duration >= 2 * seg_s:
                self.queue.append(Task(key=f"{job.key}#plan", kind="plan", job_key=job.key, src=str(job.src),
                                       dst=str(job.dst), segment_seconds=seg_s))
            else:
                self.queue.append(st.whole_task())
            if not self.judging:
                self._say_refused()

    def _say_refused(self) -> None:
        """Once every file is judged, how many were refused and how many run (the line said at the start counts the
        files to judge: each is judged as the batch runs), when any was refused."""
        if self.refused:
            n = len(self.jobs)
            runs = n - self.refused
            self.log(f"checked  {counted(n, 'file')} to run: {self.refused} refused before running, "
                     f"{runs} {'runs' if runs == 1 else 'run'}")

    def _known_durations(self) -> None:
        """The durations of the jobs judged so far but not admitted yet, for the batch's progress (its weights)."""
        for st, judgement in self.judging:
            if not judgement.done():
                break  # judged in order
            if judgement.exception() is None and st.job.key in self.tracker:
                self.tracker.set_duration(st.job.key, _seconds(judgement.result()[1]))

    def started(self, task: Task, owner: str) -> None:
        self.running.add(task.key)
        self.heartbeat(task, owner)

    def progress(self, task: Task, info: dict[str, Any]) -> None:
        """A worker's progress on ``task``: ``{"frame", "total", "fps", "eta"}`` (whole files and segments)."""
        if self.tracker is None or task.kind not in ("whole", "segment"):
            return
        self.tracker.update(task.job_key, task.key, int(info.get("frame", 0)), info.get("total"),
                            float(info.get("fps") or 0.0), frames_reused=info.get("frames_reused"),
                            tiles_reused=info.get("tiles_reused"))
        self._report()

    def start_progress(self, durations: dict[str, float | None]) -> None:
        self.tracker = BatchProgress(durations)

    def _report(self) -> None:
        if self.report is not None and self.tracker is not None:
            self._known_durations()
            self.report(self.tracker.snapshot())

    def _track_done(self, task: Task, frames: int, *, job_finished: bool, reuse: ReuseStats | None = None) -> None:
        if self.tracker is None or task.job_key not in self.tracker:
            return
        if task.kind in ("whole", "segment"):
            self.tracker.task_done(task.job_key, task.key, frames,
                                   frames_reused=None if reuse is None else reuse.frames_reused,
                                   tiles_reused=None if reuse is None else reuse.tiles_reused)
        if job_finished:
            self.tracker.job_done(task.job_key)
        self._report()

    def _src_path(self, task: Task) -> dict[str, str]:
        """A file's record names its source (``src``): a rerun that maps another source to the same output (another
        library into the same folder) is told apart from a source that changed (``run_batch``)."""
        return {"src": str(self.jobs[task.job_key].job.src)} if task.kind != "segment" else {}

    def _hash(self, task: Task) -> str:
        """The options hash ``task``'s record is made with: a whole file's (or still's) own, else its parts'."""
        st = self.jobs[task.job_key]
        return st.whole_hash if task.kind == "whole" else st.parts_hash

    def heartbeat(self, task: Task, owner: str) -> None:
        """Journal ``task`` as running on ``owner``, heard from now (also what :meth:`started` records)."""
        if task.kind == "plan":
            return  # planning writes nothing; an interrupted plan is simply planned again
        self.journal.record(task.key, "running", owner=owner, heartbeat=round(time.time(), 1), kind=task.kind,
                            job=task.job_key, attempt=self.attempts.get(task.key, 0) + 1)

    def done(self, task: Task, result: dict[str, Any]) -> None:
        self.running.discard(task.key)
        st = self.jobs[task.job_key]
        if task.kind == "plan":
            if self.tracker is not None and task.job_key in self.tracker:
                self.tracker.set_total(task.job_key, int(result.get("frame_count") or 0) or None)  # the scan's count
            self._planned(st, result)
            return
        extra = {"start": fraction_text(task.start), "end": fraction_text(task.end)} if task.kind == "segment" else {}
        row = st.row
        result = dict(result)
        for msg in result.pop("notices", None) or ():  # the run's notices, each once per file, by its output's name
            msg = msg.replace(task.dst, str(st.job.dst))
            if task.kind == "segment":  # side data beginning later: each segment gives its own time
                msg = without_since(msg)
            if msg not in st.noticed:
                st.noticed.add(msg)
                self.log(f"notice   {msg}")
        if result.get("damage"):
            row.damage.append(str(result["damage"]))
        if task.kind != "segment" and row.damage:  # the file's record says what its input lost (resume keeps it)
            result = {**result, "damage": "; ".join(row.damage)}
        task_reuse = None
        if task.kind in ("whole", "segment"):  # it rendered frames: they count, and what its reuse did
            row.rendered += int(result.get("frames", 0))
            task_reuse = reuse_from_record(result.get("reuse"))
            if task_reuse is not None:
                share = segment_reuse(task_reuse, task.start) if task.kind == "segment" else task_reuse
                row.reuse = add_reuse(row.reuse, share)
                row.run_reuse = add_reuse(row.run_reuse, share)
        elif task.kind == "join" and row.reuse is not None:  # the file's record: its segments' reuse (resume shows it)
            result = {**result, "reuse": row.reuse.as_dict()}
        self.journal.record(task.key, "done", kind=task.kind, job=task.job_key, options=self._hash(task),
                            **self.src_fp[task.job_key], **self._src_path(task), **extra, **result)
        row.seconds += float(result.get("seconds", 0.0))
        row.lost_frames += int(result.get("lost_frames", 0))
        self._track_done(task, int(result.get("frames", 0)), job_finished=task.kind != "segment", reuse=task_reuse)
        if row.status == "failed":
            return
        if task.kind == "segment":
            st.waiting.discard(task.key)
            if not st.waiting and st.join is not None:
                self.queue.appendleft(st.join)
            return
        row.status = "damaged" if row.damage else "done"
        row.frames = int(result.get("frames", 0))
        if row.one_image:  # its time says more than a rate
            facts = ["1 image" + (f", {row.seconds:.2f} s" if row.rendered else "")]
        else:
            facts = [counted(row.frames, "frame") + (f", {row.fps:.2f} fps" if row.rendered else "")]
        if row.reuse is not None:
            facts.append(row.reuse.summary())
        self.log(f"{row.status:<8} {row.key} ({'; '.join(facts)})"
                 + (f": {'; '.join(row.damage)}" if row.damage else ""))
        if st.seg_dir is not None:
            remove_segments(st.seg_dir)

    def failed(self, task: Task, error: str) -> None:
        self.running.discard(task.key)
        if task.kind == "plan":  # cannot scan: run it whole, which reports the real problem if there is one
            self.queue.appendleft(self.jobs[task.job_key].whole_task())
            return
        fp = self.src_fp[task.job_key]  # a rerun retries the file once its source changed (a fixed download)
        self.journal.record(task.key, "failed", kind=task.kind, job=task.job_key, options=self._hash(task), error=error,
                            **fp, **self._src_path(task))  # its source: a rerun tells a deleted one (``_vanished``)
        st = self.jobs[task.job_key]
        if st.row.status == "failed":
            return
        if task.key != task.job_key:
            error = f"segment {task.key.rsplit('#', 1)[-1]}: {error}"
            self.journal.record(task.job_key, "failed", kind="job", job=task.job_key, options=st.parts_hash,
                                error=error, src=str(st.job.src), **fp)
        st.row.status, st.row.error = "failed", error
        self._track_done(task, 0, job_finished=True)
        self.queue = deque(t for t in self.queue if t.job_key != task.job_key)
        self.log(f"failed   {st.row.key}: {error}")

    def no_space(self, task: Task, error: str) -> None:
        """``task`` failed because the disk is full (``worker.out_of_space``): not the file's fault, and every file
        after it would render until the disk is full and fail too, so the batch stops (OutputError, exit 6) with
        the task left to redo (``pending``); finished files are kept, and a rerun once there is room resumes."""
        self.running.discard(task.key)
        if task.kind != "plan":
            self.journal.record(task.key, "pending", kind=task.kind, job=task.job_key, note=f"out of space: {error}")
        raise OutputError(f"{error}; the disk is full, so the batch stops here (finished files are kept): free some "
                          "space and rerun the same command to resume")

    def lost(self, task: Task, why: str) -> None:
        self.running.discard(task.key)
        if task.kind == "plan":  # the scan killed its worker: do not split this file
            self.queue.appendleft(self.jobs[task.job_key].whole_task())
            return
        n = self.attempts[task.key] = self.attempts.get(task.key, 0) + 1
        if self.tracker is not None and task.job_key in self.tracker and task.kind in ("whole", "segment"):
            self.tracker.task_lost(task.job_key, task.key)  # its frames died with the worker
            self._report()
        if n >= self.max_attempts:
            self.failed(task, f"{why}; gave up after {n} attempts")
            return
        self.journal.record(task.key, "pending", kind=task.kind, job=task.job_key, note=why)
        self.log(f"redo     {task.key}: {why}")
        self.queue.appendleft(task)

    def _planned(self, st: _JobState, result: dict[str, Any]) -> None:
        segments = result["segments"]
        if len(segments) < 2:
            self.queue.appendleft(st.whole_task())
            return
        job = st.job
        kept = (st.parts_hash, st.parts_before)
        tasks, st.waiting, parts, st.seg_dir = _segment_tasks(job, segments, self.journal, kept,
                                                              self.src_fp[job.key], self.outdir, self.options)
        st.row.segments = len(parts)
        kept_frames = 0
        for number in range(len(parts)):  # segments kept from an earlier run: their journaled reuse counts
            key = segment_key(job.key, number)
            if key not in st.waiting:
                rec = self.journal.get(key) or {}
                kept_reuse = segment_reuse(reuse_from_record(rec.get("reuse")), rec.get("start"))
                st.row.reuse = add_reuse(st.row.reuse, kept_reuse)
                kept_frames += int(rec.get("frames") or 0)
        if self.tracker is not None and job.key in self.tracker:  # the file's line starts where the earlier run left
            self.tracker.set_kept(job.key, kept_frames)
        st.join = Task(key=job.key, kind="join", job_key=job.key, src=str(job.src), dst=str(job.dst),
                       parts=tuple(parts), overwrite=st.owned)
        kept = len(parts) - len(tasks)
        self.log(f"segments {job.key}: {len(parts)} segments" + (f", {kept} already done" if kept else ""))
        self.queue.extendleft(reversed(tasks or [st.join]))

    # planning -------------------------------------------------------------------------------
    def add(self, st: _JobState, judgement: Future, src_fp: dict[str, int]) -> None:
        """A job to run once ``judgement`` (a future of :func:`_judged`'s pair) says it can be (:meth:`admit`);
        ``src_fp`` is its source's fingerprint (``_src_fingerprint``), recorded with every task's result."""
        self.jobs[st.job.key] = st
        self.src_fp[st.job.key] = src_fp
        self.judging.append((st, judgement))


def _check_encoding(opts: UpscaleOptions, jobs: list[Job]) -> None:
    """A --crf, --preset or --encoder-opt the encoder lacks, or a container that cannot hold it: one error before
    anything starts, not every file failing in its worker (and journalled failed). The container is checked when
    every output is of one kind; with ``--ext keep`` and mixed extensions a file the codec cannot go into fails
    alone, in its worker. The encoder's settings are judged by ``output_plan.with_codec`` / ``output_encoder``, as
    ``check_plan`` judges them before a single run's model; each file's own output (its frame size at the model's
    scale, ...) by :func:`_judged`, which asks ``check_plan`` itself, as the batch runs."""
    from ..video.images import IMAGE_EXTENSIONS
    from ..video.output_plan import output_encoder, with_codec
    from ..video.writer import check_output, check_settings

    enc = opts.encode
    # an image output is a still's (``plan_jobs``), written by upscale_image: no encoder or container to check
    kinds = {j.dst.suffix.lower(): j.dst for j in jobs if j.dst.suffix.lower() not in IMAGE_EXTENSIONS}
    if not kinds:
        return
    if enc.codec is None or enc.format is not None or len(kinds) == 1:
        # each kind's encoder is known (the container's own when none was asked for): check every kind
        for dst in kinds.values():
            chosen = with_codec(opts, dst).encode
            settings = output_encoder(chosen)
            check_output(dst, chosen.codec, format=enc.format)
            check_settings(settings, enc.pix_fmt)  # an --encoder-opt value it opens with in no format (crf=abc)
    else:  # one encoder for outputs of mixed kinds: a kind it cannot go into fails alone, in its worker
        check_settings(output_encoder(enc), enc.pix_fmt)


def _judged(opts: UpscaleOptions, job: Job, model_scale: int, *, duration: bool
            ) -> tuple[str | None, Fraction | None]:
    """(why ``job``'s output cannot be written, its source's duration in seconds), from one open of the source. The
    refusal is judged as ``upscale_video`` judges it before its model (``output_plan.check_plan``, the one rule set: a
    frame size its encoder cannot encode at the model's scale, x4 of a 2x2 input into libx265; a --pix-fmt it cannot
    write); None for a file that can be written, a still (``upscale_image`` judges its own), or an input that cannot
    be opened (its worker says why). The duration (the header's; None when unknown or not ``duration``, the only
    case a still is opened) weighs the file in the batch's progress and says whether it is long enough to split.

    Run in the driver's judging thread (``run_batch``), ahead of the workers: a job is admitted once it is judged
    (:meth:`Plan.admit`), so the opens (~35 ms for a 1080p H.264 file: the header's stream probe and the first
    frame's decode) overlap the workers' start and their work instead of all coming before any worker starts."""
    from ..video.images import IMAGE_EXTENSIONS
    from ..video.output_plan import check_plan
    from ..video.reader import open_input

    if job.dst.suffix.lower() in IMAGE_EXTENSIONS:
        return None, container_duration(job.src) if duration else None
    try:
        with open_input(job.src, exact_count=False) as inp:  # no count is judged here: no N-VOP pass
            info = inp.info
    except (EsrganVideoError, OSError):
        return None, None
    seconds = info.duration if duration else None
    try:
        check_plan(info, opts, src=job.src, dst=job.dst, model_scale=model_scale)
    except (OptionError, OutputError) as e:
        return str(e), seconds
    return None, seconds


def _seconds(v: Fraction | None) -> float | None:
    return None if v is None else float(v)


def segment_container(job: Job, options: UpscaleOptions | None) -> tuple[str, str | None]:
    """The suffix ``job``'s segments are rendered in and, when it is not the output's container, the encoder they
    are rendered with (the output's: ``--codec``, else its container's usual one). MPEG-TS/PS, AVI and the other
    containers that do not give back the timestamps written (``video.segment_join.EXACT_FORMATS``) would not say
    where a segment's frames lie, so their segments go into MOV (or MP4, or Matroska) and the join writes the
    output's container (``video.segment_join.segment_suffix``)."""
    if options is None:
        return job.dst.suffix, None
    from ..video.output_plan import with_codec
    from ..video.segment_join import segment_suffix

    enc = options.encode
    codec = with_codec(options, job.dst).encode.codec
    suffix = segment_suffix(job.dst, codec, enc.format)
    if suffix.lower() == job.dst.suffix.lower():
        return job.dst.suffix, None
    return suffix, codec


def segments_dir(outdir: Path, job_key: str) -> Path:
    """The folder a file's segments are rendered into (pure)."""
    return outdir / SEGMENTS_DIR / hashlib.sha1(job_key.encode()).hexdigest()[:16]


def remove_segments(seg_dir: Path) -> None:
    """Remove a finished file's segments folder, and the segments folder once no file has parts left."""
    shutil.rmtree(seg_dir, ignore_errors=True)
    try:
        seg_dir.parent.rmdir()
    except OSError:
        pass


def _segment_tasks(job: Job, segments: list[list], journal: Journal, opts_hashes: tuple[str, ...],
                   src_fp: dict[str, int], outdir: Path,
                   options: UpscaleOptions | None = None) -> tuple[list[Task], set[str], list[str], Path]:
    """From a plan task's ``segments`` (``[start, end, frames]``, exact seconds as ``"n/d"``): the segment tasks
    still to run (finished, verified parts with the same bounds, options — one of ``opts_hashes`` — and source are
    kept), their keys, every part path and the parts folder. ``options``: the run's, which say the segments' container
    (:func:`segment_container`)."""
    seg_dir = segments_dir(outdir, job.key)
    suffix, codec = segment_container(job, options)
    tasks, waiting, parts = [], set(), []
    for number, (start, end, _frames) in enumerate(segments):
        part = seg_dir / f"{number:04d}{suffix}"
        parts.append(str(part))
        key = segment_key(job.key, number)
        rec = journal.get(key)
        if (rec and rec["state"] == "done" and rec.get("options") in opts_hashes
                and rec.get("start") == start and rec.get("end") == end
                and _same_source(rec, src_fp) and verify_done(rec, part) is None):
            continue
        tasks.append(Task(key=key, kind="segment", job_key=job.key, src=str(job.src), dst=str(part),
                          start=parse_fraction(start), end=parse_fraction(end), overwrite=True, codec=codec))
        waiting.add(key)
    return tasks, waiting, parts, seg_dir


def _vanished(journal: Journal, jobs: list[Job], out: Path, say: Callable[[str], None]) -> list[JobRow]:
    """Files that failed in an earlier run and whose source is gone now (deleted, so no input names it): their
    records (and those of their segments, with the segments folder) are dropped from the journal, each said in the
    log and returned as a ``vanished`` row of the summary, so a failure nobody can retry is neither kept for ever
    nor dropped silently. A failed file that is merely not among this run's inputs (its source is still there)
    keeps its record; so does a record that names no source (made before failed records named it), and every
    finished file (an output kept after its source was deleted is the usual end of a batch)."""
    keys = {j.key for j in jobs}
    gone: list[tuple[str, dict[str, Any]]] = []
    for key, rec in journal.records.items():
        src = rec.get("src")
        if rec.get("state") != "failed" or rec.get("kind") == "segment" or key in keys or not isinstance(src, str):
            continue
        try:
            os.lstat(src)
        except (FileNotFoundError, NotADirectoryError):
            gone.append((key, rec))
        except OSError:  # cannot tell (permissions, a disk not there): kept
            pass
    if gone:  # one rewrite of the journal for them all, with their segments' records
        segments = tuple(f"{key}#seg" for key, _ in gone)
        journal.forget([key for key, _ in gone] + [k for k in journal.records if k.startswith(segments)])
    rows = []
    for key, rec in gone:
        if segments_dir(out, key).exists():
            remove_segments(segments_dir(out, key))
        why = f"its source {rec['src']} no longer exists; its failed record is dropped from the journal"
        say(f"forget   {key}: {why} (it failed in an earlier run: {rec.get('error', '')})")
        rows.append(JobRow(key, Path(rec["src"]), out / key, status="vanished",
                           error=f"{why} (it had failed: {rec.get('error', '')})"))
    return rows


def run_batch(
    inputs: Sequence[str | os.PathLike],
    outdir: str | os.PathLike,
    options: UpscaleOptions | None = None,
    *,
    suffix: str = "",
    ext: str | None = ".mkv",
    extensions: Sequence[str] | None = None,
    devices: str | Sequence[str] | None = None,
    ray: str | None = None,
    ray_num_cpus: int | None = None,
    segment_seconds: float | None = 300.0,
    threads: int | None = None,
    retry_failed: bool = False,
    force: bool = False,
    overwrite: bool = False,
    heartbeat_s: float = 5.0,
    stale_s: float = 300.0,
    max_attempts: int = 2,
    log: Callable[[str], None] | None = None,
    progress: Callable[[BatchSnapshot], None] | None = None,
    **flat_options,
) -> BatchSummary:
    """Upscale every video of ``inputs`` into ``outdir``, resumably (see docs/batch.md).

    ``options`` (:class:`~esrgan_video.options.UpscaleOptions`, or its fields as flat keywords over it) applies
    to every file; ``devices`` (``--devices``) lists the workers, else ``options.runtime.device``, else every
    visible GPU (or one CPU worker).

    Raises (before anything runs) ``InputError`` for inputs that match nothing or clashing outputs,
    ``ModelError`` for an unusable model and ``OutputError`` when finished outputs were made with other
    options and ``force`` is not set. Per-file problems never raise: they are rows of the summary.
    ``KeyboardInterrupt`` is re-raised as ``BatchInterrupted`` carrying the partial summary. Called at a script's
    top level (not under ``if __name__ == "__main__":``), the workers' start stops the batch with
    ``UnguardedMainError`` (:func:`refuse_unguarded_main`).
    ``progress`` receives a :class:`~esrgan_video.batch.progress.BatchSnapshot` (running files' frames, fps,
    ETA and the batch's total) whenever a worker reports progress (about twice a second) or a task ends.
    """
    refuse_unguarded_main()  # a worker importing an unguarded script: before anything is read or loaded
    opts = UpscaleOptions.from_kwargs(options, **flat_options)
    start, end = opts.trim.start, opts.trim.end
    t0 = time.perf_counter()
    say = log or (lambda msg: print(f"esrgan-video batch: {printable(msg)}", file=sys.stderr, flush=True))
    if segment_seconds is not None and segment_seconds < 0:
        raise OptionError("segment_seconds", ">= 0 (0 = never split)", segment_seconds)
    if max_attempts < 1:
        raise OptionError("max_attempts", "an integer >= 1", max_attempts)
    if threads is not None and threads < 1:
        raise OptionError("threads", "an integer >= 1", threads)
    if ray_num_cpus is not None and ray_num_cpus < 1:
        raise OptionError("ray_num_cpus", "an integer >= 1", ray_num_cpus)
    if not stale_s > heartbeat_s:  # every worker would be killed as silent before its first heartbeat
        raise OptionError("stale_s", f"more seconds than a worker's heartbeat interval ({heartbeat_s:g} s)", stale_s)
    out = Path(outdir).resolve()
    passed_over: list[Path] = []
    sources = discover(inputs, extensions=extensions or VIDEO_EXTENSIONS, exclude=[out], outputs=_own_outputs(out),
                       skipped=passed_over)
    for folder in passed_over:  # said, not silently left out
        say(f"not walked {folder}: another batch's output folder (it holds {JOURNAL_NAME}); name it as an input "
            "to upscale what is in it")
    if not sources:
        raise InputError("no video files found in the inputs (see --extensions)")
    jobs = plan_jobs(sources, out, suffix=suffix, ext=ext)
    _check_encoding(opts, jobs)
    if segment_seconds and (start is not None or end is not None):
        segment_seconds = None  # trimmed runs are short by choice; segments would need trimming too
    seg_s = segment_seconds or None

    from ..models import load_model

    # validates the model before anything starts, downloads it once, and names its exact weights
    m = opts.model
    extra = {} if m.denoise is None else {"denoise": m.denoise}
    model_info = load_model(m.model, blend=m.blend, offline=m.offline, **extra).info
    model_sha = model_info.sha256
    video_hashes: dict[str, tuple[str, str]] = {}  # by the output container's encoder: one pair per kind, not per file
    still_h = job_hashes(model_sha, opts, segment_seconds=seg_s, still=True)[0]
    # the options as given (no encoder's defaults compared): what records made before that carry, the same bytes
    given_whole, given_parts = job_hashes(model_sha, opts, segment_seconds=seg_s, still=False)

    def hashes(job: Job, still: bool) -> tuple[str, str]:
        """The job's (whole-file, parts) options hashes (:func:`job_hashes`); a still's parts hash is a video's
        into its container, which its records from before the whole-file hash were made with."""
        codec = container_codec(job.dst, opts)
        if codec not in video_hashes:
            video_hashes[codec] = job_hashes(model_sha, opts, segment_seconds=seg_s, still=False, codec=codec)
        return (still_h, video_hashes[codec][1]) if still else video_hashes[codec]
    device_list = parse_devices(devices or opts.runtime.device) if ray is None else []
    for d in device_list:  # a device this machine lacks: one error now, not every file failed in the journal
        resolve_device(d)
    if threads is None and device_list:
        threads = max(1, (os.cpu_count() or 1) // len(device_list))
    settings = WorkerSettings(options=opts, threads=threads)

    with Journal(out) as journal:
        plan = Plan(journal, max_attempts=max_attempts, log=say, progress=progress, options=opts)
        rows: list[JobRow] = []
        todo: list[tuple[Job, JobRow, bool]] = []
        job_hashes_of: dict[str, tuple[str, str]] = {}
        changed: list[Job] = []
        said: list[str] = []  # what will be redone and why: logged once the run is known to start
        for job in jobs:
            row = JobRow(job.key, job.src, job.dst)
            rows.append(row)
            row.still = _is_still(job)
            whole_h, h = job_hashes_of[job.key] = hashes(job, row.still)
            # the hashes of the options as given: records from before the encoder's defaults were compared
            given = (given_parts,) if row.still else (given_whole, given_parts)
            rec = journal.get(job.key)
            owned = rec is not None
            if rec and rec["state"] == "done" and not overwrite and _other_source(rec, job.src):
                row.status = "failed"
                row.error = (f"{job.dst}: made by an earlier run from {rec['src']}, not from this source (another file "
                             "with this output name); pass --overwrite to replace it, or use another output folder")
                continue
            if rec and rec["state"] == "done":
                # a joined file is the run's cuts; a file made in one piece (or a still) is its own hash, and one
                # with every option the run's (``h``, a record from before the whole-file hash) is the same file
                if rec.get("options") not in ((h, given_parts) if rec.get("kind") == "join" else (whole_h, h, *given)):
                    changed.append(job)
                    todo.append((job, row, True))
                    continue
                try:
                    fp = _src_fingerprint(job.src)
                except OSError as e:
                    row.status, row.error = "failed", _unreadable(job.src, e)
                    continue
                reason = verify_done(rec, job.dst)
                if reason is None and _same_source(rec, fp):
                    if rec.get("kind") == "join" and segments_dir(out, job.key).exists():
                        remove_segments(segments_dir(out, job.key))  # left by a driver stopped right after the join
                    row.status, row.frames, row.already_done = "skipped", int(rec.get("frames", 0)), True
                    row.reuse = reuse_from_record(rec.get("reuse"))  # as journaled when it was made
                    if rec.get("damage"):  # done earlier from a damaged input: still say so (and exit 8)
                        row.status, row.damage = "damaged", [str(rec["damage"])]
                    continue
                said.append(f"redo     {job.key}: {reason or 'the source changed since the output was made'}")
            elif rec and rec["state"] == "failed" and not retry_failed:
                why = ("the source changed since it failed" if _source_changed(rec, job.src)
                       else "it failed with other options" if rec.get("options") not in (None, whole_h, h, *given)
                       else None)
                if why is None:
                    row.status, row.failed_before = "failed", True
                    row.error = f"failed in an earlier run (rerun with --retry-failed): {rec.get('error', '')}"
                    continue
                said.append(f"retry    {job.key}: {why}")
            if not owned and job.dst.exists() and not overwrite:
                row.status = "failed"
                row.error = f"{job.dst}: already exists and was not made by this batch (pass --overwrite to replace it)"
                continue
            todo.append((job, row, owned or overwrite))
        if changed and not force:
            raise OutputError(
                f"{out}: {len(changed)} finished output(s) were made with different options or model "
                f"(first: {changed[0].dst}); rerun with --force to redo them, or use another output folder")
        for msg in said:
            say(msg)
        rows.extend(_vanished(journal, jobs, out, say))

        plan.segment_seconds = seg_s
        judge = ThreadPoolExecutor(max_workers=1, thread_name_prefix="esrgan-video-batch-judge")
        try:
            for job, row, owned in todo:
                st = _JobState(job, row, owned, *job_hashes_of[job.key], parts_before=given_parts)
                if owned:
                    remove_partials(job.dst)  # left by a worker killed in an earlier run (we hold the lock)
                try:
                    fp = _src_fingerprint(job.src)
                except OSError as e:
                    row.status, row.error = "failed", _unreadable(job.src, e)
                    continue
                # its output judged and its duration read (whether it lasts at least two segments, its weight in the
                # batch's progress; unreadable: not split, so the whole-file task reports the real error) in the
                # judging thread, in order, while the workers start and run: admitted once judged (Plan.admit)
                plan.add(st, judge.submit(_judged, opts, job, model_info.descriptor.scale,
                                          duration=bool(seg_s) or progress is not None), fp)

            n_run = len(plan.jobs)
            if progress is not None:
                plan.start_progress(dict.fromkeys(plan.jobs))  # each file's duration once it is judged
            say(f"{counted(len(jobs), "file")}: {n_run} to run, {sum(r.status == 'skipped' for r in rows)} already done"
                + (f", {sum(r.status == 'failed' for r in rows)} failed before starting" if any(r.status == 'failed' for r in rows) else ""))
            plan.admit()  # the first job judged: no worker is started for a batch whose every file is refused
            if not plan.finished():
                if ray is not None:
                    from .scheduler import RayScheduler

                    RayScheduler(ray, settings, num_cpus=ray_num_cpus, max_retries=max_attempts - 1, log=say).run(plan)
                else:
                    from .scheduler import LocalScheduler

                    LocalScheduler(device_list, settings, heartbeat_s=heartbeat_s, stale_s=stale_s, log=say).run(plan)
        except KeyboardInterrupt as e:
            for r in rows:
                if r.status == "pending":
                    r.status = "interrupted"
            stopped = 128 + int(getattr(e, "signum", 2))  # cli.signals.Terminated carries SIGTERM's or SIGHUP's
            raise BatchInterrupted(BatchSummary(rows, time.perf_counter() - t0, stopped=stopped)) from e
        finally:
            judge.shutdown(wait=False, cancel_futures=True)  # what is left unjudged (stopped, or failed) is dropped
    for r in rows:
        if r.status == "pending":  # cannot happen unless a scheduler returned early
            r.status, r.error = "failed", "not run"
    return BatchSummary(rows, time.perf_counter() - t0)
