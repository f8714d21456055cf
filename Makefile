# Everything a reseller or developer runs. Only Python 3.11+ is needed.
PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint run demo sandbox bench locales requirements clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11+ or run 'make PYTHON=python3.12 ...'"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "$(PYTHON) is older than 3.11: install Python 3.11+ or run 'make PYTHON=python3.12 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# PYTHONDONTWRITEBYTECODE emptied: each of the six workers and every bot process a test
# starts would otherwise compile (and assertion-rewrite) the code anew, ~4 s of CPU each.
# worksteal: a worker that runs out of tests takes some of another's, so the last
# minute is not one worker finishing a file of slow ones (README.md "The suite's time").
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n 6 --dist worksteal

run: $(STAMP)
	$(BIN)/python -m bot

# The whole shop as a chat in this terminal, offline: `make demo ARGS="--lang ru --fresh"`.
demo: $(STAMP)
	$(BIN)/python -m bot demo $(ARGS)

# The sandbox panel alone, on loopback (to point a bot or `python -m bot panel` at it).
sandbox: $(STAMP)
	$(BIN)/python -m bot sandbox $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/catalog.py
	$(BIN)/python bench/status.py
	$(BIN)/python bench/tracker.py
	$(BIN)/python bench/notify.py

# Refresh the message template and every translation from the source code.
# (Translations are compiled automatically when the bot starts.)
locales: $(STAMP)
	$(BIN)/pybabel extract --no-location -k _ -k N_ -o locales/messages.pot bot handlers
	$(BIN)/pybabel update --ignore-obsolete -i locales/messages.pot -d locales -D messages

# requirements.txt, for Procfile hosts with a Python buildpack, from pyproject.toml's dependencies.
requirements:
	$(PYTHON) deploy/requirements.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
