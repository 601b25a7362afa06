"""``esrgan-video train`` end to end on the CPU with a tiny near-identity model and a small real clip (cut from
bikes.mp4): learning, checkpoints usable for inference, exact resume, SIGINT, bad inputs, the gan stage,
paired data, TOML configs, blending."""

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

import media
from esrgan_video.cli.main import main as cli
from esrgan_video.models.checkpoints import save_safetensors
from esrgan_video.testing import near_identity_model
from esrgan_video.train import TrainConfig, train
from esrgan_video.train.degradations import bicubic_down

pytestmark = pytest.mark.usefixtures("torch_one_thread")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """24 frames, 160×112, of the real clip bikes.mp4 (detail: brick, railings), x264 CRF 8."""
    return media.bikes_crop(tmp_path_factory.mktemp("clip") / "bikes_small.mp4", frames=24, size=(160, 112),
                            origin=(80, 240), crf=8)


@pytest.fixture(scope="module")
def tiny(train_base) -> Path:
    """The shared tiny near-identity x4 base (conftest's ``train_base``)."""
    return train_base


def base_args(clip, tiny, out, *extra) -> list[str]:
    return ["train", "--data", str(clip), "--base", str(tiny), "--out", str(out), "--patch", "32", "--batch", "4",
            "--quiet", *extra]


def config(clip, tiny, out, **kw) -> TrainConfig:
    values = dict(data=[str(clip)], base=str(tiny), out=str(out), patch=32, batch=4, quiet=True)
    values.update(kw)
    return TrainConfig(**values)


def held_out_l1(model_path: Path, clip: Path) -> float:
    from esrgan_video.models import load_model
    from esrgan_video.train.data import read_video

    frames, _ = read_video(str(clip), max_frames=1000)
    held = torch.stack(frames[-2:]).float() / 255.0
    lr = bicubic_down(held, 4)
    model = load_model(model_path)
    with torch.no_grad():
        return torch.nn.functional.l1_loss(model(lr), held).item()


def journal(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]


def test_twenty_steps_lower_the_held_out_l1_and_write_the_run_folder(clip, tiny, tmp_path):
    out = tmp_path / "run"
    result = train(config(clip, tiny, out, steps=20, ema=0, lr=5e-4, schedule="constant"))
    assert not result.interrupted and result.step == 20
    assert held_out_l1(result.final, clip) < 0.97 * held_out_l1(tiny, clip)
    for name in ("config.json", "journal.jsonl", "final.safetensors", "best.safetensors", "validation.png",
                 "checkpoints/model_000020.safetensors", "checkpoints/state_000020.pt", "previews/step_000020.png"):
        assert (out / name).is_file(), name
    lines = journal(out)
    steps = [r for r in lines if not r.get("validation")]
    assert [r["step"] for r in steps] == list(range(1, 21))
    assert {"loss", "l_pix", "lr", "grad_norm", "it_s"} <= set(steps[0])
    vals = [r for r in lines if r.get("validation")]
    assert vals[0]["step"] == 0 and vals[-1]["step"] == 20 and vals[-1]["psnr"] > vals[0]["psnr"]
    assert vals[-1]["perceptual"] is not None
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["degradation"]["name"] == "bicubic" and cfg["patch"] == 32 and cfg["held_out"] == 0.05
    # the preview grid: one row per held-out crop, LR | base | current | HR
    with av.open(str(out / "previews" / "step_000020.png")) as c:
        frame = next(c.decode(video=0))
    assert frame.width == 4 * 64 + 3 * 2


def test_checkpoint_runs_in_the_pipeline_and_loads_in_spandrel(clip, tiny, tmp_path):
    out = tmp_path / "run"
    result = train(config(clip, tiny, out, steps=2, ema=0.9))
    from esrgan_video.models import load_model
    from esrgan_video.pipeline import upscale_video

    model = load_model(result.final)
    assert model.scale == 4
    video = tmp_path / "up.mkv"
    assert cli([str(clip), str(video), "--model", str(out / "checkpoints" / "model_000002.safetensors"),
                "--end", "3", "--device", "cpu", "-q"]) == 0
    with av.open(str(video)) as c:
        st = c.streams.video[0]
        assert (st.width, st.height) == (640, 448)
    r = upscale_video(clip, tmp_path / "up2.mkv", model=str(result.final), end=2, device="cpu")
    assert r.frames == 2
    # spandrel reads the growth channels from a fixed RRDB layout: give it a checkpoint of a standard-width
    # generator (nf 64, gc 32; one block) trained the same way
    spandrel = pytest.importorskip("spandrel")
    wide = tmp_path / "wide.safetensors"
    save_safetensors(near_identity_model(4, nf=64, nb=1, gc=32).state_dict(), wide)
    r3 = train(config(clip, wide, tmp_path / "wide_run", steps=1, batch=1, val_crops=1))
    desc = spandrel.ModelLoader().load_from_file(str(r3.final))
    assert desc.scale == 4
    lr = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.allclose(desc.model(lr).clamp(0, 1), load_model(r3.final)(lr), atol=1e-5)  # ours clamps


def test_resume_equals_an_uninterrupted_run(clip, tiny, tmp_path):
    one = train(config(clip, tiny, tmp_path / "one", steps=10, save_every=5, lr=5e-4))
    from esrgan_video.train import Trainer

    half = Trainer(config(clip, tiny, tmp_path / "two", steps=10, save_every=5, lr=5e-4)).run(until=5)
    assert half.step == 5 and half.final is None
    two = train(config(clip, tiny, tmp_path / "two", steps=10, save_every=5, lr=5e-4))
    assert two.step == 10
    from safetensors.torch import load_file

    a, b = load_file(str(one.final)), load_file(str(two.final))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(tmp_path / "one" / "checkpoints" / "state_000010.pt", weights_only=True)
    sb = torch.load(tmp_path / "two" / "checkpoints" / "state_000010.pt", weights_only=True)
    assert all(torch.equal(sa["g"][k], sb["g"][k]) for k in sa["g"])
    la = [r["loss"] for r in journal(tmp_path / "one") if "loss" in r]
    lb = [r["loss"] for r in journal(tmp_path / "two") if "loss" in r]
    assert la == lb and len(la) == 10


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_saves_a_checkpoint_and_exits_128_plus_it(clip, tiny, tmp_path, sig, code):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "esrgan_video", *base_args(clip, tiny, out, "--steps", "100000", "--save-every",
                                                               "100000", "--val-every", "100000")]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    sys.path.insert(0, str(Path(__file__).parent))
    from media import default_signals

    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (out / "journal.jsonl").is_file() and sum(1 for _ in open(out / "journal.jsonl")) >= 4:
            break
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "interrupted at step" in err and "Traceback" not in err
    states = sorted((out / "checkpoints").glob("state_*.pt"))
    assert len(states) == 1
    step = int(states[0].stem.split("_")[1])
    assert step >= 3 and (out / "checkpoints" / f"model_{step:06d}.safetensors").is_file()
    assert not (out / "final.safetensors").exists()
    # rerunning resumes from there and finishes
    done = train(config(clip, tiny, out, steps=step + 2, save_every=100000, val_every=100000))
    assert done.step == step + 2 and done.final.is_file()
    assert [r["step"] for r in journal(out) if "loss" in r] == list(range(1, step + 3))


def _one_line_error(capsys, code: int, argv: list[str], match: str) -> None:
    assert cli(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("esrgan-video: error:"), err
    assert match in err[0], err[0]


def test_bad_inputs_are_one_line_and_leave_nothing(clip, tiny, tmp_path, capsys):
    out = tmp_path / "run"
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(capsys, 3, base_args(empty, tiny, out), "no images found")
    _one_line_error(capsys, 3, base_args(tmp_path / "missing.mkv", tiny, out), "no such file")
    _one_line_error(capsys, 3, base_args(clip, tiny, out) + ["--patch", "128"], "smaller than the 128-px")
    # the vgg128 discriminator takes only 128-px patches: a smaller --patch alone would be refused next
    _one_line_error(capsys, 3, base_args(clip, tiny, out) + ["--patch", "128", "--stage", "gan"],
                    "takes only 128-px patches: use --discriminator unet and a smaller --patch")
    _one_line_error(capsys, 4, base_args(clip, tiny, out) + ["--scale", "2"], "the base model is x4")
    _one_line_error(capsys, 2, base_args(clip, tiny, out) + ["--lr", "5"], "lr: expected")
    _one_line_error(capsys, 2, base_args(clip, tiny, out) + ["--patch", "30"], "multiple of the scale 4")
    _one_line_error(capsys, 2, base_args(clip, tiny, out) + ["--stage", "gan"], "vgg128 discriminator takes exactly")
    _one_line_error(capsys, 2, base_args(clip, tiny, out) + ["--ema", "1.5"], "ema: expected")
    _one_line_error(capsys, 2, base_args(clip, tiny, out) + ["--perceptual-layers", "conv9_9=1"], "VGG19 layers")
    # a compact (SRVGG) model: not an RRDB generator
    from esrgan_video.arch.srvgg import SRVGGNetCompact

    compact = tmp_path / "compact.safetensors"
    save_safetensors(SRVGGNetCompact(nf=8, num_conv=2, scale=4).state_dict(), compact)
    _one_line_error(capsys, 4, base_args(clip, compact, out), "fine-tunes RRDB (ESRGAN) generators")
    # an LR source that is not x4 of the HR one
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    write_pairs(clip, hr_dir, lr_dir, factor=2)
    _one_line_error(capsys, 3, base_args(hr_dir, tiny, out) + ["--lr-data", str(lr_dir)], "not x4 of them")
    assert not out.exists()


def test_corrupt_checkpoint_and_changed_config_are_refused(clip, tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(base_args(clip, tiny, out, "--steps", "2")) == 0
    before = sorted(p.name for p in out.rglob("*"))
    _one_line_error(capsys, 3, base_args(clip, tiny, out, "--steps", "2", "--seed", "5"), "different configuration")
    state = out / "checkpoints" / "state_000002.pt"
    state.write_bytes(state.read_bytes()[:200])
    _one_line_error(capsys, 4, base_args(clip, tiny, out, "--steps", "4"), "corrupt training checkpoint")
    assert sorted(p.name for p in out.rglob("*")) == before
    # --restart starts over
    assert cli(base_args(clip, tiny, out, "--steps", "1", "--restart")) == 0
    assert [r["step"] for r in journal(out) if "loss" in r] == [1]


def test_quiet_is_silent_and_the_progress_bar_goes_to_a_terminal_only(clip, tiny, tmp_path, capsys):
    assert cli(base_args(clip, tiny, tmp_path / "q", "--steps", "1")) == 0
    assert capsys.readouterr().err == ""
    args = [a for a in base_args(clip, tiny, tmp_path / "v", "--steps", "1") if a != "--quiet"]
    assert cli(args) == 0
    err = capsys.readouterr().err
    assert "wrote" in err and "held-out PSNR" in err


def test_gan_stage_with_the_realesrgan_recipe_and_a_resumed_discriminator(clip, tiny, tmp_path):
    out = tmp_path / "gan"
    r = train(config(clip, tiny, out, recipe="realesrgan", stage="gan", steps=3, batch=2, val_crops=2))
    lines = [x for x in journal(out) if "loss" in x]
    assert len(lines) == 3 and all({"l_pix", "l_percep", "l_gan", "l_d"} <= set(x) for x in lines)
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["gan"], cfg["discriminator"], cfg["degradation"]["name"], cfg["usm_targets"], cfg["pool"]) == (
        "vanilla", "unet", "realesrgan", True, True)
    disc = out / "discriminator.safetensors"
    assert disc.is_file() and r.final.is_file()
    from safetensors.torch import load_file

    d0 = load_file(str(disc))
    # a later run resumes the discriminator; the ESRGAN recipe's RaGAN with the U-Net on 32-px patches
    r2 = train(config(clip, tiny, tmp_path / "gan2", stage="gan", discriminator="unet", steps=1, batch=2,
                      val_crops=2, discriminator_weights=str(disc)))
    assert r2.step == 1
    d1 = load_file(str(tmp_path / "gan2" / "discriminator.safetensors"))
    assert d0.keys() == d1.keys()
    assert json.loads((tmp_path / "gan2" / "config.json").read_text())["gan"] == "ragan"


def test_a_gan_stage_run_is_the_same_each_time_it_is_run(clip, tiny, tmp_path):
    """The discriminator starts from the run's seed: one command run twice trains the same discriminator and
    generator (its initial weights came from the unseeded global RNG, so no two gan-stage runs agreed and a resumed
    one could not equal the uninterrupted one)."""
    from safetensors.torch import load_file

    runs = [train(config(clip, tiny, tmp_path / name, stage="gan", discriminator="unet", steps=1, batch=2,
                         val_crops=2)) for name in ("a", "b")]
    da, db = (load_file(str(tmp_path / name / "discriminator.safetensors")) for name in ("a", "b"))
    assert da.keys() == db.keys() and all(torch.equal(da[k], db[k]) for k in da)
    ga, gb = (load_file(str(r.final)) for r in runs)
    assert all(torch.equal(ga[k], gb[k]) for k in ga)


def write_pairs(clip: Path, hr_dir: Path, lr_dir: Path, *, factor: int = 4, swap: int | None = None) -> None:
    from esrgan_video.train.data import read_video
    from esrgan_video.train.images import write_png

    frames, _ = read_video(str(clip), max_frames=12)
    hr_dir.mkdir()
    lr_dir.mkdir()
    for i, f in enumerate(frames[:12]):
        write_png(hr_dir / f"f{i:02d}.png", f.float() / 255)
        src = frames[(i + 6) % 12] if i == swap else f
        small = bicubic_down(src.unsqueeze(0).float() / 255, factor)[0]
        write_png(lr_dir / f"f{i:02d}.png", small)


def test_paired_folders_match_by_name_and_report_mismatches(clip, tiny, tmp_path):
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    write_pairs(clip, hr_dir, lr_dir, swap=3)
    notices = []
    r = train(config(clip, tiny, tmp_path / "run", data=[str(hr_dir)], lr_data=[str(lr_dir)], steps=2,
                     pair_threshold=30.0), notice=notices.append)
    assert r.step == 2
    assert any("1 of 12 pairs do not match" in n and "frame 3" in n for n in notices), notices


def test_toml_config_and_video_degradation(clip, tiny, tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text(f'data = ["{clip}"]\nbase = "{tiny}"\npatch = 32\nbatch = 2\nsteps = 2\nquiet = true\n'
                    '[degradation]\nname = "video"\ncrf_range = [30, 30]\ngop = 4\n')
    out = tmp_path / "run"
    assert cli(["train", "--config", str(toml), "--out", str(out), "--batch", "3"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["batch"] == 3 and cfg["degradation"] == {"name": "video", "codec": "libx264", "crf_range": [30, 30],
                                                        "preset": "veryfast", "gop": 4, "bframes": 2}


def test_blend_writes_the_interpolated_model_and_a_strip(tiny, tmp_path, capsys):
    from safetensors.torch import load_file

    other = tmp_path / "other.safetensors"
    save_safetensors(near_identity_model(4, nf=16, nb=1, gc=8, seed=9).state_dict(), other)
    out = tmp_path / "mid.safetensors"
    assert cli(["blend", str(tiny), str(other), "--alpha", "0.25", "-o", str(out), "-q"]) == 0
    a, b, m = load_file(str(tiny)), load_file(str(other)), load_file(str(out))
    assert all(torch.allclose(m[k], 0.75 * a[k] + 0.25 * b[k], atol=1e-7) for k in a)
    frame = tmp_path / "frame.png"
    from esrgan_video.train.images import write_png

    write_png(frame, torch.rand(3, 20, 24))
    strip = tmp_path / "strip.png"
    assert cli(["blend", str(tiny), str(other), "--alphas", "0,0.5,1", "--preview", str(frame), "-o", str(strip),
                "--device", "cpu", "-q"]) == 0
    with av.open(str(strip)) as c:
        f = next(c.decode(video=0))
    assert (f.width, f.height) == (3 * 96 + 2 * 4, 80)
    capsys.readouterr()
    for flags in (["--alpha", "1.5"], ["--alpha", "nan"], ["--alphas", "0,1.5", "--preview", str(frame)]):
        # out of 0..1 is a bad command line (exit 2), refused before either model is read
        assert cli(["blend", str(tiny), str(other), *flags, "-o", str(tmp_path / "x.safetensors")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"esrgan-video blend: error: argument {flags[0]}: "), err
        assert "between 0 and 1" in err[0], err
    assert not (tmp_path / "x.safetensors").exists()


def test_import_esrgan_video_does_not_load_training():
    code = ("import sys, esrgan_video, esrgan_video.upscaler, esrgan_video.pipeline, esrgan_video.cli.main; "
            "print([m for m in sys.modules if m.startswith('esrgan_video.train')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ,
                         PYTHONPATH=str(ROOT)), check=True).stdout
    assert out.strip() == "[]"


def test_readme_and_training_doc_examples_parse():
    """Every ``esrgan-video train`` / ``blend`` example in README.md and docs/training.md uses real options and
    makes a valid config."""
    import re
    import shlex

    from esrgan_video.cli.blend import parser as blend_parser
    from esrgan_video.cli.train import config_from_args, parser as train_parser

    checked = 0
    for doc in (ROOT / "README.md", ROOT / "docs" / "training.md"):
        text = doc.read_text().replace("\\\n", " ")
        for line in re.findall(r"^\s*(?:torchrun .*?-m esrgan_video|esrgan-video) ((?:train|blend) .+?)(?:\s+#.*)?$",
                               text, flags=re.M):
            argv = shlex.split(line)
            if argv[0] == "train":
                args = train_parser().parse_args(argv[1:])
                if args.data and args.out:
                    config_from_args(args)
            else:
                blend_parser().parse_args(argv[1:])
            checked += 1
    assert checked >= 8


def test_paired_videos_match_by_timestamp_with_an_offset(clip, tiny, tmp_path):
    """An LR video of the same clip, starting two frames later (as a DVD rip might): --pair-offset lines it up."""
    from esrgan_video.train.data import read_video

    frames, _ = read_video(str(clip), max_frames=1000)
    lr_path = tmp_path / "lr.mkv"
    with av.open(str(lr_path), "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = 40, 28, "yuv444p"
        st.options = {"crf": "0"}
        for f in frames[2:]:
            small = bicubic_down(f.unsqueeze(0).float() / 255, 4)[0]
            arr = (small * 255).round().byte().permute(1, 2, 0).contiguous().numpy()
            for pkt in st.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    from esrgan_video.train.data import load_sources

    base = config(clip, tiny, tmp_path / "off", lr_data=[str(lr_path)], steps=1, pair_threshold=0.0)
    import statistics

    from esrgan_video.train.data import pair_psnr

    def pair_psnrs(cfg):
        src = load_sources(cfg, 4, 32, notice=lambda m: None)[0]
        return [pair_psnr(h, lf, 4) for h, lf in zip(src.hr, src.lr)], len(src.hr)

    off, n_off = pair_psnrs(base)
    on, n_on = pair_psnrs(dataclasses_replace(base, pair_offset=0.08))
    assert n_off == 22 and n_on == 22  # 22 LR frames; each HR frame has a partner in time
    assert statistics.median(on) > 40 > statistics.median(off) + 3  # the offset pairs the same pictures
    r = train(dataclasses_replace(base, out=str(tmp_path / "on"), pair_offset=0.08, pair_threshold=35.0))
    assert r.step == 1
    cfg = json.loads((tmp_path / "on" / "config.json").read_text())
    assert cfg["pair_offset"] == 0.08 and cfg["lr_data"] == [str(lr_path)]


def dataclasses_replace(c, **kw):
    import dataclasses

    return dataclasses.replace(c, **kw)


def test_a_run_killed_before_its_first_checkpoint_starts_clean(clip, tiny, tmp_path):
    import shutil

    out = tmp_path / "run"
    train(config(clip, tiny, out, steps=2))
    shutil.rmtree(out / "checkpoints")  # as if killed before the first checkpoint was written
    (out / "final.safetensors").unlink()
    r = train(config(clip, tiny, out, steps=2))
    assert r.step == 2 and r.final.is_file()
    # validation 0, then step 1, validation 1, step 2, validation 2: each once
    assert [x["step"] for x in journal(out)] == [0, 1, 1, 2, 2]


def test_a_fine_tuned_old_arch_x3_base_stays_x3(clip, tmp_path):
    """An old-arch x3 (the keys of an x2, x3 by its file name) fine-tuned is saved with new-arch keys: the model files
    record their hyperparameters, so every one of them loads as x3 again, whatever its name."""
    from esrgan_video.models import load_model
    from esrgan_video.testing import to_old_arch

    base = tmp_path / "3x_Old.pth"
    torch.save(to_old_arch(near_identity_model(3, nf=16, nb=1, gc=8, seed=3).state_dict()), base)
    assert load_model(str(base)).params.scale == 3
    result = train(config(clip, base, tmp_path / "run", steps=2, ema=0, schedule="constant", patch=36))
    for path in (result.final, tmp_path / "run" / "best.safetensors",
                 tmp_path / "run" / "checkpoints" / "model_000002.safetensors"):
        assert load_model(str(path)).params.scale == 3, path


def test_fewer_steps_than_the_run_has_done_is_refused(clip, tiny, tmp_path):
    """A rerun with --steps below the newest checkpoint's step trained nothing, wrote no final model and exited 0."""
    from esrgan_video.errors import OptionError
    from esrgan_video.train import Trainer

    out = tmp_path / "run"
    Trainer(config(clip, tiny, out, steps=6, save_every=3)).run(until=3)
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(OptionError, match=r"^steps: expected at least 3, the step of the newest checkpoint in .*run, "
                                          r"got 2 \(more steps train on from it; --restart starts over\)$"):
        train(config(clip, tiny, out, steps=2))
    assert sorted(p.name for p in out.rglob("*")) == before  # the run folder is left as it was
    assert train(config(clip, tiny, out, steps=3)).final is not None  # as many steps as done: the final model
