"""The process backend (the embedded default): every service of the stack is a local process.

* Every named port of every service gets a free loopback port, so several stacks run side by side
  (pytest-xdist): distinct ports, run directories and Toxiproxy proxy names (``<run_id>-<link>``).
* A real ``toxiproxy-server`` starts first; each ``x-drill.links`` entry becomes a proxy, and the
  ``{{link.NAME}}`` placeholder hands the proxy's address to the service that uses the link.
* Each service runs in its own process group (so kill/stop/pause reach its children), with its
  output in ``<run_dir>/logs/<service>.log``.
* ``<run_dir>/stack.json`` records ports, links, pids (with their start times, against pid reuse)
  and the run's owner (pid + start time) so another ``drill`` invocation can attach: ``drill stack
  down``, ``drill cleanup``, ``drill halt``.
* Unless the stack is detached (``drill stack up``), a reaper (:mod:`harness.backends.reaper`) watches
  the owner and stops every process of the run when the owner dies, SIGKILL included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.backends.base import LOOPBACK, CommandResult, LinkInfo, ServiceState, StackAddresses
from harness.backends.ports import PortLeases
from harness.backends.reaper import STATE_FILE, ReaperHandle, owner_alive, owner_record
from harness.commands import run_command
from harness.errors import BackendError, DrillError, PortInUse, ServiceStartError, StackFileError
from harness.stack import PLACEHOLDER, ServiceSpec, StackDescription, load_stack, render
from harness.tools import find_tool, search_path

if TYPE_CHECKING:
    from harness.toxiproxy import ToxiproxyAdapter



@dataclass
class _Proc:
    """Runtime record of one service process (mutable: it changes as faults act)."""

    service: str
    pid: int | None = None
    start_time: str | None = None
    intended: ServiceState = ServiceState.STOPPED
    popen: subprocess.Popen[bytes] | None = None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks) from /proc, or None if the pid is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], fields[19]


class ProcessBackend(StackAddresses):
    """A stack of local processes described by a :class:`StackDescription`."""

    name = "process"

    def __init__(
        self,
        stack: StackDescription,
        run_dir: Path,
        *,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        health_timeout: float = 30.0,
    ) -> None:
        self.stack = stack
        self.run_dir = run_dir.resolve()
        self.run_id = run_id or f"drill-{uuid.uuid4().hex[:8]}"
        self.env_overrides = dict(env or {})
        self.health_timeout = health_timeout
        self.ports: dict[str, int] = {}
        self.links: dict[str, LinkInfo] = {}
        self._procs: dict[str, _Proc] = {name: _Proc(name) for name in stack.services}
        self._toxiproxy: ToxiproxyAdapter | None = None
        self.owner: dict[str, object] | None = owner_record()
        self._reaper: ReaperHandle | None = None
        self._leases = PortLeases()  # the stack's host ports, held from up until down

    def detach(self) -> None:
        """The stack outlives this process on purpose (``drill stack up``): no owner, no reaper."""
        self.owner = None

    @property
    def orphaned(self) -> bool:
        """The drill process that owned this stack is gone (a detached stack is never orphaned)."""
        return owner_alive(self.owner) is False

    # --- paths and addresses ------------------------------------------------------------------

    def log_path(self, service: str) -> Path:
        spec = self.stack.service(service)
        if spec.log and service == self.stack.workdir_service:
            return self.workdir / spec.log
        return self.run_dir / "logs" / f"{service}.log"

    def log_tail(self, service: str, lines: int = 20) -> list[str]:
        paths = [self.log_path(service), self.run_dir / "logs" / f"{service}.log"]
        out: list[str] = []
        for path in dict.fromkeys(paths):
            try:
                with path.open("rb") as fh:
                    fh.seek(0, os.SEEK_END)
                    size = fh.tell()
                    fh.seek(max(0, size - 64 * 1024))
                    out.extend(fh.read().decode("utf-8", errors="replace").splitlines()[-lines:])
            except OSError:
                continue
        return out[-lines:]

    def mode(self) -> str | None:
        """The stack's trading mode (lab/paper/live) as the workdir service will see it."""
        if self.stack.mode is None:
            return None
        env = self._service_env(self.stack.service(self.stack.workdir_service))
        return env.get(self.stack.mode.env, self.stack.mode.default)

    # --- placeholders and environment ------------------------------------------------------------

    def _values(self, text: str) -> dict[str, str]:
        values: dict[str, str] = {
            "dir.run": str(self.run_dir),
            "dir.workdir": str(self.workdir),
            "dir.stack": str(self.stack.stack_dir),
            "python": sys.executable,
        }
        for key, port in self.ports.items():
            values[f"port.{key}"] = str(port)
            values[f"addr.{key}"] = f"{LOOPBACK}:{port}"
        for name, link in self.links.items():
            values[f"link.{name}"] = link.listen
        for match in PLACEHOLDER.finditer(text):
            if match.group(1) == "tool":
                values[f"tool.{match.group(2)}"] = find_tool(match.group(2))
        return values

    def _render(self, text: str, where: str) -> str:
        return render(text, self._values(text), where=where)

    def _base_env(self) -> dict[str, str]:
        # the stack runs as it would outside a drill: pytest's own marker (which some programs check to
        # change how they log or behave) stays with the drill process
        env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "PYTEST_CURRENT_TEST")}
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([venv_bin, search_path()])
        env["PYTHONUNBUFFERED"] = "1"
        env["DRILL_RUN_ID"] = self.run_id
        env["DRILL_WORKDIR"] = str(self.workdir)
        return env

    def _service_env(self, spec: ServiceSpec) -> dict[str, str]:
        env = self._base_env()
        if spec.local is not None:
            where = f"{self.stack.path}:{spec.line} (services.{spec.name}.x-drill.local.env)"
            for key, value in spec.local.env.items():
                env[key] = self._render(value, where)
        env.update(self.env_overrides)
        return env

    # --- lifecycle --------------------------------------------------------------------------------

    def plan(self) -> None:
        """Fill in addresses from the description's declared ports without starting anything (dry run)."""
        for spec in self.stack.services.values():
            for port_name, port in spec.ports.items():
                self.ports.setdefault(f"{spec.name}.{port_name}", port)
        for name, link in self.stack.links.items():
            upstream = self.endpoint(link.target, link.port).address
            listen = f"{LOOPBACK}:{link.listen_port or 0}"
            self.links.setdefault(name, LinkInfo(name, f"{self.run_id}-{name}", listen, upstream))

    def up(self) -> None:
        """Start the whole stack and wait until every service is healthy; on failure stop all."""
        if (self.run_dir / STATE_FILE).exists() and any(self._alive(p) for p in self._procs.values()):
            raise BackendError(f"a stack is already running from {self.run_dir}", hint="`drill stack down` first")
        for spec in self.stack.services.values():
            if spec.local is None:
                raise StackFileError(
                    f"services.{spec.name}.x-drill.local is missing: the process backend cannot start it",
                    location=f"{self.stack.path}:{spec.line}",
                    hint="add 'x-drill: {local: {command: [...]}}' or use --backend docker",
                )
        for sub in ("logs", "state", "workdir"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        if self.owner is not None and self._reaper is None:
            self._reaper = ReaperHandle(self.run_dir, self.run_id)  # before anything starts: nothing outlives us
        for spec in self.stack.services.values():
            for port_name in spec.ports:
                self.ports[f"{spec.name}.{port_name}"] = self._leases.take()
        try:
            toxiproxies = [s.name for s in self.stack.services_with_role("toxiproxy")]
            for name in toxiproxies:
                self._spawn(self.stack.services[name])
            for name in toxiproxies:
                self.wait_healthy(name, self.health_timeout)
            self._create_links()
            others = [n for n in self.stack.start_order() if n not in toxiproxies]
            for name in others:
                self._render_templates(self.stack.services[name])
                self._spawn(self.stack.services[name])
            self._save()
            self._wait_all_healthy(others)
        except BaseException:
            self.down()
            raise
        self._save()

    def _create_links(self) -> None:
        if not self.stack.links:
            return
        proxy = self.toxiproxy
        for name, spec in self.stack.links.items():
            port = self._leases.take()
            upstream = self.endpoint(spec.target, spec.port).address
            proxy_name = f"{self.run_id}-{name}"
            created = proxy.create_proxy(proxy_name, f"{LOOPBACK}:{port}", upstream)
            self.links[name] = LinkInfo(name, proxy_name, created.listen, upstream)

    def _render_templates(self, spec: ServiceSpec) -> None:
        if spec.local is None:
            return
        for source, target in spec.local.templates.items():
            src = self.stack.stack_dir / source
            try:
                text = src.read_text(encoding="utf-8")
            except OSError as exc:
                raise StackFileError(
                    f"services.{spec.name}.x-drill.local.templates: cannot read {src}: {exc.strerror}",
                    location=f"{self.stack.path}:{spec.line}",
                ) from exc
            dest = self.run_dir / target
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(self._render(text, str(src)), encoding="utf-8")

    def _spawn(self, spec: ServiceSpec) -> None:
        assert spec.local is not None
        where = f"{self.stack.path}:{spec.line} (services.{spec.name}.x-drill.local.command)"
        argv = [self._render(token, where) for token in spec.local.command]
        log = self.run_dir / "logs" / f"{spec.name}.log"
        env = self._service_env(spec)
        with log.open("ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            out.flush()
            try:
                popen = subprocess.Popen(
                    argv, cwd=self.workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            except OSError as exc:
                raise ServiceStartError(
                    f"cannot start {spec.name}: {argv[0]}: {exc.strerror}",
                    hint=f"check services.{spec.name}.x-drill.local.command in {self.stack.path}",
                ) from exc
        stat = _proc_stat(popen.pid)
        proc = self._procs[spec.name]
        proc.pid, proc.popen, proc.intended = popen.pid, popen, ServiceState.RUNNING
        proc.start_time = stat[1] if stat else None

    def _start_failure(self, name: str, why: str) -> DrillError:
        tail = self.log_tail(name, 15)
        text = "\n".join(tail)
        if "Address already in use" in text or "address already in use" in text:
            ports = ", ".join(f"{k}={v}" for k, v in self.ports.items() if k.startswith(name + "."))
            return PortInUse(
                f"{name} could not bind its port ({ports}): address already in use",
                hint="another process took the port between allocation and start; run again",
            )
        return ServiceStartError(
            f"{name} {why}\n  last log lines ({self.run_dir / 'logs' / (name + '.log')}):\n    " + "\n    ".join(tail),
            hint=f"fix the cause above; the full log is in {self.run_dir / 'logs'}",
        )

    def _start_problem(self, service: str) -> str | None:
        proc = self._procs[service]
        return None if self._alive(proc) else f"exited (code {self._exit_code(proc)}) before it was healthy"

    def _not_serving(self, service: str) -> str | None:
        return None if self._alive(self._procs[service]) else "is not running"

    def down(self) -> None:
        """Stop every service (paused ones are resumed first so SIGTERM can act); never raises for a gone pid."""
        order = list(reversed(self.stack.start_order()))
        for name in order:
            self.state(name)  # refresh pids another drill process may have changed
            self._signal(self._procs[name], signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        for name in order:
            self._signal(self._procs[name], signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for name in order:
            proc = self._procs[name]
            while self._alive(proc) and time.monotonic() < deadline:
                time.sleep(0.02)
            if self._alive(proc):
                self._signal(proc, signal.SIGKILL)
                self._reap(proc, 5.0)
            proc.intended = ServiceState.STOPPED
        self._save(down=True)
        self._leases.release()
        if self._reaper is not None:
            self._reaper.release()
            self._reaper = None

    # --- per-service control (what service faults use) -------------------------------------------

    def state(self, service: str) -> ServiceState:
        """What the OS says (``/proc``), not what this object last did: another drill process may have acted."""
        self.stack.service(service)
        proc = self._procs[service]
        if not self._alive(proc):
            self._reload(service)
        if proc.pid is None:
            return ServiceState.STOPPED
        if not self._alive(proc):
            return ServiceState.STOPPED if proc.intended == ServiceState.STOPPED else ServiceState.DEAD
        stat = _proc_stat(proc.pid)
        return ServiceState.PAUSED if stat is not None and stat[0] == "T" else ServiceState.RUNNING

    def _reload(self, service: str) -> None:
        """Take a newer pid for ``service`` from stack.json (written by whichever drill process restarted it)."""
        try:
            rec = json.loads((self.run_dir / STATE_FILE).read_text(encoding="utf-8"))["services"][service]
        except (OSError, ValueError, KeyError):
            return
        proc = self._procs[service]
        if rec.get("pid") and rec["pid"] != proc.pid:
            proc.pid, proc.start_time, proc.popen = rec["pid"], rec.get("start_time"), None
            proc.intended = ServiceState(rec.get("intended", "running"))

    def kill(self, service: str) -> None:
        proc = self._running(service)
        proc.intended = ServiceState.STOPPED
        self._signal(proc, signal.SIGKILL)
        self._reap(proc, 5.0)
        self._save()

    def stop(self, service: str) -> None:
        proc = self._running(service)
        proc.intended = ServiceState.STOPPED
        if self.state(service) == ServiceState.PAUSED:
            self._signal(proc, signal.SIGCONT)
        self._signal(proc, signal.SIGTERM)
        if not self._reap(proc, 5.0):
            self._signal(proc, signal.SIGKILL)
            self._reap(proc, 5.0)
        self._save()

    def start(self, service: str) -> None:
        spec = self.stack.service(service)
        proc = self._procs[service]
        if self._alive(proc):
            if self.state(service) == ServiceState.PAUSED:
                self.resume(service)
            return
        self._render_templates(spec)
        self._spawn(spec)
        self._save()
        self.wait_healthy(service, self.health_timeout)

    def restart(self, service: str) -> None:
        if self._alive(self._procs[service]):
            self.stop(service)
        self.start(service)

    def pause(self, service: str) -> None:
        proc = self._running(service)
        self._signal(proc, signal.SIGSTOP)
        proc.intended = ServiceState.PAUSED
        deadline = time.monotonic() + 2.0
        while self.state(service) != ServiceState.PAUSED and time.monotonic() < deadline:
            time.sleep(0.005)
        self._save()

    def resume(self, service: str) -> None:
        self.state(service)  # refresh the pid if another process restarted it
        proc = self._procs[service]
        self._signal(proc, signal.SIGCONT)
        if self._alive(proc):
            proc.intended = ServiceState.RUNNING
        self._save()

    def _running(self, service: str) -> _Proc:
        self.stack.service(service)
        proc = self._procs[service]
        if not self._alive(proc):
            raise BackendError(
                f"{service} is not running (state: {self.state(service).value})",
                hint=f"start it first (`drill stack up`), see {self.run_dir / 'logs' / (service + '.log')}",
            )
        return proc

    # --- operator CLI and runbook shell ---------------------------------------------------------------

    def operator(self, args: list[str], timeout: float = 30.0) -> CommandResult:
        if self.stack.operator is None:
            raise StackFileError("the stack has no x-drill.operator", location=str(self.stack.path))
        spec = self.stack.service(self.stack.operator.service)
        return run_command(
            [*self.stack.operator.command, *args], cwd=self.workdir, env=self._service_env(spec), timeout=timeout
        )

    def shell(self, script: str, timeout: float = 30.0) -> CommandResult:
        spec = self.stack.service(self.stack.workdir_service)
        return run_command(
            ["bash", "-o", "pipefail", "-c", script], cwd=self.workdir, env=self._service_env(spec), timeout=timeout
        )

    # --- process bookkeeping ------------------------------------------------------------------------

    def _alive(self, proc: _Proc) -> bool:
        if proc.pid is None:
            return False
        if proc.popen is not None:
            return proc.popen.poll() is None
        stat = _proc_stat(proc.pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return proc.start_time is None or stat[1] == proc.start_time

    def _exit_code(self, proc: _Proc) -> int | None:
        return proc.popen.poll() if proc.popen is not None else None

    def _signal(self, proc: _Proc, sig: signal.Signals) -> None:
        if proc.pid is None or not self._alive(proc):
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            raise BackendError(f"cannot signal {proc.service} (pid {proc.pid}): {exc.strerror}") from exc

    def _reap(self, proc: _Proc, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(proc):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _save(self, down: bool = False) -> None:
        data = {
            "backend": self.name,
            "run_id": self.run_id,
            "stack_file": str(self.stack.path),
            "status": "down" if down else "up",
            "owner": self.owner,
            "env": self.env_overrides,
            "ports": self.ports,
            "links": {
                n: {"proxy": li.proxy_name, "listen": li.listen, "upstream": li.upstream}
                for n, li in self.links.items()
            },
            "services": {
                n: {"pid": p.pid, "start_time": p.start_time, "intended": p.intended.value}
                for n, p in self._procs.items()
            },
        }
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.run_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.replace(self.run_dir / STATE_FILE)

    @classmethod
    def attach(cls, run_dir: Path, health_timeout: float = 30.0) -> ProcessBackend:
        """Rebuild the backend of a stack started by another ``drill`` process from its ``stack.json``."""
        path = run_dir / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BackendError(f"no stack was started in {run_dir} ({STATE_FILE} missing)") from None
        except json.JSONDecodeError as exc:
            raise BackendError(f"{path}:{exc.lineno}: corrupt stack state: {exc.msg}") from exc
        stack = load_stack(Path(data["stack_file"]))
        backend = cls(
            stack, run_dir, run_id=str(data["run_id"]), env=data.get("env") or {}, health_timeout=health_timeout
        )
        owner = data.get("owner")
        backend.owner = dict(owner) if isinstance(owner, dict) else None
        backend.ports = {str(k): int(v) for k, v in data["ports"].items()}
        backend.links = {
            n: LinkInfo(n, str(li["proxy"]), str(li["listen"]), str(li["upstream"])) for n, li in data["links"].items()
        }
        for name, rec in data["services"].items():
            if name in backend._procs:
                proc = backend._procs[name]
                proc.pid = rec["pid"]
                proc.start_time = rec["start_time"]
                proc.intended = ServiceState(rec["intended"])
        return backend
