# Kefu: `make demo` runs everything, `make test` checks everything. `make help` lists targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON310 ?= $(shell for p in python3.10 $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10) /usr/bin/python3.10; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo "$$p"; break; }; done)
PYTHON311 ?= $(shell for p in python3.11 $(wildcard $(HOME)/.pyenv/versions/3.11*/bin/python3.11) /usr/bin/python3.11; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null && { echo "$$p"; break; }; done)

RASA_VENV := .venv-rasa
APP_VENV := .venv-app
RASA := $(RASA_VENV)/bin/rasa
APP_PY := $(APP_VENV)/bin/python
KEFU := $(APP_VENV)/bin/kefu
WEBCHAT := var/webchat/webchat.js
export PYTHONPATH := $(CURDIR)

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

# ---------------------------------------------------------------- install
.PHONY: install install-rasa install-app install-web install-browser install-postgres install-scaleout
install: install-rasa install-app install-web install-browser install-postgres install-scaleout ## Build both runtimes, web assets, the test browser, PostgreSQL, Redis, RabbitMQ and HAProxy (idempotent)

install-rasa: $(RASA_VENV)/.installed ## Rasa runtime (Python 3.10): rasa, channels, NLU components
$(RASA_VENV)/.installed: requirements/rasa.txt
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found: set PYTHON310=/path/to/python3.10"; exit 1; }
	@test -x $(RASA_VENV)/bin/python || $(PYTHON310) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install --quiet --upgrade pip wheel "setuptools<71"
	$(RASA_VENV)/bin/pip install --quiet -r requirements/rasa.txt
	touch $@

install-app: $(APP_VENV)/.installed ## App runtime (Python 3.11): actions, web service, kefu CLI
$(APP_VENV)/.installed: requirements/app.txt pyproject.toml
	@test -n "$(PYTHON311)" || { echo "Python 3.11 not found: set PYTHON311=/path/to/python3.11"; exit 1; }
	@test -x $(APP_PY) || $(PYTHON311) -m venv $(APP_VENV)
	$(APP_VENV)/bin/pip install --quiet --upgrade pip wheel
	$(APP_VENV)/bin/pip install --quiet -r requirements/app.txt
	$(APP_VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

install-web: $(WEBCHAT) ## rasa-webchat from npm, Google-fonts import stripped
$(WEBCHAT): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	mkdir -p $(dir $@)
	sed -E 's#@import url\(https?://fonts\.googleapis\.com[^)]*\);?##g' node_modules/rasa-webchat/lib/index.js > $@.tmp
	! grep -q fonts.googleapis.com $@.tmp
	mv $@.tmp $@

install-browser: ## Debian chromium (and CJK fonts for screenshots) for the real-browser tests
	@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }
	@chromium --version

install-postgres: ## PostgreSQL server binaries for the database tests (a throwaway cluster per run)
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

SCALEOUT_PACKAGES := redis-server rabbitmq-server haproxy
install-scaleout: install-postgres ## Redis, RabbitMQ and HAProxy from apt (when missing) for the scale-out stack and its tests
	@export PATH="$$PATH:/usr/local/sbin:/usr/sbin:/sbin"; missing=""; \
	for package in $(SCALEOUT_PACKAGES); do command -v $$package >/dev/null || missing="$$missing $$package"; done; \
	test -z "$$missing" || { echo "Installing$$missing from apt"; apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }

# ---------------------------------------------------------------- run
.PHONY: demo train seed kb kb-report
demo: install-rasa install-app install-web $(if $(filter-out 0 1,$(KEFU_RASA_INSTANCES)),install-scaleout) ## Set up if needed, then run the bot, the web chat and the desk (Ctrl-C stops); KEFU_RASA_INSTANCES=2: the scale-out stack
	$(KEFU) demo

train: install-rasa install-app ## Train the Rasa model if config, domain or data changed
	$(KEFU) train

seed: install-app ## Migrate the app database and load the demo orders
	$(KEFU) db seed

kb: install-app ## Validate data/knowledge and publish a new index version (hot-reloaded by the bot)
	$(KEFU) kb build

kb-report: install-app ## Self-service rate and the latest unanswered questions
	$(KEFU) kb report

# ---------------------------------------------------------------- knowledge editors
.PHONY: evaluate gate deploy rollback export-sheet import-sheet review
evaluate: install-rasa install-app ## Held-out NLU eval + KB eval on data/kb_test_queries.jsonl (the gate's report): report.html under var/eval/editor/
	$(KEFU) eval model

gate: install-rasa install-app ## Refuse the model if macro-F1 dropped > 1 point vs the deployed one or an intent fell below its floor
	$(KEFU) gate

deploy: train ## Gate, then swap the model and knowledge index into the running bot (make demo)
	$(KEFU) deploy

rollback: install-app ## Put the previous model and knowledge index back into the running bot
	$(KEFU) rollback

export-sheet: install-app ## NLU examples and knowledge entries as a spreadsheet: make export-sheet FILE=var/kefu.xlsx
	$(KEFU) sheet export "$(or $(FILE),var/kefu-data.xlsx)"

import-sheet: install-app ## Write an edited spreadsheet back into data/: make import-sheet FILE=var/kefu.xlsx
	@test -n "$(FILE)" || { echo "Usage: make import-sheet FILE=path/to/edited.xlsx"; exit 2; }
	$(KEFU) sheet import "$(FILE)"

review: install-app ## The review queue: questions the bot missed and agents' answers, grouped
	$(KEFU) review list

# ---------------------------------------------------------------- channels
.PHONY: channels telegram-webhook telegram-poll
channels: install-app ## Which messaging channels are enabled, and messages they could not deliver
	$(KEFU) channels status
	$(KEFU) channels undelivered --limit 10

telegram-webhook: install-app ## Register the Telegram webhook: make telegram-webhook URL=https://your.host
	@test -n "$(URL)" || { echo "Usage: make telegram-webhook URL=https://your.public.host"; exit 2; }
	$(KEFU) telegram webhook set "$(URL)"

telegram-poll: install-app ## Local development without a public URL: poll Telegram, forward to Rasa
	$(KEFU) telegram poll

# ---------------------------------------------------------------- quality
.PHONY: test lint validate test-unit test-conversations test-e2e test-security eval
test: install lint validate test-unit train test-conversations test-e2e test-security ## Everything CI runs

lint: install-app install-rasa ## ruff, mypy and the layering contracts (import-linter, pyproject.toml)
	$(APP_VENV)/bin/ruff check .
	$(APP_VENV)/bin/ruff format --check .
	$(APP_VENV)/bin/mypy bot actions knowledge_index nlu_bench kefu_shared
	$(RASA_VENV)/bin/mypy --config-file mypy-rasa.ini connectors rasa_addons kefu_shared
	$(APP_VENV)/bin/lint-imports

validate: install-rasa install-app ## The service plan files, the QA rules, rasa data validate and Kefu's data checks (file:line + fix)
	$(KEFU) service check
	$(KEFU) qa check
	$(KEFU) validate

test-unit: install ## Unit tests of both runtimes
	$(RASA_VENV)/bin/python -m pytest -q tests/rasa_runtime
	$(APP_PY) -m pytest -q tests/app tests/knowledge_index

test-conversations: train ## The test conversations in tests/conversations via rasa test
	$(RASA) test core --model $$($(APP_PY) -c 'from bot.core.settings import get_settings; from bot.core.training import model_path; print(model_path(get_settings()))') \
		--stories tests/conversations --out var/eval/conversations --fail-on-prediction-errors
	@echo "All test conversations passed."

test-e2e: install train ## Live servers over REST, then a real browser (chromium)
	$(APP_PY) -m pytest -q tests/e2e

test-security: install train ## Each attack of the threat model against the live servers: expects the refusal
	$(APP_PY) -m pytest -q tests/security

eval: install ## NLU cross-validation on the demo data (intent report, macro-F1 >= 0.90)
	$(KEFU) eval nlu

# ---------------------------------------------------------------- benchmarks
.PHONY: bench-chat bench-handoff bench-kb bench-channels bench-nlu bench-conversations bench-readers bench-followups bench-supervision
bench-chat: install train ## Kefu next to a bare `rasa init` bot (latency, throughput, long conversations), 2 vs 1 instances, 5-minute soak (var/bench/chat.json)
	$(KEFU) bench chat --instances 2 --soak

bench-handoff: install train ## Handoff latency, customer <-> agent desk, 10 handoffs (var/bench/handoff.json)
	$(KEFU) bench handoff

bench-channels: install train ## WeChat 5-second rule and dedup (20 users, 60 s), Telegram throughput (var/bench/channels.json)
	$(KEFU) bench channels

bench-kb: install-app ## Retrieval on the demo KB, BANKING77, CLINC150, 10k entries (var/bench/kb.json)
	$(KEFU) bench kb

bench-nlu: install ## NLU on CLINC150, BANKING77, SMP2019, CAIS, demo vs anchors and floor (var/bench/nlu.json)
	$(KEFU) bench nlu

bench-conversations: install train ## Realistic customer conversations replayed live: dev, then the held-out test split (var/bench/conversations-*.json)
	$(KEFU) eval conversations --split dev
	$(KEFU) eval conversations --split test

bench-readers: install-app ## Cross-validated precision and recall of the message readers (var/bench/readers.json)
	$(KEFU) eval readers

bench-followups: install-app ## Scheduler due scan over 100,000 open tickets, delivery, SLA simulation (var/bench/followups.json)
	$(KEFU) bench followups

bench-supervision: install-app install-postgres ## QA scoring + daily report of 10,000 conversations; dashboard queries over 100,000 in SQLite and PostgreSQL (var/bench/supervision.json)
	$(KEFU) bench supervision

.PHONY: clean
clean: ## Remove models, databases and logs under var/ (keeps the venvs)
	rm -rf var/models var/data var/rasa var/logs var/eval var/bench
