# `make demo` runs the main job, `make test` the test suite; both first set up .venv (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check
# olah, the Hub mirror server the hub tests run on 127.0.0.1, lives in its own venv (its pins clash with ours).
OLAH_VENV ?= .venv-olah

.PHONY: demo detection-demo yolo-demo explain-figures test test-all install olah clean

demo: install
	$(PY) -m epsanet demo

# The README's Explain pictures: Grad-CAM and PSA scale weights of the demo model (run `make demo` first).
explain-figures: install
	mkdir -p docs/explain/digits
	$(PY) -c "from epsanet.training.data import DigitsDataset; d = DigitsDataset('val'); \
	[d.images[d.targets.index(k)].save(f'docs/explain/digits/{k}.png') for k in range(10)]"
	$(PY) -m epsanet explain docs/explain/digits --model runs/demo/best --psa-scales --size 72 --out runs/demo/explain
	cp runs/demo/explain/grid.png runs/demo/explain/psa_scales.png docs/explain/

detection-demo: install
	$(PY) -m epsanet detect demo runs/detection-demo

yolo-demo: install
	$(PY) -m epsanet yolo demo runs/yolo-demo

# The linter first (zero findings), then the tests; the wheel test is marked slow but runs here too.
test: install olah
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow or wheel"

test-all: install olah
	$(PY) -m ruff check .
	$(PY) -m pytest

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev,train]'
	touch $@

olah: $(OLAH_VENV)/.installed

$(OLAH_VENV)/.installed:
	$(PYTHON) -m venv $(OLAH_VENV)
	$(OLAH_VENV)/bin/pip --disable-pip-version-check install -q 'olah==0.5.4'
	touch $@

clean:
	rm -rf $(VENV) $(OLAH_VENV) build *.egg-info
