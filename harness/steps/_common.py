"""Small shared lookups for steps (no behaviour of their own)."""

from __future__ import annotations

from harness.backends.base import Backend
from harness.errors import StackFileError


def service_called(backend: Backend, title: str) -> str:
    """The service name for how a feature calls it ("trading engine" -> engine)."""
    return backend.stack.service_titled(title).name


def role_url(backend: Backend, role: str) -> str:
    """Base URL of the stack's service with ``role`` (prometheus, alertmanager)."""
    found = backend.stack.services_with_role(role)
    if not found:
        raise StackFileError(
            f"this step reads {role}, but stack '{backend.stack.name}' has no service with x-drill.role: {role}",
            location=str(backend.stack.path),
            hint=f"add the {role} service to the stack (see docs/stack-contract.md), or drill it with steps "
            f"that do not need {role}",
        )
    spec = found[0]
    return backend.endpoint(spec.name, next(iter(spec.ports))).url


def workdir_service(backend: Backend) -> str:
    return backend.stack.workdir_service
