# The mock trading stack's services (broker, marketdata, traderunner, dashboard): one image.
#
# BASE_IMAGE defaults to the public python:3.11-slim. Where no registry is reachable,
# scripts/build-images.sh builds a local Debian bookworm base with python3.11 (debootstrap) and
# passes BASE_IMAGE=drill-python:bookworm. Dependencies are installed from wheels built on the host
# into docker/wheels/ (`pip install --no-index`): nothing is downloaded during the build. When
# docker/wheels/ is empty (a user with a registry running `docker compose build`), they come from
# the package index instead.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app

COPY docker/mockstack-requirements.txt /tmp/build/requirements.txt
COPY docker/wheels/ /tmp/build/wheels/
RUN python3 -m venv /opt/venv \
 && if ls /tmp/build/wheels/*.whl >/dev/null 2>&1; then \
      /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/build/wheels -r /tmp/build/requirements.txt; \
    else \
      /opt/venv/bin/pip install --no-cache-dir -r /tmp/build/requirements.txt; \
    fi \
 && rm -rf /tmp/build \
 && printf '#!/bin/sh\nexec /opt/venv/bin/python -m mockstack.traderunner "$@"\n' > /opt/venv/bin/traderunner \
 && chmod 0755 /opt/venv/bin/traderunner \
 && mkdir -p /work /data

COPY mockstack/ /app/mockstack/
WORKDIR /work
# Every service handles SIGTERM itself (exit 0 within 2 s); compose adds `init: true` as well.
STOPSIGNAL SIGTERM
