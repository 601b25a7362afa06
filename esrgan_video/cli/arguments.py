"""The single-file options, shared by ``esrgan-video IN OUT`` and ``esrgan-video batch``.

``add_upscale_options(parser)`` declares them; ``upscale_kwargs(args)`` turns parsed arguments
into keyword arguments for :func:`esrgan_video.upscale_video`, validating where they enter.
"""

from __future__ import annotations

import argparse
import re
from fractions import Fraction

from ..errors import InputError
from ..frames.sizing import parse_size

CODECS_HELP = "libx264 (default), libx265, libsvtav1, ffv1, prores_ks, h264_nvenc, hevc_nvenc, ..."


def parse_time(text: str) -> Fraction | int:
    """``"12.5"`` / ``"1:02.5"`` / ``"01:00:02"`` → seconds (Fraction); ``"120f"`` → frame index 120."""
    t = text.strip()
    if re.fullmatch(r"\d+f", t):
        return int(t[:-1])
    parts = t.split(":")
    if len(parts) > 3 or not all(re.fullmatch(r"\d+(\.\d+)?", p) for p in parts):
        raise InputError(f"time: expected seconds (12.5), [HH:]MM:SS(.ms) or a frame number (120f), got {text!r}")
    seconds = Fraction(0)
    for p in parts:
        seconds = seconds * 60 + Fraction(p)
    return seconds


def parse_encoder_opt(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InputError(f"--encoder-opt: expected KEY=VALUE, got {text!r}")
    return key, value


def add_upscale_options(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--model", default="RealESRGAN_x4plus", help="registry name or checkpoint path (default: %(default)s)")
    m.add_argument("--blend", metavar="MODEL:ALPHA", help="network interpolation with a second model, e.g. RealESRNet_x4plus:0.3")
    m.add_argument("--offline", action="store_true", help="never download; use cached models only")
    s = p.add_argument_group("size and tiles")
    s.add_argument("--scale", type=float, help="output scale (default: the model's); resized on the device after the model")
    s.add_argument("--size", metavar="WxH", help="output size instead of a scale (Wx or xH keeps the aspect)")
    s.add_argument("--tile", type=int, help="core tile in input pixels, 0 = whole frame (default: by frame size and device)")
    s.add_argument("--tile-pad", type=int, help="tile overlap on each side in input pixels")
    r = p.add_argument_group("runtime")
    r.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "torch-tensorrt", "torch", "onnxruntime"],
                   help="auto: TensorRT > torch CUDA > ONNX Runtime (CPU) > torch CPU, by what is installed and present")
    r.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda:0 if present, else cpu)")
    r.add_argument("--streams", type=int, default=2, help="CUDA streams / frames in flight (default: %(default)s)")
    r.add_argument("--precision", choices=["fp16", "bf16", "fp32"], help="default: fp16 on a GPU, fp32 on the CPU")
    e = p.add_argument_group("encoding")
    e.add_argument("--codec", default="libx264", help=CODECS_HELP)
    e.add_argument("--crf", type=int, help="constant rate factor / quality")
    e.add_argument("--preset", help="encoder preset (e.g. veryfast, slow)")
    e.add_argument("--pix-fmt", help="output pixel format (default: the input's family and bit depth)")
    e.add_argument("--encoder-opt", action="append", default=[], metavar="KEY=VALUE", help="extra encoder option (repeatable)")
    t = p.add_argument_group("trimming")
    t.add_argument("--start", help="first kept time: seconds, [HH:]MM:SS(.ms), or a frame number like 120f")
    t.add_argument("--end", help="end (exclusive), same forms as --start")


def upscale_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments for upscale_video / Upscaler from parsed options."""
    return dict(
        model=args.model,
        blend=args.blend,
        scale=args.scale,
        size=parse_size(args.size) if args.size else None,
        tile=args.tile,
        tile_pad=args.tile_pad,
        backend=args.backend,
        device=args.device,
        streams=args.streams,
        precision=args.precision,
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        pix_fmt=args.pix_fmt,
        encoder_opts=dict(parse_encoder_opt(o) for o in args.encoder_opt),
        start=parse_time(args.start) if args.start else None,
        end=parse_time(args.end) if args.end else None,
        offline=args.offline,
    )
