"""Argument checks shared by the entry points :func:`esrgan_video.upscale_video` and
:func:`esrgan_video.upscale_image`: wrong types are refused at the call, by name, before anything is opened."""

from __future__ import annotations

import os
from pathlib import Path

from .options import FIELD_GROUP, GROUPS

_UPSCALER_OWN = ("model", "runtime")
"""The option groups a passed-in ``upscaler=`` brings with it (its model and where/how that runs)."""
_PER_CALL = frozenset({"reuse"})
"""Runtime fields a call may still set beside ``upscaler=`` (``reuse``: per run, see ``pipeline._reuse_given``)."""


def path_arg(name: str, value: object) -> Path:
    """``value`` as a Path, or ``TypeError`` naming the argument: a ``str`` or ``os.PathLike`` of one only (bytes, an
    int file descriptor or None would otherwise fail inside ``Path()`` with Python's own message, or be read as a
    file name)."""
    if isinstance(value, str):
        return Path(value)
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return Path(path)
        value = path
    raise TypeError(f"{name}: expected a str or os.PathLike path, got {type(value).__name__}")


def check_upscaler_options(upscaler: object, flat: dict) -> None:
    """``TypeError`` naming the keywords that ``upscaler=`` would make a call ignore: its model and runtime options
    are its own (``Upscaler(model, runtime, ...)``), so ``model=``, ``tile=``, ``runtime=``... beside it would be
    dropped without a word. ``reuse=`` stays a per-call choice. An ``options`` object beside ``upscaler=`` is batch
    mode's way (the run's options, whose model the upscaler was made from) and is not checked here."""
    if upscaler is None:
        return
    ignored = sorted(k for k in flat if k not in _PER_CALL
                     and (k in _UPSCALER_OWN or (k not in GROUPS and FIELD_GROUP.get(k) in _UPSCALER_OWN)))
    if ignored:
        raise TypeError(f"{', '.join(k + '=' for k in ignored)} would be ignored beside upscaler=, which brings its own "
                        "model and runtime options: give them to Upscaler(...) instead")
