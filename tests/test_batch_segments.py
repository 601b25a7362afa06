"""Segment planning from a demux-only keyframe scan (pure parts and a real open-GOP clip)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from esrgan_video.batch.segments import plan_segments
from esrgan_video.video.keyframes import KeyframeIndex, index_from_packets, scan_keyframes
from esrgan_video.errors import InputError

from media import make_clip, make_not_media

TB = Fraction(1, 1000)


def test_clean_cuts_and_open_gop_leading_pictures() -> None:
    # decode order of an open-GOP stream: I0 P80 B40 | I160 B120(leading) P280 B200 B240 | I320 P400 B360
    packets = [(0, True), (80, False), (40, False), (160, True), (120, False), (280, False), (200, False),
               (240, False), (320, True), (400, False), (360, False)]
    idx = index_from_packets(packets, TB)
    assert idx.pts == (0, 40, 80, 120, 160, 200, 240, 280, 320, 360, 400)
    assert idx.cuts == (160, 320) and idx.open_gop == (160,)
    # a keyframe shown before a frame decoded ahead of it is not a clean cut
    bad = index_from_packets([(0, True), (200, False), (100, True), (150, False)], TB)
    assert bad.cuts == ()


def test_plan_segments_whole_gops_cover_every_frame_once() -> None:
    pts = list(range(0, 4000, 40))  # 100 frames at 25 fps, a keyframe every 8 frames
    idx = index_from_packets([(p, i % 8 == 0) for i, p in enumerate(pts)], TB)
    segs = plan_segments(idx, seconds=1)
    assert [s.start for s in segs] == [None, 1280, 2560]
    assert all(s.start is None or s.start in idx.cuts for s in segs)
    assert [s.end for s in segs] == [1280, 2560, None]
    assert sum(s.frame_count for s in segs) == 100
    assert segs[1].bounds_seconds(TB) == (Fraction(32, 25), Fraction(64, 25))
    assert segs[1].bounds_seconds(TB, Fraction(1, 10)) == (Fraction(32, 25) - Fraction(1, 10), Fraction(64, 25) - Fraction(1, 10))
    # short videos, no keyframes: one segment
    assert plan_segments(idx, seconds=3) == [plan_segments(idx, seconds=3)[0]] and plan_segments(idx, seconds=3)[0].start is None
    only_first = index_from_packets([(p, i == 0) for i, p in enumerate(pts)], TB)
    assert len(plan_segments(only_first, seconds=1)) == 1
    with pytest.raises(InputError):
        plan_segments(idx, seconds=0)


def test_tiny_tail_is_not_cut() -> None:
    pts = list(range(0, 2200, 100))  # 22 frames 0.1 s apart, keyframe every frame
    idx = index_from_packets([(p, True) for p in pts], TB)
    segs = plan_segments(idx, seconds=1)
    assert [s.start for s in segs] == [None, 1000]  # a cut at 2000 would leave a 0.1 s tail
    assert KeyframeIndex(TB, (), (), ()).frame_count == 0


def test_scan_real_open_gop_clip(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mkv", frames=12,
                     options={"bf": "2", "x264-params": "open-gop=1:keyint=4:min-keyint=4:scenecut=0"})
    idx = scan_keyframes(clip)
    assert idx.frame_count == 12 and idx.time_base == TB
    assert idx.cuts and set(idx.open_gop) <= set(idx.cuts)
    assert idx.open_gop, "x264 open-gop should give leading pictures"
    with pytest.raises(InputError, match="cannot be read"):
        scan_keyframes(make_not_media(tmp_path / "n.mkv"))


def test_joined_dts_is_monotonic_and_never_after_pts() -> None:
    from esrgan_video.video.segment_join import joined_dts

    # two x264-like segments (B-pyramid: I0 P160 B80 b40 b120 ..., reorder delay 2), each restarting its clock
    seg = lambda o: [o + 0, o + 160, o + 80, o + 40, o + 120, o + 200, o + 280, o + 240]  # noqa: E731
    pts = seg(0) + seg(320)
    dts = joined_dts(pts)
    assert all(a < b for a, b in zip(dts, dts[1:]))
    assert all(d <= p for d, p in zip(dts, pts))
    assert dts[:2] == [-80, -40] and dts[2:] == sorted(pts)[: len(pts) - 2]
    assert joined_dts([0, 40, 80]) == [0, 40, 80]  # no reordering: dts == pts
    with pytest.raises(ValueError):
        joined_dts([0, 40, 40])


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_join_lossy_b_frame_segments(tmp_path: Path, ext: str) -> None:
    """libx264 segments restart their decode clocks; the join still gives every frame at its single-pass time."""
    import av

    from media import AudioTrack, segments_and_one_pass

    src = make_clip(tmp_path / "s.mkv", frames=12, options={"bf": "2", "x264-params": "keyint=4:min-keyint=4:scenecut=0"},
                    audio=[AudioTrack()])
    joined, single, count = segments_and_one_pass(src, Fraction(4, 25), tmp_path, ext)
    assert count == 3

    def facts(path: Path):
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            times = [f.pts * f.time_base for f in c.decode(v)]
        with av.open(str(path)) as c:
            audio = [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]
        return times, audio

    assert facts(joined) == facts(single)
    assert len(facts(joined)[0]) == 12
