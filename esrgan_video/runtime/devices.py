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


class Device(str):
    """A canonical device spelling (``"cpu"``, ``"cuda:N"``: equal to, hashed, printed and serialised as that
    str) that remembers what was asked for, ``given`` (``0``, ``"cuda"``, ``"1"``), so that an error about the
    device names the user's words, not the spelling options normalised them to (``--device cuda`` was told of
    ``'cuda:0'``). It goes through ``dataclasses.replace``, copies and pickling (batch workers) as it is."""

    given: "str | int"

    def __new__(cls, canonical: str, given: "str | int") -> "Device":
        self = super().__new__(cls, canonical)
        self.given = given
        return self

    def __reduce__(self):
        return (Device, (str(self), self.given))


def asked(value: "str | int | torch.device | None") -> str:
    """How a message names the device ``value``: what the user gave (``'cuda'``, ``0``), also after options
    normalised it (:class:`Device`)."""
    return repr(getattr(value, "given", value))


def parse_device(value: str | int | torch.device | None, *, option: str = "device") -> str | None:
    """The canonical spelling (``"cpu"`` or ``"cuda:N"``) of a device, or None for auto; OptionError for
    anything else. Pure: does not look at the machine. A spelling is returned as a :class:`Device`, which keeps
    what was given for messages."""
    if value is None or isinstance(value, Device):
        return value
    given = value
    torch = sys.modules.get("torch")  # a torch.device can only come from a process that imported torch
    if torch is not None and isinstance(value, torch.device):
        value = str(value)
    if isinstance(value, bool):
        raise OptionError(option, _EXPECTED, value)
    if isinstance(value, int):
        if value < 0:
            raise OptionError(option, _EXPECTED, value)
        return Device(f"cuda:{value}", given)
    if not isinstance(value, str):
        raise OptionError(option, _EXPECTED, value)
    text = value.strip().lower()
    if text == "auto":
        return None
    if text == "cpu":
        return Device("cpu", given)
    if text.isdigit():
        return Device(f"cuda:{int(text)}", given)
    m = re.fullmatch(r"cuda(?::(\d+))?", text)
    if m is None:
        raise OptionError(option, _EXPECTED, value)
    return Device(f"cuda:{int(m.group(1) or 0)}", given)


def parse_devices(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``--devices``: ``"0,1"`` → ``["cuda:0", "cuda:1"]``; ``"cpu,cpu"`` → two CPU workers; None/``"auto"`` →
    every visible GPU, else one CPU worker."""
    if spec is None or spec == "auto":
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [f"cuda:{i}" for i in range(n)] or ["cpu"]
    if isinstance(spec, Device):  # one device, parsed already (``--device``): kept with what was given
        return [spec]
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
        raise BackendError(f"device {asked(value)}: no CUDA GPU is available here; to run on the CPU, ask for the "
                           "device 'cpu'")
    if index >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise BackendError(f"device {asked(value)}: only {n} CUDA device(s) here (cuda:0..cuda:{n - 1})")
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


__all__ = ["Device", "asked", "parse_device", "parse_devices", "resolve_device", "device_kind", "runtime_device"]
