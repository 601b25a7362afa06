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
