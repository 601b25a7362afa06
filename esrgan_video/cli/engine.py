"""``esrgan-video engine build|list|clear|presets``: TensorRT engines ahead of time.

``build`` reads a named preset from ``engines/presets.json`` (or takes ``--model``,
``--tile-shape`` and ``--batch``), exports the model to ONNX, builds the engine with
progress and build time, and stores it in the engine cache (``engines/cache/`` in a
checkout, else the user cache; see :mod:`esrgan_video.runtime.engine_cache`). Building
needs TensorRT and a CUDA GPU; ``list``, ``clear`` and ``presets`` work without them.

A preset's engine input shape is computed with the same tile planner the upscaler uses
(``frame``, ``tile``, ``tile_pad``), so a run with the same model, ``--tile`` and batch
finds the engine in the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from esrgan_video.errors import BackendError, InputError, OptionError, OutputError
from esrgan_video.runtime import engine_cache

from .arguments import command_parser

PRESETS_ENV = "ESRGAN_VIDEO_PRESETS"
PRESET_FIELDS = {"description", "model", "frame", "tile", "tile_pad", "batch", "precision", "opt_level",
                 "workspace_mib", "fp32_layers"}


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: str
    frame: tuple[int, int]
    """(height, width) of the input video frames."""
    tile: int
    """Core tile size in input pixels (0: whole frame), as ``--tile``."""
    tile_pad: int | None
    """Overlap, as ``--tile-pad`` (None: the upscaler's default)."""
    batch: int
    precision: str = "fp16"
    opt_level: int = 3
    workspace_mib: int = 0
    fp32_layers: tuple[str, ...] = ()

    def tile_shape(self, scale: int, multiple: int, default_pad: int | None = None) -> tuple[int, int]:
        """The engine input (H, W): what the upscaler's tile planner gives for ``frame``; ``default_pad`` is the
        model descriptor's ``tile_pad`` (the upscaler's default when the preset has none; RRDB's 48 if None)."""
        from esrgan_video import tiling

        if self.tile_pad is not None:
            pad = self.tile_pad
        else:
            pad = tiling.DEFAULT_TILE_PAD if default_pad is None else default_pad
        plan = tiling.plan_tiles(*self.frame, tile=self.tile, pad=pad, scale=scale, multiple=multiple)
        return tuple(plan.tile_shape)


def presets_path() -> Path:
    env = os.environ.get(PRESETS_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    root = engine_cache.checkout_root()
    if root is not None:
        return root / "engines" / "presets.json"
    installed = Path(sys.prefix) / "share" / "esrgan-video" / "engines" / "presets.json"  # setup.py data_files
    if installed.is_file():
        return installed
    raise InputError(
        "engine presets live in engines/presets.json of a source checkout (installed copies go to "
        f"{installed}); set {PRESETS_ENV} to a presets file or pass --model, --tile-shape and --batch"
    )


def load_presets(path: Path | None = None) -> dict[str, Preset]:
    """Parse a presets file; InputError naming the file and the bad field."""
    path = presets_path() if path is None else path
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read engine presets ({e})") from e
    out = {}
    for name, d in raw.items():
        unknown = set(d) - PRESET_FIELDS
        if unknown:
            raise InputError(f"{path}: preset {name!r} has unknown fields {sorted(unknown)}; known: {sorted(PRESET_FIELDS)}")
        try:
            out[name] = Preset(
                name=name, description=str(d.get("description", "")), model=str(d["model"]),
                frame=(int(d["frame"][0]), int(d["frame"][1])), tile=int(d.get("tile", 0)),
                tile_pad=None if d.get("tile_pad") is None else int(d["tile_pad"]), batch=int(d.get("batch", 1)),
                precision=str(d.get("precision", "fp16")), opt_level=int(d.get("opt_level", 3)),
                workspace_mib=int(d.get("workspace_mib", 0)), fp32_layers=tuple(d.get("fp32_layers", ())),
            )
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise InputError(f"{path}: preset {name!r} is malformed ({type(e).__name__}: {e})") from e
    return out


def parse_shape(text: str) -> tuple[int, int]:
    """'270x480' → (270, 480) (height x width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 270x480, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"expected positive sides, got {text!r}")
    return h, w


def fill_engine_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="engine_command", required=True, metavar="{build,list,clear,presets}")
    b = sub.add_parser("build", help="build an engine (needs TensorRT and a CUDA GPU)")
    b.add_argument("--preset", help="a preset name from engines/presets.json (see 'engine presets')")
    b.add_argument("--model", help="model name or checkpoint path (overrides the preset's)")
    b.add_argument("--tile-shape", type=parse_shape, help="engine input HEIGHTxWIDTH, e.g. 270x480")
    b.add_argument("--batch", type=int, help="batch size (tiles per inference)")
    b.add_argument("--precision", choices=("fp16", "fp32"), help="engine precision (default fp16)")
    b.add_argument("--fp32-layers", help="comma-separated submodules kept in fp32 in an fp16 engine, e.g. conv_first,body")
    b.add_argument("--opt-level", type=int, choices=range(6), metavar="0-5", help="builder optimisation level (default 3)")
    b.add_argument("--workspace", type=int, metavar="MiB", help="workspace limit in MiB (default: no limit)")
    b.add_argument("--device", default="cuda", help="CUDA device (default cuda)")
    b.add_argument("--offline", action="store_true", help="do not download model weights")
    sub.add_parser("list", help="list cached engines (key fields, size, date)")
    c = sub.add_parser("clear", help="delete cached engines")
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--all", action="store_true", help="every engine, broken entries and timing caches")
    g.add_argument("--model", help="engines of this model only: a registry name, or a checkpoint's file name or path")
    sub.add_parser("presets", help="list the build presets")


def build_request(args: argparse.Namespace) -> dict:
    """Resolve preset + flags into build parameters (pure apart from reading the presets file); OptionError (exit 2,
    a command-line error) for a missing or unknown preset, a missing --tile-shape, a --batch below 1."""
    preset = None
    if args.preset:
        presets = load_presets()
        if args.preset not in presets:
            raise OptionError("--preset", f"an engine preset: {', '.join(sorted(presets))}", args.preset)
        preset = presets[args.preset]
    model = args.model or (preset.model if preset else None)
    if model is None:
        raise OptionError("--preset", "a preset name, or --model with --tile-shape", None)
    if preset is None and args.tile_shape is None:
        raise OptionError("--tile-shape", "HEIGHTxWIDTH with --model and no --preset", None)
    batch = args.batch if args.batch is not None else (preset.batch if preset else 1)
    if batch < 1:
        raise OptionError("--batch", "an integer >= 1", batch)
    layers = tuple(s for s in (args.fp32_layers or "").split(",") if s) or (preset.fp32_layers if preset else ())
    return {
        "model": model,
        "tile_shape": args.tile_shape,
        "preset": preset,
        "batch": batch,
        "precision": args.precision or (preset.precision if preset else "fp16"),
        "fp32_layers": layers,
        "opt_level": args.opt_level if args.opt_level is not None else (preset.opt_level if preset else 3),
        "workspace_mib": args.workspace if args.workspace is not None else (preset.workspace_mib if preset else 0),
    }


def cmd_build(args: argparse.Namespace) -> int:
    from esrgan_video.runtime.base import CommonOptions
    from esrgan_video.runtime.tensorrt_backend import (
        INSTALL_HINT,
        BuildOptions,
        TensorRTBackend,
        TensorRTOptions,
        tensorrt_available,
    )

    req = build_request(args)
    if not tensorrt_available():
        raise BackendError(f"engine build: {INSTALL_HINT}")
    import torch

    if not torch.cuda.is_available():
        raise BackendError("engine build: TensorRT engines are built on a CUDA GPU, and none is available")
    from esrgan_video.models import load_model
    from esrgan_video.models.descriptor import describe

    model = load_model(req["model"], device="cpu", offline=args.offline)
    desc = describe(model)
    shape = req["tile_shape"] or req["preset"].tile_shape(desc.scale, desc.size_multiple, desc.tile_pad)
    print(f"esrgan-video: engine for {model.info.name}: NxHxW {req['batch']}x{shape[0]}x{shape[1]}, {req['precision']}"
          + (f", fp32 layers {','.join(req['fp32_layers'])}" if req["fp32_layers"] else ""), file=sys.stderr)
    backend = TensorRTBackend(
        model,
        CommonOptions(device=args.device, precision=req["precision"], tile_shape=shape, batch=req["batch"],
                      notice=lambda msg: print(msg, file=sys.stderr)),  # build phases and time, as the command promises
        TensorRTOptions(streams=1, fp32_layers=req["fp32_layers"],
                        build=BuildOptions(opt_level=req["opt_level"], workspace_mib=req["workspace_mib"])),
    )
    backend.open()
    out = backend.outcome
    side = engine_cache.read_sidecar(out.paths.sidecar)
    state = "already cached" if out.hit else f"built in {side['build_seconds']:.1f} s"
    print(f"{out.paths.engine} ({state}, {side['engine_size'] / 2**20:.1f} MiB)")
    backend.close()
    return 0


def _cache_root() -> Path:
    """The engine cache folder; OutputError when the path is something else (a file): 'no engines in FILE' said
    nothing of why."""
    root = engine_cache.engines_dir()
    if root.exists() and not root.is_dir():
        why = f" (from ${engine_cache.ENGINES_ENV})" if os.environ.get(engine_cache.ENGINES_ENV, "").strip() else ""
        raise OutputError(f"engine cache {root}{why} is not a folder")
    return root


def cmd_list(args: argparse.Namespace) -> int:
    root = _cache_root()
    entries = engine_cache.list_entries(root)
    timing = engine_cache.outdated_timing_caches(root)
    if not entries and not timing:
        print(f"no engines in {root}")
        return 0
    print(f"engines in {root}:" if entries else f"no engines in {root}")
    for e in entries:
        print("  " + e.describe())
    for p in timing:
        print(f"  {p.name}: timing cache from an older esrgan-video, never read ('engine clear --all' removes it)")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    root = _cache_root()
    model = args.model
    if model is not None and ("/" in model or os.sep in model):
        model = Path(model).name  # an engine records a checkpoint by its file name (ModelInfo.name), as listed
    removed = engine_cache.clear_entries(root, model=None if args.all else model)
    engines = sum(1 for p in removed if p.name.endswith(".engine"))
    others = "" if args.all or removed else _models_cached(root)
    print(f"removed {engines} engine(s), {len(removed)} file(s) from {root}{others}")
    return 0


def _models_cached(root: Path) -> str:
    """'; its engines are of A, B' for a 'clear --model' that matched nothing (the names as 'engine list' shows
    them: a checkpoint's file name, not its path), or ''."""
    names = sorted({e.model for e in engine_cache.list_entries(root) if e.named})
    return f"; no engine of that model (its engines are of {', '.join(names)})" if names else ""


def cmd_presets(args: argparse.Namespace) -> int:
    for p in load_presets().values():
        tile = "whole frame" if p.tile == 0 else f"tile {p.tile}"
        print(f"{p.name}: {p.model}, {p.frame[1]}x{p.frame[0]} frames, {tile}, batch {p.batch}, {p.precision}"
              f" - {p.description}")
    return 0


HANDLERS = {"build": cmd_build, "list": cmd_list, "clear": cmd_clear, "presets": cmd_presets}


def run_engine(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``engine`` command; errors propagate as EsrganVideoError for the CLI to print."""
    return HANDLERS[args.engine_command](args)


def main(argv: list[str] | None = None) -> int:
    """``esrgan-video engine ...`` (argv without 'engine')."""
    p = command_parser("engine", __doc__.split("\n\n")[0])
    fill_engine_parser(p)
    return run_engine(p.parse_args(argv))
