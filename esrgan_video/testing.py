"""Test and benchmark helpers: tiny RRDB models whose output is close to an upscaled copy of their input.

Random-initialised tiny RRDB nets output almost black frames (41–67 % of values clamp to 0), which hides colour
and seam errors. :func:`near_identity_model` instead carries the RGB channels through conv_first, the up convs,
conv_hr and conv_last with identity taps, keeps the trunk small, and adds seeded weight noise, so its output is a
nearest-neighbour upscale of the input plus a small, structured, deterministic error.
"""

from __future__ import annotations

import torch

from .arch.rrdbnet import SUPPORTED_SCALES, RRDBNet, RRDBParams


def near_identity_model(
    scale: int = 4,
    *,
    nf: int = 8,
    nb: int = 1,
    gc: int = 4,
    in_nc: int = 3,
    noise: float = 0.02,
    seed: int = 0,
) -> RRDBNet:
    """A small RRDBNet (eval mode, gradients off, with ``.info`` like :func:`load_model`'s) that approximates a
    nearest ×``scale`` upscale.

    Colour channels pass through identity taps (the centre of each 3×3 kernel); for ×2 and ×1, whose input is
    pixel-unshuffled, conv_first averages the ``u × u`` sub-pixels of each channel, so those models return a
    box-filtered copy (detail inside each 2×2 / 4×4 block is averaged). The trunk's weights are small random
    values (std ``noise / 2``), so its contribution is a faint texture. Every weight gets seeded Gaussian noise of
    std ``noise / 2`` (scaled by 1/sqrt(fan-in)), so outputs differ from a plain resize in a way a broken
    pipeline would change. ``noise=0`` gives an exact (box-)nearest upscale for inputs in [0, 1].
    """
    if scale not in SUPPORTED_SCALES:
        raise ValueError(f"near_identity_model: scale must be one of {SUPPORTED_SCALES}, got {scale}")
    if nf < in_nc:
        raise ValueError(f"near_identity_model: nf ({nf}) must be >= in_nc ({in_nc}) to carry the colour channels")
    if noise < 0:
        raise ValueError(f"near_identity_model: noise must be >= 0, got {noise}")
    params = RRDBParams(in_nc=in_nc, out_nc=in_nc, nf=nf, nb=nb, gc=gc, scale=scale)
    model = RRDBNet(params)
    gen = torch.Generator().manual_seed(seed)
    u = params.unshuffle

    def noisy(shape: tuple[int, ...], std: float) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * std

    def perturbation(w: torch.Tensor) -> torch.Tensor:
        fan_in = w.shape[1] * w.shape[2] * w.shape[3]
        return noisy(tuple(w.shape), 0.5 * noise / fan_in**0.5)

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(noisy(tuple(p.shape), noise * 0.1))
            elif name.startswith("body."):
                p.copy_(noisy(tuple(p.shape), noise * 0.5 / (p.shape[1] * 9) ** 0.5))
            else:
                p.copy_(perturbation(p))
        for c in range(in_nc):
            for k in range(u * u):  # pixel-unshuffle channel order: c * u * u + sub-pixel index
                model.conv_first.weight[c, c * u * u + k, 1, 1] += 1.0 / (u * u)
            for conv in (model.conv_up1, model.conv_up2, getattr(model, "conv_up3", None), model.conv_hr):
                if conv is not None:
                    conv.weight[c, c, 1, 1] += 1.0
            model.conv_last.weight[c, c, 1, 1] += 1.0
        # conv_body: the trunk adds body(feat) to feat; keep it a small perturbation (already noise-sized)
    model.eval()
    model.requires_grad_(False)
    from .models.loading import ModelInfo, state_dict_sha256

    model.info = ModelInfo(
        name=f"near_identity_x{scale}",
        params=params,
        scale=scale,
        sha256=state_dict_sha256(model.state_dict()),
        source=f"esrgan_video.testing.near_identity_model(scale={scale}, nf={nf}, nb={nb}, gc={gc}, "
        f"in_nc={in_nc}, noise={noise}, seed={seed})",
        notes=("synthetic test model: a noisy nearest-neighbour upscale",),
    )
    return model
