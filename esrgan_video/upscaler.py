"""The frame-level Upscaler: model + backend + tiling + device buffers, behind one call.

The CLI pipeline, the VapourSynth filter and batch mode all upscale through this
class. It is synchronous and safe to call from several threads at once (VapourSynth
calls filters from its own thread pool): each call checks out a CUDA stream from a
small pool, so frames from different threads overlap on the device.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from . import tiling
from .errors import InputError
from .options import DEFAULT_MODEL, ModelOptions, RuntimeOptions
from .runtime.base import Backend, BackendInfo
from .runtime.devices import resolve_device
from .runtime.select import make_backend

# Default tile sizes come from a fixed table keyed by device class and frame size, never from a
# free-memory reading, so the same video always gets the same tiles (and TensorRT engine caches hit).
CPU_WHOLE_FRAME_MAX_PIXELS = 640 * 360
"""On the CPU a frame up to this many input pixels runs as one tile (exact, no seams)."""
CPU_TILE = 256
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


_MODEL_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelOptions)) - {"model"}
_RUNTIME_FIELDS = frozenset(f.name for f in dataclasses.fields(RuntimeOptions))


class Upscaler:
    """Upscale RGB frames with an RRDB model.

    ``upscale(frames)`` takes numpy H×W×3 (uint8, uint16 or float in [0, 1]) or a torch
    N×3×H×W tensor on any device, and returns the upscaled frames in the same kind.
    ``upscale_tensor(rgb)`` is the device-side entry the streaming core uses.
    """

    def __init__(
        self,
        model: "str | os.PathLike | torch.nn.Module | ModelOptions" = DEFAULT_MODEL,
        runtime: RuntimeOptions | None = None,
        **options,
    ) -> None:
        """``model``: a registry name, checkpoint path, loaded module or :class:`ModelOptions`; ``runtime``: the
        :class:`RuntimeOptions`. Their fields may also be given as keywords (``blend=``, ``device=``, ``tile=``, …),
        over the two objects."""
        model_fields = {k: options.pop(k) for k in list(options) if k in _MODEL_FIELDS}
        runtime_fields = {k: options.pop(k) for k in list(options) if k in _RUNTIME_FIELDS}
        if options:
            raise TypeError(f"Upscaler: unknown option(s) {', '.join(sorted(options))}; known: "
                            f"{', '.join(sorted(_MODEL_FIELDS | _RUNTIME_FIELDS))}")
        if isinstance(model, ModelOptions):
            model_opts = dataclasses.replace(model, **model_fields) if model_fields else model
        else:
            model_opts = ModelOptions(model=model, **model_fields)
        runtime = runtime or RuntimeOptions()
        if runtime_fields:
            runtime = dataclasses.replace(runtime, **runtime_fields)
        self.model_options = model_opts
        self._device_requested = runtime.device is not None
        self.device = resolve_device(runtime.device)
        if isinstance(model_opts.model, torch.nn.Module):
            self.model = model_opts.model.eval().to(self.device)
        else:
            from .models import load_model

            extra = {} if model_opts.denoise is None else {"denoise": model_opts.denoise}
            self.model = load_model(model_opts.model, device=self.device, blend=model_opts.blend,
                                    offline=model_opts.offline, **extra)
        self.scale = self.model.scale
        on_gpu = self.device.type == "cuda"
        self.runtime = dataclasses.replace(
            runtime,
            tile_pad=tiling.DEFAULT_TILE_PAD if runtime.tile_pad is None else runtime.tile_pad,
            batch=runtime.batch or (4 if on_gpu else 1),
            streams=runtime.streams if on_gpu else 1,
        )
        """The runtime options with their defaults resolved for this device (``tile_pad``, ``batch``, ``streams``)."""
        self._backend_name = runtime.backend
        self._precision = runtime.precision
        self._backends: dict[tuple[int, int, int] | None, Backend] = {}
        self._plans: dict[tuple[int, int], tiling.TilePlan] = {}  # frozen plans; a racing double insert is harmless
        self._lock = threading.Lock()
        self._streams: queue.Queue = queue.Queue()
        if on_gpu:
            for _ in range(self.runtime.streams):
                self._streams.put(torch.cuda.Stream(device=self.device))
        self._closed = False

    @property
    def config(self) -> RuntimeOptions:
        """Alias of :attr:`runtime` (the resolved runtime options)."""
        return self.runtime

    # lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            for b in self._backends.values():
                b.close()
            self._backends.clear()
            self._closed = True

    def __enter__(self) -> "Upscaler":
        return self

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
                multiple=self.model.params.unshuffle,
            )
            self._plans[(height, width)] = plan
        return plan

    def batch_for(self, plan: tiling.TilePlan) -> int:
        """Tiles per inference call for a plan: the configured batch, never more than a frame's tiles
        (a fixed-shape engine pads short batches, so a larger batch would only add work)."""
        return max(1, min(self.config.batch, plan.count))

    def backend_for(self, tile_shape: tuple[int, int], batch: int | None = None) -> Backend:
        """The backend that runs ``batch`` tiles of ``tile_shape`` at a time (one per shape and batch for
        fixed-shape engines; one for everything otherwise)."""
        batch = batch or self.config.batch
        with self._lock:
            if self._closed:
                raise RuntimeError("this Upscaler is closed")
            if None in self._backends:
                return self._backends[None]
            key = (tile_shape[0], tile_shape[1], batch)
            if key in self._backends:
                return self._backends[key]
            b = make_backend(
                self.model, backend=self._backend_name,
                device=self.device if self._device_requested else None, precision=self._precision,
                tile_shape=tile_shape, batch=batch, streams=self.config.streams,
            )
            b.open()
            self._backends[key if b.info.fixed_shape else None] = b
            return b

    def prepare(self, height: int, width: int) -> Backend:
        """Build (or find) the backend frames of this size will use, e.g. a TensorRT engine, ahead of the first frame."""
        plan = self.plan(height, width)
        return self.backend_for(plan.tile_shape, self.batch_for(plan))

    @property
    def backend_info(self) -> BackendInfo | None:
        """Info of the backend that ran last built (None before the first frame: building one just to
        report it could mean a TensorRT engine build)."""
        with self._lock:
            existing = next(reversed(self._backends.values()), None) if self._backends else None
        return existing.info if existing is not None else None

    @contextmanager
    def _stream(self) -> Iterator["torch.cuda.Stream | None"]:
        if self.device.type != "cuda":
            yield None
            return
        s = self._streams.get()
        try:
            with torch.cuda.stream(s):
                yield s
        finally:
            self._streams.put(s)

    # inference -----------------------------------------------------------------------------
    def upscale_tensor(self, rgb: torch.Tensor) -> torch.Tensor:
        """N×3×H×W float in [0, 1] on this Upscaler's device → N×3×(H·s)×(W·s) float32 on it.

        Runs on the caller's current CUDA stream (the streaming core and ``upscale`` pick it).
        """
        if rgb.ndim != 4 or rgb.shape[1] != self.model.params.in_nc:
            raise InputError(
                f"expected N×{self.model.params.in_nc}×H×W frames, got shape {tuple(rgb.shape)}"
            )
        plan = self.plan(rgb.shape[-2], rgb.shape[-1])
        batch = self.batch_for(plan)
        backend = self.backend_for(plan.tile_shape, batch)  # the same call prepare() makes
        fixed = backend.info.fixed_shape
        dtype = backend.info.dtype
        stream = torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None

        def run(tiles: torch.Tensor) -> torch.Tensor:
            n = tiles.shape[0]
            if fixed is not None and n < fixed[0]:
                tiles = torch.cat([tiles, tiles[-1:].expand(fixed[0] - n, -1, -1, -1)])
            out = backend(tiles.to(dtype), stream)
            return out[:n]

        with torch.inference_mode():
            out = tiling.run_tiled(rgb, run, plan, batch=batch, blend=tiling.DEFAULT_BLEND)
        return out.float()

    def upscale(self, frames):
        """Upscale numpy H×W×3 (uint8/uint16/float) or torch N×3×H×W frames; returns the same kind."""
        if isinstance(frames, np.ndarray):
            return self._upscale_numpy(frames)
        if isinstance(frames, torch.Tensor):
            if frames.ndim == 3:
                return self.upscale(frames.unsqueeze(0))[0]
            src_device, src_dtype = frames.device, frames.dtype
            x = _to_unit_float(frames)
            with self._stream():
                y = self.upscale_tensor(x.to(self.device, non_blocking=True))
                y = _from_unit_float(y, src_dtype).to(src_device)
                if self.device.type == "cuda":
                    torch.cuda.current_stream(self.device).synchronize()
            return y
        raise InputError(f"expected a numpy array or torch tensor, got {type(frames).__name__}")

    def _upscale_numpy(self, img: np.ndarray) -> np.ndarray:
        if img.ndim != 3 or img.shape[2] != 3:
            raise InputError(f"expected an H×W×3 RGB array, got shape {img.shape}")
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0)
        out = self.upscale(t)
        return out[0].permute(1, 2, 0).contiguous().numpy()


def _to_unit_float(x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if x.dtype in (torch.uint16, torch.int32) or x.dtype == torch.int16:
        return x.float() / 65535.0
    if x.dtype.is_floating_point:
        return x.float()
    raise InputError(f"unsupported frame dtype {x.dtype}; expected uint8, uint16 or float")


def _from_unit_float(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.uint8:
        return (y * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    if dtype in (torch.uint16, torch.int32, torch.int16):
        return (y * 65535.0).round_().clamp_(0, 65535).to(torch.int32).to(dtype)
    return y.to(dtype)
