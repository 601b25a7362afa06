#!/usr/bin/env bash
# One short, self-checking run for a machine with an NVIDIA GPU: the GPU-marked tests, then the GPU benchmark
# (inference variants, ours vs the GPU peers, fp16 fidelity with real weights, end to end, TensorRT, torch.compile).
#
#   bash benchmarks/gpu_check.sh [OUTDIR]          (or: make gpu-check)
#
# Runs from the source tree (PYTHONPATH=.), needing no install and no registry: a Python with torch (CUDA build),
# numpy and pytest, which the GPU image has. What it lacks travels as wheels (GPU_CHECK_WHEELS) and cache files;
# `python benchmarks/gpu_bench.py --prepare-carry DIR` writes all of it (README, "Checking a GPU machine").
#
# Steps (each is one run_step line below; add a step by adding a line): env, wheels, cuda, collect, tests, train,
# bench.
# Every step runs whatever the one before did, under a timeout taken from GPU_CHECK_BUDGET (a share of it, never
# past the deadline); its exit status and seconds go to steps.tsv. The script's status is 0 only when every step
# passed (pytest's 5, "no tests collected", counts as passed), so a failure never hides the steps after it.
# Test modules that cannot be imported here (a package the machine lacks) are left out of the test step and named
# in gpu-tests.txt, instead of turning pytest's exit status into 1.
#
# Results in OUTDIR (default $OUT, else benchmarks/results/gpu), at most 7 files:
#   env.txt (versions, nvidia-smi, the wheels installed), gpu-tests.txt (collection and the test run),
#   results.json + results.md (gpu_bench.py; the README table's figures), steps.tsv (step, rc, seconds, timeout),
#   train.json (train_bench.py gpu: the training step's throughput)
#
# Environment:
#   PYTHON             interpreter (default: .venv/bin/python if present, else python3)
#   GPU_CHECK_BUDGET   seconds for the whole run (default 480; tests get up to 40 %, the benchmark what is left)
#   GPU_CHECK_WHEELS   a folder of wheels installed first: pip install --no-index --no-deps --target (unpacked with
#                      python -m zipfile where the Python has no pip), then on PYTHONPATH
#   GPU_CHECK_DRY_RUN  1: on the CPU, every step as far as it goes (no CUDA needed; gpu_bench --cpu-smoke); CI runs it
#   GPU_CHECK_TEST_FILES  test files to consider (default: the tests/ files with gpu or tensorrt marks)
#   GPU_CHECK_EXTRA_TEST_FILES  more test files to consider (the CI dry run adds one that cannot be imported)
#   GPU_CHECK_BENCH_ARGS  extra gpu_bench.py arguments (e.g. --skip-peers)
#   ESRGAN_VIDEO_CACHE, ESRGAN_VIDEO_ANIME_WEIGHTS, ESRGAN_VIDEO_X4PLUS_WEIGHTS: the cache holding the sample clip
#   and the models the GPU tests load by name (realesr-animevideov3), and real weights (a .safetensors or .pth
#   path) for the fidelity rows and the real-weights test
#   ESRGAN_VIDEO_OFFLINE  default 1 outside a dry run: a GPU machine reaches no network, and a model or clip missing
#                      from the cache then fails at once with its name instead of after a download's retries
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT_DIR=${1:-${OUT:-$ROOT/benchmarks/results/gpu}}
mkdir -p "$OUT_DIR"
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python
else PY=python3; fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
BUDGET=${GPU_CHECK_BUDGET:-480}
BUDGET=${BUDGET%.*}
DRY_RUN=${GPU_CHECK_DRY_RUN:-0}
GPU_CHECK_SITE=${GPU_CHECK_SITE:-${TMPDIR:-/tmp}/esrgan-video-gpu-check-site}  # where the carried wheels go
export PY BUDGET DRY_RUN GPU_CHECK_SITE
[ "$DRY_RUN" = 1 ] || export ESRGAN_VIDEO_OFFLINE=${ESRGAN_VIDEO_OFFLINE:-1}
START=$(date +%s)
DEADLINE=$(( START + BUDGET ))
STEPS=$OUT_DIR/steps.tsv
ENV_TXT=$OUT_DIR/env.txt
TESTS_TXT=$OUT_DIR/gpu-tests.txt
printf 'step\trc\tseconds\ttimeout_s\n' > "$STEPS"
: > "$ENV_TXT"
: > "$TESTS_TXT"
FAILED=0

left() { echo $(( DEADLINE - $(date +%s) )); }

# share PERCENT [RESERVE]: PERCENT of the budget, capped at what is left minus RESERVE seconds (kept for later steps)
share() {
  local want=$(( BUDGET * $1 / 100 )) cap=$(( $(left) - ${2:-0} ))
  [ "$want" -lt "$cap" ] || want=$cap
  [ "$want" -gt 5 ] || want=5
  echo "$want"
}

# run_step NAME TIMEOUT LOG CMD...: run CMD under TIMEOUT, output to the terminal and appended to LOG; the status
# and seconds go to steps.tsv. Never stops the script.
run_step() {
  local name=$1 t=$2 log=$3 t0 rc
  shift 3
  t0=$(date +%s)
  echo "== $name (timeout ${t}s, $(left)s of the budget left) =="
  echo "== $name ==" >> "$log"
  if declare -F "$1" >/dev/null; then  # a function of this script: timeout runs it in a child bash
    timeout --kill-after=10 "$t" bash -c "$(declare -f "$1"); $*" 2>&1 | tee -a "$log"
  else
    timeout --kill-after=10 "$t" "$@" 2>&1 | tee -a "$log"
  fi
  rc=${PIPESTATUS[0]}
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$t" >> "$STEPS"
  return "$rc"
}

record() {  # record NAME RC: a step that ran inline
  printf '%s\t%s\t0\t0\n' "$1" "$2" >> "$STEPS"
  [ "$2" -eq 0 ] || FAILED=1
}

step_env() {  # fails when this Python has no torch (nvidia-smi is still shown)
  local rc=0
  date -u
  echo "budget ${BUDGET}s, dry run ${DRY_RUN}, python $PY, offline ${ESRGAN_VIDEO_OFFLINE:-0}," \
      "cache ${ESRGAN_VIDEO_CACHE:-(default)}"
  "$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
"available", torch.cuda.is_available()); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")' \
      || rc=1
  if command -v nvidia-smi >/dev/null; then nvidia-smi; else echo "nvidia-smi: not on PATH"; fi
  return "$rc"
}

step_wheels() {
  mkdir -p "$GPU_CHECK_SITE"
  if "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$GPU_CHECK_SITE" \
        "$GPU_CHECK_WHEELS"/*.whl || return $?
  else  # no pip in this Python: a wheel is a zip of its importable tree, so unpacking it onto the path is enough
    echo "wheels: $PY has no pip; unpacking the wheels instead"
    local w
    for w in "$GPU_CHECK_WHEELS"/*.whl; do "$PY" -m zipfile -e "$w" "$GPU_CHECK_SITE" || return $?; done
  fi
  echo "installed into $GPU_CHECK_SITE: $(cd "$GPU_CHECK_WHEELS" && ls -1 ./*.whl | sed 's|^\./||' | tr '\n' ' ')"
}

# ---------------------------------------------------------------------------------------------------------- env
run_step env "$(share 5)" "$ENV_TXT" step_env || FAILED=1

# ------------------------------------------------------------------------------------------------------- wheels
if [ -n "${GPU_CHECK_WHEELS:-}" ]; then
  if ls "$GPU_CHECK_WHEELS"/*.whl >/dev/null 2>&1; then
    run_step wheels "$(share 10)" "$ENV_TXT" step_wheels || FAILED=1
    export PYTHONPATH="$GPU_CHECK_SITE:$PYTHONPATH"
  else
    echo "wheels: no .whl files in $GPU_CHECK_WHEELS" | tee -a "$ENV_TXT"
    record wheels 1
  fi
else
  echo "wheels: GPU_CHECK_WHEELS not set; nothing installed" | tee -a "$ENV_TXT"
  record wheels 0
fi

# which optional packages this Python finds (nothing imported: a broken tensorrt shows up in the steps that use it),
# with their installed versions, wheels or not
timeout --kill-after=5 30 "$PY" -c '
import importlib.metadata as md, importlib.util as u
dists = md.packages_distributions()
def version(m):
    try:
        return md.version(dists.get(m, [m])[0])
    except Exception:
        return "?"
mods = ("av", "tensorrt", "torch_tensorrt", "onnx", "onnxruntime", "spandrel", "vapoursynth")
print("importable:", ", ".join(f"{m} {version(m)}" for m in mods if u.find_spec(m)) or "none of " + ", ".join(mods))
' 2>&1 | tee -a "$ENV_TXT"

# --------------------------------------------------------------------------------------------------------- cuda
if [ "$DRY_RUN" = 1 ]; then
  echo "cuda: dry run on $(uname -m), no CUDA device needed" | tee -a "$ENV_TXT"
  record cuda 0
  BENCH_MODE=(--cpu-smoke)
else
  # the probe's last line: True, False, or why torch does not import (this Python may not be the one with torch)
  CUDA_PROBE=$(timeout --kill-after=10 "$(share 10)" "$PY" -c 'import torch; print(torch.cuda.is_available())' 2>&1 \
      | tail -n 1)
  if [ "$CUDA_PROBE" = True ]; then
    record cuda 0
    BENCH_MODE=()
  else
    [ "$CUDA_PROBE" = False ] && CUDA_PROBE="torch.cuda.is_available() is False"
    echo "gpu_check: no CUDA device visible to $PY (${CUDA_PROBE:-the probe printed nothing}); PYTHON=... picks" \
        "another interpreter, GPU_CHECK_DRY_RUN=1 runs on the CPU" | tee -a "$ENV_TXT" >&2
    record cuda 2
    exit 2
  fi
fi

# ------------------------------------------------------------------------------------------------------ collect
if [ -n "${GPU_CHECK_TEST_FILES:-}" ]; then
  read -r -a CANDIDATES <<< "$GPU_CHECK_TEST_FILES"
else
  mapfile -t CANDIDATES < <(grep -l -E 'pytest\.mark\.(gpu|tensorrt)|_mark\((gpu|trt)\)' tests/test_*.py)
fi
if [ -n "${GPU_CHECK_EXTRA_TEST_FILES:-}" ]; then
  read -r -a EXTRA <<< "$GPU_CHECK_EXTRA_TEST_FILES"
  CANDIDATES+=("${EXTRA[@]}")
fi
PYTEST=("$PY" -m pytest -c "$ROOT/pytest.ini" --rootdir "$ROOT" -p no:cacheprovider)
COLLECT_LOG=$(mktemp)
run_step collect "$(share 10)" "$COLLECT_LOG" "${PYTEST[@]}" --collect-only -q -m "gpu or tensorrt" "${CANDIDATES[@]}"
COLLECT_RC=$?
# "ERROR collecting <file>" (or "... test session" and "importing test module '<file>'") heads each file that
# failed to import; its first "E   ..." line says why
mapfile -t BROKEN < <(awk '/ERROR collecting /{on = 1; f = ""; for (i = 1; i <= NF; i++) if ($i ~ /\.py$/) f = $i; next}
    on && /importing test module /{match($0, /\x27[^\x27]+\x27/); f = substr($0, RSTART + 1, RLENGTH - 2); next}
    on && f != "" && /^E  /{sub(/^E +/, ""); print f "\t" $0; on = 0}' "$COLLECT_LOG")
real() { (cd "$ROOT" && realpath -m "$1"); }
GOOD=()
for f in "${CANDIDATES[@]}"; do
  skip=0
  for b in "${BROKEN[@]}"; do [ "$(real "$f")" = "$(real "${b%%$'\t'*}")" ] && skip=1; done
  [ "$skip" = 1 ] || GOOD+=("$f")
done
{
  echo "== collect: rc $COLLECT_RC; test files with gpu/tensorrt marks: ${CANDIDATES[*]}"
  for b in "${BROKEN[@]}"; do echo "not run (cannot be imported here): ${b%%$'\t'*}: ${b#*$'\t'}"; done
  grep -E '[0-9]+ (tests? collected|selected)|no tests ran|collected' "$COLLECT_LOG" | tail -1
} | tee -a "$TESTS_TXT"
rm -f "$COLLECT_LOG"
# only a collection that broke for another reason than an unimportable module is a failure here
if [ "$COLLECT_RC" -ne 0 ] && [ "$COLLECT_RC" -ne 5 ] && [ "${#BROKEN[@]}" -eq 0 ]; then FAILED=1; fi

# -------------------------------------------------------------------------------------------------------- tests
if [ "${#GOOD[@]}" -gt 0 ]; then
  # -v: one line per test as it ends, so a run cut by the timeout still says which passed; --durations: the slowest
  # tests' seconds, to size this step's share on the next machine
  run_step tests "$(share 40 60)" "$TESTS_TXT" "${PYTEST[@]}" -m "gpu or tensorrt" -v -rs --durations=15 "${GOOD[@]}"
  TEST_RC=$?
  if [ "$TEST_RC" -ne 0 ] && [ "$TEST_RC" -ne 5 ]; then FAILED=1; fi
else
  echo "tests: no importable test file" | tee -a "$TESTS_TXT"
  record tests 1
fi

# -------------------------------------------------------------------------------------------------------- train
# The training step (benchmarks/train_bench.py gpu, owned by esrgan_video/train): esrgan-video train's step vs a
# plain PyTorch loop at x4plus size (128-px patches, batch 16, bf16), patches/s and % of peak -> train.json.
# 12 % of the budget (at least 60 s, at most what is left minus 60 s for the benchmark); in a dry run the same
# code with a tiny model on the CPU.
TRAIN_T=$(share 12 60)
[ "$TRAIN_T" -ge 60 ] || TRAIN_T=60
TRAIN_MODE=()
[ "$DRY_RUN" = 1 ] && TRAIN_MODE=(--dry-run)
run_step train "$TRAIN_T" /dev/null "$PY" benchmarks/train_bench.py gpu --out "$OUT_DIR" \
    --budget "$(( TRAIN_T - 25 ))" "${TRAIN_MODE[@]}" || FAILED=1

# -------------------------------------------------------------------------------------------------------- bench
BENCH_T=$(share 100 5)
BENCH_BUDGET=$(( BENCH_T > 40 ? BENCH_T - 20 : BENCH_T / 2 ))  # 20 s for a step that started inside the budget
read -r -a BENCH_EXTRA <<< "${GPU_CHECK_BENCH_ARGS:-}"
run_step bench "$BENCH_T" /dev/null "$PY" benchmarks/gpu_bench.py --out "$OUT_DIR" --budget "$BENCH_BUDGET" \
    "${BENCH_MODE[@]}" "${BENCH_EXTRA[@]}" || FAILED=1

# ------------------------------------------------------------------------------------------------------ summary
echo "gpu_check: $(( $(date +%s) - START )) s of a ${BUDGET} s budget; results in $OUT_DIR"
column -t -s $'\t' "$STEPS" 2>/dev/null || cat "$STEPS"
[ -f "$OUT_DIR/results.md" ] && cat "$OUT_DIR/results.md"
exit "$FAILED"
