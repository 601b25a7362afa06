"""esrgan-video: ESRGAN (RRDB) video upscaling."""

__version__ = "0.1.0"
