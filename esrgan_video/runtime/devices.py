"""The one device parser: what ``--device``, ``device=`` and ``--devices`` accept, and what exists here.

``parse_device`` is pure syntax (used where options enter); ``resolve_device`` also checks the machine
(used when a device is opened). Spellings: ``cpu``, ``cuda`` (= ``cuda:0``), ``cuda:N``, an int ``N``
(= ``cuda:N``), ``auto``/None (the first CUDA device if present, else the CPU).
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

from ..errors import BackendError, OptionError

if TYPE_CHECKING:
    import torch

_EXPECTED = "cpu, cuda or cuda:N (or a GPU number)"


def parse_device(value: str | int | torch.device | None, *, option: str = "device") -> str | None:
    """The canonical spelling (``"cpu"`` or ``"cuda:N"``) of a device, or None for auto; OptionError for
    anything else. Pure: does not look at the machine."""
    if value is None:
        return None
    torch = sys.modules.get("torch")  # a torch.device can only come from a process that imported torch
    if torch is not None and isinstance(value, torch.device):
        value = str(value)
    if isinstance(value, bool):
        raise OptionError(option, _EXPECTED, value)
    if isinstance(value, int):
        if value < 0:
            raise OptionError(option, _EXPECTED, value)
        return f"cuda:{value}"
    if not isinstance(value, str):
        raise OptionError(option, _EXPECTED, value)
    text = value.strip().lower()
    if text == "auto":
        return None
    if text == "cpu":
        return "cpu"
    if text.isdigit():
        return f"cuda:{int(text)}"
    m = re.fullmatch(r"cuda(?::(\d+))?", text)
    if m is None:
        raise OptionError(option, _EXPECTED, value)
    return f"cuda:{int(m.group(1) or 0)}"


def parse_devices(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``--devices``: ``"0,1"`` → ``["cuda:0", "cuda:1"]``; ``"cpu,cpu"`` → two CPU workers; None/``"auto"`` →
    every visible GPU, else one CPU worker."""
    if spec is None or spec == "auto":
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [f"cuda:{i}" for i in range(n)] or ["cpu"]
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    out = []
    for item in items:
        dev = parse_device(item, option="--devices") if item != "auto" else None
        if dev is None:
            raise OptionError("--devices", "GPU numbers or cpu/cuda:N separated by commas", item)
        out.append(dev)
    if not out:
        raise OptionError("--devices", "at least one device", spec)
    return out


def resolve_device(value: str | int | torch.device | None, *, cpu_if_no_cuda: bool = False) -> torch.device:
    """The ``torch.device`` to run on: auto → ``cuda:0`` when CUDA is available, else the CPU. A CUDA device
    that is not present raises BackendError (exit 7) — unless ``cpu_if_no_cuda`` and this machine has no CUDA
    at all and the request is ``cuda:0`` (VapourSynth's ``device=0`` default on a CPU-only machine)."""
    import torch

    dev = parse_device(value)
    if dev is None:
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if dev == "cpu":
        return torch.device("cpu")
    index = int(dev.split(":")[1])
    if not torch.cuda.is_available():
        if cpu_if_no_cuda and index == 0:
            return torch.device("cpu")
        raise BackendError(f"device {value!r}: no CUDA GPU is available here; use the CPU (device 'cpu')")
    if index >= torch.cuda.device_count():
        raise BackendError(f"device {value!r}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0..)")
    return torch.device(dev)


def device_kind(value: str | torch.device | None) -> str | None:
    """``"cpu"``, ``"cuda"`` or None (auto) for the runtime layer, which is also called directly (engine builds,
    benchmarks): a bad spelling there is a BackendError, as every runtime failure is."""
    try:
        dev = parse_device(value)
    except OptionError as e:
        raise BackendError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {value!r}") from e
    return None if dev is None else dev.split(":")[0]


def runtime_device(value: str | torch.device | None) -> torch.device:
    """:func:`resolve_device` for a backend: None means the CPU, a bad spelling is a BackendError."""
    device_kind(value)
    return resolve_device("cpu" if value is None else value)


__all__ = ["parse_device", "parse_devices", "resolve_device", "device_kind", "runtime_device"]
