# The two commands a newcomer needs:
#   make demo   - create .venv, install, upscale 1 s of a real clip with the default model
#   make test   - create .venv, install, run the test suite
# Both find Python 3.12 (on PATH, or through pyenv) and say so clearly if there is none.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The first candidate that really runs as Python 3.12: python3.12 on PATH (a pyenv shim there may not
# run unless 3.12 is selected, so each candidate is tried), then pyenv's own 3.12 installs.
PYTHON312 := $(shell for c in "$$(command -v python3.12)" "$$(PYENV_VERSION=3.12 pyenv which python3.12 2>/dev/null)" \
	$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12' | while read v; do PYENV_VERSION=$$v pyenv which python3.12 2>/dev/null; done); \
	do [ -n "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo "$$c"; break; }; done)

.PHONY: venv demo test bench bench-full gpu-check clean

$(STAMP): setup.py
	@if [ -z "$(PYTHON312)" ]; then \
	  echo "error: Python 3.12 not found (looked for python3.12 on PATH and in pyenv). Install it, e.g. 'pyenv install 3.12', and rerun." >&2; exit 1; fi
	@test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,vapoursynth]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/esrgan-video demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m benchmarks.run --quick

bench-full: $(STAMP)
	$(PY) -m benchmarks.run --full

gpu-check:
	bash benchmarks/gpu_check.sh

clean:
	rm -rf $(VENV) build *.egg-info demo-output
