"""Checkpoint files: safe file loading, wrapper/prefix removal, normalisation, atomic safetensors writing.

Which architecture the weights are and their hyperparameters come from key names and tensor shapes
(:mod:`esrgan_video.models.detection`: the ESRGAN family's layouts in :mod:`.esrgan`, the compact model in
:mod:`.compact`); nothing is assumed.

Accepted containers:

- wrappers ``params_ema`` (preferred), ``params-ema``, ``params``, ``state_dict``, ``model_state_dict``, ``model``,
  ``net``, ``netG``, and any single key holding a dictionary (as spandrel unwraps them, e.g. ``generator``);
  key prefixes ``module.`` and ``netG.``.

Files: ``.safetensors`` through safetensors; anything else through ``torch.load(weights_only=True)``, so a
checkpoint can never run code while it is read.

A model this project writes (:func:`save_safetensors` with ``params``: ``esrgan-video blend``, training) records
its hyperparameters in the safetensors metadata (:data:`HYPERPARAMETERS_KEY`), so what the keys cannot tell (an
x3 RRDB has the keys of an x2) survives the round trip; reading, detection checks them against the keys
(:func:`esrgan_video.models.detection.detect_file`).
"""

from __future__ import annotations

import math
import pickle
import re
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..arch.rrdbnet import RRDBParams
from ..arch.srvgg import CompactParams
from ..errors import ModelError
from ..files import atomic_write
from .descriptor import HYPERPARAMETERS_KEY, hyperparameters_record
from .detection import detect_file, expected_shapes
from .keys import StateDict, list_keys

WRAPPER_KEYS = ("params_ema", "params-ema", "params", "state_dict", "model_state_dict", "model", "net", "netG")
"""Keys under which training frameworks nest the generator's weights, in order of preference."""

PREFIXES = ("module.", "netG.")
"""Key prefixes left by DataParallel and some trainers."""

_DISCRIMINATOR_HINTS = ("net_d", "netD", "params_d", "discriminator")

_SAFETENSORS_SUFFIXES = (".safetensors", ".sft")


# --------------------------------------------------------------------------- file reading


def read_checkpoint(path: str | Path) -> tuple[Any, dict[str, str]]:
    """Read a checkpoint file safely; return (loaded object, safetensors metadata or {}).

    ``.safetensors`` goes through safetensors; other files through ``torch.load(weights_only=True)``,
    which refuses any pickle that would construct something other than tensors and plain containers.
    Every failure is a :class:`ModelError` naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelError(f"model path {path} is not a file")
    size = path.stat().st_size
    if size == 0:
        raise ModelError(f"model file {path} is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix.lower() in _SAFETENSORS_SUFFIXES or _looks_like_safetensors(head, size):
        return _read_safetensors(path)
    if head.startswith(b"7767517"):
        raise ModelError(
            f"model file {path} is an ncnn .param file; pass the .param path (with its .bin beside it) "
            "to load_model, which converts it"
        )
    torch_like = head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"
    if path.suffix.lower() == ".onnx" and not torch_like:
        raise ModelError(f"model file {path} is an ONNX graph, which esrgan-video does not read: pass the .pth, "
                         ".safetensors or ncnn .param it was made from (the ONNX Runtime backend exports its own)")
    if path.suffix.lower() == ".bin" and not torch_like and path.with_suffix(".param").is_file():
        raise ModelError(f"model file {path} is the weights half of an ncnn model: pass "
                         f"{path.with_suffix('.param')} (its .bin is read beside it)")
    return _read_torch(path, head), {}


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n < size and head[8:9] == b"{"


def _read_safetensors(path: Path) -> tuple[StateDict, dict[str, str]]:
    from safetensors import safe_open

    try:
        tensors: StateDict = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    except Exception as e:  # safetensors raises its own SafetensorError and OSError/ValueError variants
        raise ModelError(f"model file {path} is not a readable safetensors file ({_short(e)})") from e
    return tensors, metadata


def _read_torch(path: Path, head: bytes) -> Any:
    is_zip = head.startswith(b"PK\x03\x04")
    if is_zip:
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, OSError) as e:
            raise ModelError(f"model file {path} is a damaged or truncated zip/torch archive ({_short(e)})") from e
        if bad is not None:
            raise ModelError(f"model file {path} is damaged: archive member {bad} fails its CRC check")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        # "Unsupported global: GLOBAL x.y" (an allowed module, a class not allowed), or "unsupported GLOBAL os.system
        # whose module os is blocked"
        found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", text)
        if found:
            raise ModelError(
                f"refused to load {path}: unpickling it would call {found[1]}, and only plain weights are accepted "
                "(a checkpoint must not run code)"
            ) from e
        reason = None if is_zip else _neither_zip_nor_pickle(path, head)
        if reason is not None:
            raise ModelError(f"model file {path} is not a PyTorch checkpoint ({reason})") from e
        detail = re.search(r"WeightsUnpickler error: ([^\n]+)", text)
        reason = detail[1].strip() if detail else _short(e)
        kind = "a damaged or truncated PyTorch checkpoint" if is_zip else "not a PyTorch checkpoint"
        raise ModelError(f"model file {path} is {kind} that the safe (weights-only) loader accepts ({reason})") from e
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError, TypeError, AttributeError) as e:
        kind = "a damaged or truncated PyTorch checkpoint" if is_zip else "not a PyTorch checkpoint"
        reason = None if is_zip else _neither_zip_nor_pickle(path, head)
        raise ModelError(f"model file {path} is {kind} ({reason or _short(e)})") from e


def _neither_zip_nor_pickle(path: Path, head: bytes) -> str | None:
    """Why a file torch.load failed on is no checkpoint at all: it is not what torch.save writes, a zip archive
    (since 1.6) or a protocol-2 pickle (before: its first byte is pickle's PROTO, 0x80), nor the oldest tar; None
    when it looks like one of those (torch's own error says more then). torch's error for such a file is its parser
    tripping over the bytes (``IndexError: list index out of range`` for a text file), which says nothing."""
    if head[:1] == b"\x80" or tarfile.is_tarfile(path):
        return None
    what = "a text file" if head and all(32 <= b < 127 or b in b"\t\n\r" for b in head) else \
        f"it starts with bytes {head[:8].hex(' ')}"
    return (f"{what}, not the zip or pickle file torch.save writes; expected a PyTorch .pth/.pt, a .safetensors "
            "or an ncnn .param")


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# --------------------------------------------------------------------------- unwrapping


def unwrap(obj: Any, source: str) -> StateDict:
    """Find the generator's tensors inside a loaded checkpoint and strip known key prefixes.

    Wrappers are tried in :data:`WRAPPER_KEYS` order (``params_ema`` before ``params``), recursively.
    """
    if not isinstance(obj, Mapping):
        raise ModelError(f"{source} holds a {type(obj).__name__}, not a dictionary of weights")
    seen = []
    current: Mapping = obj
    for _ in range(4):
        tensors = {k: v for k, v in current.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        nested = next((k for k in WRAPPER_KEYS if isinstance(current.get(k), Mapping)), None)
        if nested is None and not tensors and len(current) == 1:  # one key of any name holding the weights
            only = next(iter(current))
            nested = only if isinstance(current[only], Mapping) and only not in _DISCRIMINATOR_HINTS else None
        if nested is not None and not _has_generator_keys(tensors):
            seen.append(nested)
            current = current[nested]
            continue
        break
    tensors = {k: v for k, v in current.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        keys = list_keys(current.keys())
        hint = ""
        if any(isinstance(k, str) and k in _DISCRIMINATOR_HINTS for k in current.keys()):
            hint = " (it looks like a discriminator or training state, not a generator)"
        raise ModelError(f"{source} contains no weight tensors; its top-level keys are {keys}{hint}")
    return strip_prefixes(tensors)


def strip_prefixes(sd: StateDict) -> StateDict:
    """Remove ``module.`` / ``netG.`` when every key carries it (repeatedly, e.g. ``module.netG.``).

    A training checkpoint holding generator and discriminator side by side (``netG.*`` and ``netD.*``) gives
    its ``netG.*`` part.
    """
    if not ({"conv_first.weight", "model.0.weight", "body.0.weight"} & sd.keys()):
        for prefix in ("netG.", "module.netG."):
            part = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            if part and len(part) < len(sd):
                sd = part
                break
    changed = True
    while changed and sd:
        changed = False
        for prefix in PREFIXES:
            if all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
                changed = True
    return sd


def _has_generator_keys(tensors: Mapping[str, Any]) -> bool:
    return any(k.endswith(("conv_first.weight", "model.0.weight", "body.0.weight")) for k in tensors)


def normalize(obj: Any, source: str, *, file_name: str = "", metadata: Mapping[str, str] | None = None,
              stated_scale: int | None = None) -> tuple[StateDict, RRDBParams | CompactParams, tuple[str, ...]]:
    """Loaded checkpoint object → (fp32 state dict in canonical names and network order, hyperparameters,
    one-line notices for the user).

    The architecture and its hyperparameters come from :func:`esrgan_video.models.detection.detect_file`, with the
    hyperparameters the file's ``metadata`` records (:data:`HYPERPARAMETERS_KEY`), else the scale ``file_name``
    states, where the weights leave it open (an x2/x3 model with one up conv); "" for no file name.
    ``stated_scale``: the scale the file's format states (an ncnn graph's Interp factors), or None."""
    recorded = (metadata or {}).get(HYPERPARAMETERS_KEY)
    sd, params, notices = detect_file(unwrap(obj, source), source, file_name, recorded=recorded,
                                      stated_scale=stated_scale)
    bad = [k for k, v in sd.items() if not v.is_floating_point()]
    if bad:
        raise ModelError(f"{source}: tensors {list_keys(bad, 3)} are not floating point")
    # canonical key order (the network's order), whatever order the file stored them in
    out = {k: sd[k].detach().to(torch.float32).contiguous() for k in expected_shapes(params)}
    # a diverged or damaged checkpoint: refused here, by name, not as the NaN output every frame would give (whose
    # error speaks of fp16 overflow). A float64 sum is finite exactly when every fp32 value is (no finite fp32 sum
    # of these sizes overflows it); numpy's is one thread: 0.04 s for x4plus, where torch's threads spin on a busy CPU
    bad = [k for k, v in out.items() if not math.isfinite(float(np.sum(v.numpy(), dtype=np.float64)))]
    if bad:
        raise ModelError(f"{source}: tensors {list_keys(bad, 3)} hold NaN or infinite values (a diverged training "
                         "run or a damaged file); it cannot give a picture")
    return out, params, notices


def hyperparameter_metadata(params: RRDBParams | CompactParams) -> dict[str, str]:
    """The safetensors metadata recording ``params`` (:data:`HYPERPARAMETERS_KEY`)."""
    return {HYPERPARAMETERS_KEY: hyperparameters_record(params)}


def save_safetensors(sd: StateDict, path: str | Path, metadata: Mapping[str, str] | None = None, *,
                     params: RRDBParams | CompactParams | None = None) -> Path:
    """Write ``sd`` as safetensors atomically (temporary name beside ``path``, fsync, rename).

    ``params``: the model's hyperparameters, recorded in the metadata (:func:`hyperparameter_metadata`) so that a
    reader gets what the keys alone cannot say (an x3 RRDB has the keys of an x2); pass them for every model
    file (not for e.g. a discriminator). A ``params`` the keys contradict is a ModelError, and nothing is written."""
    from safetensors.torch import save

    meta = dict(metadata or {})
    if params is not None:
        meta.update(hyperparameter_metadata(params))
        detect_file(sd, str(path), "", recorded=meta[HYPERPARAMETERS_KEY])  # the reader's check, before writing
    data = save({k: v.detach().contiguous().cpu() for k, v in sd.items()}, metadata=meta)
    return atomic_write(path, data)
