# The two entry points a newcomer needs (see README.md). Each installs what it needs first.
VENV := .venv/bin
EXAMPLES := $(wildcard examples/*/stack.yaml)

.PHONY: deps demo test lint typecheck unit check

deps:
	./scripts/install-deps.sh

demo: deps
	./scripts/demo.sh

# lint-imports checks the layers written down in .importlinter (no cache: nothing to clean).
lint: deps
	$(VENV)/ruff check declarun tests benchmarks
	$(VENV)/ruff format --check declarun tests benchmarks
	$(VENV)/lint-imports --no-cache

typecheck: deps
	$(VENV)/mypy

# A fresh base directory per run: tests mount network namespaces and overlays under their tmp
# dirs, and pytest's clean-up of an older run's directory must never trip over one.
# --durations: every run names its slowest tests (the suite's time is a target of its own).
# Two pytest-xdist workers, a test file at a time each: most of the suite waits on containers,
# daemons and registries rather than computing, and each worker is a session with engines and
# subnets of its own (tests/support/workers.py). Two, because this machine has two cores.
unit: deps
	$(VENV)/pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=30 \
		--basetemp="$$(mktemp -d /tmp/declarun-tests.XXXXXX)"

test: lint typecheck unit

# The inner loop (not one of the README's two set-up commands): lint, import contracts, types
# and the tests that start no real parts (tests/support/pure_only.py picks them), in about a
# minute. It assumes `make deps` has run; `make test` remains the whole suite.
check:
	$(VENV)/ruff check declarun tests benchmarks
	$(VENV)/ruff format --check declarun tests benchmarks
	$(VENV)/lint-imports --no-cache
	$(VENV)/mypy
	$(VENV)/python -m pytest -q -p no:cacheprovider -p tests.support.pure_only -n auto -x \
		--basetemp="$$(mktemp -d /tmp/declarun-check.XXXXXX)"
