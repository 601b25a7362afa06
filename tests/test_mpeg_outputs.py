"""MPEG-1/2 video and MPEG-PS outputs keep the input's frame times.

MPEG-1/2 encoders open only with the time base ``1/rate`` of a rate of their table (23.976, 24, 25, 29.97, 30, 50,
59.94, 60 fps): the writer gives them that and each frame's number, and puts the stream's own timestamps back on
their packets (``writer.EncoderClock``); a rate they cannot carry, or frames not evenly spaced, is refused in one
line before any file is written. MPEG-PS times only the packs in which a frame starts, so H.264 in ``.mpg`` leaves
most frames without a timestamp: the reader spreads them between the frames that have one (``reader.fill_times``).
Inputs are real clips written by PyAV (``media.make_clip``); nothing is mocked.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from esrgan_video.errors import OutputError
from esrgan_video.video.reader import fill_times, open_input
from esrgan_video.video.writer import OutputVideo

from media import make_clip, read_frames, remux

NTSC = Fraction(30000, 1001)


def times(path: Path) -> list[Fraction]:
    """The frames' media times as the project's reader gives them."""
    frames, stats, _ = read_frames(path)
    assert stats.lost_frames == 0
    return [f.pts * f.time_base for f in frames]


@pytest.mark.parametrize("codec", ["mpeg2video", "mpeg1video"])
@pytest.mark.parametrize("fps, time_base, suffix", [
    (Fraction(25), None, ".mp4"),               # MP4's 1/12800: "MPEG-1/2 does not support 12800/1 fps"
    (NTSC, Fraction(1, 30000), ".mp4"),
    (NTSC, Fraction(1, 30000), ".mkv"),         # Matroska rounds to 1 ms: 0, 33, 67, 100 ... on the 29.97 grid
])
def test_mpeg12_keeps_the_standard_rates(tmp_path: Path, codec: str, fps, time_base, suffix: str) -> None:
    src = make_clip(tmp_path / f"in{suffix}", frames=12, fps=fps, time_base=time_base)
    for out_suffix in (".mpg", ".mov"):
        dst = tmp_path / f"out{out_suffix}"
        remux(src, dst, codec=codec, options={"bf": "2"} if codec == "mpeg2video" else None)
        with av.open(str(dst)) as c:
            st = c.streams.video[0]
            assert st.codec_context.name == codec and st.codec_context.framerate == fps  # its sequence header
        got, want = times(dst), times(src)
        assert len(got) == 12
        # MOV keeps the input's timestamps exactly; MPEG-PS times the frames without one by the stream's rate
        # (its clock is 90 kHz, its start rounded to 1 us), so there they lie on the 29.97 grid
        tolerance = Fraction(1, 1000) if out_suffix == ".mpg" else 0
        assert all(abs((g - got[0]) - (w - want[0])) <= tolerance for g, w in zip(got, want)), (got, want)


def test_mpeg2_run_of_the_upscaler(tmp_path: Path, near_identity_file, torch_one_thread) -> None:
    """``esrgan-video in.mp4 out.mpg --codec mpeg2video`` as a user runs it (a 29.97 fps MP4, time base 1/30000)."""
    from esrgan_video.cli.main import main

    src = make_clip(tmp_path / "in.mp4", frames=6, fps=NTSC, time_base=Fraction(1, 30000))
    dst = tmp_path / "out.mpg"
    assert main([str(src), str(dst), "--codec", "mpeg2video", "--model", str(near_identity_file(2)),
                 "--backend", "torch"]) == 0
    with open_input(dst) as inp:
        assert (inp.info.codec, inp.info.width, inp.info.frame_rate) == ("mpeg2video", 128, NTSC)
    got = times(dst)
    assert [round((t - got[0]) * NTSC) for t in got] == list(range(6))


@pytest.mark.parametrize("make, says", [
    (dict(fps=7), "cannot carry in.mkv's frame rate of 7 fps"),
    (dict(fps=12), "cannot carry in.mkv's frame rate of 12 fps"),  # FFmpeg would open it: Main Profile forbids
    (dict(pts=[0, 40, 90, 100, 250, 290]), "frames are not evenly spaced (frame 2 at 0.090 s)"),  # VFR
])
def test_mpeg2_refuses_what_it_cannot_carry(tmp_path: Path, capsys, make, says: str) -> None:
    """One line naming the output, before any file is written (no output, no partial), exit status non-zero."""
    from esrgan_video.cli.main import main

    src = make_clip(tmp_path / "in.mkv", frames=6, **make)
    dst = tmp_path / "out.mpg"
    with pytest.raises(OutputError) as e, open_input(src) as inp:
        OutputVideo(dst, template=inp, codec="mpeg2video", copy_streams=False)
    assert str(e.value).startswith(f"{dst}: mpeg2video ") and says in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]

    capsys.readouterr()
    assert main([str(src), str(dst), "--codec", "mpeg2video", "--model", "RealESRGAN_x4plus", "--offline"]) != 0
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


def test_mpeg2_trimmed_to_its_constant_part(tmp_path: Path) -> None:
    """Only the frames written are judged: a trim that leaves out the uneven frames is written; frames given
    off the grid without a template's check are refused as they come (the partial file removed)."""
    src = make_clip(tmp_path / "in.mkv", pts=[0, 40, 80, 120, 160, 200, 230, 290])
    remux(src, tmp_path / "out.mpg", codec="mpeg2video", end=Fraction(1, 5))
    assert len(times(tmp_path / "out.mpg")) == 5

    with pytest.raises(OutputError, match="the frame at 0.230 s is not on its 25 fps grid"), open_input(src) as inp:
        with OutputVideo(tmp_path / "api.mpg", codec="mpeg2video", size=(64, 48), pix_fmt="yuv420p",
                         time_base=inp.info.time_base, rate=25) as out:
            for f in inp.frames():
                out.write(f.planes, f.pts)
    assert not any(p.name.startswith(".api") or p.name == "api.mpg" for p in tmp_path.iterdir())


def test_mpeg4_from_mpeg_ts(tmp_path: Path) -> None:
    """MPEG-4 Part 2 takes no time base denominator over 65535: an MPEG-TS input's 1/90000 gets the 25 fps clock."""
    src = make_clip(tmp_path / "in.ts", frames=8)
    remux(src, tmp_path / "out.mp4", codec="mpeg4")
    got, want = times(tmp_path / "out.mp4"), times(src)
    assert [t - got[0] for t in got] == [t - want[0] for t in want] and len(got) == 8


def test_h264_in_mpeg_ps_reads_back_in_order(tmp_path: Path) -> None:
    """x264 with B-frames into ``.mpg``: small frames share a pack, so most carry no timestamp (and the decoder's
    dts fallback is another frame's time); the reader gives every frame its place on the stream's grid."""
    src = make_clip(tmp_path / "in.mkv", frames=24, options={"bf": "2"})
    dst = tmp_path / "out.mpg"
    remux(src, dst, codec="libx264", options={"x264-params": "bframes=2:b-adapt=0"})
    with av.open(str(dst)) as c:
        shown = [p.pts for p in c.demux(c.streams.video[0]) if p.size]
    assert shown.count(None) > len(shown) // 2, "every frame has its own timestamp: nothing is tested"
    got, want = times(dst), times(src)
    assert [t - got[0] for t in got] == [t - want[0] for t in want]


def test_mpeg_ps_pack_timestamp_on_two_packets(tmp_path: Path) -> None:
    """FFmpeg's MPEG-PS demuxer gives a pack's timestamps to the frame starting in it and, here, to the frame before
    it in decode order too; with B-frames that one shows first, so the reader kept the wrong one and dropped the
    right one: 46 of 48 frames off the 25 fps grid. The earlier packet of such a pair now has none."""
    src = make_clip(tmp_path / "in.mpg", frames=48, size=(128, 96), seed=26)  # x264 with its B-frames, 1/25
    with av.open(str(src)) as c:
        stamps = [(p.pts, p.dts) for p in c.demux(c.streams.video[0]) if p.size]
    assert any(a == b and a[0] is not None for a, b in zip(stamps, stamps[1:])), "no pair: nothing is tested"
    got = times(src)
    assert [t - got[0] for t in got] == [Fraction(i, 25) for i in range(48)]


def test_fill_times() -> None:
    """Frames without a timestamp (None) lie evenly between those with one; after the last, by the last spacing;
    before the first, counted back by the step; with none, from 0. A time that goes back is passed on as it is."""
    def fill(pts, step=10, hold=8):
        return [p for _, p, _ in fill_times(((i, p, None) for i, p in enumerate(pts)), step, hold)]

    assert fill([0, None, None, 30, None, 50]) == [0, 10, 20, 30, 40, 50]
    assert fill([100, None, None, 400, None, None]) == [100, 200, 300, 400, 500, 600]
    assert fill([None, None, 30, None]) == [10, 20, 30, 40]
    assert fill([None, None, None]) == [0, 10, 20]
    assert fill([0, None, None, None, 40], hold=2) == [0, 10, 20, 30, 40]
    assert fill([0, 3003, None, None, 12012]) == [0, 3003, 6006, 9009, 12012]
    assert fill([0, None, 1001, None, None]) == [0, 500, 1001, 1501, 2002]
    assert fill([50, None, 20]) == [50, 60, 20]
    order = [i for i, _, _ in fill_times(((i, None, None) for i in range(20)), 1, 3)]
    assert order == list(range(20))
