"""Network architectures. Only the ESRGAN RRDB generator lives here."""

from .rrdbnet import RRDBNet, RRDBParams

__all__ = ["RRDBNet", "RRDBParams"]
