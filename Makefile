# The README's commands. CI (.ci/run) calls `make test`, as a developer does.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench chaos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/order-dispatch demo

test: $(STAMP)
	$(BIN)/ruff check worker producer sandbox tests
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check worker producer sandbox tests
	$(BIN)/ruff format --check worker producer sandbox tests

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/order-dispatch bench

# The fault campaign (issue 13): `make chaos DURATION=600 SEED=42 FAULTS=kill,stop`; without
# SEED it draws one and prints it, so any run can be repeated.
DURATION ?= 600
SEED     ?=
FAULTS   ?=
chaos: $(STAMP)
	$(BIN)/python -m sandbox.campaign --duration-s $(DURATION) $(if $(SEED),--seed $(SEED)) $(if $(FAULTS),--faults $(FAULTS))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
