"""The streaming core: demux + decode → upload + to-RGB → tile + infer → from-RGB + download → encode + mux.

One orchestrator owns the threads, so memory stays fixed however long the video is:

- decode runs on a one-thread executor, one frame ahead (``video.reader`` gives native planes);
- ``workers`` threads (one per CUDA stream; one on the CPU) run the frame transform
  (:class:`~esrgan_video.frames.transform.FrameTransform`: upload, to-RGB, model, resize, from-RGB,
  download) on decoded frames;
- the calling thread encodes and muxes (``video.writer``) the results in submission order.

A bounded deque of futures in submission order is the whole protocol: its length bounds the frames in
flight (back-pressure: a slow encoder stops new submissions, and decoding stops one frame later), its
head is the next frame to encode (order), and ``Future.result()`` re-raises a stage's exception in the
calling thread (error propagation). Decode, convert+infer and encode stay concurrent.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

from ._entry import check_upscaler_options, path_arg
from .errors import EsrganVideoError, InputError, OptionError
from .files import check_can_create, check_output_place
from .frames.reuse import ReuseStats
from .frames.transform import FrameTransform
from .options import UpscaleOptions
from .upscaler import Upscaler
from .video.output_plan import check_plan, check_planned_size, known_scale, plan_output, with_codec
from .video.reader import open_input
from .video.trim import check_trim
from .video.stream_copy import stream_selection
from .video.writer import PIPE, OutputVideo, check_output


@dataclass
class Progress:
    """What a progress callback receives after each encoded frame."""

    frame: int
    total: int | None
    fps: float
    eta: float | None
    frames_reused: int = 0
    """Frames so far whose every tile was reused (``--reuse``); 0 with reuse off."""
    tiles_reused: int = 0
    """Tiles so far whose output was reused."""


@dataclass
class RunResult:
    """What one run produced."""

    output: Path
    frames: int
    lost_frames: int
    seconds: float
    fps: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    backend: str = ""
    backend_reason: str = ""
    """Why ``--backend auto`` picked that backend (``BackendInfo.reason``), e.g. "no CUDA device, onnxruntime found →
    ONNX Runtime CPU fp32"."""
    reuse: ReuseStats = field(default_factory=ReuseStats)
    """What ``--reuse`` did: mode, frames and tiles seen and reused, resets."""
    encoder: str = ""
    """The encoder settings used (``EncoderSettings.describe()``), e.g. "libx264 crf 16 (default), preset medium
    (encoder default)"."""
    size: tuple[int, int] = (0, 0)
    """The output frame (width, height)."""
    sar: Fraction = Fraction(1)
    """The output's sample aspect ratio (``frames.sizing.plan_size``)."""
    damage: str | None = None
    """The one line about what the input lost (truncated, undecodable frames), None for an intact input; the
    output is kept either way (``video.damage``)."""
    truncated: bool = False
    """The input ends before what its video stream promised (or its demuxer stopped at damaged data)."""

    @property
    def damaged(self) -> bool:
        """The input was damaged (truncated or frames lost): the CLI exits 9, batch records ``damaged``."""
        return self.damage is not None


class _StageClock:
    """Seconds spent per stage (summed across the threads of a stage)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {"decode": 0.0, "convert": 0.0, "infer": 0.0, "encode": 0.0}

    def add(self, stage: str, dt: float) -> None:
        with self._lock:
            self.seconds[stage] += dt


def upscale_video(
    src: str | Path,
    dst: str | Path,
    options: UpscaleOptions | None = None,
    *,
    overwrite: bool = False,
    keep_partial: bool = False,
    progress: Callable[[Progress], None] | None = None,
    notice: Callable[[str], None] | None = None,
    upscaler: Upscaler | None = None,
    **flat_options,
) -> RunResult:
    """Upscale the video ``src`` into ``dst``, keeping every frame, timestamp, stream and colour tag.

    ``options`` (:class:`~esrgan_video.options.UpscaleOptions`) says what to do; its fields may also be given
    as flat keywords (``model=``, ``scale=``, ``codec=``, ``start=``, …; see :mod:`esrgan_video.options`), over
    ``options``. ``upscaler`` reuses a loaded model (batch mode; the model and runtime options are then its
    own, and giving them as keywords beside it, ``model=``, ``tile=``, ..., is a ``TypeError``; ``reuse=`` may
    still be given); otherwise one is made from the options and closed at the end. ``notice`` receives one-line
    warnings (interlacing, HDR, pixel format). ``src``/``dst`` that are not a ``str`` or ``os.PathLike`` path are
    a ``TypeError`` naming the argument.
    """
    path_arg("src", src)  # TypeError for bytes, None, an int...; the paths themselves pass on as given
    path_arg("dst", dst)
    check_upscaler_options(upscaler, flat_options)
    opts = with_codec(UpscaleOptions.from_kwargs(options, **flat_options), dst)  # --codec: else the container's
    enc, trim = opts.encode, opts.trim
    codec, start, end = enc.codec, trim.start, trim.end
    t0 = time.perf_counter()
    notices: list[str] = []

    def say(msg: str) -> None:
        notices.append(msg)
        if notice is not None:
            notice(msg)

    own_upscaler = upscaler is None
    with open_input(src, notice=say) as inp:
        info = inp.info
        for msg in inp.notices():
            say(msg)
        # a trim that selects no frame: OptionError before anything is loaded or opened
        kept = check_trim(inp, start, end)
        # a container that cannot hold the codec (or a still image's name the frames): before any work
        check_output(dst, codec, format=enc.format, frames=lambda: len(inp.frame_times()) if kept is None else kept)
        if str(dst) != PIPE:  # where the output cannot go (it exists, no folder, the input): before the model loads
            check_output_place(dst, overwrite=overwrite, src=src)
            check_can_create(dst)
        _check_streams_keep(inp, enc)
        # every refusal of the output that needs nothing from the model (a --pix-fmt the encoder refuses, MPEG-2 at
        # 7 fps, AVI times, ...): before the model is looked up; frame sizes too where its scale is known
        check_plan(info, opts, src=src, dst=dst, inp=inp,
                   model_scale=upscaler.scale if upscaler is not None else known_scale(opts.model))
        up = upscaler or Upscaler(opts.model, opts.runtime)
        reuse = opts.runtime.reuse if upscaler is None or _reuse_given(options, flat_options) else up.runtime.reuse
        try:
            plan = plan_output(info, opts, model_scale=up.scale, src=src, dst=dst)
            check_planned_size(plan, opts, dst=dst)  # a checkpoint's scale is known now: before a backend or frame
            for msg in plan.notices:
                say(msg)
            size = plan.size
            clock = _StageClock()
            # Built before the output is opened: the backend for this frame size (a TensorRT engine, an ONNX
            # export) is made here, so a build or backend error never leaves a started file.
            transform = FrameTransform(
                up, src=plan.src, dst=plan.dst, in_size=(info.width, info.height), out_size=size.size,
                resize=size.resize, clock=clock.add, notice=say, reuse=reuse,
            )
            resets = _near_reset_pts(src) if reuse == "near" else frozenset()
            with OutputVideo(
                dst, template=inp, codec=codec, pix_fmt=plan.pix_fmt, crf=enc.crf, preset=enc.preset,
                options=enc.encoder_options, size=size.size, color=plan.dst.color, copy_streams=enc.copy_streams,
                start=start, end=end, shift_timestamps=enc.shift_timestamps, overwrite=overwrite,
                keep_partial=keep_partial, sar=size.sar if size.sar != (info.sample_aspect_ratio or 1) else None,
                format=enc.format, selection=stream_selection(enc), verbose=enc.verbose, notice=say,
            ) as out:
                frames, read = _stream(inp, out, transform, clock, start=start, end=end, progress=progress, t0=t0,
                                       resets=resets)
            encoder = out.encoder_settings.describe()
            lost = read.lost_frames
            backend_name = up.backend_info.name if up.backend_info is not None else ""
            backend_reason = up.backend_info.reason if up.backend_info is not None else ""
        finally:
            if own_upscaler:
                up.close()
    seconds = time.perf_counter() - t0
    return RunResult(
        output=Path(dst), frames=frames, lost_frames=lost, seconds=seconds,
        fps=frames / seconds if seconds > 0 else 0.0, stage_seconds=clock.seconds, notices=notices,
        backend=backend_name, backend_reason=backend_reason, reuse=transform.reuse_stats, encoder=encoder,
        size=size.size, sar=size.sar, damage=read.report(), truncated=read.truncated,
    )


def _backwards(inp, prev, frame) -> str:
    """The one line for a frame whose timestamp is not after the previous frame's (the output cannot hold it)."""
    t0, t1 = (float(inp.media_time(f.pts, f.time_base)) for f in (prev, frame))
    how = "jump back" if frame.pts < prev.pts else "repeat"
    return (f"{inp.path}: its timestamps {how} from {t0:.3f} s (frame {prev.index}) to {t1:.3f} s (frame "
            f"{frame.index}); the frames cannot be written in order")


def _near_reset_pts(src) -> frozenset[int]:
    """The timestamps where ``--reuse near`` drops its references: the batch segmenter's cut candidates
    (:func:`~esrgan_video.frames.reuse.reset_points` over the clean keyframe cuts), so segmented, resumed and
    one-pass runs give the same frames."""
    from .frames.reuse import reset_points
    from .video.keyframes import scan_keyframes

    index = scan_keyframes(src)
    return frozenset(reset_points(index.pts, index.cuts, index.time_base))


def _check_streams_keep(inp, enc) -> None:
    """``--streams-keep`` naming a stream the input lacks: OptionError before any work (not a run that silently
    copies less than asked). Checked with ``copy_streams=False`` too: batch's segments copy nothing themselves,
    their join does."""
    if enc.streams_keep is None:
        return
    with inp.open_container() as c:
        count = len(c.streams)
    missing = [i for i in enc.streams_keep if i >= count]
    if missing:
        raise OptionError("streams_keep", f"stream indices of {inp.info.path.name} (0 to {count - 1})",
                          ",".join(map(str, missing)))


def _reuse_given(options: UpscaleOptions | None, flat: dict) -> bool:
    """Whether this call chose a reuse mode itself (options or ``reuse=``); else a passed-in Upscaler's runtime
    options decide."""
    return "reuse" in flat or options is not None


def _transform_one(transform: FrameTransform, planes, *, seq: int, reset: bool):
    """One frame through the transform: (output planes, its reuse Decision or None)."""
    got = []
    out = transform(planes, seq=seq, reset=reset, decided=got.append)
    return out, got[0] if got else None


def _stream(inp, out, transform: FrameTransform, clock: _StageClock, *, start, end, progress, t0,
            resets: frozenset[int] = frozenset()):
    """Decode, transform and encode concurrently; returns the frames written and the reader's statistics
    (``video.damage.ReadStats``).

    ``pending`` holds ``(frame, future)`` in submission order; at most ``depth`` frames are in flight.
    """
    workers = transform.slots
    depth = 2 * workers + 2
    total = inp.frame_count_in(start, end)
    frames = inp.frames(start=start, end=end)

    def decode_one():
        ta = time.perf_counter()
        frame = next(frames, None)
        clock.add("decode", time.perf_counter() - ta)
        return frame

    written = 0
    frames_reused = tiles_reused = 0  # of the frames written (the transform's stats count the frames decided)
    seq = 0
    last = None  # the last frame written: the writer takes strictly increasing timestamps only
    pending: deque[tuple[object, Future]] = deque()
    decoder = ThreadPoolExecutor(1, thread_name_prefix="esrgan-decode")
    infer = ThreadPoolExecutor(workers, thread_name_prefix="esrgan-infer")
    try:
        decoding: Future | None = decoder.submit(decode_one)
        while decoding is not None or pending:
            if decoding is not None and len(pending) < depth:
                head = [pending[0][1]] if pending else []
                wait([decoding, *head], return_when=FIRST_COMPLETED)
                if decoding.done():
                    frame = decoding.result()  # a decode error is raised here
                    if frame is None:
                        decoding = None
                    else:
                        pending.append((frame, infer.submit(_transform_one, transform, frame.planes, seq=seq,
                                                            reset=frame.pts in resets)))
                        seq += 1
                        decoding = decoder.submit(decode_one)
                    continue
            frame, fut = pending.popleft()
            if last is not None and frame.pts <= last.pts:
                raise InputError(_backwards(inp, last, frame))
            last = frame
            planes, decision = fut.result()  # a transform error is raised here
            if decision is not None:
                frames_reused += decision.whole_frame_reused
                tiles_reused += decision.count - len(decision.compute)
            te = time.perf_counter()
            out.write(planes, frame.pts, captions=frame.captions, hdr10plus=frame.hdr10plus,
                      side_data=frame.side_data)
            clock.add("encode", time.perf_counter() - te)
            written += 1
            if progress is not None:
                elapsed = time.perf_counter() - t0
                fps = written / elapsed if elapsed > 0 else 0.0
                eta = (total - written) / fps if total and fps > 0 else None
                progress(Progress(frame=written, total=total, fps=fps, eta=eta, frames_reused=frames_reused,
                                  tiles_reused=tiles_reused))
    finally:
        transform.abort()  # frames waiting for a turn behind an abandoned one give up
        for _, fut in pending:
            fut.cancel()
        infer.shutdown(wait=True, cancel_futures=True)
        decoder.shutdown(wait=True, cancel_futures=True)
        frames.close()
    if transform.upscaler is not None:  # the last frames' deferred non-finite checks: raised before the output is kept
        transform.upscaler.flush()
    te = time.perf_counter()
    out.flush()
    clock.add("encode", time.perf_counter() - te)
    return written, frames.stats


__all__ = ["upscale_video", "RunResult", "Progress", "EsrganVideoError"]
