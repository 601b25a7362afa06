"""Checkpoint formats: safe file loading, wrapper/prefix removal, old-arch → new-arch keys, detection.

Everything here reads hyperparameters from the weights (key names and tensor shapes); nothing is assumed.

Accepted layouts:

- new-arch (Real-ESRGAN / BasicSR): ``conv_first``, ``body.N.rdbK.convM``, ``conv_body``, ``conv_up1..3``,
  ``conv_hr``, ``conv_last``;
- BSRGAN / RealSR names: ``RRDB_trunk.N.RDBK.convM``, ``trunk_conv``, ``upconv1..3``, ``HRconv``;
- old-arch ESRGAN (2018): ``model.0``, ``model.1.sub.N.RDBK.convM.0``, ``model.1.sub.<nb>`` (conv_body),
  then the up convs, the HR conv and the last conv (``model.3/6/8/10`` for x4, ``model.3/6/9/11/13`` for x8);
- wrappers ``params_ema`` (preferred), ``params``, ``state_dict``, ``model``, ``net``, ``netG``;
  key prefixes ``module.`` and ``netG.``.

Files: ``.safetensors`` through safetensors; anything else through ``torch.load(weights_only=True)``, so a
checkpoint can never run code while it is read.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..arch.rrdbnet import RRDBParams
from ..errors import ModelError

StateDict = dict[str, torch.Tensor]

WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "netG")
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
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if found:
            raise ModelError(
                f"refused to load {path}: unpickling it would call {found[1]}, and only plain weights are accepted "
                "(a checkpoint must not run code)"
            ) from e
        detail = re.search(r"WeightsUnpickler error: ([^\n]+)", text)
        reason = detail[1].strip() if detail else _short(e)
        kind = "a damaged or truncated PyTorch checkpoint" if is_zip else "not a PyTorch checkpoint"
        raise ModelError(f"model file {path} is {kind} that the safe (weights-only) loader accepts ({reason})") from e
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError, TypeError, AttributeError) as e:
        kind = "a damaged or truncated PyTorch checkpoint" if is_zip else "not a PyTorch checkpoint"
        raise ModelError(f"model file {path} is {kind} ({_short(e)})") from e


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
        if nested is not None and not _has_generator_keys(tensors):
            seen.append(nested)
            current = current[nested]
            continue
        break
    tensors = {k: v for k, v in current.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        keys = _list_keys(current.keys())
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
    if not ({"conv_first.weight", "model.0.weight"} & sd.keys()):
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
    return any(k.endswith(("conv_first.weight", "model.0.weight")) for k in tensors)


def _list_keys(keys: Any, n: int = 6) -> str:
    keys = [str(k) for k in keys]
    shown = ", ".join(keys[:n])
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return f"[{shown}{more}]" if keys else "[] (nothing)"


# --------------------------------------------------------------------------- old-arch → new-arch

_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_OLD_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")
_OLD_BODY_END = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
_BSR_RDB = re.compile(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)$")
_BSR_NAMES = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2", "upconv3": "conv_up3",
              "HRconv": "conv_hr"}


def to_new_arch(sd: StateDict, source: str) -> StateDict:
    """Return the state dict with new-arch key names (a new dict; tensors are shared)."""
    if "conv_first.weight" in sd:
        if any(_BSR_RDB.match(k) for k in sd):
            return _bsr_to_new(sd)
        if any(re.match(r"^body\.\d+\.rdb\d\.", k) for k in sd):
            return dict(sd)
    if "model.0.weight" in sd and any(_OLD_RDB.match(k) for k in sd):
        return _old_to_new(sd, source)
    if "model.0.weight" in sd and any(".conv1x1." in k for k in sd):
        raise ModelError(f"{source} is an ESRGAN+ checkpoint (RRDB with extra 1x1 convs), which is not supported")
    raise ModelError(f"{source} is not an RRDB (ESRGAN) generator: {_describe(sd)}")


def _bsr_to_new(sd: StateDict) -> StateDict:
    out: StateDict = {}
    for k, v in sd.items():
        m = _BSR_RDB.match(k)
        if m:
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = v
            continue
        name, _, kind = k.rpartition(".")
        out[f"{_BSR_NAMES.get(name, name)}.{kind}"] = v
    return out


def _old_to_new(sd: StateDict, source: str) -> StateDict:
    out: StateDict = {}
    body_end: dict[int, dict[str, torch.Tensor]] = {}
    tops: dict[int, dict[str, torch.Tensor]] = {}
    leftovers = []
    for k, v in sd.items():
        if m := _OLD_RDB.match(k):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = v
        elif m := _OLD_BODY_END.match(k):
            body_end.setdefault(int(m[1]), {})[m[2]] = v
        elif m := _OLD_TOP.match(k):
            tops.setdefault(int(m[1]), {})[m[2]] = v
        else:
            leftovers.append(k)
    if leftovers:
        raise ModelError(
            f"{source} has old-arch ESRGAN keys but also keys this loader does not know: {_list_keys(leftovers)}"
        )
    if len(body_end) != 1:
        raise ModelError(
            f"{source} is an old-arch ESRGAN checkpoint without exactly one trunk conv (model.1.sub.<nb>): "
            f"found {sorted(body_end) or 'none'}"
        )
    (nb_index, conv_body), = body_end.items()
    for kind, v in conv_body.items():
        out[f"conv_body.{kind}"] = v
    if 0 not in tops:
        raise ModelError(f"{source} is an old-arch ESRGAN checkpoint without model.0 (the first conv)")
    order = sorted(tops)
    first, rest = order[0], order[1:]
    if len(rest) < 3:
        raise ModelError(
            f"{source} is an old-arch ESRGAN checkpoint with too few convs after the trunk "
            f"(found model.{', model.'.join(map(str, rest)) or 'none'})"
        )
    *ups, hr, last = rest
    names = {first: "conv_first", hr: "conv_hr", last: "conv_last"}
    for i, index in enumerate(ups, start=1):
        names[index] = f"conv_up{i}"
    for index, kinds in tops.items():
        for kind, v in kinds.items():
            out[f"{names[index]}.{kind}"] = v
    return out


def to_old_arch(sd: StateDict) -> StateDict:
    """New-arch keys → old-arch ESRGAN keys (the inverse of :func:`to_new_arch`, for tests and export)."""
    ups = sorted(int(m[1]) for k in sd if (m := re.match(r"^conv_up(\d)\.weight$", k)))
    nb = len({k.split(".")[1] for k in sd if k.startswith("body.")})
    index = {"conv_first": 0}
    for i in ups:
        index[f"conv_up{i}"] = 3 * i
    index["conv_hr"] = 3 * len(ups) + 2
    index["conv_last"] = 3 * len(ups) + 4
    out: StateDict = {}
    for k, v in sd.items():
        if m := re.match(r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)$", k):
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{m[4]}"] = v
        elif k.startswith("conv_body."):
            out[f"model.1.sub.{nb}.{k.split('.')[1]}"] = v
        else:
            name, _, kind = k.rpartition(".")
            out[f"model.{index[name]}.{kind}"] = v
    return out


def _describe(sd: Mapping[str, Any]) -> str:
    keys = list(sd.keys())
    tops = []
    for k in keys:
        top = k.split(".")[0]
        if top not in tops:
            tops.append(top)
    what = f"found {len(keys)} tensors whose top-level names are {_list_keys(tops)}"
    if any(h in k for k in keys for h in ("conv0_0", "linear", "classifier", "net_d")):
        what += " (it looks like a discriminator or a classifier)"
    return what


# --------------------------------------------------------------------------- detection


def detect_params(sd: StateDict, source: str) -> RRDBParams:
    """Read nf, nb, gc, in/out channels and scale from new-arch keys and shapes; check the key set is complete."""
    for key in ("conv_first.weight", "conv_body.weight", "conv_hr.weight", "conv_last.weight", "body.0.rdb1.conv1.weight"):
        if key not in sd:
            raise ModelError(f"{source} is missing {key}, so it is not a complete RRDB generator: {_describe(sd)}")
    first = sd["conv_first.weight"]
    if first.ndim != 4:
        raise ModelError(f"{source}: conv_first.weight has shape {tuple(first.shape)}, expected a 4-D conv kernel")
    nf, trunk_in = int(first.shape[0]), int(first.shape[1])
    out_nc = int(sd["conv_last.weight"].shape[0])
    gc = int(sd["body.0.rdb1.conv1.weight"].shape[0])
    blocks = {int(m[1]) for k in sd if (m := re.match(r"^body\.(\d+)\.", k))}
    nb = len(blocks)
    if blocks != set(range(nb)):
        raise ModelError(f"{source}: RRDB blocks are not numbered 0..{nb - 1} (found {sorted(blocks)[:8]}...)")
    ups = sorted(int(m[1]) for k in sd if (m := re.match(r"^conv_up(\d)\.weight$", k)))
    if ups not in ([1, 2], [1, 2, 3]):
        raise ModelError(
            f"{source} has up-sampling convs {['conv_up%d' % i for i in ups]}; "
            "supported are two (x4, or x2/x1 with pixel-unshuffle) or three (x8)"
        )
    if len(ups) == 3:
        scale, in_nc = 8, trunk_in
    elif trunk_in == 16 * out_nc:
        scale, in_nc = 1, out_nc
    elif trunk_in == 4 * out_nc:
        scale, in_nc = 2, out_nc
    else:
        scale, in_nc = 4, trunk_in
    try:
        params = RRDBParams(in_nc=in_nc, out_nc=out_nc, nf=nf, nb=nb, gc=gc, scale=scale)
    except ValueError as e:
        raise ModelError(f"{source}: detected hyperparameters are invalid ({e})") from e
    expected = expected_shapes(params)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_list_keys(missing, 4)}")
        if unexpected:
            parts.append(f"unexpected {_list_keys(unexpected, 4)}")
        raise ModelError(f"{source} does not match an RRDB generator with {_fmt(params)}: {'; '.join(parts)}")
    for k, shape in expected.items():
        if tuple(sd[k].shape) != shape:
            raise ModelError(
                f"{source}: {k} has shape {tuple(sd[k].shape)}, expected {shape} for an RRDB generator with {_fmt(params)}"
            )
    return params


def expected_shapes(p: RRDBParams) -> dict[str, tuple[int, ...]]:
    """Every new-arch key of an RRDB generator with ``p`` and its tensor shape."""
    u = p.unshuffle
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int) -> None:
        shapes[f"{name}.weight"] = (cout, cin, 3, 3)
        shapes[f"{name}.bias"] = (cout,)

    conv("conv_first", p.in_nc * u * u, p.nf)
    for b in range(p.nb):
        for r in (1, 2, 3):
            for c in range(1, 6):
                conv(f"body.{b}.rdb{r}.conv{c}", p.nf + (c - 1) * p.gc, p.gc if c < 5 else p.nf)
    conv("conv_body", p.nf, p.nf)
    for i in range(1, p.upsample_stages + 1):
        conv(f"conv_up{i}", p.nf, p.nf)
    conv("conv_hr", p.nf, p.nf)
    conv("conv_last", p.nf, p.out_nc)
    return shapes


def _fmt(p: RRDBParams) -> str:
    return f"x{p.scale}, nf={p.nf}, nb={p.nb}, gc={p.gc}, in_nc={p.in_nc}, out_nc={p.out_nc}"


def normalize(obj: Any, source: str) -> tuple[StateDict, RRDBParams]:
    """Loaded checkpoint object → (new-arch fp32 state dict in network order, detected hyperparameters)."""
    sd = to_new_arch(unwrap(obj, source), source)
    params = detect_params(sd, source)
    bad = [k for k, v in sd.items() if not v.is_floating_point()]
    if bad:
        raise ModelError(f"{source}: tensors {_list_keys(bad, 3)} are not floating point")
    # canonical key order (the network's order), whatever order the file stored them in
    return {k: sd[k].detach().to(torch.float32).contiguous() for k in expected_shapes(params)}, params


def save_safetensors(sd: StateDict, path: str | Path, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``sd`` as safetensors atomically (temporary name beside ``path``, fsync, rename)."""
    import os
    import tempfile

    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = save({k: v.detach().contiguous().cpu() for k, v in sd.items()}, metadata=dict(metadata or {}))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
