"""What a read of the video stream lost, and the one line that says so (pure but for reading PyAV's headers).

A damaged input is decoded as far as it goes; nothing is refused and the output is kept. What was lost is
judged once, at the end of a read, against what the **video stream** promised before decoding:

- its exact frame count (MP4/MOV sample tables; Matroska's ``NUMBER_OF_FRAMES`` statistics tag): the file is
  truncated when more than :data:`TRUNCATION_FRAMES` frame is missing;
- else its duration (Matroska's per-track ``DURATION`` tag, or — in containers whose headers state it
  rather than FFmpeg estimating it from the bit rate — the stream header's duration, or the container's
  duration when the video is the file's only timed stream): truncated when the decoded frames end more
  than :data:`TRUNCATION_SECONDS` and more than :data:`TRUNCATION_DURATION_FRAMES` frames before it
  (durations are rounded, count the last frame's display time and may start at the first packet's decode
  time, so a bound of a frame would raise false alarms);
- else, in an MPEG transport stream (no count, no duration), its packets: a file whose size, after the first
  packet, is not a whole number of transport packets (188 bytes; 192 in M2TS, 204 with Reed-Solomon bytes — sniffed
  from the sync bytes, as PyAV does not expose the demuxer's ``ts_packetsize``) was cut inside its last packet
  (:func:`cut_transport_packet`);
- and, promise or not, a demuxer that stops with an error (damaged container structure) marks the read as
  truncated.

Frames the decoder flagged corrupt, packets it refused and packets that gave no frame are counted as lost
(:attr:`ReadStats.lost_frames`). In MPEG-TS and MPEG-PS (:data:`GAP_FORMATS`) the demuxer drops damaged packets
without a word, so there the frames' timestamps are checked too: in a constant-frame-rate stream a gap of *k* frame
steps is *k* − 1 frames missing (:func:`timestamp_gaps`, which judges nothing when the steps are not all whole
multiples of one step — variable frame rate, soft telecine, mixed cadences; a step beyond the discontinuity threshold
of ``video.discont``, 10 s, is a restarted clock, not lost frames, and the reader has mended it before). A raw
H.264/HEVC elementary stream (:data:`RAW_STREAM_FORMATS`) has neither a container index nor timestamps, and its
parser merges or drops damaged NAL units unseen: there the pictures its bytes hold are counted independently
(:func:`raw_stream_pictures`, ``video.nal_count``: start codes, first slices, gaps in the picture order
counts), and the frames lost are those pictures less the frames decoded (the packet counts above merge, split or
miss pictures there; they stand only if the bytes show fewer pictures than decoded).
What no decoder says is not seen: bytes overwritten inside an HEVC or VP9 packet (16 to 64 of them, anywhere in a
2-3 KB picture) decode to a frame without an error, a corrupt flag or a log line at any level, on any threads, with
``err_detect=crccheck+bitstream+buffer+explode`` too (neither stream carries a checksum FFmpeg checks by default), and
no frame goes missing against the packet index; a packet of noise (the first bytes kept) is refused and counted.
:meth:`ReadStats.report` is the one line a user sees, e.g.
``in.mkv ends early: 10 of 25 frames decoded (the file is truncated)``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from .metadata import demuxer_in
from .nal_count import count_pictures_in_file

__all__ = ["GAP_FORMATS", "Promise", "RAW_STREAM_FORMATS", "ReadStats", "TRUNCATION_DURATION_FRAMES",
           "TRUNCATION_FRAMES", "TRUNCATION_SECONDS", "avi_truncated", "cut_transport_packet", "judge_truncation",
           "parse_tag_duration", "raw_stream_pictures", "stream_promise", "timestamp_gaps", "transport_layout"]

TRUNCATION_FRAMES = 1
"""With an exact frame count: a read that ends more than this many frames short is a truncation."""
TRUNCATION_SECONDS = Fraction(1, 5)
"""With only a duration: a read whose last frame ends more than this many seconds (and more than
:data:`TRUNCATION_DURATION_FRAMES` frames) early is a truncation."""
TRUNCATION_DURATION_FRAMES = 2

HEADER_DURATION_FORMATS = ("matroska", "webm", "mov", "mp4", "nut", "ogg", "flv")
"""Containers (FFmpeg demuxer names, any of a comma list) whose stream and file durations come from headers;
for others (MPEG-TS/PS, raw streams, AVI) FFmpeg may estimate them from the bit rate."""

GAP_FORMATS = ("mpegts", "mpeg")
"""Containers (FFmpeg demuxer names) with real presentation timestamps but no frame count or duration, whose
demuxer drops damaged packets silently: lost frames show only as gaps in the timestamps (:func:`timestamp_gaps`)."""
GAP_MIN_STEPS = 8
"""Fewer frame-to-frame steps than this: too few to tell a constant frame rate; no gap is judged."""
GAP_TOLERANCE = Fraction(1, 20)
"""How far (in frame steps) a step may be from a whole number of frame steps and still count as one."""
GAP_REGULAR_SHARE = Fraction(3, 4)
"""The share of steps that must be one frame step for the stream to count as constant frame rate."""
RAW_STREAM_FORMATS = ("h264", "hevc")
"""Raw elementary-stream demuxers (FFmpeg's names, the codecs' too: ``.h264``/``.264``, ``.h265``/``.hevc``): no
frame count, no duration, no timestamps; lost frames are counted from the pictures in the bytes
(:func:`raw_stream_pictures`)."""
TS_PACKET_SIZES = (188, 192, 204)
"""MPEG-TS packet sizes: plain, M2TS/Blu-ray (a 4-byte timestamp first), DVB with 16 Reed-Solomon bytes."""


@dataclass(frozen=True)
class Promise:
    """What the video stream says it holds, read from headers before decoding."""

    frames: int | None = None
    """Exact frame count, when a header or tag states it."""
    seconds: Fraction | None = None
    """Duration in seconds, when a header or tag states it (and no exact count does)."""
    source: str = ""
    """Where it comes from, for messages: ``frame count``, ``NUMBER_OF_FRAMES tag``, ``DURATION tag``, …"""
    cut_packet: int | None = None
    """The file ends inside a transport packet of this many bytes (it was cut short: MPEG-TS)."""


_TAG_DURATION = re.compile(r"\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*")


def parse_tag_duration(text: str | None) -> Fraction | None:
    """A Matroska ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``) in seconds; None when absent or malformed."""
    if not text:
        return None
    m = _TAG_DURATION.fullmatch(text)
    if not m:
        return None
    h, mi, s = m.groups()
    return int(h) * 3600 + int(mi) * 60 + Fraction(s)


def stream_promise(stream, container) -> Promise | None:
    """The :class:`Promise` of PyAV video ``stream`` in ``container`` (headers and tags only; no demuxing)."""
    if stream.frames:
        return Promise(frames=int(stream.frames), source="frame count")
    tags = {k.upper(): v for k, v in dict(stream.metadata).items()}
    n = tags.get("NUMBER_OF_FRAMES")
    if n and n.strip().isdigit() and int(n) > 0:
        return Promise(frames=int(n), source="NUMBER_OF_FRAMES tag")
    seconds = parse_tag_duration(tags.get("DURATION"))
    if seconds:
        return Promise(seconds=seconds, source="DURATION tag")
    demuxer = container.format.name
    if demuxer_in(demuxer, ("mpegts",)):
        cut = cut_transport_packet(getattr(container, "name", None) or "")
        return Promise(source="transport packet size", cut_packet=cut) if cut else None
    if not demuxer_in(demuxer, HEADER_DURATION_FORMATS):
        return None
    if stream.duration and stream.time_base:
        return Promise(seconds=stream.duration * Fraction(stream.time_base), source="stream duration")
    import av

    timed = [s for s in container.streams if s.type in ("video", "audio", "subtitle")
             and not (s.type == "video" and s.disposition & av.stream.Disposition.attached_pic)]
    if container.duration and len(timed) == 1:
        return Promise(seconds=Fraction(container.duration, 1_000_000), source="container duration")
    return None


def judge_truncation(promise: Promise | None, *, frames: int, end_time: Fraction | None, rate: Fraction | None,
                     limit_frames: int | None = None, limit_time: Fraction | None = None) -> tuple[bool, int | None]:
    """(truncated, frames expected) for a read that met the end of the file (pure).

    ``frames``: frames the stream held up to where reading stopped, counted from its start (decoded plus
    lost); ``end_time``: seconds where the last of them ends (its time plus one frame; the caller takes the
    later of stream time and media time, as durations count from either); ``rate``: the
    average frame rate. ``limit_frames``/``limit_time``: the read's ``end`` (frame index or seconds), so a
    trim is only expected to reach that far.
    """
    if promise is None:
        return False, None
    if promise.cut_packet:
        return True, None  # cut inside a packet: truncated, however far the frames reach
    if promise.frames is not None:
        expected = promise.frames
        if limit_frames is not None:
            expected = min(expected, limit_frames)
        if limit_time is not None and rate:
            expected = min(expected, int(limit_time * rate))
        return expected - frames > TRUNCATION_FRAMES, expected
    seconds = promise.seconds
    if seconds is None:
        return False, None
    if limit_time is not None:
        seconds = min(seconds, limit_time)
    if limit_frames is not None and rate:
        seconds = min(seconds, limit_frames / rate)
    expected = round(seconds * rate) if rate else None
    short = seconds - (end_time or 0)
    frame = 1 / rate if rate else 0
    return short > TRUNCATION_SECONDS and short > TRUNCATION_DURATION_FRAMES * frame, expected


def cut_transport_packet(path: str | os.PathLike) -> int | None:
    """The packet size (188, 192 or 204) when the MPEG transport stream ``path`` ends inside a packet; None when
    it ends on a packet boundary or its packets cannot be told (reads the first and the last packet only).

    The size is the spacing of the sync bytes (0x47) from the first one, as FFmpeg's probe finds it; the tail
    counts as a cut packet when it starts with a sync byte where the next packet would (or is too short to reach
    it), so trailing bytes of another kind are not taken for a truncation.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(204 * 12)
            found = transport_layout(head)
            if found is None:
                return None
            packet, first = found
            tail = (size - first) % packet
            if tail == 0:
                return None
            sync_at = _sync_offset(packet)
            if tail <= sync_at:
                return packet
            f.seek(size - tail + sync_at)
            return packet if f.read(1) == b"\x47" else None
    except OSError:
        return None


def _sync_offset(packet: int) -> int:
    """Where a transport packet's sync byte is: after the 4-byte timestamp in M2TS (192), else first."""
    return 4 if packet == 192 else 0


def transport_layout(head: bytes, *, first_only: bool = False) -> tuple[int, int] | None:
    """(packet size, offset of the first whole packet) from the sync bytes at the start of a transport stream: every
    packet-spaced byte of ``head`` from there on is a sync byte (at least two); None when no size fits.
    ``first_only``: only a first packet at offset 0 is looked for (a file that is a transport stream from its first
    byte, ``probe.open_media``'s question), not one that starts part-way into ``head``."""
    for packet in TS_PACKET_SIZES:
        sync_at = _sync_offset(packet)
        for first in range(1 if first_only else packet):
            syncs = range(first + sync_at, len(head), packet)
            if len(syncs) >= 2 and all(head[i] == 0x47 for i in syncs):
                return packet, first
    return None


def raw_stream_pictures(path: str | os.PathLike, demuxer: str) -> int | None:
    """The pictures the raw H.264/HEVC elementary stream ``path`` holds, counted from its bytes in one streaming
    pass (``video.nal_count``: the primary coded pictures whose first slice is there, plus those the picture
    order counts show missing between them); None for any other demuxer (:data:`RAW_STREAM_FORMATS`) or a file that
    cannot be read."""
    codec = next((name for name in demuxer.split(",") if name in RAW_STREAM_FORMATS), None)
    if codec is None:
        return None
    try:
        return count_pictures_in_file(path, codec).expected
    except OSError:
        return None


def avi_truncated(path: str | os.PathLike) -> tuple[int, int] | None:
    """(bytes present, bytes the header declares) when ``path`` is an AVI file shorter than its first ``RIFF``
    chunk says (a cut file); None otherwise."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        return None
    declared = int.from_bytes(head[4:8], "little") + 8
    return (size, declared) if size < declared else None


def timestamp_gaps(pts: Sequence[int], *, max_step: int | None = None) -> tuple[int, int | None]:
    """(frames missing, timestamp where the first missing frame would be) from the presentation timestamps of
    every frame decoded, in order (pure).

    Only a constant-frame-rate stream is judged: at least :data:`GAP_MIN_STEPS` steps, all increasing, at least
    :data:`GAP_REGULAR_SHARE` of them one frame step (within :data:`GAP_TOLERANCE`; 23.976 fps at 90 kHz steps
    3753 and 3754 ticks, both one step of 3753.75), and every other step a whole number *k* ≥ 2 of frame steps
    (within the same tolerance), which counts *k* − 1 frames missing. Anything else — variable frame rate,
    soft telecine (steps of 1 and 1.5 frames), mixed cadences — is (0, None): no false alarm. A step of more than
    ``max_step`` ticks (the discontinuity threshold, ``video.discont``: an edit or a restarted clock, not lost frames)
    is left out: it is neither judged nor counted.
    """
    steps = [b - a for a, b in zip(pts, pts[1:])]
    if max_step is not None:
        keep = [d <= max_step for d in steps]
        pts = [a for a, k in zip(pts, keep) if k]
        steps = [d for d, k in zip(steps, keep) if k]
    if len(steps) < GAP_MIN_STEPS or min(steps) <= 0:
        return 0, None
    median = sorted(steps)[len(steps) // 2]
    tol_n, tol_d = GAP_TOLERANCE.numerator, GAP_TOLERANCE.denominator
    regular = [d for d in steps if tol_d * abs(d - median) <= tol_n * median]
    if len(regular) < GAP_REGULAR_SHARE * len(steps):
        return 0, None
    total, n = sum(regular), len(regular)  # one frame step is total / n (integers: long streams stay cheap)
    missing = 0
    first = None
    for a, d in zip(pts, steps):
        k = (2 * d * n + total) // (2 * total)  # d / step, rounded
        if k < 1 or tol_d * abs(d * n - k * total) > tol_n * total:
            return 0, None
        if k > 1:
            missing += k - 1
            first = first if first is not None else round(a + Fraction(total, n))
    return missing, first


@dataclass(frozen=True)
class ReadStats:
    """What one ``InputVideo.frames()`` run read (returned by it; see ``reader.FrameRun.stats``)."""

    path: Path
    frames: int
    """Frames yielded."""
    decoded: int
    """Frames of the stream decoded up to where reading stopped, counted from its start (a seek skips some
    without decoding them; they count)."""
    lost_frames: int = 0
    """Frames lost to corrupt data: flagged corrupt by the decoder (dropped), packets it refused,
    (progressive video, no seek) packets that gave no frame, (:data:`GAP_FORMATS`) frames missing from the
    timestamps; (:data:`RAW_STREAM_FORMATS`) instead, the pictures the stream's bytes hold less the frames
    decoded."""
    gap_frames: int = 0
    """Of :attr:`lost_frames`, those only the timestamps show (the demuxer dropped their packets)."""
    seeked: bool = False
    """The read started at a keyframe near ``start`` rather than at the file's start."""
    reached_end: bool = False
    """The read stopped at its ``end``, before the end of the file (no truncation is judged then)."""
    truncated: bool = False
    """The file ends before what its video stream promised, or its demuxer stopped with an error."""
    expected: int | None = None
    """Frames the stream promised within the range read (None when it promised nothing)."""
    estimated: bool = False
    """``expected`` comes from a duration (so it is approximate), not an exact count."""
    demux_error: str | None = None
    """The demuxer's message when it stopped with an error."""
    first_loss: str | None = None
    """Where the first corrupt data was met (``"0.120 s"``)."""
    cut_packet: int | None = None
    """The file ends inside a transport packet of this many bytes (MPEG-TS cut short)."""

    @property
    def damaged(self) -> bool:
        """Frames were lost or the file is truncated: the output is kept, but it misses part of the input."""
        return self.truncated or self.lost_frames > 0

    @property
    def name(self) -> str:
        """How the lines about a read name its file: its name (``report``'s line and the reader's timestamp-jump
        notice, told one after the other, name it alike)."""
        return self.path.name if self.path.name else str(self.path)

    def report(self) -> str | None:
        """The one line a user sees about the damage (None when there is none)."""
        if not self.damaged:
            return None
        name = self.name
        parts = []
        if self.truncated:
            have = self.decoded
            if self.expected is not None and self.expected > have:
                of = f"{have} of {'about ' if self.estimated else ''}{self.expected} frames decoded"
            else:
                of = f"{have} frames decoded"
            why = (f"the demuxer stopped at damaged data: {self.demux_error}" if self.demux_error
                   else f"the file is truncated: it ends inside a {self.cut_packet}-byte transport packet"
                   if self.cut_packet else "the file is truncated")
            parts.append(f"{name} ends early: {of} ({why})")
        if self.lost_frames:
            at = f", the first at {self.first_loss}" if self.first_loss else ""
            gaps = ("" if not self.gap_frames else " (gaps in the timestamps)" if self.gap_frames == self.lost_frames
                    else f" ({self.gap_frames} of them gaps in the timestamps)")
            lost = f"{self.lost_frames} frame(s) could not be decoded and were skipped{at}{gaps}"
            parts.append(lost if parts else f"{name}: {lost}")
        return "; ".join(parts)
