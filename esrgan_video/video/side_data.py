"""The video's side data the pipeline does not carry over (pure functions): which kinds an input has, which an
output keeps, and the one notice that names the rest.

FFmpeg hands these out as frame side data (from the bitstream's SEI / OBUs, or copied onto every frame from the
stream's) or as the stream's coded side data (MP4 boxes, Matroska elements). The mastering display, content light
level, display matrix and A/53 captions are kept elsewhere (``metadata.HdrMetadata``, ``set_display_matrix``,
``metadata.with_captions``); what is here the upscaled frames are written without. The first frame's (and the
stream's) are named in one notice before any frame is written; every later frame is surveyed too
(:func:`new_side_data`), and a kind that first appears later gets its own notice when it does, once per output:

- HDR10+ (SMPTE ST 2094-40) dynamic metadata (HEVC SEI, AV1 metadata OBUs, VP9 block additions): kept into libx265
  output (``hdr10plus``), lost in the others'. HDR Vivid (CUVA 005) dynamic metadata: PyAV 19 cannot attach frame
  side data, so no encoder is given it.
- Dolby Vision: its RPU (an HEVC/AV1 NAL of each picture) describes the source's pictures and base layer, and its
  configuration record (``dovi_conf``: MP4 ``dvcC``/``dvvC``, Matroska ``BlockAdditionMapping``) announces it.
- Stereoscopic 3D (H.264/HEVC frame-packing SEI, MP4 ``st3d``, Matroska ``StereoMode``): Matroska output keeps it,
  as the ``stereo_mode`` tag its muxer writes (:func:`stereo_mode`); other muxers are written it only as stream side
  data, which PyAV 19 sets for the display matrix alone.
- Spherical / 360° projection (MP4 ``sv3d``, Matroska ``Projection``): stream side data only, as above.
- SMPTE 12M timecodes (H.264 picture timing / HEVC time code SEI) and MPEG-2 GOP timecodes (one that is not
  00:00:00, FFmpeg's encoder's own). A MOV/MP4 timecode track is the stream's ``timecode`` tag and kept.
- AFD (active format description), ambient viewing environment, 3D reference displays, LCEVC enhancement data,
  film grain parameters (exported only where the decoder does not apply the grain), MPEG-2 pan-scan rectangles
  (ones not all zero: FFmpeg's decoder gives every MPEG-2 frame one), and unregistered user data SEI (other than
  x264's and x265's own version strings, which every file they write carries).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping

from ..errors import listed

__all__ = ["SIDE_DATA_KINDS", "new_side_data", "side_data_kinds", "side_data_lost", "side_data_notice",
           "stereo_mode", "without_since"]

SIDE_DATA_KINDS = {
    "hdr10plus": "HDR10+ dynamic metadata (SMPTE ST 2094-40)",
    "hdr_vivid": "HDR Vivid dynamic metadata (CUVA 005)",
    "dolby_vision": "Dolby Vision metadata (its RPU and configuration record)",
    "stereo3d": "stereoscopic 3D layout",
    "spherical": "spherical (360°) projection",
    "timecode": "SMPTE 12M timecodes",
    "gop_timecode": "MPEG-2 GOP timecodes",
    "afd": "active format description (AFD)",
    "ambient": "ambient viewing environment",
    "3d_displays": "3D reference displays information",
    "lcevc": "LCEVC enhancement data",
    "film_grain": "film grain parameters",
    "panscan": "pan-scan rectangles",
    "user_data": "unregistered user data SEI",
}
"""Each kind of side data the output may lose → what the notice calls it (in this order)."""

_FRAME_TYPES = {
    "DYNAMIC_HDR_PLUS": "hdr10plus", "DYNAMIC_HDR_VIVID": "hdr_vivid", "DOVI_RPU_BUFFER": "dolby_vision",
    "DOVI_METADATA": "dolby_vision", "STEREO3D": "stereo3d", "SPHERICAL": "spherical", "S12M_TIMECODE": "timecode",
    "GOP_TIMECODE": "gop_timecode", "AFD": "afd", "AMBIENT_VIEWING_ENVIRONMENT": "ambient",
    "THREE_D_REFERENCE_DISPLAYS": "3d_displays", "LCEVC": "lcevc", "FILM_GRAIN_PARAMS": "film_grain",
    "PANSCAN": "panscan", "SEI_UNREGISTERED": "user_data",
}
"""FFmpeg's frame side-data types (``av.sidedata.sidedata.Type`` names) → kind."""

_CODED_KEYS = {
    "dynamic_hdr10_plus": "hdr10plus", "dovi_conf": "dolby_vision", "stereo_3d": "stereo3d", "spherical": "spherical",
    "s12m_timecode": "timecode", "afd": "afd", "ambient_viewing_environment": "ambient",
    "3d_reference_displays": "3d_displays", "lcevc": "lcevc",
}
"""PyAV's names of FFmpeg's stream (coded) side-data types → kind."""

ENCODER_INFO_UUIDS = frozenset({
    bytes.fromhex("dc45e9bde6d948b7962cd820d923eeef"),  # x264's version and options
    bytes.fromhex("2ca2de09b51747dbbb55a4fe7fc2fc4e"),  # x265's
})
"""The UUIDs of the unregistered user data SEI x264 and x265 write their version into: no content of the video
(the output's encoder writes its own)."""


def _says_something(kind: str, data: bytes) -> bool:
    """Whether side data ``data`` of ``kind`` holds anything a viewer would lose."""
    if kind == "user_data":
        return data[:16] not in ENCODER_INFO_UUIDS
    if kind == "panscan":
        return any(data)
    if kind == "gop_timecode" and len(data) >= 8:
        # the GOP header's time_code (25 bits): drop_frame, hours (5), minutes (6), marker, seconds (6), pictures
        tc = struct.unpack("<q", data[:8])[0]
        return bool(tc >> 13 & 0x7FF or tc >> 6 & 0x3F)  # not 00:00:00 (FFmpeg's encoder's own: a GOP's count)
    return True


def side_data_kinds(frame: Mapping[str, bytes], coded: Mapping[str, bytes]) -> tuple[str, ...]:
    """The kinds (:data:`SIDE_DATA_KINDS`' keys, in its order) of a stream whose first frame has side data ``frame``
    (by ``Type`` name) and whose stream has coded side data ``coded`` (by PyAV's names)."""
    found = {_FRAME_TYPES[t] for t, data in frame.items()
             if t in _FRAME_TYPES and _says_something(_FRAME_TYPES[t], bytes(data))}
    found |= {_CODED_KEYS[k] for k in coded if k in _CODED_KEYS}
    return tuple(k for k in SIDE_DATA_KINDS if k in found)


def new_side_data(side_data, known: set[str]) -> tuple[str, ...]:
    """The kinds of one decoded frame's side data (PyAV's mapping of ``Type`` → data) not in ``known``, which they
    are added to: what begins after the first frame (HDR10+ or Dolby Vision from a later scene, a timecode or AFD
    added mid-stream, film grain at a later frame). The reader asks this of every frame, so it looks at the types
    present and reads the data of a kind not seen yet only (0.6 µs a frame without side data, 4 µs with one entry, at 1280x720)."""
    new = []
    for t in side_data:
        kind = _FRAME_TYPES.get(t.name)
        if kind is not None and kind not in known and _says_something(kind, bytes(side_data[t])):
            known.add(kind)
            new.append(kind)
    return tuple(new)


STEREO_MODES = {1: ("left_right", "right_left"), 2: ("top_bottom", "bottom_top"),
                4: ("checkerboard_lr", "checkerboard_rl"), 6: ("row_interleaved_lr", "row_interleaved_rl"),
                7: ("col_interleaved_lr", "col_interleaved_rl")}
"""AVStereo3DType (side by side, top and bottom, checkerboard, lines, columns) → Matroska's StereoMode names, as
FFmpeg's Matroska muxer takes them in a ``stereo_mode`` tag: left view first, then inverted (AV_STEREO3D_FLAG_INVERT).
Frame-sequential and quincunx layouts have no StereoMode."""


def stereo_mode(data: bytes | None) -> str | None:
    """The Matroska ``stereo_mode`` tag for AVStereo3D bytes ``data`` (its type and flags), None where it has none."""
    if not data or len(data) < 8:
        return None
    kind, flags = struct.unpack("<ii", data[:8])
    names = STEREO_MODES.get(kind)
    return None if names is None else names[flags & 1]


def side_data_lost(kinds: tuple[str, ...], *, muxer: str, stereo: str | None, hdr10plus: bool = False) \
        -> tuple[str, ...]:
    """The ``kinds`` an output written by FFmpeg's ``muxer`` loses: all but the stereo 3D layout into Matroska
    where it has a StereoMode (``stereo``, :func:`stereo_mode`), and HDR10+ where the encoder is given it
    (``hdr10plus``: libx265, ``hdr10plus.HDR10PLUS_ENCODERS``; its frames of several windows the writer names)."""
    return tuple(k for k in kinds if not (k == "stereo3d" and muxer == "matroska" and stereo)
                 and not (k == "hdr10plus" and hdr10plus))


def side_data_notice(dst, src_name: str, lost: tuple[str, ...], *, since: str | None = None) -> str | None:
    """The one line naming the side data of ``src_name``'s video that output ``dst`` is written without; ``since``:
    where it begins (``"2.040 s"``), for side data the first frame did not have."""
    if not lost:
        return None
    if since is not None:
        src_name = f"{src_name} from {since} on"
    what = [SIDE_DATA_KINDS[k] for k in lost]
    hints = [h for k, h in (("hdr10plus", "libx265 keeps HDR10+"), ("stereo3d", ".mkv keeps the 3D layout"))
             if k in lost]
    hint = f"; {' and '.join(hints)}" if hints else ""
    return (f"{dst}: the {listed(what)} in {src_name} {'is' if len(what) == 1 else 'are'} not kept: the upscaled "
            f"frames are written without {'it' if len(what) == 1 else 'them'}{hint}")


_SINCE = re.compile(r" from [0-9.]+ s on(?= (?:is|are) not kept: the upscaled frames)")


def without_since(msg: str) -> str:
    """A :func:`side_data_notice` with its ``since`` (``from 0.080 s on``) said as ``from a later frame on`` (any
    other line as it is): batch's segments of one file each meet side data that begins after the file's first frame
    at their own first frame with it, each at a time of its own, and the driver gives a file's notices once each by
    their text (a 3-segment file named one AFD twice, 'from 0.080 s on', 'from 0.160 s on')."""
    return _SINCE.sub(" from a later frame on", msg, count=1)
