"""The two discriminators and the paper's generator initialisation.

- :class:`VGGStyleDiscriminator` (``vgg128``): ESRGAN's VGG-style net (BasicSR ``VGGStyleDiscriminator``,
  ``input_size=128``): five stages of 3×3 + 4×4/2 convolutions with batch norm, then 8·nf·4·4 → 100 → 1.
  It takes exactly 128-px patches and gives one logit per patch.
- :class:`UNetDiscriminatorSN` (``unet``): Real-ESRGAN's U-Net with spectral normalisation and skip
  connections; one logit per pixel, any patch size that is a multiple of 8.

:func:`paper_init` is ESRGAN's initialisation for deep RRDB nets: Kaiming-normal × 0.1 on the dense blocks'
convolutions, zero biases (BasicSR's ``default_init_weights(..., 0.1)``); the other layers keep PyTorch's
default initialisation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

VGG128_SIZE = 128


class VGGStyleDiscriminator(nn.Module):
    """ESRGAN's discriminator for 128×128 inputs (one logit per image)."""

    input_size = VGG128_SIZE

    def __init__(self, in_nc: int = 3, nf: int = 64) -> None:
        super().__init__()
        self.conv0_0 = nn.Conv2d(in_nc, nf, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(nf, nf, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(nf, affine=True)
        chans = [(nf, nf * 2), (nf * 2, nf * 4), (nf * 4, nf * 8), (nf * 8, nf * 8)]
        for i, (cin, cout) in enumerate(chans, start=1):
            setattr(self, f"conv{i}_0", nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
            setattr(self, f"bn{i}_0", nn.BatchNorm2d(cout, affine=True))
            setattr(self, f"conv{i}_1", nn.Conv2d(cout, cout, 4, 2, 1, bias=False))
            setattr(self, f"bn{i}_1", nn.BatchNorm2d(cout, affine=True))
        self.linear1 = nn.Linear(nf * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"the vgg128 discriminator takes {self.input_size}x{self.input_size} patches, "
                             f"got {x.shape[-1]}x{x.shape[-2]}")
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for i in range(1, 5):
            feat = self.lrelu(getattr(self, f"bn{i}_0")(getattr(self, f"conv{i}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{i}_1")(getattr(self, f"conv{i}_1")(feat)))
        feat = feat.flatten(1)
        return self.linear2(self.lrelu(self.linear1(feat)))


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral normalisation (per-pixel logits)."""

    multiple = 8

    def __init__(self, in_nc: int = 3, nf: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        self.skip_connection = skip_connection
        norm = spectral_norm
        self.conv0 = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.conv1 = norm(nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False))
        self.conv2 = norm(nn.Conv2d(nf * 2, nf * 4, 4, 2, 1, bias=False))
        self.conv3 = norm(nn.Conv2d(nf * 4, nf * 8, 4, 2, 1, bias=False))
        self.conv4 = norm(nn.Conv2d(nf * 8, nf * 4, 3, 1, 1, bias=False))
        self.conv5 = norm(nn.Conv2d(nf * 4, nf * 2, 3, 1, 1, bias=False))
        self.conv6 = norm(nn.Conv2d(nf * 2, nf, 3, 1, 1, bias=False))
        self.conv7 = norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv8 = norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lrelu = lambda t: F.leaky_relu(t, negative_slope=0.2)  # noqa: E731
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        x0 = lrelu(self.conv0(x))
        x1 = lrelu(self.conv1(x0))
        x2 = lrelu(self.conv2(x1))
        x3 = lrelu(self.conv3(x2))
        x4 = lrelu(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = lrelu(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = lrelu(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = lrelu(self.conv7(x6))
        out = lrelu(self.conv8(out))
        return self.conv9(out)


DISCRIMINATORS = {"vgg128": VGGStyleDiscriminator, "unet": UNetDiscriminatorSN}


def make_discriminator(name: str) -> nn.Module:
    """A fresh discriminator by name (``vgg128`` or ``unet``)."""
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}: expected one of {', '.join(DISCRIMINATORS)}")
    return DISCRIMINATORS[name]()


def check_patch(name: str, patch: int) -> str | None:
    """Why ``patch`` cannot be used with discriminator ``name`` (None when it can)."""
    if name == "vgg128" and patch != VGG128_SIZE:
        return f"the vgg128 discriminator takes exactly {VGG128_SIZE}-px HR patches (use --patch 128 or --discriminator unet)"
    if name == "unet" and patch % UNetDiscriminatorSN.multiple:
        return f"the unet discriminator needs an HR patch that is a multiple of {UNetDiscriminatorSN.multiple}"
    return None


@torch.no_grad()
def paper_init(model: nn.Module, scale: float = 0.1) -> nn.Module:
    """ESRGAN's init: every convolution inside the RRDB trunk's dense blocks gets Kaiming-normal (fan-in, gain
    √2) × ``scale`` and a zero bias; everything else keeps its default init. Returns ``model``."""
    for name, module in model.named_modules():
        if name.startswith("body.") and isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
            module.weight.mul_(scale)
            if module.bias is not None:
                module.bias.zero_()
    return model


__all__ = ["DISCRIMINATORS", "UNetDiscriminatorSN", "VGGStyleDiscriminator", "check_patch", "make_discriminator",
           "paper_init"]
