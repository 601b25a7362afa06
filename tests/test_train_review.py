"""``esrgan-video train`` / ``blend`` as a demanding user meets them: every bad input or config value is one line
with the documented exit status (a config file's bad value named by the file and its key), an unwritable run
folder is an output error (6), and a run stopped by a signal resumes to the same result as an uninterrupted one,
whose final model then upscales a video and blends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import torch

from esrgan_video.cli.main import main as cli
from esrgan_video.errors import OptionError
from esrgan_video.train import TrainConfig

pytestmark = pytest.mark.usefixtures("torch_one_thread")
ROOT = Path(__file__).resolve().parents[1]


def base_args(train_clip, train_base, out, *extra) -> list[str]:
    return ["train", "--data", str(train_clip), "--base", str(train_base), "--out", str(out), "--patch", "32", "--batch", "2",
            "--steps", "2", "--quiet", *extra]


def one_line(capsys, code: int, argv: list[str], match: str) -> str:
    assert cli(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("esrgan-video: error:"), err
    assert match in err[0], err[0]
    return err[0]


def test_damaged_vgg_weights_are_one_line(train_clip, train_base, tmp_path, capsys):
    bad = tmp_path / "vgg.pth"
    bad.write_bytes(b"\x80\x02not a checkpoint" * 200)
    # torch's weights-only error is several paragraphs; the message keeps its first line
    one_line(capsys, 4, base_args(train_clip, train_base, tmp_path / "run", "--vgg-weights", str(bad)),
             "cannot be read by the weights-only loader (")


@pytest.mark.parametrize("body, key, expected", [
    ('stpes = 3', "stpes", "a training option"),
    ('held_out = "x"', "held_out (--held-out)", "a number"),
    ('held-out = 2', "held-out (--held-out)", "a fraction between 0 and 0.5"),
    ('betas = "ab"', "betas", "two numbers"),
    ('perceptual_layers = 3', "perceptual_layers (--perceptual-layers)", "a table of VGG19 layer"),
    ('hr_crop = "abc"', "hr_crop (--hr-crop)", "x, y, width, height (four whole numbers)"),
    ('offline = "yes"', "offline (--offline)", "true or false"),
    ('pair_threshold = "yes"', "pair_threshold (--pair-threshold)", "a number"),
    ('seed = "x"', "seed (--seed)", "a whole number"),
    ('degradation = 3', "degradation (--degradation)", "a string"),
    ('ema = 1.5', "ema (--ema)", "a decay in [0, 1)"),
    ('[degradation]\nfoo = 3', "[degradation]", "fields of the bicubic degradation"),
], ids=["unknown", "held_out", "held-out", "betas", "perceptual_layers", "hr_crop", "offline", "pair_threshold", "seed",
        "degradation", "ema", "degradation-table"])
def test_a_bad_config_value_names_the_file_the_key_and_its_flag(train_clip, train_base, tmp_path, capsys, body, key, expected):
    toml = tmp_path / "run.toml"
    toml.write_text(f'data = ["{train_clip}"]\n{body}\n')
    out = tmp_path / "run"
    line = one_line(capsys, 2, ["train", "--config", str(toml), "--base", str(train_base), "--out", str(out), "--patch",
                                "32", "--quiet"], f"{toml}: key {key}: expected {expected}")
    assert "Traceback" not in line
    assert not out.exists()


def test_a_config_value_refused_once_the_run_is_set_up_names_the_key_and_its_flag(train_clip, train_base, tmp_path,
                                                                                 capsys):
    """A value the config itself takes but the run refuses (a patch the base's scale x4 does not divide, found with
    the base) is named by the file and the key as well, not by the flag alone as if given on the command line."""
    toml = tmp_path / "run.toml"
    toml.write_text(f'data = ["{train_clip}"]\npatch = 30\n')
    out = tmp_path / "run"
    one_line(capsys, 2, ["train", "--config", str(toml), "--base", str(train_base), "--out", str(out), "--quiet"],
             f"{toml}: key patch (--patch): expected a multiple of the scale 4, got 30")
    assert not out.exists()
    one_line(capsys, 2, ["train", "--config", str(toml), "--base", str(train_base), "--out", str(out), "--quiet",
                         "--patch", "34"], "error: --patch: expected a multiple of the scale 4, got 34")


def test_a_flag_still_names_the_flag_over_a_config_file(train_clip, train_base, tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text(f'data = ["{train_clip}"]\nheld_out = 0.1\n')
    one_line(capsys, 2, ["train", "--config", str(toml), "--base", str(train_base), "--out", str(tmp_path / "run"),
                         "--held-out", "0.9", "--quiet"], "--held-out: expected a fraction")


def test_config_values_of_the_wrong_kind_raise_option_error():
    with pytest.raises(OptionError, match="perceptual_layers"):
        TrainConfig(data=["a.mp4"], out="r", perceptual_layers=3)
    with pytest.raises(OptionError, match="hr_crop"):
        TrainConfig(data=["a.mp4"], out="r", hr_crop="abc")
    with pytest.raises(OptionError, match="quiet"):
        TrainConfig(data=["a.mp4"], out="r", quiet="no")
    with pytest.raises(OptionError, match="data"):
        TrainConfig(data=[3], out="r")
    # one path (as a TOML string) is a list of one, for lr_data as for data (it was split into characters)
    c = TrainConfig(data="hr.mp4", lr_data="lr.mp4", out="r")
    assert c.data == ("hr.mp4",) and c.lr_data == ("lr.mp4",)


def test_a_run_folder_that_cannot_be_made_is_an_output_error(train_clip, train_base, tmp_path, capsys):
    # in the wording of every other output place (esrgan_video.files), found before anything is read or written
    # (was 'exists and is not a folder', exit 3, and '/proc/...: cannot write the run folder' from the first write)
    line = one_line(capsys, 6, base_args(train_clip, train_base, train_clip), "is not a directory")
    assert line == f"esrgan-video: error: {train_clip}: is not a directory"
    line = one_line(capsys, 6, base_args(train_clip, train_base, train_clip / "a" / "run"), "is not a directory")
    assert line == f"esrgan-video: error: {train_clip / 'a' / 'run'}: {train_clip} is not a directory"
    line = one_line(capsys, 6, base_args(train_clip, train_base, "/proc/esrgan-video/run"), "cannot create a file in")
    assert line.startswith("esrgan-video: error: /proc/esrgan-video: cannot create a file in /proc ("), line
    assert not Path("/proc/esrgan-video").exists()


def test_a_failed_write_mid_run_is_one_line_and_the_run_resumes(train_clip, train_base, tmp_path, capsys, monkeypatch):
    from esrgan_video.train import run_folder

    out = tmp_path / "run"
    real = run_folder.RunFolder.save_state

    def full_disk(self, step, state):
        if step == 2:
            raise OSError(28, "No space left on device", str(self.state_path(step)))
        return real(self, step, state)

    monkeypatch.setattr(run_folder.RunFolder, "save_state", full_disk)
    one_line(capsys, 6, base_args(train_clip, train_base, out, "--steps", "3", "--save-every", "1"),
             "state_000002.pt: cannot write the run folder (No space left on device)")
    assert not list((out / "checkpoints").glob(".*.part"))  # no half-written file left beside the checkpoints
    monkeypatch.setattr(run_folder.RunFolder, "save_state", real)
    assert cli(base_args(train_clip, train_base, out, "--steps", "3", "--save-every", "1")) == 0
    assert (out / "final.safetensors").is_file()


def test_blend_refuses_empty_alphas_as_a_bad_command_line(train_base, tmp_path, capsys):
    # exit 2 before any model is read (was 3, a bad input file)
    assert cli(["blend", str(train_base), str(train_base), "--alphas", ",", "--preview", "f.png", "-o",
                str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--alphas wants at least one number" in err[0], err
    assert not (tmp_path / "x.png").exists()


def _journal(out: Path) -> list[tuple]:
    recs = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    return [(r["step"], r.get("loss"), r.get("psnr")) for r in recs]


def test_sighup_and_sigterm_mid_run_resume_to_the_uninterrupted_result(train_clip, train_base, tmp_path, capsys):
    """Two stops by signals between checkpoints, then a rerun: the same final and best models and the same
    journal (losses, validations) as one uninterrupted run; the final model upscales a video and blends."""
    sys.path.insert(0, str(Path(__file__).parent))
    from media import default_signals
    from safetensors.torch import load_file

    common = ["--steps", "16", "--save-every", "5", "--val-every", "4", "--lr", "5e-4", "--threads", "1"]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert cli(base_args(train_clip, train_base, whole) + common) == 0
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    argv = [sys.executable, "-m", "esrgan_video", *base_args(train_clip, train_base, stopped), *common]
    for sig, after, code in ((signal.SIGHUP, 7, 129), (signal.SIGTERM, 12, 143)):
        proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if any(s >= after and loss is not None for s, loss, _ in _journal(stopped)):
                    break
            except (FileNotFoundError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err
        assert "Traceback" not in err and "interrupted at step" in err
        assert not (stopped / "final.safetensors").exists()
    assert cli(base_args(train_clip, train_base, stopped) + common) == 0
    for name in ("final.safetensors", "best.safetensors"):
        a, b = load_file(str(whole / name)), load_file(str(stopped / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert _journal(whole) == _journal(stopped)
    final = stopped / "final.safetensors"
    capsys.readouterr()
    assert cli([str(train_clip), str(tmp_path / "up.mkv"), "--model", str(final), "--quiet"]) == 0
    with av.open(str(tmp_path / "up.mkv")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (384, 256)
    assert cli(["blend", str(train_base), str(final), "--alpha", "0.5", "-o", str(tmp_path / "mix.safetensors"),
                "--quiet"]) == 0
    assert cli([str(train_clip), str(tmp_path / "mix.mkv"), "--model", str(tmp_path / "mix.safetensors"),
                "--quiet"]) == 0


def test_a_rerun_removes_the_temporary_files_of_a_killed_write(train_clip, train_base, tmp_path):
    out = tmp_path / "run"
    assert cli(base_args(train_clip, train_base, out, "--steps", "1")) == 0
    leftovers = [out / "checkpoints" / ".state_000002.pt.abc123.part", out / ".final.safetensors.x1.part",
                 out / "previews" / ".step_000002.png.zz.part"]
    for p in leftovers:
        p.write_bytes(b"half")  # what a SIGKILL during atomic_write leaves
    assert cli(base_args(train_clip, train_base, out, "--steps", "2")) == 0
    assert not any(p.exists() for p in leftovers)
    assert (out / "final.safetensors").is_file() and (out / "checkpoints" / "state_000002.pt").is_file()


@pytest.mark.parametrize("sig, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")],
                         ids=["SIGINT", "SIGTERM"])
def test_a_second_signal_stops_at_once_and_says_where_the_run_resumes(train_clip, train_base, tmp_path, capsys, monkeypatch,
                                                                    sig, code, name):
    # was: 'interrupted (Ctrl-C); no output was written' (the run folder held checkpoints), and 130 for SIGTERM too
    from esrgan_video.train.trainer import Trainer

    real = Trainer.step

    def step(self, index):
        if index == 3:  # two signals in a row during step 4: the second stops at once, mid-step
            self._on_signal(sig, None)
            self._on_signal(sig, None)
        return real(self, index)

    monkeypatch.setattr(Trainer, "step", step)
    out = tmp_path / "run"
    argv = base_args(train_clip, train_base, out, "--steps", "10", "--save-every", "2", "--val-every", "100")
    assert cli(argv) == code
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"esrgan-video train: stopped at once ({name} again); {out} resumes from "
                                        "step 2 (rerun the same command)"], err
    monkeypatch.setattr(Trainer, "step", real)
    assert cli(argv) == 0
    assert [json.loads(x)["step"] for x in (out / "journal.jsonl").read_text().splitlines()
            if "loss" in x] == list(range(1, 11))


def test_a_signal_before_the_first_step_says_the_rerun_starts_over(train_clip, train_base, tmp_path, capsys, monkeypatch):
    # a stop during step 0's validation (the run folder already made): not 'no output was written'
    from esrgan_video.cli.signals import Terminated
    from esrgan_video.train.trainer import Trainer

    def validate(self, step):
        raise Terminated(signal.SIGHUP)

    monkeypatch.setattr(Trainer, "validate", validate)
    out = tmp_path / "run"
    assert cli(base_args(train_clip, train_base, out)) == 129
    assert capsys.readouterr().err.strip().splitlines() == [
        f"esrgan-video train: interrupted (SIGHUP); {out} has no checkpoint yet: a rerun starts over "
        "(rerun the same command)"]
    monkeypatch.undo()
    assert cli(base_args(train_clip, train_base, out)) == 0 and (out / "final.safetensors").is_file()


def test_a_video_paired_with_an_image_folder_is_one_line(train_clip, train_base, tmp_path, capsys):
    # was a traceback (ValueError: could not convert string to float) from matching names against timestamps
    from esrgan_video.train.data import read_video
    from esrgan_video.train.images import write_png

    folder = tmp_path / "stills"
    folder.mkdir()
    for i, f in enumerate(read_video(str(train_clip), max_frames=4)[0][:4]):
        write_png(folder / f"f{i}.png", f.float() / 255)
    one_line(capsys, 3, base_args(train_clip, train_base, tmp_path / "a", "--lr-data", str(folder)),
             f"{folder}: an image source cannot pair with the video {train_clip}")
    one_line(capsys, 3, base_args(folder, train_base, tmp_path / "b", "--lr-data", str(train_clip)),
             f"{train_clip}: a video cannot pair with the images {folder}")


def test_blend_and_train_tell_how_a_model_was_read_once(train_clip, train_base, tmp_path, capsys):
    """A model file whose name says another scale than its weights: the notice every face prints once (was dropped
    by blend and train)."""
    import shutil

    from esrgan_video.train import train

    named = shutil.copy(train_base, tmp_path / "2x_tiny.safetensors")
    said = f"{named}: its file name says x2, but its metadata and weights make an x4 model"
    out = tmp_path / "blend.safetensors"
    assert cli(["blend", str(named), str(train_base), "--alpha", "0.5", "-o", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith(f"esrgan-video blend: {said}") and "it runs at x4" in err[0], err
    assert err[1] == f"esrgan-video blend: wrote {out}"
    assert cli(["blend", str(named), str(train_base), "--alpha", "0.5", "-o", str(out), "-y", "-q"]) == 0
    assert capsys.readouterr().err == ""
    strip = tmp_path / "strip.png"
    frame = tmp_path / "frame.png"
    from esrgan_video.train.images import write_png
    write_png(frame, torch.rand(3, 12, 16))
    assert cli(["blend", str(train_base), str(named), "--alphas", "0,1", "--preview", str(frame), "-o", str(strip),
                "--device", "cpu"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith(f"esrgan-video blend: {said}") and strip.is_file(), err
    told = []
    result = train(TrainConfig(data=[str(train_clip)], base=str(named), out=str(tmp_path / "run"), patch=32, batch=2,
                               steps=1, ema=0), notice=told.append, progress=False)
    assert [m for m in told if m.startswith(said)] == [m for m in result.notices if m.startswith(said)], told
    assert len([m for m in told if m.startswith(said)]) == 1, told


_FULL_DISK_BLEND = """
import resource, signal, sys
from esrgan_video.cli.main import main

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE then fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.exit(main(sys.argv[1:]))
"""


def test_blend_outputs_are_checked_as_every_output_is(train_base, tmp_path, capsys):
    """-o in a missing folder, under a file, a folder, an input, an existing file, a full disk: one line, exit 6, in
    the wording of every other output (was a FileExistsError / OSError traceback, or a folder made)."""
    b = str(train_base)
    model = lambda out, *more: ["blend", b, b, "--alpha", "0.5", "-o", str(out), *more]  # noqa: E731
    line = one_line(capsys, 6, model(tmp_path / "new" / "m.safetensors"), "does not exist")
    assert line.endswith(f"{tmp_path / 'new' / 'm.safetensors'}: the directory {tmp_path / 'new'} does not exist")
    assert not (tmp_path / "new").exists()
    line = one_line(capsys, 6, model(train_base / "m.safetensors"), "is not a directory")
    assert line.endswith(f"{train_base / 'm.safetensors'}: {train_base} is not a directory")
    one_line(capsys, 6, model(tmp_path), f"{tmp_path}: is a directory")
    one_line(capsys, 6, model(train_base, "-y"), "the output is the input file")
    one_line(capsys, 6, model("/proc/m.safetensors"), "/proc/m.safetensors: cannot create a file in /proc")
    (tmp_path / "old.safetensors").write_bytes(b"x")
    one_line(capsys, 6, model(tmp_path / "old.safetensors"), "already exists (use --overwrite / -y")
    frame = tmp_path / "frame.png"
    from esrgan_video.train.images import write_png
    write_png(frame, torch.rand(3, 12, 16))
    one_line(capsys, 6, ["blend", b, b, "--alphas", "0,1", "--preview", str(frame), "-o", str(frame), "-y"],
             "the output is the input file")
    full = tmp_path / "full.safetensors"
    r = subprocess.run([sys.executable, "-c", _FULL_DISK_BLEND, *model(full)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert r.returncode == 6 and r.stderr.strip().splitlines() == [
        f"esrgan-video: error: {full}: cannot be written (File too large)"], r.stderr
    assert not full.exists() and not list(tmp_path.glob(".full*"))


_FULL_DISK_TRAIN = """
import resource, signal, sys
from esrgan_video.cli.main import main

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE then fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.exit(main(sys.argv[2:]))
"""


def test_a_full_disk_names_the_file_it_could_not_write(train_clip, train_base, tmp_path):
    """A real full disk (RLIMIT_FSIZE in a child process: the write fails with EFBIG, as ENOSPC, with no file name):
    one line naming the file, exit 6, no temporary file left; once there is room the rerun completes (the line
    named only the run folder)."""
    out = tmp_path / "run"
    argv = base_args(train_clip, train_base, out, "--steps", "2", "--save-every", "1", "--threads", "1")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    model_size = train_base.stat().st_size
    r = subprocess.run([sys.executable, "-c", _FULL_DISK_TRAIN, str(2 * model_size), *argv], capture_output=True,
                       text=True, env=env, timeout=300)  # room for the model files, not for the state (optimisers)
    assert r.returncode == 6 and r.stderr.strip().splitlines() == [
        f"esrgan-video: error: {out / 'checkpoints' / 'state_000001.pt'}: cannot write the run folder (File too "
        "large)"], r.stderr
    assert not list(out.rglob(".*.part"))
    assert cli(argv) == 0 and (out / "final.safetensors").is_file()
