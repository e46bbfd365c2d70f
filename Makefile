# The two commands of the README, plus the pieces they are made of.
UV ?= uv
RUN = $(UV) run

.PHONY: install up down demo test bench bench-reasoner schemas

install:
	bash infra/install.sh

up: install
	$(RUN) autoglm up

down:
	$(RUN) autoglm down

demo: up
	$(RUN) autoglm demo

test: up
	$(RUN) pytest -q

schemas:
	$(RUN) python -m schemas.export
