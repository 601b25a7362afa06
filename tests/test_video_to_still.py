"""A video into a single still image's name (``x.png``, ``x.jpg``, ``x.tiff``): FFmpeg's image2 muxer holds one
picture, and a second frame failed the run ("Invalid argument … returned 22") after the model had loaded. Now more
than one frame is refused by ``writer.check_output`` in one line, exit 6, before the model is looked at (a missing
model file is not reached), naming what holds a video; one frame (a one-frame video, or a trim to one) still works."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from esrgan_video.errors import OutputError
from esrgan_video.testing import run_cli
from esrgan_video.video.writer import check_output

from media import make_clip


@pytest.fixture(scope="module")
def model_file(near_identity_file) -> Path:
    return near_identity_file(2)


def test_check_output_counts_frames_only_for_a_single_image(tmp_path):
    counted = []

    def count():
        counted.append(1)
        return 3

    assert check_output(tmp_path / "x.mkv", "ffv1", frames=count) == "matroska" and not counted  # not asked
    assert check_output(tmp_path / "x.png", "png", frames=1) == "image2"
    assert check_output(tmp_path / "x.png", "png") == "image2"  # not known: not refused
    with pytest.raises(OutputError, match=r"x\.png: a \.png file holds one picture, not a video of 3 frames; "
                                          r"write \.apng, an animated \.webp or a video container"):
        check_output(tmp_path / "x.png", "png", frames=count)
    assert counted == [1]


def test_a_video_into_a_still_image_name_is_refused_before_the_model_loads(tmp_path, capfd):
    make_clip(tmp_path / "a.mkv", frames=3)
    for name, more in [("x.png", ["--codec", "png"]), ("x.png", []), ("x.jpg", []), ("x.tiff", ["--codec", "tiff"])]:
        p = run_cli(capfd, tmp_path / "a.mkv", tmp_path / name, "--model", str(tmp_path / "no-such-model.pth"), *more)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 6 and "Traceback" not in p.stderr, p.stderr
        assert lines == [f"esrgan-video: error: {tmp_path / name}: a {Path(name).suffix} file holds one picture, not "
                         "a video of 3 frames; write .apng, an animated .webp or a video container (.mkv, .mp4, …), "
                         "or keep one frame with --start and --end (esrgan-video preview IN --at T -o OUT.png "
                         "compares models on one)"], p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.mkv"]


def test_one_frame_into_a_png_still_works(tmp_path, capfd, model_file):
    make_clip(tmp_path / "one.mkv", frames=1)
    make_clip(tmp_path / "a.mkv", frames=3)
    for src, out, more in [("one.mkv", "one.png", []), ("a.mkv", "first.png", ["--start", "0", "--end", "0.04"])]:
        p = run_cli(capfd, tmp_path / src, tmp_path / out, "--model", str(model_file), "--codec", "png", *more)
        assert p.returncode == 0, p.stderr
        with av.open(str(tmp_path / out)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert len(frames) == 1 and frames[0].shape == (96, 128, 3), out


@pytest.mark.parametrize("out, codec", [("one.png", "png"), ("one.bmp", "bmp")])
def test_one_frame_needs_no_codec_for_a_png_or_bmp(tmp_path, capfd, model_file, out, codec):
    """Without --codec a one-frame video into .png was 'the .png container cannot hold libx264 video': the encoder of
    a one-picture name comes from its extension (writer.IMAGE2_CODECS)."""
    make_clip(tmp_path / "one.mkv", frames=1)
    p = run_cli(capfd, tmp_path / "one.mkv", tmp_path / out, "--model", str(model_file))
    assert p.returncode == 0, p.stderr
    with av.open(str(tmp_path / out)) as c:
        assert c.streams.video[0].codec_context.name == codec
        assert len(list(c.decode(video=0))) == 1
