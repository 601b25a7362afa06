"""Real-ESRGAN's SRVGGNetCompact: recognising its state dict and reading its hyperparameters.

Key layout (Real-ESRGAN's ``realesrgan/archs/srvgg_arch.py``, also spandrel's): ``body.<i>.weight|bias``, the
convs at even indices 0, 2, .., 2*num_conv + 2, the PReLU slopes (``body.<odd>.weight``, one per channel) between
them. From the shapes: in_nc and nf from ``body.0.weight``, num_conv from the highest index, and
``out_nc * scale**2`` from the last conv's bias; like spandrel, out_nc is taken as in_nc, else 3, 4 or 1,
whichever makes the rest a square.

A compact model trained with ReLU or LeakyReLU has no activation weights, so its activation cannot be read
from the file: it is refused with that reason, in one line (every published compact checkpoint uses PReLU).
spandrel 0.4.2 refuses them too: its Compact architecture needs ``body.1.weight``, and no other matches. (An ncnn
export names its activation, so :mod:`.ncnn` converts ReLU/LeakyReLU compact models, as PReLU slopes.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from ..arch.srvgg import CompactParams
from ..errors import ModelError
from .esrgan import check_shapes
from .keys import StateDict, describe_keys, list_keys

_BODY = re.compile(r"^body\.(\d+)\.(weight|bias)$")


def recognise(sd: Mapping[str, object]) -> bool:
    """Whether the keys look like a compact model: ``body.0.weight`` is a 4-D conv and every key is ``body.<i>.*``."""
    first = sd.get("body.0.weight")
    return getattr(first, "ndim", 0) == 4 and all(_BODY.match(k) for k in sd)


def detect_params(sd: StateDict, source: str) -> CompactParams:
    """Hyperparameters of a compact model from its keys and shapes; ModelError listing what was found otherwise."""
    indices = sorted({int(m[1]) for k in sd if (m := _BODY.match(k))})
    if not indices or "body.0.weight" not in sd:
        raise ModelError(f"{source} is not a compact (SRVGGNetCompact) model: {describe_keys(sd)}")
    last = indices[-1]
    if "body.1.weight" not in sd:
        convs = [i for i in indices if i % 2 == 0]
        raise ModelError(
            f"{source} looks like a compact (SRVGGNetCompact) model without PReLU weights ({len(convs)} convs "
            f"{list_keys([f'body.{i}' for i in convs], 4)}, no body.1.weight): its activation (ReLU or LeakyReLU) "
            "cannot be told from the weights, and only PReLU compact models can be loaded"
        )
    if last % 2 or last < 2:
        raise ModelError(f"{source}: a compact model ends with a conv at an even index, but the last layer is "
                         f"body.{last}: {describe_keys(sd)}")
    first = sd["body.0.weight"]
    nf, in_nc = int(first.shape[0]), int(first.shape[1])
    num_conv = (last - 2) // 2
    bias = sd.get(f"body.{last}.bias")
    if bias is None:
        raise ModelError(f"{source}: the last conv body.{last} of this compact model has no bias")
    scale, out_nc = _scale_and_channels(int(bias.shape[0]), in_nc, source)
    try:
        params = CompactParams(in_nc=in_nc, out_nc=out_nc, nf=nf, num_conv=num_conv, scale=scale)
    except ValueError as e:
        raise ModelError(f"{source}: detected hyperparameters are invalid ({e})") from e
    check_shapes(sd, expected_shapes(params), source, f"a compact model with {describe_params(params)}")
    return params


def _scale_and_channels(last_out: int, in_nc: int, source: str) -> tuple[int, int]:
    for channels in dict.fromkeys((in_nc, 3, 4, 1)):
        if last_out % channels == 0:
            root = math.isqrt(last_out // channels)
            if root * root == last_out // channels:
                return root, channels
    raise ModelError(f"{source}: the last conv of this compact model gives {last_out} channels, which is not "
                     "out_nc * scale**2 for out_nc 1, 3 or 4")


def expected_shapes(p: CompactParams) -> dict[str, tuple[int, ...]]:
    """Every key of a compact model with ``p`` and its tensor shape, in network order."""
    shapes: dict[str, tuple[int, ...]] = {}
    cin = p.in_nc
    for i in range(p.num_conv + 1):
        shapes[f"body.{2 * i}.weight"] = (p.nf, cin, 3, 3)
        shapes[f"body.{2 * i}.bias"] = (p.nf,)
        shapes[f"body.{2 * i + 1}.weight"] = (p.nf,)
        cin = p.nf
    last = 2 * p.num_conv + 2
    shapes[f"body.{last}.weight"] = (p.out_nc * p.scale * p.scale, p.nf, 3, 3)
    shapes[f"body.{last}.bias"] = (p.out_nc * p.scale * p.scale,)
    return shapes


def describe_params(p: CompactParams) -> str:
    return f"x{p.scale}, nf={p.nf}, num_conv={p.num_conv}, in_nc={p.in_nc}, out_nc={p.out_nc}"
