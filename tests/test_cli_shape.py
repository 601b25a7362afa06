"""What the command line does to the picture's shape and length: --size/--fit/--square-pixels keep the display
aspect (the issue's anamorphic 160x120 SAR 32:27 and square 4:3 sources), outputs that cannot store a SAR get
square pixels, and trims that select no frame are usage errors that write nothing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import media
from esrgan_video.testing import run_cli

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tiny_model(near_identity_file) -> Path:
    return near_identity_file(4)


@pytest.fixture(scope="module")
def anamorphic(tmp_path_factory) -> Path:
    return media.make_clip(tmp_path_factory.mktemp("ana") / "dvd.mkv", size=(160, 120), frames=2, sar=Fraction(32, 27))


@pytest.fixture(scope="module")
def square43(tmp_path_factory) -> Path:
    return media.make_clip(tmp_path_factory.mktemp("sq") / "tv.mp4", size=(160, 120), frames=2)


def cli(capfd, *args) -> tuple[int, str]:
    p = run_cli(capfd, *args)
    return p.returncode, p.stderr


def shape(path: Path) -> tuple[int, int, Fraction, list[np.ndarray]]:
    """(width, height, SAR, decoded RGB frames) of a written file."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        sar = s.codec_context.sample_aspect_ratio
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        return s.codec_context.width, s.codec_context.height, Fraction(sar) if sar else Fraction(1), frames


def dar(w: int, h: int, sar: Fraction) -> float:
    return float(Fraction(w) * sar / h)


FAST = ("--preset", "ultrafast", "-y")


def test_anamorphic_size_keeps_the_display_aspect_by_setting_the_sar(tmp_path, tiny_model, anamorphic, capfd):
    code, err = cli(capfd, anamorphic, tmp_path / "o.mkv", "--model", tiny_model, "--size", "1920x1080", *FAST)
    assert code == 0, err
    w, h, sar, _ = shape(tmp_path / "o.mkv")
    assert (w, h, sar) == (1920, 1080, Fraction(8, 9))
    assert dar(w, h, sar) == pytest.approx(160 * 32 / 27 / 120, rel=1e-3)  # 1.58, not 2.11
    assert "sample aspect ratio 8:9" in err and "1920x1080 SAR 8:9" in err
    assert "libx264 crf 16 (default), preset ultrafast" in err  # the summary says which encoder settings were used


def test_a_size_that_comes_out_square_does_not_suggest_fit(tmp_path, tiny_model, capfd):
    """An anamorphic 72x48 SAR 4:3 (display 2:1) sized to 96x48 comes out square-pixelled: the note says the
    display aspect is kept with square pixels, not "writing the sample aspect ratio 1:1 (use --fit pad|crop|stretch
    for square pixels)", advice for a result that already has them."""
    src = media.make_clip(tmp_path / "wide.mkv", size=(72, 48), frames=2, sar=Fraction(4, 3))
    code, err = cli(capfd, src, tmp_path / "o.mkv", "--model", tiny_model, "--size", "96x48", *FAST)
    assert code == 0, err
    assert shape(tmp_path / "o.mkv")[:3] == (96, 48, 1)
    assert "--size 96x48: the display aspect 2 is kept with square pixels (the source's sample aspect ratio was 4:3)" in err
    assert "--fit" not in err and "1:1" not in err
    # not square at this size: the SAR is written and --fit offered, as before
    code, err = cli(capfd, src, tmp_path / "n.mkv", "--model", tiny_model, "--size", "96x72", *FAST)
    assert code == 0 and shape(tmp_path / "n.mkv")[:3] == (96, 72, Fraction(3, 2))
    assert "sample aspect ratio 3:2 (use --fit pad|crop|stretch for square pixels)" in err


def test_square_43_size_keeps_4_3(tmp_path, tiny_model, square43, capfd):
    code, err = cli(capfd, square43, tmp_path / "o.mp4", "--model", tiny_model, "--size", "1280x720", *FAST)
    assert code == 0, err
    w, h, sar, _ = shape(tmp_path / "o.mp4")
    assert (w, h) == (1280, 720) and dar(w, h, sar) == pytest.approx(4 / 3)
    assert "3:4" in err
    code, err = cli(capfd, square43, tmp_path / "w.mp4", "--model", tiny_model, "--size", "1280x", *FAST)
    assert code == 0 and shape(tmp_path / "w.mp4")[:3] == (1280, 960, 1)


def test_fit_pad_gives_square_pixel_frames_with_black_bars(tmp_path, tiny_model, square43, capfd):
    code, err = cli(capfd, square43, tmp_path / "o.mkv", "--model", tiny_model, "--size", "1280x720", "--fit", "pad",
                    "--codec", "ffv1", "-y")
    assert code == 0, err
    w, h, sar, frames = shape(tmp_path / "o.mkv")
    assert (w, h, sar) == (1280, 720, 1)
    f = frames[0].astype(int)
    assert f[:, :156].max() <= 2 and f[:, -156:].max() <= 2  # bars of (1280 - 960) / 2 = 160 px, black
    assert f[:, 170:-170].mean() > 20  # the picture itself
    code, err = cli(capfd, square43, tmp_path / "c.mkv", "--model", tiny_model, "--size", "1280x720", "--fit", "crop",
                    "--codec", "ffv1", "-y")
    assert code == 0 and shape(tmp_path / "c.mkv")[:3] == (1280, 720, 1)
    assert shape(tmp_path / "c.mkv")[3][0][:, :8].mean() > 20  # filled to the edges


def test_square_pixels_and_outputs_without_a_sar(tmp_path, tiny_model, anamorphic, capfd):
    code, err = cli(capfd, anamorphic, tmp_path / "sq.mp4", "--model", tiny_model, "--square-pixels", *FAST)
    assert code == 0, err
    w, h, sar, _ = shape(tmp_path / "sq.mp4")
    assert (w, h, sar) == (758, 480, 1) and "resampled to square pixels" in err
    # FFV1 in Matroska cannot carry the SAR here: resampled, and said, instead of a silently wrong shape
    code, err = cli(capfd, anamorphic, tmp_path / "lossless.mkv", "--model", tiny_model, "--codec", "ffv1", "-y")
    assert code == 0, err
    w, h, sar, _ = shape(tmp_path / "lossless.mkv")
    assert (w, h) == (758, 480) and "cannot store" in err
    # the default keeps the source's SAR where it can be stored
    code, err = cli(capfd, anamorphic, tmp_path / "keep.mkv", "--model", tiny_model, *FAST)
    assert code == 0 and shape(tmp_path / "keep.mkv")[:3] == (640, 480, Fraction(32, 27))


@pytest.mark.parametrize("trim", [("--start", "5"), ("--start", "90f", "--end", "100f"), ("--start", "1", "--end", "0.5")],
                         ids=["start-past-end", "frames-past-end", "end-before-start"])
def test_a_trim_that_selects_no_frame_is_a_usage_error(tmp_path, tiny_model, capfd, trim):
    src = media.make_clip(tmp_path / "clip.mp4", size=(32, 24), frames=36, fps=24)  # 1.5 s
    code, err = cli(capfd, src, tmp_path / "o.mkv", "--model", tiny_model, *trim)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("esrgan-video: error: --start/--end:")
    assert "1.500 s, 36 frames" in lines[0] and "clip.mp4" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
