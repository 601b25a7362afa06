"""An ASS track without its header (a Matroska S_TEXT/ASS with no CodecPrivate) into MP4/MOV/WebM, which take its
cues converted: the decoder gives no ASS header, and the mov_text / WebVTT encoder refused to open, so the run
failed as 'cannot set up the libx264 encoder'. FFmpeg's default header stands in (stream_copy.DEFAULT_ASS_HEADER)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest


def _headerless_ass(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        ss = out.add_stream("ass")
        packets = []
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), "rgb24")
            f.pts = i
            packets += vs.encode(f)
        packets += vs.encode(None)
        cue = av.Packet(b"0,0,Default,,0,0,0,,Hello")
        cue.pts = cue.dts = 200
        cue.duration, cue.time_base, cue.stream = 60, Fraction(1, 1000), ss
        for i, pkt in enumerate(packets):
            out.mux(pkt)
            if i == 3:  # interleaved with the video near its time, as muxers write it
                out.mux(cue)
    with av.open(str(path)) as c:
        assert not c.streams.subtitles[0].codec_context.extradata  # no header, as the case needs
    return path


@pytest.mark.parametrize("ext, text", [(".mp4", b"\x00\x05Hello"), (".webm", b"Hello")])
def test_a_headerless_ass_track_is_converted(tmp_path: Path, capfd, near_identity_file, ext: str, text: bytes) -> None:
    from esrgan_video.testing import run_cli

    src = _headerless_ass(tmp_path / "in.mkv")
    dst = tmp_path / f"out{ext}"
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--progress", "none")
    assert r.returncode == 0, r.stderr
    with av.open(str(dst)) as c:
        st = c.streams.subtitles[0]
        assert [(float(p.pts * p.time_base), bytes(p)) for p in c.demux(st)
                if p.size and bytes(p) != b"\x00\x00"] == [(0.2, text)]  # (MP4: an empty sample before it)
