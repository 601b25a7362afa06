"""The frame-level Upscaler: model + backends + tile plans, behind one call.

Every face upscales through this class, by way of the frame transform
(:mod:`esrgan_video.frames.transform`), which owns the CUDA streams and buffers and calls
:meth:`Upscaler.upscale_tensor`. It is synchronous and safe to call from several threads at
once (VapourSynth calls filters from its own thread pool). :meth:`Upscaler.upscale` is the
convenience entry for RGB arrays and tensors; it runs through a frame transform too.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from . import tiling
from .errors import BackendError, InputError, ModelError
from .models.descriptor import describe
from .options import DEFAULT_MODEL, ModelOptions, RuntimeOptions
from .runtime.base import Backend, BackendInfo, NonFiniteOutputError
from .runtime.devices import resolve_device
from .frames.color import LUMA_709, ColorSpec
from .frames.pixel_formats import PixelFormat, pixel_format
from .runtime.select import make_backend

if TYPE_CHECKING:
    from .frames.transform import FrameTransform

# Default tile sizes come from a fixed table keyed by device class and frame size, never from a
# free-memory reading, so the same video always gets the same tiles (and TensorRT engine caches hit).
CPU_WHOLE_FRAME_MAX_PIXELS = 640 * 360
"""On the CPU a frame up to this many input pixels runs as one tile (exact, no seams)."""
CPU_TILE = 256
MAX_FIXED_BACKENDS = 8
"""Fixed-shape backends (an ONNX Runtime session or a TensorRT engine per tile shape and batch) an Upscaler keeps;
the least recently used beyond these are closed (a video needs one or two; a later frame of that size rebuilds it,
from the engine cache for TensorRT)."""
GPU_TILE_BY_MEMORY_GIB = ((40, 0, 1920 * 1080), (12, 512, 0), (0, 256, 0))
"""(min total GiB, tile, whole-frame max pixels): big GPUs run frames up to 1080p whole."""


def default_tile(height: int, width: int, device: torch.device) -> int:
    """The stable default tile size (0 = whole frame) for a frame on ``device``."""
    if device.type != "cuda":
        return 0 if height * width <= CPU_WHOLE_FRAME_MAX_PIXELS else CPU_TILE
    total_gib = torch.cuda.get_device_properties(device).total_memory / 2**30
    for min_gib, tile, whole_max in GPU_TILE_BY_MEMORY_GIB:
        if total_gib >= min_gib:
            return 0 if height * width <= whole_max else (tile or 512)
    return 256


RUNNABLE_CHANNELS = (1, 3, 4)
"""Model input/output channel counts the Upscaler runs RGB frames through (:func:`model_on_rgb`)."""


def check_channels(descriptor, source: str) -> None:
    """ModelError unless the model takes and gives 1, 3 or 4 channels (what :func:`model_on_rgb` adapts)."""
    cin, cout = descriptor.in_channels, descriptor.out_channels
    if cin not in RUNNABLE_CHANNELS or cout not in RUNNABLE_CHANNELS:
        raise ModelError(f"{source}: a model with {cin} input and {cout} output channels cannot upscale video frames "
                         f"(RGB, with 1-channel grey and 4-channel RGBA models adapted): expected 1, 3 or 4 of each")


def model_on_rgb(model: Callable[[torch.Tensor], torch.Tensor], rgb: torch.Tensor, cin: int, cout: int, *,
                 grey: bool = False) -> torch.Tensor:
    """N×3×h×w RGB through a model of ``cin`` → ``cout`` channels, as N×3×H×W RGB.

    3 in: as it is. 4 in (RGBA): the frames with an opaque alpha channel (the transform upscales a real alpha plane
    beside the colour). 1 in, 1 out (a grey model): each of R, G and B upscaled as a grey image (three calls of
    the batch shape the backend was built for), so colour is kept; with ``grey`` (the caller knows R = G = B: a
    grey source) one call, on R, which is what each of the three would give. 1 in, 3 or 4 out: the BT.709 luma
    in. Out: the first three channels (4 out: RGB of RGBA), a single channel as grey RGB.
    """
    if cin == 3:
        y = model(rgb)
    elif cin == 4:
        y = model(torch.cat([rgb, torch.ones_like(rgb[:, :1])], dim=1))
    elif cout == 1 and grey:
        y = model(rgb[:, :1].contiguous())
    elif cout == 1:
        y = torch.cat([model(rgb[:, c:c + 1].contiguous()) for c in range(3)], dim=1)
    else:
        w = torch.tensor(LUMA_709, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
        y = model((rgb * w).sum(dim=1, keepdim=True))
    if y.shape[1] == 1:
        return y.expand(-1, 3, -1, -1)
    return y[:, :3] if y.shape[1] > 3 else y


_MODEL_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelOptions)) - {"model"}
_RUNTIME_FIELDS = frozenset(f.name for f in dataclasses.fields(RuntimeOptions))


class Upscaler:
    """Upscale RGB frames with a model (an RRDB generator or a compact model; see its :attr:`descriptor`).

    ``upscale(frames)`` takes numpy H×W×3 (uint8, uint16 or float in [0, 1]; also H×W grey and H×W×4 RGBA) or a
    torch N×3×H×W tensor on any device (also 3×H×W, and grey N×1×H×W, 1×H×W or H×W, RGBA N×4×H×W or 4×H×W), and
    returns the upscaled frames in the same kind.
    ``upscale_tensor(rgb)`` is the device-side entry the frame transform uses.
    """

    def __init__(
        self,
        model: "str | os.PathLike | torch.nn.Module | ModelOptions" = DEFAULT_MODEL,
        runtime: RuntimeOptions | None = None,
        **options,
    ) -> None:
        """``model``: a registry name, checkpoint path, loaded module or :class:`ModelOptions`; ``runtime``: the
        :class:`RuntimeOptions`. Their fields may also be given as keywords (``blend=``, ``device=``, ``tile=``, …),
        over the two objects.

        A loaded module is left as it was (its training mode, device and dtype): one already in eval mode with its
        weights on this Upscaler's device is shared (:attr:`model` is that object, so a later change to its weights
        shows in backends built after it), any other is copied, and the copy put in eval mode on the device."""
        model_fields = {k: options.pop(k) for k in list(options) if k in _MODEL_FIELDS}
        runtime_fields = {k: options.pop(k) for k in list(options) if k in _RUNTIME_FIELDS}
        if options:
            raise TypeError(f"Upscaler: unknown option(s) {', '.join(sorted(options))}; known: "
                            f"{', '.join(sorted(_MODEL_FIELDS | _RUNTIME_FIELDS))}")
        if isinstance(model, ModelOptions):
            model_opts = dataclasses.replace(model, **model_fields) if model_fields else model
        else:
            model_opts = ModelOptions(model=model, **model_fields)
        if runtime is not None and not isinstance(runtime, RuntimeOptions):
            raise TypeError(f"Upscaler: runtime must be a RuntimeOptions, got {type(runtime).__name__} (its fields may "
                            "also be given as keywords: Upscaler(model, tile=256, device='cpu'))")
        runtime = runtime or RuntimeOptions()
        if runtime_fields:
            runtime = dataclasses.replace(runtime, **runtime_fields)
        self.model_options = model_opts
        self._device_requested = runtime.device is not None
        self.device = resolve_device(runtime.device)
        if isinstance(model_opts.model, torch.nn.Module):
            self.model = _module_on(model_opts.model, self.device)
        else:
            from .models import load_model

            extra = {} if model_opts.denoise is None else {"denoise": model_opts.denoise}
            self.model = load_model(model_opts.model, device=self.device, blend=model_opts.blend,
                                    offline=model_opts.offline, **extra)
        self.descriptor = describe(self.model)
        """What the network is (architecture, scale, channels, size multiple, default tile pad, FLOPs)."""
        check_channels(self.descriptor, str(model_opts.model if not isinstance(model_opts.model, torch.nn.Module)
                                            else type(model_opts.model).__name__))
        self.scale = self.descriptor.scale
        on_gpu = self.device.type == "cuda"
        self.runtime = dataclasses.replace(
            runtime,
            tile_pad=self.descriptor.tile_pad if runtime.tile_pad is None else runtime.tile_pad,
            batch=runtime.batch or (4 if on_gpu else 1),
            streams=runtime.streams if on_gpu else 1,
        )
        """The runtime options with their defaults resolved for this device (``tile_pad``, ``batch``, ``streams``)."""
        self._backend_name = runtime.backend
        self._precision = runtime.precision
        # (tile h, tile w, batch) → its fixed-shape backend, least recently asked for first; or None → the one
        # backend of any shape
        self._backends: OrderedDict[tuple[int, int, int] | None, Backend] = OrderedDict()
        self._in_use: dict[tuple[int, int, int] | None, int] = {}  # key → upscale_tensor calls running on it
        self._deferred: BaseException | None = None  # an eviction's close error, raised by the next call or close()
        self._built_last: BackendInfo | None = None
        self._plans: dict[tuple[int, int], tiling.TilePlan] = {}  # frozen plans; a racing double insert is harmless
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when the last running call lets go of its backend
        self._transforms: dict[tuple, "FrameTransform"] = {}  # upscale()'s, one per kind of frame
        self._closed = False
        self._model_notices = tuple(getattr(getattr(self.model, "info", None), "notices", ()))
        """How the weights were read (``ModelInfo.notices``), told once through the first backend build's notice."""

    @property
    def config(self) -> RuntimeOptions:
        """Alias of :attr:`runtime` (the resolved runtime options)."""
        return self.runtime

    # lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Close every backend for good (:meth:`backend_for`), each even when another's close raises (a deferred
        non-finite check read in its flush), then raise the first such error: an eviction's not yet raised (see
        :meth:`upscale_tensor`), else one of these closes (the others added to it as notes). A second close does
        nothing; after it :meth:`upscale`, :meth:`upscale_tensor`, :meth:`prepare`, :meth:`backend_for`,
        :meth:`flush` and a ``with`` block raise a :class:`BackendError` (a RuntimeError) at the call
        ("Upscaler.upscale: this Upscaler is closed ..."). What it knows without a backend (:meth:`plan`,
        :attr:`descriptor`, :attr:`backend_info`) stays.

        Calls already running (other threads' :meth:`upscale_tensor`) finish first, on their backends, and return
        their frames: close waits for them, so no backend is freed under a call (its session gone mid-run, or a
        TensorRT engine's memory); calls made after close starts are refused."""
        with self._lock:
            self._closed = True
            self._idle.wait_for(lambda: not self._in_use)
            backends = list(self._backends.values())
            self._backends.clear()
            closing = _each(backends, lambda b: b.retire("closed by its Upscaler (Upscaler.close())"))
            error, self._deferred = _joined(self._deferred, closing), None
        if error is not None:
            raise error

    def flush(self) -> None:
        """Settle every backend's outstanding work and deferred non-finite checks (:meth:`Backend.flush`), then raise
        the first error: an eviction's not yet raised (see :meth:`upscale_tensor`), else a backend's. What a face
        calls once its last frame is done and before it commits what it wrote (the pipeline: before the output
        file is renamed into place), so an error about its frames comes while they can still be thrown away, and
        not from the next user of a shared Upscaler (a batch worker's next segment) or after the output is kept."""
        self._check_open("flush")
        with self._lock:
            backends = list(self._backends.values())
            deferred, self._deferred = self._deferred, None
        error = _joined(deferred, _each(backends, lambda b: b.flush()))
        if error is not None:
            raise error

    def __enter__(self) -> "Upscaler":
        self._check_open("__enter__")
        return self

    def _check_open(self, method: str) -> None:
        """The one error for a use after :meth:`close` (or once it has begun), naming the method called."""
        if self._closed:
            raise BackendError(f"Upscaler.{method}: this Upscaler is closed (by its close(), or the end of its with "
                               "block); make a new Upscaler")

    def __exit__(self, *exc: object) -> None:
        self.close()

    # planning ------------------------------------------------------------------------------
    def plan(self, height: int, width: int) -> tiling.TilePlan:
        """The tile plan for a frame size (pure; same size → same plan, so it is made once per size)."""
        plan = self._plans.get((height, width))
        if plan is None:
            tile = self.config.tile
            if tile is None:
                tile = default_tile(height, width, self.device)
            plan = tiling.plan_tiles(
                height, width, tile=tile, pad=self.config.tile_pad, scale=self.scale,
                multiple=self.descriptor.size_multiple,
            )
            self._plans[(height, width)] = plan
        return plan

    def batch_for(self, plan: tiling.TilePlan) -> int:
        """Tiles per inference call for a plan: the configured batch, never more than a frame's tiles
        (a fixed-shape engine pads short batches, so a larger batch would only add work)."""
        return max(1, min(self.config.batch, plan.count))

    def backend_for(self, tile_shape: tuple[int, int], batch: int | None = None, *,
                    notice: Callable[[str], None] | None = None) -> Backend:
        """The backend that runs ``batch`` tiles of ``tile_shape`` at a time (one per shape and batch for
        fixed-shape engines; one for everything otherwise), built and opened now if it is not yet: to build it
        ahead of the first frame (:meth:`prepare`) and read its :attr:`~Backend.info`. ``notice`` receives the
        build's one-line messages, and the first time one is given, the model's (``ModelInfo.notices``: e.g. a scale
        taken from its file name).

        The backend stays this Upscaler's: it closes it, for good, when it evicts it (the least recently used beyond
        :data:`MAX_FIXED_BACKENDS` fixed-shape backends that no call holds) or in :meth:`close`, and from then on
        calling it raises a :class:`BackendError` saying so, instead of reopening outside the Upscaler (where
        neither the bound nor :meth:`close` would reach it); the next ``backend_for`` of that shape builds a new one.
        Run frames through :meth:`upscale_tensor`, which holds its backend for the call, so no eviction (by any
        thread) closes it under the call; a backend got here is not held."""
        self._check_open("backend_for")
        return self._take(tile_shape, batch or self.config.batch, notice=notice, hold=False)[1]

    def _take(self, tile_shape: tuple[int, int], batch: int, *, notice: Callable[[str], None] | None,
              hold: bool) -> tuple[tuple[int, int, int] | None, Backend]:
        """:meth:`backend_for`, and with ``hold`` the backend counted in use (until :meth:`_release`) in the same
        critical section: an eviction by another thread in between would close it under the call about to run it."""
        with self._lock:
            self._check_open("upscale_tensor" if hold else "backend_for")  # again: a close may have begun since
            self._raise_deferred()
            if notice is not None:
                told, self._model_notices = self._model_notices, ()
                for msg in told:
                    notice(msg)
            key = None if None in self._backends else (tile_shape[0], tile_shape[1], batch)
            b = self._backends.get(key)
            if b is None:
                b = make_backend(
                    self.model, backend=self._backend_name,
                    device=self.device if self._device_requested else None, precision=self._precision,
                    tile_shape=tile_shape, batch=batch, streams=self.config.streams, notice=notice,
                )
                b.open()
                self._built_last = b.info
                if not b.info.fixed_shape:
                    key = None
                self._backends[key] = b
            else:
                self._backends.move_to_end(key)
            self._evict(keep=key)  # never this key; before it is held, so a close that raises leaves no hold
            self._raise_deferred()
            if hold:
                self._in_use[key] = self._in_use.get(key, 0) + 1
            return key, b

    def _release(self, key: tuple[int, int, int] | None) -> None:
        """An :meth:`upscale_tensor` call is done with the backend :meth:`_take` held for it. Never raises: the
        call's result (or its own error) is what its caller gets; an eviction's close error waits in
        :meth:`_raise_deferred`."""
        with self._lock:
            left = self._in_use.pop(key) - 1
            if left:
                self._in_use[key] = left
            elif not self._in_use:
                self._idle.notify_all()
            self._evict(keep=None)

    def _evict(self, *, keep: tuple[int, int, int] | None) -> None:
        """Close the least recently used fixed-shape backends beyond :data:`MAX_FIXED_BACKENDS` (under the lock) that
        no upscale_tensor call is running on (those go once their calls are done), never ``keep`` (the one just
        asked for): an ONNX Runtime session or a TensorRT engine per frame size, kept for every size ever seen, grew
        without bound (~90 MiB each for RealESRGAN_x4plus on the CPU) for a caller with frames of many sizes
        (photos).

        Each goes for good (:meth:`Backend.retire`). A close that raises (a deferred non-finite check read in its
        flush: TensorRT's default on a GPU) is kept for :meth:`_raise_deferred`, never raised here: the call that
        evicted may have finished its frames, which are its caller's."""
        excess = sum(k is not None for k in self._backends) - MAX_FIXED_BACKENDS
        victims = [k for k in self._backends if k is not None and k != keep and k not in self._in_use][:max(0, excess)]
        if not victims:
            return
        why = (f"closed by its Upscaler (evicted: it keeps {MAX_FIXED_BACKENDS} fixed-shape backends and this was "
               "the least recently used; Upscaler.backend_for gives the current one)")
        self._deferred = _joined(self._deferred, _each([self._backends.pop(k) for k in victims],
                                                       lambda b: b.retire(why)))

    def _raise_deferred(self) -> None:
        """Raise (once) the error an eviction's close left (:meth:`_evict`), under the lock: the deferred-check
        convention of the backends (:class:`~esrgan_video.runtime.base.FiniteGuard`), one level up: read by the next
        call that takes a backend, whichever thread makes it, or by :meth:`close`."""
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            raise deferred

    def prepare(self, height: int, width: int, *, notice: Callable[[str], None] | None = None) -> Backend:
        """Build (or find) the backend frames of this size will use, e.g. a TensorRT engine, ahead of the first
        frame (the frame transform calls it before any output file is opened)."""
        self._check_open("prepare")
        plan = self.plan(height, width)
        return self.backend_for(plan.tile_shape, self.batch_for(plan), notice=notice)

    @property
    def backend_info(self) -> BackendInfo | None:
        """Info of the backend built last (None before the first frame: building one just to report it could mean a
        TensorRT engine build)."""
        return self._built_last

    # inference -----------------------------------------------------------------------------
    def upscale_tensor(self, rgb: torch.Tensor, *, only: frozenset[int] | None = None,
                       base: torch.Tensor | None = None, grey: bool = False) -> torch.Tensor:
        """N×3×H×W float in [0, 1] on this Upscaler's device → N×3×(H·s)×(W·s) float32 on it.

        Runs on the caller's current CUDA stream (the frame transform picks it). A finished call returns its
        frames: an error closing a backend it evicted (another backend's deferred non-finite check, or its own,
        read by that close) is raised by the next call instead, or by :meth:`flush` or :meth:`close`, as a
        backend's deferred check is raised by its next batch or its flush. Reuse (one frame): ``only`` = the
        tiles of :meth:`plan` to compute, ``base`` = the output that supplies the others (see
        :func:`esrgan_video.tiling.run_tiled`). A 1- or 4-channel model is run on the RGB as :func:`model_on_rgb`
        says; ``grey``: the caller promises R = G = B (a grey source), so a 1 → 1 model runs once instead of on each
        channel (the same output, a third of the work).
        """
        self._check_open("upscale_tensor")
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise InputError(f"expected N×3×H×W frames, got shape {tuple(rgb.shape)}")
        _check_not_empty(rgb.shape[0], rgb.shape[2], rgb.shape[3])
        plan = self.plan(rgb.shape[-2], rgb.shape[-1])
        batch = self.batch_for(plan)
        key, backend = self._take(plan.tile_shape, batch, notice=None, hold=True)  # the backend prepare() makes
        try:
            return self._run_tiled(rgb, backend, plan, batch, only=only, base=base, grey=grey)
        except Exception as e:
            advice = self.memory_error(e, rgb.shape[-2], rgb.shape[-1])
            if advice is None:
                raise
            raise advice from e
        finally:
            self._release(key)

    def memory_error(self, e: BaseException, height: int, width: int) -> BackendError | None:
        """The one-line :class:`BackendError` for ``e`` when it (or an exception it was raised from) is an allocation
        failure upscaling ``height``×``width`` frames (``torch.cuda.OutOfMemoryError``, torch's "CUDA out of memory"
        or "can't allocate memory" RuntimeError, ONNX Runtime's "Failed to allocate memory", TensorRT's "out of
        memory"), else None. It names the tiles that ran and the flags that use less memory (a smaller ``--tile``,
        fewer ``--streams`` on a GPU); the VapourSynth filter spells them as its arguments."""
        if not out_of_memory(e):
            return None
        plan = self.plan(height, width)
        th, tw = plan.tile_shape
        pad = self.config.tile_pad
        # tiles of about half the side that ran (a quarter of the memory): the core tile is that less its pad
        tile = (max(th, tw) // 2 - 2 * pad) // 16 * 16
        smaller = f"--tile {tile}" if tile >= 16 else f"--tile 16 with --tile-pad {pad // 2}"
        fewer = (", or fewer frames in flight (--streams 1)"
                 if self.device.type == "cuda" and self.config.streams > 1 else "")
        count = f"{plan.count} tiles" if plan.count > 1 else "one tile"
        return BackendError(f"out of memory on {self.device} upscaling {width}×{height} frames in {count} of {tw}×{th} "
                            f"input pixels, {self.batch_for(plan)} at a time: use smaller tiles ({smaller}){fewer}")

    def _run_tiled(self, rgb: torch.Tensor, backend: Backend, plan: tiling.TilePlan, batch: int, *,
                   only: frozenset[int] | None, base: torch.Tensor | None, grey: bool) -> torch.Tensor:
        """:meth:`upscale_tensor`'s work, on the backend it found."""
        cin, cout = self.descriptor.in_channels, self.descriptor.out_channels
        fixed = backend.info.fixed_shape
        dtype = backend.info.dtype
        stream = torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None

        def run(tiles: torch.Tensor) -> torch.Tensor:
            n = tiles.shape[0]
            if fixed is not None and n < fixed[0]:
                tiles = torch.cat([tiles, tiles[-1:].expand(fixed[0] - n, -1, -1, -1)])
            out = model_on_rgb(lambda x: backend(x, stream), tiles.to(dtype), cin, cout, grey=grey)
            return out[:n]

        with torch.inference_mode():
            out = tiling.run_tiled(rgb, run, plan, batch=batch, blend=tiling.DEFAULT_BLEND, only=only, base=base)
        return out.float()

    def upscale(self, frames):
        """Upscale NumPy H×W×3 (uint8/uint16/float) or torch N×3×H×W (or 3×H×W) frames; returns the same kind.

        A NumPy H×W (or H×W×1) grey or H×W×4 RGBA array comes back as the same kind, upscaled as
        :func:`~esrgan_video.upscale_image` upscales a grey or RGBA still (the same values): the grey through the
        model as R = G = B, the grey out the BT.709 luma of the model's RGB; alpha upscaled once, as a grey image.
        Tensors are channels first: an H×W, 1×H×W or N×1×H×W grey or a 4×H×W or N×4×H×W RGBA tensor gives what the
        NumPy array of the same values gives (H×W grey, H×W×4 RGBA), in the tensor's layout. A tensor on the meta
        device (no values) is an :class:`InputError`.

        Integer frames are full-range RGB codes (uint8: 0–255; uint16, int16, int32: 0–65535); float frames are in
        [0, 1] and keep their dtype. An array of the other byte order (e.g. ``>u2``) is read as its values and comes
        back in its own dtype. Tensors come back on their own device. Runs through the frame transform, which
        orders CUDA tensors against the caller's current stream (no device-wide sync for tensors on this device).
        An empty image (a side of 0) or batch (0 frames) is an :class:`InputError`, and so is a float frame the
        model turns into NaN or Inf because it holds NaN (or Inf): not the backend's non-finite-output error, whose
        advice (about the precision or the weights) does not apply to it.
        """
        self._check_open("upscale")
        try:
            return self._upscale(frames)
        except NonFiniteOutputError as e:
            bad = non_finite_count(frames)
            if bad:
                raise InputError(f"the frame holds {bad} NaN or infinite value(s); float frames must be finite, in "
                                 "[0, 1]") from e
            raise

    def _upscale(self, frames):
        """:meth:`upscale` without its reading of a non-finite output."""
        if isinstance(frames, np.ndarray):
            if not (frames.ndim == 2 or (frames.ndim == 3 and frames.shape[2] in (1, 3, 4))):
                raise InputError(f"expected an H×W×3 RGB array (or H×W grey, H×W×4 RGBA), got shape {frames.shape}")
            _check_not_empty(1, frames.shape[0], frames.shape[1])
            if not frames.dtype.isnative:  # torch takes native byte order only: the same values, swapped
                return self._upscale(frames.astype(frames.dtype.newbyteorder("="))).astype(frames.dtype)
            _check_frame_dtype(frames)  # before any path: float128 was a ValueError from the plane copy
            if frames.ndim == 3 and frames.shape[2] == 1:
                return self._upscale(frames[..., 0])[..., None]
            if frames.ndim == 2 or frames.shape[2] == 4:
                return self._upscale_grey_or_rgba(frames)
            if frames.dtype.kind == "f":
                out = self._transform("packed-float", frames.dtype)([frames[..., c] for c in range(3)])
                return np.stack(out, axis=-1)
            if frames.dtype in (np.int16, np.int32):  # 16-bit codes held in a wider or signed type
                (out,) = self._transform("packed", np.dtype(np.uint16))([np.clip(frames, 0, 65535).astype(np.uint16)])
                return out.astype(frames.dtype)
            (out,) = self._transform("packed", frames.dtype)([frames])
            return out
        if isinstance(frames, torch.Tensor):
            if frames.is_meta:  # torch's own error would be NotImplementedError("Cannot copy out of meta tensor")
                raise InputError(f"a tensor on the meta device (shape {tuple(frames.shape)}) holds no values to "
                                 "upscale: make the frames on the CPU or a CUDA device")
            _check_frame_dtype(frames)  # before the grey/RGBA path goes by way of NumPy: the tensor's words
            channels = frames.shape[0] if frames.ndim == 3 else frames.shape[1] if frames.ndim == 4 else None
            if frames.ndim == 2 or channels in (1, 4):
                return self._upscale_tensor_grey_or_rgba(frames)
            if channels != 3:
                hwc = frames.ndim in (3, 4) and frames.shape[-1] == 3  # channels last, as NumPy frames are
                raise InputError(f"expected a 3×H×W or N×3×H×W tensor (or H×W, 1×H×W, N×1×H×W grey; 4×H×W, N×4×H×W "
                                 f"RGBA), got shape {tuple(frames.shape)}"
                                 + (" (channels last: .permute(2, 0, 1) or .permute(0, 3, 1, 2) first)" if hwc else ""))
            if frames.ndim == 3:
                return self._upscale(frames.unsqueeze(0))[0]
            _check_not_empty(frames.shape[0], frames.shape[2], frames.shape[3])
            src_device, src_dtype = frames.device, frames.dtype
            x = frames
            if not src_dtype.is_floating_point:
                if src_dtype in (torch.int16, torch.int32):  # 16-bit codes held in a wider or signed type
                    x = x.to(torch.int32).clamp_(0, 65535).to(torch.uint16)
            planes = list(x.unbind(1))
            if x.device != self.device:
                planes = [p.cpu().numpy() for p in planes]
            out = self._transform("planar", x.dtype)(planes)
            y = torch.stack([p if isinstance(p, torch.Tensor) else torch.from_numpy(p) for p in out], dim=1)
            if src_dtype in (torch.int16, torch.int32):
                y = y.to(torch.int32).to(src_dtype)
            return y.to(src_device)
        if type(frames).__module__.startswith("PIL."):  # not imported: only named
            mode = getattr(frames, "mode", "?")
            raise InputError(f"expected a numpy array or torch tensor, got a PIL image (mode {mode}): pass "
                             "np.asarray(image) (an RGB, RGBA or L image; image.convert('RGB') first for others), or "
                             "upscale its file with esrgan_video.upscale_image, which keeps its ICC profile, EXIF and "
                             "DPI")
        raise InputError(f"expected a numpy array or torch tensor, got {type(frames).__name__}")

    def _upscale_tensor_grey_or_rgba(self, frames: torch.Tensor) -> torch.Tensor:
        """An H×W, 1×H×W or N×1×H×W grey or a 4×H×W or N×4×H×W RGBA tensor, upscaled as the NumPy H×W grey or
        H×W×4 RGBA array of its values is (the same values: through that path, by way of the host), back in its own
        dtype on its own device. bfloat16, which NumPy lacks, runs as float32."""
        if frames.ndim == 2:
            return self._upscale_tensor_grey_or_rgba(frames.unsqueeze(0))[0]
        if frames.ndim == 4:
            _check_not_empty(frames.shape[0], frames.shape[2], frames.shape[3])
            return torch.stack([self._upscale_tensor_grey_or_rgba(f) for f in frames.unbind(0)])
        _check_not_empty(1, frames.shape[1], frames.shape[2])
        x = frames.detach()
        if x.dtype == torch.bfloat16:
            x = x.float()
        arr = x.cpu().numpy()
        out = self._upscale(arr[0] if frames.shape[0] == 1 else np.moveaxis(arr, 0, -1))
        y = torch.from_numpy(np.ascontiguousarray(out[None] if frames.shape[0] == 1 else np.moveaxis(out, -1, 0)))
        return y.to(device=frames.device, dtype=frames.dtype)

    def _upscale_grey_or_rgba(self, frames: np.ndarray) -> np.ndarray:
        """An H×W grey or H×W×4 RGBA array (native byte order), upscaled as :func:`~esrgan_video.upscale_image`
        upscales a grey or RGBA still: the model on R = G = B, the grey out the BT.709 luma of its RGB; alpha upscaled
        once beside the colour (as a grey image)."""
        grey = frames.ndim == 2
        if frames.dtype.kind == "f":
            if grey:
                out = self._transform("packed-float-grey", frames.dtype)([frames, frames, frames])
                y = sum(np.float32(w) * c.astype(np.float32) for w, c in zip(LUMA_709, out))
                return np.clip(y, 0, 1).astype(frames.dtype)
            out = self._transform("packed-float-alpha", frames.dtype)([frames[..., c] for c in range(4)])
            return np.stack(out, axis=-1)
        if frames.dtype in (np.int16, np.int32):  # 16-bit codes held in a wider or signed type
            return self._upscale_grey_or_rgba(np.clip(frames, 0, 65535).astype(np.uint16)).astype(frames.dtype)
        from .options import SizeOptions
        from .stills import upscale_samples

        bits = 8 if frames.dtype == np.uint8 else 16
        samples, alpha = (frames, None) if grey else (frames[..., :3], frames[..., 3])
        big, big_alpha = upscale_samples(self, np.ascontiguousarray(samples),
                                         None if alpha is None else np.ascontiguousarray(alpha), bits, SizeOptions())
        return big if grey else np.concatenate([big, big_alpha[..., None].astype(big.dtype)], axis=2)

    def _transform(self, layout: str, dtype) -> "FrameTransform":
        """The frame transform for one kind of RGB frame (made once per kind; any frame size)."""
        from .frames.transform import FrameFormat, FrameTransform, _torch_dtype

        key = (layout, str(dtype))
        tr = self._transforms.get(key)
        if tr is None:
            if layout.startswith("packed-float") or (layout == "planar" and dtype.is_floating_point):
                fmt = FrameFormat.float_rgb(dtype if isinstance(dtype, torch.dtype) else _torch_dtype(dtype),
                                            alpha=layout == "packed-float-alpha")
            else:
                bits = 8 if str(dtype) in ("uint8", "torch.uint8") else 16
                pf = (pixel_format("rgb24" if bits == 8 else "rgb48le") if layout == "packed" else
                      PixelFormat(f"planar-rgb{bits}", "rgb", bits, planes=("R", "G", "B")))
                fmt = FrameFormat(pf, ColorSpec().resolved(1, 1, pf))
            tr = self._transforms.setdefault(key, FrameTransform(self, src=fmt, dst=fmt,
                                                                 grey=layout == "packed-float-grey"))
        return tr


def _each(backends: list[Backend], act: Callable[[Backend], None]) -> BaseException | None:
    """``act`` (a close, a flush) on each of ``backends``, every one even when one raises (its flush reading a
    deferred non-finite check: TensorRT's default on a GPU); the errors :func:`_joined`."""
    errors = []
    for b in backends:
        try:
            act(b)
        except BaseException as e:  # noqa: BLE001 - returned to the caller, once every backend had its turn
            errors.append(e)
    return _joined(*errors)


def _joined(*errors: BaseException | None) -> BaseException | None:
    """The first of ``errors`` that is not None, with what each other one said added to it as a note; None when
    there is none."""
    present = [e for e in errors if e is not None]
    for other in present[1:]:
        present[0].add_note(f"and: {other}")
    return present[0] if present else None


_OUT_OF_MEMORY = ("out of memory", "failed to allocate memory", "can't allocate memory")
"""What torch (CUDA: "CUDA out of memory", "CUDA error: out of memory"; CPU: "DefaultCPUAllocator: can't allocate
memory"), ONNX Runtime ("Failed to allocate memory for requested buffer") and TensorRT ("out of memory") say when an
allocation fails, lower case."""


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e``, or an exception it was raised from or while handling, is a failed allocation
    (``torch.cuda.OutOfMemoryError``, a ``MemoryError``, or a message of :data:`_OUT_OF_MEMORY`: ONNX Runtime raises
    its own exception types, which its backend wraps in a BackendError quoting them)."""
    from .errors import EsrganVideoError, causes

    for c in causes(e):
        if isinstance(c, (torch.cuda.OutOfMemoryError, MemoryError)):
            return True
        if isinstance(c, EsrganVideoError) and not isinstance(c, BackendError):
            continue  # a message of ours about something else (a file name may say anything)
        if any(w in str(c).lower() for w in _OUT_OF_MEMORY):
            return True
    return False


def non_finite_count(frames) -> int:
    """How many values of a float array or tensor are NaN or infinite (0 for integer frames and anything else).
    What :meth:`Upscaler.upscale` and the VapourSynth filter count to tell a float input holding NaN/Inf from a model
    that made them."""
    if isinstance(frames, np.ndarray) and frames.dtype.kind == "f":
        return int(frames.size - np.count_nonzero(np.isfinite(frames)))
    if isinstance(frames, torch.Tensor) and frames.dtype.is_floating_point:
        return int((~torch.isfinite(frames.detach())).sum())
    return 0


def _module_on(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` in eval mode on ``device`` without changing the caller's object: the module itself when it already
    is (every submodule in eval mode, every weight and buffer on ``device``), else a copy made so (the backends copy
    it again before casting it to their precision)."""
    tensors = [*module.parameters(), *module.buffers()]
    if not any(m.training for m in module.modules()) and all(_on(t.device, device) for t in tensors):
        return module
    return copy.deepcopy(module).eval().to(device)


def _on(where: torch.device, device: torch.device) -> bool:
    return where.type == device.type and (where.index or 0) == (device.index or 0)


def _check_not_empty(n: int, h: int, w: int) -> None:
    if h == 0 or w == 0:
        raise InputError(f"empty image ({h}×{w}, height × width): nothing to upscale")
    if n == 0:
        raise InputError("empty batch (0 frames): nothing to upscale")


_INT_DTYPES = ("uint8", "uint16", "int16", "int32")
"""Integer frames: codes 0–255 (uint8) or 0–65535 (the others: int16 and int32 holding 16-bit codes)."""
_FLOAT_DTYPES = ("float16", "float32", "float64")
"""Float frames, values in [0, 1] (and torch's bfloat16, run as float32 where it must)."""
_ACCEPTED = ("uint8 (codes 0-255), uint16 (0-65535; int16 or int32 holding such codes), or floats in [0, 1] "
             "(float16, float32, float64; a tensor also bfloat16)")


def _check_frame_dtype(frames: "np.ndarray | torch.Tensor") -> None:
    """InputError for frames of a dtype :meth:`Upscaler.upscale` does not take: "unsupported frame dtype int64; the
    Upscaler takes ...", and where integer (or bool) values fit a dtype it takes, the conversion that keeps them
    (``frames.astype(np.uint8)``, ``frames.to(torch.uint16)``)."""
    tensor = isinstance(frames, torch.Tensor)
    name = str(frames.dtype).removeprefix("torch.") if tensor else frames.dtype.name
    if name in _INT_DTYPES or name in _FLOAT_DTYPES or (tensor and name == "bfloat16"):
        return
    hint = ""
    integral = (not frames.dtype.is_floating_point and not frames.dtype.is_complex) if tensor else \
        frames.dtype.kind in "biu"
    if integral and (frames.numel() if tensor else frames.size):
        try:
            lo, hi = int(frames.min()), int(frames.max())
        except (RuntimeError, TypeError, ValueError):  # a min/max torch has no kernel for (uint32 on some builds)
            lo = hi = None
        fit = None if lo is None or lo < 0 else "uint8" if hi <= 255 else "uint16" if hi <= 65535 else None
        if name == "bool":
            hint = "; True/False are not codes: scale them to codes first"
        elif fit is not None:
            hint = f"; its values ({lo} to {hi}) fit {fit}: " + (f"frames.to(torch.{fit})" if tensor else
                                                                 f"frames.astype(np.{fit})")
        elif lo is not None:
            hint = f"; its values run from {lo} to {hi}, beyond the codes 0-65535"
    raise InputError(f"unsupported frame dtype {name}; the Upscaler takes {_ACCEPTED}{hint}")

