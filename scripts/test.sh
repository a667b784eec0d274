#!/usr/bin/env bash
# The project's test command (README: `make test`). Fails on any failure, and also when a pytest run
# collected nothing (exit 5), so "no tests ran" can never pass as green.
#
# Every part runs in parallel with pytest-xdist except the one that must not:
# - unit tests: one worker per core;
# - loopback integration tests (each starts its own servers on ephemeral ports in a run directory of its
#   own; they mostly wait on deadlines): two workers per core, tests of one xdist_group on one worker;
# - Docker tests: two workers (each run is its own compose project with its own 127.0.0.1 ports, and
#   cleanup of a dead run never touches a live one, which running them side by side also exercises);
# - serial: the tests that time the machine itself and the browser tests (one chromium at a time);
# - drill features (each scenario starts its own stack in its own run directory).
# The Kubernetes tests are not part of it: scripts/ci-k8s.sh runs them on the cluster it sets up (CI runs it
# after this script), so a cluster left running on a workstation never changes what `make test` runs.
#   TEST_WORKERS=N|auto         workers of the unit tests (default auto: one per core)
#   DRILL_WORKERS=N             workers of the drill features (default: two per core, where `drill run -n auto`
#                               takes three: a drill mostly waits on deadlines and alert rules, and a
#                               loaded CI machine keeps some slack)
#   INTEGRATION_WORKERS=N|no    workers of the loopback integration tests (default: two per core; no = serial)
#   DOCKER_WORKERS=N|no         workers of the Docker tests (default 2; no = serial)
#   TEST_WORKERS=0              everything serially, in one process per part
#   extra arguments go to every pytest run (e.g. -x, -k expr); each part lists its 8 slowest tests
# Under load (as on a busy CI machine): scripts/cpu-hogs.sh bash scripts/test.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p test-artifacts
workers="${TEST_WORKERS:-auto}"
drill_workers="${DRILL_WORKERS:-$((2 * $(nproc)))}"
integration_workers="${INTEGRATION_WORKERS:-$((2 * $(nproc)))}"
docker_workers="${DOCKER_WORKERS:-2}"

echo "== import contract: harness and mockstack never import each other"
lint-imports --config pyproject.toml || exit 1

echo "== ruff and mypy --strict (harness, mockstack)"
ruff check harness mockstack scenarios tests bench examples || exit 1
mypy || exit 1

status=0
part() {  # part NAME WORKERS(N|auto|no) PYTEST-ARGS...: one pytest run; exit 5 (nothing collected) fails
  local name="$1" n="$2"
  shift 2
  local dist=()
  if [ "$n" != no ] && [ "$workers" != 0 ]; then dist=(-n "$n"); fi
  echo "== pytest: $name ${dist[*]}"
  local started=$SECONDS
  pytest "$@" -p no:cacheprovider --durations=8 "${dist[@]}" "${extra[@]}"
  local rc=$?
  echo "== $name: exit $rc in $((SECONDS - started)) s"
  if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests for '$name' (exit 5): treating as failure" >&2
    rc=1
  fi
  [ "$rc" -ne 0 ] && status=1
  return 0
}
extra=("$@")
part "unit" "$workers" tests/unit
part "integration (own servers on ephemeral ports)" "$integration_workers" tests/integration \
    -m "not docker and not browser and not serial and not kubernetes" --dist loadgroup
part "integration (Docker engine: a compose project per test)" "$docker_workers" tests/integration \
    -m "docker and not browser and not serial"
part "integration (timing of the machine itself, one browser: serial)" no tests/integration \
    -m "browser or serial"
part "drill features (a stack per scenario)" "$drill_workers" scenarios
exit "$status"
