# patientdesk: `make run` to try it, `make test` to check it. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run serve test lint typecheck test-sqlite test-postgres bench bench-postgres docs-roles clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed node_modules/.installed

# The demo: SQLite, demo data loaded once, served on 127.0.0.1.
DEMO_ENV := PATIENTDESK_DEMO=1 DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost PATIENTDESK_BASE_URL=http://127.0.0.1:$(PORT)
run: install
	scripts/ensure_pdf_libs.sh --warn
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0
	$(DEMO_ENV) $(PY) manage.py seed_demo --if-empty
	$(DEMO_ENV) $(PY) manage.py demo_logins --port $(PORT)
	@echo "Starting a background worker (reminders, interfaces) beside the web server..."
	trap 'kill 0' EXIT INT TERM; \
	$(DEMO_ENV) $(PY) manage.py db_worker --queue-name '*' --interval 2 & \
	$(DEMO_ENV) $(VENV)/bin/gunicorn config.wsgi:application --bind 127.0.0.1:$(PORT) --workers 2 --threads 4 --access-logfile - \
		--access-logformat '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	PATIENTDESK_TESTING=1 $(VENV)/bin/mypy .

test-sqlite: install
	$(PY) -m pytest -q -p no:randomly

test-postgres: install
	scripts/with_postgres.sh $(PY) -m pytest -q

test: install
	scripts/ensure_chromium.sh
	scripts/ensure_pdf_libs.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PATIENTDESK_TESTING=1 $(VENV)/bin/mypy .
	PATIENTDESK_TESTING=1 $(PY) manage.py makemigrations --check --dry-run
	PATIENTDESK_TESTING=1 $(PY) manage.py roles_matrix --check docs/roles.md
	@echo "== pytest on SQLite =="
	$(PY) -m pytest -q
	@echo "== pytest on PostgreSQL =="
	scripts/with_postgres.sh $(PY) -m pytest -q

bench: install
	PATIENTDESK_TESTING=1 $(PY) bench/run.py --database sqlite
	scripts/with_postgres.sh env PATIENTDESK_TESTING=1 $(PY) bench/run.py --database postgresql

docs-roles: install
	PATIENTDESK_TESTING=1 $(PY) manage.py roles_matrix --markdown > docs/roles.md

clean:
	rm -rf $(VENV) node_modules staticfiles db.sqlite3*
