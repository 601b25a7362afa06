"""vsesrgan: ESRGAN/RRDB upscaling for VapourSynth on esrgan-video's core.

    import vapoursynth as vs
    import vsesrgan

    clip = vsesrgan.upscale(clip, model="RealESRGAN_x4plus")

See :func:`vsesrgan.upscale` and docs/vapoursynth.md.
"""

from __future__ import annotations

from esrgan_video import __version__

from .filter import upscale

__all__ = ["upscale", "__version__"]
