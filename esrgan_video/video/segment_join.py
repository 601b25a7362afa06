"""Join rendered segments of one video without re-encoding (batch mode's last step for a long file).

Each segment was rendered by the streaming core with the source's own timestamps (``shift_timestamps=False``,
no stream copy; see ``batch.segments`` for where the cuts lie). ``join_segments`` remuxes the segments' video
packets in order into one file, gives them one monotonic decode clock (``joined_dts``), and copies every other
stream of the source once through the writer's own stream copier (``video.stream_copy``), interleaved by time —
the result has the frames, timestamps, streams, dispositions and chapters of a single pass.

Each segment is read once: the joined decode clock needs one number known before the first packet is muxed, the
stream's reorder delay, which the first packets give (:class:`_OneReadClock` reads a few ahead); every later
decode timestamp follows from the presentation timestamps seen so far, and the whole clock is checked against
``joined_dts`` at the end. Where that guess is wrong (a later segment reorders deeper), or in containers whose
timestamps the packet index rewrites (AVI's decode-order counters, MPEG-TS/PS jumps), the join falls back to
reading each segment's packet index first and remuxing after (two reads), as it always did.

Segments are rendered in a container that gives back exactly the timestamps written (:func:`segment_suffix`): the
output's own when it is one of :data:`EXACT_FORMATS`, else MOV (or MP4, or Matroska, whichever holds the codec and
keeps a sample aspect ratio as the output does, ``writer.sar_kept``; NUT, before Matroska, for a codec that reorders no
frames where neither MOV nor MP4 does: UT Video, and VP8, FFV1, … of an output that keeps no SAR for them, as AVI).
MPEG-TS and MPEG-PS move a segment's clock (its first decode time made non-negative, every segment of a PS file
starting at one preload), AVI keeps no presentation times and restarts its counters, so segments in those would no
longer say where their frames lie. The join then writes the output's container itself: the video stream gets the
source's time base (what a single pass gives the muxer), and H.264/HEVC packets go from the intermediate's
length-prefixed form back to Annex B (``h264_mp4toannexb``) for containers that carry that (MPEG-TS/PS, AVI, NUT, …);
other codecs keep the segments' codec tag where the output's muxer takes it (UT Video's names its pixel format). A
NUT output records the decode delay the encoder declared, which an intermediate does not keep: where the packets
show none, one line says the decode times may differ from a single pass's (:func:`undeclared_delay`).
"""

from __future__ import annotations

import heapq
import io
import itertools
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av

from ..errors import OptionError, OutputError
from ..files import link_target
from .encoder_formats import muxer_options
from .discont import has_discontinuities
from .metadata import demuxer_in
from .packet_index import NOPTS, decode_order_timestamps, read_packet_index
from .partials import join_partial_path, remove_stale_partials
from .reader import open_input
from .stream_copy import StreamCopier, StreamSelection, copy_stream_facts, shifted_chapters
from .writer import check_output, output_format, sar_kept, video_time_base

EXACT_FORMATS = ("matroska", "webm", "mov", "mp4")
"""Muxers whose files give back the timestamps the segments were written with (source times, a first decode time
before 0 included): segments of an output in one of these are rendered in its own container."""
_INTERMEDIATES = (".mov", ".mp4", ".nut", ".mkv")
"""Where the segments of any other output are rendered: the first of these that holds the codec (and records a
sample aspect ratio as the output would: ``writer.sar_kept``). MOV and MP4 keep the encoder's time base exactly (a
timescale that is a multiple of it). NUT keeps any time base exactly too, and the times of a stream whose decode times
are its presentation times, so it is taken for codecs that reorder no frames only (it moves a stream whose first
decode time is before 0, B-frames, to start at 0): UT Video, which no other holds, and VP8, VP9, AV1, FFV1, ProRes,
raw video of an output that keeps no SAR for them (AVI, NUT, FLV: MOV and MP4 would). Matroska rounds to 1 ms, so it
comes last."""
_AVCC_MUXERS = ("mov", "mp4", "ipod", "ismv", "3gp", "3g2", "psp", "f4v", "matroska", "webm", "flv")
"""Muxers that store H.264/HEVC length-prefixed (avcC/hvcC), as the intermediates do; every other gets Annex B."""
_ANNEXB = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}


def _in_order(codec: str) -> bool:
    """Whether encoder ``codec`` reorders no frames (intra-only UT Video, FFV1, ProRes; VP8, VP9: FFmpeg's codec
    descriptor has no "reorder" property): its decode times are its presentation times."""
    try:
        c = av.codec.Codec(codec, "w")
        return bool(c.intra_only or not c.reorder)
    except (ValueError, av.FFmpegError):
        return False


def segment_suffix(dst: str | os.PathLike, codec: str, format: str | None = None) -> str:
    """The file suffix to render ``dst``'s segments in, for encoder ``codec`` (``format``: ``--format``, else the
    extension's muxer): ``dst``'s own when its container is one of :data:`EXACT_FORMATS` (or unknown: the writer
    says why), else the first of :data:`_INTERMEDIATES` that holds ``codec`` and keeps a sample aspect ratio as
    ``dst``'s container does (``writer.sar_kept``, what a single pass plans its frames by: an FFV1 segment in
    MP4 would be planned anamorphic where a single pass's AVI, which keeps no FFV1 SAR, is square), else ``dst``'s own.
    Only FFmpeg's muxer tables are consulted (in memory)."""
    muxer = output_format(dst, format)
    own = Path(dst).suffix
    if muxer is None or muxer in EXACT_FORMATS:
        return own
    for ext in _INTERMEDIATES:
        if ext == ".nut" and not _in_order(codec):
            continue  # NUT moves a stream whose first decode time is before 0 (B-frames) to start at 0
        try:
            fmt = check_output(Path(dst).with_suffix(ext), codec)
        except (OutputError, OptionError):
            continue
        if sar_kept(codec, fmt) == sar_kept(codec, muxer):  # the writer's own rule (output_plan): planned alike
            return ext
    return own


@dataclass(frozen=True)
class JoinResult:
    output: Path
    frames: int


def joined_dts(pts_in_decode_order: Sequence[int], *, min_delay: int = 0) -> list[int]:
    """Decode timestamps for the joined video stream (pure).

    Each segment's encoder starts its own decode clock (B-frame delay), so the segments' DTS overlap at
    the joins. The joined stream's reorder delay ``D`` is the largest lead of a packet's decode position over
    its presentation rank, or ``min_delay`` when that is more (the encoder's own delay, :func:`encoder_delay`:
    x264 with ``bf=2`` delays by two frames even where no packet leads by two); packet ``i`` then gets the
    ``i - D``-th presentation timestamp — monotonic and never after the packet's own PTS, as a single encoder
    gives for a constant frame rate. The first ``D`` packets count back from the first PTS by the first frame step.
    """
    return _joined_clock(pts_in_decode_order, min_delay=min_delay)[1]


def _joined_clock(pts_in_decode_order: Sequence[int], *, min_delay: int = 0) -> tuple[int, list[int]]:
    """:func:`joined_dts` and the reorder delay ``D`` it used (the packets whose decode time is before the first
    presentation time: the delay the output records, as a single pass's encoder declares it)."""
    n = len(pts_in_decode_order)
    if n == 0:
        return 0, []
    order = sorted(range(n), key=lambda i: pts_in_decode_order[i])
    rank = [0] * n
    for r, i in enumerate(order):
        rank[i] = r
    shown = [pts_in_decode_order[i] for i in order]
    if len(set(shown)) != n:
        raise ValueError("video packets with equal timestamps cannot be joined")
    delay = max(0, min_delay, max(i - rank[i] for i in range(n)))
    step = shown[1] - shown[0] if n > 1 else 1
    return delay, [shown[i - delay] if i >= delay else shown[0] - (delay - i) * step for i in range(n)]


def encoder_delay(pts_dts_in_decode_order) -> int:
    """The encoder's reorder delay, in packets, from the first segment's first packets ``(pts, dts)`` in decode
    order (pure): how many lead with a decode time before the first packet's presentation time (x264 counts its
    first ``D`` back from there). 0 where the container keeps no decode times (Matroska gives None)."""
    delay, first = 0, None
    for pts, dts in pts_dts_in_decode_order:
        if first is None:
            first = pts
        if first is None or dts is None or dts >= first:
            break
        delay += 1
    return delay


def _video_packets(containers: Sequence[av.container.InputContainer], dts: Sequence[int]) -> Iterator[av.Packet]:
    """The segments' video packets in order, each with its decode timestamp of the joined stream."""
    seq = 0
    for c in containers:
        for pkt in c.demux(c.streams.video[0]):
            if pkt.size == 0:
                continue
            pkt.dts = dts[seq]
            yield pkt
            seq += 1


_READ_AHEAD = 48
"""Video packets read ahead (and held) before the first is muxed, to learn the joined stream's reorder delay."""
_JUDGED = 32
"""Of those, the first this many are judged: their rank among the packets read ahead is their rank in the stream
unless a packet more than ``_READ_AHEAD - _JUDGED`` places later in decode order shows before them."""


class _Replan(Exception):
    """The reorder delay read ahead was not the stream's: the join is written again from the packet indexes."""


class _OneReadClock:
    """The segments' video packets in order, each given its decode timestamp of the joined stream, from one read
    of each segment (what ``joined_dts`` gives from every packet's PTS, known in advance).

    ``joined_dts`` gives packet ``i`` the ``i - D``-th smallest PTS of the whole stream, ``D`` being the largest
    lead of a packet's decode position over its presentation rank. No packet leads by more than ``D``, so that
    PTS is among the first ``i + 1`` packets read: a heap of the PTS not yet used gives it. Only ``D`` (and the
    first frame step, for the first ``D`` packets) must be known before the first packet is muxed; they come
    from the first :data:`_READ_AHEAD` packets. Every PTS is kept (integers, as the packet index keeps them),
    and when the segments end the clock is compared with ``joined_dts`` of them all; a guess that was wrong —
    a deeper reordering later on — raises :class:`_Replan` as soon as it shows (a timestamp the clock cannot
    give), or at the end, before the joined file is renamed into place.
    """

    def __init__(self, containers: Sequence[av.container.InputContainer], paths: Sequence[Path]) -> None:
        self._packets = self._demuxed(containers, paths)
        self._ahead = list(itertools.islice(self._packets, _READ_AHEAD))  # held until muxed: a bounded few
        pts = [int(p.pts) for p in self._ahead]
        complete = len(pts) < _READ_AHEAD
        judged = pts if complete else pts[:_JUDGED]
        shown = sorted(pts)
        if len(set(shown)) != len(shown):
            raise _Replan  # equal timestamps: the packet indexes' way says so in its words
        rank = {p: r for r, p in enumerate(shown)}
        self.min_delay = encoder_delay((int(p.pts), p.dts) for p in self._ahead)
        self.delay = max([self.min_delay] + [i - rank[p] for i, p in enumerate(judged)])
        self._step = shown[1] - shown[0] if len(shown) > 1 else 1
        self._first = shown[0] if shown else 0

    @staticmethod
    def _demuxed(containers, paths) -> Iterator[av.Packet]:
        for path, c in zip(paths, containers):
            count = 0
            for pkt in c.demux(c.streams.video[0]):
                if pkt.size == 0:
                    continue
                if pkt.pts is None:
                    raise OutputError(f"{path}: a segment's video packet has no timestamp; it cannot be joined")
                count += 1
                yield pkt
            if not count:
                raise OutputError(f"{path}: a segment's video packet has no timestamp; it cannot be joined")

    def __iter__(self) -> Iterator[av.Packet]:
        delay, first, step = self.delay, self._first, self._step
        pending: list[int] = []  # PTS read and not yet given as a DTS
        every_pts: list[int] = []
        given: list[int] = []  # the DTS given so far (the last is the one to stay above)
        for i, pkt in enumerate(self._ahead_then_rest()):
            pts = int(pkt.pts)
            if given and pts <= given[-1]:
                raise _Replan  # it shows before a DTS already given: the stream reorders deeper than guessed
            every_pts.append(pts)
            heapq.heappush(pending, pts)
            dts = heapq.heappop(pending) if i >= delay else first - (delay - i) * step
            if dts > pts or (given and dts <= given[-1]):
                raise _Replan
            given.append(dts)
            pkt.dts = dts
            yield pkt
        try:
            exact = joined_dts(every_pts, min_delay=self.min_delay)
        except ValueError:
            raise _Replan from None
        if exact != given:
            raise _Replan

    def _ahead_then_rest(self) -> Iterator[av.Packet]:
        ahead, self._ahead = self._ahead, []
        yield from ahead
        yield from self._packets


def _video_index(path: Path):
    """A segment's packet index (its video packets' PTS and DTS in decode order: one demux pass, cached)."""
    index = read_packet_index(path)
    if not index.has_all_pts:
        raise OutputError(f"{path}: a segment's video packet has no timestamp; it cannot be joined")
    return index


def _same_codec(a: av.video.stream.VideoStream, b: av.video.stream.VideoStream) -> bool:
    ca, cb = a.codec_context, b.codec_context
    return (ca.name, ca.width, ca.height, ca.pix_fmt, bytes(ca.extradata or b""), a.time_base) == (
        cb.name, cb.width, cb.height, cb.pix_fmt, bytes(cb.extradata or b""), b.time_base)


def join_segments(
    src: str | os.PathLike,
    segments: Sequence[str | os.PathLike],
    dst: str | os.PathLike,
    *,
    copy_streams: bool = True,
    shift_timestamps: bool = True,
    overwrite: bool = False,
    selection: StreamSelection | None = None,
    notice: Callable[[str], None] | None = None,
    format: str | None = None,
) -> JoinResult:
    """Remux the video of ``segments`` (in order) into ``dst`` and copy the other streams of ``src``.

    The other streams go through the writer's own stream copier (``video.stream_copy.StreamCopier``), so a
    joined file gets what a single pass gets: the same streams (``selection``: ``--no-audio``, ``--no-subs``,
    ``--streams-keep``), text subtitles as mov_text in MP4/MOV, metadata, languages, titles and dispositions
    (the video stream's too), container metadata and chapters (``shifted_chapters``); with
    ``shift_timestamps`` every stream moves by the container's start time so the output starts at 0.
    ``notice`` receives the copier's one-line notes. Written to a temporary file beside ``dst`` and renamed
    when complete. Raises ``OutputError`` when the segments' encoders disagree (codec, size, pixel format or
    codec headers), so their packets cannot share one stream, or when ``dst`` exists without ``overwrite``.
    ``format``: the muxer of ``dst`` (``--format``; None: from its extension), which need not be the segments'
    (:func:`segment_suffix`).
    """
    src, dst = Path(src), Path(dst)
    seg_paths = [Path(s) for s in segments]
    if not seg_paths:
        raise OutputError(f"{dst}: no segments to join")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst}: already exists (pass overwrite to replace it)")
    format = output_format(dst, format)  # dst's muxer, not the name of what a link at dst leads to
    target = link_target(dst)  # a link's file: the link stays, leading to the joined output
    remove_stale_partials(target)
    tmp = join_partial_path(target)
    inputs: list[av.container.InputContainer] = []
    try:
        for p in seg_paths:
            inputs.append(av.open(str(p)))
            if not inputs[-1].streams.video:
                raise OutputError(f"{p}: segment has no video stream")
        first = inputs[0].streams.video[0]
        for p, c in zip(seg_paths[1:], inputs[1:]):
            if not _same_codec(first, c.streams.video[0]):
                raise OutputError(
                    f"{p}: segment encoded with different codec parameters than {seg_paths[0]}; "
                    "its packets cannot be joined without re-encoding (run this file without segments)")

        def indexed() -> tuple[int, Iterator[av.Packet]]:  # two reads: every segment's packet index, then its packets
            try:
                indexes = [_video_index(path) for path in seg_paths]
                delay = encoder_delay((int(p), None if d == NOPTS else int(d))
                                      for p, d in zip(indexes[0].pts[:64], indexes[0].dts[:64]))
                pts = [int(p) for index in indexes for p in index.pts]
                delay, dts = _joined_clock(pts, min_delay=delay)
            except ValueError as e:
                raise OutputError(f"{dst}: the segments cannot be joined ({e})") from e
            return delay, _video_packets(inputs, dts)

        one_read = not any(decode_order_timestamps(c.format.name) or has_discontinuities(c.format.name)
                           for c in inputs)  # the packet index rewrites these timestamps: the two-read way
        if one_read:
            said: list[str] = []  # the copier's notes, told once the attempt stands (a second one says them again)
            try:
                clock = _OneReadClock(inputs, seg_paths)
                frames = _write(src, tmp, dst, first, lambda: (clock.delay, iter(clock)), copy_streams=copy_streams,
                                shift_timestamps=shift_timestamps, selection=selection, notice=said.append,
                                format=format)
            except _Replan:
                one_read = False  # its notes are dropped: the second attempt says them again
                tmp.unlink(missing_ok=True)
                for i, p in enumerate(seg_paths):  # read again from the start
                    inputs[i].close()
                    inputs[i] = av.open(str(p))
                first = inputs[0].streams.video[0]
            finally:
                if one_read and notice is not None:  # the attempt stood, or failed otherwise: its notes
                    for msg in said:
                        notice(msg)
        if not one_read:
            frames = _write(src, tmp, dst, first, indexed, copy_streams=copy_streams,
                            shift_timestamps=shift_timestamps, selection=selection, notice=notice, format=format)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for c in inputs:
            c.close()
    return JoinResult(output=dst, frames=frames)


def _write(src: Path, tmp: Path, dst: Path, first: av.video.stream.VideoStream,
           packets: Callable[[], tuple[int, Iterator[av.Packet]]], *, copy_streams: bool, shift_timestamps: bool,
           selection: StreamSelection | None, notice: Callable[[str], None] | None, format: str | None = None) -> int:
    """Write ``tmp``: the video ``packets()`` give (``(reorder delay, packets)``, each packet with its joined dts;
    asked for once the output's streams are set up) and the source's other streams; returns the number of video
    packets."""
    frames = 0
    options = muxer_options(format)
    with open_input(src) as inp, inp.open_container() as source, \
            av.open(str(tmp), "w", format=format, container_options=options) as out:
        info = inp.info
        base = info.start_time
        shift = base if shift_timestamps else Fraction(0)
        out.metadata.update(info.metadata)
        chapters = shifted_chapters(info.chapters, base=base, t0=None, t1=None, shift=shift)
        if chapters:
            out.set_chapters(chapters)
        out_v = out.add_stream_from_template(first)
        # the time base a single pass gives the muxer (the writer's: the source's video stream's, 1/rate in an AVI
        # of a constant rate), whatever the segments' container made of it; their packets are rescaled to it
        out_v.time_base = video_time_base(out.format.name, inp, info.time_base, info.frame_rate)
        bsf = _annexb_filter(first, out_v, out.format.name)
        tag = _kept_tag(first, out.format.name) if bsf is None else None
        if tag is not None:
            out_v.codec_context.codec_tag = tag
        copy_stream_facts(first, out_v, metadata=info.stream_metadata, disposition=info.disposition)
        copier = None
        if copy_streams:
            copier = StreamCopier(out, source, video_index=info.stream_index,
                                  selection=selection or StreamSelection(), base=base, shift=shift, dst=dst,
                                  src=src, video_codec=first.codec_context.name,
                                  notice=notice or (lambda msg: None))
        tb = Fraction(first.time_base)  # every segment's packets have this time base (_same_codec)
        ticks = round(shift / tb)
        delay, video = packets()
        ctx = out_v.codec_context
        if ctx is not None and delay > ctx.reorder_depth:  # the encoder's delay, as a single pass records it (NUT)
            ctx.reorder_depth = delay
        if notice is not None and not delay:
            said = undeclared_delay(first, out.format.name, dst)
            if said:
                notice(said)
        try:
            out.start_encoding()
        except (ValueError, av.FFmpegError) as e:
            culprit = copier.header_culprit() if copier is not None else None
            raise OutputError(culprit or f"{dst}: cannot write the joined file ({e})") from e
        for pkt in video:  # each has its joined dts
            if copier is not None:  # what the other streams have up to this packet's decode time, first
                copier.pump(pkt.dts * tb - base)
            if pkt.pts is not None:
                pkt.pts -= ticks
            pkt.dts -= ticks
            for p in [pkt] if bsf is None else _filtered(bsf, pkt):
                p.stream = out_v
                out.mux(p)
            frames += 1
        if bsf is not None:
            for p in _filtered(bsf, None, first.time_base):
                p.stream = out_v
                out.mux(p)
        if copier is not None:
            copier.pump(None)
    return frames


def _annexb_filter(first: av.video.stream.VideoStream, out_v: av.video.stream.VideoStream, muxer: str):
    """``h264_mp4toannexb`` (or HEVC's) when the segments hold length-prefixed H.264/HEVC (avcC/hvcC headers: MOV,
    MP4, Matroska) and the output's container carries Annex B (a single pass's encoder writes it so there: headers
    in band); None otherwise. Sets ``out_v``'s codec parameters to the filter's (Annex B headers)."""
    name = _ANNEXB.get(first.codec_context.name)
    extradata = bytes(first.codec_context.extradata or b"")
    if name is None or muxer in _AVCC_MUXERS or not extradata or extradata[0] != 1:
        return None
    from av.bitstream import BitStreamFilterContext

    bsf = BitStreamFilterContext(name, first, out_v)
    if out_v.codec_context is not None:  # the filter's parameters bring the segments' tag (avc1): the muxer's own
        out_v.codec_context.codec_tag = "\0\0\0\0"
    return bsf


def undeclared_delay(first: av.video.stream.VideoStream, muxer: str, dst: Path) -> str | None:
    """The one line for a NUT output joined from segments in another container, of H.264/HEVC that shows no
    reordering; None otherwise. NUT records the decode delay the encoder declared when it opened, and a single
    pass's libx264 declares its B-pyramid's 2 frames (from the options it was given) even where it then makes no
    B-frame (lossless: ``bframes=0`` in its SEI) and its packets' decode times equal their presentation times. The
    segments' MOV/MP4/Matroska keep no such declaration and nothing in the stream says it, so the join records
    the delay its packets show, none: its frames and presentation times are a single pass's, its decode times (one
    pass's NUT reader counts them two frames back) are not."""
    if muxer != "nut" or demuxer_in(first.container.format.name, ("nut",)):
        return None
    if first.codec_context.name not in ("h264", "hevc"):
        return None
    return (f"{dst}: NUT records the decode delay an encoder declares, which the segments' container does not keep: "
            "the joined video records none (no frame is reordered), where a single pass of libx264 records 2 frames "
            "unless bframes=0; the decode times may differ from one pass's, the frames and their presentation times "
            "do not")


def _kept_tag(first: av.video.stream.VideoStream, muxer: str) -> str | None:
    """The segments' codec tag when they were rendered in another container than the output's (an intermediate)
    and the output's muxer takes that tag for their codec; else None (the muxer picks its own, as for the
    segments' own container). ``add_stream_from_template`` leaves the tag out, and the muxer's default tag may say
    something else: UT Video's tag names its pixel format (``ULY0`` 4:2:0, ``ULRG`` RGB), and AVI's default for the
    codec, ``ULRA``, would have the file decode as RGB with alpha. Checked on a header written into memory."""
    if demuxer_in(first.container.format.name, (muxer,)):
        return None
    try:
        tag = first.codec_context.codec_tag
    except UnicodeDecodeError:
        return None
    if not tag.strip("\0"):
        return None
    try:
        with av.open(io.BytesIO(), "w", format=muxer) as probe:
            probe.add_stream_from_template(first).codec_context.codec_tag = tag
            probe.start_encoding()
    except (ValueError, av.FFmpegError):
        return None
    return tag


def _filtered(bsf, pkt: av.Packet | None, time_base=None) -> list[av.Packet]:
    """What the bitstream filter gives for ``pkt`` (None: drain it), in ``pkt``'s time base (or ``time_base``)."""
    tb = pkt.time_base if pkt is not None else time_base
    out = bsf.filter(pkt)
    for p in out:
        p.time_base = tb
    return out
