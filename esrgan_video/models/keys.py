"""State dicts and how to talk about their keys in one-line error messages (shared by the detectors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

StateDict = dict[str, torch.Tensor]


def list_keys(keys: Any, n: int = 6) -> str:
    """``[a, b, c and 4 more]``: the first ``n`` keys and how many were left out."""
    keys = [str(k) for k in keys]
    shown = ", ".join(keys[:n])
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return f"[{shown}{more}]" if keys else "[] (nothing)"


def describe_keys(sd: Mapping[str, Any]) -> str:
    """What a state dict holds, for an error message: its tensor count and, per top-level name, the first
    key and its shape, and a hint when it looks like a discriminator or a classifier."""
    keys = list(sd.keys())
    tops: dict[str, str] = {}
    for k in keys:
        top = k.split(".")[0]
        if top not in tops:
            shape = getattr(sd[k], "shape", None)
            tops[top] = f"{k} {tuple(shape)}" if shape is not None else top
    what = f"found {len(keys)} tensors; the first under each top-level name: {list_keys(tops.values())}"
    if any(h in k for k in keys for h in ("conv0_0", "linear", "classifier", "net_d")):
        what += " (it looks like a discriminator or a classifier)"
    return what
