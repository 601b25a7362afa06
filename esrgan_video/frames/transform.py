"""The frame transform: one frame's planes in, the upscaled frame's planes out.

One object per (input format + colour, output format + colour, output size), built from an
:class:`~esrgan_video.upscaler.Upscaler`. Every face goes through it — the streaming core's workers,
``vsesrgan.upscale``, :meth:`Upscaler.upscale <esrgan_video.upscaler.Upscaler.upscale>` and stills — so the
per-frame device path is written once:

    upload → :func:`~esrgan_video.frames.color.planes_to_rgb` → ``Upscaler.upscale_tensor`` → resize
    → :func:`~esrgan_video.frames.color.rgb_to_planes` → download

with the alpha plane (when both sides have one) upscaled once, as a grey image, beside the colour.

Concurrency and CUDA ordering (PyTorch's CUDA semantics: with non-default streams, ordering is the
caller's job). A call checks out one of ``slots`` slots (one CUDA stream each on a GPU; one slot on the
CPU, where the intra-op threads already use every core), so calls from several threads overlap on the
device and at most ``slots`` frames are on it at once.

* Host planes (NumPy arrays, CPU tensors) are copied into the slot's pinned staging buffers (reused from
  call to call; an event recorded after the upload guards a refill), uploaded without blocking on the
  slot's stream, and the result is downloaded into freshly allocated pinned memory (torch's caching host
  allocator reuses those blocks once the caller drops the arrays) and returned as NumPy arrays after the
  slot's stream has finished: nothing the caller holds is ever overwritten.
* Device planes (tensors on the Upscaler's device) are read on the slot's stream after it waits for the
  caller's current stream, and are ``record_stream``-ed on the slot's stream (the caller may free them at
  once). The result is returned as device tensors without a host sync: the caller's stream waits for the
  slot's, and the outputs are ``record_stream``-ed on the caller's stream, so their memory is not handed
  to the slot's next frame while the caller still reads them.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import CancelledError
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import torch

from . import color as colormod
from .color import ColorSpec
from .pixel_formats import PixelFormat
from .reuse import MODES as REUSE_MODES
from .reuse import Decision, NearRule, ReuseStats, ReuseTracker
from .sizing import resize_rgb

if TYPE_CHECKING:  # the Upscaler imports this module for its own upscale(); only a type here
    from ..upscaler import Upscaler

Plane = "np.ndarray | torch.Tensor"
Clock = Callable[[str, float], None]
"""``clock(stage, seconds)``: the time spent in ``convert`` (upload, colour, resize, download) and ``infer``."""
Resize = Callable[[torch.Tensor, int, int], torch.Tensor]
"""``resize(rgb, width, height)`` on the device (N×C×H×W float); default :func:`~esrgan_video.frames.sizing.resize_rgb`."""


@dataclass(frozen=True)
class FrameFormat:
    """How one side of the transform lays out a frame's planes.

    ``pixel_format`` is an integer format's descriptor (planes as :meth:`PixelFormat.plane_shapes` says, with
    an optional leading N axis), converted with ``color`` (a *resolved* :class:`ColorSpec`). ``pixel_format=None``
    is float RGB: three planes R, G, B (H×W or N×H×W) of ``float_dtype``, nominally in [0, 1], that skip the
    colour code (VapourSynth's RGBS/RGBH, ``Upscaler.upscale`` of float frames), and with ``float_alpha`` a fourth
    plane, alpha in [0, 1] (VapourSynth's ``_Alpha`` frame of an RGBS/RGBH clip). Either side may be either kind:
    integer to float RGB is a decode to RGB (training's data), float RGB to integer an encode's input.
    """

    pixel_format: PixelFormat | None
    color: ColorSpec | None = None
    float_dtype: torch.dtype = torch.float32
    float_alpha: bool = False

    def __post_init__(self) -> None:
        if self.pixel_format is not None and self.color is None:
            raise ValueError(f"{self.pixel_format.name}: a FrameFormat of integer planes needs its (resolved) colour")
        if self.pixel_format is None and not self.float_dtype.is_floating_point:
            raise ValueError(f"float RGB planes need a floating dtype, got {self.float_dtype}")
        if self.pixel_format is not None and self.float_alpha:
            raise ValueError(f"{self.pixel_format.name}: float_alpha is for float RGB; integer alpha is in the format")

    @classmethod
    def float_rgb(cls, dtype: torch.dtype = torch.float32, *, alpha: bool = False) -> "FrameFormat":
        return cls(None, None, dtype, alpha)

    @property
    def is_float(self) -> bool:
        return self.pixel_format is None

    @property
    def alpha(self) -> bool:
        return self.float_alpha if self.pixel_format is None else self.pixel_format.alpha

    @property
    def planes(self) -> int:
        return 3 + self.float_alpha if self.pixel_format is None else self.pixel_format.nb_planes

    def alpha_plane(self) -> int:
        """Index of the plane that holds alpha (a packed RGBA plane counts)."""
        if self.pixel_format is None:
            return 3
        return next(i for i, names in enumerate(self.pixel_format.planes) if "A" in names)


def hand_over(tensors: Sequence[torch.Tensor], producer, consumer) -> None:
    """Order ``consumer`` (a CUDA stream) after the work queued so far on ``producer``, and keep ``tensors``
    (made or read on ``producer``) alive until the work that ``consumer`` queues on them has run.

    Pure stream logic (any objects with ``wait_stream`` / tensors with ``record_stream``), used both ways: the
    slot's stream waits for the caller's before reading its planes, and the caller's waits for the slot's before
    reading the result.
    """
    consumer.wait_stream(producer)
    for t in tensors:
        t.record_stream(consumer)


class _Link:
    """One frame's place in the reuse chain: its model output (at the model's scale, on the device, ready on
    ``stream``) and its output planes, filled once its model stage is done (or its failure)."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self.rgb: torch.Tensor | None = None
        self.stream = None
        self.planes: list | None = None
        self.error: BaseException | None = None

    def set(self, rgb: torch.Tensor, stream, planes: list) -> None:
        self.rgb, self.stream, self.planes = rgb, stream, planes
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._done.set()

    def wait(self) -> "_Link | None":
        """This link once its frame is done; None when that frame failed (its caller got the error; a frame that
        would reuse its output is computed whole instead)."""
        self._done.wait()
        return None if self.error is not None else self


@dataclass
class _Slot:
    """One frame in flight: a CUDA stream (None on the CPU) and its reusable pinned staging buffers."""

    stream: "torch.cuda.Stream | None"
    staged: dict[int, torch.Tensor] = field(default_factory=dict)
    uploaded: "torch.cuda.Event | None" = None

    def stage(self, i: int, plane: np.ndarray) -> torch.Tensor:
        """Plane ``i`` copied into this slot's pinned buffer (reallocated only when its shape or dtype changes)."""
        buf = self.staged.get(i)
        dtype = _torch_dtype(plane.dtype)
        if buf is None or tuple(buf.shape) != plane.shape or buf.dtype != dtype:
            buf = self.staged[i] = torch.empty(plane.shape, dtype=dtype, pin_memory=True)
        elif self.uploaded is not None:
            self.uploaded.synchronize()  # the previous upload from this buffer has finished
        np.copyto(buf.numpy(), plane)
        return buf


class FrameTransform:
    """Maps a frame's input planes to its output planes (thread-safe; see the module docstring).

    :param upscaler: the model, backend and tiling; None runs colour and resize only (e.g. to make a smaller clip).
    :param src: the input planes' format and resolved colour.
    :param dst: the output planes' format and resolved colour.
    :param in_size: (width, height) of the input, when fixed: the backend for it is built now
        (:meth:`Upscaler.prepare`), e.g. a TensorRT engine, so that a build or backend error happens before any
        output file is opened. None: frames of any size (built at the first frame of each size).
    :param out_size: (width, height) of the output; None: the input size × the model's scale.
    :param slots: frames on the device at once (default: the Upscaler's streams on a GPU, 1 on the CPU).
    :param clock: receives the seconds of each stage (``convert``, ``infer``).
    :param resize: the device-side resize from the model's output to ``out_size``.
    :param notice: one-line messages for the user (handed to the backend build).
    :param reuse: ``off``, ``exact`` or ``near`` (:mod:`esrgan_video.frames.reuse`): single host frames are
        compared with their references and unchanged tiles (or whole frames) take the previous output. The decisions
        are taken in the order of ``seq`` (see :meth:`__call__`); a frame that reuses tiles waits for the previous
        frame's model output, a frame computed whole does not wait.
    :param near_rule: the ``near`` thresholds (default :class:`~esrgan_video.frames.reuse.NearRule`).
    :param grey: the caller promises R = G = B in every frame, whatever ``src``'s format (a grey still sent as RGB),
        so a grey (1 → 1) model runs once instead of on each channel; a gray pixel format says so by itself.
    """

    def __init__(
        self,
        upscaler: "Upscaler | None",
        *,
        src: FrameFormat,
        dst: FrameFormat,
        in_size: tuple[int, int] | None = None,
        out_size: tuple[int, int] | None = None,
        device: torch.device | str | None = None,
        slots: int | None = None,
        clock: Clock | None = None,
        resize: Resize = resize_rgb,
        notice: Callable[[str], None] | None = None,
        reuse: str = "off",
        near_rule: NearRule | None = None,
        grey: bool = False,
    ) -> None:
        self.upscaler = upscaler
        self.grey = grey or (not src.is_float and src.pixel_format.family == "gray")
        """R = G = B in: a grey model runs once (``Upscaler.upscale_tensor(grey=True)``)."""
        self.src, self.dst = src, dst
        self.in_size, self.out_size = in_size, out_size
        self.device = upscaler.device if upscaler is not None else torch.device(device or "cpu")
        self.scale = upscaler.scale if upscaler is not None else 1
        self.cuda = self.device.type == "cuda"
        self.keep_alpha = src.alpha and dst.alpha
        self._frame_ndim = 2 if src.is_float or len(src.pixel_format.planes[0]) == 1 else 3
        """Dimensions of the first plane of one frame (more: a leading N axis)."""
        self._clock = clock
        self._resize = resize
        self.notice = notice
        if slots is None:
            slots = upscaler.config.streams if (self.cuda and upscaler is not None) else 1
        self.slots = slots
        self._slots: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        for _ in range(slots):
            self._slots.put(_Slot(torch.cuda.Stream(device=self.device) if self.cuda else None))
        if reuse not in REUSE_MODES:
            raise ValueError(f"reuse: expected one of {', '.join(REUSE_MODES)}, got {reuse!r}")
        if reuse == "near" and src.is_float:
            raise ValueError("reuse='near' compares integer codes; float RGB planes take 'exact' or 'off'")
        self.reuse = reuse if upscaler is not None else "off"
        self._tracker = ReuseTracker(self.reuse, near_rule or NearRule())
        self._turn = threading.Condition()
        self._next_seq = 0
        self._aborted = False
        self._last: _Link | None = None
        if in_size is not None:
            self.prepare(*in_size)

    @property
    def reuse_stats(self) -> ReuseStats:
        """What reuse did so far (frames and tiles seen and reused, resets)."""
        return self._tracker.stats

    def abort(self) -> None:
        """Release every call waiting for its turn in the reuse order (they raise ``CancelledError``): the caller
        gave up on the frames before them."""
        with self._turn:
            self._aborted = True
            self._turn.notify_all()

    def prepare(self, width: int, height: int) -> None:
        """Build the backend frames of this size will use (no-op without an Upscaler)."""
        if self.upscaler is not None:
            self.upscaler.prepare(height, width, notice=self.notice)

    # the steps, on the device ----------------------------------------------------------------
    def to_rgb(self, planes: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Device planes → (N×3×H×W float32 RGB, N×1×H×W float alpha or None when it is not kept)."""
        if self.src.is_float:
            rgb = torch.stack([p.float() for p in planes[:3]], dim=-3).reshape(-1, 3, *planes[0].shape[-2:])
            alpha = planes[3].float().reshape(-1, 1, *planes[3].shape[-2:]) if self.keep_alpha else None
            return rgb, alpha
        fmt = self.src.pixel_format
        rgb = colormod.planes_to_rgb(list(planes), fmt, self.src.color)
        alpha = colormod.alpha_to_float(planes[self.src.alpha_plane()], fmt) if self.keep_alpha else None
        return rgb, alpha

    def upscale(self, rgb: torch.Tensor, alpha: torch.Tensor | None, *, only: frozenset[int] | None = None,
                base: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The model on RGB (and on alpha, as a grey image), at the model's scale; ``only``/``base``: the tiles to
        compute and the output that supplies the others (``Upscaler.upscale_tensor``)."""
        if self.upscaler is None:
            return rgb, alpha
        y = self.upscaler.upscale_tensor(rgb, only=only, base=base, grey=self.grey)  # R = G = B: a grey model once
        if alpha is not None:
            alpha = self.upscaler.upscale_tensor(alpha.expand(-1, 3, -1, -1), grey=True).mean(1, keepdim=True)
        return y, alpha

    def from_rgb(self, rgb: torch.Tensor, alpha: torch.Tensor | None, *, batched: bool) -> list[torch.Tensor]:
        """RGB (and alpha) at the model's scale → output planes at ``out_size`` on the device."""
        h, w = rgb.shape[-2:]
        out_w, out_h = self.out_size or (w, h)
        y = self._resize(rgb, out_w, out_h)
        if alpha is not None:
            alpha = self._resize(alpha, out_w, out_h)
        if self.dst.is_float:
            if self.dst.alpha:  # opaque when the input has none
                y = torch.cat([y, alpha if alpha is not None else torch.ones_like(y[:, :1])], dim=1)
            y = y.to(self.dst.float_dtype)
            return list(y.unbind(1)) if batched else list(y[0])
        return colormod.rgb_to_planes(y, self.dst.pixel_format, self.dst.color, alpha=alpha, batched=batched)

    # one frame -------------------------------------------------------------------------------
    def __call__(self, planes: Sequence[Plane], *, seq: int | None = None, reset: bool = False,
                 decided: Callable[[Decision], None] | None = None) -> list:
        """Input planes → output planes.

        Tensors on the transform's device give tensors there, ready on the caller's current stream; anything else
        (NumPy arrays, CPU tensors for a GPU transform) gives NumPy arrays. Planes with a leading N axis give planes
        with one.

        With reuse on, single host frames go through the model stage one at a time in order of ``seq`` (0, 1, 2, …
        for one transform; the streaming core numbers its frames so; None: order of arrival), and ``reset`` drops
        the references before this frame (seeks, cut points). The arrays returned for a frame reused whole are the
        previous frame's (treat output planes as read-only). ``decided`` receives this frame's reuse
        :class:`~esrgan_video.frames.reuse.Decision` (not called when the frame does not go through reuse), so a
        caller can count what reuse did for the frames it has, not for the frames decided so far (``reuse_stats``).
        """
        if len(planes) != self.src.planes:
            raise ValueError(f"expected {self.src.planes} planes, got {len(planes)}")
        on_device = all(isinstance(p, torch.Tensor) and p.device == self.device for p in planes)
        batched = planes[0].ndim > self._frame_ndim
        if self.reuse != "off" and not batched and not on_device:
            return self._call_reusing([p.numpy() if isinstance(p, torch.Tensor) else p for p in planes], seq, reset,
                                      decided)
        self._count_computed(planes, batched)
        caller = torch.cuda.current_stream(self.device) if self.cuda else None
        _, _, out = self._run(planes, caller=caller, on_device=on_device, batched=batched)
        return out

    def _count_computed(self, planes: Sequence[Plane], batched: bool) -> None:
        """Frames that do not go through reuse (reuse off, batches, device planes) count in ``reuse_stats`` as seen
        and computed, so ``reuse off`` reports the frames and tiles it ran, not 0 of 0."""
        if self.upscaler is None:
            return
        lead = 1 if batched else 0
        height, width = planes[0].shape[lead:lead + 2]
        n = planes[0].shape[0] if batched else 1
        count = self.upscaler.plan(height, width).count
        with self._turn:
            self._tracker.count(n, count)

    def _run(self, planes: Sequence[Plane], *, caller, on_device: bool, batched: bool, done: "_Link | None" = None,
             only: frozenset[int] | None = None) -> tuple[torch.Tensor, "torch.cuda.Stream | None", list]:
        """One frame on a slot: upload, to-RGB, the model, resize, from-RGB, deliver; returns (the model's RGB
        output, the slot's stream, the output planes). ``done``/``only``: the previous frame whose output supplies
        the tiles not in ``only`` (reuse)."""
        with self._slot() as slot, torch.inference_mode():
            ta = time.perf_counter()
            rgb, alpha = self.to_rgb(self._upload(planes, slot, caller, on_device))
            tb = time.perf_counter()
            base = None
            if done is not None:
                if slot.stream is not None and done.stream is not None:
                    hand_over([done.rgb], done.stream, slot.stream)
                base = done.rgb
            y, alpha = self.upscale(rgb, alpha, only=only, base=base)
            tc = time.perf_counter()
            out = self._deliver(self.from_rgb(y, alpha, batched=batched), slot, caller, on_device)
            td = time.perf_counter()
        self._tick((tb - ta) + (td - tc), tc - tb)
        return y, slot.stream, out

    def _tick(self, convert: float, infer: float) -> None:
        if self._clock is not None:
            self._clock("convert", convert)
            self._clock("infer", infer)

    def _call_reusing(self, planes: list[np.ndarray], seq: int | None, reset: bool,
                      decided: Callable[[Decision], None] | None = None) -> list[np.ndarray]:
        """One host frame through the reuse chain: decide in order, copy what is unchanged, compute the rest."""
        up = self.upscaler
        height, width = planes[0].shape[:2]
        plan = up.plan(height, width)
        with self._turn:
            if seq is None:
                seq = self._next_seq
            while self._next_seq != seq and not self._aborted:
                self._turn.wait()
            if self._aborted:
                raise CancelledError("an earlier frame was abandoned")
            try:
                if reset:
                    self._tracker.reset()
                fmt = self.src.pixel_format  # the codes span bits + shift (p010le: 10 bits in the top of 16)
                decision = self._tracker.decide(
                    planes, plan, fmt, batch=up.batch_for(plan), bits=8 if fmt is None else fmt.bits + fmt.shift,
                    whole_frames_only=self.keep_alpha,
                )
                prev, link = self._last, _Link()
                self._last = link
                if decided is not None:
                    decided(decision)
            finally:
                self._next_seq = seq + 1
                self._turn.notify_all()
        try:
            # The previous frame's output is waited for before a slot is taken: that frame may itself still be
            # waiting for one (callers outnumber slots in VapourSynth), and holding a slot here would deadlock it.
            ta = time.perf_counter()
            done = None if decision.everything or prev is None else prev.wait()
            if decision.whole_frame_reused and done is not None:
                link.set(done.rgb, done.stream, done.planes)
                self._tick(time.perf_counter() - ta, 0.0)
                return done.planes
            y, stream, out = self._run(planes, caller=None, on_device=False, batched=False, done=done,
                                       only=None if done is None else decision.compute)
            link.set(y, stream, out)
        except BaseException as e:
            link.fail(e)
            raise
        return out

    @contextmanager
    def _slot(self) -> Iterator[_Slot]:
        slot = self._slots.get()
        try:
            ctx = torch.cuda.stream(slot.stream) if slot.stream is not None else nullcontext()
            with ctx:
                yield slot
        finally:
            self._slots.put(slot)

    def _upload(self, planes: Sequence[Plane], slot: _Slot, caller, on_device: bool) -> list[torch.Tensor]:
        if on_device:
            planes = list(planes)
            if slot.stream is not None:
                hand_over(planes, caller, slot.stream)
            return planes
        host = [p.numpy() if isinstance(p, torch.Tensor) else p for p in planes]
        if not self.cuda:
            return [torch.from_numpy(_owned(p)) for p in host]
        staged = [slot.stage(i, p) for i, p in enumerate(host)]
        up = [s.to(self.device, non_blocking=True) for s in staged]
        if slot.uploaded is None:
            slot.uploaded = torch.cuda.Event()
        slot.uploaded.record(slot.stream)
        return up

    def _deliver(self, out: list[torch.Tensor], slot: _Slot, caller, on_device: bool) -> list:
        if on_device:
            if slot.stream is not None:
                hand_over(out, slot.stream, caller)
            return out
        if not self.cuda:
            return [p.numpy() for p in out]
        host = [torch.empty(p.shape, dtype=p.dtype, pin_memory=True) for p in out]
        for h, p in zip(host, out):
            h.copy_(p, non_blocking=True)
        slot.stream.synchronize()
        return [h.numpy() for h in host]


def _owned(plane: np.ndarray) -> np.ndarray:
    """A plane torch can wrap without copying when it is already a contiguous, writable array; else a copy."""
    if plane.flags.c_contiguous and plane.flags.writeable:
        return plane
    return np.array(plane, order="C")


_TORCH_DTYPES = {
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.uint16): torch.uint16,
    np.dtype(np.int16): torch.int16,
    np.dtype(np.int32): torch.int32,
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
}


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    try:
        return _TORCH_DTYPES[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"unsupported plane dtype {dtype}") from None


__all__ = ["FrameFormat", "FrameTransform", "hand_over"]
