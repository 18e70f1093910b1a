# Developer shortcuts. `make check` = lint + types + import contracts + tests.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: check lint types contracts test bench

check: lint types contracts test

lint:
	$(VENV)/bin/ruff check cockpit tests bench
	$(VENV)/bin/ruff format --check cockpit tests bench

types:
	$(VENV)/bin/mypy

contracts:
	$(VENV)/bin/lint-imports

test:
	scripts/test

bench:
	$(PY) -m bench
