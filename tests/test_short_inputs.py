"""A short but valid input (1, 2, 3 frames) opens, reads whole and upscales, in MPEG-TS as in MP4 and Matroska.

FFmpeg's format probe scores a transport stream by the packets it sees: a 2- or 3-frame one (9-10 packets of 188 bytes)
failed to open ("End of file"), and a 1-frame MPEG-2 one was taken for a raw MPEG video stream whose one frame then
decoded corrupt (``probe.open_media``).
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest

import media
from esrgan_video.testing import run_cli
from esrgan_video.video.probe import open_media
from esrgan_video.video.reader import open_input


@pytest.mark.parametrize("ext", ["ts", "mp4", "mkv"])
@pytest.mark.parametrize("frames", [1, 2, 3])
@pytest.mark.parametrize("codec", ["libx264", "mpeg2video"])
def test_a_short_file_reads_whole(tmp_path, ext, frames, codec):
    src = media.make_clip(tmp_path / f"short.{ext}", codec=codec, frames=frames, size=(64, 48))
    video = open_input(src)
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


def test_cli_upscales_a_two_frame_transport_stream(tmp_path, near_identity_file, capfd):
    src = media.make_clip(tmp_path / "two.ts", frames=2, size=(64, 48))
    dst = tmp_path / "out.mkv"
    p = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--device", "cpu")
    assert p.returncode == 0, p.stderr
    with av.open(str(dst)) as c:
        frames = [f for f in c.decode(video=0)]
    assert len(frames) == 2 and (frames[0].width, frames[0].height) == (128, 96)
    assert Path(dst).stat().st_size > 0
