"""The streaming core: demux + decode → upload + to-RGB → tile + infer → from-RGB + download → encode + mux.

One orchestrator owns the threads and the bounded queues between the passive stages, so
memory stays fixed however long the video is:

- a decode thread reads native planes (``video.reader``) into ``frames_in``;
- ``workers`` threads (one per CUDA stream; one on the CPU) each take a frame, upload its planes
  (pinned memory, non-blocking copy on their own stream), convert to RGB (``color``), upscale
  (``Upscaler``), resize to the requested size, convert back to planes and download them;
- the calling thread encodes and muxes (``video.writer``), putting frames back in index order.

In-flight frames are bounded by a semaphore, so a slow encoder throttles the decoder.
"""

from __future__ import annotations

import dataclasses
import threading
from contextlib import nullcontext
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from queue import Queue
from typing import Callable

import numpy as np
import torch

from .frames import color as colormod
from .errors import EsrganVideoError
from .options import UpscaleOptions
from .frames.pixel_formats import pixel_format
from .frames.sizing import output_size, resize_rgb
from .upscaler import Upscaler
from .video.encoder_formats import choose_pix_fmt
from .video.reader import open_input
from .video.writer import OutputVideo

_DONE = object()


@dataclass
class Progress:
    """What a progress callback receives after each encoded frame."""

    frame: int
    total: int | None
    fps: float
    eta: float | None


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


def _alpha_plane(fmt) -> int:
    return next(i for i, names in enumerate(fmt.planes) if "A" in names)


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
    own); otherwise one is made from the options and closed at the end. ``notice`` receives one-line
    warnings (interlacing, HDR, pixel format).
    """
    opts = UpscaleOptions.from_kwargs(options, **flat_options)
    enc, trim = opts.encode, opts.trim
    codec, start, end = enc.codec, trim.start, trim.end
    t0 = time.perf_counter()
    notices: list[str] = []

    def say(msg: str) -> None:
        notices.append(msg)
        if notice is not None:
            notice(msg)

    own_upscaler = upscaler is None
    with open_input(src) as inp:
        info = inp.info
        for msg in inp.notices():
            say(msg)
        in_fmt = pixel_format(info.pix_fmt)
        spec = info.color.resolved(info.width, info.height, in_fmt)
        out_pix_fmt, pix_notice = choose_pix_fmt(codec, info.pix_fmt, requested=enc.pix_fmt)
        if pix_notice:
            say(pix_notice)
        out_fmt = pixel_format(out_pix_fmt)
        if in_fmt.alpha and not out_fmt.alpha:
            say(f"{src}: the alpha channel is dropped because {out_pix_fmt} has none; "
                "use --codec ffv1 (or prores_ks with --pix-fmt yuva444p10le) to keep it")
        up = upscaler or Upscaler(opts.model, opts.runtime)
        try:
            out_w, out_h = output_size(
                info.width, info.height, model_scale=up.scale, scale=opts.size.scale, size=opts.size.size,
                multiple=(1 << out_fmt.log2_chroma_w, 1 << out_fmt.log2_chroma_h),
            )
            out_spec = output_color(spec, in_fmt, out_fmt, out_w, out_h)
            with OutputVideo(
                dst, template=inp, codec=codec, pix_fmt=out_pix_fmt, crf=enc.crf, preset=enc.preset,
                options=enc.encoder_options, size=(out_w, out_h), color=out_spec, copy_streams=enc.copy_streams,
                start=start, end=end, shift_timestamps=enc.shift_timestamps, overwrite=overwrite,
                keep_partial=keep_partial,
            ) as out:
                frames, clock = _stream(
                    inp, out, up, in_fmt=in_fmt, out_fmt=out_fmt, spec=spec, out_spec=out_spec, size=(out_w, out_h),
                    start=start, end=end, progress=progress, t0=t0,
                )
            lost = inp.lost_frames
            backend_name = up.backend_info.name if up.backend_info is not None else ""
            backend_reason = up.backend_info.reason if up.backend_info is not None else ""
        finally:
            if own_upscaler:
                up.close()
    if lost:
        say(f"{src}: {lost} frame(s) could not be decoded and were skipped")
    seconds = time.perf_counter() - t0
    return RunResult(
        output=Path(dst), frames=frames, lost_frames=lost, seconds=seconds,
        fps=frames / seconds if seconds > 0 else 0.0, stage_seconds=clock.seconds, notices=notices,
        backend=backend_name, backend_reason=backend_reason,
    )


def output_color(spec: colormod.ColorSpec, in_fmt, out_fmt, width: int, height: int) -> colormod.ColorSpec:
    """The colour facts written to the output (pure).

    Same family in and out: the input's (resolved) facts, guessed ones included, so players don't
    guess differently at the new size. RGB in, YUV/gray out: a YUV matrix, range and chroma siting
    chosen for the output size by the same rule. YUV in, RGB out: the identity matrix, full range.
    Primaries and transfer always pass through.
    """
    if in_fmt.family == out_fmt.family or (in_fmt.family != "rgb" and out_fmt.family != "rgb"):
        return spec
    if out_fmt.family == "rgb":
        return dataclasses.replace(spec, matrix=0, full_range=True, chroma_location=None).resolved(width, height, out_fmt)
    fresh = dataclasses.replace(spec, matrix=colormod.UNSPECIFIED, full_range=None, chroma_location=None)
    return fresh.resolved(width, height, out_fmt)


def _stream(inp, out, up: Upscaler, *, in_fmt, out_fmt, spec, out_spec, size, start, end, progress, t0):
    """Run the stages concurrently; returns (frames written, stage clock)."""
    clock = _StageClock()
    workers = up.config.streams if up.device.type == "cuda" else 1
    in_flight = threading.Semaphore(2 * workers + 2)
    frames_in: Queue = Queue(maxsize=workers + 1)
    done: dict[int, tuple[int | None, list[np.ndarray]]] = {}
    ready = threading.Condition()
    stop = threading.Event()
    errors: list[BaseException] = []
    decoded: list[int] = []  # holds the decoded frame count once the decoder has finished
    out_w, out_h = size
    total = inp.info.frame_count_in(start, end)

    def fail(e: BaseException) -> None:
        with ready:
            errors.append(e)
            stop.set()
            ready.notify_all()

    def decode() -> None:
        seq = 0
        try:
            it = iter(inp.frames(start=start, end=end))
            while not stop.is_set():
                ta = time.perf_counter()
                frame = next(it, _DONE)
                clock.add("decode", time.perf_counter() - ta)
                if frame is _DONE:
                    break
                while not in_flight.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                frames_in.put((seq, frame))
                seq += 1
        except BaseException as e:  # noqa: BLE001 - handed to the orchestrator, re-raised there
            fail(e)
        finally:
            for _ in range(workers):
                frames_in.put(_DONE)
            with ready:
                decoded.append(seq)
                ready.notify_all()

    def work() -> None:
        stream = torch.cuda.Stream(device=up.device) if up.device.type == "cuda" else None
        try:
            while not stop.is_set():
                item = frames_in.get()
                if item is _DONE:
                    return
                seq, frame = item
                planes = _process(frame, up, in_fmt, out_fmt, spec, out_spec, out_w, out_h, stream, clock)
                with ready:
                    done[seq] = (frame.pts, planes)
                    ready.notify_all()
        except BaseException as e:  # noqa: BLE001
            fail(e)

    threads = [threading.Thread(target=decode, name="esrgan-decode", daemon=True)]
    threads += [threading.Thread(target=work, name=f"esrgan-infer-{i}", daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    written = 0
    try:
        while True:
            with ready:
                while not errors and written not in done and not (decoded and written >= decoded[0]):
                    ready.wait(0.1)
                if errors:
                    raise errors[0]
                if written not in done:
                    break
                pts, planes = done.pop(written)
            te = time.perf_counter()
            out.write(planes, pts)
            clock.add("encode", time.perf_counter() - te)
            in_flight.release()
            written += 1
            if progress is not None:
                elapsed = time.perf_counter() - t0
                fps = written / elapsed if elapsed > 0 else 0.0
                eta = (total - written) / fps if total and fps > 0 else None
                progress(Progress(frame=written, total=total, fps=fps, eta=eta))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
    te = time.perf_counter()
    out.flush()
    clock.add("encode", time.perf_counter() - te)
    return written, clock


def _process(frame, up: Upscaler, in_fmt, out_fmt, spec, out_spec, out_w, out_h, stream, clock) -> list[np.ndarray]:
    """One frame through upload → to-RGB → upscale → resize → from-RGB → download."""
    dev = up.device
    ctx = torch.cuda.stream(stream) if stream is not None else nullcontext()
    with ctx, torch.inference_mode():
        ta = time.perf_counter()
        planes = [torch.from_numpy(np.ascontiguousarray(p)) for p in frame.planes]
        if dev.type == "cuda":
            planes = [p.pin_memory().to(dev, non_blocking=True) for p in planes]
        rgb = colormod.planes_to_rgb(planes, in_fmt, spec)
        tb = time.perf_counter()
        y = up.upscale_tensor(rgb)
        alpha = None
        if in_fmt.alpha and out_fmt.alpha:  # alpha is upscaled separately, as a grey image
            a = colormod.alpha_to_float(planes[_alpha_plane(in_fmt)], in_fmt)
            alpha = resize_rgb(up.upscale_tensor(a.expand(-1, 3, -1, -1)).mean(1, keepdim=True), out_w, out_h)
        tc = time.perf_counter()
        y = resize_rgb(y, out_w, out_h)
        out_planes = colormod.rgb_to_planes(y, out_fmt, out_spec, alpha=alpha)
        if dev.type == "cuda":
            host = [torch.empty(p.shape, dtype=p.dtype, pin_memory=True) for p in out_planes]
            for h, p in zip(host, out_planes):
                h.copy_(p, non_blocking=True)
            stream.synchronize()
            out_planes = host
        result = [p.numpy() for p in out_planes]
        td = time.perf_counter()
    clock.add("convert", (tb - ta) + (td - tc))
    clock.add("infer", tc - tb)
    return result


__all__ = ["upscale_video", "RunResult", "Progress", "EsrganVideoError"]
