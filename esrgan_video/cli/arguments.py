"""The single-file options on the command line, shared by ``esrgan-video IN OUT``, ``batch`` and ``preview``.

``add_upscale_options(parser)`` declares the flags; ``upscale_options(args)`` turns the parsed arguments
into :class:`esrgan_video.options.UpscaleOptions`, where every value is validated (an
:class:`~esrgan_video.errors.OptionError` names the flag, what was expected and what was given). Help texts
say what the flag means on the command line; what each option does is documented once, on its field in
:mod:`esrgan_video.options`.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import EsrganVideoError, OptionError, printable
from .exit_codes import BATCH_FAILED, DAMAGED, exit_codes_text
from ..options import (BACKENDS, CONTAINER_CODECS, DEFAULT_CODEC, DEFAULT_CQ, DEFAULT_CRF, DEFAULT_MODEL, FIELD_GROUP,
                       FIT_MODES, PRECISIONS, REUSE_MODES, RuntimeOptions, UpscaleOptions)

CODECS_HELP = ("libx264, libx265, libsvtav1, libvpx-vp9, ffv1, prores_ks, h264_nvenc, hevc_nvenc, apng, libwebp_anim, ... "
               f"(default: by the container: {DEFAULT_CODEC}; "
               + ", ".join(f"{muxer} {codec}" for muxer, codec in CONTAINER_CODECS.items()) + ")")
CRF_HELP = ("constant rate factor, lower is better (default: "
            + ", ".join(f"{codec} {crf}" for codec, crf in DEFAULT_CRF.items())
            + "; for NVENC it is cq: " + ", ".join(f"{codec} {cq}" for codec, cq in DEFAULT_CQ.items())
            + "; unless --encoder-opt sets a rate control); fractions such as 17.5 for libx264/libx265 and NVENC")

FLAG_NAMES = {
    "tile_pad": "--tile-pad", "pix_fmt": "--pix-fmt", "encoder_opts": "--encoder-opt", "encoder_opt": "--encoder-opt",
    "square_pixels": "--square-pixels", "time": "--start/--end", "streams_keep": "--streams-keep",
    "audio": "--no-audio", "subtitles": "--no-subs",
}
"""Option field → the flag that sets it, where the two are spelled differently (errors name the flag)."""


class CommandParser(argparse.ArgumentParser):
    """argparse with a one-line error: ``esrgan-video: error: MESSAGE (esrgan-video -h lists the options)``, exit 2 —
    not the whole usage block before it (``-h`` prints that)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} -h lists the options)\n")


def command_parser(command: str | None, description: str, *, skip: tuple[int, ...] = (BATCH_FAILED, DAMAGED),
                   note: str = "", **kwargs) -> argparse.ArgumentParser:
    """The parser of ``esrgan-video COMMAND`` (``None``: the upscale command itself): its prog, its description and
    an epilog listing the exit statuses it can end with (all but ``skip``), then ``note``; its errors are one line."""
    prog = "esrgan-video" if command is None else f"esrgan-video {command}"
    epilog = exit_codes_text(skip=skip) + (f" {note}" if note else "")
    description = description.replace("``", "")  # a module docstring's first line: no reST literals in -h
    return CommandParser(prog=prog, description=description, epilog=epilog, **kwargs)


def flag_name(option: str) -> str:
    return FLAG_NAMES.get(option, option if option.startswith("-") else "--" + option.replace("_", "-"))


def report_error(e: EsrganVideoError) -> int:
    """Print the one line for an error that ends a command (:func:`error_line`); returns its exit status."""
    text, code = error_line(e)
    print(f"esrgan-video: error: {text}", file=sys.stderr)
    return code


def error_line(e: EsrganVideoError) -> tuple[str, int]:
    """(the one line a command ends with for ``e``, its exit status): an :class:`OptionError` named by its flag (e.g.
    one found once the run started: a trim that selects nothing, a crf the encoder lacks), an existing output named
    with --overwrite / -y (not the Python API's overwrite=True); control characters escaped (a newline in a file
    name stays in the line). What :func:`report_error` prints and ``--progress json``'s last object says."""
    from ..files import OutputExists

    if isinstance(e, OptionError):
        e = e.relabel({e.option: flag_name(e.option)})
    elif isinstance(e, OutputExists):
        e = e.on_command_line()
    return printable(str(e)), e.exit_code


def ending(e: BaseException) -> tuple[str, int]:
    """(what ends a command on ``e``, its exit status): :func:`error_line` of an error of ours; an interrupt's
    (Ctrl-C, SIGTERM, SIGHUP: 130, 143, 129); else ``TypeName: message`` and 1 (a bug, which prints its traceback).
    For ``--progress json``'s last object, so a reader of the stream tells an end from a hang."""
    from ..errors import brief
    from .exit_codes import ERROR
    from .signals import exit_status, signal_name

    if isinstance(e, EsrganVideoError):
        return error_line(e)
    if isinstance(e, KeyboardInterrupt):
        return f"interrupted ({signal_name(e)})", exit_status(e)
    return printable(brief(e)), ERROR


def progress_mode(args: argparse.Namespace) -> str:
    """``--progress`` as given, else none with ``--quiet``, else a bar on a terminal and none elsewhere."""
    return args.progress or ("none" if args.quiet else ("bar" if sys.stderr.isatty() else "none"))


def add_upscale_options(p: argparse.ArgumentParser, *, model: bool = True, trim: bool = True,
                        file: bool = True) -> None:
    """Declare the flags; ``model=False`` leaves out --model/--blend (a face that declares its own, like
    ``preview``'s repeatable --model), ``trim=False`` leaves out --start/--end, ``file=False`` the flags that only
    shape a written video file and not its frames (rate control, container, copied streams: a face that
    writes no video, like ``preview``, refuses them as unknown arguments instead of ignoring them)."""
    m = p.add_argument_group("model")
    if model:
        m.add_argument("--model", default=DEFAULT_MODEL, help="registry name or checkpoint path (default: %(default)s)")
        m.add_argument("--blend", metavar="MODEL:ALPHA",
                       help="network interpolation with a second model, e.g. RealESRNet_x4plus:0.3")
    m.add_argument("--denoise", type=float, metavar="S",
                   help="denoise strength 0..1 for models with a denoising partner (realesr-general-x4v3): S·model + "
                        "(1 − S)·partner, as Real-ESRGAN's --denoise_strength (default: the model as it is, i.e. 1)")
    m.add_argument("--offline", action="store_true", help="never download; use cached models only")
    s = p.add_argument_group("size and tiles")
    s.add_argument("--scale", type=float, help="output scale (default: the model's); resized on the device after the model")
    s.add_argument("--size", metavar="WxH",
                   help="output size instead of a scale: Wx or xH derives the other side from the display aspect; "
                        "WxH keeps the display aspect by setting the sample aspect ratio (say so), or see --fit")
    s.add_argument("--fit", choices=FIT_MODES,
                   help="with --size WxH: square-pixel frames of exactly that size; pad (black bars), crop (fill, "
                        "cut the overflow) or stretch (change the shape)")
    s.add_argument("--square-pixels", action="store_true", default=None,
                   help="resample anamorphic (non-square-pixel) sources to square pixels, e.g. DVDs; also done, "
                        "with a notice, where the output cannot store a sample aspect ratio (FFV1, ProRes, UT Video, "
                        "HuffYUV, VP8, VP9, AV1 or rawvideo in any container but .mov/.mp4)")
    s.add_argument("--tile", type=int, help="core tile in input pixels, 0 = whole frame (default: by frame size and device)")
    s.add_argument("--tile-pad", type=int, help="tile overlap on each side in input pixels (default: the model's: 48 "
                   "for ESRGAN/RRDB; for a compact model its receptive radius, which makes tiles exact: 18 for "
                   "realesr-animevideov3)")
    r = p.add_argument_group("runtime")
    r.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="auto (the default): TensorRT > torch CUDA > ONNX Runtime (CPU) > torch CPU, by what is "
                        "installed and present")
    r.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda:0 if present, else cpu)")
    r.add_argument("--streams", type=int, default=2, help="CUDA streams / frames in flight (default: %(default)s)")
    r.add_argument("--precision", choices=PRECISIONS, help="default: fp16 on a GPU, fp32 on the CPU")
    r.add_argument("--reuse", choices=REUSE_MODES,
                   help="reuse the output of unchanged tiles and frames: exact (bit-identical to off; pays on lossless "
                        "sources, held frames, static regions), near (also reuses near-identical ones, e.g. the "
                        "repeats of an H.264/HEVC anime episode on twos: changes pixels slightly), off "
                        f"(default: {RuntimeOptions().reuse})")
    e = p.add_argument_group("encoding")
    e.add_argument("--codec", help=CODECS_HELP)
    e.add_argument("--pix-fmt", help="output pixel format (default: the input's family, bit depth, chroma subsampling "
                   "and alpha where the encoder takes them, else the nearest; 8-bit RGB into ffv1 is bgr0, bgra with alpha)")
    e.add_argument("--verbose", action="store_true", default=None,
                   help="show FFmpeg's and the encoder's own log lines (x265 [info], Svt[info], decoder messages)")
    if file:
        _add_file_options(p, e)
    if trim:
        _add_trim(p)


def _add_file_options(p: argparse.ArgumentParser, e: argparse._ArgumentGroup) -> None:
    """The flags that shape only the written file (``e``: the encoding group)."""
    e.add_argument("--crf", type=float, help=CRF_HELP)
    e.add_argument("--preset", help="encoder preset by name (e.g. veryfast, slow; NVENC p1-p7)")
    e.add_argument("--encoder-opt", action="append", default=[], metavar="KEY=VALUE", help="extra encoder option (repeatable)")
    e.add_argument("--format", help="container format (FFmpeg muxer name) instead of the output's extension; with "
                   "output - (standard output, e.g. | ffmpeg -i - ...): matroska, nut or yuv4mpegpipe (raw video only)")
    c = p.add_argument_group("streams copied from the input")
    c.add_argument("--no-audio", dest="audio", action="store_false", default=None, help="leave the audio streams out")
    c.add_argument("--no-subs", dest="subtitles", action="store_false", default=None,
                   help="leave the subtitle streams out (text subtitles otherwise become mov_text in .mp4/.mov)")
    c.add_argument("--streams-keep", metavar="LIST",
                   help="copy only these input streams, by index as ffprobe numbers them (e.g. 1,3); "
                        "the upscaled video is always written")


def _add_trim(p: argparse.ArgumentParser) -> None:
    t = p.add_argument_group("trimming")
    t.add_argument("--start", help="first kept time: seconds, [HH:]MM:SS(.ms), or a frame number like 120f")
    t.add_argument("--end", help="end (exclusive), same forms as --start")


def upscale_options(args: argparse.Namespace) -> UpscaleOptions:
    """The options a parsed command line asks for; OptionError (exit 2) naming the flag for a bad value.

    Every parsed argument whose ``dest`` is an option field (``--tile-pad`` → ``tile_pad``) is taken; None means
    "not given" (the field's default applies). ``--encoder-opt`` (repeatable) fills ``encoder_opts``."""
    flat = {name: value for name, value in vars(args).items() if name in FIELD_GROUP and value is not None}
    if getattr(args, "encoder_opt", None):
        flat["encoder_opts"] = tuple(args.encoder_opt)
    try:
        return UpscaleOptions.from_kwargs(**flat)
    except OptionError as e:
        raise e.relabel({e.option: flag_name(e.option)}) from None
