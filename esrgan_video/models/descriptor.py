"""The model descriptor: what every caller reads about a network instead of its hyperparameters.

Backends, the ONNX export, the Upscaler, tiling defaults, the engine presets, the benchmarks and vsesrgan read
:func:`describe(model) <describe>` — scale, channels, the size multiple, the default tile pad, the precisions
and the FLOPs — so a new architecture plugs in here (and in :mod:`esrgan_video.models.detection`) without
touching them. spandrel's ``ImageModelDescriptor`` is the model; here the network stays a plain ``nn.Module``
and the descriptor is computed from its ``.params`` (pure arithmetic, cached per hyperparameter set).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Union

from torch import nn

from ..arch.rrdbnet import RRDBNet, RRDBParams
from ..arch.srvgg import CompactParams, SRVGGNetCompact
from ..errors import ModelError
from ..tiling import DEFAULT_TILE_PAD

Hyperparameters = Union[RRDBParams, CompactParams]

ESRGAN = "ESRGAN"
COMPACT = "Compact"

ALL_PRECISIONS = ("fp32", "fp16", "bf16")

RRDB_TILE_PAD = DEFAULT_TILE_PAD
"""48: RRDB's receptive field is hundreds of pixels, so the pad is a measured trade-off (tiling's module doc:
57-61 dB seam PSNR on real x4plus weights at 48)."""

COMPACT_TILE_PAD_MARGIN = 0
"""Pixels added to the compact model's receptive radius for its default pad. 0: with a pad of the radius
(num_conv + 2 = 18 for realesr-animevideov3) every core pixel sees exactly the context it sees in the whole
frame. Measured on the real realesr-animevideov3 weights, 160x160 crops of skimage chelsea / astronaut, tile 32,
tiled against whole frame: pad 4: 55 / 59 dB, pad 8: 69 / 73 dB, pad 16: 103 / 105 dB, pad 17: 114 / 117 dB,
pad 18: 147 / 150 dB (max |diff| 1.3e-6, float rounding), the same at pad 24 (docs/benchmarks.md, "The compact
video model")."""


@dataclass(frozen=True, kw_only=True)
class ModelDescriptor:
    """Facts about one network, read from its weights (every field is derived from ``hyperparameters``)."""

    architecture: str
    """``"ESRGAN"`` (RRDB family: ESRGAN, Real-ESRGAN, BSRGAN, ESRGAN+) or ``"Compact"`` (SRVGGNetCompact)."""
    scale: int
    """Output size / input size."""
    in_channels: int
    """Channels of the input frames (1, 3 or 4)."""
    out_channels: int
    """Channels of the output frames."""
    size_multiple: int
    """The network pixel-unshuffles its input by this factor: tile sides that are multiples of it avoid the
    internal pad-and-crop (1 for most models, 2 / 4 for Real-ESRGAN's x2 / x1)."""
    receptive_radius: int
    """Input pixels away from which a pixel can still change an output pixel."""
    tile_pad: int
    """Default overlap of tiles, in input pixels, for this architecture."""
    precisions: tuple[str, ...]
    """Precisions the architecture runs in (all of fp32, fp16, bf16 for both families; a backend may offer fewer)."""
    flops_per_input_pixel: int
    """FLOPs (2 per multiply-accumulate of every convolution) per input pixel."""
    hyperparameters: Hyperparameters
    """The architecture's own hyperparameters (:class:`RRDBParams` or :class:`CompactParams`)."""

    @property
    def macs_per_input_pixel(self) -> int:
        return self.flops_per_input_pixel // 2

    @property
    def summary(self) -> str:
        """One phrase, e.g. ``ESRGAN x4 3->3, nf=64 nb=23 gc=32`` or ``Compact x4 3->3, nf=64 num_conv=16``."""
        p = self.hyperparameters
        if isinstance(p, RRDBParams):
            shape = f"nf={p.nf} nb={p.nb} gc={p.gc}" + (f" unshuffle={p.unshuffle}" if p.unshuffle > 1 else "")
            shape += " (ESRGAN+)" if p.plus else ""
        else:
            shape = f"nf={p.nf} num_conv={p.num_conv}"
        return f"{self.architecture} x{self.scale} {self.in_channels}->{self.out_channels}, {shape}"


@lru_cache(maxsize=256)
def descriptor_for(params: Hyperparameters) -> ModelDescriptor:
    """The descriptor of a network with these hyperparameters (pure)."""
    if isinstance(params, RRDBParams):
        return ModelDescriptor(
            architecture=ESRGAN, scale=params.scale, in_channels=params.in_nc, out_channels=params.out_nc,
            size_multiple=params.unshuffle, receptive_radius=params.receptive_radius, tile_pad=RRDB_TILE_PAD,
            precisions=ALL_PRECISIONS, flops_per_input_pixel=params.flops_per_input_pixel, hyperparameters=params,
        )
    if isinstance(params, CompactParams):
        return ModelDescriptor(
            architecture=COMPACT, scale=params.scale, in_channels=params.in_nc, out_channels=params.out_nc,
            size_multiple=1, receptive_radius=params.receptive_radius,
            tile_pad=params.receptive_radius + COMPACT_TILE_PAD_MARGIN,
            precisions=ALL_PRECISIONS, flops_per_input_pixel=params.flops_per_input_pixel, hyperparameters=params,
        )
    raise ModelError(f"no model descriptor for hyperparameters of type {type(params).__name__}")


HYPERPARAMETERS_KEY = "esrgan_video.hyperparameters"
"""Safetensors metadata key under which a model file this project writes records its hyperparameters
(:func:`hyperparameters_record`)."""

_RECORDED: dict[str, type] = {ESRGAN: RRDBParams, COMPACT: CompactParams}


def hyperparameters_record(params: Hyperparameters) -> str:
    """``params`` as JSON: ``{"architecture": "ESRGAN" | "Compact", ...every field of its dataclass}``."""
    architecture = next((a for a, cls in _RECORDED.items() if type(params) is cls), None)
    if architecture is None:
        raise ModelError(f"no hyperparameter record for {type(params).__name__}")
    return json.dumps({"architecture": architecture, **dataclasses.asdict(params)}, sort_keys=True)


def hyperparameters_from_record(text: str) -> Hyperparameters:
    """The inverse of :func:`hyperparameters_record`; ValueError (one line) for anything else."""
    try:
        fields = json.loads(text)
        cls = _RECORDED[fields.pop("architecture")]
        bad = [k for k, v in fields.items() if not isinstance(v, int)]
        if bad:
            raise ValueError(f"{bad[0]} is {fields[bad[0]]!r}, not an integer")
        return cls(**fields)
    except ValueError as e:  # bad JSON, or a field value the dataclass refuses
        raise ValueError(" ".join(str(e).split()) or "not a hyperparameter record") from None
    except (KeyError, TypeError, AttributeError) as e:  # no/unknown architecture, an unknown field, not an object
        raise ValueError(f"not a hyperparameter record ({type(e).__name__}: {e})") from None


NETWORKS: dict[type, type[nn.Module]] = {RRDBParams: RRDBNet, CompactParams: SRVGGNetCompact}
"""Hyperparameter type → network class."""


def build_network(params: Hyperparameters, **kwargs) -> nn.Module:
    """A fresh network for ``params`` (random weights; ``kwargs`` go to the constructor, e.g. ``clamp``)."""
    try:
        network = NETWORKS[type(params)]
    except KeyError:
        raise ModelError(f"no network for hyperparameters of type {type(params).__name__}") from None
    return network(params, **kwargs)


def describe(model: nn.Module) -> ModelDescriptor:
    """The descriptor of a loaded network (``RRDBNet`` or ``SRVGGNetCompact``, or anything with a ``.params``
    of those types). Raises :class:`ModelError` naming the class for anything else."""
    params = getattr(model, "params", None)
    if isinstance(params, (RRDBParams, CompactParams)):
        return descriptor_for(params)
    inner = getattr(model, "inner", None)  # the backends' I/O wrappers around a network
    if isinstance(inner, nn.Module):
        return describe(inner)
    raise ModelError(
        f"{type(model).__name__} is not a network esrgan-video knows (an RRDBNet or SRVGGNetCompact from "
        "esrgan_video.load_model or esrgan_video.arch)"
    )
