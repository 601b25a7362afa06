"""The ESRGAN (RRDB) family's key layouts and detection: what spandrel 0.4.2's ESRGAN architecture accepts.

Layouts, all mapped to the new-arch names of :class:`~esrgan_video.arch.rrdbnet.RRDBNet`:

- new-arch (Real-ESRGAN / BasicSR): ``conv_first``, ``body.N.rdbK.convM``, ``conv_body``, ``conv_up1..n``,
  ``conv_hr``, ``conv_last``;
- BSRGAN / RealSR names: ``RRDB_trunk.N.RDBK.convM``, ``trunk_conv``, ``upconv1..n``, ``HRconv``;
- old-arch ESRGAN (2018): ``model.0``, ``model.1.sub.N.RDBK.convM.0``, ``model.1.sub.<nb>`` (conv_body), the
  up convs at ``model.3, 6, .., 3n``, the HR conv at ``model.<3n+2>`` and the last conv at ``model.<3n+4>``
  (x1 without up convs: ``model.2`` and ``model.4``);
- ESRGAN+: the same with ``...RDBK.conv1x1.weight`` (a bias-free 1x1 conv) in every dense block.

Hyperparameters come from the shapes: nf and the trunk's input channels from conv_first, out_nc from conv_last,
gc from the first dense conv, nb from the block numbers, the number of up convs from their names; a trunk input
of 4 or 16 times out_nc means a pixel-unshuffled input (by 2 or 4, spandrel's rule), and the scale is
2**(up convs) / unshuffle. (An old-arch x3 model has the keys of x2: its file name decides, in
:func:`esrgan_video.models.detection.detect_file`.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..arch.rrdbnet import SUPPORTED_SCALES, RRDBParams
from ..errors import ModelError
from .keys import StateDict, describe_keys, list_keys

_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.(conv\d\.0|conv1x1)\.(weight|bias)$")
_OLD_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")
_OLD_BODY_END = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
_BSR_RDB = re.compile(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.(conv\d|conv1x1)\.(weight|bias)$")
_BSR_NAMES = {"trunk_conv": "conv_body", "HRconv": "conv_hr"}
_BSR_UP = re.compile(r"^upconv(\d+)$")
_NEW_RDB = re.compile(r"^body\.\d+\.rdb\d\.")


def recognise(sd: Mapping[str, object]) -> bool:
    """Whether the keys look like an RRDB generator in any of the layouts (spandrel's detection keys)."""
    return (
        ("model.0.weight" in sd and any(_OLD_RDB.match(k) for k in sd))
        or ("conv_first.weight" in sd and any(_NEW_RDB.match(k) or _BSR_RDB.match(k) for k in sd))
    )


def to_new_arch(sd: StateDict, source: str) -> StateDict:
    """Return the state dict with new-arch key names (a new dict; tensors are shared)."""
    if "conv_first.weight" in sd:
        if any(_BSR_RDB.match(k) for k in sd):
            return _bsr_to_new(sd)
        if any(_NEW_RDB.match(k) for k in sd):
            return dict(sd)
    if "model.0.weight" in sd and any(_OLD_RDB.match(k) for k in sd):
        return _old_to_new(sd, source)
    raise ModelError(f"{source} is not an RRDB (ESRGAN) generator: {describe_keys(sd)}")


def _bsr_to_new(sd: StateDict) -> StateDict:
    out: StateDict = {}
    for k, v in sd.items():
        m = _BSR_RDB.match(k)
        if m:
            out[f"body.{m[1]}.rdb{m[2]}.{m[3]}.{m[4]}"] = v
            continue
        name, _, kind = k.rpartition(".")
        if up := _BSR_UP.match(name):
            name = f"conv_up{up[1]}"
        out[f"{_BSR_NAMES.get(name, name)}.{kind}"] = v
    return out


def _old_to_new(sd: StateDict, source: str) -> StateDict:
    out: StateDict = {}
    body_end: dict[int, dict[str, torch.Tensor]] = {}
    tops: dict[int, dict[str, torch.Tensor]] = {}
    leftovers = []
    for k, v in sd.items():
        if m := _OLD_RDB.match(k):
            conv = m[3].removesuffix(".0")
            out[f"body.{m[1]}.rdb{m[2]}.{conv}.{m[4]}"] = v
        elif m := _OLD_BODY_END.match(k):
            body_end.setdefault(int(m[1]), {})[m[2]] = v
        elif m := _OLD_TOP.match(k):
            tops.setdefault(int(m[1]), {})[m[2]] = v
        else:
            leftovers.append(k)
    if leftovers:
        raise ModelError(
            f"{source} has old-arch ESRGAN keys but also keys this loader does not know: {list_keys(leftovers)}"
        )
    if len(body_end) != 1:
        raise ModelError(
            f"{source} is an old-arch ESRGAN checkpoint without exactly one trunk conv (model.1.sub.<nb>): "
            f"found {sorted(body_end) or 'none'}"
        )
    (_, conv_body), = body_end.items()
    for kind, v in conv_body.items():
        out[f"conv_body.{kind}"] = v
    if 0 not in tops:
        raise ModelError(f"{source} is an old-arch ESRGAN checkpoint without model.0 (the first conv)")
    rest = sorted(tops)[1:]
    n_up = (rest[-1] - 4) // 3 if rest else -1
    expected = [3 * i for i in range(1, n_up + 1)] + [3 * n_up + 2, 3 * n_up + 4]
    if n_up < 0 or rest != expected:
        found = ", ".join(f"model.{i}" for i in rest) or "none"
        raise ModelError(
            f"{source} is an old-arch ESRGAN checkpoint whose convs after the trunk are {found}; expected up convs "
            "at model.3, model.6, .. model.<3n>, then model.<3n+2> (HR conv) and model.<3n+4> (last conv)"
        )
    names = {0: "conv_first", 3 * n_up + 2: "conv_hr", 3 * n_up + 4: "conv_last"}
    for i in range(1, n_up + 1):
        names[3 * i] = f"conv_up{i}"
    for index, kinds in tops.items():
        for kind, v in kinds.items():
            out[f"{names[index]}.{kind}"] = v
    return out


# --------------------------------------------------------------------------- detection


def detect_params(sd: StateDict, source: str) -> RRDBParams:
    """Read nf, nb, gc, channels, unshuffle, scale and ESRGAN+ from new-arch keys and shapes; check the key set."""
    for key in ("conv_first.weight", "conv_body.weight", "conv_hr.weight", "conv_last.weight", "body.0.rdb1.conv1.weight"):
        if key not in sd:
            raise ModelError(f"{source} is missing {key}, so it is not a complete RRDB generator: {describe_keys(sd)}")
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
    ups = sorted(int(m[1]) for k in sd if (m := re.match(r"^conv_up(\d+)\.weight$", k)))
    if ups != list(range(1, len(ups) + 1)):
        raise ModelError(f"{source}: up-sampling convs are not numbered conv_up1..conv_up{len(ups)} "
                         f"(found {['conv_up%d' % i for i in ups]})")
    plus = any(".conv1x1." in k for k in sd)
    unshuffle, in_nc = 1, trunk_in
    for factor in (2, 4):  # spandrel's rule: a trunk input of 4x or 16x the output channels is pixel-unshuffled
        if trunk_in == factor * factor * out_nc:
            unshuffle, in_nc = factor, out_nc
    magnification = 2 ** len(ups)
    if magnification % unshuffle or magnification // unshuffle not in SUPPORTED_SCALES:
        raise ModelError(
            f"{source}: {len(ups)} up-sampling convs with a pixel-unshuffle of {unshuffle} (conv_first takes "
            f"{trunk_in} channels, conv_last gives {out_nc}) is a scale of 2**{len(ups)}/{unshuffle}; "
            f"supported scales are {SUPPORTED_SCALES}"
        )
    try:
        params = RRDBParams(in_nc=in_nc, out_nc=out_nc, nf=nf, nb=nb, gc=gc, scale=magnification // unshuffle,
                            unshuffle=unshuffle, plus=plus)
    except ValueError as e:
        raise ModelError(f"{source}: detected hyperparameters are invalid ({e})") from e
    check_shapes(sd, expected_shapes(params), source, f"an RRDB generator with {describe_params(params)}")
    return params


def check_shapes(sd: StateDict, expected: Mapping[str, tuple[int, ...]], source: str, what: str) -> None:
    """ModelError naming the missing, unexpected or misshapen keys of ``sd`` against ``expected``."""
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {list_keys(missing, 4)}")
        if unexpected:
            parts.append(f"unexpected {list_keys(unexpected, 4)}")
        raise ModelError(f"{source} does not match {what}: {'; '.join(parts)}")
    for k, shape in expected.items():
        if tuple(sd[k].shape) != shape:
            raise ModelError(f"{source}: {k} has shape {tuple(sd[k].shape)}, expected {shape} for {what}")


def expected_shapes(p: RRDBParams) -> dict[str, tuple[int, ...]]:
    """Every new-arch key of an RRDB generator with ``p`` and its tensor shape, in network order."""
    u = p.unshuffle
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int) -> None:
        shapes[f"{name}.weight"] = (cout, cin, 3, 3)
        shapes[f"{name}.bias"] = (cout,)

    conv("conv_first", p.in_nc * u * u, p.nf)
    for b in range(p.nb):
        for r in (1, 2, 3):
            if p.plus:
                shapes[f"body.{b}.rdb{r}.conv1x1.weight"] = (p.gc, p.nf, 1, 1)
            for c in range(1, 6):
                conv(f"body.{b}.rdb{r}.conv{c}", p.nf + (c - 1) * p.gc, p.gc if c < 5 else p.nf)
    conv("conv_body", p.nf, p.nf)
    for i in range(1, p.upsample_stages + 1):
        conv(f"conv_up{i}", p.nf, p.nf)
    conv("conv_hr", p.nf, p.nf)
    conv("conv_last", p.nf, p.out_nc)
    return shapes


def describe_params(p: RRDBParams) -> str:
    text = f"x{p.scale}, nf={p.nf}, nb={p.nb}, gc={p.gc}, in_nc={p.in_nc}, out_nc={p.out_nc}"
    if p.unshuffle > 1:
        text += f", unshuffle={p.unshuffle}"
    return text + (", ESRGAN+" if p.plus else "")

