"""The RRDB generator of ESRGAN (Wang et al., 2018) and Real-ESRGAN.

Residual dense block (RDB): five 3x3 convolutions with dense concatenation,
LeakyReLU(0.2) after the first four, output scaled by 0.2 and added to the input.
RRDB: three RDBs, again scaled by 0.2 around them. No batch norm.

Network: conv_first, ``nb`` RRDBs, conv_body added to the trunk, ``log2(scale * unshuffle)``
stages of nearest x2 + conv + LeakyReLU (any number: x1 old-arch 0, x2 1, x4 2, x8 3, x16 4),
conv_hr, conv_last. x3 is the old (2018) ESRGAN code's one stage of nearest x3 + conv + LeakyReLU
(``upconv_blcok(nf, nf, 3)``): the same keys as x2, so its scale comes from elsewhere (the file name). Real-ESRGAN's x2 and x1 models feed the trunk a pixel-unshuffled input
(12 and 48 channels) and keep two up stages: :class:`RRDBNet` pads the input to a multiple of
the unshuffle factor and crops the output back, so callers always see ``out = in * scale``.
ESRGAN+ (``plus``) adds a 1x1 conv to each dense block. This is what spandrel 0.4.2's ESRGAN
architecture loads (there ``gc`` is fixed at 32; here it is read from the weights).

Pixel-unshuffle is written as reshape/permute so the ONNX graph holds only
Reshape/Transpose, which every TensorRT version parses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

SUPPORTED_SCALES = (1, 2, 3, 4, 8, 16)
UNSHUFFLE_FACTORS = (1, 2, 4)
REAL_ESRGAN_UNSHUFFLE = {1: 4, 2: 2}
"""Real-ESRGAN's convention: its x1 and x2 models pixel-unshuffle the input by 4 and 2 and keep two up stages."""


@dataclass(frozen=True)
class RRDBParams:
    """Hyperparameters of one RRDB generator, as read from its weights."""

    in_nc: int = 3
    """Colour channels in (1, 3 or 4); the trunk sees in_nc * unshuffle**2."""
    out_nc: int = 3
    """Colour channels out."""
    nf: int = 64
    """Trunk feature channels."""
    nb: int = 23
    """Number of RRDB blocks."""
    gc: int = 32
    """Growth channels inside each dense block."""
    scale: int = 4
    """Output size / input size, one of 1, 2, 3, 4, 8, 16 (3: one nearest-x3 stage, without unshuffle)."""
    unshuffle: int | None = None
    """Pixel-unshuffle factor of the input (1, 2 or 4). None: Real-ESRGAN's convention (4 for x1, 2 for x2,
    else 1). With it the network has log2(scale * unshuffle) up stages: an old-arch x1 restoration model is
    ``scale=1, unshuffle=1`` (no up stage), a 2x with one up conv ``scale=2, unshuffle=1``."""
    plus: bool = False
    """ESRGAN+ (Rakotonirina & Rasoanaivo, 2020): an extra bias-free 1x1 conv in each dense block."""

    def __post_init__(self) -> None:
        if self.unshuffle is None:
            object.__setattr__(self, "unshuffle", REAL_ESRGAN_UNSHUFFLE.get(self.scale, 1))
        if self.scale not in SUPPORTED_SCALES:
            raise ValueError(f"RRDBNet scale must be one of {SUPPORTED_SCALES}, got {self.scale}")
        if self.unshuffle not in UNSHUFFLE_FACTORS:
            raise ValueError(f"RRDBNet unshuffle must be one of {UNSHUFFLE_FACTORS}, got {self.unshuffle}")
        if self.scale == 3 and self.unshuffle != 1:
            raise ValueError(f"RRDBNet x3 (one nearest-x3 stage) takes no pixel-unshuffle, got {self.unshuffle}")
        for field in ("in_nc", "out_nc", "nf", "nb", "gc"):
            if getattr(self, field) < 1:
                raise ValueError(f"RRDBNet {field} must be >= 1, got {getattr(self, field)}")

    @property
    def upsample_factors(self) -> tuple[int, ...]:
        """The nearest up-sampling factor of each up stage: 2 for each of log2(scale * unshuffle), or one 3 for x3."""
        if self.scale == 3:
            return (3,)
        return (2,) * ((self.scale * self.unshuffle).bit_length() - 1)

    @property
    def upsample_stages(self) -> int:
        """Number of nearest-up + conv stages after the trunk: log2(scale * unshuffle), 1 for x3."""
        return len(self.upsample_factors)

    @property
    def receptive_radius(self) -> int:
        """How many input pixels away a pixel can still change an output pixel (ceil; pure arithmetic).

        Each 3x3 conv reaches one pixel of the resolution it runs at: 2 + 15 nb convs on the trunk
        (``unshuffle`` input pixels each), one per up stage at 2, 4, ... (or 3) times the trunk resolution, and
        conv_hr + conv_last at the last one.
        """
        pixel = float(self.unshuffle)  # input pixels per pixel of the current resolution
        radius = pixel * (2 + 15 * self.nb)
        for factor in self.upsample_factors:
            pixel /= factor
            radius += pixel
        radius += 2 * pixel
        return int(-(-radius // 1))

    @property
    def macs_per_input_pixel(self) -> int:
        """Multiply-accumulates per input pixel (convolutions only).

        Pure arithmetic from the structure: every 3x3 conv costs 9 * cin * cout
        MACs per pixel of the resolution it runs at (a 1x1 conv of ESRGAN+ cin * cout).
        """
        u = self.unshuffle
        trunk_px = 1.0 / (u * u)  # trunk pixels per input pixel
        k = 9
        nf, gc = self.nf, self.gc
        rdb = sum(k * (nf + i * gc) * (gc if i < 4 else nf) for i in range(5))
        if self.plus:
            rdb += nf * gc
        trunk = k * self.in_nc * u * u * nf + self.nb * 3 * rdb + k * nf * nf
        total = trunk * trunk_px
        px = trunk_px
        for factor in self.upsample_factors:
            px *= factor * factor
            total += k * nf * nf * px
        # conv_hr and conv_last run at output resolution
        total += (k * nf * nf + k * nf * self.out_nc) * px
        return int(round(total))

    @property
    def flops_per_input_pixel(self) -> int:
        """FLOPs per input pixel (2 per multiply-accumulate)."""
        return 2 * self.macs_per_input_pixel


RESIDUAL_SCALE = 0.2
"""The residual scaling of ESRGAN's RDBs and RRDBs."""


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs with dense concatenation; ESRGAN+ (``plus``) adds ``conv1x1(x)`` to x2 and x2 to x4."""

    def __init__(self, nf: int, gc: int, plus: bool = False) -> None:
        super().__init__()
        if plus:
            self.conv1x1 = nn.Conv2d(nf, gc, 1, 1, 0, bias=False)
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        self.plus = plus

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        if self.plus:
            x2 = x2 + self.conv1x1(x)
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        if self.plus:
            x4 = x4 + x2
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    def __init__(self, nf: int, gc: int, plus: bool = False) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(nf, gc, plus)
        self.rdb2 = ResidualDenseBlock(nf, gc, plus)
        self.rdb3 = ResidualDenseBlock(nf, gc, plus)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        return out * RESIDUAL_SCALE + x


def pixel_unshuffle(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Space-to-depth with reshape/permute only (same channel order as F.pixel_unshuffle)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // factor, factor, w // factor, factor)
    x = x.permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * factor * factor, h // factor, w // factor)


class RRDBNet(nn.Module):
    """RRDB generator. Input NCHW float in [0, 1]; output NCHW, ``scale`` times larger.

    The output is clamped to [0, 1] when ``clamp`` is true (the default).
    State-dict keys are the new-arch (Real-ESRGAN / BasicSR) names; the up-sampling convs are
    ``conv_up1`` .. ``conv_up<n>`` (none for an old-arch x1 model).
    """

    def __init__(self, params: RRDBParams | None = None, *, clamp: bool = True, **kwargs: int) -> None:
        super().__init__()
        if params is None:
            params = RRDBParams(**kwargs)
        elif kwargs:
            raise TypeError("pass either params or keyword hyperparameters, not both")
        self.params = params
        self.clamp = clamp
        p = params
        u = p.unshuffle
        self.conv_first = nn.Conv2d(p.in_nc * u * u, p.nf, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(p.nf, p.gc, p.plus) for _ in range(p.nb)])
        self.conv_body = nn.Conv2d(p.nf, p.nf, 3, 1, 1)
        self.up_names = tuple(f"conv_up{i}" for i in range(1, p.upsample_stages + 1))
        for name in self.up_names:
            setattr(self, name, nn.Conv2d(p.nf, p.nf, 3, 1, 1))
        self.conv_hr = nn.Conv2d(p.nf, p.nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(p.nf, p.out_nc, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    @property
    def scale(self) -> int:
        return self.params.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.params.unshuffle
        h = w = None
        if u > 1:
            h, w = x.shape[-2:]
            ph, pw = (-h) % u, (-w) % u
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph), mode="replicate")
            x = pixel_unshuffle(x, u)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for name, factor in zip(self.up_names, self.params.upsample_factors):
            feat = self.lrelu(getattr(self, name)(F.interpolate(feat, scale_factor=factor, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        if h is not None and out.shape[-2:] != (h * self.scale, w * self.scale):
            out = out[..., : h * self.scale, : w * self.scale]
        if self.clamp:
            out = out.clamp(0.0, 1.0)
        return out
