# `make run` and `make test` bootstrap everything they need on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
DEMO_DIR := /usr/share/doc/python3.11/html/tutorial
CHROMIUM := /usr/bin/chromium
WRK := /usr/bin/wrk

.PHONY: run dev test test-torch lint format bench eval clean

run: $(VENV)/.installed $(DEMO_DIR)
	$(PY) -m ragsite.launch

# runserver with autoreload and DEBUG on, instead of gunicorn
dev: $(VENV)/.installed $(DEMO_DIR)
	$(PY) -m ragsite.launch --dev

# The whole suite, then the cache's suite again on a local three-primary Redis Cluster.
test: lint $(CHROMIUM) $(WRK)
	$(PY) -m pytest
	TEST_REDIS_CLUSTER=1 $(PY) -m pytest tests/ragcache

# The optional torch embedding provider: installs its extra into the venv, then its tests.
test-torch: $(VENV)/.installed
	$(VENV)/bin/pip install -q -r requirements-torch.txt
	$(PY) -m pytest tests/documents/test_torch_embedder.py tests/documents/test_checks.py

# Over HTTP against the server `make run` uses, on a site of its own (.data/bench).
bench: $(VENV)/.installed $(DEMO_DIR) $(WRK)
	$(PY) -m bench

# Retrieval and answer quality over the question sets in eval/questions (eval/results/latest.md).
eval: $(VENV)/.installed $(DEMO_DIR)
	$(PY) -m eval

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	@command -v $(PYTHON) >/dev/null || { $(SUDO) apt-get update -q && $(APT_INSTALL) python3.11 python3.11-venv; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

$(DEMO_DIR):
	$(SUDO) apt-get update -q
	$(APT_INSTALL) python3.11-doc

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here).
$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(APT_INSTALL) chromium

# The benchmark's load generator.
$(WRK):
	$(SUDO) apt-get update -q
	$(APT_INSTALL) wrk

clean:
	rm -rf $(VENV) .data
