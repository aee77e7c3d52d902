# One entry point for people and CI. `make demo` and `make test` do all the set-up on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
DEMO_ENV := env -u DATABASE_URL -u REDIS_URL DJANGO_SETTINGS_MODULE=config.settings.local

.PHONY: demo install test test-resilience lint format bench migrations-check clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0
	$(DEMO_ENV) $(PY) manage.py load_demo
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:8000

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The fault-injection suite (tests/resilience): real gunicorn, Celery and a private Redis on
# 6390, against PostgreSQL (DATABASE_URL). Plain `make test` deselects it (pytest.ini addopts).
RESILIENCE_EVENTS ?= 5000
test-resilience: $(STAMP)
	RESILIENCE_EVENTS=$(RESILIENCE_EVENTS) $(PY) -m pytest tests/resilience -m resilience $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) manage.py makemigrations --check --dry-run

bench: $(STAMP)
	$(PY) -m bench.run_all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles db.sqlite3 private_media
