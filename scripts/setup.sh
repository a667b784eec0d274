#!/usr/bin/env bash
# One-time set-up of everything the harness and the mock stack need, on a Debian machine.
# Idempotent: re-running only installs what is missing.
#   - Debian packages: prometheus, prometheus-alertmanager (promtool, amtool), chromium (browser tests)
#   - Toxiproxy server at a pinned version into .tools/bin (go install), unless one is on PATH
#   - the Python environment in .venv with the project installed (editable) and its dev extras
# Environment: SKIP_APT=1 to skip apt (you installed the packages yourself); PYTHON=python3.11 to choose.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOXIPROXY_VERSION="${TOXIPROXY_VERSION:-v2.12.0}"
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------------------------
need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v promtool >/dev/null || need_apt+=(prometheus)
{ command -v alertmanager >/dev/null || command -v prometheus-alertmanager >/dev/null; } || need_apt+=(prometheus-alertmanager)
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ] && [ "${SKIP_APT:-0}" != 1 ]; then
  command -v apt-get >/dev/null || die "missing ${need_apt[*]} and no apt-get: install them with your package manager (Debian names: ${need_apt[*]})"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  say "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- Toxiproxy --------------------------------------------------------------------------------
mkdir -p .tools/bin
if command -v toxiproxy-server >/dev/null; then
  say "toxiproxy-server found on PATH: $(command -v toxiproxy-server)"
elif [ -x .tools/bin/toxiproxy-server ]; then
  say "toxiproxy-server already in .tools/bin"
else
  command -v go >/dev/null || die "toxiproxy-server is not on PATH and Go is not installed to build it: install Go (Debian: golang) or put toxiproxy-server ${TOXIPROXY_VERSION} on PATH"
  say "go install github.com/Shopify/toxiproxy/v2/cmd/server@${TOXIPROXY_VERSION}"
  tmp=$(mktemp -d)
  GOBIN="$tmp" go install "github.com/Shopify/toxiproxy/v2/cmd/server@${TOXIPROXY_VERSION}"
  mv "$tmp/server" .tools/bin/toxiproxy-server
  rmdir "$tmp"
fi

# --- Python environment -----------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
say "pip install -e .[dev]"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
say "ready: activate with 'source .venv/bin/activate' (Toxiproxy in $ROOT/.tools/bin is found automatically)"
