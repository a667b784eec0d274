#!/usr/bin/env bash
# The project's test command (README: `make test`). Fails on any failure, and also when pytest
# collected nothing (exit 5), so "no tests ran" can never pass as green.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p test-artifacts

echo "== import contract: harness and mockstack never import each other"
lint-imports --config pyproject.toml || exit 1

echo "== ruff and mypy --strict (harness, mockstack)"
ruff check harness mockstack scenarios tests bench || exit 1
mypy || exit 1

echo "== pytest: unit, integration, drill features"
pytest tests scenarios -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests (exit 5): treating as failure" >&2
  exit 1
fi
exit "$rc"
