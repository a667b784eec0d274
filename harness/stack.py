"""The stack description: one source of truth for every backend.

A stack is described in a Compose file (``docker-compose.yml``); what the harness needs beyond
Compose lives in ``x-drill`` extension fields, which Compose itself ignores:

.. code-block:: yaml

    x-drill:                      # top level: the stack as a whole
      name: paper-desk
      mode: {env: APP_MODE, default: lab}          # what says lab/paper/live
      workdir: engine                             # service whose working directory is the stack's
      operator: {service: engine, command: [engine-ctl]}       # the operator CLI
      runbook: docs/incident-response-runbook.md  # optional: the runbook drills follow (relative to this file)
      trading: {...}                              # the trading adapter: see harness/adapter.py
      kubernetes: {manifests: [k8s/*.yaml]}       # optional: the team's own manifests (kubernetes/team.py)
      links:                                      # network paths that run through Toxiproxy
        broker: {from: engine, to: broker, port: order}
    services:
      broker:
        x-drill:
          ports: {order: 7100, http: 7101}        # named ports (container side)
          health: {port: http, path: /health}
          log: null                               # app log under the workdir, if any
          local:                                  # how the process backend starts it
            command: [broker-gateway, --order-port, "{{port.broker.order}}"]
            env: {}
            templates: {monitoring/x.tmpl: x.yml} # rendered into the run dir before start

Placeholders in local commands, env values and templates: ``{{port.SERVICE.PORT}}``,
``{{addr.SERVICE.PORT}}`` (``127.0.0.1:port``), ``{{link.NAME}}`` (the Toxiproxy listen address of
a link), ``{{dir.run}}``, ``{{dir.workdir}}``, ``{{dir.stack}}``, ``{{python}}``.

The file is parsed once, here, into frozen dataclasses; every error names the file, the line and
the field, and says how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.adapter import TradingSpec, parse_trading
from harness.errors import StackFileError

if TYPE_CHECKING:
    from harness.stack_attach import AttachSpec

PLACEHOLDER = re.compile(r"\{\{\s*([a-z]+)(?:\.([A-Za-z0-9_\-]+))?(?:\.([A-Za-z0-9_\-]+))?\s*\}\}")
ROLES = ("app", "toxiproxy", "prometheus", "alertmanager")
MODES = ("lab", "paper", "live")  # what x-drill.mode may say (harness.safety refuses anything else)


@dataclass(frozen=True)
class HealthSpec:
    port: str
    path: str


@dataclass(frozen=True)
class LocalSpec:
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    templates: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    role: str
    ports: Mapping[str, int]
    health: HealthSpec | None
    local: LocalSpec | None
    log: str | None
    depends_on: tuple[str, ...]
    line: int
    title: str = ""  # how people call it in features ("trading engine"); defaults to the name

    def port_names(self) -> tuple[str, ...]:
        return tuple(self.ports)


@dataclass(frozen=True)
class LinkSpec:
    name: str
    source: str
    target: str
    port: str
    listen_port: int | None
    line: int


@dataclass(frozen=True)
class OperatorSpec:
    service: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class ModeSpec:
    env: str
    default: str


@dataclass(frozen=True)
class StackDescription:
    name: str
    path: Path
    services: Mapping[str, ServiceSpec]
    links: Mapping[str, LinkSpec]
    workdir_service: str
    operator: OperatorSpec | None
    mode: ModeSpec | None
    runbook: Path | None = None  # the incident runbook drills follow (x-drill.runbook), absolute
    trading: TradingSpec = field(default_factory=lambda: TradingSpec(engine="", where=""))  # x-drill.trading
    attach: AttachSpec | None = None  # x-drill.attach: a running stack to attach to (harness.stack_attach)

    @property
    def stack_dir(self) -> Path:
        return self.path.parent

    def service(self, name: str) -> ServiceSpec:
        try:
            return self.services[name]
        except KeyError:
            raise StackFileError(
                f"no service named '{name}'",
                location=str(self.path),
                hint=f"services in this stack: {', '.join(sorted(self.services))}",
            ) from None

    def link(self, name: str) -> LinkSpec:
        try:
            return self.links[name]
        except KeyError:
            raise StackFileError(
                f"no link named '{name}'",
                location=str(self.path),
                hint=f"links in this stack: {', '.join(sorted(self.links)) or 'none'}",
            ) from None

    def service_titled(self, title: str) -> ServiceSpec:
        """The service a feature means by ``title`` (its x-drill.title, or its name), case-insensitive."""
        wanted = title.strip().lower()
        for spec in self.services.values():
            if wanted in (spec.title.lower(), spec.name.lower()):
                return spec
        known = ", ".join(sorted(f"'{s.title or s.name}'" for s in self.services.values()))
        raise StackFileError(
            f"no service called '{title}' in stack '{self.name}'",
            location=str(self.path),
            hint=f"services are called: {known} (set x-drill.title on a service to name it)",
        )

    def services_with_role(self, role: str) -> tuple[ServiceSpec, ...]:
        return tuple(s for s in self.services.values() if s.role == role)

    def app_services(self) -> tuple[ServiceSpec, ...]:
        return self.services_with_role("app")

    def start_order(self) -> tuple[str, ...]:
        """Services in dependency order (``depends_on`` first)."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str, chain: tuple[str, ...]) -> None:
            if name in order:
                return
            if name in visiting:
                raise StackFileError(f"depends_on cycle: {' -> '.join((*chain, name))}", location=str(self.path))
            visiting.add(name)
            for dep in self.services[name].depends_on:
                visit(dep, (*chain, name))
            visiting.discard(name)
            order.append(name)

        for name in self.services:
            visit(name, ())
        return tuple(order)


# --- YAML with line numbers ---------------------------------------------------------------------


class _LineDict(dict[str, Any]):
    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    # Not libyaml's CSafeLoader, although ~4x faster: with it a stack file failed to parse in a second
    # pytest session of the same process ("could not determine a constructor for the tag None").
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    result = _LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[str(key)] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = key_node.start_mark.line + 1
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Reader:
    """Reads typed fields out of line-numbered mappings, raising errors with file:line and field path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def where(self, mapping: Any, key: str | None = None) -> str:
        line = 0
        if isinstance(mapping, _LineDict):
            line = mapping.key_lines.get(key, mapping.line) if key else mapping.line
        return f"{self.path}:{line}" if line else str(self.path)

    def fail(self, mapping: Any, key: str | None, field_path: str, problem: str, fix: str) -> StackFileError:
        return StackFileError(f"{field_path}: {problem}", location=self.where(mapping, key), hint=fix)

    def mapping(self, parent: Any, key: str, field_path: str, *, required: bool = True) -> _LineDict:
        value = parent.get(key) if isinstance(parent, dict) else None
        if value is None:
            if required:
                raise self.fail(parent, None, field_path, "is missing", f"add a '{key}:' mapping")
            empty = _LineDict()
            empty.line = parent.line if isinstance(parent, _LineDict) else 0
            empty.key_lines = {}
            return empty
        if not isinstance(value, dict):
            raise self.fail(parent, key, field_path, f"must be a mapping, got {type(value).__name__}",
                            f"write '{key}:' followed by indented 'name: value' lines")
        return value  # type: ignore[return-value]

    def string(self, parent: Any, key: str, field_path: str, default: str | None = None) -> str:
        value = parent.get(key, default)
        if value is None:
            raise self.fail(parent, None, field_path, "is missing", f"add '{key}: <text>'")
        if not isinstance(value, str) or not value:
            raise self.fail(parent, key, field_path, f"must be a non-empty string, got {value!r}",
                            f"write '{key}: <text>'")
        return value

    def port(self, parent: Any, key: str, field_path: str) -> int:
        value = parent.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise self.fail(
                parent, key, field_path, f"must be a port number 1-65535, got {value!r}", "write e.g. 'http: 8080'"
            )
        return value

    def str_list(self, parent: Any, key: str, field_path: str) -> tuple[str, ...]:
        value = parent.get(key)
        if isinstance(value, str):
            return tuple(value.split())
        if not isinstance(value, list) or not value:
            raise self.fail(parent, key, field_path, f"must be a non-empty list, got {value!r}",
                            f"write e.g. '{key}: [program, --option, value]'")
        return tuple(str(v) for v in value)


_PARSED: dict[tuple[Path, str], StackDescription] = {}


def load_stack(path: Path | str) -> StackDescription:
    """Parse ``path`` (a Compose file with ``x-drill`` fields) into a :class:`StackDescription`.

    A run reads its stack file several times (pre-flight, the plugin, the reports): the YAML is parsed
    once per path and content (the last one only is kept); any edit parses it anew.
    """
    path = Path(path).resolve()
    text = _read_stack_text(path)
    key = (path, text)
    if key not in _PARSED:
        parsed = _parse_stack(path, text)
        _PARSED.clear()
        _PARSED[key] = parsed
    return _PARSED[key]


def _read_stack_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StackFileError(
            "stack file not found", location=str(path), hint="pass --stack-file PATH or run from the project root"
        ) from None
    except OSError as exc:
        raise StackFileError(f"cannot read stack file: {exc.strerror}", location=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise StackFileError(
            f"not UTF-8 text (byte offset {exc.start})", location=str(path), hint="a stack file is YAML text"
        ) from exc
    return text


def _parse_stack(path: Path, text: str) -> StackDescription:
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise StackFileError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}", location=loc, hint="fix the YAML syntax"
        ) from exc
    r = _Reader(path)
    if not isinstance(doc, dict):
        raise StackFileError(
            f"must be a Compose mapping with 'services:', got {type(doc).__name__}", location=str(path),
            hint="a stack file is a docker-compose.yml with x-drill fields (see docs/stack-contract.md)",
        )
    top = r.mapping(doc, "x-drill", "x-drill")
    services_node = r.mapping(doc, "services", "services")
    services: dict[str, ServiceSpec] = {}
    for name, svc in services_node.items():
        fp = f"services.{name}"
        if not isinstance(svc, dict):
            raise r.fail(services_node, name, fp, "must be a mapping",
                         f"write '{name}:' with an indented x-drill: mapping")
        services[name] = _service(r, name, svc, fp)
    for spec in services.values():
        for dep in spec.depends_on:
            if dep not in services:
                raise StackFileError(
                    f"services.{spec.name}.depends_on: unknown service '{dep}'",
                    location=f"{path}:{spec.line}",
                    hint=f"known services: {', '.join(sorted(services))}",
                )
    links: dict[str, LinkSpec] = {}
    links_node = r.mapping(top, "links", "x-drill.links", required=False)
    for lname, link in links_node.items():
        fp = f"x-drill.links.{lname}"
        if not isinstance(link, dict):
            raise r.fail(links_node, lname, fp, "must be a mapping {from, to, port}",
                         f"write e.g. '{lname}: {{from: engine, to: broker, port: order}}'")
        source = r.string(link, "from", f"{fp}.from")
        target = r.string(link, "to", f"{fp}.to")
        port = r.string(link, "port", f"{fp}.port")
        for key, svc_name in (("from", source), ("to", target)):
            if svc_name not in services:
                raise r.fail(
                    link,
                    key,
                    f"{fp}.{key}",
                    f"unknown service '{svc_name}'",
                    f"use one of: {', '.join(sorted(services))}",
                )
        if port not in services[target].ports:
            raise r.fail(
                link,
                "port",
                f"{fp}.port",
                f"service '{target}' has no port named '{port}'",
                f"its ports: {', '.join(services[target].ports) or 'none'} (x-drill.ports)",
            )
        listen = r.port(link, "listen_port", f"{fp}.listen_port") if "listen_port" in link else None
        links[lname] = LinkSpec(lname, source, target, port, listen, getattr(link, "line", 0))
    workdir_service = r.string(top, "workdir", "x-drill.workdir")
    if workdir_service not in services:
        raise r.fail(top, "workdir", "x-drill.workdir", f"unknown service '{workdir_service}'",
                     f"use one of: {', '.join(sorted(services))}")
    operator = None
    if "operator" in top:
        op = r.mapping(top, "operator", "x-drill.operator")
        op_service = r.string(op, "service", "x-drill.operator.service")
        if op_service not in services:
            raise r.fail(op, "service", "x-drill.operator.service", f"unknown service '{op_service}'",
                         f"use one of: {', '.join(sorted(services))}")
        operator = OperatorSpec(op_service, r.str_list(op, "command", "x-drill.operator.command"))
    mode = None
    if "mode" in top:
        m = r.mapping(top, "mode", "x-drill.mode")
        mode = ModeSpec(r.string(m, "env", "x-drill.mode.env"), r.string(m, "default", "x-drill.mode.default", "lab"))
        if mode.default.strip().lower() not in MODES:
            raise r.fail(m, "default", "x-drill.mode.default", f"unknown mode {mode.default!r}",
                         f"use one of: {', '.join(MODES)} (a live default is refused unless --allow-live)")
    runbook = None
    if "runbook" in top:
        runbook = (path.parent / r.string(top, "runbook", "x-drill.runbook")).resolve()
        if not runbook.is_file():
            raise r.fail(top, "runbook", "x-drill.runbook", f"no runbook file at {runbook}",
                         "give the runbook's path relative to the stack file, e.g. docs/incident-response-runbook.md")
    attach = None
    if "attach" in top:  # a stack the harness did not start (harness.stack_attach)
        from harness.stack_attach import parse_attach

        attach, services = parse_attach(r, top, services_node, services, links)
    check_ports_and_links(path, services, links)
    check_dependency_cycles(path, services)
    return StackDescription(
        name=r.string(top, "name", "x-drill.name"),
        path=path,
        services=services,
        links=links,
        workdir_service=workdir_service,
        operator=operator,
        mode=mode,
        runbook=runbook,
        trading=parse_trading(r, top, services, workdir_service),
        attach=attach,
    )


def check_ports_and_links(path: Path, services: Mapping[str, ServiceSpec], links: Mapping[str, LinkSpec]) -> None:
    """Reject what parses but cannot run: one port number twice in a service, one listen_port on two
    links, a link from a service to itself. Each with file:line."""
    for spec in services.values():
        seen: dict[int, str] = {}
        for port_name, number in spec.ports.items():
            if number in seen:
                raise StackFileError(
                    f"services.{spec.name}.x-drill.ports: '{port_name}' and '{seen[number]}' are both port {number}",
                    location=f"{path}:{spec.line}",
                    hint="give each named port its own number",
                )
            seen[number] = port_name
    listening: dict[int, str] = {}
    for link in links.values():
        if link.source == link.target:
            raise StackFileError(
                f"x-drill.links.{link.name}: links '{link.source}' to itself",
                location=f"{path}:{link.line}",
                hint="a link runs from the service that connects (from) to the one it connects to (to)",
            )
        if link.listen_port is not None:
            if link.listen_port in listening:
                raise StackFileError(
                    f"x-drill.links.{link.name}.listen_port: {link.listen_port} is already the listen_port of "
                    f"link '{listening[link.listen_port]}'",
                    location=f"{path}:{link.line}",
                    hint="give each link its own listen_port",
                )
            listening[link.listen_port] = link.name


def check_dependency_cycles(path: Path, services: Mapping[str, ServiceSpec]) -> None:
    """A ``depends_on`` cycle can never start: reject it with the line of the service that closes it."""
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in chain:
            cycle = chain[chain.index(name):]
            raise StackFileError(
                f"services.{cycle[-1]}.depends_on: cycle {' -> '.join((*cycle, name))}",
                location=f"{path}:{services[cycle[-1]].line}",
                hint="a service cannot (indirectly) depend on itself; remove one depends_on entry of the cycle",
            )
        for dep in services[name].depends_on:
            visit(dep, (*chain, name))
        done.add(name)

    for name in services:
        visit(name, ())


def _service(r: _Reader, name: str, svc: dict[str, Any], fp: str) -> ServiceSpec:
    x = r.mapping(svc, "x-drill", f"{fp}.x-drill")
    role = x.get("role", "app")
    if role not in ROLES:
        raise r.fail(x, "role", f"{fp}.x-drill.role", f"unknown role {role!r}", f"use one of: {', '.join(ROLES)}")
    ports_node = r.mapping(x, "ports", f"{fp}.x-drill.ports", required=False)
    ports = {str(pn): r.port(ports_node, pn, f"{fp}.x-drill.ports.{pn}") for pn in ports_node}
    if not ports and "attach" in x:  # an attached service may name its ports by address only
        from harness.stack_attach import attach_ports

        ports = attach_ports(r, x, fp)
    health = None
    if "health" in x:
        h = r.mapping(x, "health", f"{fp}.x-drill.health")
        hport = r.string(h, "port", f"{fp}.x-drill.health.port")
        if hport not in ports:
            raise r.fail(
                h,
                "port",
                f"{fp}.x-drill.health.port",
                f"no port named '{hport}'",
                f"declare it under {fp}.x-drill.ports (has: {', '.join(ports) or 'none'})",
            )
        health = HealthSpec(hport, r.string(h, "path", f"{fp}.x-drill.health.path", "/health"))
    local = None
    if "local" in x:
        loc = r.mapping(x, "local", f"{fp}.x-drill.local")
        env_node = r.mapping(loc, "env", f"{fp}.x-drill.local.env", required=False)
        tmpl_node = r.mapping(loc, "templates", f"{fp}.x-drill.local.templates", required=False)
        local = LocalSpec(
            command=r.str_list(loc, "command", f"{fp}.x-drill.local.command"),
            env={str(k): str(v) for k, v in env_node.items()},
            templates={str(k): str(v) for k, v in tmpl_node.items()},
        )
    deps_raw = svc.get("depends_on", ())
    deps = tuple(deps_raw) if isinstance(deps_raw, (list, dict)) else ()
    log = x.get("log")
    return ServiceSpec(
        name=name,
        role=role,
        ports=ports,
        health=health,
        local=local,
        log=str(log) if log else None,
        depends_on=tuple(str(d) for d in deps),
        line=svc.line if isinstance(svc, _LineDict) else 0,
        title=str(x.get("title") or name),
    )


def render(text: str, values: Mapping[str, str], *, where: str) -> str:
    """Replace ``{{kind.a[.b]}}`` placeholders from ``values`` (keys like ``port.broker.http``).

    An unknown placeholder is an error naming it and ``where`` it was found, never left in place.
    """

    def sub(match: re.Match[str]) -> str:
        key = ".".join(p for p in match.groups() if p)
        if key not in values:
            known = ", ".join(sorted(k for k in values if k.startswith(match.group(1) + ".")))
            raise StackFileError(
                f"unknown placeholder {match.group(0)}", location=where, hint=f"known {match.group(1)}.*: {known}"
            )
        return values[key]

    return PLACEHOLDER.sub(sub, text)
