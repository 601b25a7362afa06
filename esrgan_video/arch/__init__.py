"""Network architectures: the ESRGAN RRDB generator (every variant spandrel 0.4.2 loads) and Real-ESRGAN's
SRVGGNetCompact. Each network keeps its hyperparameters in ``.params``; what callers read about a network
(scale, channels, size multiple, default tile pad, precisions, FLOPs) is its descriptor,
:func:`esrgan_video.models.describe`."""

from .rrdbnet import RRDBNet, RRDBParams
from .srvgg import CompactParams, SRVGGNetCompact

__all__ = ["CompactParams", "RRDBNet", "RRDBParams", "SRVGGNetCompact"]
