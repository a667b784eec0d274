"""Stack backends, registered by name. ``process`` is the embedded default (no Docker needed); ``docker``
runs the compose file's containers, ``kubernetes`` a namespace on a cluster, ``attach`` a stack that is
already running. Each is imported only when used: naming the backends (``drill run --dry-run`` checks
``--backend`` against them) costs no import of any of them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.reaper import STATE_FILE
from harness.errors import BackendError, DrillError, EnvironmentProblem, InputError

if TYPE_CHECKING:
    from harness.backends.base import Backend, CommandResult, Endpoint, LinkInfo, ServiceState
    from harness.stack import StackDescription

_BASE_NAMES = frozenset({"Backend", "CommandResult", "Endpoint", "LinkInfo", "ServiceState"})


def __getattr__(name: str) -> Any:  # the base types, re-exported without importing them up front
    if name in _BASE_NAMES:
        from harness.backends import base

        return getattr(base, name)
    raise AttributeError(f"module 'harness.backends' has no attribute {name!r}")


BackendFactory = Callable[..., "Backend"]


def _docker_backend(*args: Any, **kwargs: Any) -> Backend:
    from harness.backends.docker import DockerBackend

    return DockerBackend(*args, **kwargs)


def _kubernetes_backend(*args: Any, **kwargs: Any) -> Backend:
    from harness.backends.kubernetes import KubernetesBackend

    return KubernetesBackend(*args, **kwargs)


def _attach_backend(*args: Any, **kwargs: Any) -> Backend:
    from harness.backends.attach import AttachBackend

    return AttachBackend(*args, **kwargs)


def _process_backend(*args: Any, **kwargs: Any) -> Backend:
    from harness.backends.process import ProcessBackend

    return ProcessBackend(*args, **kwargs)


BACKENDS: dict[str, BackendFactory] = {
    "process": _process_backend,
    "docker": _docker_backend,
    "kubernetes": _kubernetes_backend,
    "attach": _attach_backend,  # a stack already running (x-drill.attach): starts and stops nothing
}


def create_backend(
    name: str,
    stack: StackDescription,
    run_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    detached: bool = False,
) -> Backend:
    """A backend by its registered name; an unknown name says which exist.

    ``detached``: the stack is meant to outlive this process (``drill stack up``), so ``drill cleanup``
    never takes it for the leftover of a dead run.
    """
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise InputError(
            f"unknown backend '{name}'", hint=f"available backends: {', '.join(sorted(BACKENDS))}"
        ) from None
    backend = factory(stack, run_dir, env=env)
    detach = getattr(backend, "detach", None)
    if detached and callable(detach):
        detach()
    return backend


def attach_backend(run_dir: Path) -> Backend:
    """The backend of a stack another ``drill`` process started in ``run_dir``, from its ``stack.json``."""
    path = run_dir / STATE_FILE
    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("backend", "process")
    except FileNotFoundError:  # the directory a person named holds no stack: their input (exit 2)
        raise InputError(f"no stack was started in {run_dir} ({STATE_FILE} missing)",
                         hint="check --run-dir: `drill stack up` prints the run directory it started") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"corrupt stack state: {exc.msg}", location=f"{path}:{exc.lineno}",
                         hint="the stack was started by hand? stop its processes, remove the file and start again "
                         "(`drill stack up`)") from exc
    except AttributeError as exc:
        raise InputError("corrupt stack state: not a JSON object", location=str(path)) from exc
    if kind == "docker":
        from harness.backends.docker import DockerBackend

        return DockerBackend.attach(run_dir)
    if kind == "kubernetes":
        from harness.backends.kubernetes import KubernetesBackend

        return KubernetesBackend.attach(run_dir)
    if kind == "attach":
        from harness.backends.attach import AttachBackend

        return AttachBackend.from_run_dir(run_dir)
    if kind != "process":
        raise BackendError(f"{path}: unknown backend {kind!r}", hint=f"known: {', '.join(sorted(BACKENDS))}")
    from harness.backends.process import ProcessBackend

    return ProcessBackend.attach(run_dir)


def reap_dead_runs() -> list[str]:
    """Remove what dead docker and kubernetes runs left; nothing for an engine or cluster that is not there."""
    from harness.backends import docker as docker_backend
    from harness.backends.kubernetes.cluster import kubeconfig_path

    notes: list[str] = []
    with contextlib.suppress(EnvironmentProblem):
        notes += docker_backend.reap_dead_runs()
    if kubeconfig_path().exists():
        from harness.backends.kubernetes import reap_dead_runs as reap_kubernetes

        with contextlib.suppress(DrillError):  # no cluster answering, or a kubeconfig for another host
            notes += reap_kubernetes()
    return notes


__all__ = [
    "BACKENDS",
    "Backend",
    "CommandResult",
    "Endpoint",
    "LinkInfo",
    "ServiceState",
    "attach_backend",
    "create_backend",
    "reap_dead_runs",
]
