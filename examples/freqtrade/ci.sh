#!/usr/bin/env bash
# CI entry point of the Freqtrade drill project: set up (idempotent: seconds when installed), then
# run every drill. Exit code = drill's (0 all passed, 1 a drill failed, 2 bad input, ...).
#   examples/freqtrade/ci.sh [extra `drill run` arguments]
# Uses the drill of the repository's venv (.venv/bin/drill), else `drill` on PATH. Starts real
# services: call it under the shared lock on a shared machine (flock /tmp/drill-heavy.lock ...).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
bash "$HERE/setup.sh" || exit $?
DRILL="$ROOT/.venv/bin/drill"
[ -x "$DRILL" ] || DRILL="$(command -v drill || true)"
if [ -z "$DRILL" ]; then
    echo "ci.sh: no drill found (.venv/bin/drill or on PATH); install the harness first (README set-up)" >&2
    exit 2
fi
cd "$HERE" && exec "$DRILL" run "$@"
