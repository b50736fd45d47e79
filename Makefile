# Two commands do all set-up on a fresh Debian/Ubuntu machine with Python 3.11:
#   make run    create .venv if missing, install the pinned requirements, serve the dashboard
#   make test   the same set-up, then the whole test suite (browser tests included)
#   make test-fast   the tests that train nothing and open no browser (under a minute)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test test-fast lint bench gallery sweep browser clean-cache

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -q --no-deps -r requirements-nodeps.txt
	touch $@

# a malformed roles file (README: Serving to a team) stops here, with the line at fault
run: $(VENV)/.installed
	$(PY) -m core roles > /dev/null
	$(PY) -m streamlit run app.py --server.port $(PORT)

# Two pytest-xdist workers, a test module each at a time (module fixtures are built once), one
# OpenMP thread per process (two workers of two threads each fought over 2 cores; three workers
# were slower than two); the slowest modules first, in the measured order of tests/conftest.py,
# which --no-loadscope-reorder keeps.
PYTEST_PARALLEL := -n 2 --dist loadfile --no-loadscope-reorder
test: $(VENV)/.installed browser lint
	OMP_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_PARALLEL)

test-fast: $(VENV)/.installed lint
	OMP_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_PARALLEL) -m "not train and not browser"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# the benchmark suite, quick mode (python -m bench --full for the whole grid); not part of test
bench: $(VENV)/.installed
	$(PY) -m bench

# the gallery of real learning curves (bench/results/gallery.md): about 50 minutes on 2 cores
GALLERY ?= /tmp/hmd-gallery
gallery: $(VENV)/.installed
	$(PY) -m bench.gallery_data $(GALLERY)/data
	for d in data/fashion-mnist $(GALLERY)/data/fm-hard4 $(GALLERY)/data/fm-easy5 $(GALLERY)/data/fm60k; do \
		$(PY) -m core --cache $(GALLERY)/cache sweep --preset curve --data $$d > /dev/null || exit 1; done
	$(PY) -m core --cache $(GALLERY)/cache sweep --preset curve --data data/fashion-mnist --image-size 64 > /dev/null
	$(PY) -m core --cache $(GALLERY)/cache sweep --preset curve --data $(GALLERY)/data/fm60k --solver adamw > /dev/null
	$(PY) -m core --cache $(GALLERY)/cache sweep --preset curve --data data/fashion-mnist --mode finetune --image-size 64 > /dev/null
	$(PY) -m core --cache $(GALLERY)/cache sweep --preset curve --data $(GALLERY)/data/fm60k --backbone efficientnet_lite2 > /dev/null
	$(PY) -m core --cache $(GALLERY)/cache sweep --preset curve --data $(GALLERY)/data/fm60k --image-size 64 > /dev/null
	$(PY) -m bench.gallery --cache $(GALLERY)/cache "data/fashion-mnist#L-BFGS · 96 px" \
		"data/fashion-mnist#L-BFGS · 64 px" $(GALLERY)/data/fm-hard4 $(GALLERY)/data/fm-easy5 \
		$(GALLERY)/data/fm60k "$(GALLERY)/data/fm60k#lr 0.01" \
		"data/fashion-mnist#finetune" "$(GALLERY)/data/fm60k#lite2" "$(GALLERY)/data/fm60k#64 px"

# the original experiment's grid on the bundled dataset, printed as a table
sweep: $(VENV)/.installed
	$(PY) -m core sweep --preset seed-grid --backbone efficientnet_lite0 --mode frozen

# Browser tests drive Debian's Chromium with Playwright (no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  fi; }
	@command -v chromium >/dev/null 2>&1 || echo "!!! chromium is not installed and could not be: browser tests will be SKIPPED (apt-get install chromium)"

clean-cache:
	find cache -mindepth 1 -not -name .gitkeep -delete
