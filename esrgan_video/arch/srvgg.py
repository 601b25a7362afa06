"""SRVGGNetCompact: Real-ESRGAN's compact video model (realesr-animevideov3, realesr-general-x4v3).

A plain VGG-style stack at the input resolution, up-sampling only at the very end:

    conv 3x3 in_nc -> nf, activation,
    num_conv x (conv 3x3 nf -> nf, activation),
    conv 3x3 nf -> out_nc * scale**2, pixel shuffle (depth to space) by ``scale``,
    plus the input up-sampled with nearest neighbour (the network learns the residual).

Activation: PReLU with one slope per channel (what every published checkpoint uses; ReLU is PReLU with
slope 0 and LeakyReLU(0.1) PReLU with slope 0.1, which is how the ncnn importer carries those).

State-dict keys are Real-ESRGAN's ``body.<i>.weight|bias``: the convs at even indices 0, 2, .., 2*num_conv + 2,
the PReLU slopes at the odd indices between them. Every conv runs at the input resolution, so an output pixel
depends on input pixels at most ``num_conv + 2`` away: that is the receptive radius, and a tile overlap of that
many pixels gives the same output as the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

COMPACT_SCALES = (1, 2, 3, 4, 8)


@dataclass(frozen=True)
class CompactParams:
    """Hyperparameters of one SRVGGNetCompact, as read from its weights."""

    in_nc: int = 3
    """Channels in (1, 3 or 4)."""
    out_nc: int = 3
    """Channels out (equal to in_nc, or 3/4 with a 1-channel input, which the residual broadcasts)."""
    nf: int = 64
    """Feature channels."""
    num_conv: int = 16
    """Convolutions between the first and the last (16 for realesr-animevideov3, 32 for realesr-general-x4v3)."""
    scale: int = 4
    """Output size / input size (the pixel-shuffle factor)."""

    def __post_init__(self) -> None:
        if self.scale not in COMPACT_SCALES:
            raise ValueError(f"SRVGGNetCompact scale must be one of {COMPACT_SCALES}, got {self.scale}")
        for field in ("in_nc", "out_nc", "nf"):
            if getattr(self, field) < 1:
                raise ValueError(f"SRVGGNetCompact {field} must be >= 1, got {getattr(self, field)}")
        if self.num_conv < 0:
            raise ValueError(f"SRVGGNetCompact num_conv must be >= 0, got {self.num_conv}")
        if self.in_nc != self.out_nc and self.in_nc != 1:
            raise ValueError(
                f"SRVGGNetCompact adds the up-sampled input to the output, so in_nc must equal out_nc "
                f"(or be 1); got in_nc={self.in_nc}, out_nc={self.out_nc}"
            )

    @property
    def receptive_radius(self) -> int:
        """Input pixels of context an output pixel depends on: one per 3x3 conv, all at the input resolution."""
        return self.num_conv + 2

    @property
    def macs_per_input_pixel(self) -> int:
        """Multiply-accumulates per input pixel (convolutions; PReLU, shuffle and the residual add are not counted)."""
        k = 9
        s2 = self.scale * self.scale
        return k * self.in_nc * self.nf + self.num_conv * k * self.nf * self.nf + k * self.nf * self.out_nc * s2

    @property
    def flops_per_input_pixel(self) -> int:
        """FLOPs per input pixel (2 per multiply-accumulate)."""
        return 2 * self.macs_per_input_pixel


class SRVGGNetCompact(nn.Module):
    """Compact generator. Input NCHW float in [0, 1]; output NCHW, ``scale`` times larger, clamped to
    [0, 1] when ``clamp`` is true (the default)."""

    def __init__(self, params: CompactParams | None = None, *, clamp: bool = True, **kwargs: int) -> None:
        super().__init__()
        if params is None:
            params = CompactParams(**kwargs)
        elif kwargs:
            raise TypeError("pass either params or keyword hyperparameters, not both")
        self.params = params
        self.clamp = clamp
        p = params
        layers: list[nn.Module] = [nn.Conv2d(p.in_nc, p.nf, 3, 1, 1), nn.PReLU(p.nf)]
        for _ in range(p.num_conv):
            layers += [nn.Conv2d(p.nf, p.nf, 3, 1, 1), nn.PReLU(p.nf)]
        layers.append(nn.Conv2d(p.nf, p.out_nc * p.scale * p.scale, 3, 1, 1))
        self.body = nn.ModuleList(layers)

    @property
    def scale(self) -> int:
        return self.params.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        s = self.params.scale
        if s > 1:
            out = F.pixel_shuffle(out, s)
            base = F.interpolate(x, scale_factor=s, mode="nearest")
        else:
            base = x
        out = out + base
        if self.clamp:
            out = out.clamp(0.0, 1.0)
        return out
