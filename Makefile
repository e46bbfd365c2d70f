# The two commands of the README, plus the pieces they are made of.
UV ?= uv
RUN = $(UV) run

.PHONY: install up down demo test lint format bench bench-reasoner chaos fuzz schemas

install:
	bash infra/install.sh

up: install
	$(RUN) autoglm up

down:
	$(RUN) autoglm down

demo: up
	$(RUN) autoglm demo

test: up
	$(RUN) pytest -q --durations=15

# ruff (lint, format, import order) and import-linter (the layers of docs/design.md).
lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

format: install
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

schemas:
	$(RUN) python -m schemas.export

bench: up
	$(RUN) autoglm bench

bench-reasoner: install
	$(RUN) autoglm bench-reasoner

chaos: up
	$(RUN) autoglm chaos

fuzz: up
	$(RUN) autoglm fuzz --n 100000
