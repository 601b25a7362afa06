"""video.writer: an H.264 output of a constant-rate input says the input's frame rate, in every container.

x264 writes the SPS VUI timing (``num_units_in_tick``/``time_scale``) from the time base it is given, so an encoder
given an MP4's 1/12800 (Matroska's 1/1000, MPEG-TS's 1/90000) made a stream whose decoder said 12800 (1000, 90000)
fps, and MPEG-PS, which keeps no rate of its own, 25600 or 2000 fps (a re-encode of it took that for the frame
rate). libx264 of a constant-rate input is now given the rate (``writer.EncoderClock``, not strict), and its packets
the frames' own timestamps back: every frame's time is what it was. A variable-rate input keeps the stream's time
base. Inputs are real clips written by PyAV (``media.make_clip``); nothing is mocked.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from esrgan_video.video.reader import open_input
from esrgan_video.video.writer import cfr_rate

import media
from media import make_clip, read_frames

NTSC = Fraction(30000, 1001)


def remux(src: Path, dst: Path, **writer_kw) -> None:
    """``media.remux`` with libx264."""
    media.remux(src, dst, codec="libx264", **writer_kw)


def stream_rate(path: Path) -> Fraction:
    """The frame rate the H.264 stream itself says (the decoder's, from the SPS VUI timing)."""
    with av.open(str(path)) as c:
        return Fraction(c.streams.video[0].codec_context.framerate)


def frame_times(path: Path) -> list[Fraction]:
    """The frames' media times as the project's reader gives them, from the first frame's."""
    frames, stats, _ = read_frames(path)
    assert stats.lost_frames == 0
    return [(f.pts - frames[0].pts) * f.time_base for f in frames]


def decoded_pts(path: Path) -> list[int]:
    """Every frame's pts as FFmpeg decodes it (presentation order), in the file's own time base."""
    with av.open(str(path)) as c:
        return sorted(f.pts for f in c.decode(video=0))


@pytest.mark.parametrize("fps, time_base, suffix", [
    (Fraction(25), Fraction(1, 12800), ".mp4"),  # was 12800 fps
    (NTSC, Fraction(1, 30000), ".mkv"),          # Matroska's 1 ms: 0, 33, 67, 100 ... ; was 1000 fps
    (NTSC, Fraction(1, 30000), ".ts"),           # 1/90000: was 90000 fps
])
@pytest.mark.parametrize("out_suffix", [".mp4", ".mkv", ".ts", ".mpg", ".h264"])
def test_h264_output_says_the_frame_rate(tmp_path: Path, fps, time_base, suffix, out_suffix) -> None:
    src = make_clip(tmp_path / f"in{suffix}", frames=12, fps=fps, time_base=time_base, options={"bf": "2"})
    dst = tmp_path / f"out{out_suffix}"
    remux(src, dst)
    assert stream_rate(dst) == fps
    if out_suffix == ".h264":  # no timestamps: the reader times a raw stream at its SPS rate (8ce1d23)
        with open_input(dst) as inp:
            assert inp.info.frame_rate == fps and not inp.info.rate_guess
        assert frame_times(dst) == [k / fps for k in range(12)]
        return
    with open_input(dst) as inp:  # the rate a re-encode of it takes (MPEG-PS said 2000, 25600 or 90000 fps)
        if out_suffix == ".mpg":  # no rate of its own: the stream's
            assert inp.info.frame_rate == fps
        else:  # the container's average (frames over duration: 96000/3203 for Matroska's 1 ms steps)
            assert abs(inp.info.frame_rate / fps - 1) < Fraction(1, 100)
    got, want = frame_times(dst), frame_times(src)
    assert len(got) == 12
    if out_suffix == suffix:
        assert decoded_pts(dst) == decoded_pts(src)  # the same ticks of the same time base
    elif out_suffix == ".mpg" or ".mkv" in (suffix, out_suffix):
        # Matroska keeps 1 ms, MPEG-PS 90 kHz (its start rounded to 1 us, most frames timed by the rate)
        assert max(abs(g - w) for g, w in zip(got, want)) <= Fraction(1, 1000)
    else:
        assert got == want


def test_a_lost_frame_keeps_its_gap(tmp_path: Path) -> None:
    """A constant-rate input with a frame missing: the rate is said, the gap stays where it was."""
    pts = [0, 40, 80, 160, 200, 240, 280]
    src = make_clip(tmp_path / "in.mkv", pts=pts)
    for suffix in (".mkv", ".mp4"):
        dst = tmp_path / f"out{suffix}"
        remux(src, dst)
        assert stream_rate(dst) == 25
        assert frame_times(dst) == [Fraction(p, 1000) for p in pts]


def test_variable_rate_keeps_every_timestamp(tmp_path: Path) -> None:
    """A variable-rate input keeps the stream's time base for the encoder: every frame's time exactly."""
    pts = [0, 40, 90, 100, 250, 260, 400, 433, 600]
    src = make_clip(tmp_path / "in.mkv", pts=pts)
    for suffix in (".mkv", ".mp4"):
        dst = tmp_path / f"out{suffix}"
        remux(src, dst)
        assert frame_times(dst) == [Fraction(p, 1000) for p in pts]
    assert decoded_pts(tmp_path / "out.mkv") == pts


def test_reencode_of_an_mpeg_ps_output(tmp_path: Path) -> None:
    """An H.264 ``.mpg`` output re-encoded: the reader takes its rate for 25 fps (not 2000) and the re-encode says 25
    fps too; so does the re-encode of an older output whose stream said 1000 fps (x264 given 1/1000)."""
    src = make_clip(tmp_path / "in.mkv", frames=120, size=(160, 120))
    first, old = tmp_path / "first.mpg", make_clip(tmp_path / "old.mpg", frames=120, size=(160, 120),
                                                     time_base=Fraction(1, 1000))
    remux(src, first)
    assert stream_rate(old) == 1000  # what the writer made before: x264's VUI said its time base
    for mpg in (first, old):
        with open_input(mpg) as inp:
            assert inp.info.frame_rate == 25
        again = tmp_path / f"again-{mpg.stem}.mkv"
        remux(mpg, again)
        assert stream_rate(again) == 25
        # the reader's times of the .mpg, kept (Matroska: to 1 ms)
        assert max(abs(a - b) for a, b in zip(frame_times(again), frame_times(mpg))) <= Fraction(1, 1000)


def test_cfr_rate() -> None:
    tb = Fraction(1, 1000)
    assert cfr_rate([0, 40, 80, 120], tb, [Fraction(25)]) == 25
    assert cfr_rate([0, 33, 67, 100, 133], tb, [Fraction(2997, 100), NTSC]) == Fraction(2997, 100)
    assert cfr_rate([0, 40, 120, 160], tb, [Fraction(25)]) == 25  # a slot left empty
    assert cfr_rate([0, 40, 90, 100], tb, [Fraction(25)]) is None  # variable: on no grid of the list
    # every frame lies on a 2000 fps grid, which they leave nearly empty: the 25 fps of the table instead
    assert cfr_rate([0, 40, 80, 120], tb, [Fraction(2000)]) == 25
    # MPEG-PS: 2 timestamps for 6 frames (the others shared their packs) on the 25 fps grid
    assert cfr_rate([0, 200], tb, [Fraction(25)], frames=6) == 25
    assert cfr_rate([0], tb, [Fraction(25)]) is None


def _off_grid_by_fractions(times, rate, time_base):
    """encoder_rate's check before it ran in integers (three Fraction operations per frame): the reference."""
    for i, t in enumerate(times):
        if abs(t - times[0] - Fraction(i) / rate) > time_base:
            return i
    return None


def test_the_grid_check_in_integers_answers_as_the_fractions_did() -> None:
    import random

    from esrgan_video.video.writer import MPEG_RATES, common_ticks, first_off_grid

    rng = random.Random(5)
    rates = [*MPEG_RATES, Fraction(12), Fraction(2997, 100), Fraction(30), Fraction(7)]
    lists = [[], [Fraction(1, 3)], [Fraction(i, 25) for i in range(50)]]
    for tb in (Fraction(1, 1000), Fraction(1, 90000), Fraction(1, 12800), Fraction(1001, 30000)):
        for fps in (Fraction(25), NTSC, Fraction(24000, 1001), Fraction(50), Fraction(12)):
            step = 1 / (fps * tb)
            origin = Fraction(rng.randrange(-99_999, 99_999), 1_000_000)  # a container start in microseconds
            ticks = [round(i * step) + rng.choice((0, 0, 0, 1, -1, 2)) for i in range(40)]
            lists.append([p * tb - origin for p in sorted(ticks)])
            lists.append([p * tb for p in sorted(set(ticks[:10] + ticks[12:]))])  # a frame lost
    lists.append([Fraction(p, 1000) for p in (0, 40, 90, 100, 250, 260, 400)])  # a variable rate
    answers = []
    for times in lists:
        ticks = common_ticks(times)
        for rate in rates:
            for tb in (Fraction(1, 1000), Fraction(1, 90000), Fraction(1, 12800)):
                got = first_off_grid(ticks, rate, tb)
                assert got == _off_grid_by_fractions(times, rate, tb), (times, rate, tb)
                answers.append(got)
    assert len(answers) > 1000 and answers.count(None) > 50 and len(set(answers)) > 10  # fits, and misfits at many
