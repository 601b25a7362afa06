"""Argument checks shared by the entry points :func:`esrgan_video.upscale_video` and
:func:`esrgan_video.upscale_image`: wrong types are refused at the call, by name, before anything is opened."""

from __future__ import annotations

import os
from pathlib import Path


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
