#!/usr/bin/env bash
# The example's ONE set-up command: a pinned Freqtrade in examples/freqtrade/.venv.
# Idempotent: when the pinned version is already installed, it only checks it and returns (seconds).
set -euo pipefail

FREQTRADE_VERSION="2026.9"   # ccxt comes with it (4.5.90 when this was pinned)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PYTHON="${PYTHON:-python3}"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "setup.sh: '$PYTHON' not found. Freqtrade $FREQTRADE_VERSION needs Python >= 3.11;" \
         "install it (apt-get install python3 python3-venv) or set PYTHON=/path/to/python3.11+" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "setup.sh: $("$PYTHON" --version 2>&1) is too old; Freqtrade $FREQTRADE_VERSION needs Python >= 3.11" \
         "(set PYTHON=/path/to/python3.11+)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "setup.sh: $PYTHON has no venv/ensurepip module; install python3-venv (apt-get install python3-venv)" >&2
    exit 1
fi

installed() {
    [ -x "$VENV/bin/freqtrade" ] && [ -x "$VENV/bin/freqtrade-client" ] \
        && [ "$("$VENV/bin/python" -c 'import freqtrade; print(freqtrade.__version__)' 2>/dev/null)" = "$FREQTRADE_VERSION" ]
}

# The drill harness looks for tools in the drill project's .tools/bin (besides PATH): the runbook's
# operator CLI, freqtrade-client, is put there for the drills (the venv itself stays off PATH).
link_tools() {
    mkdir -p "$HERE/.tools/bin"
    ln -sfn "$VENV/bin/freqtrade-client" "$HERE/.tools/bin/freqtrade-client"
}

if installed; then
    link_tools
    echo "setup.sh: freqtrade $FREQTRADE_VERSION already in $VENV"
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
echo "setup.sh: installing freqtrade==$FREQTRADE_VERSION and freqtrade-client into $VENV (about a minute)"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "freqtrade==$FREQTRADE_VERSION" "freqtrade-client==$FREQTRADE_VERSION"

if ! installed; then
    echo "setup.sh: freqtrade $FREQTRADE_VERSION did not install into $VENV; see the pip output above" >&2
    exit 1
fi
link_tools
echo "setup.sh: ready: $VENV/bin/freqtrade ($("$VENV/bin/freqtrade" --version 2>/dev/null | tail -1))"
