"""HDR10+ dynamic metadata (SMPTE ST 2094-40) carried from the input's frames into libx265's output.

FFmpeg's decoders give each frame's HDR10+ as ``DYNAMIC_HDR_PLUS`` side data: its ``AVDynamicHDRPlus`` struct, not the
bitstream's bytes. PyAV 19 cannot attach side data to a frame it encodes, so libx265 is never given it; instead the
struct is serialized back to its ITU-T T.35 message by libavutil's own ``av_dynamic_hdr_plus_to_t35`` (the library
that decoded it, PyAV's, called through ctypes) and the writer puts that SEI into the frame's packet
(``metadata.with_sei``), as x265's ``--dhdr10-info`` writes it.

The message is the picture's tone-mapping statistics (its brightest and average light, percentiles of it, a
target display): a uniform upscale keeps them, so they are kept. Except for its processing windows: a message of
more than one window places the others in pixels of the source picture, so it is not kept (:func:`hdr10plus_t35`
gives None) and the writer says so.

``--fit crop`` and ``--fit pad`` change the picture's geometry, and a one-window message is kept through them too:
window 0 is the whole picture and has no corners, ellipse or rotation in ST 2094-40 (those are sent for windows 1
and up only), and the target display's and mastering display's peak-luminance grids describe displays, not the
picture, so nothing in it is a position in the source's pixels. Its statistics stay those of the content (a crop
cuts only the overflow of the fit, a pad adds black bars, as letterboxed masters carry): FFmpeg's crop, pad and
scale filters keep it as well (``DYNAMIC_HDR_PLUS`` is colour-dependent side data to FFmpeg, not size-dependent as
pan-scan and regions of interest are, which those filters drop).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os

import av

from .metadata import t35_sei

__all__ = ["HDR10PLUS_ENCODERS", "HDR10PLUS_T35_HEADER", "hdr10plus_sei", "hdr10plus_t35", "hdr10plus_t35_available"]

HDR10PLUS_ENCODERS = frozenset({"libx265"})
"""The encoders whose packets the writer puts HDR10+ SEI into (HEVC: ST 2094-40's SEI is defined there)."""

HDR10PLUS_T35_HEADER = bytes([0xB5, 0x00, 0x3C, 0x00, 0x01, 0x04])
"""The message's start that ``av_dynamic_hdr_plus_to_t35`` leaves out: country code (USA), terminal provider code
(Samsung, 0x003C), provider-oriented code (1) and application identifier (4)."""


@functools.cache
def _to_t35():
    """libavutil's ``av_dynamic_hdr_plus_to_t35`` and ``av_free``: the copy PyAV loaded (its wheel's ``av.libs`` /
    ``.dylibs``, else the system's), None where neither is found."""
    here = os.path.dirname(av.__file__)
    found = sorted(glob.glob(os.path.join(here, "..", "av.libs", "libavutil*"))
                   + glob.glob(os.path.join(here, ".dylibs", "libavutil*")))
    name = found[0] if found else ctypes.util.find_library("avutil")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        fn, free = lib.av_dynamic_hdr_plus_to_t35, lib.av_free
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8)), ctypes.POINTER(ctypes.c_size_t)]
    fn.restype = ctypes.c_int
    free.argtypes = [ctypes.c_void_p]
    return fn, free


def hdr10plus_t35_available() -> bool:
    """Whether libavutil's serializer was found (:func:`hdr10plus_t35` can give a message)."""
    return _to_t35() is not None


def hdr10plus_t35(side_data: bytes) -> bytes | None:
    """The ST 2094-40 T.35 message of a frame's ``DYNAMIC_HDR_PLUS`` side data (an ``AVDynamicHDRPlus``); None where
    it has other than one processing window (``num_windows``, its third byte: the others are source pixels) or
    libavutil cannot serialize it."""
    serialize = _to_t35()
    if serialize is None or len(side_data) < 4 or side_data[2] != 1:
        return None
    fn, free = serialize
    out, size = ctypes.POINTER(ctypes.c_uint8)(), ctypes.c_size_t()
    if fn(side_data, ctypes.byref(out), ctypes.byref(size)) < 0 or not out:
        return None
    try:
        return HDR10PLUS_T35_HEADER + ctypes.string_at(out, size.value)
    finally:
        free(out)


def hdr10plus_sei(t35: bytes) -> bytes:
    """An HEVC prefix SEI NAL unit (Annex B) of ``user_data_registered_itu_t_t35`` holding ``t35``."""
    return t35_sei(t35, "hevc")
