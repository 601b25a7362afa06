#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: the GPU-marked tests, then the GPU benchmark
# (inference variants, ours vs the GPU peers, fp16 fidelity, end to end, TensorRT, torch.compile).
#
#   bash benchmarks/gpu_check.sh [OUTDIR]          (or: make gpu-check)
#
# Runs from the source tree (PYTHONPATH=.), so it needs no install and no registry: only a
# Python with torch (CUDA build) and numpy; PyAV for the end-to-end part; pytest for the tests;
# tensorrt / torch-tensorrt optional (their tests and benchmark rows run when they import).
# The peers step compares ours (Upscaler, default backend) with plain PyTorch fp16 (always there),
# spandrel, RealESRGANer (realesrgan + basicsr) and vs-mlrt's ONNX Runtime (CUDA) and TensorRT
# plugins, on the same frame and weights, interleaved, as ratios; each peer that does not import
# is a row with its reason (carry its wheels to make it run: docs/benchmarks.md, "GPU peers").
# Everything finishes within 6 minutes (tests <= 150 s, benchmark budget 170 s incl. cuDNN warm-up,
# the peers step (~45 s) and torch.compile, which runs last and gets what is left; where tensorrt is
# installed the engine builds need more: raise GPU_CHECK_BUDGET). Results go to OUTDIR (default $OUT,
# else benchmarks/results):
#   gpu-tests.txt, results.json, results.md, nvidia-smi.txt, env.txt
#
# Environment: PYTHON (interpreter, default: .venv/bin/python if present, else python3),
#   ESRGAN_VIDEO_ANIME_WEIGHTS / ESRGAN_VIDEO_X4PLUS_WEIGHTS (real weights for the fp16 fidelity
#   check: a .safetensors or .pth path), ESRGAN_VIDEO_BENCH_CLIP (a real clip for the fidelity frame),
#   GPU_CHECK_BUDGET (benchmark seconds, default 170).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT_DIR=${1:-${OUT:-$ROOT/benchmarks/results}}
mkdir -p "$OUT_DIR"
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python
else PY=python3; fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
START=$(date +%s)

{ date -u; "$PY" -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available()); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'; } > "$OUT_DIR/env.txt" 2>&1
cat "$OUT_DIR/env.txt"
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT_DIR/nvidia-smi.txt" 2>&1

if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_check: no CUDA device visible to $PY (torch.cuda.is_available() is False)" >&2
  exit 2
fi

TEST_RC=0
if "$PY" -c 'import pytest' 2>/dev/null; then
  echo "== pytest -m 'gpu or tensorrt' =="
  # --continue-on-collection-errors: test modules that need packages this machine lacks (onnxruntime,
  # vapoursynth...) must not hide the GPU tests; -p no:cacheprovider keeps the tree clean.
  timeout 150 "$PY" -m pytest -m "gpu or tensorrt" tests/ -q -rs -p no:cacheprovider \
      --continue-on-collection-errors 2>&1 | tee "$OUT_DIR/gpu-tests.txt"
  TEST_RC=${PIPESTATUS[0]}
else
  echo "gpu_check: pytest not installed; GPU tests skipped" | tee "$OUT_DIR/gpu-tests.txt"
fi

echo "== benchmark =="
BUDGET=${GPU_CHECK_BUDGET:-170}
# 20 s past the budget: a step that started within it may finish; the results files are rewritten after each
timeout $(( ${BUDGET%.*} + 20 )) "$PY" benchmarks/gpu_bench.py --out "$OUT_DIR" --budget "$BUDGET"
BENCH_RC=$?

echo "gpu_check: tests rc=$TEST_RC, benchmark rc=$BENCH_RC, $(( $(date +%s) - START )) s; results in $OUT_DIR"
[ -f "$OUT_DIR/results.md" ] && cat "$OUT_DIR/results.md"
if [ "$TEST_RC" -ne 0 ] && [ "$TEST_RC" -ne 5 ]; then exit "$TEST_RC"; fi  # 5: no tests collected
exit "$BENCH_RC"
