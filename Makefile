# Two commands matter: `make demo` (install, migrate, seed, run web + worker) and `make test`.
# Everything else is a step of those two or a tool for developers.

VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTHON ?= python3

.PHONY: demo test lint bench install install-dev system-packages system-packages-dev messages migrate seed run clean

demo: install messages migrate seed run

# Tests keep their own var/ so a running demo's broker and database are left alone. The second
# run repeats the platform and real-worker tests on PostgreSQL + Redis (running on 127.0.0.1).
TEST_ENV := VAR_DIR=$(CURDIR)/var/test
SERVICES_ENV := DATABASE_URL=postgres://postgres@127.0.0.1:5432/leaderboard \
	CELERY_BROKER_URL=redis://127.0.0.1:6379/15

test: install-dev messages
	$(TEST_ENV) $(PY) -m pytest
	$(TEST_ENV) $(SERVICES_ENV) $(PY) -m pytest -m "not browser" tests/platform tests/integration

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) scripts/check_catalogue.py

# The German catalogue's binary form, compiled from the committed .po files (never committed).
messages: install
	$(PY) manage.py compilemessages --ignore=.venv --ignore=var

bench: install-dev
	$(PY) -m benchmarks

# System packages, installed when missing and running as root (otherwise: say what to install).
# The demo needs bubblewrap (the sandbox), xmlsec1 (SAML signatures) and gettext (compiling the
# translations); the tests also drive chromium and validate docker-compose.yml with Debian's
# docker-compose and run deploy/Caddyfile with its caddy; npm installs axe-core for the
# accessibility test.
define apt_ensure
	@missing=""; for pair in $(1); do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing system packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "please install:$$missing (sudo apt-get install$$missing)"; exit 1; \
		fi; \
	fi
endef

system-packages:
	$(call apt_ensure,bwrap:bubblewrap xmlsec1:xmlsec1 msgfmt:gettext)

system-packages-dev: system-packages
	$(call apt_ensure,chromium:chromium docker-compose:docker-compose caddy:caddy npm:npm)

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(VENV)/bin/activate
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PIP) install -q -r requirements-dev.txt
	touch $@

install: system-packages $(VENV)/.installed

# axe-core (package.json, pinned in package-lock.json): the accessibility test runs it in the browser.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install-dev: system-packages-dev $(VENV)/.installed-dev node_modules/.package-lock.json

migrate: install
	$(PY) manage.py migrate --no-input

seed: install
	$(PY) manage.py seed_demo

run: install
	$(PY) -m worker.devserver

clean:
	rm -rf var/
