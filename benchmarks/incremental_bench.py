"""Would a layer-wise incremental ``near`` pay on the CPU? (``python -m benchmarks.incremental_bench``): not a test.

``reuse_bench --only regions`` bounds what recomputing only the changed part of a frame could save on Big Buck Bunny,
counting pixels and no overhead. This measures it: :class:`IncrementalCompact` runs the compact model
(SRVGGNetCompact, a plain stack of 3×3 convs at the input resolution) keeping every layer's features of the frames
before, and recomputes layer k only on the blocks whose input is not near their reference (``NearRule`` per block,
each block's reference being the input it last ran with), grown by k pixels — as rectangles at the grain of
``--block`` pixels (``grain="block"``: each layer's region rounded out to whole blocks, so the conv shapes repeat) or
exactly (``grain="pixel"``: the fewest pixels, shapes of any size). Big Buck Bunny as ``reuse_bench``'s speed
section encodes it (x264 CRF 18, 256×144), per frame and interleaved in one run: the model on the whole frame with
ONNX Runtime (the CPU default), with torch (channels-last, its fastest CPU layout here), and incrementally (torch,
channels-last). Reports time ratios, the fraction of layer pixels computed and PSNR against the whole-frame output.
Run it on a quiet machine: the incremental path is many small parallel convolutions, which lose far more than one
whole-frame call when another process holds a core (at load 4 on 2 cores it ran at 0.3× ONNX Runtime).

Writes ``benchmarks/results/incremental.json``; docs/reuse.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from benchmarks.clips import held_clip
from benchmarks.reuse_bench import RESULTS, decoded, dilate, dirty_blocks


def row_runs(row: np.ndarray) -> tuple[tuple[int, int], ...]:
    """The ``[start, end)`` runs of True in a 1-D bool array (pure)."""
    d = np.diff(np.concatenate(([0], row.astype(np.int8), [0])))
    return tuple(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def rectangles(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """``(y0, y1, x0, x1)`` rectangles that tile the True cells of a 2-D mask exactly: each row's runs, with runs
    repeated on consecutive rows merged into one rectangle (pure)."""
    out: list[tuple[int, int, int, int]] = []
    prev: tuple[tuple[int, int], ...] | None = None
    y0 = 0
    for y in range(mask.shape[0] + 1):
        runs = row_runs(mask[y]) if y < mask.shape[0] else None
        if runs != prev:
            if prev:
                out += [(y0, y, a, b) for a, b in prev]
            prev, y0 = runs, y
    return out


class IncrementalCompact:
    """The compact model on a stream of frames of one size, recomputing each layer only where it can change.

    ``step(x, dirty)``: ``x`` 1×C×H×W float, ``dirty`` the (H/block)×(W/block) bool grid of blocks whose input
    changed since the features were last computed there (all True for the first frame). Layer k (k = 1 .. the
    model's convs) is recomputed on ``dirty`` grown by k pixels, the rest of it kept from before; with unchanged
    blocks bit-identical to before, the output equals the whole-frame model's (to float rounding)."""

    def __init__(self, net: torch.nn.Module, height: int, width: int, *, block: int = 16, grain: str = "block"):
        if grain not in ("block", "pixel"):
            raise ValueError(f"grain must be 'block' or 'pixel', got {grain!r}")
        self.net, self.block, self.grain = net, block, grain
        self.h, self.w = height, width
        convs = [m for m in net.body if isinstance(m, torch.nn.Conv2d)]
        acts: list[torch.nn.Module | None] = [m for m in net.body if isinstance(m, torch.nn.PReLU)]
        self.layers = list(zip(convs, acts + [None]))
        chans = [convs[0].in_channels] + [c.out_channels for c in convs]
        # one zero border pixel: the convs' own zero padding
        self.features = [torch.zeros(1, c, height + 2, width + 2).to(memory_format=torch.channels_last) for c in chans]
        self.computed = 0  # layer pixels computed, summed over steps

    def _layer_masks(self, dirty: np.ndarray):
        """Per layer k = 1, 2, …: the mask of what it recomputes — ``dirty`` grown by k px, each layer's mask grown
        by one pixel from the last (``grain="pixel"``), or rounded out to whole blocks (``grain="block"``)."""
        b = self.block
        if self.grain == "block":
            for k in range(1, len(self.layers) + 1):
                yield dilate(dirty, 1 + (k - 1) // b)  # blocks within k px of a dirty block
            return
        grown = np.kron(dirty, np.ones((b, b), bool))[:self.h, :self.w]
        for _ in self.layers:
            grown = dilate(grown, 1)
            yield grown

    def _regions(self, mask: np.ndarray) -> list[tuple[int, int, int, int]]:
        """The rectangles (pixels) that tile a layer's mask."""
        if self.grain == "pixel":
            return rectangles(mask)
        b = self.block
        return [(y0 * b, min(y1 * b, self.h), x0 * b, min(x1 * b, self.w)) for y0, y1, x0, x1 in rectangles(mask)]

    @torch.no_grad()
    def step(self, x: torch.Tensor, dirty: np.ndarray) -> torch.Tensor:
        h, w = self.h, self.w
        self.features[0][:, :, 1:1 + h, 1:1 + w] = x
        for k, ((conv, act), mask) in enumerate(zip(self.layers, self._layer_masks(dirty)), 1):
            src, dst = self.features[k - 1], self.features[k]
            for y0, y1, x0, x1 in self._regions(mask):
                o = F.conv2d(src[:, :, y0:y1 + 2, x0:x1 + 2], conv.weight, conv.bias)
                dst[:, :, 1 + y0:1 + y1, 1 + x0:1 + x1] = act(o) if act is not None else o
                self.computed += (y1 - y0) * (x1 - x0)
        s = self.net.params.scale
        out = F.pixel_shuffle(self.features[-1][:, :, 1:1 + h, 1:1 + w], s)
        return (out + F.interpolate(x, scale_factor=s, mode="nearest")).clamp(0, 1)


def measure(src: Path, model: str, *, block: int, grain: str, rounds: int, threads: int) -> dict[str, Any]:
    import av

    from esrgan_video.frames.reuse import NearRule
    from esrgan_video.models import load_model
    from esrgan_video.runtime.select import make_backend

    planes = decoded(src)
    with av.open(str(src)) as c:
        xs = [torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float() / 255
              for f in c.decode(video=0)]
    h, w = xs[0].shape[-2:]
    net = load_model(model).eval()
    net_cl = load_model(model).eval().to(memory_format=torch.channels_last)
    torch.set_num_threads(threads)
    ort = make_backend(net, backend="onnxruntime", device="cpu", precision="fp32", tile_shape=(h, w), threads=threads)
    ort.open()
    dirty = dirty_blocks(planes, block, NearRule())
    times: dict[str, list[float]] = {"onnxruntime": [], "torch_channels_last": [], "incremental": []}
    psnr = math.inf
    computed = 0.0
    for _ in range(rounds):
        inc = IncrementalCompact(net_cl, h, w, block=block, grain=grain)
        t = dict.fromkeys(times, 0.0)
        sq, last = 0.0, None
        for i, x in enumerate(xs):
            t0 = time.perf_counter()
            with torch.no_grad():
                whole = net_cl(x.to(memory_format=torch.channels_last))
            t1 = time.perf_counter()
            if dirty[i].any():
                last = inc.step(x, dirty[i])
            t2 = time.perf_counter()
            ort.infer(x)
            t3 = time.perf_counter()
            t["torch_channels_last"] += t1 - t0
            t["incremental"] += t2 - t1
            t["onnxruntime"] += t3 - t2
            sq += float(((whole - last) ** 2).mean())
        for k in times:
            times[k].append(t[k])
        psnr = 10 * math.log10(len(xs) / sq) if sq else math.inf
        computed = inc.computed / (len(inc.layers) * h * w * len(xs))
    ort.close()
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"block": block, "grain": grain, "threads": threads, "frames": len(xs), "size": [w, h], "rounds": rounds,
            "seconds": {k: round(v, 2) for k, v in med.items()},
            "incremental_speedup_over_onnxruntime": round(med["onnxruntime"] / med["incremental"], 3),
            "incremental_speedup_over_torch": round(med["torch_channels_last"] / med["incremental"], 3),
            "torch_over_onnxruntime_speed": round(med["onnxruntime"] / med["torch_channels_last"], 3),
            "layer_pixels_computed": round(computed, 3), "pixel_bound": round(1 / computed, 3),
            "psnr_vs_whole_db": None if math.isinf(psnr) else round(psnr, 2)}


def main(argv: list[str] | None = None) -> int:
    from esrgan_video.samples import sample_clip

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="realesr-animevideov3")
    ap.add_argument("--size", default="256x144")
    ap.add_argument("--blocks", default="16,8")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", default=f"1,{os.cpu_count() or 1}", help="intra-op thread counts to run, e.g. 1,2")
    ap.add_argument("--out", type=Path, default=RESULTS / "incremental.json")
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    bbb = sample_clip("bigbuckbunny.mp4", progress=False)
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "load_average_start": os.getloadavg(), "cpus": os.cpu_count(), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        src = held_clip(Path(tmp) / "bbb.mkv", [(bbb, 0, 132)], size=size, repeat=1, codec="libx264", crf=18)
        for threads in sorted({int(t) for t in args.threads.split(",")}):
            for block in (int(b) for b in args.blocks.split(",")):
                for grain in ("block", "pixel"):
                    out["rows"].append(measure(src, args.model, block=block, grain=grain, rounds=args.rounds,
                                               threads=threads))
                print(json.dumps(out["rows"][-1]), flush=True)
    out["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
