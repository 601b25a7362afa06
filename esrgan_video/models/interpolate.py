"""Network interpolation (ESRGAN paper, section 3.4): θ = (1 − α)·θ_A + α·θ_B; also Real-ESRGAN's ``dni`` (denoise).

Blending a GAN-trained model with its PSNR-oriented partner trades detail against smoothness.
"""

from __future__ import annotations

import math
from typing import NoReturn

import torch

from ..errors import ModelError
from .checkpoints import StateDict
from .descriptor import Hyperparameters, descriptor_for


def parse_blend(blend: str | tuple[str, float] | None) -> tuple[str, float] | None:
    """``"OTHER:0.3"`` or ``("OTHER", 0.3)`` → ``("OTHER", 0.3)``; validates 0 ≤ α ≤ 1.

    The split is on the last ``:`` so Windows-style paths keep their drive letter.
    """
    if blend is None:
        return None
    if isinstance(blend, str):
        other, sep, alpha_text = blend.rpartition(":")
        if not sep or not other:
            raise ModelError(f"blend {blend!r} must look like OTHER_MODEL:ALPHA, e.g. RealESRNet_x4plus:0.3")
        try:
            alpha = float(alpha_text)
        except ValueError as e:
            raise ModelError(f"blend {blend!r}: alpha {alpha_text!r} is not a number") from e
    else:
        try:
            other, alpha = blend
            alpha = float(alpha)
        except (TypeError, ValueError) as e:
            raise ModelError(f"blend must be 'OTHER:ALPHA' or (OTHER, ALPHA), got {blend!r}") from e
        other = str(other)
    if not math.isfinite(alpha) or not 0.0 <= alpha <= 1.0:
        raise ModelError(f"blend alpha must be between 0 and 1, got {alpha} (for {other})")
    return other, alpha


def interpolate(a: StateDict, b: StateDict, alpha: float, *, name_a: str = "A", name_b: str = "B") -> StateDict:
    """Return (1 − alpha)·a + alpha·b key by key; alpha 0 gives ``a`` and 1 gives ``b`` exactly.

    Raises :class:`ModelError` naming both models and the first key whose presence or shape differs.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ModelError(f"blend alpha must be between 0 and 1, got {alpha}")
    check_same_keys(a, b, name_a=name_a, name_b=name_b)
    if alpha == 0.0:
        return {k: v.clone() for k, v in a.items()}
    if alpha == 1.0:
        return {k: b[k].clone() for k in a}
    return {k: torch.lerp(a[k].float(), b[k].float(), alpha) for k in a}


def check_same_keys(a: StateDict, b: StateDict, *, name_a: str = "A", name_b: str = "B") -> None:
    """:class:`ModelError` naming both models and the first key whose presence or shape differs (what
    :func:`interpolate` refuses), else nothing."""
    for key in a:
        if key not in b:
            raise ModelError(f"cannot blend {name_a} with {name_b}: {key} exists only in {name_a}")
        if a[key].shape != b[key].shape:
            raise ModelError(
                f"cannot blend {name_a} with {name_b}: {key} has shape {tuple(a[key].shape)} in {name_a} "
                f"but {tuple(b[key].shape)} in {name_b}"
            )
    for key in b:
        if key not in a:
            raise ModelError(f"cannot blend {name_a} with {name_b}: {key} exists only in {name_b}")


def refuse_blend(a: StateDict, b: StateDict, params_a: Hyperparameters, params_b: Hyperparameters, name_a: str,
                 name_b: str) -> NoReturn:
    """The one-line :class:`ModelError` for two models that are not one network (their hyperparameters differ), in
    the words of every blend (``--model A --blend B``, ``esrgan-video blend``/``blend-strip``): what each is, why
    where the architectures differ, and for two of one architecture the first key whose shape or presence differs;
    two of the same keys and shapes but other hyperparameters (an x2 and an x3 RRDB) are refused rather than guessed."""
    what = f"{descriptor_for(params_a).summary} vs {descriptor_for(params_b).summary}"
    if type(params_a) is not type(params_b):
        raise ModelError(f"cannot blend {name_a} with {name_b}: {what} (network interpolation needs two models of one "
                         "architecture and size)")
    try:
        check_same_keys(a, b, name_a=name_a, name_b=name_b)  # the keys' words; no copy of the weights
    except ModelError as e:
        raise ModelError(f"{e} ({what})") from None
    raise ModelError(f"cannot blend {name_a} with {name_b}: {what}")


def parse_denoise(denoise: float | str | None) -> float | None:
    """A denoise strength (``--denoise S``): a number in [0, 1], or None. ModelError otherwise."""
    if denoise is None:
        return None
    try:
        strength = float(denoise)
    except (TypeError, ValueError) as e:
        raise ModelError(f"denoise strength must be a number between 0 and 1, got {denoise!r}") from e
    if not math.isfinite(strength) or not 0.0 <= strength <= 1.0:
        raise ModelError(f"denoise strength must be between 0 and 1, got {denoise!r}")
    return strength
