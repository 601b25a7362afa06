"""Reuse of unchanged tiles and frames: never upscale the same pixels twice.

The tile plan fixes each tile's input window (core + pad). When a window's input equals that of the
frame whose output the window holds now (its *reference*), the window's output is that output: it is
copied instead of recomputed. One window (a frame run whole) is frame reuse.

Modes (``--reuse``):

* ``off`` — every tile is computed.
* ``exact`` — a window is reused only when its input planes are bit-identical to its reference's. The
  comparison is on the decoded planes on the host, with a margin around each window wide enough for the
  chroma upsampler's support (:data:`CHROMA_MARGIN` chroma samples: a window's RGB depends on chroma
  samples outside it), so the model's input for the window is identical and, with a deterministic backend,
  so is its output: ``exact`` changes no output bit. Recomputed tiles keep the batches they have without
  reuse (:func:`esrgan_video.tiling.batch_closure`), for backends whose kernels depend on the batch shape.
* ``near`` — a window is also reused when its input is close to its reference by :class:`NearRule`: the
  window's PSNR against the reference (all planes, in codes) is at least ``min_psnr`` *and* no
  ``block``×``block`` block's mean absolute difference exceeds ``max_block`` (codes at 8 bits), so a small
  moving detail is never frozen while compression noise of a held picture is. The reference is the frame
  whose output is reused, not the previous frame, so a slow fade cannot drift. ``near`` depends on history,
  so :meth:`ReuseTracker.reset` drops the references (at seeks, format or size changes and the batch
  segmenter's cut points: :func:`reset_points`).

The tracker is pure host logic (NumPy): it decides, frame by frame, which tiles to compute; the Upscaler
computes them (``upscale_tensor(..., only=, base=)``) and the frame transform keeps the previous output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any, Mapping, Sequence

import numpy as np

from ..options import REUSE_MODES as MODES
from ..tiling import TilePlan, batch_closure
from .pixel_formats import PixelFormat

NEAR_RESET_PERIOD = Fraction(10)
"""Seconds between ``near``'s reset points (:func:`reset_points`)."""
CHROMA_MARGIN = 3
"""Chroma samples compared beyond a window's edge on subsampled planes. The bicubic (Catmull-Rom) upsampler reads
2 samples either side of a luma sample's chroma position, and the siting offset moves that position by up to half a
sample. 2 is the least the colour code needs for every siting (``tests/test_reuse.py`` checks the window's RGB against
edits just outside the compared region, and that 1 is not enough); 3 leaves one sample to spare."""


@dataclass(frozen=True, kw_only=True)
class NearRule:
    """When ``near`` treats a window as unchanged (both must hold), calibrated on real clips (docs/reuse.md)."""

    min_psnr: float = 45.0
    """Least PSNR (dB, peak = the format's largest code) of the window's planes against its reference."""
    max_block: float = 6.0
    """Largest mean |difference| of any ``block``×``block`` block of a plane, in 8-bit codes."""
    block: int = 4
    """Block side for the local cap, in samples of each plane."""


@dataclass
class ReuseStats:
    """What reuse did in one run (the run summary, ``RunResult.reuse`` and ``--progress json`` report it)."""

    mode: str = "off"
    frames: int = 0
    frames_reused: int = 0
    """Frames whose every tile was reused (the model did not run)."""
    tiles: int = 0
    tiles_reused: int = 0
    resets: int = 0

    @property
    def tile_fraction(self) -> float:
        return self.tiles_reused / self.tiles if self.tiles else 0.0

    def as_dict(self) -> dict:
        return {"mode": self.mode, "frames": self.frames, "frames_reused": self.frames_reused, "tiles": self.tiles,
                "tiles_reused": self.tiles_reused, "tile_fraction": round(self.tile_fraction, 4), "resets": self.resets}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReuseStats:
        """The stats whose :meth:`as_dict` is ``d`` (its ``tile_fraction`` is derived: not read); a count ``d`` lacks
        is 0. KeyError without ``mode``, TypeError or ValueError for a count that is not a number."""
        return cls(mode=str(d["mode"]), **{f.name: int(d.get(f.name, 0)) for f in fields(cls) if f.name != "mode"})

    def summary(self) -> str:
        if self.mode == "off":
            return "reuse off"
        return (f"reuse {self.mode}: {self.frames_reused}/{self.frames} frames, "
                f"{self.tiles_reused}/{self.tiles} tiles ({100 * self.tile_fraction:.0f} %) reused")


@dataclass(frozen=True)
class Decision:
    """For one frame: the tiles to compute (``compute``; empty = the whole frame is reused) out of ``count``."""

    compute: frozenset[int]
    count: int

    @property
    def whole_frame_reused(self) -> bool:
        return not self.compute

    @property
    def everything(self) -> bool:
        return len(self.compute) == self.count


def window_regions(plan: TilePlan, fmt: PixelFormat | None, plane_shapes: Sequence[tuple[int, ...]]
                   ) -> list[list[tuple[slice, slice]]]:
    """For each tile, the (rows, cols) slices of each plane its input window depends on (pure).

    Planes at full resolution: the window clipped to the frame. Subsampled chroma planes: the chroma samples under
    the window plus :data:`CHROMA_MARGIN` on each side, clipped.
    """
    th, tw = plan.tile_shape
    regions = []
    for t in plan.tiles:
        y0, y1 = t.y, min(t.y + th, plan.height)
        x0, x1 = t.x, min(t.x + tw, plan.width)
        per_plane = []
        for shape in plane_shapes:
            ph, pw = shape[0], shape[1]
            sy = 1 << fmt.log2_chroma_h if fmt is not None and ph < plan.height else 1
            sx = 1 << fmt.log2_chroma_w if fmt is not None and pw < plan.width else 1
            my = CHROMA_MARGIN if sy > 1 else 0
            mx = CHROMA_MARGIN if sx > 1 else 0
            rows = slice(max(0, y0 // sy - my), min(ph, -(-y1 // sy) + my))
            cols = slice(max(0, x0 // sx - mx), min(pw, -(-x1 // sx) + mx))
            per_plane.append((rows, cols))
        regions.append(per_plane)
    return regions


def near_enough(cur: Sequence[np.ndarray], ref: Sequence[np.ndarray], *, bits: int, rule: NearRule) -> bool:
    """Whether window crops ``cur`` are within ``rule`` of ``ref`` (pure; integer code planes)."""
    peak = float((1 << bits) - 1)
    to8 = 1.0 / (1 << (bits - 8)) if bits > 8 else 1.0
    sq = 0.0
    n = 0
    for a, b in zip(cur, ref):
        d = a.astype(np.int32) - b.astype(np.int32)
        sq += float(np.dot(d.ravel(), d.ravel()))
        n += d.size
        if block_max_mean_abs(d, rule.block) * to8 > rule.max_block:
            return False
    if n == 0 or sq == 0:
        return True
    psnr = 10 * math.log10(peak * peak * n / sq)
    return psnr >= rule.min_psnr


def block_max_mean_abs(d: np.ndarray, block: int) -> float:
    """The largest mean |d| over ``block``×``block`` blocks (the first two axes; edge blocks may be smaller)."""
    a = np.abs(d.astype(np.float32))
    if a.ndim == 3:
        a = a.max(axis=2)
    h, w = a.shape
    if h == 0 or w == 0:
        return 0.0
    hb, wb = -(-h // block), -(-w // block)
    padded = np.zeros((hb * block, wb * block), np.float32)
    padded[:h, :w] = a
    counts = np.zeros_like(padded)
    counts[:h, :w] = 1
    s = padded.reshape(hb, block, wb, block).sum(axis=(1, 3))
    c = counts.reshape(hb, block, wb, block).sum(axis=(1, 3))
    return float((s / c).max())


@dataclass
class ReuseTracker:
    """Frame-by-frame reuse decisions for one stream of frames of one format and size (not thread-safe: the frame
    transform calls it in frame order)."""

    mode: str
    rule: NearRule = field(default_factory=NearRule)
    stats: ReuseStats = field(init=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"reuse: expected one of {', '.join(MODES)}, got {self.mode!r}")
        self.stats = ReuseStats(mode=self.mode)
        self._key = None
        self._regions: list[list[tuple[slice, slice]]] = []
        self._refs: list[list[np.ndarray] | None] = []
        self._prev: list[np.ndarray] | None = None

    def reset(self) -> None:
        """Forget every reference: the next frame is computed whole."""
        if self._refs and any(r is not None for r in self._refs):
            self.stats.resets += 1
        self._refs = [None] * len(self._refs)
        self._prev = None

    def count(self, frames: int, tiles: int) -> None:
        """Count ``frames`` frames of ``tiles`` tiles each as seen and computed (:meth:`decide` counts its frame so;
        the frame transform calls this for the frames that do not go through reuse: reuse off, batches, device
        planes)."""
        self.stats.frames += frames
        self.stats.tiles += frames * tiles

    def decide(self, planes: Sequence[np.ndarray], plan: TilePlan, fmt: PixelFormat | None, *, batch: int = 1,
               bits: int = 8, whole_frames_only: bool = False) -> Decision:
        """Which tiles of this frame to compute; the references of computed tiles become this frame's windows.

        ``planes`` are the frame's host planes (copied: the caller may reuse its buffers). A change of plan, format, plane shapes or dtypes resets. ``batch``: the Upscaler's tiles per call —
        the decision is closed over batches (:func:`~esrgan_video.tiling.batch_closure`). ``whole_frames_only``:
        a frame is reused whole or computed whole (e.g. when an alpha plane is upscaled beside the colour).
        """
        count = plan.count
        key = (plan, None if fmt is None else fmt.name, tuple((p.shape, p.dtype.str) for p in planes), batch)
        if key != self._key:
            if self._key is not None:
                self.stats.resets += 1
            self._key = key
            self._regions = window_regions(plan, fmt, [p.shape for p in planes])
            self._refs = [None] * count
            self._prev = None
        self.count(1, count)
        if self.mode == "off":
            return Decision(frozenset(range(count)), count)
        # where each plane differs from the previous frame's: one comparison pass, which the windows then slice
        changed = None if self._prev is None else [a != b for a, b in zip(planes, self._prev)]
        if changed is not None and not any(m.any() for m in changed):
            # every window equals the previous frame's, whose windows all hold outputs this rule accepted; the kept
            # copy of the previous frame already holds these planes
            return self._done(Decision(frozenset(), count), None)
        compute_set = set()
        for i, regions in enumerate(self._regions):
            if self.mode == "exact":  # a reused window's input equals its reference's, so the previous frame's will do
                same = changed is not None and not any(m[r, c].any() for m, (r, c) in zip(changed, regions))
            else:
                ref = self._refs[i]
                same = ref is not None and near_enough([p[r, c] for p, (r, c) in zip(planes, regions)], ref,
                                                       bits=bits, rule=self.rule)
            if not same:
                if whole_frames_only:  # one changed window decides the frame: the others need not be compared
                    return self._done(Decision(frozenset(range(count)), count), planes)
                compute_set.add(i)
        return self._done(Decision(batch_closure(compute_set, count, batch), count), planes)

    def _done(self, d: Decision, planes: Sequence[np.ndarray] | None) -> Decision:
        """Count ``d`` and keep ``planes`` as the previous frame (None: they equal the one kept)."""
        if self.mode == "near":
            for i in d.compute:
                self._refs[i] = [p[r, c].copy() for p, (r, c) in zip(planes, self._regions[i])]
        self.stats.tiles_reused += d.count - len(d.compute)
        if d.whole_frame_reused:
            self.stats.frames_reused += 1
        if planes is not None:
            self._prev = [np.array(p, copy=True) for p in planes]  # the caller may reuse its buffers
        return d


def reset_points(pts: Sequence[int], cuts: Sequence[int], time_base: Fraction, *,
                 period: Fraction = NEAR_RESET_PERIOD) -> list[int]:
    """Where ``near`` drops its references, as presentation timestamps (pure): the first clean keyframe cut at
    least ``period`` seconds after the previous reset point, counted from the first frame.

    The batch segmenter cuts only at these points (``plan_segments``), so a segmented, a resumed and a one-pass
    run reset at the same frames and give the same output. Intra-only sources (every frame a keyframe) get one
    point per ``period``, not one per frame.
    """
    if not pts:
        return []
    out: list[int] = []
    prev = pts[0]
    for k in cuts:
        if (k - prev) * time_base >= period:
            out.append(k)
            prev = k
    return out


__all__ = ["CHROMA_MARGIN", "MODES", "Decision", "NearRule", "ReuseStats", "ReuseTracker", "block_max_mean_abs",
           "near_enough", "reset_points", "window_regions", "NEAR_RESET_PERIOD"]
