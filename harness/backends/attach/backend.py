"""The attach backend: drills a stack that is already running (a paper environment, systemd, compose).

* ``up()`` starts nothing: it checks that every service answers where the stack file says, that
  the team's Toxiproxy has every declared proxy (enabled, with no toxic a drill left), and that the
  working directory exists. Anything missing is an error (exit 3) before any fault is injected.
* ``down()`` stops nothing: the stack belongs to the team.
* Faults act through the declared commands (:mod:`.control`) and the declared proxies
  (:mod:`.proxies`); each records in ``<run_dir>/stack.json`` what it did, and the fault ledger
  records every fault as for any backend, so ``drill cleanup --run-dir`` reverts exactly that.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from harness.backends.attach.control import AttachControl, StateFile, accepts_connections
from harness.backends.attach.exec import Executor
from harness.backends.attach.logs import log_path, log_tail
from harness.backends.attach.proxies import DRILL_TOXIC_PREFIX, ScopedToxiproxy
from harness.backends.base import CommandResult, Endpoint, LinkInfo, StackAddresses
from harness.backends.reaper import STATE_FILE
from harness.errors import BackendError, EnvironmentProblem, StackFileError, ToxiproxyError
from harness.stack import StackDescription, load_stack
from harness.stack_attach import AttachSpec


def attach_spec(stack: StackDescription) -> AttachSpec:
    if stack.attach is None:
        raise StackFileError(
            "the stack file has no x-drill.attach: the attach backend does not know where the running stack is",
            location=str(stack.path),
            hint="add x-drill.attach and an attach section per service (docs/attach.md), "
            "or let the harness start the stack: --backend process",
        )
    return stack.attach


class AttachBackend(AttachControl, StackAddresses):
    name = "attach"
    orphaned = False  # the stack is the team's: `drill cleanup` never removes it

    def __init__(self, stack: StackDescription, run_dir: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.stack = stack
        self.spec = attach_spec(stack)
        self.run_dir = run_dir.resolve()
        self.env_overrides = dict(env or {})
        self.executor = Executor(stack, self.spec, env)
        self.state_file = StateFile(self.run_dir / STATE_FILE)
        self.ports = {f"{n}.{p}": a.port for n, svc in self.spec.services.items() for p, a in svc.addresses.items()}
        proxies = self.spec.toxiproxy.proxies if self.spec.toxiproxy is not None else {}
        self.links = {name: LinkInfo(name, proxy, "?", "?") for name, proxy in proxies.items()}
        self._toxiproxy = None

    # --- addresses ---------------------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        if self.spec.workdir is None:
            raise StackFileError(
                "x-drill.attach.workdir is not declared: the drill reads the engine's files there",
                location=self.spec.location,
                hint="add 'workdir: /path/to/the/engine/working/directory' under x-drill.attach",
            )
        return self.spec.workdir

    @property
    def toxiproxy(self) -> ScopedToxiproxy:
        if self.spec.toxiproxy is None:
            raise StackFileError(
                "x-drill.attach.toxiproxy is not declared: network faults need the team's Toxiproxy",
                location=self.spec.location,
                hint="add 'toxiproxy: {api: http://127.0.0.1:8474, proxies: {LINK: PROXY}}' under x-drill.attach",
            )
        tox = self.spec.toxiproxy
        return ScopedToxiproxy(tox.api.host, tox.api.port, tuple(tox.proxies.values()),
                               field="x-drill.attach.toxiproxy.proxies")

    def endpoint(self, service: str, port_name: str) -> Endpoint:
        spec = self.stack.service(service)
        if port_name not in spec.ports:
            raise StackFileError(
                f"service '{service}' has no port named '{port_name}'",
                location=f"{self.stack.path}:{spec.line}",
                hint=f"its ports: {', '.join(spec.ports) or 'none'}",
            )
        address = self.spec.address(service, port_name)
        return Endpoint(service, port_name, address.host, address.port)

    def log_path(self, service: str) -> Path:
        return log_path(self.spec, self.run_dir, service)

    def log_tail(self, service: str, lines: int = 20) -> list[str]:
        return log_tail(self.spec, self.run_dir, service, lines)

    # --- lifecycle: check, never start or stop ------------------------------------------------------

    def check(self) -> None:
        """Every service answers where declared, Toxiproxy has every proxy clean, the workdir exists."""
        for name in self.stack.start_order():
            self._check_service(name)
        if self.spec.workdir is not None and not self.spec.workdir.is_dir():
            raise EnvironmentProblem(
                f"the engine's working directory {self.spec.workdir} does not exist on this host",
                hint=f"check x-drill.attach.workdir ({self.spec.location}) and that this is the engine's host",
            )
        if self.spec.toxiproxy is not None:
            self._check_proxies()

    def _check_service(self, name: str) -> None:
        svc = self.spec.service(name)
        for port_name, address in svc.addresses.items():
            ok, observed = accepts_connections(address.host, address.port, timeout=2.0)
            if not ok:
                what = {"app": "is it running? (`systemctl status`, `docker ps`)"}.get(
                    svc.role, f"is the team's {svc.role} running there?"
                )
                raise BackendError(
                    f"attached service {name} is unreachable: tried {address.text} (port '{port_name}'): {observed}",
                    hint=f"{what} Check {svc.field}.addresses.{port_name} ({svc.location})",
                )
        spec = self.stack.service(name)
        deadline = time.monotonic() + self.spec.health_timeout_s
        ok, observed = self._healthy(spec)
        while not ok and time.monotonic() < deadline:
            time.sleep(0.2)
            ok, observed = self._healthy(spec)
        if not ok:
            assert spec.health is not None
            raise BackendError(
                f"attached service {name} answers at {self.endpoint(name, spec.health.port).address} but is not "
                f"healthy: {spec.health.path} said {observed} for {self.spec.health_timeout_s:g}s",
                hint="drill a healthy stack: bring it back first (an earlier drill may have left it so, e.g. with "
                "a kill switch still active); a drill's findings on an unhealthy stack mean nothing",
            )

    def _check_proxies(self) -> None:
        proxy = self.toxiproxy
        try:
            existing = proxy.proxies()
        except ToxiproxyError as exc:
            raise BackendError(
                f"the team's Toxiproxy does not answer at {proxy.url}: {exc.message}",
                hint=f"is toxiproxy-server running? check x-drill.attach.toxiproxy.api ({self.spec.location})",
            ) from exc
        assert self.spec.toxiproxy is not None
        for link, name in self.spec.toxiproxy.proxies.items():
            found = existing.get(name)
            if found is None:
                raise BackendError(
                    f"link {link}: Toxiproxy {proxy.url} has no proxy named {name}",
                    hint=f"its proxies: {', '.join(sorted(existing)) or 'none'}; fix x-drill.attach.toxiproxy.proxies",
                )
            if not found.enabled:
                raise BackendError(
                    f"link {link}: proxy {name} is disabled before the drill: the link is already down",
                    hint="enable it (the harness would enable it when reverting a fault) or drill another time",
                )
            left = [t.name for t in found.toxics if t.name.startswith(DRILL_TOXIC_PREFIX)]
            if left:
                raise BackendError(
                    f"link {link}: proxy {name} still has toxics a drill added ({', '.join(left)})",
                    hint="a previous run did not finish: `drill cleanup` removes them",
                )
            self.links[link] = LinkInfo(link, name, found.listen, found.upstream)

    def up(self) -> None:
        """Check the running stack (see :meth:`check`) and record that this run attached to it."""
        self.check()
        data = self.state_file.read()
        data.update(
            backend=self.name,
            stack_file=str(self.stack.path),
            status="attached",
            env=self.env_overrides,
            variables=dict(self.spec.variables),
            links={n: {"proxy": li.proxy_name, "listen": li.listen, "upstream": li.upstream}
                   for n, li in self.links.items()},
        )
        self.state_file.write(data)

    def down(self) -> None:
        """Stop nothing (the stack is the team's); only mark this run as detached."""
        data = self.state_file.read()
        if data:
            data["status"] = "detached"
            self.state_file.write(data)

    # --- operator CLI and runbook blocks ---------------------------------------------------------------

    def operator(self, args: list[str], timeout: float = 30.0) -> CommandResult:
        return self.executor.operator(args, timeout)

    def shell(self, script: str, timeout: float = 30.0) -> CommandResult:
        return self.executor.shell(script, timeout)

    @classmethod
    def from_run_dir(cls, run_dir: Path) -> AttachBackend:
        """The backend of an earlier attach run (``drill cleanup``), refusing if its variables changed."""
        data = StateFile(run_dir / STATE_FILE).read()
        if not data:
            raise BackendError(f"no attach run in {run_dir} ({STATE_FILE} missing)")
        backend = cls(load_stack(Path(str(data["stack_file"]))), run_dir, env=data.get("env") or {})
        then = data.get("variables") or {}
        changed = {k: (v, backend.spec.variables.get(k)) for k, v in then.items() if backend.spec.variables.get(k) != v}
        if changed:
            diffs = "; ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in changed.items())
            raise BackendError(
                f"{run_dir}: the stack file's variables changed since this run attached ({diffs})",
                hint="set them as they were, so the same services are addressed, then run `drill cleanup` again",
            )
        for name, li in (data.get("links") or {}).items():
            if name in backend.links:
                backend.links[name] = LinkInfo(name, str(li["proxy"]), str(li["listen"]), str(li["upstream"]))
        return backend


def preflight(stack: StackDescription) -> None:
    """Check an attached stack before any drill runs (``drill run --backend attach``); writes nothing."""
    backend = AttachBackend(stack, Path("/nonexistent-run-dir"))
    backend.check()
