"""The CLI on inputs a restorer brings, "nothing lost" (tests/media.py inputs, ``esrgan-video IN OUT`` with a
near-identity x2 model): timecode tracks, data streams, ..."""

from __future__ import annotations

import av
import pytest

import media
from esrgan_video.testing import run_cli

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _upscale(capfd, near_identity_file, src, dst, *args):
    return run_cli(capfd, src, dst, "--model", near_identity_file(2), "--progress", "none", *args)


def _streams(path):
    with av.open(str(path)) as c:
        return [(s.type, {k.lower(): v for k, v in s.metadata.items()}.get("timecode")) for s in c.streams]


@pytest.mark.parametrize("inext", [".mov", ".mp4"])
@pytest.mark.parametrize("ext", [".mkv", ".mov", ".mp4"])
def test_a_timecode_track_is_kept(tmp_path, capfd, near_identity_file, inext, ext):
    # Every camera or editor MOV/MP4 has a timecode (tmcd) track, a data stream to FFmpeg: copying it failed every
    # run (exit 6: into .mkv and .mp4 'cannot hold the data stream #3', into .mov 'could not finish the file:
    # Invalid argument'). The MOV/MP4 muxer writes the track again from the video stream's timecode tag, and
    # Matroska keeps that tag.
    src = media.make_clip(tmp_path / f"in{inext}", frames=3, video_metadata={"timecode": "01:00:00:00"},
                          audio=[media.AudioTrack()], subtitles=[media.SubtitleTrack("mov_text", language="eng")])
    assert _streams(src) == [("video", "01:00:00:00"), ("audio", None), ("subtitle", None), ("data", "01:00:00:00")]
    dst = tmp_path / f"out{ext}"
    r = _upscale(capfd, near_identity_file, src, dst)
    assert r.returncode == 0, r.stderr
    assert "the timecode" not in r.stderr and "data stream" not in r.stderr, r.stderr
    tmcd = [] if ext == ".mkv" else [("data", "01:00:00:00")]
    assert _streams(dst) == [("video", "01:00:00:00"), ("audio", None), ("subtitle", None), *tmcd]


def test_a_timecode_the_output_cannot_keep_is_said(tmp_path, capfd, near_identity_file):
    src = media.make_clip(tmp_path / "in.mov", frames=3, video_metadata={"timecode": "10:00:00:00"},
                          audio=[media.AudioTrack()])
    dst = tmp_path / "out.ts"
    r = _upscale(capfd, near_identity_file, src, dst)
    assert r.returncode == 0, r.stderr
    assert f"{src}: the timecode 10:00:00:00 (data stream #2) is not kept: .ts files have no place for it" in r.stderr
    assert [t for t, _ in _streams(dst)] == ["video", "audio"]


@pytest.mark.parametrize("ext, kept", [(".mkv", False), (".mp4", False), (".ts", True)])
def test_a_data_stream_the_container_refuses_is_left_out_with_a_notice(tmp_path, capfd, near_identity_file, ext,
                                                                       kept):
    # As documented: a data stream the container refuses is left out with a notice. Matroska and MP4 accept a
    # data stream when it is added and refuse it only when the header is written, which made every MPEG-TS
    # broadcast recording with a KLV/SCTE-35/private data stream fail (exit 6) into .mkv and .mp4.
    plain = media.make_clip(tmp_path / "plain.ts", frames=5, format="mpegts", audio=[media.AudioTrack()])
    src = media.remux_with(plain, tmp_path / "in.ts", extra=[("klv", b"\x06\x0e\x2b\x34" + bytes(20), 0.04)])
    assert [s.type for s in av.open(str(src)).streams] == ["video", "audio", "data"]
    dst = tmp_path / f"out{ext}"
    r = _upscale(capfd, near_identity_file, src, dst)
    assert r.returncode == 0, r.stderr
    said = f"{src}: data stream #2 (data) cannot go into {ext} files and is not copied"
    assert (said in r.stderr) is not kept, r.stderr
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio", *(["data"] if kept else [])]
        assert sum(1 for _ in c.decode(video=0)) == 5
