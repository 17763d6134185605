# One entry point for checks, used by .ci/run and by developers.
.PHONY: check lint types test bench

check: lint types test

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

types:
	.venv/bin/mypy

test:
	.venv/bin/pytest

bench:
	.venv/bin/python bench/triage.py
	.venv/bin/python bench/intake.py
	.venv/bin/python bench/alerting.py
	.venv/bin/python bench/load.py
