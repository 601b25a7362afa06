"""``esrgan-video``: the command line, a thin shell over the library.

    esrgan-video IN OUT [options]      upscale a video (or a still image)
    esrgan-video preview IN --at T -o preview.png [--model M ...]   compare models on one frame
    esrgan-video models                list known models and whether each is cached
    esrgan-video engine build|list|clear|presets
    esrgan-video batch INPUT... -o OUTDIR
    esrgan-video demo                  upscale 1 s of a real sample clip
    esrgan-video train --data SRC... --out RUN [--base M --recipe R --stage S ...]   fine-tune a model
    esrgan-video blend A B --alpha 0.7 -o out.safetensors   network interpolation of two models

Exit codes: listed once in :mod:`esrgan_video.cli.exit_codes` (and printed by ``-h``). SIGTERM and SIGHUP are
handled like Ctrl-C (``cli.signals``): nothing is left behind, and the status is 143 / 129 (130 for Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Callable

from .. import __version__
from .arguments import add_upscale_options, command_parser, ending, progress_mode, report_error, upscale_options
from .exit_codes import BATCH_FAILED, DAMAGED
from .exit_codes import OK as EXIT_OK, USAGE as EXIT_USAGE
from .signals import exit_status, final, program as program_signals, quiet_shutdown, signal_name, stop_signals
from ..errors import EsrganVideoError, OptionError

SUBCOMMANDS = ("preview", "models", "engine", "batch", "demo", "train", "blend")
"""Each is ``cli/<name>.py``'s ``main(argv)``, except ``models`` (here)."""


def _upscale_parser() -> argparse.ArgumentParser:
    p = command_parser(
        None,
        "Upscale a video (or image) with an ESRGAN / Real-ESRGAN model (RRDB or compact), keeping every frame, "
        "timestamp, stream and colour tag. Other commands: preview, models, engine, batch, demo, train, blend (see 'esrgan-video COMMAND -h').",
        skip=(BATCH_FAILED,),
        note="On 129, 130 and 143 no output is left behind (--keep-partial keeps the temporary file).",
    )
    p.add_argument("input", help="input video or image")
    p.add_argument("output", help="output file; its extension picks the container (or --format); - writes to "
                   "standard output (with --format matroska, nut or yuv4mpegpipe)")
    add_upscale_options(p)
    o = p.add_argument_group("output handling")
    o.add_argument("-y", "--overwrite", action="store_true", help="replace an existing output")
    o.add_argument("--keep-partial", action="store_true",
                   help="keep the temporary file after an error or Ctrl-C (a later run on the same output removes it)")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no notices")
    o.add_argument("--progress", choices=["bar", "json", "none"], default=None,
                   help="bar (default on a terminal), json (one object a line on stderr), none")
    p.add_argument("--version", action="version", version=f"esrgan-video {__version__}")
    return p


class _ProgressReporter:
    """A tqdm bar on a terminal, JSON lines for GUIs and batch drivers, or nothing."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.bar = None
        self.frame = 0
        """The last frame reported."""

    def __call__(self, p) -> None:
        self.frame = p.frame
        if self.mode == "json":
            print(json.dumps({"frame": p.frame, "total": p.total, "fps": round(p.fps, 3),
                              "eta": None if p.eta is None else round(p.eta, 1), "frames_reused": p.frames_reused,
                              "tiles_reused": p.tiles_reused}), file=sys.stderr, flush=True)
        elif self.mode == "bar":
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=p.total, unit="frame", dynamic_ncols=True, file=sys.stderr)
            self.bar.update(p.frame - self.bar.n)

    def finish(self, result) -> None:
        """In json mode, one last object: what was written and what the input lost (``RunResult``)."""
        if self.mode == "json":
            print(json.dumps({"done": True, "output": str(result.output), "frames": result.frames,
                              "lost_frames": result.lost_frames, "truncated": result.truncated,
                              "damaged": result.damaged, "damage": result.damage, "reuse": result.reuse.as_dict()}),
                  file=sys.stderr, flush=True)

    def fail(self, e: BaseException, output: str) -> None:
        """In json mode, the last object of a run that ended in an error or an interrupt instead of :meth:`finish`'s
        (``{"done": false, "output", "frames" (the last reported), "error", "exit_code"}``: the line the command
        ends with, without its ``esrgan-video: error:``, and the process's exit status), so a reader of the stream
        tells a failed run from a hung one."""
        if self.mode == "json":
            text, code = ending(e)
            print(json.dumps({"done": False, "output": output, "frames": self.frame, "error": text,
                              "exit_code": code}), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_upscale(argv: list[str]) -> int:
    parser = _upscale_parser()
    args = parser.parse_args(argv)
    try:
        options = upscale_options(args)
    except OptionError as e:
        parser.error(str(e))  # a bad option value is a command-line error: exit 2
    reporter = _ProgressReporter(progress_mode(args))
    from ..video.chatter import show_ffmpeg_log

    show_ffmpeg_log(options.encode.verbose)  # FFmpeg's own log lines only with --verbose

    def notice(msg: str) -> None:
        if not args.quiet:
            print(f"esrgan-video: {msg}", file=sys.stderr)

    try:
        from ..stills import probe_still_job, upscale_image

        still, meta = probe_still_job(args.input, args.output)  # the image's header, read once for both
        if still:
            lost: list[str] = []
            out = upscale_image(args.input, args.output, options, overwrite=args.overwrite, notice=notice, meta=meta,
                                on_damage=lost.append)
            final(DAMAGED if lost else EXIT_OK)  # the image is in place: a signal from now leaves this status
            for line in lost:  # a PNG or JPEG cut short: a notice, and exit 9 as for a damaged video
                notice(line)
            if not args.quiet:
                print(f"esrgan-video: wrote {out}", file=sys.stderr)
            return DAMAGED if lost else EXIT_OK
        from ..pipeline import upscale_video

        try:
            result = upscale_video(
                args.input, args.output, options, overwrite=args.overwrite, keep_partial=args.keep_partial,
                progress=reporter, notice=notice,
            )
        except BaseException as e:  # the error's own line follows (report_error), or the interrupt's
            reporter.fail(e, args.output)
            raise
        final(DAMAGED if result.damaged else EXIT_OK)  # the output is in place: a signal from now leaves this status
    finally:
        reporter.close()
    reporter.finish(result)
    if not args.quiet:
        w, h = result.size
        sar = f" SAR {result.sar.numerator}:{result.sar.denominator}" if result.sar != 1 else ""
        print(
            f"esrgan-video: wrote {result.output} ({result.frames} frames, {w}x{h}{sar}, {result.encoder}; "
            f"{result.fps:.2f} fps, backend {result.backend}"
            + (f": {result.backend_reason}" if result.backend_reason else "") + f"; {result.reuse.summary()})",
            file=sys.stderr,
        )
    # The output is kept; the status tells scripts the input was damaged (the notice said what was lost).
    return DAMAGED if result.damaged else EXIT_OK


def _run_models(argv: list[str]) -> int:
    p = command_parser("models", "List known models and whether each is cached.")
    p.parse_args(argv)
    from ..models.registry import list_models

    for entry in list_models():
        print(entry.describe())
    return EXIT_OK


def _run_subcommand(name: str, argv: list[str]) -> int:
    """``esrgan-video NAME ...``: the ``main(argv)`` of ``esrgan_video.cli.NAME`` (imported only when used)."""
    return importlib.import_module(f".{name}", __package__).main(argv)


def main(argv: list[str] | None = None) -> int:
    """The exit status of ``esrgan-video ARGV``. Called without ``argv`` (the program itself: the console script,
    ``python -m esrgan_video``), a signal that arrives once the status is known (the output committed or removed,
    while Python shuts down) leaves that status and prints nothing (:func:`~.signals.quiet_shutdown`; a command
    whose result is committed before it returns says so with :func:`~.signals.final`)."""
    if argv is None:
        return run_program(lambda: _main(sys.argv[1:]))
    return _status(lambda: _main(list(argv)), False)


def run_program(command: Callable[[], int]) -> int:
    """The exit status of ``command()`` run as this process's own command: what :func:`main` does for the console
    script and ``python -m esrgan_video``, and every other ``__main__`` of the CLI (``python -m
    esrgan_video.cli.batch``) does too, so each entry point handles errors, interrupts and a signal during
    shutdown alike (:func:`~.signals.program`, :func:`~.signals.quiet_shutdown`)."""
    program_signals()
    status = _status(command, True)
    quiet_shutdown(status)  # an error or interrupt path's status is final too
    return status


def _status(command: Callable[[], int], program: bool) -> int:
    try:
        with stop_signals():
            status = command()
            if program:  # inside the block: stop_signals then keeps these handlers (no SIGTERM default between)
                quiet_shutdown(status)
            return status
    except EsrganVideoError as e:  # an OptionError here was found during the run: named by its flag
        return report_error(e)
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP
        print(f"esrgan-video: interrupted ({signal_name(e)}); no output was written", file=sys.stderr)
        return exit_status(e)
    except SystemExit as e:  # argparse
        return e.code if isinstance(e.code, int) else EXIT_USAGE


def _main(argv: list[str]) -> int:
    # a file named like a command is an input; a folder is not (a models/ or train/ folder where the command runs
    # must not turn `esrgan-video models` into an upscale of that folder)
    if argv and argv[0] in SUBCOMMANDS and (not os.path.exists(argv[0]) or os.path.isdir(argv[0])):
        if argv[0] == "models":
            return _run_models(argv[1:])
        return _run_subcommand(argv[0], argv[1:])
    return _run_upscale(argv)


if __name__ == "__main__":
    sys.exit(main())
