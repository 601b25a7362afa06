"""Training losses: L1 pixel and the GAN losses (RaGAN and vanilla).

The perceptual loss is :class:`esrgan_video.train.vgg.PerceptualLoss`; PSNR is the project's one
:func:`esrgan_video.quality.psnr`.

The GAN losses follow current BasicSR exactly, so the published loss weights apply unchanged:

- :func:`ragan_d_loss` / :func:`ragan_g_loss`: ESRGAN's relativistic average GAN. With
  D_Ra(a, b) = σ(C(a) − E[C(b)]), each loss is the **mean of its two binary-cross-entropy terms**
  (BasicSR's ``ESRGANModel`` multiplies each discriminator term by 0.5 and divides the generator's sum by 2).
  In the discriminator loss each term detaches the opposite side's mean (BasicSR computes the real term
  against ``fake_d_pred.detach()`` and the fake term against ``real_d_pred.detach()``); in the generator loss
  the real logits are detached (BasicSR runs ``net_d(gt).detach()``), so gradients reach the generator through
  the fake logits only, in both terms.
- :func:`vanilla_d_loss` / :func:`vanilla_g_loss`: the plain GAN loss Real-ESRGAN trains with: the
  discriminator's real and fake terms are **summed** (BasicSR's ``RealESRGANModel`` backpropagates each
  unscaled), the generator's loss is BCE(C(fake), real).

All return unweighted scalar tensors; the trainer multiplies by the recipe's weight.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _bce(logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def ragan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator RaGAN loss: ½·BCE(C(x_r) − E[C(x_f)], 1) + ½·BCE(C(x_f) − E[C(x_r)], 0).

    = −½E[log D_Ra(x_r, x_f)] − ½E[log(1 − D_Ra(x_f, x_r))]. The mean subtracted in each term is detached, so
    the real term's gradient flows into ``real_logits`` only and the fake term's into ``fake_logits`` only.
    """
    real_term = _bce(real_logits - fake_logits.detach().mean(), True)
    fake_term = _bce(fake_logits - real_logits.detach().mean(), False)
    return 0.5 * real_term + 0.5 * fake_term


def ragan_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator RaGAN loss, the symmetric form: ½·BCE(C(x_r) − E[C(x_f)], 0) + ½·BCE(C(x_f) − E[C(x_r)], 1).

    ``real_logits`` are detached (the discriminator is not trained by this loss); the gradient reaches
    ``fake_logits`` through both terms (directly in the second, through E[C(x_f)] in the first).
    """
    real = real_logits.detach()
    real_term = _bce(real - fake_logits.mean(), False)
    fake_term = _bce(fake_logits - real.mean(), True)
    return 0.5 * (real_term + fake_term)


def vanilla_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of the plain GAN, as Real-ESRGAN trains: BCE(C(x_r), 1) + BCE(C(x_f), 0) (summed)."""
    return _bce(real_logits, True) + _bce(fake_logits, False)


def vanilla_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss of the plain GAN: BCE(C(x_f), 1); ``real_logits`` are unused (kept for a common signature)."""
    del real_logits
    return _bce(fake_logits, True)


GAN_LOSSES = {"ragan": (ragan_d_loss, ragan_g_loss), "vanilla": (vanilla_d_loss, vanilla_g_loss)}
"""``--gan`` name → (discriminator loss, generator loss)."""


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (BasicSR's L1Loss with mean reduction), computed in fp32."""
    return F.l1_loss(output.float(), target.float())


__all__ = ["GAN_LOSSES", "l1_loss", "ragan_d_loss", "ragan_g_loss", "vanilla_d_loss", "vanilla_g_loss"]
