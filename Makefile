# `make demo` runs the main job, `make test` the test suite; both first set up .venv (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check

.PHONY: demo test test-all install clean

demo: install
	$(PY) -m epsanet demo

test: install
	$(PY) -m pytest -m "not slow"

test-all: install
	$(PY) -m pytest

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev,train]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info
