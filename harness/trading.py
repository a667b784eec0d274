"""Trading truth, read from outside through the stack's declared adapter (``x-drill.trading``).

:class:`TradingTruth` makes the readings that :mod:`harness.adapter` declares: the engine's
positions, its orders journal, the kill-switch state, the SLA report, and the venue's (broker's)
own orders and positions. A reading that cannot be made raises :class:`ReadingUnavailable`, which
says which declaration was read, what was observed and what to change; it is never turned into an
empty result, so "no acknowledged order was lost" cannot pass without having looked. The probes
below wrap readings for :func:`harness.waiting.wait_until`: inside a wait an unavailable reading is
an observation that is not (yet) satisfied, and its reason is what the timeout reports.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.adapter import (
    PARENT,
    WILDCARD,
    CommandSource,
    FileSource,
    HttpSource,
    Part,
    Reading,
    TradingSpec,
    load_adapter_class,
)
from harness.backends.base import CommandResult
from harness.clock import EventKind, parse_timestamp
from harness.errors import InputError, ProbeError, WaitTimeout
from harness.probes._http import HttpReply, Unreachable, http_get
from harness.probes.base import Probe
from harness.waiting import Observation

if TYPE_CHECKING:
    import requests

    from harness.backends.base import Backend


class ReadingUnavailable(ProbeError):
    """A declared reading could not be made (source unreachable, not JSON, pointer not found...)."""


class Check(Probe):
    """A probe from a function: for conditions composed of several readings."""

    name = "check"

    def __init__(self, description: str, fn: Callable[[], Observation]) -> None:
        self.description = description
        self.fn = fn

    def __call__(self) -> Observation:
        try:
            return self.fn()
        except ReadingUnavailable as exc:
            return Observation(False, exc.message)

    def describe(self) -> str:
        return self.description


@dataclass(frozen=True)
class OrderRow:
    """One row of the engine's orders journal."""

    key: str
    symbol: str
    side: str
    qty: str
    ts: str
    source: str


@dataclass(frozen=True)
class VenueOrder:
    """One order as the venue (broker) records it."""

    key: str
    order_id: str
    symbol: str
    qty: float
    filled_qty: float
    status: str


@dataclass(frozen=True)
class KillSwitch:
    active: bool
    reason: str | None


def resolve_pointer(document: Any, pointer: str) -> tuple[bool, Any]:
    """RFC 6901: ``(found, value)``; ``""`` is the whole document."""
    if not pointer:
        return True, document
    current = document
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


@dataclass(frozen=True)
class Record:
    """One record a reading yields, with the records it is nested in (outermost first) for ``../`` fields."""

    fields: Mapping[str, Any]
    parents: tuple[Mapping[str, Any], ...] = ()

    def get(self, name: str) -> Any:
        record, ups = self.fields, 0
        while name.startswith(PARENT):
            name, ups = name[len(PARENT):], ups + 1
        if ups:
            if ups > len(self.parents):
                return None
            record = self.parents[-ups]
        return record.get(name)


def resolve_records(document: Any, pointer: str) -> tuple[bool, list[Any], list[tuple[Any, ...]]]:
    """A pointer whose ``*`` segments stand for every element: ``(found, values, parents of each value)``.

    ``/trades/*/orders/*`` yields every order of every trade; each value's parents are the elements
    the earlier ``*`` segments matched (here: its trade). An element in which the rest of the pointer
    does not resolve contributes nothing; ``found`` is False only when the part before the first
    ``*`` does not resolve to a list or an object.
    """
    parts = pointer.split("/")[1:] if pointer else []
    if WILDCARD not in parts:
        found, value = resolve_pointer(document, pointer)
        return found, [value] if found else [], [()] if found else []
    cut = parts.index(WILDCARD)
    head = "/" + "/".join(parts[:cut]) if cut else ""
    tail = "/" + "/".join(parts[cut + 1:]) if cut + 1 < len(parts) else ""
    found, container = resolve_pointer(document, head)
    if not found or not isinstance(container, list | dict):
        return False, [], []
    values: list[Any] = []
    parents: list[tuple[Any, ...]] = []
    for element in container.values() if isinstance(container, dict) else container:
        ok, inner, inner_parents = resolve_records(element, tail)
        if ok:
            values += inner
            parents += [((element,) if WILDCARD in tail.split("/") else ()) + p for p in inner_parents]
    return True, values, parents


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(list(map(str, value))[:8])
        return f"an object with keys {keys or '(none)'}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"{type(value).__name__} {value!r}"[:120]


class TradingTruth:
    """Every trading reading of one running stack, through its declared adapter."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.spec: TradingSpec = backend.stack.trading
        cls = load_adapter_class(self.spec)
        self._custom: Any = cls(backend) if cls is not None else None

    # --- the readings --------------------------------------------------------------------------------

    def positions(self) -> dict[str, float]:
        """The engine's positions: symbol -> signed quantity."""
        return self._positions(self.spec.positions, "positions")

    def venue_positions(self) -> dict[str, float]:
        return self._positions(self.spec.venue_positions, "venue_positions")

    def kill_switch(self) -> KillSwitch:
        reading = self.spec.kill_switch
        if reading is None:
            doc = self._from_custom("kill_switch", "kill_switch")
            if isinstance(doc, dict):
                return KillSwitch(bool(doc.get("active")), _opt_str(doc.get("reason")))
            return KillSwitch(bool(doc), None)
        document = self._document(reading)
        value = self._at(reading, document, reading.pointer)
        if reading.equals is not None:
            active = value == reading.equals
        elif isinstance(value, bool):
            active = value
        else:
            raise ReadingUnavailable(
                f"x-drill.trading.kill_switch ({reading.describe()}): expected true/false, observed {_shape(value)}",
                hint=f"point 'pointer' at a boolean, or add 'equals: <value meaning active>' ({reading.where})",
            )
        reason = None
        if reading.reason is not None:
            found, text = resolve_pointer(document, reading.reason)
            reason = _opt_str(text) if found else None
        return KillSwitch(active, reason)

    def connected(self) -> bool:
        """True while the engine is connected to the venue (``x-drill.trading.connected``)."""
        reading = self.spec.connected
        if reading is None:
            return bool(self._from_custom("connected", "connected"))
        value = self._at(reading, self._document(reading), reading.pointer)
        if reading.equals is not None:
            return bool(value == reading.equals)
        if isinstance(value, bool):
            return value
        raise ReadingUnavailable(
            f"x-drill.trading.connected ({reading.describe()}): expected true/false, observed {_shape(value)}",
            hint=f"point 'pointer' at a boolean, or add 'equals: <value meaning connected>' ({reading.where})",
        )

    def sla_status(self) -> str:
        reading = self.spec.sla
        if reading is None:
            return str(self._from_custom("sla", "sla"))
        value = self._at(reading, self._document(reading), reading.pointer)
        if not isinstance(value, str | int | float | bool):
            raise ReadingUnavailable(
                f"x-drill.trading.sla ({reading.describe()}): expected a status text, observed {_shape(value)}",
                hint=f"point 'pointer' at the status field ({reading.where})",
            )
        return str(value)

    def orders(self) -> list[OrderRow]:
        """The engine's orders journal, oldest first."""
        reading = self.spec.orders
        if reading is None:
            records = self._records(self._from_custom("orders", "orders"), "orders", None)
        elif reading.csv:
            return self._csv_orders(reading)
        else:
            records = self._read_records(reading)
        names = reading.fields if reading is not None else {}

        def get(rec: Record, name: str) -> str:
            return _text(rec.get(names.get(name, name)))

        return [
            OrderRow(get(r, "key"), get(r, "symbol"), get(r, "side"), get(r, "qty"), get(r, "time"), "journal")
            for r in records
            if get(r, "key")
        ]

    def venue_orders(self) -> list[VenueOrder]:
        """The venue's own record of every order."""
        reading = self.spec.venue_orders
        if reading is None:
            records = self._records(self._from_custom("venue_orders", "venue.orders"), "venue.orders", None)
        else:
            records = self._read_records(reading)
        names = reading.fields if reading is not None else {}
        out = []
        for rec in records:
            def get(name: str, rec: Record = rec) -> Any:
                return rec.get(names.get(name, name))

            out.append(VenueOrder(
                key=_text(get("key")), order_id=_text(get("id")), symbol=_text(get("symbol")),
                qty=_number(get("qty")), filled_qty=_number(get("filled")), status=_text(get("status")),
            ))
        return out

    # --- making a reading ----------------------------------------------------------------------------

    def _positions(self, reading: Reading | None, name: str) -> dict[str, float]:
        if reading is None:
            doc = self._from_custom(name, name.replace("venue_", "venue."))
            if isinstance(doc, dict):
                return {str(k): _number(v) for k, v in doc.items()}
            reading_fields: Mapping[str, str] = {}
        else:
            reading_fields = reading.fields
            if len(reading.parts) > 1 or reading.parts[0].wildcards:
                doc = list(self._read_records(reading))
            else:
                doc = self._at(reading, self._document(reading), reading.pointer)
        where = reading.describe() if reading is not None else "the adapter class"
        label = name.replace("venue_", "venue.")
        if isinstance(doc, dict):
            held: dict[str, float] = {}
            for symbol, value in doc.items():
                quantity = _quantity(value)
                if quantity is None:  # never dropped quietly: a wrong pointer must not read as "flat"
                    raise ReadingUnavailable(
                        f"x-drill.trading.{label} ({where}): expected symbol -> quantity, observed "
                        f"{symbol!r}: {_shape(value)}",
                        hint="point 'pointer' at an object of numbers, or at a list of records with "
                        "'fields: {symbol, qty}'",
                    )
                held[str(symbol)] = quantity
            return held
        if isinstance(doc, list):
            sym, qty = reading_fields.get("symbol", "symbol"), reading_fields.get("qty", "qty")
            out: dict[str, float] = {}
            for item in doc:
                rec = item if isinstance(item, Record) else Record(item) if isinstance(item, dict) else None
                if rec is not None and rec.get(sym) is not None:
                    out[str(rec.get(sym))] = out.get(str(rec.get(sym)), 0.0) + _number(rec.get(qty))
            return out
        raise ReadingUnavailable(
            f"x-drill.trading.{label} ({where}): expected an object symbol -> quantity "
            f"or a list of records, observed {_shape(doc)}",
            hint="point 'pointer' at the positions (and name 'fields: {symbol, qty}' for a list)",
        )

    def _from_custom(self, method: str, field_name: str) -> Any:
        fn = getattr(self._custom, method, None) if self._custom is not None else None
        if fn is None:
            raise ReadingUnavailable(
                f"the stack declares no x-drill.trading.{field_name}, and this drill needs it",
                hint=f"declare where it is read in {self.spec.where} (file, http, url or command, with a JSON "
                f"pointer), or give an adapter class with a {method}() method",
            )
        try:
            return fn()
        except ReadingUnavailable:
            raise
        except Exception as exc:  # the team's adapter code: report, never swallow
            raise ReadingUnavailable(
                f"{self.spec.adapter}.{method}() raised {type(exc).__name__}: {exc}",
                hint="fix the adapter class named in x-drill.trading.adapter",
            ) from exc

    def _document(self, reading: Reading, part: Part | None = None) -> Any:
        part = part or reading.parts[0]
        text = self._text(reading, part)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ReadingUnavailable(
                f"x-drill.trading.{reading.name} ({part.describe()}): expected JSON, observed "
                f"{text[:160]!r} ({exc})",
                hint=f"the source must print/serve JSON; check the declaration at {part.where}",
            ) from None

    def _read_records(self, reading: Reading) -> list[Record]:
        """Every record of every source of ``reading``, in order (``*`` segments flattened)."""
        out: list[Record] = []
        for part in reading.parts:
            document = self._document(reading, part)
            if not part.wildcards:
                out += self._records(self._at(reading, document, part.pointer, part), reading.name, reading)
                continue
            found, values, parents = resolve_records(document, part.pointer)
            if not found:
                head = part.pointer.split("/" + WILDCARD)[0]
                raise ReadingUnavailable(
                    f"x-drill.trading.{reading.name} ({part.describe()}): {head or 'the document'} is not a list "
                    f"or an object to take '{WILDCARD}' of; the document is {_shape(document)}",
                    hint=f"fix 'pointer' at {part.where} (RFC 6901, '{WILDCARD}' = every element)",
                )
            bad = [v for v in values if not isinstance(v, dict)]
            if bad:
                raise ReadingUnavailable(
                    f"x-drill.trading.{reading.name} ({part.describe()}): expected records (objects) at "
                    f"{part.pointer!r}, observed {_shape(bad[0])}",
                    hint=f"fix 'pointer' at {part.where}",
                )
            out += [Record(v, tuple(p)) for v, p in zip(values, parents, strict=True)]
        return out

    def _text(self, reading: Reading, part: Part) -> str:
        source = part.source
        what = f"x-drill.trading.{reading.name} ({source.describe()})"
        if isinstance(source, FileSource):
            path = self._path(source.path)
            try:
                return path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise ReadingUnavailable(f"{what}: {path} does not exist",
                                         hint=f"check the path declared at {part.where}") from None
            except OSError as exc:
                raise ReadingUnavailable(f"{what}: cannot read {path}: {exc.strerror}") from exc
        if isinstance(source, HttpSource):
            url = self.url_of(source)
            session = self.session_for(source, what)
            try:
                reply = http_get(url, timeout=5.0, session=session)
            finally:
                if session is not None:
                    session.close()
            if not isinstance(reply, HttpReply):
                raise ReadingUnavailable(f"{what}: {reply.observed}",
                                         hint="is the service running and is the address right?")
            if reply.status != 200:
                raise ReadingUnavailable(f"{what}: GET {url} answered {reply.status}: {reply.text[:160]}")
            return reply.text
        return self._command_output(source, what)

    def _command_output(self, source: CommandSource, what: str) -> str:
        argv = shlex.split(source.command)
        op = self.backend.stack.operator
        if op is None or tuple(argv[: len(op.command)]) != op.command:
            raise InputError(
                f"{what}: not an operator command of this stack",
                hint=f"operator commands start with: {' '.join(op.command) if op else '(no x-drill.operator)'}",
            )
        result = self.backend.operator(argv[len(op.command):], timeout=30.0)
        if result.timed_out or result.exit_code != 0:
            raise ReadingUnavailable(
                f"{what}: exit {result.exit_code}{' (timed out)' if result.timed_out else ''}: "
                f"{result.output.strip()[-300:]}"
            )
        return result.stdout

    def url_of(self, source: HttpSource) -> str:
        return source.url or (self.backend.endpoint(str(source.service), str(source.port)).url + source.path)

    @staticmethod
    def session_for(source: HttpSource, what: str) -> requests.Session | None:
        """A session that logs in as ``source.auth`` declares (credentials resolved now), or None."""
        if source.auth is None:
            return None
        import requests

        session = requests.Session()
        session.auth = source.auth.requests_auth(what)
        session.headers.update(source.auth.headers(what))
        return session

    def _path(self, declared: str) -> Path:
        path = Path(declared)
        return path if path.is_absolute() else self.backend.workdir / path

    def _at(self, reading: Reading, document: Any, pointer: str, part: Part | None = None) -> Any:
        part = part or reading.parts[0]
        found, value = resolve_pointer(document, pointer)
        if not found:
            raise ReadingUnavailable(
                f"x-drill.trading.{reading.name} ({part.source.describe()}): JSON pointer {pointer!r} does not "
                f"resolve; the document is {_shape(document)}",
                hint=f"fix 'pointer' at {part.where} (RFC 6901, e.g. /positions)",
            )
        return value

    def _records(self, value: Any, name: str, reading: Reading | None) -> list[Record]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            where = reading.describe() if reading is not None else "the adapter class"
            raise ReadingUnavailable(
                f"x-drill.trading.{name} ({where}): expected a list of records, observed {_shape(value)}",
                hint="point 'pointer' at the list" + (f" ({reading.where})" if reading is not None else ""),
            )
        return [Record(v) for v in value]

    def _csv_orders(self, reading: Reading) -> list[OrderRow]:
        assert isinstance(reading.source, FileSource)
        names = reading.fields
        pattern = reading.source.path
        base = self.backend.workdir
        paths = sorted(Path(pattern).parent.glob(Path(pattern).name)) if Path(pattern).is_absolute() else sorted(
            base.glob(pattern))
        rows: list[OrderRow] = []
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise ReadingUnavailable(f"x-drill.trading.orders: cannot read {path}: {exc.strerror}") from exc
            reader = csv.DictReader(io.StringIO(text))
            if reader.fieldnames is not None and names["key"] not in reader.fieldnames:
                raise ReadingUnavailable(
                    f"x-drill.trading.orders: {path} has no column {names['key']!r} (columns: {reader.fieldnames})",
                    hint=f"fix 'fields.key' at {reading.where}",
                )
            for row in reader:
                key = row.get(names["key"]) or ""
                if key:
                    rows.append(OrderRow(
                        key, row.get(names.get("symbol", ""), "") or "", row.get(names.get("side", ""), "") or "",
                        row.get(names.get("qty", ""), "") or "", row.get(names.get("time", ""), "") or "", path.name,
                    ))
        return rows


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _quantity(value: Any) -> float | None:
    """A position quantity: a JSON number or a numeric string (venues send decimals as text); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _number(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def run_stack_command(drill: Any, name: str, *, timeout: float = 60.0, **values: str) -> CommandResult | None:
    """Run the stack's operator command ``name`` (``x-drill.trading.commands``) as the on-call would.

    A shell template runs through :meth:`Drill.operator`; an HTTP call is sent here, logged in as declared,
    and recorded on the timeline like a command (``exit_code`` 0 for a 2xx reply, else the HTTP status or 1
    when unreachable). None in a dry run.
    """
    spec: TradingSpec = drill.backend.stack.trading
    if not spec.is_http_command(name):
        result: CommandResult | None = drill.operator(spec.command_line(name, **values), timeout=timeout)
        return result
    command = spec.http_command(name)
    target, body = command.filled(**values)
    what = f"x-drill.trading.commands.{name}"
    label = target.describe(command.method)
    if drill.dry_run is not None:
        drill.timeline.note(f"[dry-run] would call: {label}")
        print(f"  [dry-run] would call: {label}", flush=True)
        return None
    import requests

    url = drill.trading.url_of(target)
    session = TradingTruth.session_for(target, what) or requests.Session()
    drill.timeline.record(EventKind.STEP_STARTED, label)
    started = datetime.now().timestamp()
    try:
        reply = session.request(command.method, url, json=body, timeout=timeout)
        code, text = (0 if 200 <= reply.status_code < 300 else reply.status_code), reply.text
        stderr = "" if code == 0 else f"HTTP {reply.status_code}"
    except requests.Timeout:
        raise WaitTimeout(f"{what}: {command.method} {url} did not answer within {timeout:g}s") from None
    except requests.RequestException as exc:
        code, text, stderr = 1, "", Unreachable(url, f"{type(exc).__name__}: {exc}").observed
    finally:
        session.close()
    duration = datetime.now().timestamp() - started
    result = CommandResult((command.method, url), code, text, stderr, duration)
    drill.timeline.record(EventKind.STEP_ENDED, label, exit_code=code, duration_s=round(duration, 3))
    drill.last_command = result
    return result


# --- probes in trading words ---------------------------------------------------------------------------


def open_positions(truth: TradingTruth) -> Check:
    def look() -> Observation:
        held = {s: q for s, q in truth.positions().items() if q}
        return Observation(bool(held), f"positions: {held or 'none open'}", held)

    where = truth.spec.positions.describe() if truth.spec.positions else "the adapter"
    return Check(f"open positions ({where})", look)


def orders_sent_at_least(truth: TradingTruth, n: int) -> Check:
    def look() -> Observation:
        count = len(truth.orders())
        return Observation(count >= n, f"{count} orders in the journal", count)

    return Check(f"at least {n} orders in the engine's orders journal", look)


def no_new_orders(truth: TradingTruth) -> Check:
    """Satisfied while the orders journal has no row beyond those present when the check was built."""
    baseline = len(truth.orders())

    def look() -> Observation:
        new = truth.orders()[baseline:]
        if new:
            shown = ", ".join(f"{r.side} {r.qty} {r.symbol} at {r.ts}" for r in new[:5])
            return Observation(False, f"{len(new)} new order(s) sent: {shown}", len(new))
        return Observation(True, f"no new order ({baseline} in the journal)", 0)

    return Check("no new order is sent", look)


def kill_switch_active(truth: TradingTruth, active: bool) -> Check:
    def look() -> Observation:
        state = truth.kill_switch()
        return Observation(state.active is active, f"kill switch active={state.active} (reason: {state.reason})",
                           state.active)

    return Check(f"kill switch {'active' if active else 'inactive'}", look)


def venue_connected(truth: TradingTruth) -> Check:
    def look() -> Observation:
        up = truth.connected()
        return Observation(up, "connected to the venue" if up else "not connected to the venue", up)

    where = truth.spec.connected.describe() if truth.spec.connected else "the adapter"
    return Check(f"the engine is connected to the venue ({where})", look)


def sla_status_is(truth: TradingTruth, status: str) -> Check:
    def look() -> Observation:
        observed = truth.sla_status()
        return Observation(observed == status, f"SLA status {observed!r}", observed)

    where = truth.spec.sla.describe() if truth.spec.sla else "the adapter"
    return Check(f"SLA report status {status!r} ({where})", look)


def no_duplicate_order_keys(truth: TradingTruth) -> Check:
    def look() -> Observation:
        seen: dict[str, int] = {}
        for row in truth.orders():
            seen[row.key] = seen.get(row.key, 0) + 1
        dupes = sorted(k for k, n in seen.items() if n > 1)
        if dupes:
            return Observation(False, f"{len(dupes)} order key(s) appear more than once: {dupes[:5]}", dupes)
        return Observation(True, f"{len(seen)} order keys, each once", [])

    return Check("no order key appears twice in the engine's orders journal", look)


def log_timestamp_of(backend: Backend, service: str, needle: str) -> datetime | None:
    """The ``ts`` of the last JSON log line of ``service`` containing ``needle``."""
    try:
        lines = backend.log_path(service).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if needle in line:
            try:
                return parse_timestamp(str(json.loads(line)["ts"]))
            except (ValueError, KeyError, TypeError, InputError):
                continue
    return None


def record_time_to_kill(drill: Any, truth: TradingTruth) -> None:
    """Put kill-switch activation (engine log marker) and the last order after it on the timeline."""
    if "kill_switch_activated" not in truth.spec.markers:
        return  # time-to-kill needs the marker; without it the timeline simply lacks the event
    activated = log_timestamp_of(drill.backend, truth.spec.engine, truth.spec.marker("kill_switch_activated"))
    if activated is None:
        return
    drill.timeline.record_at(EventKind.KILL_SWITCH_ACTIVATED, "kill switch tripped (engine log)", wall=activated)
    last = None
    for row in truth.orders():
        try:
            ts = parse_timestamp(row.ts)
        except InputError:
            continue
        if last is None or ts > last:
            last = ts
    if last is not None and last > activated:
        drill.timeline.record_at(EventKind.LAST_ORDER, "last order sent after the kill switch", wall=last)


def no_order_lost(truth: TradingTruth, before: list[VenueOrder]) -> Check:
    """Every order the venue had before the crash is still there, and the engine's journal knows all of them."""

    def look() -> Observation:
        after = truth.venue_orders()
        keys_after = {o.key for o in after}
        lost = [o.key for o in before if o.key not in keys_after]
        journal = {r.key for r in truth.orders()}
        unknown = [o.key for o in after if o.key not in journal]
        if lost or unknown:
            return Observation(
                False,
                f"venue lost {len(lost)} order(s) {lost[:5]}; engine journal misses {len(unknown)} "
                f"venue order(s) {unknown[:5]}",
            )
        return Observation(True, f"all {len(before)} pre-crash orders kept; {len(after)} venue orders all journaled")

    return Check("no acknowledged order lost (venue vs engine journal)", look)


def no_double_fill(truth: TradingTruth) -> Check:
    def look() -> Observation:
        orders = truth.venue_orders()
        seen: dict[str, int] = {}
        for o in orders:
            seen[o.key] = seen.get(o.key, 0) + 1
        doubled = [k for k, n in seen.items() if n > 1]
        overfilled = [o.order_id for o in orders if o.filled_qty > o.qty]
        if doubled or overfilled:
            return Observation(
                False, f"order keys with several orders: {doubled[:5]}; overfilled: {overfilled[:5]}"
            )
        return Observation(True, f"{len(orders)} venue orders, each key once, none overfilled")

    return Check("no order filled twice (venue side)", look)


def services_healthy(backend: Backend, services: list[str]) -> Check:
    from harness.probes.http import HttpHealth

    probes = {s: HttpHealth.for_service(backend, s) for s in services}

    def look() -> Observation:
        bad = {}
        for name, probe in probes.items():
            obs = probe()
            if not obs.ok:
                bad[name] = obs.observed
        if bad:
            return Observation(False, "; ".join(f"{k}: {v}" for k, v in bad.items()))
        return Observation(True, f"all healthy: {', '.join(services)}")

    return Check(f"every service healthy ({', '.join(services)})", look)
