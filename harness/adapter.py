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
"""

from __future__ import annotations

import importlib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.errors import StackFileError

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

    def describe(self) -> str:
        return f"GET {self.url}" if self.url else f"GET {self.service}:{self.port}{self.path}"


@dataclass(frozen=True)
class CommandSource:
    command: str  # an operator command line that prints JSON

    def describe(self) -> str:
        return f"`{self.command}`"


Source = FileSource | HttpSource | CommandSource


@dataclass(frozen=True)
class Reading:
    """One declared reading: a source, a JSON pointer into it, and (for records) field names."""

    name: str  # x-drill.trading.<name>: for messages
    source: Source
    where: str  # file:line of the declaration
    pointer: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    csv: bool = False
    reason: str | None = None  # kill_switch: pointer of the reason text
    equals: Any = None  # kill_switch: "active" when the value equals this (default: the value is true)

    def describe(self) -> str:
        return self.source.describe() + (f" at {self.pointer}" if self.pointer else "")


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

    def marker(self, name: str) -> str:
        return self._need(self.markers, "markers", name, MARKERS)

    def metric(self, name: str) -> str:
        return self._need(self.metrics, "metrics", name, METRICS)

    def command(self, name: str) -> str:
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
        commands=_table(r, node, "commands", fp, COMMANDS),
        faults=_endpoints(r, node, fp, services),
        adapter=adapter,
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
    allowed = ["file", "http", "url", "command", "pointer"]
    if csv_ok:
        allowed.append("csv")
    if fields:
        allowed.append("fields")
    allowed += list(extra)
    _only(r, node, rfp, tuple(allowed))
    given = [k for k in ("file", "http", "url", "command", "csv") if k in node]
    if len(given) != 1:
        kinds = "file, http, url, command" + (", csv" if csv_ok else "")
        raise r.fail(node, None, rfp, f"needs exactly one source ({kinds}), got {len(given)}",
                     "e.g. 'file: state/holdings.json' or 'http: {service: engine, port: http, "
                     "path: /positions}'")
    kind = given[0]
    source: Source
    if kind in ("file", "csv"):
        source = FileSource(r.string(node, kind, f"{rfp}.{kind}"))
    elif kind == "command":
        source = CommandSource(r.string(node, "command", f"{rfp}.command"))
    elif kind == "url":
        url = r.string(node, "url", f"{rfp}.url")
        if not url.startswith(("http://", "https://")):
            raise r.fail(node, "url", f"{rfp}.url", f"must be an http(s) URL, got {url!r}", "")
        source = HttpSource(None, None, "", url=url)
    else:
        http = r.mapping(node, "http", f"{rfp}.http")
        _only(r, http, f"{rfp}.http", ("service", "port", "path"))
        service, port = _service_port(r, http, f"{rfp}.http", services)
        source = HttpSource(service, port, _path(r, http, f"{rfp}.http"))
    pointer = str(node.get("pointer", "") or "")
    if pointer and not pointer.startswith("/"):
        raise r.fail(node, "pointer", f"{rfp}.pointer", f"a JSON pointer starts with '/', got {pointer!r}",
                     "write e.g. /positions (RFC 6901), or leave it out for the whole document")
    names: dict[str, str] = {}
    if fields:
        fnode = r.mapping(node, "fields", f"{rfp}.fields", required=fields_required or kind == "csv")
        for fname in fnode:
            if fname not in fields:
                raise r.fail(fnode, fname, f"{rfp}.fields.{fname}", "unknown field",
                             f"fields known here: {', '.join(fields)}")
            names[str(fname)] = r.string(fnode, fname, f"{rfp}.fields.{fname}")
        if fields_required or kind == "csv":
            missing = [f for f in fields if f not in names and f not in ("time", "side", "status", "id", "filled")]
            if missing:
                raise r.fail(fnode, None, f"{rfp}.fields", f"missing {', '.join(missing)}",
                             f"name the column/field for each of: {', '.join(missing)}")
    reason = r.string(node, "reason", f"{rfp}.reason") if "reason" in node else None
    return Reading(
        name=rfp.removeprefix("x-drill.trading."),
        source=source,
        where=r.where(node),
        pointer=pointer,
        fields=names,
        csv=kind == "csv",
        reason=reason,
        equals=node.get("equals"),
    )


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
