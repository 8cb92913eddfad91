# The two entry points a newcomer needs (see README.md). Each installs what it needs first.
VENV := .venv/bin
EXAMPLES := $(wildcard examples/*/stack.yaml)

.PHONY: deps demo test lint typecheck unit

deps:
	./scripts/install-deps.sh

demo: deps
	./scripts/demo.sh

lint: deps
	$(VENV)/ruff check declarun tests benchmarks
	$(VENV)/ruff format --check declarun tests benchmarks

typecheck: deps
	$(VENV)/mypy

unit: deps
	$(VENV)/pytest -q

test: lint typecheck unit
