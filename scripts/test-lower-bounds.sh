#!/usr/bin/env bash
# Prove the dependency ranges in pyproject.toml: install every runtime dependency at its LOWER bound
# (a constraints file pins them; dev tools come on top), then run the unit tests against them.
# Usage: scripts/test-lower-bounds.sh [pytest args]   (needs the package registry; ~1-2 min)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" - "$tmp/constraints.txt" <<'PY'
import re, sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
pins = []
for dep in deps:
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][^,;\s]*)", dep)
    if not m:
        sys.exit(f"test-lower-bounds: {dep!r} has no '>=' lower bound: give it one")
    pins.append(f"{m.group(1)}=={m.group(2)}")
open(sys.argv[1], "w").write("\n".join(pins) + "\n")
print("lower bounds:", " ".join(pins))
PY
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q -c "$tmp/constraints.txt" ".[dev]"
"$tmp/venv/bin/pip" freeze | grep -iE "^($(sed 's/==.*//' "$tmp/constraints.txt" | paste -sd'|'))==" || true
"$tmp/venv/bin/python" -m pytest tests/unit -q -p no:cacheprovider "$@"
