"""Facts from a container's headers, without decoding or reading the packets (cheap: one open).

``pick_video_stream`` is the one rule for which stream is "the video" (the first video stream that is
not cover art), shared by the reader, the packet index and the probes; :class:`Demux` is the one way they (and
the stream copier) read packets up to where a damaged file stops the demuxer; :func:`video_decoder` is the one rule
for which decoder the reader decodes the video with (the stream's own; libvpx for a VP8/VP9 alpha track). ``probe``
is what batch records for a finished output and compares on resume ("it opens with the recorded frame count");
``container duration`` is what batch reads to decide whether splitting a file is worth a keyframe scan. Exact
counts and timestamps of every packet are :mod:`esrgan_video.video.packet_index`'s.
"""

from __future__ import annotations

import functools
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..errors import InputError

__all__ = ["ALPHA_DECODERS", "Demux", "container_duration", "file_key", "gif_transparent", "open_media",
           "pick_video_stream", "probe", "video_decoder"]


def file_key(path: str | os.PathLike) -> tuple[str, int, int]:
    """(resolved path, size, modification time in ns) of the file ``path``: what the answers kept per file (the
    packet index, a GIF's or a palette stream's see-through pixels) are kept under, so a file changed on disk is
    read again. OSError when it cannot be stat'ed."""
    p = Path(path).resolve()
    st = p.stat()
    return str(p), st.st_size, st.st_mtime_ns


def pick_video_stream(path: str | os.PathLike, container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The stream upscaled: the first video stream that is not an attached picture (cover art).

    InputError naming the file and the streams it has when there is none.
    """
    videos = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not videos:
        kinds = ", ".join(f"{s.type} {s.codec_context.name if s.codec_context else '?'}" for s in container.streams)
        raise InputError(f"{path}: has no video stream (it has: {kinds or 'no streams at all'})")
    return videos[0]


ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}
"""The decoders that decode a VP8/VP9 stream's alpha (FFmpeg's libvpx wrappers), by the stream's codec."""


def has_alpha_track(stream) -> bool:
    """Whether the video ``stream`` says it keeps an alpha channel beside its pictures: Matroska/WebM's
    ``AlphaMode`` 1 (FFmpeg's stream tag ``alpha_mode``), the alpha coded in each block's BlockAdditional."""
    return any(k.lower() == "alpha_mode" and str(v).strip() == "1" for k, v in stream.metadata.items())


def video_decoder(stream) -> av.CodecContext:
    """The codec context the video ``stream``'s packets are decoded with (``ctx.decode(packet)``): the stream's own
    (FFmpeg's native decoder), except for a VP8/VP9 stream with an alpha track (:func:`has_alpha_track`). FFmpeg's
    native ``vp8``/``vp9`` decoders ignore the alpha (the frames are yuv420p, the alpha silently lost); its libvpx
    decoders (:data:`ALPHA_DECODERS`) decode it from the packets' side data (yuva420p): a new context of that decoder,
    with the stream's extradata and size. The native decoder stays for every other stream (it is faster), and where
    this FFmpeg has no libvpx decoder. The reader's probe and its reads decode with the same one."""
    native = stream.codec_context
    name = ALPHA_DECODERS.get(native.name if native is not None else None)
    if name is None or not has_alpha_track(stream):
        return native
    try:
        ctx = av.CodecContext.create(name, "r")
    except av.codec.codec.UnknownCodecError:  # an FFmpeg built without libvpx: its own decoder, opaque
        return native
    if native.extradata:
        ctx.extradata = native.extradata
    ctx.width, ctx.height = native.width, native.height
    return ctx


class Demux:
    """The packets of ``streams`` of the input ``container`` in file order (``container.demux(*streams)``), ending
    quietly where the demuxer stops at damaged or truncated data: what was read stands, and :attr:`error` holds
    the demuxer's message (None after a clean end)."""

    def __init__(self, container: av.container.InputContainer, *streams) -> None:
        self._packets = container.demux(*streams)
        self.error: str | None = None

    def __iter__(self) -> Demux:
        return self

    def __next__(self) -> av.Packet:
        try:
            return next(self._packets)
        except av.FFmpegError as e:
            self.error = str(e)
            self._packets = iter(())
            raise StopIteration from None


def open_media(path: str | os.PathLike) -> av.container.InputContainer:
    """``av.open(path)`` for reading, the one way every read of an input opens it (probe, packet index, reader).

    FFmpeg's format probe scores an MPEG transport stream by how many of its packets it sees: a short but valid one
    (2 or 3 frames of a small video, 9 or 10 packets) scores too low, the probe reads on to the end of the file and the
    open fails with "End of file"; a 1-frame MPEG-2 one (8 packets) is taken for a raw MPEG video stream
    (``mpegvideo``), whose decoder then meets the transport headers and flags its one frame corrupt. A file whose
    every packet starts with a sync byte (``damage.transport_layout``: 188, 192 or 204 bytes apart from the start)
    is then opened as ``mpegts``, as FFmpeg does when the probe sees enough of it; anything else opens (or raises)
    as before.
    """
    try:
        container = av.open(str(path), "r")
    except (av.error.EOFError, av.InvalidDataError):
        if not _looks_transport(path):
            raise
    else:
        if container.format.name != "mpegvideo" or not _looks_transport(path):
            return container
        container.close()
    return av.open(str(path), "r", format="mpegts")


def _looks_transport(path: str | os.PathLike) -> bool:
    """Whether ``path`` is, from its first byte, a run of whole MPEG transport packets (sync bytes throughout). The
    answer is kept per file (:func:`file_key`): every open of a raw MPEG video stream (or of a short transport
    stream) asks, and a run opens its input several times (probe, packet index, reads)."""
    try:
        return _looks_transport_of(*file_key(path))
    except OSError:  # not kept: a file that cannot be read now may be later
        return False


@functools.lru_cache(maxsize=32)
def _looks_transport_of(path: str, size: int, mtime_ns: int) -> bool:
    from .damage import transport_layout

    with open(path, "rb") as f:
        head = f.read(1 << 16)
    found = transport_layout(head, first_only=True)
    return found is not None and len(head) >= 3 * found[0]


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    try:
        return open_media(path)
    except (av.FFmpegError, OSError) as e:
        raise InputError(f"{path}: cannot be opened as media ({e})") from e


def gif_transparent(path: str | os.PathLike) -> bool | None:
    """Whether the GIF ``path`` can show a see-through pixel (:func:`_gif_transparent`, told from its blocks); the
    answer is kept per file (its resolved name, size and modification time), so the planner's two askings of one
    run read it once. None when the file is not a GIF or cannot be read."""
    try:
        key = file_key(path)
    except OSError:
        return None
    return _gif_transparent_of(*key)


@functools.lru_cache(maxsize=32)
def _gif_transparent_of(path: str, size: int, mtime_ns: int) -> bool | None:
    return _gif_transparent(path)


def _gif_transparent(path: str) -> bool | None:
    """Whether a GIF can show a see-through pixel as FFmpeg decodes it (every GIF as ``bgra``), told from the file's
    blocks, no picture decoded: its first image sets a transparent colour index (in its Graphic Control Extension),
    or there is no global palette and the first image does not cover the canvas (FFmpeg fills the rest with its
    transparent colour), or a frame is disposed to the background where that background is the transparent colour
    (the frame sets a transparent index, or there is no global palette). A later frame's transparent index over an
    opaque canvas (how encoders such as Pillow store unchanged pixels) shows the frame below: opaque. In doubt
    (a first frame that declares a transparent index it does not use), True. None when the file is not a GIF."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    canvas = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    has_global = bool(data[10] & 0x80)
    i = 13 + ((3 << ((data[10] & 7) + 1)) if has_global else 0)
    first, gce = True, 0  # the packed flags of the Graphic Control Extension that applies to the next image

    def skip_sub_blocks(j: int) -> int:
        while j < len(data) and data[j]:
            j += data[j] + 1
        return j + 1

    try:
        while i < len(data) and data[i] != 0x3B:  # up to the trailer
            if data[i] == 0x21:  # an extension; a GCE's first sub-block: packed flags, delay, transparent index
                if data[i + 1] == 0xF9 and data[i + 2] >= 1:
                    gce = data[i + 3]
                i = skip_sub_blocks(i + 2)
            elif data[i] == 0x2C:  # an image: left, top, width, height, flags, its palette, its LZW data
                box = tuple(int.from_bytes(data[i + k:i + k + 2], "little") for k in (1, 3, 5, 7))
                keyed, disposal = bool(gce & 1), (gce >> 2) & 7
                if first and (keyed or (not has_global and box != (0, 0, *canvas))):
                    return True
                if disposal == 2 and (keyed or not has_global):
                    return True
                first, gce = False, 0
                local = data[i + 9]
                i = skip_sub_blocks(i + 11 + ((3 << ((local & 7) + 1)) if local & 0x80 else 0))
            else:
                return None
    except IndexError:  # a truncated file: what it holds showed nothing see-through
        return False
    return False


def probe(path: str | os.PathLike) -> dict[str, Any]:
    """Codec, size, stream count, and the frame count and durations where the container stores them.

    Header only (no packets read). The keys are what batch journals record (``frames`` is the header's
    frame count, 0 when the container keeps none; durations are in stream / microsecond units, None when
    absent), so two probes compare equal exactly when the headers agree. InputError when ``path`` does not
    open or has no video stream.
    """
    with _open(path) as c:
        v = pick_video_stream(path, c)
        return {
            "codec": v.codec_context.name,
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "frames": int(v.frames or 0),
            "duration": None if v.duration is None else int(v.duration),
            "container_duration": None if c.duration is None else int(c.duration),
            "streams": len(c.streams),
        }


def container_duration(path: str | os.PathLike) -> Fraction | None:
    """The container's duration in seconds from its header, None when it states none or does not open."""
    try:
        with open_media(path) as c:
            return None if c.duration is None else Fraction(c.duration, 1_000_000)
    except (av.FFmpegError, OSError):
        return None
