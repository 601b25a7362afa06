"""Writing to a pipe (#14.11): ``esrgan-video in.mp4 - --format matroska|nut|yuv4mpegpipe`` feeds ``ffmpeg -i -``
or a player. No temporary file; on an error the stream just ends and the exit status says so; yuv4mpegpipe
carries video only (said in a notice)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

import media
from esrgan_video.testing import run_cli


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return media.make_clip(tmp_path_factory.mktemp("pipe") / "in.mkv", size=(32, 24), frames=6,
                           audio=[media.AudioTrack()], subtitles=[media.SubtitleTrack("ass")])


@pytest.fixture(scope="module")
def tiny_model(near_identity_file) -> Path:
    return near_identity_file(2)


cli = run_cli
"""The command line in this process; stdout (``capfdbinary``) holds the stream FFmpeg writes to ``-``."""


def streams_and_frames(data: bytes) -> tuple[list[str], int, tuple[int, int]]:
    with av.open(io.BytesIO(data)) as c:
        types = [s.type for s in c.streams]
        v = c.streams.video[0]
        size = (v.codec_context.width, v.codec_context.height)
        frames = sum(1 for _ in c.decode(video=0))
    return types, frames, size


@pytest.mark.parametrize("fmt", ["matroska", "nut"])
def test_pipe_carries_video_and_the_other_streams(tmp_path, clip, tiny_model, capfdbinary, fmt, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = cli(capfdbinary, clip, "-", "--format", fmt, "--model", tiny_model, "--device", "cpu")
    assert p.returncode == 0, p.stderr
    types, frames, size = streams_and_frames(p.stdout)
    assert frames == 6 and size == (64, 48) and types[:2] == ["video", "audio"]
    assert "subtitle" in types
    assert os.listdir(tmp_path) == []  # no temporary file anywhere near
    assert b"esrgan-video" not in p.stdout[:64]  # nothing but the stream on stdout


def test_yuv4mpegpipe_is_raw_video_only_and_says_so(tmp_path, clip, tiny_model, capfdbinary):
    p = cli(capfdbinary, clip, "-", "--format", "yuv4mpegpipe", "--model", tiny_model, "--device", "cpu")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"YUV4MPEG2 W64 H48 ")
    assert p.stdout.count(b"FRAME") == 6
    notes = [line for line in p.stderr.splitlines() if "yuv4mpegpipe carries video only" in line]
    assert len(notes) == 1 and "#1 (audio), #2 (subtitle)" in notes[0]


def test_a_pipe_needs_a_pipe_format(clip, tiny_model, capfdbinary):
    p = cli(capfdbinary, clip, "-", "--model", tiny_model, "--device", "cpu")
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert "format: expected one of matroska, nut, yuv4mpegpipe when writing to standard output (-)" in lines[0]
    assert p.stdout == b""
    p = cli(capfdbinary, clip, "-", "--format", "mp4", "--model", tiny_model, "--device", "cpu")
    assert p.returncode == 2 and p.stdout == b""  # MP4 must seek back to finish its index: not a pipe format


def test_on_an_error_the_stream_just_ends_and_the_status_says_so(tmp_path, clip):
    """A writer that fails after three frames: what was sent stays a readable stream, nothing is left on disk,
    and the process exits non-zero."""
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from esrgan_video.video.reader import open_input
from esrgan_video.video.writer import OutputVideo
with open_input({str(clip)!r}) as inp:
    with OutputVideo("-", template=inp, format="matroska", codec="ffv1") as out:  # no encoder delay
        for i, f in enumerate(inp.frames()):
            if i == 3:
                raise RuntimeError("the model failed")
            out.write(f.planes, f.pts)
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 1 and b"the model failed" in p.stderr
    types, frames, _ = streams_and_frames(p.stdout)
    assert types[0] == "video" and frames == 3
    assert os.listdir(tmp_path) == []
