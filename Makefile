# `make run` serves the whole service with demo data; `make test` runs the whole suite.
# Both start an embedded PostgreSQL and Redis (from PyPI wheels, data under .data/) unless
# DATABASE_URL / REDIS_URL point at servers.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: install chromium pgbouncer haproxy run test lint typecheck check bench rehearsal clean

# Debian's Chromium drives the browser tests (tests/dashboard/test_browser.py; never a
# Playwright browser download). A fresh machine gets it here, from `make test`, as in CI.
CHROMIUM ?= chromium
APT_GET ?= apt-get
SUDO ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

# Compiled translations (build output, never committed): Babel in pure Python, as GNU
# msgfmt is not on every machine (bin/translations.py).
MO_FILES := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))
%.mo: %.po $(VENV)/.installed
	$(PY) bin/translations.py compile

install: $(VENV)/.installed $(MO_FILES)

chromium:
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive $(APT_GET) update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq chromium >/dev/null; \
	}

# Debian's PgBouncer, for the transaction-pooling test (tests/test_pgbouncer.py): installed
# here as chromium is, so the test never skips in CI.
PGBOUNCER ?= pgbouncer

pgbouncer:
	@command -v $(PGBOUNCER) >/dev/null 2>&1 || [ -x /usr/sbin/$(PGBOUNCER) ] || { \
		echo "Installing Debian's pgbouncer for the connection-pooling test"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive $(APT_GET) update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq pgbouncer >/dev/null; \
	}

# Debian's HAProxy, the local proxy in front of the rehearsal's two web nodes
# (bench/rehearsal.py, tests/test_rehearsal.py): installed as pgbouncer is.
HAPROXY ?= haproxy

haproxy:
	@command -v $(HAPROXY) >/dev/null 2>&1 || [ -x /usr/sbin/$(HAPROXY) ] || { \
		echo "Installing Debian's haproxy for the multi-node rehearsal"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive $(APT_GET) update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq haproxy >/dev/null; \
	}

run: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bin/embedded.py -- \
		sh -c 'python manage.py migrate --noinput && python manage.py seed_demo && python manage.py seed_demo_reminders && exec honcho -f Procfile.dev start'

# The suite runs in TEST_WORKERS parallel processes (pytest-xdist; docs/testing.md):
# `make test TEST_WORKERS=0` (or ARGS="-n 0 ...") runs it in this one process.
TEST_WORKERS ?= 3

test: install chromium pgbouncer haproxy
	$(PY) bin/embedded.py -- $(PY) -m pytest -n $(TEST_WORKERS) $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

typecheck: install
	DATABASE_URL=$${DATABASE_URL:-postgres://typecheck@localhost/typecheck} $(VENV)/bin/mypy .

check: lint typecheck test

# Benchmarks (BENCHMARKS.md): BENCH_SCALE=small for a quick run. Uses DATABASE_URL /
# REDIS_URL servers when set (a separate rehab_bench database, Redis db 13), else embedded.
bench: install
	$(PY) bin/embedded.py -- $(PY) -m bench.run $(ARGS)

# The multi-node rehearsal (BENCHMARKS.md § Multi-node rehearsal): two web nodes behind
# HAProxy, PgBouncer, a streaming replica, three Celery workers and beat, a load with one
# web node and one worker SIGKILLed, then the no-loss check. Full scale (100 clinics,
# 50,000 patients, a year) by default; REHEARSAL_SCALE=tiny, REHEARSAL_PATIENTS=... to size.
rehearsal: install pgbouncer haproxy
	$(PY) bin/embedded.py -- $(PY) -m bench.rehearsal $(ARGS)

clean:
	rm -rf .data .mypy_cache .ruff_cache .import_linter_cache test-artifacts
