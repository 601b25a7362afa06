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
from gpu_bench import peak_tflops  # noqa: E402


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


def test_cpu_smoke_run_writes_json_and_markdown(tmp_path):
    out = tmp_path / "bench"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("ESRGAN_VIDEO_ANIME_WEIGHTS", None)
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_bench.py", "--cpu-smoke", "--out", str(out), "--budget", "60"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "results.json").read_text())
    assert report["meta"]["cpu_smoke"] is True and report["meta"]["mflop_per_pixel"] == 0.072432
    rows = report["inference"]
    assert [(r["variant"], r["batch"]) for r in rows] == [("torch fp32 eager", 1), ("torch fp32 eager", 2)]
    assert all(r["fps"] and r["fps"] > 0 and not r["note"] for r in rows)
    (fid,) = report["fidelity"]
    assert fid["nonfinite_fp16"] in (0, None)
    if fid.get("psnr_fp16_vs_fp32_db") is not None:
        assert fid["psnr_fp16_vs_fp32_db"] > 40
    e2e = report["end_to_end"]
    if e2e:  # pipeline + PyAV present
        assert e2e[0].get("fps", 0) > 0 and e2e[0]["frames"] == 6, e2e
    else:
        assert any(s.startswith("end to end") for s in report["skipped"])
    assert not report["errors"], report["errors"]
    md = (out / "results.md").read_text()
    assert "| torch fp32 eager | 1 |" in md and "## fp16 fidelity" in md
