# inboxsync: `make demo` runs the real DAG on local services; `make test` runs the tests.
# Both set up everything they need (virtualenv, Dovecot, PostgreSQL) and are safe to rerun.

VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-reliability bench lint format airflow-ui services-up services-down clean

# setup.py builds the C fast paths (parse, FETCH reader) in place: a changed source is rebuilt here.
$(STAMP): pyproject.toml setup.py scripts/bootstrap.sh include/inboxsync/_cparse.c include/inboxsync/_cfetch.c
	scripts/bootstrap.sh $(VENV)
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python -m inboxsync.demo run

# pytest exits 5 when it collected no tests: a run that tests nothing is a failure here.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

# The fault-injection suite alone (also part of `make test`): INBOXSYNC_FAULTS=N random offsets
# and moments per fault (default 20).
test-reliability: install
	$(BIN)/python -m pytest tests/reliability -s $(PYTEST_ARGS)

# BENCH_N messages (default 100000), BENCH_RUNS repeats, BENCH_LARGE clones of a large
# warehouse (default none); figures in bench-results/latest.json.
bench: install
	$(BIN)/python -m inboxsync.bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

airflow-ui: install
	$(BIN)/python -m inboxsync.demo ui

services-up: install
	$(BIN)/python -m inboxsync.localenv up

services-down: install
	$(BIN)/python -m inboxsync.localenv down

clean: services-down
	rm -rf .local
