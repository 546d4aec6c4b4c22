# curate: `make demo` and `make test` work on a fresh clone (they create the virtualenvs first).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LS_VENV := .venv-labelstudio
LABEL_STUDIO_VERSION := 1.23.2
STAMP := $(VENV)/.installed

.PHONY: setup setup-labelstudio demo test bench lint clean

# torch is pinned first: its CPU wheel lies on this machine's disk; any other spec pulls a CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Label Studio conflicts with Prefect in one environment: it gets its own virtualenv; we talk HTTP to it.
# sentry-sdk 3 removed an option Label Studio 1.23 passes at start-up ("Unknown option 'send_default_pii'").
$(LS_VENV)/bin/label-studio:
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q label-studio==$(LABEL_STUDIO_VERSION) 'sentry-sdk<3'

setup: $(STAMP) $(LS_VENV)/bin/label-studio

setup-labelstudio: $(LS_VENV)/bin/label-studio

demo: $(STAMP)
	$(BIN)/curate demo --workspace workspace

test: setup
	$(BIN)/python -m pytest

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf workspace .pytest_cache .ruff_cache
