"""Flag values the encoder, the container or the size rules refuse are command-line errors: exit 2, one line naming
the flag and the value, said before the model is looked up (the model given here does not exist: reaching it would
say exit 4 instead), with nothing written.

``--encoder-opt crf=abc`` was FFmpeg's "cannot set up the libx264 encoder (... returned 22)", exit 6, once the model
was loaded and the backend built (batch: every file failed in its worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esrgan_video.testing import run_cli
from media import make_clip


def _lines(p) -> list[str]:
    return [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith("x264 [")]


@pytest.mark.parametrize("opt, says", [
    ("crf=abc", "--encoder-opt: expected a value the libx264 encoder takes for crf (a number), got 'crf=abc' "
                "(FFmpeg: Invalid argument)"),
    ("bf=x", "--encoder-opt: expected a value the libx264 encoder takes for bf (a whole number), got 'bf=x' "
             "(FFmpeg: Invalid argument)"),
])
def test_an_encoder_option_value_the_encoder_refuses_is_a_usage_error_before_the_model(tmp_path: Path, capfd,
                                                                                       opt, says):
    src = make_clip(tmp_path / "in.mkv", frames=2)
    p = run_cli(capfd, src, tmp_path / "out.mkv", "--model", tmp_path / "none.pth", "--encoder-opt", opt)
    assert (p.returncode, _lines(p)) == (2, [f"esrgan-video: error: {says}"]), p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.mkv"]


def test_batch_refuses_an_encoder_option_value_up_front(tmp_path: Path, capfd):
    src = make_clip(tmp_path / "in.mkv", frames=2)
    p = run_cli(capfd, "batch", src, "-o", tmp_path / "out", "--model", tmp_path / "none.pth",
                "--encoder-opt", "crf=abc")
    assert p.returncode == 2, p.stderr
    assert _lines(p) == ["esrgan-video: error: --encoder-opt: expected a value the libx264 encoder takes for crf "
                         "(a number), got 'crf=abc' (FFmpeg: Invalid argument)"], p.stderr


def test_encoder_options_it_opens_with_pass(tmp_path: Path, capfd, near_identity_file):
    """Values it takes, in the format each needs (a 10-bit profile for 10-bit video), are not refused."""
    src = make_clip(tmp_path / "in.mkv", frames=2, pix_fmt="yuv420p10le")
    p = run_cli(capfd, src, tmp_path / "out.mkv", "--model", near_identity_file(2), "--backend", "torch",
                "--encoder-opt", "crf=20", "--encoder-opt", "profile=high10", "--encoder-opt", "bf=0", "-q")
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("out, args, says", [
    # the extension's own container holds it: the flag is what to change
    ("out.mp4", ["--format", "webm", "--codec", "libx264"],
     "{dst}: the webm (--format webm, not .mp4) container cannot hold libx264 video; leave out --format webm "
     "(.mp4 holds it)"),
    ("out.mkv", ["--format", "mpegts", "--codec", "libvpx-vp9"],
     "{dst}: the mpegts (--format mpegts, not .mkv) container cannot hold libvpx-vp9 video; leave out --format "
     "mpegts (.mkv holds it)"),
    # without --format the extension is what to change, as before
    ("out.webm", ["--codec", "libx264"], "{dst}: the .webm container cannot hold libx264 video; use .mkv instead"),
])
def test_a_container_refusal_names_format_and_the_extension_when_format_was_given(tmp_path: Path, capfd, out,
                                                                                  args, says):
    """With --format the message blamed the extension alone ('the .mp4 container cannot hold libx264 video; use
    .mkv instead', though .mp4 holds it: --format webm was what refused it)."""
    src = make_clip(tmp_path / "in.mkv", frames=2)
    dst = tmp_path / out
    p = run_cli(capfd, src, dst, "--model", tmp_path / "none.pth", *args)
    assert (p.returncode, _lines(p)) == (6, [f"esrgan-video: error: {says.format(dst=dst)}"]), p.stderr


def test_a_copied_stream_the_format_cannot_hold_names_format_and_the_extension(tmp_path: Path, capfd,
                                                                               near_identity_file):
    """The stream copier's refusal: 'the .mkv container cannot hold the audio stream #1 (pcm_s16le)' for an .mkv
    written as --format webm (Matroska holds PCM; WebM does not)."""
    from media import AudioTrack

    src = make_clip(tmp_path / "in.mkv", frames=2, audio=[AudioTrack(codec="pcm_s16le")])
    dst = tmp_path / "out.mkv"
    p = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--backend", "torch", "--format", "webm",
                "--codec", "libvpx-vp9")
    assert (p.returncode, _lines(p)) == (6, [
        f"esrgan-video: error: {dst}: the webm (--format webm, not .mkv) container cannot hold the audio stream #1 "
        "(pcm_s16le); leave out --format webm (.mkv holds it)"]), p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.mkv"]


def test_container_hint_names_another_format_where_the_extensions_cannot_hold_it_either():
    from esrgan_video.video.stream_copy import container_hint, container_label

    assert container_label("x.mp4", "webm") == "webm (--format webm, not .mp4)"
    assert container_label("x.mkv", "matroska") == ".mkv"  # the extension's own muxer: the extension alone
    assert container_label("-", "nut") == "nut"
    # FLAC audio with ProRes: neither .webm's WebM nor --format webm holds ProRes; Matroska does
    assert container_hint(["prores", "flac"], "x.webm", "mp4") == "; use --format matroska instead"
    assert container_hint(["prores"], "x.webm", "webm") == "; use .mkv instead"


@pytest.mark.parametrize("scale, says", [
    # rounding to the chroma multiple made it a 2x2 video, without a word
    ("0.0001", "--scale: expected a scale that makes each side at least 1 px (0.0208 or more for a 64x48 input), "
               "got 0.0001 (64x48 by 0.0001 is 0.0064x0.0048)"),
    # a 300-digit width was printed in the encoder's refusal; 1e308 was an OverflowError's traceback
    ("1e300", "--scale: expected a scale that makes each side at most 2147483647 px (3.36e+07 or less for a 64x48 "
              "input), got 1e+300 (64x48 by 1e+300 is 6.4e+301x4.8e+301)"),
    ("1e308", "--scale: expected a scale that makes each side at most 2147483647 px (3.36e+07 or less for a 64x48 "
              "input), got 1e+308 (64x48 by 1e+308 is beyond 1.8e+308xbeyond 1.8e+308)"),
])
@pytest.mark.parametrize("out", ["out.mkv", "out.png"])
def test_a_scale_that_makes_no_frame_is_a_usage_error_before_the_model(tmp_path: Path, capfd, scale, says, out):
    src = make_clip(tmp_path / "in.mkv", frames=1)
    p = run_cli(capfd, src, tmp_path / out, "--model", tmp_path / "none.pth", "--scale", scale)
    assert (p.returncode, _lines(p)) == (2, [f"esrgan-video: error: {says}"]), p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.mkv"]


def test_small_scales_that_make_a_pixel_are_planned():
    from esrgan_video.frames.sizing import plan_size

    assert plan_size(64, 48, model_scale=4, scale=1 / 48, multiple=(2, 2)).size == (2, 2)  # 1.33x1: rounded
    assert plan_size(64, 48, model_scale=4, scale=3.3e7).size == (2112000000, 1584000000)  # planned; encoders judge


@pytest.mark.parametrize("name, more", [
    ("mix.xyz", ""), ("mix.pth", ""), ("mix.png", "; a .png strip is made with --alphas and --preview"),
])
def test_blend_refuses_a_model_name_it_would_not_write_as_named(tmp_path: Path, capfd, name, more):
    """``blend -o mix.xyz`` (or ``mix.pth``, ``mix.png``) wrote safetensors under that name: refused in one line
    before the models are read (these do not exist: reading them would say exit 4)."""
    dst = tmp_path / name
    p = run_cli(capfd, "blend", tmp_path / "a.pth", tmp_path / "b.pth", "--alpha", "0.5", "-o", dst)
    assert (p.returncode, _lines(p)) == (6, [
        f"esrgan-video: error: {dst}: the blended model is written as safetensors; give a .safetensors name{more}"])
    assert list(tmp_path.iterdir()) == []


def test_blend_writes_a_safetensors_name_in_any_case(tmp_path: Path, capfd, near_identity_file):
    model = near_identity_file(2)
    p = run_cli(capfd, "blend", model, model, "--alpha", "0.5", "-o", tmp_path / "mix.SafeTensors", "-q")
    assert p.returncode == 0 and (tmp_path / "mix.SafeTensors").stat().st_size > 0, p.stderr


def _jumps_back(tmp_path: Path) -> Path:
    """Presentation times that jump back at frame 6: a run fails there, exit 3, after frames were written and
    reported."""
    import media

    return media.make_pts_jump_back(tmp_path, frames=10, at=6, by=200)


def test_progress_json_ends_with_a_failure_object_when_the_run_fails(tmp_path: Path, capfd, near_identity_file):
    """``--progress json`` ended with ``{"done": true, ...}`` on success and with nothing on an error: a reader of the
    stream could not tell a failed run from a hung one. A run that fails after its frames began ends with
    ``{"done": false, "output", "frames", "error", "exit_code"}`` (the error line follows it, as before)."""
    import json

    src = _jumps_back(tmp_path)
    dst = tmp_path / "out.mkv"
    p = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--backend", "torch", "--progress", "json")
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines if ln.startswith("{")]
    assert p.returncode == 3 and lines[-1].startswith("esrgan-video: error: ") and "jump back" in lines[-1], p.stderr
    last = records[-1]
    assert last == {"done": False, "output": str(dst), "frames": records[-2]["frame"],
                    "error": lines[-1].removeprefix("esrgan-video: error: "), "exit_code": 3}, records
    assert last["frames"] > 0 and not any(r.get("done") for r in records)  # frames were reported before it
    assert sorted(f.name for f in tmp_path.iterdir()) == ["back.mkv"]


def test_progress_json_ends_with_a_failure_object_for_an_error_before_the_first_frame(tmp_path: Path, capfd):
    import json

    src = make_clip(tmp_path / "in.mkv", frames=2)
    for args, prefix in [([src, tmp_path / "out.mkv"], {"output": str(tmp_path / "out.mkv"), "frames": 0}),
                         (["batch", src, "-o", tmp_path / "out"], {})]:
        p = run_cli(capfd, *args, "--model", tmp_path / "none.pth", "--progress", "json")
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 4 and len(lines) == 2, p.stderr
        assert json.loads(lines[0]) == {"done": False, **prefix,
                                        "error": lines[1].removeprefix("esrgan-video: error: "), "exit_code": 4}


@pytest.mark.parametrize("flag, value", [("--stale-after", "0"), ("--ray-cpus", "0")])
def test_batch_s_failure_object_names_its_own_flags_as_the_error_line_does(tmp_path: Path, capfd, flag, value):
    """run_batch's options whose flags are not their names (stale_s is --stale-after): the last JSON object said
    '--stale-s: ...' while the line under it said '--stale-after: ...'."""
    import json

    src = make_clip(tmp_path / "in.mkv", frames=1)
    p = run_cli(capfd, "batch", src, "-o", tmp_path / "out", flag, value, "--progress", "json")
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and lines[-1].startswith(f"esrgan-video: error: {flag}: expected"), p.stderr
    assert json.loads(lines[-2]) == {"done": False, "error": lines[-1].removeprefix("esrgan-video: error: "),
                                     "exit_code": 2}


USAGE_TAIL = " (esrgan-video -h lists the options)"


@pytest.mark.parametrize("args, says", [
    (["--codec", "nosuch"], "--codec: expected a video encoder this FFmpeg build has, got 'nosuch' (e.g. libx264, "
                            "libx265, libsvtav1, libvpx-vp9, ffv1 or prores_ks; ffmpeg -encoders lists them)"),
    (["--codec", "libx26"], "--codec: expected a video encoder this FFmpeg build has, got 'libx26' (did you mean "
                            "libx265 or libx264?)"),
    (["--codec", "aac"], "--codec: expected a video encoder, got 'aac' (aac is an audio encoder; e.g. libx264, "
                         "libx265, libsvtav1, libvpx-vp9, ffv1 or prores_ks)"),
    (["--pix-fmt", "nosuch"], "--pix-fmt: expected a pixel format such as yuv420p, yuv420p10le, yuv444p, gbrp, rgb24 "
                              "or gray, got 'nosuch'"),
    (["--pix-fmt", "yuv420p10"], "--pix-fmt: expected a pixel format such as yuv420p, yuv420p10le, yuv444p, gbrp, "
                                 "rgb24 or gray, got 'yuv420p10' (did you mean yuv420p10le, yuv420p or yuva420p10le?)"),
])
def test_an_unknown_codec_or_pixel_format_is_a_usage_error_before_anything(tmp_path: Path, capfd, args, says):
    """Were 'unknown video encoder' / 'encoder libx264 cannot write pixel format', exit 6; batch failed each file in
    its worker for --pix-fmt. Now exit 2 where the options are made, for a run and for batch alike."""
    src = make_clip(tmp_path / "in.mkv", frames=1)
    p = run_cli(capfd, src, tmp_path / "out.mkv", "--model", tmp_path / "none.pth", *args)
    assert (p.returncode, _lines(p)) == (2, [f"esrgan-video: error: {says}{USAGE_TAIL}"]), p.stderr
    p = run_cli(capfd, "batch", src, "-o", tmp_path / "out", "--model", tmp_path / "none.pth", *args)
    assert (p.returncode, _lines(p)) == (2, [f"esrgan-video: error: {says}"]), p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.mkv"]


def test_encoder_and_format_names_it_writes_are_taken():
    from esrgan_video.options import EncodeOptions

    assert EncodeOptions(codec="h264", pix_fmt="rgb48be").codec == "libx264"  # a codec's name: its encoder
    assert EncodeOptions(codec="libvpx-vp9", pix_fmt="yuva420p").pix_fmt == "yuva420p"
