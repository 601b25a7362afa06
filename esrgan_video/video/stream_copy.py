"""Copy an input's other streams into an output: which streams, how, with what facts, and their packets.

One copier serves the writer (``video.writer.OutputVideo``: a single pass) and the batch join
(``video.segment_join.join_segments``: segments' video remuxed, the source's other streams copied once):

    copier = StreamCopier(out, source, video_index=0, selection=StreamSelection(), t0=..., t1=..., base=...,
                          shift=..., dst=dst, src=src, video_codec="h264", notice=say)
    copier.pump(until)     # before each video packet/frame at media time ``until``: mux what comes before it
    copier.pump(None)      # at the end: the rest

- **Which**: every stream but the upscaled video stream, less what ``StreamSelection`` leaves out
  (``--no-audio``, ``--no-subs``, ``--streams-keep``); other video streams are not copied (only the
  first is upscaled; cover art is, into .mkv and .mp4, the containers that keep it as cover art: elsewhere it is
  left out with a notice); a data stream the container refuses is left out with a notice (a MOV/MP4
  timecode track is never copied: the muxer writes it again from the video stream's timecode tag); any
  other stream the container refuses is an ``OutputError`` naming it and a container that takes it —
  except attachments (fonts) going into MP4/MOV, which cannot hold any: left out with a notice. MPEG-TS
  "takes" more than it holds (a codec without a stream type becomes unreadable private data: FLAC, text
  subtitles), so there a stream counts as refused unless it reads back as what it is (``_mpegts_keeps``).
- **How**: packet for packet, no re-encode — except text subtitles (SubRip, ASS, WebVTT, …) going into
  MP4/MOV, which take only ``mov_text``: they are converted, cue by cue (said once in a notice; cues that overlap
  become samples that do not, each with every line shown then, since mov_text shows one at a time); and,
  the other way, a text subtitle codec another container refuses (``mov_text`` into Matroska) becomes
  SubRip there (WebVTT in WebM, ASS in NUT). Bitmap subtitles (DVD, PGS, DVB) cannot be converted and are refused
  with one line where the container does not take them.
- **Facts**: every stream keeps its metadata (without what muxers regenerate), language, title and
  dispositions (default, forced, hearing impaired, …); :func:`copy_stream_facts` is also what the writer
  uses for the upscaled video stream.
- **Time**: packets are trimmed to ``[t0, t1)`` (media seconds; a subtitle cue that began before ``t0``
  shows from ``t0`` for the rest of its time), moved by ``shift`` seconds, and interleaved with the video
  by time so memory stays bounded. Chapters go through :func:`shifted_chapters` (pure). In MPEG-TS/PS inputs whose
  video timestamps jump (``video.discont``), each copied stream is first moved across its own jump as the video
  was (``discont.StreamMender``), so trimming and interleaving see the mended timeline.
"""

from __future__ import annotations

import functools
import io
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Sequence

import av

from ..errors import OutputError
from .discont import StreamMender, has_discontinuities
from .metadata import DISPOSITIONS_KEPT, demuxer_in, dispositions_lost, mov_language
from .packet_index import read_packet_index
from .probe import Demux, open_media
from .reader import clean_metadata

__all__ = ["MP4_FAMILY", "StreamCopier", "StreamSelection", "advance_timecode", "advanced_timecodes",
           "container_suggestion", "copy_stream_facts", "is_bitmap_subtitle", "is_text_subtitle", "mpegts_holds",
           "shifted_chapters", "stream_selection"]

MP4_FAMILY = ("mp4", "mov", "ipod", "ismv", "3gp", "3g2", "psp", "f4v")
"""FFmpeg muxers of the ISO/QuickTime family: their only text subtitle codec is ``mov_text``."""

_TEXT_SUB = 1 << 17  # AV_CODEC_PROP_TEXT_SUB
_BITMAP_SUB = 1 << 16  # AV_CODEC_PROP_BITMAP_SUB

# Containers to suggest when a stream does not fit, in order of preference: (extension, FFmpeg muxer).
_SUGGEST = ((".mkv", "matroska"), (".mp4", "mp4"), (".mov", "mov"))


def _codec_props(name: str) -> int:
    try:
        return int(av.Codec(name, "r").properties)
    except (ValueError, av.FFmpegError):
        return 0


def is_text_subtitle(codec: str) -> bool:
    """A subtitle codec whose cues are text (SubRip, ASS/SSA, WebVTT, mov_text, …)."""
    return bool(_codec_props(codec) & _TEXT_SUB)


def is_bitmap_subtitle(codec: str) -> bool:
    """A subtitle codec whose cues are pictures (DVD, PGS, DVB, XSUB)."""
    return bool(_codec_props(codec) & _BITMAP_SUB)


@functools.lru_cache(maxsize=64)
def _extension_muxer(name: str) -> str | None:
    probe = io.BytesIO()
    probe.name = name  # PyAV guesses the muxer from a file object's name
    try:
        with av.open(probe, "w") as c:
            return c.format.name
    except (ValueError, av.FFmpegError):
        return None


def extension_muxer(dst: str | Path) -> str | None:
    """The FFmpeg muxer ``dst``'s extension names (``x.mkv``: ``matroska``), or None (no extension, ``-``, one FFmpeg
    knows no muxer for). Nothing is created."""
    suffix = Path(str(dst)).suffix
    return _extension_muxer("x" + suffix.lower()) if suffix and str(dst) != "-" else None


def container_label(dst: str | Path, muxer: str) -> str:
    """How a message names the container of output ``dst`` written by ``muxer``: its extension (``.mkv``); the muxer's
    name without one; a muxer that is not the one the extension names (``--format webm`` for ``x.mkv``) with both,
    so the user knows which to change: ``webm (--format webm, not .mkv)``."""
    suffix = Path(str(dst)).suffix
    if not suffix or str(dst) == "-":
        return muxer
    if muxer and extension_muxer(dst) != muxer:
        return f"{muxer} (--format {muxer}, not {suffix})"
    return suffix


def container_hint(codecs: Sequence[str], dst: str | Path, muxer: str, *, fallback: str | None = None) -> str:
    """``"; use .mkv instead"``: a container that holds ``codecs`` (codec names) where ``dst``'s cannot
    (:func:`container_suggestion`, else ``fallback``; ``""`` for none, or ``dst``'s own extension). With a ``--format``
    that is not the extension's own muxer, the flag to change: ``"; leave out --format webm (.mkv holds it)"`` where
    the extension's container holds them, else ``"; use --format matroska instead"``."""
    suffix = Path(str(dst)).suffix
    own = extension_muxer(dst)
    if suffix and muxer and own is not None and own != muxer:  # --format chose the muxer: change the flag
        if _holds(own, codecs):
            return f"; leave out --format {muxer} ({suffix} holds it)"
        ext = container_suggestion(codecs) or fallback
        return f"; use --format {_extension_muxer('x' + ext) or ext} instead" if ext else ""
    ext = container_suggestion(codecs) or fallback
    return f"; use {ext} instead" if ext and ext != suffix.lower() else ""


def _holds(muxer: str, codecs: Sequence[str]) -> bool:
    """Whether FFmpeg's ``muxer`` takes a stream of each of ``codecs`` (codec names; nothing is written)."""
    try:
        with av.open(io.BytesIO(), "w", format=muxer) as probe:
            for name in codecs:
                probe.add_mux_stream(name)
    except (ValueError, av.FFmpegError):
        return False
    return True


def container_suggestion(codecs: Sequence[str]) -> str | None:
    """The first of .mkv/.mp4/.mov whose muxer accepts every codec in ``codecs`` (codec names), or None."""
    return next((ext for ext, muxer in _SUGGEST if _holds(muxer, codecs)), None)


@dataclass(frozen=True, kw_only=True)
class StreamSelection:
    """Which of the input's other streams go into the output (the upscaled video stream always does)."""

    audio: bool = True
    """Copy audio streams (``--no-audio``: False)."""
    subtitles: bool = True
    """Copy subtitle streams (``--no-subs``: False)."""
    keep: tuple[int, ...] | None = None
    """Only these input stream indices (``--streams-keep 1,3``); None: every stream (less the above)."""

    def wants(self, stream) -> bool:
        """Whether PyAV ``stream`` of the input is to be copied."""
        if self.keep is not None and stream.index not in self.keep:
            return False
        if stream.type == "audio" and not self.audio:
            return False
        if stream.type == "subtitle" and not self.subtitles:
            return False
        return True


def stream_selection(encode) -> StreamSelection:
    """The selection an ``options.EncodeOptions`` asks for (``audio``, ``subtitles``, ``streams_keep``)."""
    return StreamSelection(audio=encode.audio, subtitles=encode.subtitles, keep=encode.streams_keep)


def copy_stream_facts(src, dst_stream, *, metadata: dict[str, str] | None = None, disposition: int | None = None) -> None:
    """Give output stream ``dst_stream`` the metadata (language, title, handler; cleaned of what muxers
    regenerate) and disposition flags of input stream ``src`` (or the ``metadata``/``disposition`` given)."""
    meta = dict(clean_metadata(dict(src.metadata)) if metadata is None else metadata)
    if "name" in meta and "title" not in meta:
        # FFmpeg's MOV/MP4 demuxer gives a track's title (its udta "name" box, which the muxer writes from "title")
        # as "name": into Matroska it became a NAME tag, not the track name, and into MP4/MOV it was dropped
        meta["title"] = meta.pop("name")
    if "language" in meta and _muxer_name(dst_stream) == "mov":
        meta["language"] = mov_language(meta["language"])  # "fre" → "fra": MOV keeps only the one its table has
    dst_stream.metadata.update(meta)
    flags = int(src.disposition) if disposition is None else int(disposition)
    try:
        dst_stream.disposition = av.stream.Disposition(flags)
    except (AttributeError, ValueError, TypeError):
        pass  # a PyAV without settable dispositions: the muxer's defaults apply


_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")


def advance_timecode(tc: str, frames: int, rate: Fraction) -> str | None:
    """SMPTE timecode ``tc`` (``HH:MM:SS:FF``; drop-frame with ``;``, or FFmpeg's ``.``/``,``) ``frames`` frames
    later at frame rate ``rate``, in the same notation, wrapping at 24 hours as FFmpeg does; None when ``tc`` is no
    timecode of that rate (a frame number past its rate, drop-frame at a rate that is not a multiple of 29.97).

    Frames count at the nominal rate (30 for 29.97 fps); drop-frame (29.97 and 59.94 fps) skips frame numbers 0 and
    1 (0-3 at 59.94) of every minute but every tenth, so ``00:00:59;29`` + 1 is ``00:01:00;02``: FFmpeg's
    ``av_timecode_init_from_string`` and ``av_timecode_adjust_ntsc_framenum2``."""
    m = _TIMECODE.match(tc.strip())
    if m is None or not rate:
        return None
    hh, mm, ss, sep, ff = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    fps = math.floor(Fraction(rate) + Fraction(1, 2))
    drop = sep != ":"
    if fps < 1 or ff >= fps or mm > 59 or ss > 59 or (drop and fps % 30):
        return None
    n = (hh * 3600 + mm * 60 + ss) * fps + ff
    dropped = fps // 30 * 2 if drop else 0  # frame numbers skipped a minute
    if drop:
        minutes = 60 * hh + mm
        if ss == 0 and mm % 10 and ff < dropped:
            return None  # a frame number drop-frame skips
        n -= dropped * (minutes - minutes // 10)
    n = (n + frames) % (24 * 3600 * fps - (dropped * 9 * 6 * 24 if drop else 0))
    if drop:  # av_timecode_adjust_ntsc_framenum2: the frame count back to drop-frame numbers
        per10 = fps // 30 * 17982
        d, r = divmod(n, per10)
        n += 9 * dropped * d + dropped * (max(r - dropped, 0) // (per10 // 10))
    ff = n % fps
    ss = n // fps % 60
    mm = n // (fps * 60) % 60
    hh = n // (fps * 3600) % 24
    return f"{hh:02d}:{mm:02d}:{ss:02d}{sep}{ff:0{len(m[5])}d}"


def advanced_timecodes(metadata: dict[str, str], frames: int, rate: Fraction | None) -> dict[str, str]:
    """``metadata`` with its ``timecode`` tag (any case) ``frames`` frames later (:func:`advance_timecode`): a trim
    that starts ``frames`` frames in starts at that timecode. Unchanged without a tag, a rate, or frames skipped,
    and for a tag that is no timecode of ``rate``."""
    if frames <= 0 or not rate:
        return metadata
    out = dict(metadata)
    for key, value in metadata.items():
        if key.lower() == "timecode":
            later = advance_timecode(value, frames, Fraction(rate))
            if later is not None:
                out[key] = later
    return out


_TIMECODE_KEPT = frozenset({"matroska", "webm", "mov", "mp4", "nut"})
"""Muxers that keep the video stream's ``timecode`` tag (MOV/MP4 as a timecode track, Matroska as a TIMECODE tag)."""


def _is_timecode_track(st, source) -> bool:
    """Whether data stream ``st`` of ``source`` is a MOV/MP4 timecode (``tmcd``) track.

    FFmpeg's MOV demuxer gives such a track's start timecode as a ``timecode`` tag, on the track and on the video
    stream it belongs to; from that tag on the output's video stream the MOV/MP4 muxer writes a timecode track of
    its own and the Matroska muxer a TIMECODE tag. The track itself cannot be copied: the MOV/MP4 muxer fails on
    the copy when the file is finished (EINVAL), and Matroska and MP4 refuse data streams."""
    return demuxer_in(source.format.name, ("mov",)) and "timecode" in st.metadata


def _muxer_takes(fmt: str, st) -> bool:
    """Whether a muxer of format ``fmt`` writes a header with input stream ``st`` copied into it. FFmpeg's Matroska
    and MP4 muxers accept a data stream when it is added and refuse it only when the header is written."""
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as probe:
            probe.add_stream_from_template(st)
            probe.start_encoding()
    except (ValueError, av.FFmpegError):
        return False
    return True


def _mpegts_reads_back(add: Callable, kind: str, *, m2ts: bool) -> bool:
    """Whether the stream ``add(probe)`` adds to an MPEG-TS muxer reads back as a ``kind`` stream (and, for
    ``m2ts``, whether M2TS mode takes it). FFmpeg's MPEG-TS muxer writes a codec it has no stream type for as
    private data, which reads back as a data stream; in M2TS mode (FFmpeg's for a ``.m2ts`` name) it refuses
    it when the header is written. Probed with one dummy packet: the stream type read back is the PMT's, not the
    payload's; a muxer that checks the payload (H.264's start codes, AAC's ADTS header) has a stream type for the
    codec."""
    try:
        if m2ts:
            with av.open(io.BytesIO(), "w", format="mpegts", options={"mpegts_m2ts_mode": "1"}) as probe:
                add(probe)
                probe.start_encoding()
        buf = io.BytesIO()
        probe = av.open(buf, "w", format="mpegts")
        try:
            out_st = add(probe)
            probe.start_encoding()
            pkt = av.Packet(bytes(16))
            pkt.stream, pkt.time_base, pkt.pts, pkt.dts = out_st, Fraction(1, 90000), 0, 0
            try:
                probe.mux(pkt)
            except (ValueError, av.FFmpegError):
                return True  # the payload is checked: a codec with a stream type
        finally:
            try:
                probe.close()
            except (ValueError, av.FFmpegError):
                pass
        with av.open(io.BytesIO(buf.getvalue()), format="mpegts") as back:
            return [s.type for s in back.streams] == [kind]
    except (ValueError, av.FFmpegError):
        return False


def _mpegts_keeps(st, *, m2ts: bool) -> bool:
    """Whether FFmpeg's MPEG-TS muxer writes input stream ``st`` as what it is (FLAC audio and every text subtitle
    codec it writes as private data: the track was lost without a word)."""
    return _mpegts_reads_back(lambda probe: probe.add_stream_from_template(st), st.type, m2ts=m2ts)


@functools.lru_cache(maxsize=64)
def mpegts_holds(codec: str, *, m2ts: bool = False) -> bool:
    """Whether an MPEG-TS file (M2TS with ``m2ts``) holds video of ``codec`` (a codec name: ``h264``, ``vp9``,
    ``ffv1``, ...) as video, not as unreadable private data: FFmpeg's MPEG-TS muxer accepts any codec."""
    return _mpegts_reads_back(lambda probe: probe.add_mux_stream(codec), "video", m2ts=m2ts)


def _holding(tb: Fraction, shift: Fraction) -> tuple[Fraction, int]:
    """The time base to mux a stream of time base ``tb`` in, one that holds ``shift`` too, and how many of its ticks
    make one of ``tb`` (per stream, pure). An AVI's audio ticks once per packet (MP2/MP3 at 48 kHz: 24 ms, 3/125): the
    trim's shift rounded to that moved the audio up to half a packet against the video. ``(tb, 1)`` where ``tb`` holds
    the shift (or the finer base would not fit FFmpeg's 32-bit time base)."""
    if (shift / tb).denominator == 1:
        return tb, 1
    fine = Fraction(math.gcd(tb.numerator * shift.denominator, shift.numerator * tb.denominator),
                    tb.denominator * shift.denominator)
    if fine.denominator >= 1 << 31:
        return tb, 1
    return fine, int(tb / fine)


@dataclass(frozen=True)
class _StreamClock:
    """What the copier needs of one copied stream's time, worked out once (not per packet)."""

    tb: Fraction
    """The input stream's time base (its packets')."""
    out_tb: Fraction
    """The time base its packets are muxed in (:func:`_holding`)."""
    scale: int
    """Ticks of ``out_tb`` per tick of ``tb``."""
    shift: int
    """The common shift in ticks of ``out_tb``."""


_COVER_KEPT = ("matroska", "mp4")
"""Muxers whose files keep cover art (an attached picture) as cover art, measured (FFmpeg 7): Matroska as an attachment
(``_cover_attachment``), MP4 as its ``covr``. WebM, MPEG-TS, FLV, 3GP and FFmpeg's .m4v/.m4a refuse the stream, MOV
drops it without a word, AVI and NUT keep it as a plain second video stream (no cover flag)."""

_COVER_TYPES = {"mjpeg": ("image/jpeg", ".jpg"), "png": ("image/png", ".png")}
"""Cover art codecs → (MIME type, file extension) of the Matroska attachment they become."""


def _muxer_name(stream) -> str | None:
    try:
        return stream.container.format.name
    except AttributeError:
        return None


def shifted_chapters(chapters: Iterable[dict], *, base: Fraction, t0: Fraction | None, t1: Fraction | None,
                     shift: Fraction) -> list[dict]:
    """PyAV chapter dicts for the output (pure): chapters outside the media-time window ``[t0, t1)`` are left
    out, the last one is cut at ``t1``, and all move by ``shift`` seconds on the stream clock (``base`` is the
    input's start time, from which media time counts)."""
    out = []
    for ch in chapters:
        tb = Fraction(ch["time_base"])
        s, e = ch["start"] * tb - base, ch["end"] * tb - base
        if t1 is not None and s >= t1 or t0 is not None and e <= t0:
            continue
        if t1 is not None:
            e = min(e, t1)
        s -= shift - base
        e -= shift - base
        out.append({"id": ch["id"], "start": max(0, round(s / tb)), "end": round(e / tb),
                    "time_base": ch["time_base"], "metadata": dict(ch.get("metadata") or {})})
    return out


DEFAULT_ASS_HEADER = (
    b"[Script Info]\r\nScriptType: v4.00+\r\nPlayResX: 384\r\nPlayResY: 288\r\nScaledBorderAndShadow: yes\r\n\r\n"
    b"[V4+ Styles]\r\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
    b"Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
    b"MarginL, MarginR, MarginV, Encoding\r\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,"
    b"1,0,2,10,10,10,1\r\n\r\n[Events]\r\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, "
    b"Effect, Text\r\n")
"""The ASS header FFmpeg's text decoders make by default (ff_ass_subtitle_header_default's), for a text track that
has none of its own."""


class _TextSubtitleConverter:
    """Re-encodes the cues of a text subtitle stream in the output stream's text codec (``mov_text`` for
    MP4/MOV, SubRip or WebVTT elsewhere), through the ASS dialogue FFmpeg's text decoders give.

    ``mov_text`` shows one sample at a time, each until the next begins: cues that overlap become samples that do
    not, each with the text of every cue shown then (one line each). A cue that begins while another is shown ends
    that one's sample, and where the earlier cue outlives the later one a sample of what is still shown follows
    (:meth:`due`, which the copier calls as time passes: it cannot know before then whether another cue begins
    first). Cues that do not overlap come out one for one, as they came."""

    def __init__(self, src_stream, out_stream) -> None:
        self.src = src_stream
        self.out = out_stream
        ctx = src_stream.codec_context
        if not ctx.is_open:
            ctx.open()  # the decoder makes its ASS header when it opens; the text encoders need it to open
        # An ASS/SSA track without its header (a Matroska one with no CodecPrivate) gives none, and mov_text, SubRip
        # and WebVTT then refused to open ("cannot set up the libx264 encoder"): FFmpeg's default header stands in.
        out_stream.codec_context.subtitle_header = ctx.subtitle_header or DEFAULT_ASS_HEADER
        self.flatten = out_stream.codec_context.name == "mov_text"
        self.tb = Fraction(src_stream.time_base)
        self._shown: list[tuple[int, bytes]] = []  # (end, ASS line) of the cues shown now, by start (mov_text)

    @staticmethod
    def _joined(lines: Sequence[bytes]) -> bytes:
        text = lines[0]
        for more in lines[1:]:  # shown together: one cue, one line each
            text += b"\\N" + more.split(b",", 8)[-1]
        return text

    def _sample(self, text: bytes, pts: int, dts: int, duration: int) -> av.Packet:
        sub = av.subtitles.subtitle.SubtitleSet.create(text=text, start=0, end=duration, pts=pts)
        out = self.out.codec_context.encode_subtitle(sub)
        out.time_base = self.tb
        out.pts, out.dts, out.duration = pts, dts, duration
        return out

    def _still_shown(self, pts: int, dts: int) -> av.Packet:
        """The sample of every cue shown now (:attr:`_shown`) from ``pts`` until the first of them ends."""
        return self._sample(self._joined([t for _, t in self._shown]), pts, dts,
                            min(e for e, _ in self._shown) - pts)

    def convert(self, pkt: av.Packet) -> list[av.Packet]:
        """The output samples for cue ``pkt`` (none for an undecodable or empty one), in time order."""
        ctx = self.src.codec_context
        try:
            cues = ctx.decode(pkt)
        except av.FFmpegError:
            return []  # an undecodable cue is dropped, as a player would
        lines = [c.ass for c in cues if getattr(c, "ass", None)]
        if not lines:
            return []
        line = self._joined(lines)
        duration = int(pkt.duration or 0)
        pts = int(pkt.pts or 0)
        dts = pkt.dts if pkt.dts is not None else pkt.pts
        if not self.flatten:
            return [self._sample(line, pts, dts, duration)]
        out = self.due(pts * self.tb)
        self._shown = [c for c in self._shown if c[0] > pts]
        if duration <= 0:  # shown for no time: as it is, and what was shown goes on at once
            out.append(self._sample(line, pts, dts, 0))
            if self._shown:
                out.append(self._still_shown(pts, pts))
            return out
        self._shown.append((pts + duration, line))
        out.append(self._still_shown(pts, dts))
        return out

    def due(self, before: Fraction | None) -> list[av.Packet]:
        """The samples of what is still shown where a cue ends that others outlive, at each end before ``before``
        (seconds on the input stream's clock; None: every one left); empty unless cues overlap."""
        out = []
        while self._shown:
            end = min(e for e, _ in self._shown)
            if before is not None and end * self.tb >= before:
                break
            self._shown = [c for c in self._shown if c[0] > end]
            if self._shown:
                out.append(self._still_shown(end, end))
        return out


class StreamCopier:
    """Copies the selected streams of the input container ``source`` into the output container ``out``.

    Streams are added to ``out`` here (before its header is written). ``t0``/``t1`` trim (media seconds,
    None = open), ``base`` is the input's start time (media time counts from it), ``shift`` the seconds
    every copied stream moves by (the writer's common shift). ``dst``/``src`` name the files in messages;
    ``video_codec`` (the output video's codec) is part of the container suggestion when a stream is refused;
    ``notice`` receives one-line notes (streams left out, subtitles converted).
    """

    def __init__(self, out, source, *, video_index: int, selection: StreamSelection = StreamSelection(),
                 t0: Fraction | None = None, t1: Fraction | None = None, base: Fraction = Fraction(0),
                 shift: Fraction = Fraction(0), dst: Path, src: Path, video_codec: str,
                 notice: Callable[[str], None]) -> None:
        self.out = out
        self.source = source
        self.t0, self.t1, self.base, self.shift = t0, t1, base, shift
        video = next((s for s in out.streams if s.type == "video"), None)
        if video is not None and video.time_base:  # the shift the upscaled video got, in whole ticks of its time
            vtb = Fraction(video.time_base)        # base: every stream moves by that (an AVI's 1/25: up to 20 ms)
            self.shift = round(shift / vtb) * vtb
        self.dst, self.src = Path(dst), Path(src)
        self.video_codec = video_codec
        self.notice = notice
        self.copied_packets = 0
        """Packets of the other streams handed to the muxer so far."""
        self._map: dict[int, av.stream.Stream] = {}
        self._convert: dict[int, _TextSubtitleConverter] = {}
        self._gap_fill: dict[int, bool] = {}
        self._pending: av.Packet | None = None
        fmt = out.format.name
        mp4 = fmt in MP4_FAMILY
        converted = []
        copied = []
        for st in source.streams:
            if st.index == video_index or not selection.wants(st):
                continue
            if st.type == "video" and fmt == "matroska" and self._cover_attachment(st):
                continue  # cover art into Matroska: an attachment again, not a video track
            if st.type == "video" and not (st.disposition & av.stream.Disposition.attached_pic):
                notice(f"{self.src}: video stream #{st.index} is not copied (only the first video stream is upscaled)")
                continue
            if st.type == "video" and (fmt not in _COVER_KEPT or not _muxer_takes(fmt, st)):
                # cover art where it has no place: refused (WebM, MPEG-TS, FLV, 3GP), dropped without a word (MOV),
                # or a plain second video stream (AVI, NUT)
                cname = st.codec_context.name if st.codec_context is not None else "picture"
                notice(f"{self.src}: the cover art (stream #{st.index}, {cname}) cannot go into "
                       f"{self.container} files and is not copied (.mkv and .mp4 keep it)")
                continue
            if st.type == "data" and st.discard == av.stream.Discard.all:
                continue  # the demuxer's own: MP4/MOV's chapter text track (the chapters are copied as chapters)
            if st.type == "data" and _is_timecode_track(st, source):
                if fmt not in _TIMECODE_KEPT:  # elsewhere it is the video stream's "timecode" tag, which is copied
                    notice(f"{self.src}: the timecode {st.metadata['timecode']} (data stream #{st.index}) is not "
                           f"kept: {self.container} files have no place for it (.mkv, .mov and .mp4 keep it)")
                continue
            cname = st.codec_context.name if st.codec_context is not None else st.type
            if st.type == "attachment" and mp4:
                name = st.metadata.get("filename") or f"#{st.index}"
                notice(f"{self.src}: attachment {name} (stream #{st.index}) cannot go into {self.container} "
                       "files and is not copied (Matroska keeps attachments)")
                continue
            if st.type == "subtitle" and mp4 and cname != "mov_text":
                if is_bitmap_subtitle(cname):
                    raise OutputError(f"{self.dst}: the {self.container} container cannot hold the bitmap "
                                      f"subtitle stream #{st.index} ({cname}), and picture subtitles cannot be "
                                      f"turned into text; use .mkv, or leave subtitles out with --no-subs")
                if is_text_subtitle(cname):
                    self._add_converted(st, "mov_text")
                    self._gap_fill[st.index] = True
                    converted.append(f"#{st.index} ({cname})")
                    copied.append(st)
                    continue
            try:
                if (st.type == "data" or st.type == "subtitle" and not mp4) and not _muxer_takes(fmt, st):
                    raise ValueError(f"{fmt} refuses the stream when its header is written")  # NUT: mov_text
                if fmt == "mpegts" and not _mpegts_keeps(st, m2ts=self.dst.suffix.lower() == ".m2ts"):
                    raise ValueError(f"{fmt} writes the stream as private data, or refuses it")
                out_st = out.add_stream_from_template(st)
            except (ValueError, av.FFmpegError) as e:
                if st.type == "subtitle" and is_text_subtitle(cname) and not mp4 and fmt != "mpegts":  # (TS: none)
                    for target in ("webvtt",) if fmt == "webm" else ("subrip", "ass"):  # NUT takes only ASS
                        try:
                            self._add_converted(st, target)
                            break
                        except (ValueError, av.FFmpegError):
                            continue
                    else:
                        raise OutputError(self.refusal(cname, st.type, st.index)) from e
                    notice(f"{self.dst}: text subtitle stream #{st.index} ({cname}) converted to {target} (the "
                           f"{self.container} container does not take {cname})")
                    copied.append(st)
                    continue
                if st.type == "data":
                    notice(f"{self.src}: data stream #{st.index} ({cname}) cannot go into "
                           f"{self.container} files and is not copied")
                    continue
                raise OutputError(self.refusal(cname, st.type, st.index)) from e
            copy_stream_facts(st, out_st)
            self._map[st.index] = out_st
            self._gap_fill[st.index] = cname == "mov_text" and mp4
            copied.append(st)
        if converted:
            notice(f"{self.dst}: text subtitle stream{'s' if len(converted) > 1 else ''} {', '.join(converted)} "
                   f"converted to mov_text (the only subtitle codec {self.container} files take)")
        lost = {st.index: names for st in [source.streams[video_index], *copied]
                if (names := dispositions_lost(int(st.disposition), fmt))}
        if lost:  # the muxer drops them without a word
            mkv = fmt != "matroska" and {n for names in lost.values() for n in names} <= DISPOSITIONS_KEPT["matroska"]
            notice(f"{self.dst}: dispositions the {self.container} container cannot store are not written: "
                   + "; ".join(f"{', '.join(names)} (#{i})" for i, names in lost.items())
                   + (" (.mkv keeps them)" if mkv else ""))
        self._flattening = [i for i, conv in self._convert.items() if conv.flatten]
        """The input streams converted to mov_text, whose overlapping cues are flattened (``_TextSubtitleConverter``)."""
        self._demux = Demux(source, *copied) if copied else None
        self._clocks: dict[int, _StreamClock] = {}
        for st in copied:
            tb = Fraction(st.time_base)
            out_tb, scale = _holding(tb, self.shift)
            self._clocks[st.index] = _StreamClock(tb, out_tb, scale, round(self.shift / out_tb))
        for index in self._flattening:
            self._map[index].time_base = self._text_time_base(self._clocks[index].out_tb)
        self._menders: dict[int, StreamMender] = {}
        if copied and has_discontinuities(source.format.name):
            jumps = read_packet_index(self.src, video_index).jumps
            if jumps:  # the video's timeline was mended: each copied stream follows it across its own jump
                vtb = Fraction(source.streams[video_index].time_base)
                self._menders = {st.index: StreamMender([j.offset * vtb for j in jumps]) for st in copied}

    def _text_time_base(self, tb: Fraction) -> Fraction:
        """A time base for a mov_text track whose packets come in time base ``tb``: ``tb`` split into as many ticks as
        make its ticks a second at least those of every other stream of the output.

        FFmpeg's MP4/MOV muxer ends a text sample (writes an empty one at the track's end) when any packet comes whose
        dts, in its own stream's ticks, is past the text track's end in the text track's ticks. A 1/1000 text track
        beside 1/12800 video (or 48 kHz audio) was ended long before its time: a cue that began while the one before
        was still shown came after that end and was moved past it (0.1 s → 0.301 s). With ticks at least as fine as
        every other stream's, the end comes no earlier than its time."""
        finest = 1000
        for st in self.out.streams:
            den = Fraction(st.time_base).denominator if st.time_base else 0
            if st.type == "video":
                while 0 < den < 10000:  # the muxer's video timescale: the time base's, doubled up to 10000 or more
                    den *= 2
            elif st.type == "audio":
                den = max(den, st.codec_context.sample_rate or 0)
            finest = max(finest, den)
        split = max(1, math.ceil(finest * tb))
        return tb / split if (tb / split).denominator < 1 << 31 else tb

    def _cover_attachment(self, st) -> bool:
        """Add the cover art (attached picture) stream ``st`` to the Matroska output as the attachment Matroska keeps
        it as; whether it did. FFmpeg's Matroska muxer writes an attached-picture stream as a plain video track
        (its one picture, no cover flag: a cover.jpg attachment came out as a second video stream)."""
        if not st.disposition & av.stream.Disposition.attached_pic or st.codec_context is None:
            return False
        kind = _COVER_TYPES.get(st.codec_context.name)
        if kind is None:
            return False
        data = b""
        with open_media(self.src) as c:
            for pkt in Demux(c, c.streams[st.index]):
                data = bytes(pkt)
                if data:
                    break
        if not data:
            return False
        mimetype, ext = kind
        self.out.add_attachment(st.metadata.get("filename") or f"cover{ext}", st.metadata.get("mimetype") or mimetype,
                                data)
        return True

    def _add_converted(self, st, codec: str) -> None:
        out_st = self.out.add_stream(codec)
        out_st.time_base = st.time_base
        copy_stream_facts(st, out_st)
        self._map[st.index] = out_st
        self._convert[st.index] = _TextSubtitleConverter(st, out_st)

    def refusal(self, codec: str, kind: str, index: int | None = None) -> str:
        """The one line for a stream the output container cannot hold, with a container that can."""
        what = f"{kind} stream #{index} ({codec})" if index is not None else f"{codec} {kind}"
        codecs = [codec, self.video_codec] if index is not None else [codec]
        hint = container_hint(codecs, self.dst, self.out.format.name)
        return f"{self.dst}: the {self.container} container cannot hold the {what}{hint}"

    def header_culprit(self) -> str | None:
        """When the output's header cannot be written: the refusal line for the first copied stream that a muxer of
        the same format cannot take on its own (FFmpeg accepts some streams when added and refuses them only when
        the header is written, e.g. FLAC audio or font attachments in MOV); None when none is to blame."""
        fmt = self.out.format.name
        for index in self._map:
            st = self.source.streams[index]
            if index in self._convert:
                continue
            try:
                with av.open(io.BytesIO(), "w", format=fmt) as probe:
                    probe.add_stream_from_template(st)
                    probe.start_encoding()
            except (ValueError, av.FFmpegError):
                cname = st.codec_context.name if st.codec_context is not None else st.type
                return self.refusal(cname, st.type, index)
        return None

    @property
    def container(self) -> str:
        """The output container as messages name it (:func:`container_label`): the file's extension, else the
        muxer's name; a ``--format`` that is not the extension's own, with both."""
        return container_label(self.dst, self.out.format.name)

    @property
    def streams(self) -> int:
        """How many streams are copied."""
        return len(self._map)

    def pump(self, until: Fraction | None) -> None:
        """Mux copied packets whose time (media seconds) is at or before ``until`` (all when None)."""
        self._pump(until)
        if self._flattening:  # what overlapping cues still show, up to the time reached
            self._mux_due(None if until is None else until + self.base)

    def _pump(self, until: Fraction | None) -> None:
        while self._demux is not None:
            pkt = self._pending
            if pkt is None:
                pkt = next(self._demux, None)
                if pkt is None:
                    if self._demux.error is not None:  # damaged tail of the input: what was copied stands
                        self.notice(f"{self.src}: stopped copying other streams at a damaged part "
                                    f"({self._demux.error})")
                    self._demux = None
                    return
                if pkt.size == 0 and pkt.pts is None and pkt.dts is None:
                    continue  # demuxer flush packet
                mender = self._menders.get(pkt.stream_index)
                if mender is not None:
                    self._mend(pkt, mender, self._clocks[pkt.stream_index].tb)
            ts = pkt.dts if pkt.dts is not None else pkt.pts
            clock = self._clocks[pkt.stream_index]
            if until is not None and ts is not None and ts * clock.tb - self.base > until:
                self._pending = pkt
                return
            self._pending = None
            self._copy(pkt, clock)

    @staticmethod
    def _mend(pkt: av.Packet, mender: StreamMender, tb: Fraction) -> None:
        """Move ``pkt`` (its stream's time base ``tb``) across the input's timestamp jumps (``video.discont``), as
        the video was moved."""
        ts = pkt.dts if pkt.dts is not None else pkt.pts
        shift = mender.fix(None if ts is None else ts * tb, (pkt.duration or 0) * tb)
        ticks = round(shift / tb)
        if ticks:
            if pkt.pts is not None:
                pkt.pts += ticks
            if pkt.dts is not None:
                pkt.dts += ticks

    def _copy(self, pkt: av.Packet, clock: _StreamClock) -> None:
        index = pkt.stream_index
        tb = clock.tb
        if pkt.size == 2 and self._gap_fill.get(index) and bytes(pkt) == b"\x00\x00":
            return  # an empty mov_text sample between cues: the MP4/MOV muxer writes its own
        start = pkt.pts if pkt.pts is not None else pkt.dts
        if start is not None:
            t = start * tb - self.base
            dur = (pkt.duration or 0) * tb
            if self.t1 is not None and t >= self.t1:
                return
            if self.t0 is not None and (t + dur <= self.t0 if dur else t < self.t0):
                return
            if self.t0 is not None and t < self.t0 and pkt.stream.type in ("subtitle", "data"):
                # A cue that started before the cut shows from the cut for the rest of its time. (Audio keeps
                # its own timing: a slightly negative first timestamp, which the muxer offsets for all streams.)
                cut = round((self.t0 + self.base) / tb)
                pkt.duration = pkt.duration - (cut - start)
                if pkt.dts is not None:
                    pkt.dts += cut - start
                pkt.pts = cut
        if self._flattening and start is not None:
            self._mux_due(start * tb)
        conv = self._convert.get(index)
        if conv is None:
            self._emit(pkt, clock, self._map[index])
            return
        for sample in conv.convert(pkt):
            self._emit(sample, clock, self._map[index])

    def _mux_due(self, before: Fraction | None) -> None:
        """Mux what the mov_text converters still show where overlapping cues end before ``before`` (seconds on the
        input's clock; None: all of it), ahead of any packet after that time."""
        for index in self._flattening:
            for sample in self._convert[index].due(before):
                self._emit(sample, self._clocks[index], self._map[index])

    def _emit(self, pkt: av.Packet, clock: _StreamClock, out_st) -> None:
        k, shift = clock.scale, clock.shift
        if k != 1:
            if pkt.pts is not None:
                pkt.pts *= k
            if pkt.dts is not None:
                pkt.dts *= k
            if pkt.duration:
                pkt.duration *= k
            pkt.time_base = clock.out_tb
        if pkt.pts is not None:
            pkt.pts -= shift
        if pkt.dts is not None:
            pkt.dts -= shift
        pkt.stream = out_st
        try:
            self.out.mux(pkt)
        except av.FFmpegError as e:
            raise OutputError(f"{self.dst}: copying stream #{out_st.index} failed: {e}") from e
        self.copied_packets += 1
