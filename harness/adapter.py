"""The trading adapter: where a stack keeps the truth a drill reads, declared in ``x-drill.trading``.

The harness knows no stack. What "the engine's positions", "the orders journal", "the kill switch",
"the SLA report" and "the broker's truth" are, where they live, which log lines and metrics mean
what, and which operator commands a runbook uses, is declared by the stack file and parsed here,
once, into frozen dataclasses:

.. code-block:: yaml

    x-drill:
      trading:
        engine: engine                           # service whose state this is (default: x-drill.workdir)
        connected:   {http: {service: engine, port: http, path: /health}, pointer: /checks/broker/ok}
        positions:   {file: state/positions.json, pointer: /positions}
        kill_switch: {file: state/kill_switch.json, pointer: /active, reason: /reason}
        sla:         {file: state/data_sla.json, pointer: /status}
        orders:                                   # the engine's own orders journal
          csv: state/orders/*.csv
          fields: {key: client_order_id, side: side, qty: qty, symbol: symbol, time: ts}
        venue:                                    # the broker's / venue's truth
          orders:
            http: {service: broker, port: admin, path: /orders}
            pointer: /orders
            fields: {key: client_order_id, id: order_id, symbol: symbol, qty: qty, filled: filled, status: status}
        markers: {kill_switch_activated: "kill switch tripped"}    # log lines, in the engine's log
        metrics: {mode: 'engine_mode{mode="{mode}"}'}                # PromQL templates
        commands: {reconcile: "engine-ctl reconcile"}                # operator command templates
        faults:  {feed: {service: feed, port: http, path: /faults}}           # fault admin endpoints
        adapter: team_drills.truth:FixDropCopy    # optional: readings none of the above can reach

A *reading* comes from exactly one source: ``file`` (relative to the engine's working directory,
or absolute), ``http`` (``{service, port, path}`` of a stack service, or ``url``), ``command`` (an
operator command line that prints JSON) or, for journals, ``csv`` (a glob). ``pointer`` is an RFC
6901 JSON pointer into the document (``""``: the whole document). Records (orders, list-shaped
positions) name their ``fields``. A reading the stack does not declare is answered by the
``adapter`` class's method of the same name, if it has one; otherwise a step that needs it fails
naming the field to add. How readings are *made* is in :mod:`harness.trading`.

Beyond one plain source, a reading may:

* log in: ``auth: {basic: {user: u, password: {env: VAR}}}`` or ``auth: {bearer: {env: VAR}}`` on an
  ``http``/``url`` source (a value is literal text or ``{env: NAME}``, read when the request is made);
* flatten records nested in records: a pointer segment ``*`` stands for every element of a list (or
  value of an object), so ``/trades/*/orders/*`` yields each order of each trade; a field written
  ``../name`` is read from the record one ``*`` up (``../../name`` two up);
* combine sources: ``sources: [{http: ..., pointer: ...}, {url: ..., pointer: ...}]`` (record readings
  only): the records of every source, in order, read with the reading's one ``fields``.

An operator command is a shell template (``"engine-ctl reconcile"``) or an HTTP call:
``{method: POST, http: {service, port, path} | url: ..., auth: ..., body: {...}}``, with
``{placeholders}`` filled in the path/URL (URL-quoted) and in the body's strings.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from harness.errors import InputError, StackFileError

#: Log lines a step looks for in the engine's log, by meaning.
MARKERS: Mapping[str, str] = {
    "kill_switch_activated": "the kill switch tripped (puts time-to-kill on the timeline)",
    "connection_timeout": "the engine saw its broker/venue connection time out",
    "reconnect_gave_up": "the engine stopped reconnecting and asks for manual intervention",
}
#: PromQL templates by meaning; ``{mode}`` is filled in by the step.
METRICS: Mapping[str, str] = {
    "mode": "1 when the engine runs in {mode} mode (e.g. 'engine_mode{{mode=\"{mode}\"}}')",
}
#: Operator command templates by meaning; ``{approver}``, ``{reason}``, ``{target}`` are filled in (shell-quoted).
COMMANDS: Mapping[str, str] = {
    "reconcile": "exit 0 when the engine's positions equal the venue's, 1 on a mismatch",
    "reset_kill_switch": "reset the kill switch ({approver}, {reason})",
    "trip_kill_switch": "trip the kill switch by hand ({reason})",
    "reconnect": "reconnect to the broker/venue",
    "refetch_data": "re-fetch market data",
    "validate_data": "validate market data and write the SLA report",
    "accept_venue_positions": "accept the venue's positions as the truth ({approver})",
    "order_duplicates": "exit 0 when no order key appears twice, 1 otherwise",
    "promote": "promote the engine to another mode ({target}); refused with a non-zero exit when not allowed",
    "reload_trade": "re-read one of the engine's trades/orders ({id}) from the venue so the engine's record matches it",
}
#: Admin endpoints the fault kinds of :mod:`harness.faults.trading` and :mod:`harness.faults.data` call.
FAULT_ENDPOINTS: Mapping[str, str] = {
    "feed": "market-data feed faults: POST {kind, symbol?, bars?, pct?} -> {id}; DELETE <path>/<id>",
    "symbols": "GET: the instruments the feed serves (a JSON list, or {symbols: [...]})",
    "position": "venue positions: POST {symbol, qty}; DELETE <path>/<symbol>",
    "reject_rate": "venue reject rate: POST {rate} -> {previous}",
    "fill_latency": "venue fill latency: POST {ms} -> {previous}",
}
ORDER_FIELDS = ("key", "side", "qty", "symbol", "time")
VENUE_ORDER_FIELDS = ("key", "id", "symbol", "qty", "filled", "status")
POSITION_FIELDS = ("symbol", "qty")
TRADING_KEYS = (
    "engine", "connected", "positions", "kill_switch", "sla", "orders", "venue", "markers", "metrics", "commands",
    "faults", "adapter",
)


WILDCARD = "*"  # a pointer segment standing for every element of a list / value of an object
PARENT = "../"  # a field name prefix: read the field from the record one wildcard up
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Secret:
    """A credential: literal text in the stack file, or the name of an environment variable."""

    value: str | None = None
    env: str | None = None

    def resolve(self, what: str) -> str:
        if self.env is None:
            return self.value or ""
        found = os.environ.get(self.env)
        if found is None:
            raise InputError(
                f"{what}: the environment variable {self.env} is not set",
                hint=f"export {self.env}=... before the drill (the stack file reads the credential from it)",
            )
        return found


@dataclass(frozen=True)
class HttpAuth:
    """HTTP authentication of a reading or an HTTP command: ``basic`` (user, password) or ``bearer`` (token)."""

    scheme: str  # "basic" | "bearer"
    secret: Secret  # the password or the token
    user: Secret | None = None

    def requests_auth(self, what: str) -> tuple[str, str] | None:
        """``(user, password)`` for basic auth, None for bearer (see :meth:`headers`)."""
        if self.scheme != "basic" or self.user is None:
            return None
        return self.user.resolve(what), self.secret.resolve(what)

    def headers(self, what: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret.resolve(what)}"} if self.scheme == "bearer" else {}


@dataclass(frozen=True)
class FileSource:
    path: str  # relative to the engine's working directory, or absolute; a glob for csv

    def describe(self) -> str:
        return f"file {self.path}"


@dataclass(frozen=True)
class HttpSource:
    service: str | None  # a stack service (its host address comes from the backend) ...
    port: str | None
    path: str
    url: str | None = None  # ... or a fixed URL (attach to a team's environment)
    auth: HttpAuth | None = None

    def describe(self, method: str = "GET") -> str:
        login = f" (as {self.auth.scheme})" if self.auth else ""
        return (f"{method} {self.url}" if self.url else f"{method} {self.service}:{self.port}{self.path}") + login


@dataclass(frozen=True)
class CommandSource:
    command: str  # an operator command line that prints JSON

    def describe(self) -> str:
        return f"`{self.command}`"


Source = FileSource | HttpSource | CommandSource


@dataclass(frozen=True)
class Part:
    """One source of a reading and the JSON pointer into its document (``*`` segments: every element)."""

    source: Source
    pointer: str
    where: str

    @property
    def wildcards(self) -> int:
        return self.pointer.split("/")[1:].count(WILDCARD) if self.pointer else 0

    def describe(self) -> str:
        return self.source.describe() + (f" at {self.pointer}" if self.pointer else "")


@dataclass(frozen=True)
class Reading:
    """One declared reading: its source(s), a JSON pointer into each, and (for records) field names."""

    name: str  # x-drill.trading.<name>: for messages
    parts: tuple[Part, ...]  # one source, or several whose records are combined (``sources:``)
    where: str  # file:line of the declaration
    fields: Mapping[str, str] = field(default_factory=dict)
    csv: bool = False
    reason: str | None = None  # kill_switch: pointer of the reason text
    equals: Any = None  # kill_switch: "active" when the value equals this (default: the value is true)

    @property
    def source(self) -> Source:
        return self.parts[0].source

    @property
    def pointer(self) -> str:
        return self.parts[0].pointer

    def describe(self) -> str:
        return " + ".join(p.describe() for p in self.parts)


@dataclass(frozen=True)
class HttpCommand:
    """An operator command that is an HTTP call: method, address (a template), login, JSON body template."""

    name: str
    method: str
    target: HttpSource  # path / url may hold {placeholders}
    where: str
    body: Any = None  # JSON; {placeholders} are filled in its strings

    def describe(self) -> str:
        return self.target.describe(self.method)

    def filled(self, **values: str) -> tuple[HttpSource, Any]:
        """The address (placeholders URL-quoted) and the body (placeholders in strings) for ``values``."""
        try:
            path = self.target.path.format(**{k: quote(v, safe="") for k, v in values.items()})
            url = (self.target.url.format(**{k: quote(v, safe="") for k, v in values.items()})
                   if self.target.url else None)
            body = _fill(self.body, values)
        except (KeyError, IndexError, ValueError) as exc:
            raise StackFileError(
                f"x-drill.trading.commands.{self.name}: cannot fill in {self.describe()!r} "
                f"({type(exc).__name__}: {exc})",
                location=self.where,
                hint=f"the placeholders this command may use: {', '.join('{' + k + '}' for k in values) or 'none'}",
            ) from None
        return HttpSource(self.target.service, self.target.port, path, url=url, auth=self.target.auth), body


def _fill(template: Any, values: Mapping[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    return template


@dataclass(frozen=True)
class Endpoint:
    service: str
    port: str
    path: str
    where: str


@dataclass(frozen=True)
class TradingSpec:
    """``x-drill.trading`` parsed: every reading optional; a step needing a missing one fails loudly."""

    engine: str
    where: str
    positions: Reading | None = None
    connected: Reading | None = None  # true while the engine is connected to the venue
    kill_switch: Reading | None = None
    sla: Reading | None = None
    orders: Reading | None = None
    venue_orders: Reading | None = None
    venue_positions: Reading | None = None
    markers: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, str] = field(default_factory=dict)
    commands: Mapping[str, str] = field(default_factory=dict)
    faults: Mapping[str, Endpoint] = field(default_factory=dict)
    adapter: str | None = None  # "package.module:Class"
    http_commands: Mapping[str, HttpCommand] = field(default_factory=dict)  # commands that are HTTP calls

    def is_http_command(self, name: str) -> bool:
        return name in self.http_commands

    def http_command(self, name: str) -> HttpCommand:
        if name not in self.http_commands:
            self.command(name)  # not declared at all: the usual "add it" error
            raise StackFileError(
                f"x-drill.trading.commands.{name} is a shell command, not an HTTP call",
                location=self.where, hint="run it as an operator command line",
            )
        return self.http_commands[name]

    def marker(self, name: str) -> str:
        return self._need(self.markers, "markers", name, MARKERS)

    def metric(self, name: str) -> str:
        return self._need(self.metrics, "metrics", name, METRICS)

    def command(self, name: str) -> str:
        if name in self.http_commands:
            raise StackFileError(
                f"x-drill.trading.commands.{name} is an HTTP call ({self.http_commands[name].describe()}), "
                "not a command line",
                location=self.http_commands[name].where,
                hint="run it with harness.trading.run_stack_command(drill, name, ...)",
            )
        return self._need(self.commands, "commands", name, COMMANDS)

    def command_line(self, name: str, **values: str) -> str:
        """The operator command ``name`` with ``values`` shell-quoted into its ``{placeholders}``."""
        template = self.command(name)
        try:
            return template.format(**{k: shlex.quote(v) for k, v in values.items()})
        except (KeyError, IndexError, ValueError) as exc:
            raise StackFileError(
                f"x-drill.trading.commands.{name}: cannot fill in {template!r} ({type(exc).__name__}: {exc})",
                location=self.where,
                hint=f"the placeholders this command may use: {', '.join('{' + k + '}' for k in values) or 'none'}",
            ) from None

    def fault_endpoint(self, name: str) -> Endpoint:
        if name not in self.faults:
            raise StackFileError(
                f"x-drill.trading.faults.{name} is not declared, and this drill needs it "
                f"({FAULT_ENDPOINTS[name]})",
                location=self.where,
                hint=f"add e.g. 'faults: {{{name}: {{service: <svc>, port: <port name>, path: /...}}}}' "
                f"under x-drill.trading",
            )
        return self.faults[name]

    def _need(self, table: Mapping[str, str], kind: str, name: str, meanings: Mapping[str, str]) -> str:
        if name not in table:
            raise StackFileError(
                f"x-drill.trading.{kind}.{name} is not declared, and this drill needs it ({meanings[name]})",
                location=self.where,
                hint=f"add '{kind}: {{{name}: ...}}' under x-drill.trading in the stack file",
            )
        return table[name]


def empty_spec(engine: str, where: str) -> TradingSpec:
    return TradingSpec(engine=engine, where=where)


class FieldReader(Protocol):
    """What the stack loader's line-aware reader offers (see :mod:`harness.stack`)."""

    def where(self, mapping: Any, key: str | None = None) -> str: ...

    def fail(self, mapping: Any, key: str | None, field_path: str, problem: str, fix: str) -> StackFileError: ...

    def mapping(self, parent: Any, key: str, field_path: str, *, required: bool = True) -> Any: ...

    def string(self, parent: Any, key: str, field_path: str, default: str | None = None) -> str: ...


def parse_trading(
    r: FieldReader, top: Any, services: Mapping[str, Any], default_engine: str
) -> TradingSpec:
    """Parse ``x-drill.trading`` (``top`` is the ``x-drill`` mapping); absent: an empty spec."""
    fp = "x-drill.trading"
    if "trading" not in top:
        return empty_spec(default_engine, r.where(top))
    node = r.mapping(top, "trading", fp)
    _only(r, node, fp, TRADING_KEYS)
    engine = r.string(node, "engine", f"{fp}.engine", default_engine)
    if engine not in services:
        raise r.fail(node, "engine", f"{fp}.engine", f"unknown service '{engine}'",
                     f"use one of: {', '.join(sorted(services))}")
    venue = r.mapping(node, "venue", f"{fp}.venue", required=False)
    _only(r, venue, f"{fp}.venue", ("orders", "positions"))
    adapter = None
    if "adapter" in node:
        adapter = r.string(node, "adapter", f"{fp}.adapter")
        if ":" not in adapter:
            raise r.fail(node, "adapter", f"{fp}.adapter", f"must be 'package.module:Class', got {adapter!r}",
                         "name the module and the class, e.g. team_drills.truth:FixDropCopy")
    shell_commands, http_commands = _commands(r, node, fp, services)
    return TradingSpec(
        engine=engine,
        where=r.where(node),
        positions=_reading(r, node, "positions", fp, services, fields=POSITION_FIELDS, fields_required=False),
        kill_switch=_reading(r, node, "kill_switch", fp, services, extra=("reason", "equals")),
        connected=_reading(r, node, "connected", fp, services, extra=("equals",)),
        sla=_reading(r, node, "sla", fp, services),
        orders=_reading(r, node, "orders", fp, services, fields=ORDER_FIELDS, fields_required=True, csv_ok=True),
        venue_orders=_reading(r, venue, "orders", f"{fp}.venue", services, fields=VENUE_ORDER_FIELDS,
                              fields_required=True),
        venue_positions=_reading(r, venue, "positions", f"{fp}.venue", services, fields=POSITION_FIELDS,
                                 fields_required=False),
        markers=_table(r, node, "markers", fp, MARKERS),
        metrics=_table(r, node, "metrics", fp, METRICS),
        commands=shell_commands,
        faults=_endpoints(r, node, fp, services),
        adapter=adapter,
        http_commands=http_commands,
    )


def _only(r: FieldReader, node: Any, fp: str, allowed: tuple[str, ...]) -> None:
    for key in node:
        if key not in allowed:
            raise r.fail(node, key, f"{fp}.{key}", "unknown field", f"fields allowed here: {', '.join(allowed)}")


def _table(r: FieldReader, node: Any, key: str, fp: str, known: Mapping[str, str]) -> dict[str, str]:
    table = r.mapping(node, key, f"{fp}.{key}", required=False)
    out: dict[str, str] = {}
    for name in table:
        if name not in known:
            listed = "; ".join(f"{k}: {v}" for k, v in known.items())
            raise r.fail(table, name, f"{fp}.{key}.{name}", "unknown name", f"names known here: {listed}")
        out[str(name)] = r.string(table, name, f"{fp}.{key}.{name}")
    return out


def _endpoints(r: FieldReader, node: Any, fp: str, services: Mapping[str, Any]) -> dict[str, Endpoint]:
    table = r.mapping(node, "faults", f"{fp}.faults", required=False)
    out: dict[str, Endpoint] = {}
    for name in table:
        efp = f"{fp}.faults.{name}"
        if name not in FAULT_ENDPOINTS:
            raise r.fail(table, name, efp, "unknown fault endpoint",
                         f"names known here: {', '.join(FAULT_ENDPOINTS)}")
        ep = r.mapping(table, name, efp)
        _only(r, ep, efp, ("service", "port", "path"))
        service, port = _service_port(r, ep, efp, services)
        out[str(name)] = Endpoint(service, port, _path(r, ep, efp), r.where(ep))
    return out


def _service_port(r: FieldReader, node: Any, fp: str, services: Mapping[str, Any]) -> tuple[str, str]:
    service = r.string(node, "service", f"{fp}.service")
    if service not in services:
        raise r.fail(node, "service", f"{fp}.service", f"unknown service '{service}'",
                     f"use one of: {', '.join(sorted(services))}")
    port = r.string(node, "port", f"{fp}.port")
    ports = services[service].ports
    if port not in ports:
        raise r.fail(node, "port", f"{fp}.port", f"service '{service}' has no port named '{port}'",
                     f"its ports: {', '.join(ports) or 'none'} (x-drill.ports)")
    return service, port


def _path(r: FieldReader, node: Any, fp: str) -> str:
    path = r.string(node, "path", f"{fp}.path")
    if not path.startswith("/"):
        raise r.fail(node, "path", f"{fp}.path", f"must start with '/', got {path!r}",
                     "write the path part of the URL, e.g. /orders")
    return path


def _commands(
    r: FieldReader, node: Any, fp: str, services: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, HttpCommand]]:
    """``commands``: each a shell template (a string) or an HTTP call (a mapping)."""
    table = r.mapping(node, "commands", f"{fp}.commands", required=False)
    shell: dict[str, str] = {}
    http: dict[str, HttpCommand] = {}
    for name in table:
        cfp = f"{fp}.commands.{name}"
        if name not in COMMANDS:
            listed = "; ".join(f"{k}: {v}" for k, v in COMMANDS.items())
            raise r.fail(table, name, cfp, "unknown name", f"names known here: {listed}")
        if not isinstance(table.get(name), dict):
            shell[str(name)] = r.string(table, name, cfp)
            continue
        cmd = r.mapping(table, name, cfp)
        _only(r, cmd, cfp, ("method", "http", "url", "auth", "body"))
        method = r.string(cmd, "method", f"{cfp}.method", "POST").upper()
        if method not in HTTP_METHODS:
            raise r.fail(cmd, "method", f"{cfp}.method", f"unknown HTTP method {method!r}",
                         f"use one of: {', '.join(HTTP_METHODS)}")
        body = cmd.get("body")
        if body is not None and not isinstance(body, dict | list):
            raise r.fail(cmd, "body", f"{cfp}.body", f"must be a JSON object or list, got {type(body).__name__}",
                         "write e.g. 'body: {tradeid: \"{id}\"}'")
        target = _http_target(r, cmd, cfp, services, kinds=("http", "url"))
        if target is None:
            raise r.fail(cmd, None, cfp, "an HTTP command needs 'http: {service, port, path}' or 'url:'",
                         "e.g. '{method: POST, http: {service: engine, port: http, path: /api/reload/{id}}}'")
        http[str(name)] = HttpCommand(str(name), method, target, r.where(cmd), _plain(body))
    return shell, http


def _plain(value: Any) -> Any:
    """The loader's line-aware containers as plain JSON values (a body is sent as JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _secret(r: FieldReader, parent: Any, key: str, fp: str) -> Secret:
    value = parent.get(key)
    if isinstance(value, str) and value:
        return Secret(value=value)
    if isinstance(value, dict):
        _only(r, value, fp, ("env",))
        name = r.string(value, "env", f"{fp}.env")
        if not _ENV_NAME.match(name):
            raise r.fail(value, "env", f"{fp}.env", f"not an environment variable name: {name!r}",
                         "write e.g. {env: ENGINE_API_PASSWORD}")
        return Secret(env=name)
    raise r.fail(parent, key, fp, f"must be text or {{env: NAME}}, got {value!r}",
                 "write the value, or {env: NAME} to read it from an environment variable")


def _auth(r: FieldReader, node: Any, fp: str) -> HttpAuth | None:
    if "auth" not in node:
        return None
    afp = f"{fp}.auth"
    auth = r.mapping(node, "auth", afp)
    _only(r, auth, afp, ("basic", "bearer"))
    if len(auth) != 1:
        raise r.fail(node, "auth", afp, f"needs exactly one of basic, bearer; got {len(auth)}",
                     "e.g. 'auth: {basic: {user: me, password: {env: API_PASSWORD}}}' or "
                     "'auth: {bearer: {env: API_TOKEN}}'")
    if "bearer" in auth:
        return HttpAuth("bearer", _secret(r, auth, "bearer", f"{afp}.bearer"))
    basic = r.mapping(auth, "basic", f"{afp}.basic")
    _only(r, basic, f"{afp}.basic", ("user", "password"))
    for key in ("user", "password"):
        if key not in basic:
            raise r.fail(basic, None, f"{afp}.basic", f"missing {key}",
                         "write '{user: <name>, password: <text or {env: NAME}>}'")
    return HttpAuth("basic", _secret(r, basic, "password", f"{afp}.basic.password"),
                    user=_secret(r, basic, "user", f"{afp}.basic.user"))


def _http_target(
    r: FieldReader, node: Any, fp: str, services: Mapping[str, Any], *, kinds: tuple[str, ...]
) -> HttpSource | None:
    """The ``http``/``url`` source of ``node`` with its ``auth``; None when it has neither."""
    auth = _auth(r, node, fp)
    if "url" in node and "url" in kinds:
        url = r.string(node, "url", f"{fp}.url")
        if not url.startswith(("http://", "https://")):
            raise r.fail(node, "url", f"{fp}.url", f"must be an http(s) URL, got {url!r}", "")
        return HttpSource(None, None, "", url=url, auth=auth)
    if "http" in node:
        http = r.mapping(node, "http", f"{fp}.http")
        _only(r, http, f"{fp}.http", ("service", "port", "path"))
        service, port = _service_port(r, http, f"{fp}.http", services)
        return HttpSource(service, port, _path(r, http, f"{fp}.http"), auth=auth)
    if auth is not None:
        raise r.fail(node, "auth", f"{fp}.auth", "only an http or url source can log in",
                     "remove 'auth', or read the value over http/url")
    return None


def _part(
    r: FieldReader, node: Any, fp: str, services: Mapping[str, Any], *, csv_ok: bool, records: bool
) -> Part:
    """One source of a reading (file, http, url, command or csv) and its pointer."""
    kinds = ("file", "http", "url", "command") + (("csv",) if csv_ok else ())
    given = [k for k in kinds if k in node]
    if len(given) != 1:
        raise r.fail(node, None, fp, f"needs exactly one source ({', '.join(kinds)}), got {len(given)}",
                     "e.g. 'file: state/holdings.json' or 'http: {service: engine, port: http, "
                     "path: /positions}'")
    kind = given[0]
    source: Source
    if kind in ("file", "csv"):
        source = FileSource(r.string(node, kind, f"{fp}.{kind}"))
    elif kind == "command":
        source = CommandSource(r.string(node, "command", f"{fp}.command"))
    else:
        target = _http_target(r, node, fp, services, kinds=(kind,))
        assert target is not None
        source = target
    if "auth" in node and kind not in ("http", "url"):
        raise r.fail(node, "auth", f"{fp}.auth", "only an http or url source can log in",
                     "remove 'auth', or read the value over http/url")
    pointer = str(node.get("pointer", "") or "")
    if pointer and not pointer.startswith("/"):
        raise r.fail(node, "pointer", f"{fp}.pointer", f"a JSON pointer starts with '/', got {pointer!r}",
                     "write e.g. /positions (RFC 6901), or leave it out for the whole document")
    part = Part(source, pointer, r.where(node))
    if part.wildcards and not records:
        raise r.fail(node, "pointer", f"{fp}.pointer",
                     f"a '{WILDCARD}' segment yields several records; this reading is one value",
                     "point at the one value (only orders, venue.orders, positions and venue.positions "
                     "read records)")
    return part


def _reading(
    r: FieldReader,
    parent: Any,
    key: str,
    fp: str,
    services: Mapping[str, Any],
    *,
    fields: tuple[str, ...] = (),
    fields_required: bool = False,
    csv_ok: bool = False,
    extra: tuple[str, ...] = (),
) -> Reading | None:
    if key not in parent:
        return None
    rfp = f"{fp}.{key}"
    node = r.mapping(parent, key, rfp)
    allowed = ["file", "http", "url", "command", "pointer", "auth"]
    if csv_ok:
        allowed.append("csv")
    if fields:
        allowed += ["fields", "sources"]
    allowed += list(extra)
    _only(r, node, rfp, tuple(allowed))
    records = bool(fields)
    if "sources" in node:
        parts = _sources(r, node, rfp, services)
    else:
        parts = (_part(r, node, rfp, services, csv_ok=csv_ok, records=records),)
    is_csv = "csv" in node
    names: dict[str, str] = {}
    if fields:
        fnode = r.mapping(node, "fields", f"{rfp}.fields", required=fields_required or is_csv)
        for fname in fnode:
            if fname not in fields:
                raise r.fail(fnode, fname, f"{rfp}.fields.{fname}", "unknown field",
                             f"fields known here: {', '.join(fields)}")
            names[str(fname)] = r.string(fnode, fname, f"{rfp}.fields.{fname}")
            ups = _ups(names[str(fname)])
            short = [p for p in parts if ups > max(p.wildcards - 1, 0)]
            if ups and short:
                raise r.fail(fnode, fname, f"{rfp}.fields.{fname}",
                             f"'{names[str(fname)]}' reaches {ups} record(s) up, but the pointer "
                             f"{short[0].pointer!r} nests only {max(short[0].wildcards - 1, 0)} deep",
                             f"each '{PARENT}' needs one more '{WILDCARD}' segment above the record "
                             "(e.g. /trades/*/orders/* lets an order read ../pair of its trade)")
        if fields_required or is_csv:
            missing = [f for f in fields if f not in names and f not in ("time", "side", "status", "id", "filled")]
            if missing:
                raise r.fail(fnode, None, f"{rfp}.fields", f"missing {', '.join(missing)}",
                             f"name the column/field for each of: {', '.join(missing)}")
    reason = r.string(node, "reason", f"{rfp}.reason") if "reason" in node else None
    return Reading(
        name=rfp.removeprefix("x-drill.trading."),
        parts=parts,
        where=r.where(node),
        fields=names,
        csv=is_csv,
        reason=reason,
        equals=node.get("equals"),
    )


def _sources(r: FieldReader, node: Any, rfp: str, services: Mapping[str, Any]) -> tuple[Part, ...]:
    one = [k for k in ("file", "http", "url", "command", "csv", "pointer", "auth") if k in node]
    if one:
        raise r.fail(node, one[0], f"{rfp}.{one[0]}", "give either one source or 'sources:', not both",
                     "move it into an item of 'sources:'")
    items = node.get("sources")
    if not isinstance(items, list) or not items:
        raise r.fail(node, "sources", f"{rfp}.sources", f"must be a non-empty list of sources, got {items!r}",
                     "e.g. 'sources: [{http: {service: engine, port: http, path: /open}, pointer: /*}, ...]'")
    parts = []
    for i, item in enumerate(items):
        ifp = f"{rfp}.sources[{i}]"
        if not isinstance(item, dict):
            raise r.fail(node, "sources", ifp, f"must be a mapping, got {type(item).__name__}",
                         "each item is a source with its pointer, e.g. {file: a.json, pointer: /orders}")
        _only(r, item, ifp, ("file", "http", "url", "command", "pointer", "auth"))
        parts.append(_part(r, item, ifp, services, csv_ok=False, records=True))
    return tuple(parts)


def _ups(name: str) -> int:
    """How many records up a field name reaches (``../../x``: 2)."""
    n = 0
    while name.startswith(PARENT):
        name, n = name[len(PARENT):], n + 1
    return n


def load_adapter_class(spec: TradingSpec) -> type[Any] | None:
    """Import ``x-drill.trading.adapter`` (``package.module:Class``), or None when none is declared."""
    if spec.adapter is None:
        return None
    module_name, _, class_name = spec.adapter.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of the team's module is their input problem
        raise StackFileError(
            f"x-drill.trading.adapter: cannot import module '{module_name}': {type(exc).__name__}: {exc}",
            location=spec.where,
            hint="make the module importable from the drill project (its steps package or PYTHONPATH)",
        ) from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise StackFileError(
            f"x-drill.trading.adapter: module '{module_name}' has no class '{class_name}'",
            location=spec.where,
            hint="name a class defined in that module",
        )
    return cls
