"""After ``--start``, video and audio keep the source's offset, in Matroska and MP4 alike.

The audio packet that straddles the cut is kept whole, so the audio starts up to one audio frame before the first
picture. MP4 stores that as a negative audio time (an edit list) and the video starts at 0; Matroska cannot store
negative times, so its muxer moves every stream later by the same overhang — the first video timestamp is then a
few milliseconds, not 0, and the two streams stay in step (what matters to a player)."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from esrgan_video.video.reader import open_input
from esrgan_video.video.writer import OutputVideo

from media import AudioTrack, make_clip


def first_times(path):
    """(first video presentation time, [(audio pts seconds, payload)]) in the file's own clock."""
    with av.open(str(path)) as c:
        video = min(f.pts * f.time_base for f in c.decode(c.streams.video[0]))
    with av.open(str(path)) as c:
        audio = [(p.pts * p.time_base, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]
    return video, audio


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
@pytest.mark.parametrize("start", [Fraction(37, 100), Fraction(1, 2)])
def test_a_trim_keeps_the_audio_video_offset(tmp_path, ext, start):
    src = make_clip(tmp_path / "src.mkv", frames=25, audio=[AudioTrack(sample_rate=44100)])
    dst = tmp_path / f"out.{ext}"
    with open_input(src) as inp, OutputVideo(dst, template=inp, codec="libx264", start=start) as out:
        for f in inp.frames(start=start):
            out.write(f.planes, f.pts)
        base = inp.info.start_time
        first_frame = next(t for t in inp.frame_times() if t >= start) + base  # on the source's own clock
    src_audio = dict((data, t) for t, data in first_times(src)[1])
    video, audio = first_times(dst)
    a_out, payload = audio[0]
    a_src = src_audio[payload]  # the same audio packet in the source
    assert a_src - base < start, "the first audio packet kept straddles the cut"
    offset_out, offset_src = a_out - video, a_src - first_frame
    assert abs(offset_out - offset_src) <= Fraction(1, 1000), (float(offset_out), float(offset_src))  # Matroska: ms
    frame, audio_frame = Fraction(1, 25), Fraction(1024, 44100)
    assert 0 <= video < frame + audio_frame  # a frame's rounding of the cut, and in Matroska the overhang
