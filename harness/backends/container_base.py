"""What the docker and kubernetes backends share: a stack of containers built from the compose file.

Both keep the same ``<run_dir>/stack.json`` (run id, owner process, ports, links, each service's intended
state), resolve the compose file's variables the same way (the locally built images stand in for the public
ones), wait for health the same way and run the operator CLI and runbook shell in a service's container.
:class:`ContainerBackend` holds that; a subclass supplies the runtime: the containers, their logs, ``exec``,
and the few questions the shared loops ask (:meth:`ContainerBackend._start_problem`,
:meth:`ContainerBackend._not_serving`, :meth:`ContainerBackend._log_where`).

The reapers of both share :func:`dead_run_state` and :func:`mark_reaped`. This module imports neither
Docker's client nor ``kubectl``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from harness.backends.base import CommandResult, LinkInfo, ServiceState, StackAddresses
from harness.backends.ports import PortLeases
from harness.backends.reaper import owner_alive, owner_record, settle_ledger
from harness.errors import BackendError, ServiceStartError, StackFileError
from harness.stack import StackDescription, load_stack

STATE_FILE = "stack.json"
CONTAINER_WORKDIR = "/work"
# compose variable -> the local image scripts/build-images.sh tags
LOCAL_IMAGES = {
    "BASE_IMAGE": "drill-python:bookworm",
    "TOXIPROXY_IMAGE": "drill-toxiproxy:local",
    "PROMETHEUS_IMAGE": "drill-prometheus:local",
    "ALERTMANAGER_IMAGE": "drill-alertmanager:local",
}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``${VAR}``, ``${VAR-default}`` and ``${VAR:-default}`` resolved as compose does (empty counts as unset)."""

    def sub(match: re.Match[str]) -> str:
        value = env.get(match.group(1))
        return value if value else (match.group(2) or "")

    return _VAR.sub(sub, text)


def read_state(run_dir: Path) -> dict[str, Any]:
    """``<run_dir>/stack.json``; a missing or corrupt one is a :class:`BackendError` saying which."""
    path = run_dir / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackendError(f"no stack was started in {run_dir} ({STATE_FILE} missing)") from None
    except json.JSONDecodeError as exc:
        raise BackendError(f"{path}:{exc.lineno}: corrupt stack state: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise BackendError(f"{path}: corrupt stack state (not an object)")
    return data


def owner_dead(owner: Any) -> bool:
    """The recorded process is gone; a detached (``drill stack up``) or unknown owner is never dead."""
    return owner_alive(owner) is False


def dead_run_state(run_dir: str, expect: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The ``stack.json`` of a run found on the runtime (by its run-dir label), when that run is dead: its
    state says ``down``, or its file is gone (``{"status": "gone"}``), or its owner process is gone.
    None while the run is alive or detached. A state whose fields differ from ``expect`` belongs to another
    run that reused the directory: what was found is then an orphan (``gone``)."""
    try:
        data = read_state(Path(run_dir)) if run_dir else {"status": "gone"}
    except BackendError:
        data = {"status": "gone"}
    if any(data.get(key, value) != value for key, value in (expect or {}).items()):
        data = {"status": "gone"}
    if data.get("status") not in ("down", "gone") and not owner_dead(data.get("owner")):
        return None
    return data


def mark_reaped(run_dir: str, data: dict[str, Any], **changes: Any) -> list[str]:
    """After a dead run's resources were removed: its ``stack.json`` says ``down`` and its ledger is settled
    (:func:`harness.backends.reaper.settle_ledger`). Lines saying what was rolled back or failed to be."""
    if data.get("status") in ("gone", "down"):
        return []
    data.update(status="down", **changes)
    with contextlib.suppress(OSError):
        (Path(run_dir) / STATE_FILE).write_text(json.dumps(data, indent=2), encoding="utf-8")
    return settle_ledger(Path(run_dir)).lines(run_dir)


class ContainerBackend(StackAddresses):
    """The part of a container backend that does not depend on the runtime."""

    name: str
    default_health_timeout: ClassVar[float] = 60.0
    health_poll_s: ClassVar[float] = 0.1

    def __init__(
        self,
        stack: StackDescription,
        run_dir: Path,
        *,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        health_timeout: float | None = None,
    ) -> None:
        self.stack = stack
        self.run_dir = run_dir.resolve()
        self.run_id = run_id or f"drill-{uuid.uuid4().hex[:8]}"
        self.env_overrides = dict(env or {})
        self.health_timeout = self.default_health_timeout if health_timeout is None else health_timeout
        self.ports: dict[str, int] = {}
        self.links: dict[str, LinkInfo] = {}
        self.owner: dict[str, Any] | None = owner_record()
        self.status = "new"
        self._leases = PortLeases()  # the stack's host ports, held from up until down
        self._intended: dict[str, ServiceState] = {name: ServiceState.STOPPED for name in stack.services}

    def detach(self) -> None:
        """The stack outlives this process on purpose (``drill stack up``): never reaped as a dead run."""
        self.owner = None

    # --- the compose variables ---------------------------------------------------------------------------

    def _image_exists(self, image: str) -> bool:
        """Whether the runtime has ``image`` (a locally built one then stands in for the public image)."""
        return True

    def _run_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment the compose file is resolved in: ours, the local images, the run's variables,
        ``extra`` (the runtime's own), then the overrides given at start."""
        env = dict(os.environ)
        for var, image in LOCAL_IMAGES.items():
            if not env.get(var) and self._image_exists(image):
                env[var] = image  # the public images cannot be pulled here: the locally built ones
        env.update(
            {"DRILL_RUN_ID": self.run_id, "DRILL_RUN_DIR": str(self.run_dir), "DRILL_WORKDIR": str(self.workdir)}
        )
        env.update(extra or {})
        env.update(self.env_overrides)
        return env

    def _env(self) -> dict[str, str]:
        return self._run_env()

    def mode(self) -> str | None:
        if self.stack.mode is None:
            return None
        return self._env().get(self.stack.mode.env) or self.stack.mode.default

    # --- intent ----------------------------------------------------------------------------------------

    def _reload_intent(self, service: str) -> None:
        """The intended state from ``stack.json`` (another drill process may have acted on the service)."""
        try:
            rec = json.loads((self.run_dir / STATE_FILE).read_text(encoding="utf-8"))["services"][service]
            self._intended[service] = ServiceState(rec["intended"])
        except (OSError, ValueError, KeyError):
            return

    def _mark(self, names: list[str], state: ServiceState) -> None:
        """Record the intended state (before acting, so a crash of this process leaves the intent behind)."""
        for name in names:
            self._intended[name] = state
        self._save()

    def restart(self, service: str) -> None:
        if self.state(service) in (ServiceState.RUNNING, ServiceState.PAUSED):
            self.stop(service)
        self.start(service)

    def state(self, service: str) -> ServiceState:
        raise NotImplementedError

    def stop(self, service: str) -> None:
        raise NotImplementedError

    def start(self, service: str) -> None:
        raise NotImplementedError

    # --- health ----------------------------------------------------------------------------------------

    def log_tail(self, service: str, lines: int = 20) -> list[str]:
        raise NotImplementedError

    def _log_where(self, service: str) -> str:
        """Where the whole log of ``service`` is (a command or a path), for an error message."""
        return str(self.run_dir / "logs")

    def _down_hint(self) -> str:
        return f"`drill stack down --run-dir {self.run_dir}` removes the stack"

    def _start_failure(self, name: str, why: str) -> ServiceStartError:
        tail = self.log_tail(name, 15)
        return ServiceStartError(
            f"{name} {why}\n  last log lines ({self._log_where(name)}):\n    " + "\n    ".join(tail),
            hint=f"fix the cause above; {self._down_hint()}",
        )

    # --- operator CLI and runbook shell ------------------------------------------------------------------

    def operator(self, args: list[str], timeout: float = 30.0) -> CommandResult:
        if self.stack.operator is None:
            raise StackFileError("the stack has no x-drill.operator", location=str(self.stack.path))
        return self._exec(self.stack.operator.service, [*self.stack.operator.command, *args], timeout)

    def shell(self, script: str, timeout: float = 30.0) -> CommandResult:
        return self._exec(self.stack.workdir_service, ["bash", "-o", "pipefail", "-c", script], timeout)

    def _exec_env(self) -> dict[str, str]:
        """What a command run for the operator or the runbook sees besides the image's environment."""
        return {self.stack.mode.env: self.mode() or ""} if self.stack.mode is not None else {}

    def _exec(self, service: str, argv: list[str], timeout: float) -> CommandResult:
        raise NotImplementedError

    # --- state file ------------------------------------------------------------------------------------

    def _state_extra(self) -> dict[str, Any]:
        """The runtime's own fields of ``stack.json`` (compose project, namespace, ...)."""
        return {}

    def _save(self) -> None:
        data = {
            "backend": self.name,
            "run_id": self.run_id,
            **self._state_extra(),
            "stack_file": str(self.stack.path),
            "status": self.status,
            "owner": self.owner,
            "env": self.env_overrides,
            "ports": self.ports,
            "links": {
                n: {"proxy": li.proxy_name, "listen": li.listen, "upstream": li.upstream}
                for n, li in self.links.items()
            },
            "services": {n: {"intended": s.value} for n, s in self._intended.items()},
        }
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.run_dir / f"{STATE_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.replace(self.run_dir / STATE_FILE)

    @property
    def orphaned(self) -> bool:
        """The drill process that started this stack is gone, and it was not a detached `drill stack up`."""
        return self.status != "down" and owner_dead(self.owner)

    @classmethod
    def _from_state(cls, data: Mapping[str, Any], run_dir: Path, health_timeout: float | None) -> Self:
        """A backend for ``data`` (read from ``stack.json``) before the shared fields are restored."""
        return cls(
            load_stack(Path(data["stack_file"])),
            run_dir,
            run_id=str(data["run_id"]),
            env=data.get("env") or {},
            health_timeout=health_timeout,
        )

    def _restore_extra(self, data: Mapping[str, Any]) -> None:
        """Restore the runtime's own fields of ``stack.json`` (see :meth:`_state_extra`)."""

    @classmethod
    def attach(cls, run_dir: Path, health_timeout: float | None = None) -> Self:
        """Rebuild the backend of a stack started by another ``drill`` process from its ``stack.json``."""
        data = read_state(run_dir)
        backend = cls._from_state(data, run_dir, health_timeout)
        backend.status = str(data.get("status", "up"))
        backend.owner = data.get("owner")
        backend.ports = {str(k): int(v) for k, v in data.get("ports", {}).items()}
        backend.links = {
            n: LinkInfo(n, str(li["proxy"]), str(li["listen"]), str(li["upstream"]))
            for n, li in data.get("links", {}).items()
        }
        for name, rec in data.get("services", {}).items():
            if name in backend._intended:
                backend._intended[name] = ServiceState(rec.get("intended", "running"))
        backend._restore_extra(data)
        return backend
