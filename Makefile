# `make run` and `make test` bootstrap everything they need on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
DEMO_DIR := /usr/share/doc/python3.11/html/tutorial
CHROMIUM := /usr/bin/chromium

.PHONY: run dev test lint format bench clean

run: $(VENV)/.installed $(DEMO_DIR)
	$(PY) -m ragsite.launch

# runserver with autoreload and DEBUG on, instead of gunicorn
dev: $(VENV)/.installed $(DEMO_DIR)
	$(PY) -m ragsite.launch --dev

test: lint $(CHROMIUM)
	$(PY) -m pytest

bench: $(VENV)/.installed $(DEMO_DIR)
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py bench

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { $(SUDO) apt-get update -q && $(APT_INSTALL) python3.11 python3.11-venv; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

$(DEMO_DIR):
	$(SUDO) apt-get update -q
	$(APT_INSTALL) python3.11-doc

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here).
$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(APT_INSTALL) chromium

clean:
	rm -rf $(VENV) .data
