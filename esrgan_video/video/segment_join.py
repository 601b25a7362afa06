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
"""

from __future__ import annotations

import heapq
import itertools
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av

from ..errors import OutputError
from .discont import has_discontinuities
from .packet_index import decode_order_timestamps, read_packet_index
from .partials import join_partial_path, remove_stale_partials
from .reader import open_input
from .stream_copy import StreamCopier, StreamSelection, copy_stream_facts, shifted_chapters


@dataclass(frozen=True)
class JoinResult:
    output: Path
    frames: int


def joined_dts(pts_in_decode_order: Sequence[int]) -> list[int]:
    """Decode timestamps for the joined video stream (pure).

    Each segment's encoder starts its own decode clock (B-frame delay), so the segments' DTS overlap at
    the joins. The joined stream's reorder delay ``D`` is the largest lead of a packet's decode position over
    its presentation rank; packet ``i`` then gets the ``i - D``-th presentation timestamp — monotonic and
    never after the packet's own PTS, as a single encoder gives for a constant frame rate. The first ``D``
    packets count back from the first PTS by the first frame step.
    """
    n = len(pts_in_decode_order)
    if n == 0:
        return []
    order = sorted(range(n), key=lambda i: pts_in_decode_order[i])
    rank = [0] * n
    for r, i in enumerate(order):
        rank[i] = r
    shown = [pts_in_decode_order[i] for i in order]
    if len(set(shown)) != n:
        raise ValueError("video packets with equal timestamps cannot be joined")
    delay = max(0, max(i - rank[i] for i in range(n)))
    step = shown[1] - shown[0] if n > 1 else 1
    return [shown[i - delay] if i >= delay else shown[0] - (delay - i) * step for i in range(n)]


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
        self.delay = max([0] + [i - rank[p] for i, p in enumerate(judged)])
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
        given: list[int] = []
        last = None
        for i, pkt in enumerate(self._ahead_then_rest()):
            pts = int(pkt.pts)
            if given and pts <= given[-1]:
                raise _Replan  # it shows before a DTS already given: the stream reorders deeper than guessed
            every_pts.append(pts)
            heapq.heappush(pending, pts)
            dts = heapq.heappop(pending) if i >= delay else first - (delay - i) * step
            if dts > pts or (last is not None and dts <= last):
                raise _Replan
            last = dts
            given.append(dts)
            pkt.dts = dts
            yield pkt
        try:
            exact = joined_dts(every_pts)
        except ValueError:
            raise _Replan from None
        if exact != given:
            raise _Replan

    def _ahead_then_rest(self) -> Iterator[av.Packet]:
        ahead, self._ahead = self._ahead, []
        yield from ahead
        yield from self._packets


def _video_pts(path: Path) -> list[int]:
    """PTS of a segment's video packets in decode order (its packet index: one demux pass, cached)."""
    index = read_packet_index(path)
    if not index.has_all_pts:
        raise OutputError(f"{path}: a segment's video packet has no timestamp; it cannot be joined")
    return [int(p) for p in index.pts]


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
    """
    src, dst = Path(src), Path(dst)
    seg_paths = [Path(s) for s in segments]
    if not seg_paths:
        raise OutputError(f"{dst}: no segments to join")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst}: already exists (pass overwrite to replace it)")
    remove_stale_partials(dst)
    tmp = join_partial_path(dst)
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

        def indexed() -> Iterator[av.Packet]:  # two reads: every segment's packet index, then its packets
            try:
                dts = joined_dts([p for path in seg_paths for p in _video_pts(path)])
            except ValueError as e:
                raise OutputError(f"{dst}: the segments cannot be joined ({e})") from e
            return _video_packets(inputs, dts)

        one_read = not any(decode_order_timestamps(c.format.name) or has_discontinuities(c.format.name)
                           for c in inputs)  # the packet index rewrites these timestamps: the two-read way
        if one_read:
            said: list[str] = []  # the copier's notes, told once the attempt stands (a second one says them again)
            try:
                clock = _OneReadClock(inputs, seg_paths)
                frames = _write(src, tmp, dst, first, lambda: iter(clock), copy_streams=copy_streams,
                                shift_timestamps=shift_timestamps, selection=selection, notice=said.append)
            except _Replan:
                tmp.unlink(missing_ok=True)
                for i, p in enumerate(seg_paths):  # read again from the start
                    inputs[i].close()
                    inputs[i] = av.open(str(p))
                first = inputs[0].streams.video[0]
                one_read = False
            except BaseException:
                for msg in said if notice is not None else ():
                    notice(msg)
                raise
            else:
                for msg in said if notice is not None else ():
                    notice(msg)
        if not one_read:
            frames = _write(src, tmp, dst, first, indexed, copy_streams=copy_streams,
                            shift_timestamps=shift_timestamps, selection=selection, notice=notice)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for c in inputs:
            c.close()
    return JoinResult(output=dst, frames=frames)


def _write(src: Path, tmp: Path, dst: Path, first: av.video.stream.VideoStream,
           packets: Callable[[], Iterator[av.Packet]], *, copy_streams: bool, shift_timestamps: bool,
           selection: StreamSelection | None, notice: Callable[[str], None] | None) -> int:
    """Write ``tmp``: the video ``packets()`` give (each with its joined dts; asked for once the output's streams
    are set up) and the source's other streams; returns the number of video packets."""
    frames = 0
    with open_input(src) as inp, inp.open_container() as source, av.open(str(tmp), "w") as out:
        info = inp.info
        base = info.start_time
        shift = base if shift_timestamps else Fraction(0)
        out.metadata.update(info.metadata)
        chapters = shifted_chapters(info.chapters, base=base, t0=None, t1=None, shift=shift)
        if chapters:
            out.set_chapters(chapters)
        out_v = out.add_stream_from_template(first)
        copy_stream_facts(first, out_v, metadata=info.stream_metadata, disposition=info.disposition)
        copier = None
        if copy_streams:
            copier = StreamCopier(out, source, video_index=info.stream_index,
                                  selection=selection or StreamSelection(), base=base, shift=shift, dst=dst,
                                  src=src, video_codec=first.codec_context.name,
                                  notice=notice or (lambda msg: None))
        tb = Fraction(first.time_base)  # every segment's packets have this time base (_same_codec)
        ticks = round(shift / tb)
        for pkt in packets():  # each has its joined dts
            if copier is not None:  # what the other streams have up to this packet's decode time, first
                copier.pump(pkt.dts * tb - base)
            if pkt.pts is not None:
                pkt.pts -= ticks
            pkt.dts -= ticks
            pkt.stream = out_v
            out.mux(pkt)
            frames += 1
        if copier is not None:
            copier.pump(None)
    return frames
