"""``esrgan-video preview``: the sheet's layout (sizes, column order, labels), the 3840 px limit, the 1:1 crop,
and a model column that is pixel-for-pixel the frame a video run with the same options writes."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

import media
from esrgan_video.cli.font import text_mask
from esrgan_video.cli.preview import (GUTTER, INK, LABEL_PAD, LABEL_SCALE, MAX_WIDTH, compose, display_rgb, layout,
                                      make_columns)
from esrgan_video.frames.pixel_formats import pixel_format
from esrgan_video.frames.transform import FrameFormat
from esrgan_video.options import UpscaleOptions
from esrgan_video.pipeline import upscale_video
from esrgan_video.video.images import read_image
from esrgan_video.testing import run_cli, save_near_identity

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    out = {}
    for name, scale, seed in (("sharp_x4", 4, 0), ("soft_x2", 2, 1)):
        path = d / f"{name}.safetensors"
        save_near_identity(path, scale, seed=seed)
        out[name] = path
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return media.make_clip(tmp_path_factory.mktemp("clip") / "in.mkv", size=(48, 32), frames=6, fps=25)


def cli(capfd, *args) -> tuple[int, str]:
    p = run_cli(capfd, *args)
    return p.returncode, p.stderr


def label_at(sheet: np.ndarray, box, text: str) -> bool:
    """Whether ``text`` is drawn (in the built-in font) at the start of the label ``box``."""
    mask = text_mask(text, LABEL_SCALE)
    x, y = box[0] + LABEL_PAD, box[1] + LABEL_PAD
    region = sheet[y:y + mask.shape[0], x:x + mask.shape[1]]
    return region.shape[:2] == mask.shape and bool(np.all((region == INK).all(axis=2) == mask))


def test_layout_sizes_and_the_width_limit():
    lay = layout([(256, 192), (256, 192), (128, 96)], source_size=(64, 48))
    assert lay.scale == 1 and lay.width == 256 + 256 + 128 + 4 * GUTTER
    assert [b[0] for b in lay.wholes] == [GUTTER, 2 * GUTTER + 256, 3 * GUTTER + 512]
    assert lay.crop_region == (64, 48, 128, 96)  # the centre, half the frame, at 1:1
    big = layout([(1920, 1080)] * 3, source_size=(480, 270))
    assert big.width <= MAX_WIDTH and big.scale < 1
    assert big.wholes[0][2] == round(1920 * big.scale)
    assert big.crop_region[2:] == big.wholes[0][2:]  # a 1:1 crop as large as a scaled cell, from the centre
    explicit = layout([(256, 192)], source_size=(64, 48), crop=(8, 4, 16, 12))
    assert explicit.crop_region == (32, 16, 64, 48)  # source pixels x4


def test_preview_sheet_columns_labels_and_the_video_runs_frame(tmp_path, models, clip, capfd):
    out = tmp_path / "p.png"
    code, err = cli(capfd, "preview", clip, "--at", "3f", "--model", models["sharp_x4"], "--model", models["soft_x2"],
                    "--codec", "ffv1", "-o", out)
    assert code == 0, err
    sheet, alpha, bits = read_image(out)
    assert alpha is None and bits == 8
    lay = layout([(192, 128), (192, 128), (96, 64)], source_size=(48, 32))
    assert sheet.shape == (lay.height, lay.width, 3)
    for box, text in zip(lay.labels, ["source bicubic", "sharp_x4", "soft_x2"]):  # column order, labels drawn
        assert label_at(sheet, box, text), text
    assert not label_at(sheet, lay.labels[1], "soft_x2")
    # the x4 column is the frame a video run writes with the same options (FFV1: lossless)
    video = tmp_path / "v.mkv"
    upscale_video(clip, video, model=str(models["sharp_x4"]), codec="ffv1")
    with av.open(str(video)) as c:
        frame = [f for f in c.decode(video=0)][3]
        fmt = pixel_format(frame.format.name)
        from esrgan_video.video.planes import copy_planes

        planes = copy_planes(frame, fmt.plane_layouts(frame.width, frame.height))
    from esrgan_video.video.reader import open_input

    with open_input(video) as inp:
        spec = inp.info.color.resolved(inp.info.width, inp.info.height, fmt)
    expected = display_rgb(planes, FrameFormat(fmt, spec))
    x, y, w, h = lay.wholes[1]
    assert (w, h) == (192, 128)
    assert np.array_equal(sheet[y:y + h, x:x + w], expected)
    rx, ry, rw, rh = lay.crop_region
    x, y, w, h = lay.crops[1]
    assert np.array_equal(sheet[y:y + h, x:x + w], expected[ry:ry + rh, rx:rx + rw])
    # the source column is a bicubic enlargement, not the model's output
    x, y, w, h = lay.wholes[0]
    assert not np.array_equal(sheet[y:y + h, x:x + w], expected)
    assert np.abs(sheet[y:y + h, x:x + w].astype(int) - expected.astype(int)).mean() < 25


def test_wide_sheets_are_scaled_down_but_the_crop_stays_1_to_1(clip, models):
    opts = UpscaleOptions.from_kwargs(scale=40.0)  # 48x32 x40 = 1920x1280 per column, three columns
    cols, source_size = make_columns(clip, 2, [(str(models["sharp_x4"]), None), (str(models["soft_x2"]), None)], opts)
    assert [c.rgb.shape for c in cols] == [(1280, 1920, 3)] * 3
    sheet, lay = compose(cols, source_size=source_size, crop=(20, 10, 8, 8))
    assert sheet.shape[1] == lay.width <= MAX_WIDTH and lay.scale < 1
    assert lay.crop_region == (800, 400, 320, 320)
    for col, (x, y, w, h) in zip(cols, lay.crops):
        assert np.array_equal(sheet[y:y + h, x:x + w], col.rgb[400:720, 800:1120])


def test_bad_preview_requests_are_one_line_errors(tmp_path, models, clip, capfd):
    for args, code, needle in [(["--at", "9"], 2, "--at"), (["--at", "100f"], 2, "6 frames"),
                               (["--at", "2.5"], 2, "frames), got '2.5'"), (["--at", "100f"], 2, "got '100f'"),
                               (["--at", "0", "--crop", "1,2,3"], 2, "--crop"),
                               (["--at", "0", "--crop", "100,0,4,4"], 2, "--crop")]:
        got, err = cli(capfd, "preview", clip, *args, "--model", models["soft_x2"], "-o", tmp_path / "p.png")
        assert got == code, err
        lines = [l for l in err.splitlines() if l.strip()]
        assert lines[-1].startswith("esrgan-video: error:") and needle in lines[-1], err
    assert not (tmp_path / "p.png").exists()
    # a detail region outside the source is said before any model is loaded (a missing one is not reached)
    for src in (clip, tmp_path / "still.png"):
        if src != clip:
            from esrgan_video.video.images import write_image

            write_image(src, np.full((32, 48, 3), 90, np.uint8), None, 8)
        got, err = cli(capfd, "preview", src, "--at", "0", "--crop", "48,0,4,4", "--model", tmp_path / "none.pth",
                       "-o", tmp_path / "p.png")
        assert got == 2 and err.strip().splitlines() == [
            "esrgan-video: error: --crop: expected a region inside the 48x32 source, got '48,0,4,4'"], err
    # flags that shape only a written video file are not preview's: refused, not ignored
    for flag in (["--crf", "18"], ["--preset", "slow"], ["--no-audio"], ["--format", "matroska"]):
        got, err = cli(capfd, "preview", clip, "--at", "0", "--model", models["soft_x2"], "-o", tmp_path / "p.png", *flag)
        assert got == 2 and f"unrecognized arguments: {flag[0]}" in err, err
    assert not (tmp_path / "p.png").exists()


def test_column_labels_name_the_model_and_its_blend():
    from esrgan_video.cli.preview import build_parser, column_label

    assert column_label("RealESRGAN_x4plus", None) == "RealESRGAN_x4plus"
    assert column_label("/w/m.safetensors", "RealESRNet_x4plus:0.3") == "m + RealESRNet_x4plus 0.3"
    args = build_parser().parse_args(["in.mkv", "--at", "1", "-o", "p.png", "--model", "A", "--model", "B",
                                      "--blend", "C:0.3", "--model", "D"])
    assert args.columns == [["A", None], ["B", "C:0.3"], ["D", None]]  # a --blend belongs to the --model before it


def test_denoise_reaches_each_columns_model(tmp_path, models, clip, capfd):
    """``--denoise`` applies to every column as to a video run: a model without a denoising partner is refused in
    one line (exit 4, as ``esrgan-video IN OUT --denoise``), not silently left out, and nothing is written."""
    got, err = cli(capfd, "preview", clip, "--at", "0", "--model", models["soft_x2"], "--denoise", "0.5",
                   "-o", tmp_path / "p.png")
    lines = [l for l in err.splitlines() if l.strip()]
    assert got == 4 and len(lines) == 1 and "denoise" in lines[0] and "soft_x2" in lines[0], err
    assert not (tmp_path / "p.png").exists()


def test_verbose_shows_ffmpegs_decoder_messages(tmp_path, models, capfd):
    """``--verbose`` means what it means for a video run: FFmpeg's own decoder messages on a damaged input (none
    without it)."""
    from esrgan_video.video.chatter import show_ffmpeg_log

    good = media.make_clip(tmp_path / "good.mkv", frames=12, options={"g": "1"})
    bad = media.make_corrupt(good, tmp_path / "bad.mkv", frames=[4, 5])
    args = ["preview", bad, "--at", "8f", "--model", models["soft_x2"], "-o"]
    got, err = cli(capfd, *args, tmp_path / "quiet.png")
    assert got == 0 and "[h264 @" not in err, err
    try:
        got, err = cli(capfd, *args, tmp_path / "loud.png", "--verbose")
    finally:
        show_ffmpeg_log(False)
    assert got == 0 and "[h264 @" in err, err


@pytest.mark.parametrize("kind", ["rgba16", "grey_alpha"])
def test_a_still_images_preview_shows_what_a_still_run_writes(tmp_path, models, capfd, kind):
    """A still image's columns are the picture ``esrgan-video IN OUT.png`` writes with the same model (16 bits, grey,
    alpha: the still face), shown at 8 bits. They went through the video path: a 16-bit PNG (rgba64be) and a grey +
    alpha one (ya8) were refused as unsupported pixel formats, and an 8-bit RGB still was shown through yuv444p with
    a notice about libx264."""
    import skimage.data

    from esrgan_video.stills import upscale_image
    from esrgan_video.video.images import round_to_8bit, write_image

    h, w = 16, 24
    alpha = np.tile(np.linspace(0, 255, w).round().astype(np.uint8), (h, 1))
    if kind == "rgba16":
        rgb = skimage.data.astronaut()[100:100 + h, 150:150 + w].astype(np.uint16) * 257 + 3
        write_image(tmp_path / "in.png", rgb, alpha.astype(np.uint16) * 257, 16)
    else:
        write_image(tmp_path / "in.png", np.ascontiguousarray(skimage.data.camera()[200:200 + h, 220:220 + w]),
                    alpha, 8)
    src, out = tmp_path / "in.png", tmp_path / "p.png"
    code, err = cli(capfd, "preview", src, "--at", "0", "--model", models["sharp_x4"], "-o", out)
    assert code == 0 and "libx264" not in err, err
    assert "the alpha channel is upscaled beside it, not shown" in err
    sheet = read_image(out)[0]
    ran = upscale_image(src, tmp_path / "run.png", model=str(models["sharp_x4"]))
    expected = read_image(ran)[0]  # grey: R = G = B
    expected = round_to_8bit(expected) if expected.dtype == np.uint16 else expected
    lay = layout([(4 * w, 4 * h)] * 2, source_size=(w, h))
    x, y, cw, ch = lay.wholes[1]
    assert sheet.shape == (lay.height, lay.width, 3) and (cw, ch) == (4 * w, 4 * h)
    assert np.array_equal(sheet[y:y + ch, x:x + cw], expected)
    x, y, cw, ch = lay.wholes[0]  # the source, enlarged: near the model's near-identity output, not it
    assert 0 < np.abs(sheet[y:y + ch, x:x + cw].astype(int) - expected).mean() < 25
    code, err = cli(capfd, "preview", src, "--at", "1.5", "--model", models["sharp_x4"], "-o", tmp_path / "q.png")
    assert code == 2 and err.strip().splitlines() == [
        f"esrgan-video: error: --at: expected 0 for {src}, a still image, got '1.5'"], err


def test_at_inside_the_last_frames_interval_is_the_last_frame(tmp_path, models, clip, capfd):
    # 6 frames at 25 fps: the last starts at 0.2 s and is shown until 0.24 s, the video's end
    from fractions import Fraction

    from esrgan_video.cli.preview import last_frame_at
    from esrgan_video.video.reader import open_input

    with open_input(clip) as inp:
        assert inp.frame_times()[-1] == Fraction(1, 5)
        assert [last_frame_at(inp, Fraction(t)) for t in ("0.2", "0.2001", "0.2399")] == [Fraction("0.2"), 5, 5]
        assert last_frame_at(inp, Fraction("0.24")) == Fraction("0.24") and last_frame_at(inp, 7) == 7
    opts = UpscaleOptions.from_kwargs(codec="ffv1")
    last, _ = make_columns(clip, 5, [(str(models["soft_x2"]), None)], opts)
    inside, _ = make_columns(clip, Fraction("0.2399"), [(str(models["soft_x2"]), None)], opts)
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(last, inside))
    for at, code in (("0.2399", 0), ("0.24", 2)):  # the end of the last frame is past the video
        got, err = cli(capfd, "preview", clip, "--at", at, "--model", models["soft_x2"], "-o", tmp_path / f"{at}.png")
        assert got == code, err
    assert "--at: expected a time within" in err and "got '0.24'" in err, err
