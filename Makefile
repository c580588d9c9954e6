# sgvideo: every target installs what it needs first, so one command works on a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sgvideo-installed
ARGS ?=

.PHONY: setup test test-fast lint bench demo synth-data train-clip train-prior train-align \
        train-inversion train-trajectory train-generator evaluate app tensorboard clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,metrics,app]'
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q $(ARGS)

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

lint: setup
	$(BIN)/ruff check sgvideo stylegan2_ops tests bench
	$(BIN)/ruff format --check sgvideo stylegan2_ops tests bench

bench: setup
	$(BIN)/python -m bench.run $(ARGS)

synth-data: setup
	$(BIN)/sgvideo synth-data --out outputs/synth $(ARGS)

train-clip: setup
	$(BIN)/sgvideo clip fit --config configs/clip.yaml $(ARGS)

train-prior: setup
	$(BIN)/sgvideo prior fit --config configs/prior.yaml $(ARGS)

train-align: setup
	$(BIN)/sgvideo align fit --config configs/align.yaml $(ARGS)

train-inversion: setup
	$(BIN)/sgvideo inversion fit --config configs/inversion.yaml $(ARGS)

train-trajectory: setup
	$(BIN)/sgvideo trajectory fit --config configs/trajectory.yaml $(ARGS)

train-generator: train-trajectory  # the older name

evaluate: setup
	$(BIN)/sgvideo evaluate --config configs/evaluate.yaml $(ARGS)

demo: setup
	$(BIN)/python -m sgvideo.demo $(ARGS)

app: setup
	$(BIN)/sgvideo app $(ARGS)

tensorboard: setup
	$(BIN)/tensorboard --logdir outputs --host 127.0.0.1 $(ARGS)

clean:
	rm -rf outputs lightning_logs .pytest_cache
