"""Seam-free tiling: a pure tile planner and a tensor stitcher.

The planner (:func:`plan_tiles`) is pure integer maths. Per axis it picks the fewest
windows of one fixed length that keep at least ``pad`` input pixels of context on
both sides of every seam:

* every window has the same length ``n = ceil_to(tile + 2*pad, multiple)`` (clipped to
  the frame, then rounded up to ``multiple`` again), so fixed-shape engines see one shape;
* the first window starts at 0 and the last ends at the frame edge ("edge tiles shifted
  inward"); the others are spread evenly between them, so every overlap is at least
  ``2*pad`` wide;
* the seam between two windows sits in the middle of their overlap, so each side of a
  seam has at least ``pad`` pixels of context (usually more);
* crops are expressed in output pixels (input pixels x ``scale``).

The 2-D plan is the product of a row plan and a column plan. :func:`run_tiled` cuts the
windows out of an ``N x C x H x W`` tensor (tiles of several frames share a batch),
calls the model function and stitches the results into one preallocated output on the
input's device, either cropping at the seams (``blend="crop"``) or with linear feather
weights across each overlap (``blend="feather"``, weights normalised to sum to 1).

Measured on real RealESRGAN_x4plus weights (fp16 weights from the ncnn release) with 48-pixel
tiles on crops of real photos where each seam has exactly ``pad`` pixels of context, PSNR of the
tiled result against the whole frame (crop seams) on the hardest texture measured (the fur of
``skimage.data.chelsea()``) was 38 / 40 / 43 / 45 / 45-50 / 50-58 / 57-61 dB for pad
4 / 8 / 16 / 24 / 32 / 40 / 48; smoother photos gain 5-15 dB at the same pad (table in
``docs/ARCHITECTURE.md``). Feathering across the overlap mixes in the tiles' poorly-informed edge
pixels and was no better (worse from pad 16 on), so the default is crop with pad 48.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

DEFAULT_TILE_PAD = 48
"""Default context (input pixels) on each side of every seam: >= 50 dB against the whole frame on real weights."""

DEFAULT_BLEND = "crop"
"""Default way of joining tiles: ``"crop"`` (cut at the seams) or ``"feather"`` (linear ramps across overlaps)."""

BLENDS = ("crop", "feather")


@dataclass(frozen=True)
class AxisPlan:
    """Windows along one axis (all lengths in input pixels)."""

    length: int
    """Frame length along this axis."""
    window: int
    """Window (tile input) length; may exceed ``length`` when ``multiple`` rounds it up."""
    origins: tuple[int, ...]
    """Start of each window, increasing; the first is 0, the last is ``max(0, length - window)``."""
    seams: tuple[int, ...]
    """Cut positions between consecutive windows (``len(origins) - 1`` of them), mid-overlap."""

    def core(self, i: int) -> tuple[int, int]:
        """The part ``[start, stop)`` of the frame that window ``i`` owns in crop mode."""
        start = 0 if i == 0 else self.seams[i - 1]
        stop = self.length if i == len(self.origins) - 1 else self.seams[i]
        return start, stop


@dataclass(frozen=True)
class Tile:
    """One tile: an input window and where its output goes (crop mode)."""

    y: int
    """Top of the input window in the frame (input pixels)."""
    x: int
    """Left of the input window in the frame (input pixels)."""
    row: int
    """Index into ``TilePlan.rows``."""
    col: int
    """Index into ``TilePlan.cols``."""
    src: tuple[slice, slice]
    """Rows and columns of the tile's output that are kept (output pixels, tile coordinates)."""
    dst: tuple[slice, slice]
    """Where those go in the frame's output (output pixels, frame coordinates)."""


@dataclass(frozen=True)
class TilePlan:
    """A complete tiling of one frame size; every tile has input shape ``tile_shape``."""

    height: int
    width: int
    scale: int
    pad: int
    tile_shape: tuple[int, int]
    """(h, w) of every model input; larger than the frame only when ``multiple`` forces it."""
    rows: AxisPlan
    cols: AxisPlan
    tiles: tuple[Tile, ...]

    @property
    def count(self) -> int:
        """Number of tiles per frame."""
        return len(self.tiles)

    @property
    def output_shape(self) -> tuple[int, int]:
        """(H, W) of the stitched output."""
        return self.height * self.scale, self.width * self.scale

    @property
    def padded_shape(self) -> tuple[int, int]:
        """Frame shape after replicate-padding it (bottom/right) up to at least one tile."""
        return max(self.height, self.tile_shape[0]), max(self.width, self.tile_shape[1])


def _ceil_to(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"plan_tiles: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def plan_axis(length: int, *, tile: int, pad: int, multiple: int = 1) -> AxisPlan:
    """Plan the windows along one axis; ``tile=0`` means one window over the whole axis."""
    full = _ceil_to(length, multiple)
    if tile == 0 or _ceil_to(tile + 2 * pad, multiple) >= length:
        return AxisPlan(length, full, (0,), ())
    window = _ceil_to(tile + 2 * pad, multiple)
    stride_max = window - 2 * pad  # >= tile >= 1, keeps every overlap >= 2*pad
    span = length - window
    gaps = -(-span // stride_max)
    # Evenly spread origins, integer rounding (half up) so the plan is exact and portable.
    origins = tuple((i * span * 2 + gaps) // (2 * gaps) for i in range(gaps + 1))
    seams = tuple((origins[i + 1] + origins[i] + window) // 2 for i in range(gaps))
    return AxisPlan(length, window, origins, seams)


def plan_tiles(
    height: int,
    width: int,
    *,
    tile: int | tuple[int, int],
    pad: int = DEFAULT_TILE_PAD,
    scale: int,
    multiple: int = 1,
) -> TilePlan:
    """Plan fixed-shape tiles for a ``height x width`` frame.

    ``tile`` is the core tile size in input pixels (an int, or ``(h, w)``); each model input is
    ``tile + 2*pad`` per axis, rounded up to ``multiple`` and clipped to the frame (then rounded
    up to ``multiple`` again, which can exceed a frame that is not a multiple: :func:`run_tiled`
    pads such frames by replicating the last row/column). ``tile=0`` gives one tile of the whole
    frame. ``scale`` is the model's output/input ratio; crops are in output pixels.
    """
    _check_int("height", height, 1)
    _check_int("width", width, 1)
    _check_int("pad", pad, 0)
    _check_int("scale", scale, 1)
    _check_int("multiple", multiple, 1)
    tile_h, tile_w = (tile, tile) if not isinstance(tile, tuple) else tile
    _check_int("tile", tile_h, 0)
    _check_int("tile", tile_w, 0)
    rows = plan_axis(height, tile=tile_h, pad=pad, multiple=multiple)
    cols = plan_axis(width, tile=tile_w, pad=pad, multiple=multiple)
    tiles = []
    for r, y in enumerate(rows.origins):
        y0, y1 = rows.core(r)
        for c, x in enumerate(cols.origins):
            x0, x1 = cols.core(c)
            src = (slice((y0 - y) * scale, (y1 - y) * scale), slice((x0 - x) * scale, (x1 - x) * scale))
            dst = (slice(y0 * scale, y1 * scale), slice(x0 * scale, x1 * scale))
            tiles.append(Tile(y=y, x=x, row=r, col=c, src=src, dst=dst))
    return TilePlan(
        height=height,
        width=width,
        scale=scale,
        pad=pad,
        tile_shape=(rows.window, cols.window),
        rows=rows,
        cols=cols,
        tiles=tuple(tiles),
    )


def feather_weights(axis: AxisPlan, scale: int, *, device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Per-window 1-D blend weights in output pixels, normalised so they sum to 1 at every position.

    Within the overlap of two windows the weights are a linear ramp from one to the other
    (sampled at pixel centres); frame edges are not ramped. Returned tensors are float32 of
    length ``window * scale`` (window coordinates); positions beyond the frame get weight 0.
    """
    n = axis.window * scale
    length = axis.length * scale
    pos = torch.arange(n, dtype=torch.float64, device=device) + 0.5
    raw = []
    last = len(axis.origins) - 1
    for i, o in enumerate(axis.origins):
        w = torch.ones(n, dtype=torch.float64, device=device)
        if i > 0:
            overlap = (axis.origins[i - 1] + axis.window - o) * scale
            w = torch.minimum(w, pos / overlap)
        if i < last:
            overlap = (o + axis.window - axis.origins[i + 1]) * scale
            w = torch.minimum(w, (n - pos) / overlap)
        w[max(0, length - o * scale) :] = 0.0
        raw.append(w)
    total = torch.zeros(length, dtype=torch.float64, device=device)
    for o, w in zip(axis.origins, raw):
        seg = slice(o * scale, min(length, o * scale + n))
        total[seg] += w[: seg.stop - seg.start]
    out = []
    for o, w in zip(axis.origins, raw):
        seg = slice(o * scale, min(length, o * scale + n))
        norm = torch.zeros(n, dtype=torch.float64, device=device)
        norm[: seg.stop - seg.start] = w[: seg.stop - seg.start] / total[seg]
        out.append(norm.to(torch.float32))
    return out


def batch_closure(tiles: frozenset[int] | set[int], count: int, batch: int) -> frozenset[int]:
    """The tiles :func:`run_tiled` computes when asked for ``tiles`` of a ``count``-tile frame in batches of
    ``batch``: every tile of each batch that holds one of them (pure)."""
    out: set[int] = set()
    for b in {i // batch for i in tiles}:
        out.update(range(b * batch, min(count, (b + 1) * batch)))
    return frozenset(out)


def run_tiled(
    x: torch.Tensor,
    fn: Callable[[torch.Tensor], torch.Tensor],
    plan: TilePlan,
    *,
    batch: int = 1,
    blend: str = DEFAULT_BLEND,
    only: frozenset[int] | set[int] | None = None,
    base: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply ``fn`` tile by tile to ``x`` (``N x C x H x W``) and stitch the results.

    Tiles of all frames are cut in plan order (frame-major) and handed to ``fn`` in batches of up
    to ``batch`` (``B x C x th x tw`` -> ``B x C' x th*scale x tw*scale``). The output
    (``N x C' x H*scale x W*scale``, dtype of ``fn``'s output, on ``x``'s device) is preallocated
    once. ``blend="crop"`` copies each tile's core; ``"feather"`` adds tiles with linear weights
    across the overlaps (accumulated in float32, then cast).

    Reuse (one frame, ``blend="crop"``): ``only`` names the tiles (indices into ``plan.tiles``) to compute and
    ``base`` (``1 x C' x H*scale x W*scale``) supplies every other tile's core; the result is a new tensor (``base``
    is not written). Tiles are computed in the batches of a run without reuse: every batch that holds a tile of
    ``only`` is run whole, with the shape and the tiles it has without reuse (:func:`batch_closure` says which
    tiles that computes), so a backend that picks kernels per shape (TensorRT, cuDNN) gives them the same bits.
    """
    if blend not in BLENDS:
        raise ValueError(f"run_tiled: blend must be one of {BLENDS}, got {blend!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"run_tiled: batch must be an integer >= 1, got {batch!r}")
    if x.dim() != 4 or tuple(x.shape[2:]) != (plan.height, plan.width):
        raise ValueError(
            f"run_tiled: expected an N x C x {plan.height} x {plan.width} tensor for this plan, got {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError("run_tiled: got an empty batch (0 frames)")
    th, tw = plan.tile_shape
    ph, pw = plan.padded_shape
    if (ph, pw) != (plan.height, plan.width):
        x = F.pad(x, (0, pw - plan.width, 0, ph - plan.height), mode="replicate")
    s = plan.scale
    oh, ow = plan.output_shape
    jobs = [(f, t) for f in range(x.shape[0]) for t in plan.tiles]
    out: torch.Tensor | None = None
    groups = [jobs[start : start + batch] for start in range(0, len(jobs), batch)]
    if only is not None or base is not None:
        if only is None or base is None or blend != "crop" or x.shape[0] != 1:
            raise ValueError("run_tiled: reuse takes one frame, blend='crop', and both only= and base=")
        if tuple(base.shape[-2:]) != (oh, ow) or base.shape[0] != 1:
            raise ValueError(f"run_tiled: base must be 1 x C x {oh} x {ow}, got {tuple(base.shape)}")
        out = base.clone()
        groups = [groups[b] for b in sorted({i // batch for i in only})]
    if blend == "feather":
        wy = feather_weights(plan.rows, s, device=x.device)
        wx = feather_weights(plan.cols, s, device=x.device)
    for group in groups:
        inp = torch.stack([x[f, :, t.y : t.y + th, t.x : t.x + tw] for f, t in group])
        res = fn(inp)
        expected = (len(group), th * s, tw * s)
        if res.dim() != 4 or (res.shape[0], res.shape[2], res.shape[3]) != expected:
            raise ValueError(
                f"run_tiled: fn returned shape {tuple(res.shape)} for input {tuple(inp.shape)}; "
                f"expected {expected[0]} x C x {expected[1]} x {expected[2]} (scale {s})"
            )
        if out is None:
            acc_dtype = res.dtype
            if blend == "feather" and res.dtype != torch.float64:
                acc_dtype = torch.float32
            alloc = torch.zeros if blend == "feather" else torch.empty
            out = alloc((x.shape[0], res.shape[1], oh, ow), dtype=acc_dtype, device=x.device)
        res = res.to(out.device)
        for k, (f, t) in enumerate(group):
            if blend == "crop":
                out[f, :, t.dst[0], t.dst[1]] = res[k, :, t.src[0], t.src[1]]
            else:
                y0, x0 = t.y * s, t.x * s
                hh, ww = min(th * s, oh - y0), min(tw * s, ow - x0)
                w = wy[t.row][:hh, None] * wx[t.col][None, :ww]
                out[f, :, y0 : y0 + hh, x0 : x0 + ww] += res[k, :, :hh, :ww].to(out.dtype) * w.to(out.dtype)
    assert out is not None  # the plan always has at least one tile and x at least one frame
    if blend == "feather" and out.dtype != res.dtype:
        out = out.to(res.dtype)
    return out
