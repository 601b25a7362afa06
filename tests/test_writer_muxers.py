"""What each muxer can hold, and the rate and time base it is given: MPEG-TS refuses codecs it would write as
private data, SVT-AV1 takes any time base, AVI of a constant-rate input indexes one entry per frame."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest

from esrgan_video.errors import OutputError
from esrgan_video.video.reader import open_input
from esrgan_video.video.writer import OutputVideo, check_output

import media
from media import make_clip


def run(*args, timeout=300) -> subprocess.CompletedProcess:
    """The command as a user runs it: a new Python process."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "esrgan_video", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def remux(src: Path, dst: Path, **writer_kw) -> list[str]:
    """``media.remux``'s notices."""
    return media.remux(src, dst, **writer_kw).notices


# -- MPEG-TS holds only the codecs it has a stream type for -----------------------------------------------------

def test_cli_refuses_vp9_into_mpegts_in_one_line(tmp_path: Path, near_identity_file) -> None:
    """FFmpeg's MPEG-TS muxer takes VP9 and writes it as private data: the run ended with exit 0 and a file with no
    video in it. Now one line, exit 6, before the model is loaded, and no file."""
    src = make_clip(tmp_path / "in.mp4", size=(32, 24), frames=3)
    dst = tmp_path / "out.ts"
    p = run(src, dst, "--model", near_identity_file(4), "--device", "cpu", "--codec", "libvpx-vp9")
    assert p.returncode == 6, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert lines == [f"esrgan-video: error: {dst}: the .ts container cannot hold libvpx-vp9 video; use .mkv instead"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize("codec", ["libvpx-vp9", "ffv1", "libsvtav1", "prores_ks"])
@pytest.mark.parametrize("suffix", [".ts", ".m2ts"])
def test_mpegts_refuses_codecs_it_writes_as_data(tmp_path: Path, codec: str, suffix: str) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg has no {codec}")
    dst = tmp_path / f"out{suffix}"
    with pytest.raises(OutputError) as e:
        check_output(dst, codec)
    assert str(e.value) == f"{dst}: the {suffix} container cannot hold {codec} video; use .mkv instead"
    assert not dst.exists()


@pytest.mark.parametrize("codec, name", [("libx264", "h264"), ("libx265", "hevc"), ("mpeg2video", "mpeg2video")])
@pytest.mark.parametrize("suffix", [".ts", ".m2ts"])
def test_mpegts_still_takes_h264_hevc_mpeg2(tmp_path: Path, codec: str, name: str, suffix: str) -> None:
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=5)
    dst = tmp_path / f"out{suffix}"
    assert check_output(dst, codec) == "mpegts"
    remux(src, dst, codec=codec)
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video"]
        assert c.streams.video[0].codec_context.name == name
        assert sum(1 for _ in c.decode(video=0)) == 5


# -- SVT-AV1 takes the time base of a variable-rate input -------------------------------------------------------

VFR_PTS = [0, 40, 90, 100, 250, 290]  # ms


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_svtav1_keeps_a_variable_rate(tmp_path: Path, capfd, suffix: str) -> None:
    """The time-base probe gave SVT-AV1 1/time_base as its frame rate (1000 fps for Matroska's 1/1000), which it
    refuses above 240 fps: every VFR input was refused as not evenly spaced, and every run printed
    ``Svt[error]: The maximum allowed frame rate is 240 fps``. Now the frames keep their exact times."""
    if "libsvtav1" not in av.codecs_available:
        pytest.skip("this FFmpeg has no libsvtav1")
    src = make_clip(tmp_path / "in.mkv", pts=VFR_PTS, time_base=Fraction(1, 1000))
    dst = tmp_path / f"out{suffix}"
    capfd.readouterr()
    from esrgan_video.video import encoder_formats
    encoder_formats.time_base_opens.cache_clear()  # the probe's own output is looked for, not a cached answer
    remux(src, dst, codec="libsvtav1")
    assert "Svt[error]" not in capfd.readouterr().err
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.codec.canonical_name == "av1"
        got = sorted(f.pts * f.time_base for f in c.decode(video=0))
    assert [t - got[0] for t in got] == [Fraction(p, 1000) for p in VFR_PTS]


def test_mpeg_time_bases_still_refused_as_before() -> None:
    """The probe's frame rate cap changes nothing for the encoders that refuse a time base: MPEG-2 takes 1/25
    and not 1/1000, MPEG-4 Part 2 takes 1/1000 and not 1/90000."""
    from esrgan_video.video.encoder_formats import time_base_opens

    assert time_base_opens("mpeg2video", Fraction(1, 25)) and not time_base_opens("mpeg2video", Fraction(1, 1000))
    assert time_base_opens("mpeg4", Fraction(1, 1000)) and not time_base_opens("mpeg4", Fraction(1, 90000))


@pytest.mark.parametrize("suffix, hint", [
    (".mkv", "; use --codec libx264"),  # was ", or an .mkv or .mp4 output" for an .mkv output
    (".mpg", "; use --codec libx264, or an .mkv or .mp4 output"),
])
def test_vfr_refusal_hint_names_only_what_helps(tmp_path: Path, suffix: str, hint: str) -> None:
    src = make_clip(tmp_path / "in.mkv", pts=VFR_PTS, time_base=Fraction(1, 1000))
    dst = tmp_path / f"out{suffix}"
    with pytest.raises(OutputError) as e, open_input(src) as inp:
        OutputVideo(dst, template=inp, codec="mpeg2video", copy_streams=False)
    assert str(e.value).endswith("frames are not evenly spaced (frame 2 at 0.090 s)" + hint), str(e.value)


# -- AVI of a constant-rate input: one index entry per frame -----------------------------------------------------

@pytest.mark.parametrize("name, make", [
    ("in.mp4", dict(fps=25)),                                  # 1/12800: was stored as 1/600, "600 fps"
    ("in.mkv", dict(fps=Fraction(30000, 1001))),               # 1/1000: was "1000 fps"
    ("in.ts", dict(fps=25, format="mpegts")),                  # 1/90000
])
@pytest.mark.parametrize("codec", ["libx264", "mpeg4", "ffv1"])
def test_avi_of_a_constant_rate_says_the_rate(tmp_path: Path, name: str, make: dict, codec: str) -> None:
    """AVI has one index entry per tick of its stream time base, which was the input's (1/12800 stored as 1/600):
    its header said 600 or 1000 fps, with empty entries between the frames. Now the time base is 1/rate."""
    src = make_clip(tmp_path / name, frames=6, **make)
    rate = Fraction(make["fps"])
    dst = tmp_path / "out.avi"
    remux(src, dst, codec=codec)
    with av.open(str(dst)) as c:
        st = c.streams.video[0]
        assert (st.time_base, st.average_rate, st.frames) == (1 / rate, rate, 6)
        assert sum(1 for p in c.demux(st) if p.size) == 6
    with open_input(dst) as out, open_input(src) as inp:
        assert out.info.frame_rate == rate
        got = [f.pts * f.time_base for f in out.frames()]
        want = [f.pts * f.time_base for f in inp.frames()]
    assert [round((t - got[0]) * rate) for t in got] == list(range(6))
    assert all(abs((a - got[0]) - (b - want[0])) < Fraction(1, 1000) for a, b in zip(got, want))


def test_avi_of_a_variable_rate_keeps_its_ticks(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mkv", pts=VFR_PTS, time_base=Fraction(1, 1000))
    dst = tmp_path / "out.avi"
    remux(src, dst, codec="ffv1")
    with av.open(str(dst)) as c:
        assert c.streams.video[0].time_base == Fraction(1, 1000)
        assert sorted(f.pts for f in c.decode(video=0)) == VFR_PTS


# -- the pixel format keeps the alpha where the encoder can -----------------------------------------------------

def test_choose_pix_fmt_keeps_alpha_before_subsampling() -> None:
    """A format that loses nothing but depth (less chroma subsampling, the alpha kept) comes before one that
    drops the alpha: prores_ks writes 4:2:2 with alpha as yuva444p10le (its 4444 profile), it wrote yuv422p10le.
    Where every choice loses something the chroma still comes first (VP9: yuva444p as yuv444p, not yuva420p)."""
    from esrgan_video.video.encoder_formats import choose_pix_fmt

    assert choose_pix_fmt("prores_ks", "yuva422p12le")[0] == "yuva444p10le"
    assert choose_pix_fmt("prores_ks", "yuva420p")[0] == "yuva444p10le"
    assert choose_pix_fmt("prores_ks", "yuv420p")[0] == "yuv422p10le"  # no alpha: none added
    assert choose_pix_fmt("prores_ks", "yuv422p12le")[0] == "yuv422p10le"
    assert choose_pix_fmt("libvpx-vp9", "yuva444p")[0] == "yuv444p"
    assert choose_pix_fmt("libvpx-vp9", "yuva420p") == ("yuva420p", None)


def test_cli_prores_keeps_the_alpha_of_a_422_source(tmp_path: Path, capfd, near_identity_file) -> None:
    import numpy as np
    from esrgan_video.testing import run_cli

    src = make_clip(tmp_path / "in.mkv", codec="ffv1", pix_fmt="yuva422p12le", frames=2)
    dst = tmp_path / "out.mov"
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2, noise=0), "--progress", "none",
                "--codec", "prores_ks")
    assert r.returncode == 0, r.stderr
    assert "writing yuva444p10le (10-bit YUV 4:4:4) instead" in r.stderr

    def alpha(path: Path) -> np.ndarray:
        with av.open(str(path)) as c:
            f = next(c.decode(video=0))
            assert f.format.name.startswith("yuva"), f.format.name
            bits = 12 if f.format.name.endswith("12le") else 10
            return np.frombuffer(f.planes[3], np.uint16).reshape(f.height, -1)[:, :f.width] / ((1 << bits) - 1)

    a_in, a_out = alpha(src), alpha(dst)
    assert a_out.shape == (2 * a_in.shape[0], 2 * a_in.shape[1])
    assert abs(a_out.mean() - a_in.mean()) < 0.01 and a_out.std() > 0.5 * a_in.std()  # the source's, upscaled
