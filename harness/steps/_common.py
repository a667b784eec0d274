"""Small shared lookups for steps (no behaviour of their own)."""

from __future__ import annotations

from harness.backends.base import Backend


def service_called(backend: Backend, title: str) -> str:
    """The service name for how a feature calls it ("trading engine" -> engine)."""
    return backend.stack.service_titled(title).name


def role_url(backend: Backend, role: str) -> str:
    """Base URL of the stack's service with ``role`` (prometheus, alertmanager)."""
    spec = backend.stack.services_with_role(role)[0]
    return backend.endpoint(spec.name, next(iter(spec.ports))).url


def workdir_service(backend: Backend) -> str:
    return backend.stack.workdir_service
