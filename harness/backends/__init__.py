"""Stack backends, registered by name. ``process`` is the embedded default (no Docker needed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from harness.backends.base import Backend, CommandResult, Endpoint, LinkInfo, ServiceState
from harness.backends.process import ProcessBackend
from harness.errors import InputError
from harness.stack import StackDescription

BackendFactory = Callable[..., Backend]

BACKENDS: dict[str, BackendFactory] = {
    "process": ProcessBackend,
}


def create_backend(
    name: str, stack: StackDescription, run_dir: Path, *, env: Mapping[str, str] | None = None
) -> Backend:
    """A backend by its registered name; an unknown name says which exist."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise InputError(
            f"unknown backend '{name}'", hint=f"available backends: {', '.join(sorted(BACKENDS))}"
        ) from None
    return factory(stack, run_dir, env=env)


__all__ = ["BACKENDS", "Backend", "CommandResult", "Endpoint", "LinkInfo", "ServiceState", "create_backend"]
