"""Facts from a container's headers, without decoding or reading the packets (cheap: one open).

``pick_video_stream`` is the one rule for which stream is "the video" (the first video stream that is
not cover art), shared by the reader, the packet index and the probes; :class:`Demux` is the one way they (and
the stream copier) read packets up to where a damaged file stops the demuxer. ``probe`` is what batch records
for a finished output and compares on resume ("it opens with the recorded frame count"); ``container
duration`` is what batch reads to decide whether splitting a file is worth a keyframe scan. Exact
counts and timestamps of every packet are :mod:`esrgan_video.video.packet_index`'s.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

import av

from ..errors import InputError

__all__ = ["Demux", "container_duration", "pick_video_stream", "probe"]


def pick_video_stream(path: str | os.PathLike, container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The stream upscaled: the first video stream that is not an attached picture (cover art).

    InputError naming the file and the streams it has when there is none.
    """
    videos = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not videos:
        kinds = ", ".join(f"{s.type} {s.codec_context.name if s.codec_context else '?'}" for s in container.streams)
        raise InputError(f"{path}: has no video stream (it has: {kinds or 'no streams at all'})")
    return videos[0]


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


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    try:
        return av.open(str(path), "r")
    except (av.FFmpegError, OSError) as e:
        raise InputError(f"{path}: cannot be opened as media ({e})") from e


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
        with av.open(str(path), "r") as c:
            return None if c.duration is None else Fraction(c.duration, 1_000_000)
    except (av.FFmpegError, OSError):
        return None
