#!/usr/bin/env bash
# Make a Docker engine available for the docker backend, on a Debian machine. Idempotent.
#   - installs the Debian packages docker.io, docker-compose (Compose v1; v2 `docker compose` is used
#     instead when present) and debootstrap (scripts/build-images.sh builds the base images with it)
#   - starts dockerd in the background when `docker info` fails (no systemd needed), logging to
#     $DRILL_DOCKERD_LOG (default .tools/dockerd.log), and waits until it answers
# Environment: SKIP_APT=1 skip apt; DOCKERD_WAIT=60 seconds to wait for the engine.
# Exit 0: an engine answers `docker info`. Exit 1: it could not be made to (the reason is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOG="${DRILL_DOCKERD_LOG:-$ROOT/.tools/dockerd.log}"
WAIT="${DOCKERD_WAIT:-60}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'docker-setup: %s\n' "$*" >&2; exit 1; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# --- Debian packages -------------------------------------------------------------------------
need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v docker >/dev/null || need_apt+=(docker.io)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then need_apt+=(docker-compose); fi
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need_apt+=(debootstrap)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "${SKIP_APT:-0}" = 1 ]; then
    die "missing ${need_apt[*]} and SKIP_APT=1: install them (Debian package names: ${need_apt[*]})"
  fi
  command -v apt-get >/dev/null || die "missing ${need_apt[*]} and no apt-get: install Docker, Compose and debootstrap with your package manager"
  say "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- the engine --------------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  say "Docker engine is running: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
  exit 0
fi
[ "$(id -u)" = 0 ] || [ -n "$SUDO" ] || die "dockerd is not running and starting it needs root"
if [ -S /var/run/docker.sock ] && pgrep -x dockerd >/dev/null; then
  die "dockerd is running but \`docker info\` fails: $(docker info 2>&1 | tail -1) (permissions? add yourself to the 'docker' group)"
fi
mkdir -p "$(dirname "$LOG")"
say "starting dockerd in the background (log: $LOG)"
# containerd is started by dockerd itself when no system containerd is running.
# A daemon must not inherit this shell's other file descriptors: a lock the caller holds (e.g.
# `flock LOCK scripts/docker-setup.sh`) would otherwise stay held by dockerd for as long as it runs.
(
  for fd in /proc/$BASHPID/fd/*; do
    n=${fd##*/}
    [ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null
  done
  exec $SUDO nohup dockerd >>"$LOG" 2>&1 </dev/null
) &
pid=$!
for _ in $(seq 1 "$WAIT"); do
  if docker info >/dev/null 2>&1; then
    say "Docker engine ready (dockerd pid $pid, storage driver $(docker info --format '{{.Driver}}'))"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "---- last lines of $LOG" >&2; tail -20 "$LOG" >&2
    die "dockerd exited at start (see above): this machine cannot run Docker containers as configured"
  fi
  sleep 1
done
echo "---- last lines of $LOG" >&2; tail -20 "$LOG" >&2
die "dockerd (pid $pid) did not answer \`docker info\` within ${WAIT}s"
