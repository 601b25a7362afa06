"""Video I/O with PyAV: native planes in (``reader``), encode + stream copy out (``writer``), encoder format choice
(``encoder_formats``). Plane layouts and size multiples are ``esrgan_video.frames.pixel_formats``' (re-exported here).

No colour conversion happens here: frames travel as the stream's own planes and a ``ColorSpec``.
"""

from ..frames.pixel_formats import plane_layouts, round_size, size_multiple
from .encoder_formats import choose_pix_fmt
from .metadata import HdrMetadata
from .damage import ReadStats
from .reader import DecodedFrame, FrameRun, InputVideo, VideoInfo, open_input
from .writer import OutputVideo, container_suggestion

__all__ = [
    "DecodedFrame",
    "FrameRun",
    "HdrMetadata",
    "InputVideo",
    "OutputVideo",
    "ReadStats",
    "VideoInfo",
    "choose_pix_fmt",
    "container_suggestion",
    "open_input",
    "plane_layouts",
    "round_size",
    "size_multiple",
]
