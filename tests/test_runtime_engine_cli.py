"""``esrgan-video engine build|list|clear|presets`` without TensorRT: real cache entries, real presets."""

from __future__ import annotations

import dataclasses

import pytest

from esrgan_video.cli.main import main
from esrgan_video.cli.engine import load_presets
from esrgan_video.runtime import engine_cache as ec
from esrgan_video.runtime.tensorrt_backend import tensorrt_available

KEY = ec.EngineKey(
    weights_sha256="a" * 64, scale=4, min_shape=(1, 270, 480), opt_shape=(1, 270, 480), max_shape=(1, 270, 480),
    precision="fp16", fp32_layers=(), opset=17, exporter="torchscript/torch-2.14", trt_version="10.12.0",
    cuda_major="12", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0", opt_level=3, workspace_mib=0,
)


@pytest.fixture
def engines(tmp_path, monkeypatch):
    root = tmp_path / "engines"
    monkeypatch.setenv(ec.ENGINES_ENV, str(root))
    return root


def write(root, key, label, size):
    paths = ec.engine_paths(key, label, root)
    ec.write_entry(paths, key, b"e" * size, label=label, build_seconds=12.0)
    return paths


def test_list_shows_key_fields_size_and_date(engines, capsys):
    assert main(["engine", "list"]) == 0
    assert "no engines" in capsys.readouterr().out
    write(engines, KEY, "RealESRGAN_x4plus", 3 * 2**20)
    k2 = dataclasses.replace(KEY, weights_sha256="b" * 64, precision="fp32", fp32_layers=())
    p2 = write(engines, k2, "RealESRGAN_x4plus_anime_6B", 2**20)
    p2.engine.write_bytes(b"short")  # damaged after writing
    assert main(["engine", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"engines in {engines}:"
    x4 = next(line for line in out if "RealESRGAN_x4plus " in line)
    for field in ("NxHxW 1x270x480", "fp16", "TRT 10.12.0 cu12", "NVIDIA H100 80GB HBM3 sm9.0", "opt3", "3.0 MiB"):
        assert field in x4
    assert x4.rstrip().endswith("Z")  # the build date
    anime = next(line for line in out if "anime" in line)
    assert "fp32" in anime and "BROKEN" in anime


def test_clear_by_model_and_all(engines, capsys):
    a = write(engines, KEY, "RealESRGAN_x4plus", 100)
    b = write(engines, dataclasses.replace(KEY, weights_sha256="c" * 64), "RealESRGAN_x2plus", 100)
    assert main(["engine", "clear", "--model", "RealESRGAN_x2plus"]) == 0
    assert "removed 1 engine(s), 2 file(s)" in capsys.readouterr().out
    assert a.engine.exists() and not b.engine.exists() and not b.sidecar.exists()
    assert main(["engine", "clear", "--all"]) == 0
    assert not a.engine.exists() and not any(engines.iterdir())
    assert main(["engine", "clear"]) == 2  # one of --all / --model is required


def test_clear_all_removes_dangling_links_and_names_a_folder_it_leaves(engines, capsys):
    """What 'engine list' shows as broken, 'engine clear --all' removes: a sidecar name that is a dangling link goes
    (it was left, listed forever); a folder under an entry's name is not ours to delete: everything else is removed
    and one line names it (it was a traceback, IsADirectoryError, with the rest left in place)."""
    sound = write(engines, KEY, "RealESRGAN_x4plus", 100)
    link = engines / "gone-0123456789abcdef.engine.json"
    link.symlink_to(engines / "nowhere")
    folder = engines / "a-0123456789abcdef.engine.json"
    folder.mkdir()
    (engines / "junk-0123456789abcdef.engine.json").write_text("[1]")
    assert main(["engine", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{link.name}: BROKEN" in out and f"{folder.name}: BROKEN" in out
    assert main(["engine", "clear", "--all"]) == 6
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in captured.err, captured.err
    assert err[0] == (f"esrgan-video: error: engine cache {engines}: removed 4 file(s), but could not remove "
                      f"{folder.name} (a folder, not a cache file: remove it yourself)")
    assert sorted(p.name for p in engines.iterdir()) == [folder.name]
    assert not sound.engine.exists() and not link.is_symlink()
    folder.rmdir()
    assert main(["engine", "clear", "--all"]) == 0
    assert "removed 0 engine(s), 0 file(s)" in capsys.readouterr().out


def test_a_cache_path_that_is_a_file_and_a_clear_that_matches_nothing_say_so(engines, tmp_path, monkeypatch, capsys):
    """'engine list' on an $ESRGAN_VIDEO_ENGINES that is a file said 'no engines in FILE' (exit 0); now one line,
    exit 6. 'clear --model' takes a checkpoint's path as well as its file name (an engine records the file name, so
    the path matched nothing), and when nothing matches it says which models the cache holds engines of."""
    write(engines, KEY, "final.safetensors", 100)
    write(engines, dataclasses.replace(KEY, weights_sha256="c" * 64), "RealESRGAN_x2plus", 100)
    assert main(["engine", "clear", "--model", "RealESRGAN_x4plus"]) == 0
    assert capsys.readouterr().out.strip() == (f"removed 0 engine(s), 0 file(s) from {engines}; no engine of that "
                                               "model (its engines are of RealESRGAN_x2plus, final.safetensors)")
    assert main(["engine", "clear", "--model", str(tmp_path / "runs" / "final.safetensors")]) == 0
    assert capsys.readouterr().out.strip() == f"removed 1 engine(s), 2 file(s) from {engines}"
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setenv(ec.ENGINES_ENV, str(afile))
    for command in (["list"], ["clear", "--all"]):
        assert main(["engine", *command]) == 6
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == (
            f"esrgan-video: error: engine cache {afile} (from $ESRGAN_VIDEO_ENGINES) is not a folder\n")


def test_list_and_clear_an_older_versions_cache(engines, capsys):
    """Entries written before 7f0d115 (no ``cuda_major`` in their key) and the timing caches named then."""
    import json

    old = write(engines, KEY, "RealESRGAN_x4plus", 100)
    side = json.loads(old.sidecar.read_text())
    del side["key"]["cuda_major"]
    old.sidecar.write_text(json.dumps(side))
    timing = engines / "timing-trt10.12.0-NVIDIA-H100-80GB-HBM3-sm9.0.timing"
    timing.write_bytes(b"t")
    assert main(["engine", "list"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if old.sidecar.name in x)
    assert "RealESRGAN_x4plus  from an older esrgan-video, rebuilt on use" in line and "BROKEN" not in line
    assert f"{timing.name}: timing cache from an older esrgan-video, never read" in out
    assert main(["engine", "clear", "--model", "RealESRGAN_x4plus"]) == 0
    assert "removed 1 engine(s), 2 file(s)" in capsys.readouterr().out
    assert main(["engine", "clear", "--all"]) == 0
    assert not any(engines.iterdir())


def test_presets_are_valid_and_match_the_tile_planner(capsys):
    from esrgan_video.models.registry import MODELS

    presets = load_presets()
    assert {"sd-to-hd", "hd-to-4k"} <= set(presets)
    for p in presets.values():
        assert p.model in MODELS, p.name
        assert p.precision in ("fp16", "fp32") and p.batch >= 1
    assert presets["sd-to-hd"].tile_shape(scale=4, multiple=1) == (270, 480)
    from esrgan_video import tiling

    planned = tiling.plan_tiles(1080, 1920, tile=512, pad=tiling.DEFAULT_TILE_PAD, scale=2, multiple=2)
    assert presets["hd-to-4k"].tile_shape(scale=2, multiple=2) == planned.tile_shape
    assert main(["engine", "presets"]) == 0
    assert "sd-to-hd: RealESRGAN_x4plus, 480x270 frames" in capsys.readouterr().out


def test_malformed_presets_name_the_file(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "presets.json"
    bad.write_text('{"x": {"model": "RealESRGAN_x4plus", "frame": [270], "tile": 0}}')
    monkeypatch.setenv("ESRGAN_VIDEO_PRESETS", str(bad))
    assert main(["engine", "presets"]) == 3
    assert f"{bad}: preset 'x' is malformed" in capsys.readouterr().err
    bad.write_text('{"x": {"model": "m", "frame": [1, 2], "tiles": 0}}')
    assert main(["engine", "presets"]) == 3
    assert "unknown fields ['tiles']" in capsys.readouterr().err


def test_build_argument_errors(capsys):
    """Command-line errors, exit 2 as every face's (they were 3, "bad input file"), one line naming the flag."""
    for argv, said in [(["engine", "build"], "--preset: expected a preset name, or --model with --tile-shape, got "
                                             "nothing"),
                       (["engine", "build", "--model", "RealESRGAN_x4plus"],
                        "--tile-shape: expected HEIGHTxWIDTH with --model and no --preset, got nothing"),
                       (["engine", "build", "--preset", "nope"], "--preset: expected an engine preset: dvd-to-hd, "),
                       (["engine", "build", "--model", "m", "--tile-shape", "270x480", "--batch", "0"],
                        "--batch: expected an integer >= 1, got 0")]:
        assert main(argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"esrgan-video: error: {said}"), err
    assert main(["engine", "build", "--model", "m", "--tile-shape", "270by480"]) == 2


@pytest.mark.skipif(tensorrt_available(), reason="checks the message shown when TensorRT is missing")
def test_build_without_tensorrt_is_one_clear_line(capsys):
    assert main(["engine", "build", "--preset", "sd-to-hd"]) == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("esrgan-video: error: engine build: TensorRT is not installed")
