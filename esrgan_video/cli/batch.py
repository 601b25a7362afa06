"""``esrgan-video batch INPUT... -o OUTDIR``: the batch face, a thin shell over ``esrgan_video.batch.run_batch``.

Exit codes (``cli.exit_codes``): 0 every file done or already done; 8 the batch ran to the end but at least one
file failed or was damaged (see the summary); 129/130/143 stopped by SIGHUP / Ctrl-C / SIGTERM (rerun the same
command to resume); 2 bad command line; 3/4/6 problems found before anything started (inputs, model, output
folder) — the codes of ``esrgan_video.errors``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time

from .arguments import add_upscale_options, command_parser, ending, progress_mode, report_error, upscale_options
from .exit_codes import DAMAGED
from .signals import exit_status, signal_name, stop_signals
from ..errors import EsrganVideoError, OptionError

DESCRIPTION = (
    "Upscale many videos into OUTDIR, resumably. INPUT is a file, a directory (walked recursively for video "
    "files; its tree is mirrored under OUTDIR), a glob, or a list of inputs (@list.txt or any .txt file: one "
    "per line, # comments). A journal in OUTDIR records every file's state, so rerunning the same command "
    "skips finished files and redoes interrupted ones."
)
NOTE = "8 also counts damaged inputs; after 129, 130 or 143 rerun the same command to resume. See docs/batch.md."


def _configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, directories, globs or @list.txt")
    p.add_argument("-o", "--output-dir", required=True, metavar="OUTDIR", help="where outputs and the journal go")
    n = p.add_argument_group("naming")
    n.add_argument("--suffix", default="", help="appended to each output's stem, e.g. _x4 (default: none)")
    n.add_argument("--ext", default="mkv",
                   help="output container extension, or 'keep' for the source's (default: %(default)s, which holds "
                        "every stream type); a still image keeps its own unless this is an image's (png, jpg, ...)")
    n.add_argument("--extensions", metavar="EXT,EXT",
                   help="video extensions picked up in directories (default: common video extensions)")
    b = p.add_argument_group("batch")
    b.add_argument("--devices", metavar="LIST",
                   help="one worker process per entry: GPU numbers (0,1,2,3), cuda:N or cpu "
                        "(default: every visible GPU, else one CPU worker)")
    b.add_argument("--threads", type=int, help="CPU threads per worker (default: cores / workers); fix it for "
                                               "bit-identical reruns on the CPU")
    b.add_argument("--ray", metavar="ADDRESS",
                   help="run the jobs on this Ray cluster, one long-lived actor per GPU (else per CPU) that keeps its "
                        "model loaded ('auto', 'ray://host:10001', or 'local' for a local instance); paths must be "
                        "on storage every node sees")
    b.add_argument("--ray-cpus", type=int, help="CPUs of a --ray local instance (default: all)")
    b.add_argument("--segment-seconds", type=float, default=300.0,
                   help="split videos at least twice this long into segments of whole GOPs about this long, "
                        "rendered separately and joined without re-encoding; 0 = never (default: %(default)s). With "
                        "--reuse near, cuts fall only on near's reset points, at least 10 s apart whatever this asks, so "
                        "the output equals a single pass")
    b.add_argument("--retry-failed", action="store_true", help="retry files that failed in an earlier run")
    b.add_argument("--force", action="store_true",
                   help="redo finished files that were made with other options or another model")
    b.add_argument("-y", "--overwrite", action="store_true",
                   help="replace outputs that exist but were not made by this batch")
    b.add_argument("--max-attempts", type=int, default=2,
                   help="tries per file when its worker dies (default: %(default)s)")
    b.add_argument("--stale-after", type=float, default=300.0,
                   help="seconds without a worker heartbeat before it is killed and its file redone (default: %(default)s)")
    b.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    b.add_argument("--progress", choices=["bar", "json", "none"], default=None,
                   help="while files run: the running files' frames, fps and ETA and the batch's total, as a status "
                        "line (bar; default on a terminal), one JSON object a line on stderr (json), or none")
    add_upscale_options(p)
    return p


class BatchReporter:
    """Shows batch progress (:class:`~esrgan_video.batch.progress.BatchSnapshot`) and the driver's log lines.

    ``bar``: one status line on stderr, redrawn in place at most every ``interval`` seconds (log lines are
    printed above it); ``json``: one object a line (``{"files": [...], "batch": {...}}``); ``none``: nothing."""

    def __init__(self, mode: str, *, quiet: bool = False, stream=None, interval: float = 0.2) -> None:
        self.mode, self.quiet, self.interval = mode, quiet, interval
        self.stream = stream or sys.stderr
        self._shown = 0
        self._last = 0.0
        self._line = ""

    def log(self, msg: str) -> None:
        from ..errors import printable

        if self.quiet:
            return
        self._clear()
        print(f"esrgan-video batch: {printable(msg)}", file=self.stream, flush=True)
        if self._line:
            self._draw(self._line)

    def __call__(self, snap) -> None:
        from ..errors import printable

        if self.mode == "json":
            print(json.dumps(snap.as_json()), file=self.stream, flush=True)
            return
        if self.mode != "bar":
            return
        now = time.monotonic()
        if now - self._last < self.interval and snap.files:
            return
        self._last = now
        self._line = printable(" | ".join([snap.line(), *(f.line() for f in snap.files)]))
        self._draw(self._line)

    def _draw(self, line: str) -> None:
        width = shutil.get_terminal_size((120, 20)).columns - 1
        line = line[:width]
        self.stream.write("\r" + line + " " * max(0, self._shown - len(line)))
        self.stream.flush()
        self._shown = len(line)

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0

    def close(self) -> None:
        self._clear()
        self._line = ""

    def finish(self, summary) -> None:
        """In json mode, one last object: every file's status, frames and reuse, and the batch's totals
        (:meth:`~esrgan_video.batch.driver.BatchSummary.as_json`), as the single-file face's last object."""
        if self.mode == "json":
            print(json.dumps(summary.as_json()), file=self.stream, flush=True)

    def fail(self, e: BaseException) -> None:
        """In json mode, the last object of a batch that stopped on an error before its summary (a model that
        cannot be read, options its encoder refuses, no inputs): ``{"done": false, "error", "exit_code"}``, as the
        single-file face's."""
        if self.mode == "json":
            text, code = ending(e)
            print(json.dumps({"done": False, "error": text, "exit_code": code}), file=self.stream, flush=True)


def build_parser() -> argparse.ArgumentParser:
    return _configure(command_parser("batch", DESCRIPTION, skip=(DAMAGED,), note=NOTE))


def run_args(args: argparse.Namespace) -> int:
    """Run a parsed batch command line; returns the exit code (errors found before starting propagate)."""
    options = upscale_options(args)
    mode = progress_mode(args)
    return _run(args, options, mode)


BATCH_FLAGS = {"stale_s": "--stale-after", "ray_num_cpus": "--ray-cpus"}
"""run_batch's own options whose flags are not their names: an error about one is named by its flag, in the error
line and ``--progress json``'s last object alike."""


def _run(args: argparse.Namespace, options, mode: str) -> int:
    from ..batch import BatchInterrupted, run_batch

    reporter = BatchReporter(mode, quiet=args.quiet)
    try:
        summary = run_batch(
            args.inputs, args.output_dir, options,
            suffix=args.suffix, ext=None if args.ext == "keep" else args.ext,
            extensions=[e.strip() for e in args.extensions.split(",") if e.strip()] if args.extensions else None,
            devices=args.devices, ray=args.ray, ray_num_cpus=args.ray_cpus,
            segment_seconds=args.segment_seconds, threads=args.threads,
            retry_failed=args.retry_failed, force=args.force, overwrite=args.overwrite,
            max_attempts=args.max_attempts, stale_s=args.stale_after, log=reporter.log,
            progress=reporter if mode != "none" else None,
        )
    except BatchInterrupted as e:
        reporter.close()
        reporter.finish(e.summary)
        print(e.summary.table(), file=sys.stderr)
        print(f"esrgan-video batch: interrupted ({signal_name(e.__cause__)}); rerun the same command to resume",
              file=sys.stderr)
        return exit_status(e.__cause__)
    except BaseException as e:  # the error's own line follows (report_error)
        reporter.close()
        if isinstance(e, OptionError):  # run_batch's own options, by their flags
            e = e.relabel(BATCH_FLAGS)
        reporter.fail(e)
        if isinstance(e, OptionError):
            raise e from e.__cause__
        raise
    finally:
        reporter.close()
    reporter.finish(summary)
    print(summary.table(), file=sys.stderr)
    return summary.exit_code


def main(argv: list[str] | None = None) -> int:
    """``esrgan-video batch`` (the top-level CLI hands its arguments here)."""
    try:
        args = build_parser().parse_args(argv)
        with stop_signals():
            return run_args(args)
    except EsrganVideoError as e:  # an OptionError here was found once the run started: named by its flag
        return report_error(e)
    except SystemExit as e:  # argparse
        return e.code if isinstance(e.code, int) else 2


if __name__ == "__main__":  # python -m esrgan_video.cli.batch: as `esrgan-video batch` (errors, signals, shutdown)
    from .main import run_program

    sys.exit(run_program(lambda: main(sys.argv[1:])))
