"""The ``attach`` part of a stack file: how to reach and control a stack the harness did not start.

A team's paper environment, or services under systemd or compose, run whether or not a drill
does. The stack file (the usual ``x-drill`` description) says how the harness reaches them and
which commands act on them; ``drill run --backend attach`` then starts nothing and stops nothing
it did not stop itself:

.. code-block:: yaml

    x-drill:
      name: paper
      workdir: engine                      # the service whose working directory is the stack's
      attach:
        workdir: /srv/engine               # that directory on this host (relative: to this file)
        env: {ENGINE_HOME: /srv/engine}    # for operator commands, runbook blocks, control commands
        allow_hosts: []                    # hosts besides 127.0.0.1/localhost addresses may use
        toxiproxy: {api: "http://127.0.0.1:8474", proxies: {broker: paper-broker}}   # one proxy per link
        prometheus: http://127.0.0.1:9090
        alertmanager: http://127.0.0.1:9093
        command_timeout_s: 60              # each control command
        health_timeout_s: 60               # a started/resumed service must be healthy within this
    services:
      engine:
        x-drill:
          health: {port: http, path: /health}
          attach:
            addresses: {http: "127.0.0.1:7300"}     # every named port (x-drill.ports may be left out)
            log: logs/engine.log                    # relative: to attach.workdir
            commands:                                # a string runs in /bin/sh; a list is an argv
              kill: systemctl kill -s KILL engine
              stop: systemctl stop engine
              start: systemctl start engine
              pause: systemctl kill -s STOP engine
              resume: systemctl kill -s CONT engine

Every value in these sections may use ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?message}``, ``$VAR`` and ``$$`` (a literal ``$``) as Compose does; a variable that is
unset and has no default is an error here (Compose would silently use an empty string).

Toxiproxy, Prometheus and Alertmanager are reached through the URLs above: a service with one of
those roles need not be listed under ``services:`` (it is added from the URL), and never has
commands (the harness does not control a team's monitoring). Every address must be on 127.0.0.1 or
localhost unless ``allow_hosts`` names its host.

Parsed once, by :func:`harness.stack.load_stack`, into the frozen :class:`AttachSpec`; every error
names the file, the line and the field, and says what to write instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import StackFileError
from harness.stack import HealthSpec, LinkSpec, ServiceSpec, _Reader

ACTIONS = ("kill", "stop", "start", "pause", "resume", "restart")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
MONITORING = {  # role -> (port name, health path, title) of a service added from its URL
    "toxiproxy": ("api", "/version", "Toxiproxy"),
    "prometheus": ("http", "/-/ready", "Prometheus"),
    "alertmanager": ("http", "/-/ready", "Alertmanager"),
}
TOP_FIELDS = (
    "workdir", "env", "allow_hosts", "toxiproxy", "prometheus", "alertmanager", "command_timeout_s", "health_timeout_s"
)
SERVICE_FIELDS = ("addresses", "log", "commands")
# what a control action needs declared, so that the harness can also revert it
NEEDS: Mapping[str, tuple[str, ...]] = {
    "kill": ("kill", "start"),
    "stop": ("stop", "start"),
    "pause": ("pause", "resume"),
    "start": ("start",),
    "resume": ("resume",),
}
_VAR = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>\{))"
)


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @property
    def text(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ControlCommand:
    """One declared command: ``argv`` as run (a string became ``/bin/sh -c TEXT``)."""

    action: str
    argv: tuple[str, ...]
    text: str
    field: str  # services.NAME.x-drill.attach.commands.ACTION
    location: str  # file:line


@dataclass(frozen=True)
class AttachedService:
    name: str
    role: str
    addresses: Mapping[str, Address]  # port name -> where it is reached from this host
    log: Path | None  # absolute
    commands: Mapping[str, ControlCommand]
    field: str  # services.NAME.x-drill.attach
    location: str


@dataclass(frozen=True)
class AttachedToxiproxy:
    api: Address
    proxies: Mapping[str, str]  # link name -> the existing proxy's name
    location: str


@dataclass(frozen=True)
class AttachSpec:
    """Where an already running stack is and how to act on it (``x-drill.attach`` and each service's)."""

    path: Path
    location: str
    workdir: Path | None  # absolute
    env: Mapping[str, str]
    allow_hosts: tuple[str, ...]
    toxiproxy: AttachedToxiproxy | None
    prometheus: Address | None
    alertmanager: Address | None
    services: Mapping[str, AttachedService]  # every service of the stack, monitoring included
    command_timeout_s: float
    health_timeout_s: float
    variables: Mapping[str, str | None]  # each environment variable interpolated -> its value (None: unset)

    def service(self, name: str) -> AttachedService:
        try:
            return self.services[name]
        except KeyError:
            raise StackFileError(
                f"no attached service named '{name}'",
                location=self.location,
                hint=f"attached services: {', '.join(sorted(self.services))}",
            ) from None

    def address(self, service: str, port_name: str) -> Address:
        svc = self.service(service)
        try:
            return svc.addresses[port_name]
        except KeyError:
            raise StackFileError(
                f"{svc.field}.addresses: no address for port '{port_name}'",
                location=svc.location,
                hint=f"add '{port_name}: 127.0.0.1:PORT' under {svc.field}.addresses",
            ) from None

    def commands_for(self, service: str, action: str) -> tuple[ControlCommand, ...]:
        """The commands ``action`` runs; refused (naming every field to add) if one it needs is missing.

        A fault needs its revert declared too: ``kill`` and ``stop`` need ``start``, ``pause`` needs
        ``resume``. ``restart`` uses its own command, else ``stop`` then ``start``.
        """
        svc = self.service(service)
        if svc.role != "app":
            raise StackFileError(
                f"cannot {action} {service}: it is the team's {svc.role}, which the harness never controls",
                location=svc.location,
                hint="drill an application service; faults on the network go through Toxiproxy links",
            )
        if action == "restart" and "restart" in svc.commands:
            return (svc.commands["restart"],)
        needed = ("stop", "start") if action == "restart" else NEEDS[action]
        missing = [n for n in needed if n not in svc.commands]
        if missing:
            why = "" if missing == [action] else f" ({action} is only done when its revert can be done too)"
            raise StackFileError(
                f"cannot {action} {service}: "
                + " and ".join(f"{svc.field}.commands.{n}" for n in missing)
                + f" {'is' if len(missing) == 1 else 'are'} not declared{why}",
                location=svc.location,
                hint="add " + ", ".join(f"'{n}: <command>'" for n in missing) + f" under {svc.field}.commands",
            )
        return tuple(svc.commands[n] for n in (needed if action == "restart" else (action,)))


# --- parsing -----------------------------------------------------------------------------------------


def attach_ports(r: _Reader, x: Any, fp: str) -> dict[str, int]:
    """Named ports of a service that gives only ``x-drill.attach.addresses`` (no ``x-drill.ports``)."""
    node = x.get("attach") if isinstance(x, dict) else None
    addresses = node.get("addresses") if isinstance(node, dict) else None
    if not isinstance(addresses, dict):
        return {}
    p = _Parser(r, os.environ)
    return {str(name): p.address(addresses, name, f"{fp}.x-drill.attach.addresses.{name}", check_host=False).port
            for name in addresses}


def parse_attach(
    r: _Reader, top: Any, services_node: Any, services: Mapping[str, ServiceSpec], links: Mapping[str, LinkSpec]
) -> tuple[AttachSpec, dict[str, ServiceSpec]]:
    """The :class:`AttachSpec` of ``x-drill.attach``, and the services with the monitoring ones added."""
    p = _Parser(r, os.environ)
    node = r.mapping(top, "attach", "x-drill.attach")
    p.known(node, TOP_FIELDS, "x-drill.attach")
    allow = p.strings(node, "allow_hosts", "x-drill.attach.allow_hosts")
    p.allowed = (*LOOPBACK_HOSTS, *allow)
    workdir = None
    if "workdir" in node:
        workdir = (r.path.parent / p.text(node, "workdir", "x-drill.attach.workdir")).resolve()
        p.workdir = workdir
    env_node = r.mapping(node, "env", "x-drill.attach.env", required=False)
    env = {str(k): p.text(env_node, k, f"x-drill.attach.env.{k}", allow_empty=True) for k in env_node}
    monitoring: dict[str, Address] = {}
    for role in ("prometheus", "alertmanager"):
        if role in node:
            monitoring[role] = p.url(node, role, f"x-drill.attach.{role}")
    toxiproxy = None
    tnode: Any = node
    if "toxiproxy" in node:
        tnode = r.mapping(node, "toxiproxy", "x-drill.attach.toxiproxy")
        p.known(tnode, ("api", "proxies"), "x-drill.attach.toxiproxy")
        api = p.url(tnode, "api", "x-drill.attach.toxiproxy.api")
        pnode = r.mapping(tnode, "proxies", "x-drill.attach.toxiproxy.proxies", required=False)
        proxies = {str(k): p.text(pnode, k, f"x-drill.attach.toxiproxy.proxies.{k}") for k in pnode}
        for name in proxies:
            if name not in links:
                raise r.fail(pnode, name, f"x-drill.attach.toxiproxy.proxies.{name}", "no link of that name",
                             f"links in this stack: {', '.join(sorted(links)) or 'none'} (x-drill.links)")
        toxiproxy = AttachedToxiproxy(api, proxies, r.where(tnode))
        monitoring["toxiproxy"] = api
    missing_links = [name for name in links if toxiproxy is None or name not in toxiproxy.proxies]
    if missing_links:
        raise r.fail(tnode, None, "x-drill.attach.toxiproxy.proxies",
                     f"no proxy name for link(s) {', '.join(missing_links)}",
                     "name the existing Toxiproxy proxy each x-drill.links entry runs through, "
                     "e.g. 'toxiproxy: {api: http://127.0.0.1:8474, proxies: {"
                     + ", ".join(f"{n}: <proxy name>" for n in missing_links) + "}}'")
    all_services = dict(services)
    attached: dict[str, AttachedService] = {}
    for role, address in monitoring.items():
        declared = [s for s in services.values() if s.role == role]
        if not declared:
            port_name, health, title = MONITORING[role]
            if role in services:
                raise r.fail(node, role, f"x-drill.attach.{role}", f"service '{role}' exists with role "
                             f"{services[role].role}", f"give the team's {role} 'x-drill: {{role: {role}}}'")
            all_services[role] = ServiceSpec(role, role, {port_name: address.port}, HealthSpec(port_name, health),
                                             None, None, (), getattr(node, "line", 0), title)
            declared = [all_services[role]]
        for spec in declared:
            attached[spec.name] = AttachedService(spec.name, role, dict.fromkeys(spec.ports, address), None, {},
                                                  f"x-drill.attach.{role}", r.where(node, role))
    for spec in services.values():
        fp = f"services.{spec.name}.x-drill"
        x = services_node[spec.name].get("x-drill")
        if spec.role != "app":
            if isinstance(x, dict) and "attach" in x:
                raise r.fail(x, "attach", f"{fp}.attach", f"a {spec.role} service is reached through "
                             f"x-drill.attach.{spec.role}, not its own attach section",
                             f"remove {fp}.attach and set x-drill.attach.{spec.role}: http://127.0.0.1:PORT")
            if spec.name not in attached:
                raise r.fail(node, None, f"x-drill.attach.{spec.role}", "is missing",
                             f"services.{spec.name} has role {spec.role}: give its URL, "
                             f"e.g. '{spec.role}: http://127.0.0.1:PORT'")
            continue
        attached[spec.name] = p.service(spec, x, fp)
    return (
        AttachSpec(
            path=r.path,
            location=r.where(node),
            workdir=workdir,
            env=env,
            allow_hosts=allow,
            toxiproxy=toxiproxy,
            prometheus=monitoring.get("prometheus"),
            alertmanager=monitoring.get("alertmanager"),
            services=attached,
            command_timeout_s=p.seconds(node, "command_timeout_s", "x-drill.attach.command_timeout_s", 60.0),
            health_timeout_s=p.seconds(node, "health_timeout_s", "x-drill.attach.health_timeout_s", 60.0),
            variables=dict(p.used),
        ),
        all_services,
    )


class _Parser:
    """Typed, interpolated reading of the attach sections (errors: file:line, field, what to write)."""

    def __init__(self, r: _Reader, environ: Mapping[str, str]) -> None:
        self.r = r
        self.environ = environ
        self.allowed: tuple[str, ...] = LOOPBACK_HOSTS
        self.used: dict[str, str | None] = {}
        self.workdir: Path | None = None  # x-drill.attach.workdir: relative service logs are read from there

    def known(self, node: Any, fields: tuple[str, ...], fp: str) -> None:
        for key in node:
            if key not in fields:
                raise self.r.fail(node, key, f"{fp}.{key}", "unknown field", f"known fields: {', '.join(fields)}")

    def interpolate(self, text: str, node: Any, key: str, fp: str) -> str:
        def sub(match: re.Match[str]) -> str:
            if match.group("dollar"):
                return "$"
            if match.group("bad"):
                raise self.r.fail(node, key, fp, f"invalid interpolation in {text!r}",
                                  "write ${NAME}, ${NAME:-default} or $$ for a literal $")
            name = match.group("braced") or match.group("bare")
            value = self.environ.get(name)
            self.used[name] = value
            op, arg = match.group("op"), match.group("arg") or ""
            unset = value is None or (value == "" and op is not None and op.startswith(":"))
            if op in (":-", "-") and unset:
                return arg
            if op in (":?", "?") and unset:
                raise self.r.fail(node, key, fp, f"${{{name}}} is not set: {arg or 'required'}",
                                  f"export {name}=... before running drill")
            if value is None:
                raise self.r.fail(node, key, fp, f"${{{name}}} is not set and has no default",
                                  f"export {name}=..., or write ${{{name}:-default}}")
            return value

        return _VAR.sub(sub, text)

    def text(self, node: Any, key: str, fp: str, *, allow_empty: bool = False) -> str:
        value = node.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.r.fail(node, key, fp, f"must be a string, got {value!r}", "")
        text = self.interpolate(str(value), node, key, fp)
        if not text and not allow_empty:
            raise self.r.fail(node, key, fp, "is empty", f"give {key} a value (check the variables it uses)")
        return text

    def strings(self, node: Any, key: str, fp: str) -> tuple[str, ...]:
        value = node.get(key, [])
        if not isinstance(value, list):
            raise self.r.fail(node, key, fp, f"must be a list, got {value!r}", f"write '{key}: [host1, host2]'")
        return tuple(self.interpolate(str(v), node, key, fp) for v in value)

    def seconds(self, node: Any, key: str, fp: str, default: float) -> float:
        value = node.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
            raise self.r.fail(node, key, fp, f"must be a number of seconds in (0, 3600], got {value!r}", "")
        return float(value)

    def _host(self, host: str, node: Any, key: str, fp: str) -> str:
        if host not in self.allowed:
            raise self.r.fail(
                node, key, fp, f"host '{host}' is not 127.0.0.1 or localhost",
                f"the harness only sends traffic to loopback unless the stack file says otherwise: "
                f"add it to x-drill.attach.allow_hosts ([{host}]) if you mean to drill that host",
            )
        return "127.0.0.1" if host == "localhost" else host

    def address(self, node: Any, key: str, fp: str, *, check_host: bool = True) -> Address:
        """``host:port``, or a bare port (on 127.0.0.1)."""
        raw = node.get(key)
        text = self.text(node, key, fp)
        if isinstance(raw, int) and not isinstance(raw, bool):
            text = f"127.0.0.1:{raw}"
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise self.r.fail(node, key, fp, f"must be HOST:PORT, got {text!r}", "write e.g. '127.0.0.1:7300'")
        host = host.strip("[]")
        return Address(self._host(host, node, key, fp) if check_host else host, int(port))

    def url(self, node: Any, key: str, fp: str) -> Address:
        text = self.text(node, key, fp)
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
            raise self.r.fail(node, key, fp, f"must be http://HOST:PORT (no path), got {text!r}",
                              "write e.g. 'http://127.0.0.1:9090'")
        return Address(self._host(parts.hostname, node, key, fp), port)

    def command(self, node: Any, key: str, fp: str) -> ControlCommand:
        raw = node.get(key)
        where = self.r.where(node, key)
        if isinstance(raw, list) and raw:
            argv = tuple(self.interpolate(str(v), node, key, fp) for v in raw)
            return ControlCommand(key, argv, " ".join(argv), fp, where)
        if isinstance(raw, str) and raw.strip():
            text = self.interpolate(raw, node, key, fp)
            return ControlCommand(key, ("/bin/sh", "-c", text), text, fp, where)
        raise self.r.fail(node, key, fp, f"must be a command (a string run by /bin/sh, or a list), got {raw!r}",
                          f"write e.g. '{key}: systemctl {key} my-service'")

    def service(self, spec: ServiceSpec, x: Any, fp: str) -> AttachedService:
        if not isinstance(x, dict) or "attach" not in x:
            raise self.r.fail(x if isinstance(x, dict) else None, None, f"{fp}.attach", "is missing",
                              f"say where {spec.name} runs: 'attach: {{addresses: {{PORT_NAME: 127.0.0.1:PORT}}}}', "
                              "or remove the service from this stack file")
        node = self.r.mapping(x, "attach", f"{fp}.attach")
        afp = f"{fp}.attach"
        self.known(node, SERVICE_FIELDS, afp)
        anode = self.r.mapping(node, "addresses", f"{afp}.addresses")
        addresses = {str(k): self.address(anode, k, f"{afp}.addresses.{k}") for k in anode}
        if not addresses:
            raise self.r.fail(node, "addresses", f"{afp}.addresses", "is empty", "give at least one NAME: HOST:PORT")
        for port_name in spec.ports:
            if port_name not in addresses:
                raise self.r.fail(anode, None, f"{afp}.addresses", f"no address for port '{port_name}'",
                                  f"{fp}.ports declares it: add '{port_name}: 127.0.0.1:PORT'")
        for port_name in addresses:
            if port_name not in spec.ports:
                raise self.r.fail(anode, port_name, f"{afp}.addresses.{port_name}", "no port of that name",
                                  f"{fp}.ports has: {', '.join(spec.ports)} (or leave x-drill.ports out)")
        log = None
        if "log" in node:
            log = ((self.workdir or self.r.path.parent) / self.text(node, "log", f"{afp}.log")).resolve()
        cnode = self.r.mapping(node, "commands", f"{afp}.commands", required=False)
        self.known(cnode, ACTIONS, f"{afp}.commands")
        commands = {str(k): self.command(cnode, k, f"{afp}.commands.{k}") for k in cnode}
        return AttachedService(spec.name, spec.role, addresses, log, commands, afp, self.r.where(node))
