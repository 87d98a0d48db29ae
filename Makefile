# `make demo` runs the main job, `make test` the test suite; both first set up .venv (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check
# olah, the Hub mirror server the hub tests run on 127.0.0.1, lives in its own venv (its pins clash with ours).
OLAH_VENV ?= .venv-olah

.PHONY: demo detection-demo yolo-demo explain-figures bench-chart docs browser test test-all install olah clean

demo: install
	$(PY) -m epsanet demo

# The README's Explain pictures: Grad-CAM and PSA scale weights of the demo model (run `make demo` first).
explain-figures: install
	mkdir -p docs/explain/digits
	$(PY) -c "from epsanet.training.data import DigitsDataset; d = DigitsDataset('val'); \
	[d.images[d.targets.index(k)].save(f'docs/explain/digits/{k}.png') for k in range(10)]"
	$(PY) -m epsanet explain docs/explain/digits --model runs/demo/best --psa-scales --size 72 --out runs/demo/explain
	cp runs/demo/explain/grid.png runs/demo/explain/psa_scales.png docs/explain/

# The gallery's speed chart, and the table beside it (docs/gallery.md shows this command).
bench-chart: install
	mkdir -p docs/gallery
	$(PY) -m epsanet bench epsanet50_small --threads 2 --repeats 3 --warmup 1 \
		--json docs/gallery/bench.json --chart docs/gallery/bench.png > docs/gallery/bench.txt.tmp
	mv docs/gallery/bench.txt.tmp docs/gallery/bench.txt

# The documentation site (mkdocs.yml): strict, offline, into site/; model pages and the API
# reference are generated from the code by docs/hooks.py.
docs: install
	$(PY) -m mkdocs build --strict --quiet --site-dir site

# The headless browser the docs test drives (Debian's chromium; installed when root, else that test skips).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else echo "make browser: /usr/bin/chromium is missing and cannot be installed here: the browser test will skip"; fi

detection-demo: install
	$(PY) -m epsanet detect demo runs/detection-demo

yolo-demo: install
	$(PY) -m epsanet yolo demo runs/yolo-demo

# The linter first (zero findings), the docs (strict), then the tests; the wheel test is marked slow but
# runs here too. The runtime tests (OpenVINO, ONNX Runtime) run in a pytest process of their own: after
# them, in the same process, the training test that SIGKILLs a run and resumes it saw the pytest
# process itself receive SIGSEGV while waiting for that run (cause not yet found; see CHANGELOG).
test: install olah browser docs
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow or wheel" --ignore=tests/runtimes
	$(PY) -m pytest -m "not slow or wheel" tests/runtimes

test-all: install olah browser docs
	$(PY) -m ruff check .
	$(PY) -m pytest --ignore=tests/runtimes
	$(PY) -m pytest tests/runtimes

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev,train,docs]'
	touch $@

olah: $(OLAH_VENV)/.installed

$(OLAH_VENV)/.installed:
	$(PYTHON) -m venv $(OLAH_VENV)
	$(OLAH_VENV)/bin/pip --disable-pip-version-check install -q 'olah==0.5.4'
	touch $@

clean:
	rm -rf $(VENV) $(OLAH_VENV) build site *.egg-info
