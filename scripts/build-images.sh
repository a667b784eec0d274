#!/usr/bin/env bash
# Build, offline, the local equivalents of every image docker-compose.yml uses. Idempotent and cached.
#
#   drill-base:bookworm         Debian bookworm minbase (debootstrap + docker import)
#   drill-python:bookworm       the same with python3.11 + venv (debootstrap + docker import)
#   drill-mockstack:local       docker/mockstack.Dockerfile, BASE_IMAGE=drill-python:bookworm, wheels
#                               built on the host (docker/wheels/) and installed with --no-index
#   drill-toxiproxy:local       docker/toxiproxy.Dockerfile around .tools/bin/toxiproxy-server
#   drill-prometheus:local      docker/prometheus.Dockerfile, Debian package prometheus
#   drill-alertmanager:local    docker/alertmanager.Dockerfile, Debian package prometheus-alertmanager
#
# The compose file keeps its public defaults (${BASE_IMAGE:-python:3.11-slim}, ${TOXIPROXY_IMAGE:-...});
# the docker backend exports BASE_IMAGE/TOXIPROXY_IMAGE/PROMETHEUS_IMAGE/ALERTMANAGER_IMAGE pointing at
# these local tags when they exist (and you did not set them). For docker compose by hand:
#   docker compose --env-file .tools/images/images.env up
#
# Nothing is pulled from a registry and nothing is pip-installed from an index inside a build.
# Needs: a running engine (scripts/docker-setup.sh), debootstrap, .venv and .tools/bin/toxiproxy-server
# (scripts/setup.sh). Cache: .tools/images (debootstrap's .debs and rootfs tarballs); an image whose
# inputs did not change is not rebuilt. FORCE=1 rebuilds everything; DEBIAN_MIRROR picks the mirror.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE="$ROOT/.tools/images"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export DOCKER_BUILDKIT=0   # the classic builder: no buildx plugin needed, works with Debian's docker.io

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'build-images: %s\n' "$*" >&2; exit 1; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

docker info >/dev/null 2>&1 || die "no Docker engine answers \`docker info\`: run scripts/docker-setup.sh"
DEBOOTSTRAP=$(command -v debootstrap || echo /usr/sbin/debootstrap)
[ -x "$DEBOOTSTRAP" ] || die "debootstrap is missing: run scripts/docker-setup.sh (or apt-get install debootstrap)"
[ -x .venv/bin/pip ] || die ".venv is missing: run scripts/setup.sh"
TOXIPROXY_BIN="$(command -v toxiproxy-server || echo "$ROOT/.tools/bin/toxiproxy-server")"
[ -x "$TOXIPROXY_BIN" ] || die "toxiproxy-server not found: run scripts/setup.sh"
mkdir -p "$CACHE/debs"

# image_key TAG -> the drill.key label of a local image ('' when absent)
image_key() { docker image inspect --format '{{ index .Config.Labels "drill.key" }}' "$1" 2>/dev/null || true; }
hash_of() { sha256sum | cut -c1-16; }

# rootfs_image TAG INCLUDES: debootstrap --variant=minbase (+ packages) and docker import, unless cached.
rootfs_image() {
  local tag=$1 include=$2
  local key; key=$(printf '%s %s %s %s' "$SUITE" "$MIRROR" "$include" v1 | hash_of)
  if [ "${FORCE:-0}" != 1 ] && [ "$(image_key "$tag")" = "$key" ]; then
    say "$tag: up to date (key $key)"; return
  fi
  local tar="$CACHE/rootfs-${tag//[:\/]/-}-$key.tar"
  if [ "${FORCE:-0}" = 1 ] || [ ! -s "$tar" ]; then
    local dir; dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    say "$tag: debootstrap --variant=minbase ${include:+--include=$include }$SUITE ($MIRROR)"
    if ! $SUDO "$DEBOOTSTRAP" --variant=minbase ${include:+--include="$include"} --cache-dir="$CACHE/debs" \
        "$SUITE" "$dir" "$MIRROR" >"$CACHE/debootstrap-${tag//[:\/]/-}.log" 2>&1; then
      tail -20 "$CACHE/debootstrap-${tag//[:\/]/-}.log" >&2
      $SUDO rm -rf "$dir"
      die "debootstrap failed for $tag (full log: $CACHE/debootstrap-${tag//[:\/]/-}.log)"
    fi
    $SUDO rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/var/log/* "$dir"/usr/share/doc/* \
      "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
    $SUDO tar -C "$dir" --numeric-owner -cf "$tar.tmp" .
    $SUDO rm -rf "$dir"
    mv "$tar.tmp" "$tar"
  fi
  say "$tag: docker import"
  docker import --change "LABEL drill.key=$key" --change 'CMD ["/bin/bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$tar" "$tag" >/dev/null
}

# build TAG DOCKERFILE CONTEXT KEY [build args...]: docker build unless the image has this key already.
build() {
  local tag=$1 dockerfile=$2 context=$3 key=$4; shift 4
  if [ "${FORCE:-0}" != 1 ] && [ "$(image_key "$tag")" = "$key" ]; then
    say "$tag: up to date (key $key)"; return
  fi
  say "$tag: docker build -f $dockerfile"
  if ! docker build -q --label "drill.key=$key" -f "$dockerfile" -t "$tag" "$@" "$context" >"$CACHE/build.log" 2>&1; then
    tail -30 "$CACHE/build.log" >&2
    die "docker build of $tag failed (above)"
  fi
}

started=$(date +%s)

# --- base images (debootstrap) -------------------------------------------------------------------
rootfs_image drill-base:bookworm ""
rootfs_image drill-python:bookworm "python3,python3-venv"
BASE_KEY=$(image_key drill-base:bookworm)
PY_KEY=$(image_key drill-python:bookworm)

# --- mockstack: wheels on the host, --no-index in the image ----------------------------------------
say "pip wheel -r docker/mockstack-requirements.txt (on the host, into docker/wheels)"
.venv/bin/pip wheel -q --disable-pip-version-check -r docker/mockstack-requirements.txt -w docker/wheels
key=$( { echo "$PY_KEY"; cat docker/mockstack.Dockerfile docker/mockstack-requirements.txt; ls docker/wheels;
        find mockstack -name '*.py' -print0 | sort -z | xargs -0 cat; } | hash_of)
build drill-mockstack:local docker/mockstack.Dockerfile . "$key" --build-arg BASE_IMAGE=drill-python:bookworm

# --- toxiproxy around the binary -----------------------------------------------------------------
ctx="$CACHE/ctx-toxiproxy"; rm -rf "$ctx"; mkdir -p "$ctx"; cp "$TOXIPROXY_BIN" "$ctx/toxiproxy-server"
key=$( { echo "$BASE_KEY"; cat docker/toxiproxy.Dockerfile "$ctx/toxiproxy-server"; } | hash_of)
build drill-toxiproxy:local docker/toxiproxy.Dockerfile "$ctx" "$key" --build-arg BASE_IMAGE=drill-base:bookworm

# --- Prometheus and Alertmanager from the Debian packages --------------------------------------------
for pkg in prometheus prometheus-alertmanager; do
  name=${pkg#prometheus-}
  deb=$(ls "$CACHE"/debs-apps/"${pkg}"_*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    mkdir -p "$CACHE/debs-apps"
    say "apt-get download $pkg"
    (cd "$CACHE/debs-apps" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1) || {
      $SUDO apt-get update -qq && (cd "$CACHE/debs-apps" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null); } \
      || die "apt-get download $pkg failed: is a Debian mirror reachable?"
    deb=$(ls "$CACHE"/debs-apps/"${pkg}"_*.deb | head -1)
  fi
  ctx="$CACHE/ctx-$name"; rm -rf "$ctx"; mkdir -p "$ctx"; dpkg-deb -x "$deb" "$ctx"
  key=$( { echo "$BASE_KEY"; cat "docker/$name.Dockerfile"; basename "$deb"; } | hash_of)
  build "drill-$name:local" "docker/$name.Dockerfile" "$ctx" "$key" --build-arg BASE_IMAGE=drill-base:bookworm
done

cat >"$CACHE/images.env" <<ENV
BASE_IMAGE=drill-python:bookworm
TOXIPROXY_IMAGE=drill-toxiproxy:local
PROMETHEUS_IMAGE=drill-prometheus:local
ALERTMANAGER_IMAGE=drill-alertmanager:local
ENV
docker image prune -f --filter "label=drill.key" >/dev/null 2>&1 || true   # dangling older builds
say "images ready in $(( $(date +%s) - started ))s:"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^drill-' | sort | sed 's/^/  /' || true
