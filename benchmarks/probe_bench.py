"""What opening a long AVI costs (``python -m benchmarks.probe_bench [--packets N]``): not a test.

``open_input`` probes by decoding the first frame; an AVI's (or an MPEG-4 Part 2 stream's) exact frame count needs
the packet index, a demux pass over the whole file, which ``VideoInfo.frame_count`` (``reader.FrameCount``) now reads
when first asked instead of in the probe. This builds an AVI of ``--packets`` tiny packets (one 64x48 MPEG-4 Part 2
intra frame muxed again and again: demuxing is what costs, not decoding) and times, interleaved in one run, the open
alone, the open with the count (what every open paid before), and the header-only open (``exact_count=False``).
Reports the medians and their ratios; writes ``benchmarks/results/probe.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from esrgan_video.video.packet_index import clear_cache
from esrgan_video.video.reader import open_input

RESULTS = Path(__file__).resolve().parent / "results"


def long_avi(dst: Path, packets: int) -> Path:
    """An MPEG-4 Part 2 AVI of ``packets`` copies of one 64x48 intra frame, 25 fps."""
    with av.open(str(dst), "w") as out:
        st = out.add_stream("mpeg4", rate=25)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24").reformat(
            format="yuv420p")
        frame.pts, frame.time_base = 0, Fraction(1, 25)
        data = next(bytes(p) for p in [*st.encode(frame), *st.encode(None)] if p.size)
        for i in range(packets):
            pkt = av.Packet(data)
            pkt.stream, pkt.time_base, pkt.pts, pkt.dts, pkt.duration = st, Fraction(1, 25), i, i, 1
            pkt.is_keyframe = True
            out.mux(pkt)
    return dst


def _time(work) -> float:
    clear_cache()
    t = time.perf_counter()
    work()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=60_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = long_avi(Path(tmp) / "long.avi", args.packets)

        def opened():
            with open_input(src) as inp:
                return inp.info.width

        def counted():
            with open_input(src) as inp:
                return inp.info.frame_count

        def header_only():
            with open_input(src, exact_count=False) as inp:
                return inp.info.frame_count

        with open_input(src) as inp:
            assert inp.info.frame_count == args.packets
        runs: dict[str, list[float]] = {"open": [], "open+frame_count": [], "open exact_count=False": []}
        for _ in range(args.repeats):  # interleaved: a busy moment costs each alike
            runs["open"].append(_time(opened))
            runs["open+frame_count"].append(_time(counted))
            runs["open exact_count=False"].append(_time(header_only))
    med = {k: statistics.median(v) for k, v in runs.items()}
    result = {"packets": args.packets, "median_s": med,
              "count_over_open": med["open+frame_count"] / med["open"],
              "open_over_header_only": med["open"] / med["open exact_count=False"]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "probe.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
