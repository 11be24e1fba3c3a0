# Two entry points: `make demo` and `make test`. Both create or refresh .venv from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck unit system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The stamp files tie the installed set to pyproject.toml: edit it and the next run reinstalls.
# setuptools prints a banner on every editable install (a reminder that the checkout is what
# gets imported); that is the point of `-e` here, so only that message is silenced.
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation:UserWarning"
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(QUIET_EDITABLE) $(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(QUIET_EDITABLE) $(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/trailguard demo

# Prometheus, promtool and Alertmanager come from Debian; installed only when missing.
system-deps:
	@command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null && command -v chromium >/dev/null || { \
	  command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager chromium >/dev/null) \
	  || echo "warning: could not install prometheus/alertmanager/chromium; tests that need them will skip"; }

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check detector tests
	$(BIN)/ruff format --check detector tests

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest -q

test: $(VENV)/.installed-dev system-deps lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
