"""video.reader: the frame rate of a file that keeps none of its own is the stream's.

FFmpeg's raw H.264/HEVC demuxer times every elementary stream at its default 25 fps; the SPS's VUI timing (which
the decoder has after the first frame) now times the frames: a 29.97 or 50 fps ``.h264`` reads at that rate. A
stream without VUI timing, or whose timing is a time base's ticks (x264 writes its time base there: this project's
writer did, from an .mkv's 1/1000, until 640ce8d), stays at 25 fps and says that is a guess. The same guess replaces
the 2000 fps FFmpeg guesses for such a stream in a tiny MPEG-PS (12 frames in one pack: one timestamp), where its
frames came out 0.5 ms apart.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

import media
from esrgan_video.video.reader import open_input

NTSC = Fraction(30000, 1001)
X265 = {"x265-params": "log-level=error"}
needs_x265 = pytest.mark.skipif("libx265" not in av.codecs_available, reason="libx265 is not in this PyAV build")


def read(path: Path) -> tuple[Fraction | None, list[Fraction], list[str], list[str]]:
    """The reader's frame rate, the frames' times from the first, the input's notices and the run's."""
    frames, stats, said = media.read_frames(path)
    assert stats.lost_frames == 0 and len(frames) == 12
    with open_input(path) as inp:
        rate, notices = inp.info.frame_rate, inp.notices()
        assert inp.frame_times() == [f.pts * f.time_base - inp.info.start_time for f in frames]
    return rate, [(f.pts - frames[0].pts) * f.time_base for f in frames], notices, said


def sps_rate(path: Path) -> Fraction:
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        next(c.decode(st))
        return Fraction(st.codec_context.framerate)


@pytest.mark.parametrize("fps, name, codec, options", [
    (NTSC, "ntsc.h264", "libx264", None),
    (Fraction(50), "f50.h264", "libx264", None),
    pytest.param(NTSC, "ntsc.hevc", "libx265", X265, marks=needs_x265),
])
def test_a_raw_stream_reads_at_its_sps_rate(tmp_path, fps, name, codec, options):
    src = media.make_clip(tmp_path / name, codec=codec, fps=fps, frames=12, options=options)
    assert sps_rate(src) == fps
    with av.open(str(src)) as c:
        assert c.streams.video[0].average_rate == 25  # FFmpeg's raw demuxer's own, whatever the stream says
    rate, times, notices, said = read(src)
    assert rate == fps
    assert times == [k / fps for k in range(12)]
    assert notices == [] and said == []


@pytest.mark.parametrize("name, made, said_rate, why", [
    pytest.param("novui.hevc",
                 dict(codec="libx265", fps=NTSC, options={"x265-params": "vui-timing-info=0:log-level=error"}), 0, "the HEVC stream says no frame rate (no VUI timing in its SPS)", marks=needs_x265, id="no-vui"),
    # x264 given the time base 1/1000 says 1000 fps (as this project's writer made from an .mkv before 640ce8d):
    # not a rate the frames are read at
    pytest.param("old.h264", dict(fps=25, time_base=Fraction(1, 1000)), 1000,
                 "the H.264 stream says no frame rate (its timing, 1000 fps, is a time base's ticks)", id="ticks"),
])
def test_a_raw_stream_without_a_frame_rate_is_read_at_25_fps_said_to_be_a_guess(tmp_path, name, made, said_rate, why):
    src = media.make_clip(tmp_path / name, frames=12, **made)
    assert sps_rate(src) == said_rate
    rate, times, notices, _ = read(src)
    assert rate == 25 and times == [Fraction(k, 25) for k in range(12)]
    assert notices == [f"{src}: {why}; its frames are timed at 25 fps (FFmpeg's default), a guess"]


def test_a_tiny_mpeg_ps_of_an_old_x264_stream_is_not_read_at_2000_fps(tmp_path):
    """12 frames in one pack: one timestamp, so FFmpeg's demuxer measures no rate and guesses twice the SPS's
    1000 fps; the frames were read 0.5 ms apart. A tiny .mpg whose stream says its rate keeps it, unguessed."""
    old = media.make_clip(tmp_path / "old.mpg", fps=25, time_base=Fraction(1, 1000), frames=12)
    with av.open(str(old)) as c:
        assert c.streams.video[0].guessed_rate == 2000 and sum(p.pts is not None for p in c.demux(video=0)) == 1
    rate, times, notices, said = read(old)
    assert rate == 25 and times == [Fraction(k, 25) for k in range(12)]
    assert notices == [f"{old}: the H.264 stream says no frame rate (its timing, 1000 fps, is a time base's ticks, "
                       "and the file times too few of its frames to measure one); its frames are timed at 25 fps "
                       "(FFmpeg's default), a guess"] and said == []
    new = media.make_clip(tmp_path / "new.mpg", fps=NTSC, frames=12)
    rate, times, notices, _ = read(new)
    assert rate == NTSC and notices == []
    assert max(abs(t - k / NTSC) for k, t in enumerate(times)) <= Fraction(1, 90000)
