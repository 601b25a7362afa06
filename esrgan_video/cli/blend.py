"""``esrgan-video blend A B``: network interpolation of two models (ESRGAN §3.4), a thin shell over
``esrgan_video.train.blend``.

    esrgan-video blend runs/psnr/final.safetensors runs/gan/final.safetensors --alpha 0.7 -o blended.safetensors
    esrgan-video blend A B --alphas 0,0.25,0.5,0.75,1 --preview FRAME.png -o strip.png
"""

from __future__ import annotations

import argparse
import math
import sys

from ..errors import OptionError
from .arguments import command_parser


def _in_range(value: float) -> float:
    """An alpha outside 0..1 is a bad command line (exit 2), caught here before any model is read."""
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value:g}")
    return value


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--alpha wants a number between 0 and 1, got {text!r}") from e
    return _in_range(value)


def _alphas(text: str) -> list[float]:
    try:
        alphas = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--alphas wants numbers separated by commas, got {text!r}") from e
    if not alphas:  # a bad command line (exit 2), not a bad input file
        raise argparse.ArgumentTypeError(f"--alphas wants at least one number (e.g. 0,0.5,1), got {text!r}")
    return [_in_range(a) for a in alphas]


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        "blend",
        "Blend two models of the same shape: (1 - alpha)*A + alpha*B. With --alpha, write the blended "
        "model; with --alphas and --preview FRAME, write one strip image of FRAME upscaled at each alpha.")
    p.add_argument("a", metavar="A", help="model A (registry name or checkpoint), e.g. the psnr-stage result")
    p.add_argument("b", metavar="B", help="model B, e.g. the gan-stage result")
    p.add_argument("--alpha", type=_alpha, help="weight of B in the blended model (0..1)")
    p.add_argument("--alphas", type=_alphas, help="several alphas for --preview, e.g. 0,0.25,0.5,0.75,1")
    p.add_argument("--preview", metavar="FRAME", help="an image to upscale at each of --alphas")
    p.add_argument("-o", "--output", required=True, help="the blended .safetensors (or the .png strip)")
    p.add_argument("--device", help="cpu, cuda or cuda:N for --preview (default: auto)")
    p.add_argument("-y", "--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line, no notices")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from ..train.blend import blend_models, blend_strip

    def notice(msg: str) -> None:  # how the models were read (e.g. a scale from a file name), as every face says
        if not args.quiet:
            print(f"esrgan-video blend: {msg}", file=sys.stderr)

    if args.preview:
        if args.alphas is None and args.alpha is None:
            raise OptionError("--alphas", "the alphas to show with --preview (e.g. 0,0.5,1)", None)
        alphas = args.alphas if args.alphas is not None else [args.alpha]
        out = blend_strip(args.a, args.b, alphas, args.preview, args.output, device=args.device,
                          overwrite=args.overwrite, notice=notice)
    else:
        if args.alpha is None or args.alphas is not None:
            raise OptionError("--alpha", "one alpha to write a blended model (--alphas goes with --preview)",
                              args.alphas)
        out = blend_models(args.a, args.b, args.alpha, args.output, overwrite=args.overwrite, notice=notice)
    if not args.quiet:
        print(f"esrgan-video blend: wrote {out}", file=sys.stderr)
    return 0
