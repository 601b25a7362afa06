"""The ``esrgan-video`` command as a user runs it: a subprocess, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

import media
from esrgan_video.cli.main import _upscale_parser
from esrgan_video.testing import run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_model(near_identity_file) -> Path:
    return near_identity_file(4)


def run(*args, timeout=300, **kw) -> subprocess.CompletedProcess:
    """The command as a user runs it: a new Python process."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "esrgan_video", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, **kw)


run_here = run_cli
"""The same entry point in this process (saves a torch import per call); an uncaught exception fails the test."""


def assert_one_line_error(p: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert p.returncode == code, p.stderr
    assert "Traceback" not in p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("esrgan-video: error:"), p.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_upscale_with_json_progress(tmp_path, tiny_model):
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=5, audio=[media.AudioTrack()])
    dst = tmp_path / "out.mkv"
    p = run(src, dst, "--model", tiny_model, "--device", "cpu", "--progress", "json")
    assert p.returncode == 0, p.stderr
    objects = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]
    events = [e for e in objects if "frame" in e]
    assert [e["frame"] for e in events] == [1, 2, 3, 4, 5]
    assert events[-1]["total"] == 5 and set(events[-1]) == {"frame", "total", "fps", "eta", "frames_reused",
                                                            "tiles_reused"}
    reuse = {"mode": "exact", "frames": 5, "frames_reused": 0, "tiles": 5, "tiles_reused": 0, "tile_fraction": 0.0,
             "resets": 0}  # --reuse exact is the default; the clip's frames all differ
    assert objects[-1] == {"done": True, "output": str(dst), "frames": 5, "lost_frames": 0, "truncated": False,
                           "damaged": False, "damage": None, "reuse": reuse}  # the result, last (#14.1)
    summary = p.stderr.strip().splitlines()[-1]  # says which backend --backend auto picked, and why
    assert summary.startswith(f"esrgan-video: wrote {dst} (5 frames")
    assert summary.endswith("backend onnxruntime: device cpu requested, onnxruntime found → ONNX Runtime CPU fp32; "
                            "reuse exact: 0/5 frames, 0/5 tiles (0 %) reused)")
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert c.streams.video[0].codec_context.width == 128
        assert sum(1 for _ in c.decode(video=0)) == 5


def test_quiet_prints_nothing(tmp_path, tiny_model, capfd):
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=2)
    p = run_here(capfd, src, tmp_path / "o.mp4", "--model", tiny_model, "-q")
    assert p.returncode == 0 and p.stderr == "" and p.stdout == ""


def test_errors_are_one_line_with_exit_codes(tmp_path, tiny_model, capfd):
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=2)
    assert_one_line_error(run_here(capfd, tmp_path / "nope.mp4", tmp_path / "o.mp4", "--model", tiny_model), 3, "nope.mp4")
    assert_one_line_error(run_here(capfd, media.make_empty(tmp_path / "e.mp4"), tmp_path / "o.mp4", "--model", tiny_model), 3, "e.mp4")
    assert_one_line_error(run_here(capfd, media.make_not_media(tmp_path / "t.mkv"), tmp_path / "o.mp4", "--model", tiny_model), 3, "t.mkv")
    assert_one_line_error(run_here(capfd, "-", tmp_path / "o.mp4", "--model", tiny_model), 3, "standard input")
    assert_one_line_error(run_here(capfd, src, tmp_path / "o.mp4", "--model", "NoSuchModel", "--offline"), 4, "NoSuchModel")
    assert_one_line_error(run_here(capfd, src, src, "--model", tiny_model, "-y"), 6)
    (tmp_path / "exists.mp4").write_bytes(b"keep me")
    assert_one_line_error(run_here(capfd, src, tmp_path / "exists.mp4", "--model", tiny_model), 6, "exists.mp4")
    assert (tmp_path / "exists.mp4").read_bytes() == b"keep me"
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(os.urandom(300))
    assert_one_line_error(run_here(capfd, src, tmp_path / "o.mp4", "--model", garbage), 4, "garbage.pth")
    bad = run_here(capfd, src, tmp_path / "o.mp4", "--size", "big")
    assert bad.returncode == 2 and "--size" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "o.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.mp4", "exists.mp4", "garbage.pth", "in.mp4", "t.mkv"]


def test_output_place_errors_are_one_line(tmp_path, tiny_model, capfd):
    """An output whose folder is a file, or in a folder where no file can be created (``/sys``, root's too): one
    line naming the output and what is wrong, exit 6, nothing written."""
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=2)
    (tmp_path / "afile").write_text("not a folder")
    p = run_here(capfd, src, tmp_path / "afile" / "o.mp4", "--model", tiny_model)
    assert_one_line_error(p, 6, f"{tmp_path / 'afile'} is not a directory")
    try:
        Path("/sys/.esrgan-probe").open("xb").close()
    except OSError:  # sysfs refuses new files (Linux)
        p = run_here(capfd, src, "/sys/o.mp4", "--model", tiny_model)
        assert_one_line_error(p, 6, "/sys/o.mp4: cannot create a file in /sys (Permission denied)")
    else:
        Path("/sys/.esrgan-probe").unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "in.mp4"]


def test_still_images(tmp_path, tiny_model, capfd):
    rng = np.random.default_rng(0)
    rgb8 = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb8, np.full((12, 16, 1), 77, np.uint8)], axis=2)
    rgb16 = rng.integers(0, 65536, (12, 16, 3), dtype=np.uint16)
    for name, arr, fmt in [("a.png", rgb8, "rgb24"), ("b.png", rgba, "rgba"), ("c.png", rgb16, "rgb48le")]:
        with av.open(str(tmp_path / name), "w", format="image2") as c:
            s = c.add_stream("png", rate=1)
            s.width, s.height = 16, 12
            s.pix_fmt = {"rgb24": "rgb24", "rgba": "rgba", "rgb48le": "rgb48be"}[fmt]
            frame = av.VideoFrame.from_ndarray(arr, format=fmt).reformat(format=s.pix_fmt)
            for pkt in s.encode(frame):
                c.mux(pkt)
            for pkt in s.encode(None):
                c.mux(pkt)
    from esrgan_video.stills import read_image

    for name in ("a.png", "b.png", "c.png"):
        p = run_here(capfd, tmp_path / name, tmp_path / f"x4_{name}", "--model", tiny_model, "-q")
        assert p.returncode == 0, p.stderr
    out, alpha, bits = read_image(tmp_path / "x4_a.png")
    assert out.shape == (48, 64, 3) and alpha is None and bits == 8
    assert np.abs(out.astype(int)[::4, ::4] - rgb8.astype(int)).mean() < 20  # near-identity: an upscaled copy
    out, alpha, bits = read_image(tmp_path / "x4_b.png")
    assert alpha is not None and alpha.shape == (48, 64) and abs(int(alpha.mean()) - 77) <= 3
    out, alpha, bits = read_image(tmp_path / "x4_c.png")
    assert bits == 16 and out.dtype == np.uint16
    assert np.abs(out.astype(np.int64)[::4, ::4] - rgb16.astype(np.int64)).mean() < 20 * 257
    p = run_here(capfd, tmp_path / "a.png", tmp_path / "a.jpg", "--model", tiny_model, "-q", "--scale", "2")
    assert p.returncode == 0, p.stderr
    assert read_image(tmp_path / "a.jpg")[0].shape == (24, 32, 3)


def test_still_images_take_fit(tmp_path, tiny_model, capfd):
    """--size WxH --fit pad|crop reaches stills as it does videos: a 16x12 picture in a 64x64 frame gets black bars
    above and below (pad) or fills a 48x48 frame, cut at the sides (crop), instead of being stretched."""
    from esrgan_video.video.images import read_image, write_image

    rgb = np.random.default_rng(1).integers(60, 200, (12, 16, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", rgb, None, 8)
    p = run_here(capfd, tmp_path / "a.png", tmp_path / "pad.png", "--model", tiny_model, "-q",
                 "--size", "64x64", "--fit", "pad")
    assert p.returncode == 0, p.stderr
    out = read_image(tmp_path / "pad.png")[0].astype(int)
    assert out.shape == (64, 64, 3)
    assert out[:8].max() == 0 and out[56:].max() == 0 and out[8:56].min() > 0  # the 64x48 picture, centred
    assert np.abs(out[8:56:4, ::4] - rgb).mean() < 20
    p = run_here(capfd, tmp_path / "a.png", tmp_path / "crop.png", "--model", tiny_model, "-q",
                 "--size", "48x48", "--fit", "crop")
    assert p.returncode == 0, p.stderr
    out = read_image(tmp_path / "crop.png")[0].astype(int)
    assert out.shape == (48, 48, 3) and np.abs(out[::4, ::4] - rgb[:, 2:14]).mean() < 20  # 64x48, 8 px cut each side


def test_still_image_output_errors_are_one_line(tmp_path, tiny_model, capfd):
    """A still's output in a missing folder, or a format that cannot keep the input's alpha: one line, exit 6, no
    traceback, nothing written (the alpha refusal comes before the model runs)."""
    from esrgan_video.video.images import write_image

    rgb = np.full((12, 16, 3), 100, np.uint8)
    write_image(tmp_path / "rgba.png", rgb, np.full((12, 16), 50, np.uint8), 8)
    p = run_here(capfd, tmp_path / "rgba.png", tmp_path / "nodir" / "o.png", "--model", tiny_model)
    assert_one_line_error(p, 6, "the directory", "does not exist")
    p = run_here(capfd, tmp_path / "rgba.png", tmp_path / "o.jpg", "--model", tiny_model)
    assert_one_line_error(p, 6, "o.jpg", "alpha")
    for video in ("o.mp4", "o"):  # a still to a video's extension (or none): it was an 'unsupported image extension'
        p = run_here(capfd, tmp_path / "rgba.png", tmp_path / video, "--model", tiny_model)
        assert_one_line_error(p, 6, f"{tmp_path / video}: rgba.png is a still image; write it to an image (.bmp, "
                              ".jpeg, .jpg, .png, .tif, .tiff, .webp), not a video")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["rgba.png"]


def test_video_only_options_on_a_still_image_are_said_to_be_ignored(tmp_path, tiny_model, capfd):
    """--crf, --start and the like mean nothing for a still: a notice says so (instead of taking them silently);
    a plain still run says nothing of the kind."""
    from esrgan_video.video.images import write_image

    write_image(tmp_path / "a.png", np.full((12, 16, 3), 100, np.uint8), None, 8)
    p = run_here(capfd, tmp_path / "a.png", tmp_path / "b.png", "--model", tiny_model, "--crf", "18", "--start", "2")
    assert p.returncode == 0, p.stderr
    assert "b.png: --crf and --start apply to videos, not to a still image; ignored" in p.stderr
    p = run_here(capfd, tmp_path / "a.png", tmp_path / "d.png", "--model", tiny_model, "--codec", "libx265")
    assert p.returncode == 0, p.stderr
    assert "d.png: --codec applies to videos, not to a still image; ignored" in p.stderr
    p = run_here(capfd, tmp_path / "a.png", tmp_path / "c.png", "--model", tiny_model, "--tile", "8")
    assert p.returncode == 0 and "ignored" not in p.stderr, p.stderr


def test_models_command_lists_the_registry(capfd):
    p = run_here(capfd, "models")
    assert p.returncode == 0, p.stderr
    for name in ("RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B", "RealESRGAN_x2plus", "RealESRNet_x4plus"):
        assert name in p.stdout


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_device_without_a_gpu_is_one_line(tmp_path, tiny_model, capfd):
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=1)
    assert_one_line_error(run_here(capfd, src, tmp_path / "o.mp4", "--model", tiny_model, "--device", "cuda"), 7,
                          "no CUDA GPU")
    # a device that is no device at all is a command-line error (2; it was 3 before the options dataclasses)
    assert run_here(capfd, src, tmp_path / "o.mp4", "--model", tiny_model, "--device", "tpu").returncode == 2


def test_demo_output_dir_that_is_a_file_is_one_line(tmp_path, capfd):
    """A demo --output-dir that names a file is an output problem (6), said in one line, before anything is fetched."""
    blocker = tmp_path / "demo-output"
    blocker.write_text("not a folder")
    r = run_here(capfd, "demo", "--output-dir", blocker)
    assert_one_line_error(r, 6, "cannot make the output folder")
    assert blocker.read_text() == "not a folder"


def _backwards_mkv(tmp_path) -> Path:
    """Presentation times that jump back at frame 10 (0.360 s -> 0.160 s)."""
    return media.make_pts_jump_back(tmp_path, frames=20, at=10, by=240)


def test_timestamps_going_back_are_one_line_and_leave_nothing(tmp_path, tiny_model, capfd):
    """Timestamps that go back in a container without discontinuities (Matroska): exit 3 naming the file, the
    frames and both times — not the writer's traceback — and no output or temporary file is left."""
    src = _backwards_mkv(tmp_path)
    p = run_here(capfd, src, tmp_path / "out.mkv", "--model", tiny_model, "-y")
    assert_one_line_error(p, 3, "back.mkv", "0.360 s (frame 9)", "0.160 s (frame 10)")
    assert sorted(q.name for q in tmp_path.iterdir()) == ["back.mkv"]


def _help_of(parser, flag: str) -> str:
    return next(a.help for a in parser._actions if flag in a.option_strings)


def test_help_names_what_the_code_does():
    """-h says what the code does: --square-pixels names every codec whose SAR only MOV/MP4 keep (none in its
    bitstream: the writer's rule, not only the three the SAR planner knows), --tile-pad the model's default overlaps, and no command's
    description shows a docstring's reST literals."""
    from esrgan_video.arch.srvgg import CompactParams
    from esrgan_video.tiling import DEFAULT_TILE_PAD
    from esrgan_video.video.writer import BITSTREAM_SAR_CODECS

    parser = _upscale_parser()
    shown = {"ffv1": "FFV1", "prores": "ProRes", "utvideo": "UT Video", "huffyuv": "HuffYUV", "vp8": "VP8",
             "vp9": "VP9", "av1": "AV1", "rawvideo": "rawvideo"}  # the offered codecs without a SAR in the bitstream
    square = _help_of(parser, "--square-pixels")
    assert not set(shown) & BITSTREAM_SAR_CODECS
    assert [c for c in sorted(shown) if shown[c] not in square] == []
    pad = _help_of(parser, "--tile-pad")
    assert f"{DEFAULT_TILE_PAD} for ESRGAN/RRDB" in pad and f"{CompactParams().receptive_radius} for " in pad
    for command in ("demo", "engine"):
        p = run(command, "-h", timeout=120)
        assert p.returncode == 0 and "``" not in p.stdout, p.stdout


def test_a_folder_named_like_a_command_does_not_hide_the_command(tmp_path, tiny_model, capfd, monkeypatch):
    """`esrgan-video models` in a folder that holds a models/ folder lists the models (it was taken as an upscale
    of that folder: 'the following arguments are required: output'); a *file* named like a command is still an
    input."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    p = run_here(capfd, "models")
    assert p.returncode == 0 and "RealESRGAN_x4plus" in p.stdout, p.stderr
    (tmp_path / "train").write_bytes(b"not a video")
    assert_one_line_error(run_here(capfd, "train", tmp_path / "o.mp4", "--model", tiny_model), 3, "train")


def test_demo_with_a_checkpoint_path_names_the_output_by_its_stem(tmp_path, tiny_model, sample_clip_path, capfd):
    """`demo --model PATH` writes bigbuckbunny_<stem>.mp4 in the output folder (the path went into the name: a
    missing folder, exit 6)."""
    r = run_here(capfd, "demo", "--output-dir", tmp_path, "--model", tiny_model, "--seconds", "0.2", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    dst = tmp_path / f"bigbuckbunny_{tiny_model.stem}.mp4"
    assert r.stdout.strip() == str(dst.resolve()) and dst.is_file()


def test_an_option_not_given_is_said_as_nothing(tmp_path, tiny_model, capfd):
    """An option that must be given but was not reads 'got nothing', not Python's 'got None': `-` without
    --format, `train` without --data."""
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=1)
    p = run_here(capfd, src, "-", "--model", tiny_model)
    assert_one_line_error(p, 2, "--format: expected one of matroska, nut, yuv4mpegpipe", "got nothing")
    assert_one_line_error(run_here(capfd, "train", "--out", tmp_path / "run"), 2, "--data: expected", "got nothing")
    assert not (tmp_path / "run").exists()


def test_an_error_naming_a_file_with_a_newline_stays_one_line(tmp_path, capfd):
    """The error line quotes file names as they are, so a newline in one broke it in two (scripts read the last
    line); control characters are written as escapes, as batch's log does (errors.printable)."""
    from esrgan_video.testing import run_cli

    src = tmp_path / "new\nline.mkv"
    src.write_bytes(b"not a video")
    p = run_cli(capfd, src, tmp_path / "out.mkv")
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 3 and len(lines) == 1, p.stderr
    assert "new\\nline.mkv" in lines[0]
