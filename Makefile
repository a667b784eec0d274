# The two commands of the README. Both run the (idempotent) set-up first.
.PHONY: setup drill test lint

setup:
	@bash scripts/setup.sh

drill: setup  ## run the drill suite against the mock stack on the embedded (process) backend
	@.venv/bin/drill run $(ARGS)

test: setup  ## run every test: unit, integration (real services), the drill features, lint contracts
	@bash scripts/test.sh $(ARGS)

lint: setup
	@.venv/bin/ruff check harness mockstack scenarios tests bench examples
	@.venv/bin/mypy
