"""A video into a single still image's name (``x.png``, ``x.jpg``, ``x.tiff``): FFmpeg's image2 muxer holds one
picture, and a second frame failed the run ("Invalid argument … returned 22") after the model had loaded. Now more
than one frame is refused by ``writer.check_output`` in one line, exit 6, before the model is looked at (a missing
model file is not reached), naming what holds a video; one frame (a one-frame video, or a trim to one) still works."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
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


def _rgb_of(path):
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.mark.parametrize("out, more", [("one.jpg", []), ("one.jpeg", []), ("two.jpg", ["--codec", "mjpeg"])])
def test_one_frame_into_a_jpeg_is_full_range_bt601(tmp_path, capfd, model_file, out, more):
    """A one-frame limited-range BT.709 video into .jpg failed 'avcodec_open2("mjpeg") returned 22' (FFmpeg's JPEG
    encoder opens on full range only), and without --codec was 'the .jpg container cannot hold libx264 video'. It is
    written as JFIF's colour — full range, BT.601 — so a reader's RGB (PIL's) is the RGB a PNG of the same run
    holds, within the JPEG's quantisation (left limited or BT.709 it is off by several codes)."""
    pytest.importorskip("PIL")
    make_clip(tmp_path / "one.mkv", frames=1, matrix=1, primaries=1, transfer=1, full_range=False)
    for name, extra in [("ref.png", []), (out, more)]:
        p = run_cli(capfd, tmp_path / "one.mkv", tmp_path / name, "--model", str(model_file), *extra)
        assert p.returncode == 0, p.stderr
    with av.open(str(tmp_path / out)) as c:
        assert c.streams.video[0].codec_context.name == "mjpeg"
        frame = next(c.decode(video=0))
        assert frame.color_range == 2  # full (pc)
    diff = _rgb_of(tmp_path / out) - _rgb_of(tmp_path / "ref.png")
    assert np.abs(diff).mean() < 2.5 and np.abs(diff.reshape(-1, 3).mean(axis=0)).max() < 0.5, \
        (np.abs(diff).mean(), diff.reshape(-1, 3).mean(axis=0))


@pytest.mark.parametrize("src, out, fmt", [
    (dict(), "one.tiff", "rgb24"),
    (dict(), "one.tif", "rgb24"),
    (dict(codec="ffv1", pix_fmt="yuv420p10le"), "deep.tiff", "rgb48le"),
    (dict(codec="ffv1", pix_fmt="yuva420p"), "alpha.tiff", "rgba"),
    (dict(codec="ffv1", pix_fmt="gray"), "grey.tiff", "gray"),
])
def test_one_frame_into_a_tiff_is_rgb_by_default(tmp_path, capfd, model_file, src, out, fmt):
    """.tif/.tiff needed --codec tiff and then held YUV 4:2:0 (which few readers show): now tiff is the default and
    the picture is RGB of the input's depth and alpha (grey stays grey), read back the same by PIL, imageio and
    PyAV."""
    make_clip(tmp_path / "one.mkv", frames=1, **src)
    for more in ([], ["--codec", "tiff", "-y"]):
        p = run_cli(capfd, tmp_path / "one.mkv", tmp_path / out, "--model", str(model_file), *more)
        assert p.returncode == 0, p.stderr
        with av.open(str(tmp_path / out)) as c:
            st = c.streams.video[0]
            assert (st.codec_context.name, st.codec_context.pix_fmt) == ("tiff", fmt)
            mine = next(c.decode(video=0)).to_ndarray()
        iio = pytest.importorskip("imageio.v3")
        assert np.array_equal(iio.imread(tmp_path / out), mine)
        if fmt != "rgb48le":  # PIL reads 16-bit RGB TIFF as 8 bits
            from PIL import Image

            assert np.array_equal(np.asarray(Image.open(tmp_path / out)), mine)
