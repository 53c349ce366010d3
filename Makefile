# One command each: `make demo` (the local demo, offline), `make test` (everything CI runs).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: help venv check-local-stack test lint unit demo bench soak mutate clean

help:
	@echo "make demo   - set up and run the local end-to-end demo (offline, real emulators)"
	@echo "make test   - set up and run lint and every test (what CI runs)"
	@echo "make bench  - benchmarks: cold start, per-event cost, time to remediate, memory"
	@echo "make soak   - the long versions of the load, fault and fuzz scenarios"
	@echo "make mutate - mutation testing of the core (mutmut; a figure, not a gate; over an hour)"
	@echo "             one module: make mutate MUTATE_ARGS='--only shared.actions.run.* --max-children 1'"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

check-local-stack:
	@$(BIN)/python -m infra.local.check

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/shellcheck deploy.sh infra/*.sh .ci/run

test: venv check-local-stack lint
	$(BIN)/python -m pytest

demo: venv check-local-stack
	$(BIN)/python main.py demo

bench: venv check-local-stack
	$(BIN)/python -m bench.run

soak: venv check-local-stack
	RAMPART_SOAK=1 $(BIN)/python -m pytest tests/reliability -m soak -p no:cacheprovider

mutate: venv check-local-stack
	$(BIN)/python -m bench.mutate $(MUTATE_ARGS)

clean:
	rm -rf mutants $(VENV) .pytest_cache .ruff_cache .hypothesis .local
