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

from ._lazy import lazy_names

__version__ = "0.1.0"

__getattr__, __dir__ = lazy_names(__name__, {
    "load_model": "esrgan_video.models",
    "Upscaler": "esrgan_video.upscaler",
    "upscale_video": "esrgan_video.pipeline",
    "upscale_image": "esrgan_video.stills",
}, globals())

if TYPE_CHECKING:
    from .stills import upscale_image
    from .models import load_model
    from .pipeline import upscale_video
    from .upscaler import Upscaler

__all__ = ["load_model", "Upscaler", "upscale_video", "upscale_image", "__version__"]
