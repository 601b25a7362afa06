"""The two named training recipes, with their published settings, as data.

- ``esrgan`` (the default; Wang et al. 2018): RaGAN, pixel L1 1e-2, perceptual 1 on ``conv5_4`` (before the
  ReLU), GAN 5e-3, the VGG-style 128-px discriminator, bicubic data, learning rate halved at 1/8, 1/4, 1/2 and 3/4
  of the run (the paper's 50k/100k/200k/300k of 400k), random flips.
- ``realesrgan`` (as Real-ESRGAN's ``train_realesrgan_x4plus.yml`` really trains): a plain (non-relativistic)
  GAN loss with the discriminator's real and fake terms summed, pixel 1, perceptual 1 on five layers
  (conv1_2 0.1, conv2_2 0.1, conv3_4 1, conv4_4 1, conv5_4 1), GAN 0.1, the U-Net discriminator with spectral
  norm, unsharp-masked targets for the pixel and perceptual losses (not for the GAN), the second-order
  degradation and its shuffling pool of training pairs, a constant learning rate, horizontal flips.

Both use Adam (lr 1e-4, β 0.9/0.99) for both networks and an EMA of the generator (0.999). The ``psnr`` stage
trains the pixel loss alone (weight 1), the paper's first stage.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Everything a recipe fixes; a config may override single values."""

    name: str
    gan: str
    """``ragan`` or ``vanilla``."""
    discriminator: str
    """``vgg128`` or ``unet``."""
    degradation: str
    pixel_weight: float
    perceptual_layers: tuple[tuple[str, float], ...]
    perceptual_weight: float
    gan_weight: float
    usm_targets: bool
    """Unsharp-mask the targets of the pixel and perceptual losses (Real-ESRGAN)."""
    pool: bool
    """Real-ESRGAN's shuffling pool of training pairs."""
    schedule: str
    """``step``, ``cosine`` or ``constant``."""
    milestones: tuple[float, ...]
    """For ``step``: fractions of the run at which the learning rate is multiplied by ``gamma``."""
    gamma: float
    rot_augment: bool
    """Random 90° rotations besides horizontal flips (ESRGAN yes, Real-ESRGAN no)."""


RECIPES = {
    "esrgan": Recipe(
        name="esrgan", gan="ragan", discriminator="vgg128", degradation="bicubic",
        pixel_weight=1e-2, perceptual_layers=(("conv5_4", 1.0),), perceptual_weight=1.0, gan_weight=5e-3,
        usm_targets=False, pool=False, schedule="step", milestones=(0.125, 0.25, 0.5, 0.75), gamma=0.5,
        rot_augment=True,
    ),
    "realesrgan": Recipe(
        name="realesrgan", gan="vanilla", discriminator="unet", degradation="realesrgan",
        pixel_weight=1.0,
        perceptual_layers=(("conv1_2", 0.1), ("conv2_2", 0.1), ("conv3_4", 1.0), ("conv4_4", 1.0), ("conv5_4", 1.0)),
        perceptual_weight=1.0, gan_weight=0.1, usm_targets=True, pool=True, schedule="constant", milestones=(),
        gamma=0.5, rot_augment=False,
    ),
}


def lr_at(step: int, *, base: float, total: int, schedule: str, milestones: tuple[float, ...], gamma: float,
          eta_min: float = 1e-7) -> float:
    """The learning rate for (0-based) ``step`` of a ``total``-step run: a pure function of its arguments."""
    if schedule == "constant":
        return base
    if schedule == "step":
        drops = sum(1 for m in milestones if step >= int(round(m * total)))
        return base * gamma**drops
    if schedule == "cosine":
        import math

        t = min(step, total) / max(1, total)
        return eta_min + (base - eta_min) * 0.5 * (1 + math.cos(math.pi * t))
    raise ValueError(f"unknown schedule {schedule!r}")


__all__ = ["RECIPES", "Recipe", "lr_at"]
