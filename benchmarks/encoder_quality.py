"""What the quality defaults cost and buy: ``python -m benchmarks.encoder_quality [--frames N] [--rounds R]``.

For libx264, libx265, libsvtav1 and libvpx-vp9, each at its default preset, two settings: the project's default
CRF (``esrgan_video.video.encoder_settings.DEFAULT_CRF``: 16 / 18 / 22 / 24) and the encoder's own default (what
FFmpeg uses without a crf: 23 / 28 / 35 / 32). Each is encoded from the same frames — ``--frames`` frames of a real
clip (Big Buck Bunny, 1280x720, yuv420p, after its dark title), which is also what a lossless encode (FFV1) of it decodes to — and
reports:

* PSNR of the decoded result against the lossless encode (Y plane, and all three planes weighted by samples);
* the file size (Matroska, in memory) and bits per pixel;
* encode fps, as the median of ``--rounds`` rounds interleaved across the six settings (the machine is shared:
  compare settings measured side by side in one run, and read ``uptime``'s load in the output).

The encoder options are exactly what the writer passes (``encoder_settings(...).codec_options()``). Results go to
``benchmarks/results/encoder-quality.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import av
import numpy as np

from benchmarks import common
from benchmarks.common import interleaved, planes_psnr, psnr
from esrgan_video.testing import decoded_planes
from esrgan_video.video.encoder_settings import DEFAULT_CRF, ENCODER_DEFAULT_CRF, encoder_settings

RESULTS = Path(__file__).resolve().parent / "results"
CODECS = ("libx264", "libx265", "libsvtav1", "libvpx-vp9")


def source_frames(count: int, skip: int = 0) -> list[av.VideoFrame]:
    """``count`` frames of the real sample clip after the first ``skip`` as yuv420p frames (pts 0, 1, ...)."""
    from esrgan_video.samples import sample_clip

    path = sample_clip("bigbuckbunny.mp4", progress=False)
    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i < skip:
                continue
            g = f.reformat(format="yuv420p")
            g.pts = len(out)
            out.append(g)
            if len(out) == count:
                break
    return out


def encode(frames: list[av.VideoFrame], codec: str, options: dict[str, str], rate: int = 24) -> bytes:
    """``frames`` encoded with ``codec`` and ``options`` into an in-memory Matroska file."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as c:
        s = c.add_stream(codec, rate=rate, options=options)
        s.width, s.height = frames[0].width, frames[0].height
        s.pix_fmt = "yuv420p"
        for f in frames:
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return buf.getvalue()


def decode(data: bytes) -> list[list[np.ndarray]]:
    with av.open(io.BytesIO(data)) as c:
        return [decoded_planes(f.reformat(format="yuv420p")) for f in c.decode(video=0)]


def fidelity(ref: list[list[np.ndarray]], got: list[list[np.ndarray]]) -> dict[str, float]:
    """Mean PSNR over frames: Y only, and all planes together (each sample counted once)."""
    if len(ref) != len(got):
        raise RuntimeError(f"decoded {len(got)} frames, expected {len(ref)}")
    y = [psnr(r[0], g[0]) for r, g in zip(ref, got)]
    yuv = [planes_psnr([r], [g]) for r, g in zip(ref, got)]
    return {"psnr_y_db": float(np.mean(y)), "psnr_yuv_db": float(np.mean(yuv))}


def settings_table() -> dict[str, tuple[str, dict[str, str], int]]:
    """name → (codec, encoder options, crf) for the six settings."""
    table = {}
    for codec in CODECS:
        ours = encoder_settings(codec)
        assert ours.crf == DEFAULT_CRF[codec] and ours.crf_is_default
        table[f"{codec} crf {ours.crf} (ours)"] = (codec, ours.codec_options(), ours.crf)
        theirs = encoder_settings(codec, options={"crf": str(ENCODER_DEFAULT_CRF[codec])})
        table[f"{codec} crf {ENCODER_DEFAULT_CRF[codec]} (encoder default)"] = (
            codec, theirs.codec_options(), ENCODER_DEFAULT_CRF[codec])
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.encoder_quality", description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=48, help="frames of the real clip (default: %(default)s)")
    ap.add_argument("--skip", type=int, default=48,
                    help="frames skipped first (the clip opens with a dark, nearly static title; default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    frames = source_frames(args.frames, args.skip)
    lossless = encode(frames, "ffv1", {})
    ref = decode(lossless)
    assert all(np.array_equal(a, b) for r, f in zip(ref, frames) for a, b in zip(r, decoded_planes(f))), "FFV1 is not lossless"
    table = settings_table()
    runners = {name: (lambda c=codec, o=opts: encode(frames, c, o)) for name, (codec, opts, _) in table.items()}
    stats, first = interleaved(runners, repeats=args.rounds, warmup=0)
    w, h = frames[0].width, frames[0].height
    rows = []
    for name, (codec, opts, crf) in table.items():
        data = first[name]
        rows.append({
            "setting": name, "codec": codec, "crf": crf, "options": opts,
            **fidelity(ref, decode(data)),
            "bytes": len(data), "bits_per_pixel": 8 * len(data) / (w * h * len(frames)),
            "encode_fps_median": len(frames) / stats[name].median, "encode_s": list(stats[name].values),
        })
    result = {
        "meta": {**common.run_header(sys.argv, "encoder-quality"), "frames": len(frames), "skip": args.skip, "size": [w, h],
                 "lossless_bytes": len(lossless), "load_before": load_before, "load_after": os.getloadavg()},
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "encoder-quality.json").write_text(json.dumps(common.jsonable(result), indent=1) + "\n")
    print(f"{len(frames)} frames of bigbuckbunny (from frame {args.skip}) {w}x{h} yuv420p; lossless (FFV1) {len(lossless) / 1e6:.2f} MB; "
          f"load {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after, on {common.usable_cores()} cores")
    print("| setting | PSNR Y dB | PSNR YUV dB | size kB | bits/px | encode fps |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['psnr_y_db']:.2f} | {r['psnr_yuv_db']:.2f} | {r['bytes'] / 1e3:.1f} | "
              f"{r['bits_per_pixel']:.3f} | {r['encode_fps_median']:.1f} |")
    return 0


if __name__ == "__main__":
    t = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    sys.exit(code)
