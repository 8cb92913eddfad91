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
	$(VENV)/lint-imports

typecheck: deps
	$(VENV)/mypy

# A fresh base directory per run: tests mount network namespaces and overlays under their tmp
# dirs, and pytest's clean-up of an older run's directory must never trip over one.
unit: deps
	$(VENV)/pytest -q -p no:cacheprovider --basetemp="$$(mktemp -d /tmp/declarun-tests.XXXXXX)"

test: lint typecheck unit
