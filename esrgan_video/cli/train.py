"""``esrgan-video train``: fine-tune (or train) an ESRGAN generator, a thin shell over ``esrgan_video.train``.

    esrgan-video train --data episode1.mkv episode2.mkv --base RealESRGAN_x4plus_anime_6B \\
        --recipe realesrgan --stage gan --out runs/my-series --steps 20000

Options come from the command line over a TOML file (``--config``, same names with underscores, a
``[degradation]`` table for degradation fields). Rerunning the same command resumes the run in ``--out``.
Several GPUs: ``torchrun --standalone --nproc_per_node=N -m esrgan_video train ...``.
Exit codes: those of ``cli.exit_codes`` (a stop by Ctrl-C, SIGTERM or SIGHUP saves a checkpoint first: rerun to
resume).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import OptionError
from .arguments import command_parser


def _crop(text: str) -> list[int]:
    try:
        parts = [int(x) for x in text.replace("x", ",").replace("+", ",").split(",")]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected X,Y,WIDTH,HEIGHT, got {text!r}") from e
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"expected X,Y,WIDTH,HEIGHT, got {text!r}")
    return parts


def _layers(text: str) -> dict[str, float]:
    out = {}
    for item in text.split(","):
        name, sep, weight = item.strip().partition("=")
        try:
            out[name] = float(weight) if sep else 1.0
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected LAYER=WEIGHT,... (e.g. conv5_4=1), got {text!r}") from e
    return out


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        "train",
        "Fine-tune an ESRGAN (RRDB) generator on your own videos or images. LR inputs are made from "
        "random HR patches by a degradation, or given (--lr-data). Writes a run folder (--out) with checkpoints, "
        "previews and a journal; rerunning the same command resumes. See docs/training.md.",
        note="A stop by a signal saves a checkpoint first: rerun the same command to resume.",
        argument_default=None,
    )
    d = p.add_argument_group("data")
    d.add_argument("--data", nargs="+", metavar="SRC", help="HR videos, image folders or images")
    d.add_argument("--lr-data", nargs="+", metavar="SRC", help="paired LR sources, one per --data entry")
    d.add_argument("--degradation", choices=["bicubic", "realesrgan", "video"],
                   help="how LR inputs are made (default: the recipe's)")
    d.add_argument("--held-out", type=float, help="fraction of each source's last frames kept for validation (0.05)")
    d.add_argument("--max-frames", type=int, help="frames kept in memory per source (1000)")
    d.add_argument("--memory-gb", type=float, help="memory for one video source's frames, GiB (4)")
    d.add_argument("--pair-threshold", type=float, help="paired data: minimum PSNR (dB) of a matching pair (20)")
    d.add_argument("--pair-offset", type=float, help="paired videos: seconds added to the LR timestamps")
    d.add_argument("--hr-crop", type=_crop, metavar="X,Y,W,H", help="paired data: crop of the HR frames")
    d.add_argument("--lr-crop", type=_crop, metavar="X,Y,W,H", help="paired data: crop of the LR frames")
    m = p.add_argument_group("networks")
    m.add_argument("--base", help="starting model: registry name or checkpoint (default: from scratch, paper init)")
    m.add_argument("--scale", type=int, help="output scale (default: the base's; 4 from scratch)")
    m.add_argument("--nf", type=int, help="from scratch: trunk channels (64)")
    m.add_argument("--nb", type=int, help="from scratch: RRDB blocks (23)")
    m.add_argument("--gc", type=int, help="from scratch: growth channels (32)")
    m.add_argument("--discriminator", choices=["vgg128", "unet"], help="default: the recipe's")
    m.add_argument("--discriminator-weights", metavar="FILE", help="resume a discriminator from an earlier run")
    m.add_argument("--vgg-weights", metavar="FILE", help="torchvision's vgg19-dcbb9e9d.pth for the perceptual loss")
    t = p.add_argument_group("training")
    t.add_argument("--recipe", choices=["esrgan", "realesrgan"], help="published settings to train with (esrgan)")
    t.add_argument("--stage", choices=["psnr", "gan"], help="psnr: L1 only (default); gan: L1 + perceptual + GAN")
    t.add_argument("--gan", choices=["ragan", "vanilla"], help="GAN loss (default: the recipe's)")
    t.add_argument("--pixel-weight", type=float)
    t.add_argument("--perceptual-weight", type=float)
    t.add_argument("--gan-weight", type=float)
    t.add_argument("--perceptual-layers", type=_layers, metavar="LAYER=W,...",
                   help="VGG19 layers and weights, e.g. conv3_4=1,conv5_4=1 (default: the recipe's)")
    t.add_argument("--patch", type=int, help="HR patch size in pixels (128)")
    t.add_argument("--batch", type=int, help="patches per step per process (CPU 4, CUDA 16)")
    t.add_argument("--steps", type=int, help="total steps (CPU 200, CUDA 20000)")
    t.add_argument("--lr", type=float, help="Adam learning rate (1e-4)")
    t.add_argument("--schedule", choices=["step", "cosine", "constant"], help="default: the recipe's")
    t.add_argument("--ema", type=float, metavar="DECAY", help="EMA decay of the generator, 0 = off (0.999)")
    t.add_argument("--seed", type=int, help="seed of the patch sampler, the degradations and the discriminator's initial "
                   "weights (0)")
    r = p.add_argument_group("run")
    r.add_argument("--out", help="the run folder")
    r.add_argument("--config", metavar="TOML", help="options from a TOML file (the command line wins)")
    r.add_argument("--restart", action="store_true", default=False, help="start over in an existing run folder")
    r.add_argument("--save-every", type=int, metavar="N", help="checkpoint every N steps")
    r.add_argument("--val-every", type=int, metavar="N", help="validate every N steps")
    r.add_argument("--preview-every", type=int, metavar="N", help="preview grid every N steps")
    r.add_argument("--log-every", type=int, metavar="N",
                   help="journal lines and the progress bar's loss every N steps, written together (10)")
    r.add_argument("--device", help="cpu, cuda or cuda:N (default: auto)")
    r.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 on a busy shared machine)")
    r.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], help="autocast on CUDA (auto)")
    r.add_argument("--offline", action="store_true", default=None, help="never download (models, VGG weights)")
    r.add_argument("-q", "--quiet", action="store_true", default=None, help="no progress bar, no notices")
    return p


class ConfigKeyError(OptionError):
    """A bad value of a ``--config`` file's key: named as ``FILE: key NAME (--FLAG)``, the key as the file spells it
    and the flag that sets the same option where there is one (not relabelled to the flag alone)."""

    def relabel(self, names: dict[str, str]) -> "ConfigKeyError":
        return self


def _flags() -> dict[str, str]:
    """Each option's flag, by its name (``held_out`` → ``--held-out``): the parser's long option strings."""
    return {a.dest: longs[0] for a in parser()._actions
            if (longs := [s for s in a.option_strings if s.startswith("--")]) and a.dest != "help"}


class ConfigOrigin:
    """Which options' values came from the ``--config`` file (those the command line did not override), and how the
    file spells their keys: a refusal of one is named by the file, its key and its flag (:meth:`named`)."""

    def __init__(self, path: str | None, written: dict[str, str]) -> None:
        self.path = path
        self.written = written
        """Option name → the key as written in the file (``held-out`` for ``held_out``; ``[degradation]`` for the
        table's fields, ``degradation_options``)."""

    def named(self, e: OptionError) -> OptionError:
        """``e`` named as ``FILE: key KEY (--FLAG): expected ...`` when its option's value came from the file (a
        ``degradation`` refused with the table given: the table), else ``e`` as it is (main names its flag)."""
        option = e.option
        if option == "degradation" and "degradation_options" in self.written:
            option = "degradation_options"
        if option not in self.written:
            return e
        flag = _flags().get(option)
        named = ConfigKeyError(f"{self.path}: key {self.written[option]}" + (f" ({flag})" if flag else ""),
                               e.expected, e.got, detail=e.detail)
        named.__cause__ = e
        return named


def config_and_origin(args: argparse.Namespace):
    """TOML (``--config``) values, overridden by the options given on the command line → (``TrainConfig``,
    :class:`ConfigOrigin`).

    A bad value that came from the file is named by the file, its key and the flag that sets it (``run.toml: key
    held_out (--held-out): expected ...``), one given on the command line by its flag."""
    from dataclasses import fields

    from ..train.config import TrainConfig, read_toml

    values = read_toml(args.config) if args.config else {}
    written: dict[str, str] = {}
    if args.config:
        known = {f.name for f in fields(TrainConfig)}
        for key in values:
            k = key.replace("-", "_")
            if k not in known:
                raise ConfigKeyError(f"{args.config}: key {key}", "a training option (" + ", ".join(
                    sorted(known - {"degradation_options"})) + ")", "unknown")
            written[k] = "[degradation]" if k == "degradation_options" else key
    skip = {"config", "restart"}
    for key, value in vars(args).items():
        if key not in skip and value is not None:
            values[key] = value
            written.pop(key, None)
    origin = ConfigOrigin(args.config, written)
    try:
        return TrainConfig.from_mapping(values, source="--config" if args.config else "train"), origin
    except OptionError as e:
        named = origin.named(e)
        if named is e:
            raise
        raise named from e


def config_from_args(args: argparse.Namespace):
    """The ``TrainConfig`` of :func:`config_and_origin`."""
    return config_and_origin(args)[0]


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    config, origin = config_and_origin(args)
    from ..train.ddp import from_env
    from ..train.trainer import Trainer

    world = from_env()
    quiet = config.quiet or not world.main
    trainer = Trainer(config, restart=args.restart, progress=not quiet and sys.stderr.isatty())
    try:
        result = trainer.run()
    except OptionError as e:  # a value refused once the run is set up (a patch the scale does not divide, ...)
        named = origin.named(e)
        if named is e:
            raise
        raise named from e
    except KeyboardInterrupt as e:  # a second signal mid-step, or one before the steps began (step 0's validation)
        if not trainer.started:  # still checking inputs: nothing written (main says so)
            raise
        from .signals import exit_status, signal_name

        if world.main:
            last = trainer.folder.latest_step()
            where = f"resumes from step {last}" if last else "has no checkpoint yet: a rerun starts over"
            how = f"stopped at once ({signal_name(e)} again)" if trainer.stop_requested else f"interrupted ({signal_name(e)})"
            print(f"esrgan-video train: {how}; {trainer.folder.path} {where} (rerun the same command)",
                  file=sys.stderr)
        return exit_status(e)
    if result.interrupted:
        if world.main:
            print(f"esrgan-video train: interrupted at step {result.step}; checkpoint saved in {result.out} "
                  "(rerun the same command to resume)", file=sys.stderr)
        return 128 + int(result.signal or 2)  # 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
    from .signals import final

    final(0)  # final.safetensors is written: a signal from now (the message, freeing the trainer) leaves 0
    if not quiet:
        last = result.validation[-1] if result.validation else None
        score = f", held-out PSNR {last['psnr']:.2f} dB" if last else ""
        print(f"esrgan-video train: wrote {result.final} (step {result.step}{score})", file=sys.stderr)
    return 0
