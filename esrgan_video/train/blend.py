"""Network interpolation of a training result (ESRGAN §3.4): write the blended model, or one strip image
across several alphas so the balance between a psnr and a gan result can be picked by eye.

Uses the project's interpolation (:func:`esrgan_video.models.interpolate.interpolate`): θ = (1 − α)·θ_A + α·θ_B.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from ..errors import EsrganVideoError, InputError, OutputError


def _weights(name_or_path: str, notice: Callable[[str], None] | None):
    """A model's weights, hyperparameters and name, read as every face reads a model (``load_model``); its
    detection notices (``ModelInfo.notices``: e.g. a scale taken from the file name) go to ``notice``."""
    from ..models import load_model

    model = load_model(name_or_path)
    if notice is not None:
        for msg in model.info.notices:
            notice(msg)
    return dict(model.state_dict()), model.info.params, model.info.name


@contextmanager
def _writing(path: Path):
    """A failed write of ``path`` (a full disk, a folder gone read-only) as one line, in the words of every writer
    (``files.cannot_write``, as ``video.images.write_image`` says it); the file is written whole or not at all
    (``files.atomic_write``)."""
    from ..files import cannot_write

    try:
        yield
    except OSError as e:
        if isinstance(e, EsrganVideoError):
            raise
        raise cannot_write(path, e) from e


def _check_output(out: Path, overwrite: bool, *inputs) -> None:
    """The checks of every other output place (``esrgan_video.files``), before any model is read: the folder exists
    and takes a new file, ``out`` is no folder, no input, and not an existing file unless ``overwrite``."""
    from ..files import check_can_create, check_output_place

    for src in inputs:  # every caller names its inputs (the two models, the preview frame)
        check_output_place(out, overwrite=overwrite, src=src)
    check_can_create(out)


def _pair(a: str, b: str, notice: Callable[[str], None] | None = None):
    """Both models' weights, their (equal) hyperparameters and names; ModelError when they are not one network
    (``models.interpolate.refuse_blend``, as ``--blend`` says it: e.g. an x2 and an x3 RRDB, which have the same
    keys)."""
    sd_a, params, name_a = _weights(a, notice)
    sd_b, params_b, name_b = _weights(b, notice)
    if params_b != params:
        from ..models.interpolate import refuse_blend

        refuse_blend(sd_a, sd_b, params, params_b, name_a, name_b)
    return sd_a, sd_b, params, name_a, name_b


def blend_models(a: str, b: str, alpha: float, out: str | Path, *, overwrite: bool = False,
                 notice: Callable[[str], None] | None = None) -> Path:
    """Write (1 − alpha)·A + alpha·B as safetensors at ``out`` (loadable by ``--model PATH``). ``notice`` receives
    the models' one-line detection notices."""
    from ..models.checkpoints import save_safetensors
    from ..models.interpolate import interpolate, parse_blend

    out = Path(out)
    _check_output(out, overwrite, a, b)
    if out.suffix.lower() != ".safetensors":  # written as safetensors whatever the name: x.png or x.pth would hold it
        strip = "; a .png strip is made with --alphas and --preview" if out.suffix.lower() == ".png" else ""
        raise OutputError(f"{out}: the blended model is written as safetensors; give a .safetensors name{strip}")
    _, alpha = parse_blend((b, alpha))
    sd_a, sd_b, params, name_a, name_b = _pair(a, b, notice)
    sd = interpolate(sd_a, sd_b, alpha, name_a=name_a, name_b=name_b)
    # the hyperparameters go into the file: an x3 blend must not read back as x2 (the same keys)
    with _writing(out):
        return save_safetensors(sd, out, {"esrgan_video.source": f"blend of {name_a} and {name_b} at alpha {alpha:g}"},
                                params=params)


def blend_strip(a: str, b: str, alphas: list[float], frame: str | Path, out: str | Path, *,
                device: str | None = None, overwrite: bool = False, gap: int = 4,
                notice: Callable[[str], None] | None = None) -> Path:
    """Upscale ``frame`` (an image) with the blend at each alpha and write the results side by side as one PNG.
    ``notice`` receives the models' one-line detection notices."""
    from ..models.checkpoints import save_safetensors
    from ..models.interpolate import interpolate, parse_blend
    from ..upscaler import Upscaler
    from .data import read_still
    from .images import grid, write_png

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise OutputError(f"{out}: the strip is written as PNG; give a .png name")
    _check_output(out, overwrite, a, b, frame)
    if not alphas:
        raise InputError("blend: --alphas needs at least one value")
    alphas = [parse_blend((b, x))[1] for x in alphas]
    img = read_still(frame).float().unsqueeze(0) / 255.0
    sd_a, sd_b, params, name_a, name_b = _pair(a, b, notice)
    tiles = []
    with tempfile.TemporaryDirectory(prefix="esrgan-video-blend-") as tmp:
        for alpha in alphas:
            # each blend goes through the loader, as a blended file would: any architecture it detects works
            path = Path(tmp) / f"alpha_{alpha:g}.safetensors"
            with _writing(path):
                save_safetensors(interpolate(sd_a, sd_b, alpha, name_a=name_a, name_b=name_b), path, params=params)
            up = Upscaler(str(path), device=device)
            try:
                tiles.append(up.upscale(img)[0].float().cpu().clamp(0, 1))
            finally:
                up.close()
    return write_png(out, grid([tiles], gap=gap))


__all__ = ["blend_models", "blend_strip"]
