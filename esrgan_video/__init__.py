"""esrgan-video: ESRGAN-family (RRDB) and Real-ESRGAN compact video upscaling.

Public API (imported lazily so ``import esrgan_video`` stays cheap):

- :func:`load_model` — a network (RRDB generator or compact model) from a registry name or a checkpoint file;
  ``esrgan_video.models.describe(model)`` is its descriptor.
- :class:`Upscaler` — frame-level upscaling (numpy or torch frames), thread-safe.
- :func:`upscale_video` — the streaming core: a whole video in, a whole video out.
- :func:`upscale_image` — one still image in, one out (grey and alpha kept where the output format holds them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "load_model": ("esrgan_video.models", "load_model"),
    "Upscaler": ("esrgan_video.upscaler", "Upscaler"),
    "upscale_video": ("esrgan_video.pipeline", "upscale_video"),
    "upscale_image": ("esrgan_video.stills", "upscale_image"),
}

if TYPE_CHECKING:
    from .stills import upscale_image
    from .models import load_model
    from .pipeline import upscale_video
    from .upscaler import Upscaler


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'esrgan_video' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names with the lazy ones (what ``dir()`` and tab completion list) before their first use."""
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["load_model", "Upscaler", "upscale_video", "upscale_image", "__version__"]
