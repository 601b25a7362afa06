"""batch's join reads each segment once (``video.segment_join``): the joined decode clock comes from the packets as
they are remuxed, and a wrong guess of the reorder delay falls back to the packet indexes, with the same result."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from esrgan_video.video import segment_join
from esrgan_video.video.reader import open_input
from esrgan_video.video.writer import OutputVideo

from media import AudioTrack, SubtitleTrack, make_clip

STEP = Fraction(4, 25)  # x264 keyint=4 at 25 fps: a clean cut every 4 frames


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A 12-frame libx264 clip with B-frames, audio and an ASS subtitle, and its 3 segments rendered as batch renders
    them (the source's timestamps, no other streams), in MKV and MP4."""
    d = tmp_path_factory.mktemp("join")
    opts = {"bf": "2", "x264-params": "keyint=4:min-keyint=4:scenecut=0"}
    src = make_clip(d / "src.mkv", frames=12, options=opts, audio=[AudioTrack()],
                    subtitles=[SubtitleTrack("ass", events=[(0.05, 0.3, "Hello")])])
    parts = {}
    for ext in ("mkv", "mp4"):
        parts[ext] = []
        for i in range(3):
            start, end = i * STEP, (i + 1) * STEP if i < 2 else None
            part = d / f"part{i}.{ext}"
            with open_input(src) as inp, OutputVideo(part, template=inp, codec="libx264", options=opts,
                                                     copy_streams=False, shift_timestamps=False, start=start,
                                                     end=end) as out:
                for f in inp.frames(start=start, end=end):
                    out.write(f.planes, f.pts)
            parts[ext].append(part)
    return src, parts


def packets(path: Path):
    """Every packet of every stream: (stream, pts, dts, keyframe, payload), in file order."""
    with av.open(str(path)) as c:
        return [(p.stream_index, p.pts, p.dts, p.is_keyframe, bytes(p)) for p in c.demux() if p.size]


def opened_segments(monkeypatch, parts):
    """Count the opens of each segment by the join (its own and, through the packet index, the index's)."""
    opened = []
    real_open = av.open

    def counting(path, *a, **kw):
        if str(path) in {str(p) for p in parts}:
            opened.append(str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(segment_join.av, "open", counting)
    return opened


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_the_join_reads_each_segment_once(tmp_path, rendered, monkeypatch, ext):
    src, parts = rendered
    parts = parts[ext]
    two_reads = segment_join.join_segments(src, parts, tmp_path / f"two.{ext}", copy_streams=True)
    with monkeypatch.context() as m:
        opened = opened_segments(m, parts)
        m.setattr(segment_join, "read_packet_index", lambda *a, **k: pytest.fail("a segment's index was read"))
        said: list[str] = []
        one = segment_join.join_segments(src, parts, tmp_path / f"one.{ext}", notice=said.append)
    assert sorted(opened) == sorted(map(str, parts))  # each segment opened once, no packet index read
    assert one.frames == two_reads.frames == 12
    assert packets(one.output) == packets(two_reads.output)


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_a_wrong_reorder_guess_falls_back_to_the_packet_indexes(tmp_path, rendered, monkeypatch, ext):
    """With one packet read ahead the guess is "no reordering", which the B-frames contradict: the join is written
    again the two-read way, with the same packets, and the copier's notes are said once."""
    src, parts = rendered
    parts = parts[ext]
    said_once: list[str] = []
    one = segment_join.join_segments(src, parts, tmp_path / f"one.{ext}", notice=said_once.append)
    with monkeypatch.context() as m:
        m.setattr(segment_join, "_READ_AHEAD", 1)
        m.setattr(segment_join, "_JUDGED", 1)
        indexed = []
        real_index = segment_join.read_packet_index
        m.setattr(segment_join, "read_packet_index", lambda p, *a: indexed.append(p) or real_index(p, *a))
        said: list[str] = []
        again = segment_join.join_segments(src, parts, tmp_path / f"again.{ext}", notice=said.append)
    assert indexed == parts  # the fallback ran
    assert packets(again.output) == packets(one.output)
    assert [n.replace("again.", "one.") for n in said] == said_once  # each note once
    assert any("converted to mov_text" in n for n in said) == (ext == "mp4")
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
