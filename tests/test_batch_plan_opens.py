"""Planning a file's segments opens the source once (the packet index's demux pass), as it did before the plan's
times followed the reader's media origin (350a896 opened it a second time, through the reader's probe, for
``VideoInfo.start_time``); the origin is told from the index, and it is the reader's.

FFmpeg opens the file itself, in C, which ``media.counting_opens`` (Python's audit hook: Python's own opens) does not
see; the kernel's inotify does (every open of the file, by anyone): ``media.counting_file_opens``."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

import media
from esrgan_video.batch.segments import media_origin
from esrgan_video.batch.worker import Task, cut_into_segments
from esrgan_video.video.packet_index import clear_cache, read_packet_index
from esrgan_video.video.reader import open_input

OPEN_GOP = {"bf": "2", "x264-params": "open-gop=1:keyint=4:min-keyint=4:scenecut=0"}
CUE = [media.SubtitleTrack("subrip", ((0.04, 0.08, "x"),))]
CLIPS = {  # name: make_clip's arguments; each has keyframes to cut at
    "cue.mkv": dict(frames=3, subtitles=CUE, options={"x264-params": "keyint=1:min-keyint=1:scenecut=0"}),
    "bframes.mp4": dict(frames=12, options=OPEN_GOP),
    "late.ts": dict(frames=12, options={"x264-params": "keyint=4:min-keyint=4:scenecut=0"}),
    "decode-order.avi": dict(frames=12, options={"x264-params": "keyint=4:min-keyint=4:scenecut=0"}),
}


@pytest.mark.parametrize("name", list(CLIPS))
def test_planning_opens_the_source_once_and_counts_from_the_readers_origin(tmp_path, name):
    src = media.make_clip(tmp_path / name, **CLIPS[name])
    clear_cache()  # the packet index is read (the file opened) by the plan, not found from an earlier read
    with media.counting_file_opens(src) as opens:
        plan = cut_into_segments(Task("k", "plan", "k", str(src), str(tmp_path / "out.mkv"), segment_seconds=0.04))
        assert opens.count() == 1  # the packet index's one demux pass; 2 with the reader's probe (350a896)
    assert len(plan["segments"]) > 1, plan
    with open_input(src) as inp:  # the reader's own origin, as 350a896 asked it
        origin = inp.info.start_time
        assert media_origin(read_packet_index(src)) == origin
        read = []
        for a, b, count in plan["segments"]:  # each segment reads the frames the plan counts for it
            run = [f.index for f in inp.frames(start=a and Fraction(a), end=b and Fraction(b))]
            assert len(run) == count, plan
            read += run
    assert read == list(range(CLIPS[name]["frames"]))
    if name == "cue.mkv":  # the clip 350a896 is about: the container starts at the cue, the reader before it
        with av.open(str(src)) as c:
            assert Fraction(c.start_time, 1_000_000) == Fraction(1, 25) != origin == 0
