"""Refusals of the output that need nothing from the model come before the model is looked up.

A frame rate MPEG-2 cannot carry (7 fps), frames not evenly spaced for it, an AVI of a variable-rate input with
B-frames: the writer refused them when it was set up, after the model was looked up,
downloaded or built and the frame transform made (a slow download or TensorRT build, then a one-line refusal).
``upscale_video`` now asks the writer's own checks (``writer.check_video``, through ``output_plan.check_plan``)
before the model; ``esrgan-video preview`` asks the plan's before its first column's model.

The model given is one that fails when it is looked up (a checkpoint path or a registry name that does not exist,
exit 4): the output's refusal (exit 6, or 2 for an option) is said instead, so no model was reached, and nothing is
written. Without the change each case says the model's error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from esrgan_video.testing import run_cli
from media import make_clip

MISSING = {"path": lambda tmp: tmp / "no-such-model.pth", "name": lambda tmp: "NoSuchModel_x4"}


@pytest.mark.parametrize("model", sorted(MISSING))
@pytest.mark.parametrize("make, out, args, code, says", [
    pytest.param(dict(fps=7), "out.mpg", ["--codec", "mpeg2video"], 6,
                 "{dst}: mpeg2video cannot carry in.mkv's frame rate of 7 fps (MPEG-1/2 know 23.976, 24, 25, 29.97, "
                 "30, 50, 59.94 and 60 fps); use --codec libx264, or an .mkv or .mp4 output", id="mpeg2-7fps"),
    pytest.param(dict(pts=[0, 40, 90, 100, 250, 290]), "out.mpg", ["--codec", "mpeg2video"], 6,
                 "{dst}: mpeg2video holds a constant frame rate only and in.mkv's frames are not evenly spaced "
                 "(frame 2 at 0.090 s); use --codec libx264, or an .mkv or .mp4 output", id="mpeg2-vfr"),
    pytest.param(dict(pts=[0, 40, 90, 100, 250, 290]), "out.avi", ["--codec", "libx264"], 6,
                 "{dst}: AVI stores no presentation times and in.mkv has a variable frame rate, so libx264's B-frames "
                 "would be written at wrong times; use .mkv or .mp4, or --encoder-opt bf=0", id="avi-vfr-bframes"),
])
def test_the_outputs_refusal_comes_before_the_model(tmp_path: Path, capfd, model, make, out, args, code, says):
    src = make_clip(tmp_path / "in.mkv", frames=6, **make)
    dst = tmp_path / out
    p = run_cli(capfd, src, dst, "--model", MISSING[model](tmp_path), *args)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert (p.returncode, lines) == (code, [f"esrgan-video: error: {says.format(dst=dst)}"]), p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.mkv"]  # no output, no partial file


def test_a_trim_is_judged_before_the_model_as_the_writer_judges_it(tmp_path: Path, capfd, near_identity_file):
    """The early check judges the trim's frames, as the writer does: MPEG-2 of the evenly spaced part of a
    variable-rate input is written (the early check refuses nothing the writer would write), the whole of it is
    refused before the model."""
    src = make_clip(tmp_path / "in.mkv", pts=[0, 40, 80, 120, 160, 200, 230, 290])
    p = run_cli(capfd, src, tmp_path / "all.mpg", "--codec", "mpeg2video", "--model", tmp_path / "none.pth")
    assert p.returncode == 6 and "frame 6 at 0.230 s" in p.stderr, p.stderr
    p = run_cli(capfd, src, tmp_path / "part.mpg", "--codec", "mpeg2video", "--end", "0.2", "--model",
                near_identity_file(2), "--backend", "torch")
    assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.mkv", "part.mpg"]


def test_the_scale_is_known_for_a_registry_name_only(tmp_path: Path):
    """The frame-size checks need the model's scale: a registry name's is known without loading it (its entry), a
    checkpoint file's is not (it is in the weights), so its size checks stay with the writer."""
    from esrgan_video.options import ModelOptions
    from esrgan_video.video.output_plan import known_scale

    assert known_scale(ModelOptions(model="RealESRGAN_x4plus")) == 4
    assert known_scale(ModelOptions(model="realesr-animevideov3")) == 4
    assert known_scale(ModelOptions(model="NoSuchModel_x4")) is None
    assert known_scale(ModelOptions(model=str(tmp_path / "RealESRGAN_x2plus.pth"))) is None
    named = tmp_path / "RealESRGAN_x2plus"  # a file of a registry name's name is that file, not the entry
    named.write_bytes(b"")
    assert known_scale(ModelOptions(model=str(named))) is None


def test_check_plan_at_an_unknown_scale_refuses_no_size_the_real_plan_writes(tmp_path: Path, capfd,
                                                                           near_identity_file):
    """An 8x8 input into libx265, which opens at 16x16 but not 8x8: the check before the model (scale unknown:
    a checkpoint file) refuses nothing, and the x4 run writes its 32x32 frames."""
    from esrgan_video.options import UpscaleOptions
    from esrgan_video.video.output_plan import check_plan
    from esrgan_video.video.reader import open_input

    src = make_clip(tmp_path / "in.mkv", frames=2, size=(8, 8))
    opts = UpscaleOptions.from_kwargs(None, model=str(near_identity_file(4)), codec="libx265")
    with open_input(src) as inp:
        check_plan(inp.info, opts, src=src, dst=tmp_path / "out.mkv", inp=inp, model_scale=None)
    p = run_cli(capfd, src, tmp_path / "out.mkv", "--codec", "libx265", "--model", near_identity_file(4),
                "--backend", "torch")
    assert p.returncode == 0, p.stderr
    with open_input(tmp_path / "out.mkv") as inp:
        assert (inp.info.width, inp.info.height) == (32, 32)


@pytest.mark.parametrize("size, scale", [((16400, None), None), (None, 257.0)], ids=["size", "scale"])
def test_check_plan_without_an_input_refuses_a_size_given_that_the_encoder_cannot_take(tmp_path: Path, size, scale):
    """Without an input (no frames to judge) and without the model's scale, ``--size`` or ``--scale`` still make the
    frame size: one beyond libx264's 16384 is refused there (it was checked only ``if model_scale``), and the same
    size at the encoder's limit is not."""
    from esrgan_video.errors import OutputError
    from esrgan_video.options import UpscaleOptions
    from esrgan_video.video.output_plan import check_plan
    from esrgan_video.video.reader import open_input

    src = make_clip(tmp_path / "in.mkv", frames=1)  # 64x48
    with open_input(src) as inp:
        info = inp.info
    dst = tmp_path / "out.mkv"
    opts = UpscaleOptions.from_kwargs(None, model=str(tmp_path / "none.pth"), size=size, scale=scale)
    with pytest.raises(OutputError, match=r"libx264 encodes frames of at most 16384x16384, "
                                          r"got (16400x12300|16448x12336)"):
        check_plan(info, opts, src=src, dst=dst)
    fits = UpscaleOptions.from_kwargs(None, model=str(tmp_path / "none.pth"), size=size and (16384, None),
                                      scale=scale and 16384 / 64)
    check_plan(info, fits, src=src, dst=dst)  # refuses nothing it can write


@pytest.mark.parametrize("model", sorted(MISSING))
@pytest.mark.parametrize("args, code, says", [
    (["--pix-fmt", "rgb24"], 6, "encoder libx264 cannot write pixel format 'rgb24'"),
    (["--codec", "png", "--pix-fmt", "yuv420p"], 6, "encoder png cannot write pixel format 'yuv420p'"),
    # a size given (no model's scale needed) that its encoder cannot take: said before the model too
    (["--size", "16400x"], 6, "libx264 encodes frames of at most 16384x16384, got 16400x12300"),
])
def test_previews_plan_is_refused_before_its_model(tmp_path: Path, capfd, model, args, code, says):
    """``esrgan-video preview`` plans each column's frame as a video run plans it: a ``--pix-fmt`` the encoder
    cannot write is said before the first column's model is looked up, and no sheet is written."""
    src = make_clip(tmp_path / "in.mkv", frames=2)
    p = run_cli(capfd, "preview", src, "--at", "0", "--model", MISSING[model](tmp_path), "-o", tmp_path / "p.png",
                *args)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == code and len(lines) == 1 and says in lines[0], p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.mkv"]


@pytest.mark.parametrize("size, out, args, says", [
    pytest.param((2, 2), "out.mkv", ["--codec", "libx265", "--model", "RealESRGAN_x4plus", "--offline"],
                 "{dst}: libx265 cannot encode frames smaller than 16x16, got 8x8; use --codec libx264, or a larger "
                 "--scale or --size", id="x265-8x8-registry-scale"),
    pytest.param((64, 48), "out.avi", ["--codec", "mpeg4", "--size", "8200x", "--model", "{tmp}/none.pth"],
                 "{dst}: mpeg4 encodes frames of at most 8191x8191, got 8200x6150; use --codec libx264, or a smaller "
                 "--scale or --size", id="mpeg4-8200-by-size"),
    pytest.param((64, 48), "out.mpg", ["--codec", "mpeg2video", "--scale", "64", "--model", "{tmp}/none.pth"],
                 "{dst}: mpeg2video cannot encode frames whose width or height is a multiple of 4096, got 4096x3072; "
                 "use another --codec, or another --scale or --size", id="mpeg2-4096-by-scale"),
])
def test_a_frame_size_the_encoder_refuses_is_said_before_the_model(tmp_path: Path, capfd, isolated_cache, size, out,
                                                                   args, says):
    """The output size (the input's x the model's scale, where a registry name tells it without the model, or
    ``--size`` / ``--scale``) outside the encoder's limits (``video.frame_limits``) is refused before the model is
    looked up: exit 6 and one line, not the model's error (a registry model offline with an empty cache, a missing
    checkpoint: exit 4), nor FFmpeg's "returned 22" once the encoder opened."""
    work = tmp_path / "work"
    work.mkdir()
    src = make_clip(work / "in.mkv", frames=2, size=size)
    dst = work / out
    p = run_cli(capfd, src, dst, *[a.format(tmp=work) for a in args])
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert (p.returncode, lines) == (6, [f"esrgan-video: error: {says.format(dst=dst)}"]), p.stderr
    assert sorted(f.name for f in work.iterdir()) == ["in.mkv"]


def test_a_checkpoints_frame_size_is_refused_once_it_is_loaded(tmp_path: Path, capfd, near_identity_file):
    """A checkpoint file's scale is in its weights: its output size is checked right after it is loaded, before a
    backend is built or a frame is read, in the same words (a 2x2 input x4 into libx265, which opens at 16x16)."""
    src = make_clip(tmp_path / "in.mkv", frames=2, size=(2, 2))
    dst = tmp_path / "out.mkv"
    p = run_cli(capfd, src, dst, "--codec", "libx265", "--model", near_identity_file(4), "--backend", "torch")
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert (p.returncode, lines) == (6, [f"esrgan-video: error: {dst}: libx265 cannot encode frames smaller than "
                                         "16x16, got 8x8; use --codec libx264, or a larger --scale or --size"]), p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.mkv"]


def _still(path: Path, size: tuple[int, int]) -> Path:
    import av
    import numpy as np

    frame = av.VideoFrame.from_ndarray(np.zeros((size[1], size[0]), np.uint8), format="gray")
    with av.open(str(path), "w", format="image2") as c:
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = size[0], size[1], "gray"
        for packet in [*s.encode(frame), *s.encode(None)]:
            c.mux(packet)
    return path


@pytest.mark.parametrize("size, args, says", [
    pytest.param((64, 48), ["--scale", "100000", "--model", "{tmp}/none.pth"],
                 "the none column would be 6400000x4800000 (64x48 by --scale 100000)", id="by-scale"),
    pytest.param((4096, 4096), ["--model", "RealESRGAN_x4plus", "--offline"],
                 "the RealESRGAN_x4plus column would be 16384x16384 (4096x4096 by the model's x4)", id="by-model"),
])
def test_a_still_previews_columns_are_planned_before_its_model(tmp_path: Path, capfd, isolated_cache, size, args,
                                                              says):
    """A still's columns are planned before the first column's model is looked up (``preview.plan_still_columns``):
    a picture FFmpeg cannot encode (a still run could not write it) is one line, exit 6, not the model's error (exit
    4, or 5 for a registry model offline) after which the column would have been made."""
    work = tmp_path / "work"
    work.mkdir()
    src = _still(work / "in.png", size)
    p = run_cli(capfd, "preview", src, "--at", "0", "-o", work / "p.png", *[a.format(tmp=work) for a in args])
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert (p.returncode, lines) == (6, [
        f"esrgan-video: error: {src}: {says}, more than FFmpeg encodes in one picture ((width + 128) x (height + 128) "
        "under 2^28), so a still run could not write it either; use a smaller --scale or --size"]), p.stderr
    assert sorted(f.name for f in work.iterdir()) == ["in.png"]


@pytest.mark.parametrize("size, out, args, says", [
    pytest.param((4100, 10), "out.webp", ["--model", "RealESRGAN_x4plus", "--offline"],
                 "16400x40 (4100x10 by the model's x4), more than WEBP holds (libwebp writes at most 16383x16383); "
                 "use a .png output, or a smaller --scale or --size", id="webp-by-model"),
    pytest.param((4096, 4096), "out.png", ["--model", "RealESRGAN_x4plus", "--offline"],
                 "16384x16384 (4096x4096 by the model's x4), more than FFmpeg encodes in one picture ((width + 128) x "
                 "(height + 128) under 2^28); use a smaller --scale or --size", id="png-by-model"),
    pytest.param((64, 48), "out.jpg", ["--scale", "100000", "--model", "{tmp}/none.pth"],
                 "6400000x4800000 (64x48 by --scale 100000), more than FFmpeg encodes in one picture ((width + 128) x "
                 "(height + 128) under 2^28); use a smaller --scale or --size", id="jpg-by-scale"),
    pytest.param((64, 48), "out.webp", ["--size", "16400x", "--model", "{tmp}/none.pth"],
                 "16400x12300 (64x48 by --size), more than WEBP holds (libwebp writes at most 16383x16383); "
                 "use a .png output, or a smaller --scale or --size", id="webp-by-size"),
])
def test_a_still_too_large_for_its_format_is_refused_before_the_model(tmp_path: Path, capfd, isolated_cache, size,
                                                                      out, args, says):
    """A still's output size (the model's scale where a registry name tells it, or ``--scale`` / ``--size``) beyond
    what its format's encoder writes (``video.frame_limits``: libwebp's 16383, FFmpeg's picture limit for all) is one
    line, exit 6, before the model is looked up (not its error: exit 4, or 5 offline), where it failed when the file
    was written, after the model ran on the whole picture."""
    work = tmp_path / "work"
    work.mkdir()
    src = _still(work / "in.png", size)
    dst = work / out
    p = run_cli(capfd, src, dst, *[a.format(tmp=work) for a in args])
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert (p.returncode, lines) == (6, [f"esrgan-video: error: {dst}: the upscaled picture would be {says}"]), p.stderr
    assert sorted(f.name for f in work.iterdir()) == ["in.png"]


def test_a_still_too_large_for_a_checkpoints_scale_is_refused_before_it_runs(tmp_path: Path, capfd,
                                                                            near_identity_file):
    """A checkpoint's scale is in its weights: a still's size is checked once it is loaded, before it runs (a 4100x10
    PNG x4 into WebP: 16400x40, over libwebp's 16383), in the same words; the same still x2 is written."""
    src = _still(tmp_path / "in.png", (4100, 10))
    dst = tmp_path / "out.webp"
    p = run_cli(capfd, src, dst, "--model", near_identity_file(4), "--backend", "torch")
    lines = [ln for ln in p.stderr.splitlines() if "error" in ln]  # the grey-into-WebP notice comes before the model
    assert (p.returncode, lines) == (6, [
        f"esrgan-video: error: {dst}: the upscaled picture would be 16400x40 (4100x10 by the model's x4), more than "
        "WEBP holds (libwebp writes at most 16383x16383); use a .png output, or a smaller --scale or --size"]), p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.png"]
    p = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--backend", "torch")
    assert p.returncode == 0, p.stderr
    import av
    with av.open(str(dst)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (8200, 20)
