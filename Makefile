# oasis_tf developer tasks. `make test` and `make demo` set everything up first.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= 1
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=
# pytest-xdist workers (one test file per worker at a time, the longest files first:
# tests/conftest.py); TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2

PIP := $(VENV)/bin/pip
PY  := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
TORCH_STAMP := $(VENV)/.torch-installed

.PHONY: all venv install bytecode test test-fast test-durations demo studio clean

all: test

# Create the virtualenv only when it does not exist yet.
venv: $(VENV)/bin/python

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Editable install with the test and studio extras; reruns only when setup.py changes.
# torch is optional (only to read official .pth checkpoints); the pinned CPU build
# lies on this machine's disk. Set TORCH=0 to skip it.
$(INSTALLED): setup.py pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e ".[test,studio]"
	touch $@

$(TORCH_STAMP): | $(INSTALLED)
	@if [ "$(TORCH)" = "1" ]; then \
	  if $(PIP) install "torch==$(TORCH_VERSION)"; then touch $@; \
	  else echo "torch not installed: tests of the torch path will skip"; fi; \
	else echo "TORCH=$(TORCH): torch not installed: tests of the torch path will skip"; fi

install: $(INSTALLED) $(TORCH_STAMP)

# The package byte-compiled once: where PYTHONDONTWRITEBYTECODE is set (CI machines),
# each of the suite's ~40 tool subprocesses would compile it again (~0.4 s each).
bytecode: install
	$(PY) -m compileall -q oasis_tf

test: bytecode
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 tests $(PYTEST_ARGS)

# The seconds each test module takes, for the order the suite runs in (longest first:
# tests/conftest.py reads tests/durations.json). Run after a module's cost changes a lot.
test-durations: bytecode
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests --store-durations tests/durations.json $(PYTEST_ARGS)

# The edit-test loop: everything but the tests marked slow (pytest.mark.slow), < 3 min.
test-fast: bytecode
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 -m "not slow" tests $(PYTEST_ARGS)

# The synthetic-data demo: data in ~/.cache/oasis_tf/synthetic (or $$OASIS_TF_DATA/synthetic),
# a run folder runs/demo-NNNN with samples, loss curves and the final checkpoint.
# DEMO_STEPS=100 make demo for a shorter run (default: tools/demo.py's DEFAULT_STEPS).
# DEMO_PRECISION=float32 make demo to choose the precision (default auto: mixed_bfloat16
# where the CPU computes bfloat16 natively).
DEMO_STEPS ?=
DEMO_PRECISION ?=
demo: $(INSTALLED)
	$(PY) tools/demo.py $(if $(DEMO_STEPS),--steps $(DEMO_STEPS)) $(if $(DEMO_PRECISION),--precision $(DEMO_PRECISION))

# OASIS Studio on the newest runs/demo-NNNN (or MODEL=run folder / generator.keras /
# export version folder); prints the URL. HOST and PORT as for tools/studio.py.
MODEL ?=
HOST  ?= 127.0.0.1
PORT  ?= 7860
studio: $(INSTALLED)
	$(PY) tools/studio.py $(if $(MODEL),--model $(MODEL)) --host $(HOST) --port $(PORT)

clean:
	rm -rf build dist *.egg-info .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
