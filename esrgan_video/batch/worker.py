"""What a worker does with one task (the same code in local worker processes and in Ray actors).

A task is a whole file, one segment of a file, or the join of a file's segments. Workers load the model
themselves (from a name or a path, once per process and device) and never touch the journal: they
return a result dict that the driver records.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

from ..errors import EsrganVideoError, causes
from ..video.probe import probe
from ..options import UpscaleOptions
from .journal import fraction_text

WORKER_PROCESS_NAME = "esrgan-batch-worker-"
"""How the local scheduler's worker processes are named (``multiprocessing`` names them before it imports the main
script in them), followed by the worker's number: what ``driver.refuse_unguarded_main`` tells a worker by."""


@dataclass(frozen=True)
class Task:
    """One unit of work. ``key`` is its journal key; ``dst`` is the file it writes."""

    key: str
    kind: str  # "plan" (scan keyframes, cut segments) | "whole" | "segment" | "join"
    job_key: str
    src: str
    dst: str
    start: Fraction | None = None
    end: Fraction | None = None
    parts: tuple[str, ...] = ()
    overwrite: bool = True
    segment_seconds: float | None = None
    still: bool = False
    """A whole-file task that upscales a still image (``stills.is_still_job``), as the driver found it when it read
    the source's header (``driver._is_still``): the worker writes it by ``upscale_image`` without probing it again."""
    codec: str | None = None
    """A segment rendered in another container than its file's output (``video.segment_join.segment_suffix``): the
    output's encoder, and its container's muxer is left to the segment's suffix (the join writes the output's)."""


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker needs besides the task (picklable; the model travels as a name or path)."""

    options: UpscaleOptions
    """The run's options, whole (the device of each worker replaces ``options.runtime.device``)."""
    threads: int | None = None


def out_of_space(e: BaseException | None) -> bool:
    """Whether ``e``, or an error it was raised from, is the file system's "no space left on device" (ENOSPC) or
    "disk quota exceeded" (EDQUOT): not the file's fault, and every file after it would fail the same way."""
    return any(isinstance(c, OSError) and c.errno in (errno.ENOSPC, errno.EDQUOT) for c in causes(e))


def one_line(e: BaseException) -> str:
    """The user-facing sentence of an error, on one line."""
    text = str(e) if isinstance(e, EsrganVideoError) else f"{type(e).__name__}: {e}"
    return " ".join(text.split()) or type(e).__name__


def file_facts(path: str | os.PathLike) -> dict[str, Any]:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "probe": probe(path)}


_UPSCALERS: dict[tuple, Any] = {}


def _upscaler(settings: WorkerSettings, device: str | None):
    """One Upscaler per (model options, runtime options, device) in this process, reused across tasks."""
    opts = settings.options
    runtime = dataclasses.replace(opts.runtime, device=device) if device is not None else opts.runtime
    key = (opts.model, runtime)
    up = _UPSCALERS.get(key)
    if up is None:
        from ..upscaler import Upscaler

        for old in _UPSCALERS.values():
            old.close()
        _UPSCALERS.clear()
        up = Upscaler(opts.model, runtime)
        _UPSCALERS[key] = up
    return up


def cut_into_segments(task: Task, reuse: str = "exact") -> dict[str, Any]:
    """The ``"plan"`` task: cut the source at keyframes into segments of about ``segment_seconds``.

    Reads the source's packet index (one demux pass, no decoding; the index is cached in this process, so
    segments rendered here later do not demux the file again). Runs on a worker so the driver never reads
    whole files; returns exact timestamps as ``"n/d"`` strings: ``segments`` is ``[start, end, frame count]``.
    ``reuse``: the run's ``--reuse`` mode (``near`` cuts only at its reset points, see ``plan_segments``)."""
    from ..video.keyframes import scan_keyframes
    from ..video.packet_index import read_packet_index
    from .segments import media_origin, plan_segments

    index = scan_keyframes(task.src)
    segments = plan_segments(index, seconds=Fraction(task.segment_seconds or 0).limit_denominator(1000), reuse=reuse)
    # the segments' times are the reader's media times, which count from its origin (VideoInfo.start_time: no later
    # than the first frame), not always the container's start (the index's): told from the packet index the scan
    # read (cached), not by opening the source again
    origin = media_origin(read_packet_index(task.src))
    bounds = [seg.bounds_seconds(index.time_base, origin) for seg in segments]
    return {
        "frame_count": index.frame_count,
        "segments": [[fraction_text(a), fraction_text(b), seg.frame_count] for (a, b), seg in zip(bounds, segments)],
        "open_gop_cuts": len(index.open_gop),
    }


def join_times_refused(task: Task, options: UpscaleOptions) -> str | None:
    """The one-pass refusal (``writer.check_avi_times``, its one line) a join of ``task``'s segments into its output
    would bypass, else None: the segments are rendered in MOV and joined into the output's AVI by remuxing, where a
    variable-rate input's B-frames (libx264, libx265) would get the decode-order times a single pass refuses to write.
    The output's encoder, its pixel format (as ``output_plan.plan_output`` chooses it) and options, as the writer
    would have them."""
    from ..video.output_plan import output_encoder, output_pix_fmt, with_codec
    from ..video.reader import open_input
    from ..video.writer import check_avi_times, output_format

    enc = with_codec(options, task.dst).encode
    muxer = output_format(task.dst, enc.format)
    if muxer != "avi":
        return None
    with open_input(task.src) as inp:
        info = inp.info
        pix_fmt, _ = output_pix_fmt(info, enc, muxer)
        codec_options = output_encoder(enc).codec_options()
        try:
            check_avi_times(task.dst, muxer, enc.codec, pix_fmt, codec_options, inp)
        except EsrganVideoError as e:
            return one_line(e)
    return None


def apply_threads(threads: int | None) -> None:
    """Fix the CPU thread count (determinism: float sums depend on how work is split)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


class ProgressThrottle:
    """``upscale_video``'s progress callback that hands ``send`` a dict (frame, total, fps, eta, and the frames and
    tiles reused so far when the progress carries them) at most every ``interval`` seconds, and always for the last
    frame (what workers report to the driver)."""

    def __init__(self, send: Callable[[dict[str, Any]], None], interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.send, self.interval, self.clock = send, interval, clock
        self._last: float | None = None

    def __call__(self, p) -> None:
        now = self.clock()
        if self._last is not None and now - self._last < self.interval and p.frame != p.total:
            return
        self._last = now
        info = {"frame": p.frame, "total": p.total, "fps": round(p.fps, 3),
                "eta": None if p.eta is None else round(p.eta, 1)}
        for name in ("frames_reused", "tiles_reused"):  # upscale_video's Progress has them (``--reuse``)
            if getattr(p, name, None) is not None:
                info[name] = int(getattr(p, name))
        self.send(info)


def execute_task(task: Task, settings: WorkerSettings, device: str | None,
                 progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run one task and return what the driver records (raises on failure). ``progress`` receives the task's
    progress (see :class:`ProgressThrottle`) while a file or segment is upscaled."""

    t0 = time.perf_counter()
    if task.kind == "plan":
        planned = cut_into_segments(task, settings.options.runtime.reuse)
        if len(planned["segments"]) > 1 and join_times_refused(task, settings.options) is not None:
            # not split: the whole-file task's writer refuses it with the same line, as a single pass does
            planned["segments"] = [[None, None, planned["frame_count"]]]
        return planned
    Path(task.dst).parent.mkdir(parents=True, exist_ok=True)
    if task.kind == "join":
        from ..video.segment_join import join_segments
        from ..video.stream_copy import stream_selection

        enc = settings.options.encode
        notices = []  # the copier's notes (streams converted or left out): the segments copied no streams
        res = join_segments(task.src, task.parts, task.dst, copy_streams=enc.copy_streams,
                            selection=stream_selection(enc), overwrite=task.overwrite, notice=notices.append,
                            format=enc.format)
        frames, lost, damage, reuse = res.frames, 0, None, None  # the driver adds the segments' reuse
    elif task.kind == "whole" and task.still:  # as `esrgan-video in.png out.png`: an image (the driver's finding)
        from ..stills import still_options, upscale_image

        notices, lost_lines = [], []
        # without the encoding and trimming groups: they were given for the run's videos, so a still says nothing
        upscale_image(task.src, task.dst, still_options(settings.options), overwrite=task.overwrite,
                      upscaler=_upscaler(settings, device), notice=notices.append, on_damage=lost_lines.append)
        frames, lost, damage, reuse = 1, 0, (lost_lines[0] if lost_lines else None), None  # a cut PNG/JPEG: damaged
    elif task.kind in ("whole", "segment"):
        from ..pipeline import upscale_video

        opts = settings.options
        if opts.encode.verbose:  # FFmpeg's own log lines in this worker process too, as the CLI's --verbose
            from ..video.chatter import show_ffmpeg_log

            show_ffmpeg_log(True)
        if task.kind == "segment":
            opts = opts.replace(start=task.start, end=task.end, copy_streams=False, shift_timestamps=False)
            if task.codec is not None:  # in an intermediate container: the output's encoder, the suffix's muxer
                opts = opts.replace(codec=task.codec, format=None)
        result = upscale_video(task.src, task.dst, opts, upscaler=_upscaler(settings, device),
                               overwrite=task.overwrite,
                               progress=ProgressThrottle(progress) if progress is not None else None)
        frames, lost, damage = result.frames, result.lost_frames, result.damage
        notices = [m for m in result.notices if m != damage]  # the damage line has its own field
        reuse = result.reuse.as_dict() if result.reuse is not None else None
    else:
        raise ValueError(f"unknown task kind {task.kind!r}")
    out = {"frames": frames, "lost_frames": lost, "seconds": round(time.perf_counter() - t0, 3), **file_facts(task.dst)}
    if reuse is not None:
        out["reuse"] = reuse  # RunResult.reuse (ReuseStats.as_dict): the driver sums a file's segments
    if damage:
        out["damage"] = damage  # the input was truncated or frames were undecodable; the output is kept
    if notices:
        out["notices"] = notices  # what the run told its user (the driver logs them; the journal does not keep them)
    return out
