"""A short but valid input (1, 2, 3 frames) opens, reads whole and upscales, in MPEG-TS as in MP4 and Matroska.

FFmpeg's format probe scores a transport stream by the packets it sees: a 2- or 3-frame one (9-10 packets of 188 bytes)
failed to open ("End of file"), and a 1-frame MPEG-2 one was taken for a raw MPEG video stream whose one frame then
decoded corrupt (``probe.open_media``).
"""

from __future__ import annotations

import os
from fractions import Fraction

import av
import pytest

import media
from esrgan_video.batch.worker import Task, cut_into_segments
from esrgan_video.testing import run_cli
from esrgan_video.video.probe import open_media
from esrgan_video.video.reader import open_input


@pytest.mark.parametrize("ext", ["ts", "mp4", "mkv"])
@pytest.mark.parametrize("frames", [1, 2, 3])
@pytest.mark.parametrize("codec", ["libx264", "mpeg2video"])
def test_a_short_file_reads_whole(tmp_path, ext, frames, codec):
    src = media.make_clip(tmp_path / f"short.{ext}", codec=codec, frames=frames, size=(64, 48))
    with open_input(src) as video:
        run = video.frames()
        assert sum(1 for _ in run) == frames
        assert run.stats.lost_frames == 0 and run.stats.report() is None
        assert len(video.frame_times()) == frames


def test_a_short_transport_stream_opens_as_one(tmp_path):
    src = media.make_clip(tmp_path / "short.ts", codec="mpeg2video", frames=1, size=(64, 48))
    with open_media(src) as c:
        assert c.format.name == "mpegts"
    not_ts = tmp_path / "not.ts"
    not_ts.write_bytes(b"\x47" + bytes(1000))  # one sync byte, not a transport stream: FFmpeg's error stands
    with pytest.raises(av.FFmpegError):
        open_media(not_ts).close()


@pytest.mark.parametrize("ext,codec,format", [("m2v", "mpeg2video", "mpeg2video"), ("ts", "libx264", None)])
def test_the_transport_check_reads_a_file_once(tmp_path, ext, codec, format):
    # a raw MPEG video (FFmpeg opens it as mpegvideo) and a 2-frame transport stream (FFmpeg's open fails) are each
    # checked for sync bytes on every open_media; the answer is kept per file, so the 64 KiB are read once
    src = media.make_clip(tmp_path / f"clip.{ext}", codec=codec, frames=2, size=(64, 48), format=format)
    with open_media(src) as c:
        assert c.format.name == ("mpegvideo" if ext == "m2v" else "mpegts")
    with media.counting_opens(src) as opens:
        for _ in range(3):
            open_media(src).close()
        assert opens[0] == 0  # the first open's answer stands
        src.write_bytes(src.read_bytes())  # the same bytes, a new modification time: asked again, once
        os.utime(src, ns=(os.stat(src).st_atime_ns, os.stat(src).st_mtime_ns + 1_000_000))
        opens[0] = 0
        for _ in range(3):
            open_media(src).close()
        assert opens[0] == 1


def test_cli_upscales_a_two_frame_transport_stream(tmp_path, near_identity_file, capfd):
    src = media.make_clip(tmp_path / "two.ts", frames=2, size=(64, 48))
    dst = tmp_path / "out.mkv"
    p = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--device", "cpu")
    assert p.returncode == 0, p.stderr
    with av.open(str(dst)) as c:
        frames = [f for f in c.decode(video=0)]
    assert len(frames) == 2 and (frames[0].width, frames[0].height) == (128, 96)
    with open_input(src) as inp:
        assert [f.pts * f.time_base for f in frames] == inp.frame_times() == [0, Fraction(1, 25)]


def test_batch_segments_of_a_short_clip_read_its_frames_once(tmp_path):
    # a 3-frame x264 Matroska clip with a cue at 0.04 s: the container starts at 0.04 s, the reader's media time at
    # the first frame (0 s); the plan's segment times are the reader's, so each segment reads the frames it counts
    src = media.make_clip(tmp_path / "cue.mkv", frames=3, options={"x264-params": "keyint=1:min-keyint=1:scenecut=0"},
                          subtitles=[media.SubtitleTrack("subrip", ((0.04, 0.08, "x"),))])
    with av.open(str(src)) as c:
        assert c.start_time == 40_000  # the clip this is about
    plan = cut_into_segments(Task("k", "plan", "j", str(src), str(tmp_path / "out.mkv"), segment_seconds=0.04))
    assert len(plan["segments"]) > 1
    read = []
    with open_input(src) as inp:
        for a, b, count in plan["segments"]:
            run = [f.index for f in inp.frames(start=a and Fraction(a), end=b and Fraction(b))]
            assert len(run) == count, plan
            read += run
    assert read == [0, 1, 2]
