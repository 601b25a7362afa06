"""Join rendered segments of one video without re-encoding (batch mode's last step for a long file).

Each segment was rendered by the streaming core with the source's own timestamps (``shift_timestamps=False``,
no stream copy; see ``batch.segments`` for where the cuts lie). ``join_segments`` remuxes the segments' video
packets in order into one file, gives them one monotonic decode clock (``joined_dts``), and copies every other
stream of the source once through the writer's own stream copier (``video.stream_copy``), interleaved by time —
the result has the frames, timestamps, streams, dispositions and chapters of a single pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av

from ..errors import OutputError
from .packet_index import read_packet_index
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
    frames = 0
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
            try:
                dts = joined_dts([p for path in seg_paths for p in _video_pts(path)])
            except ValueError as e:
                raise OutputError(f"{dst}: the segments cannot be joined ({e})") from e
            tb = Fraction(first.time_base)  # every segment's packets have this time base (_same_codec)
            ticks = round(shift / tb)
            for pkt in _video_packets(inputs, dts):  # each has its joined dts
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
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for c in inputs:
            c.close()
    return JoinResult(output=dst, frames=frames)
