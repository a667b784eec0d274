"""Probes in the runbook's trading words, for a stack that follows the runbook's conventions.

The incident runbook names the files an operator reads (``artifacts/state/positions.json``,
``artifacts/state/kill_switch.json``, ``artifacts/quality/latest_sla.json``, the orders journal
``artifacts/orders/*.csv`` with its ``idempotency_key`` column) and the broker-side truth
(the broker's admin API: ``/admin/orders``). These probes read exactly those, from outside,
so the same drills work against any stack that keeps the runbook's layout.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.backends.base import Backend
from harness.clock import EventKind, parse_timestamp
from harness.errors import InputError
from harness.probes._http import HttpReply, http_get
from harness.probes.base import Probe
from harness.waiting import Observation

POSITIONS = "artifacts/state/positions.json"
KILL_SWITCH = "artifacts/state/kill_switch.json"
SLA_REPORT = "artifacts/quality/latest_sla.json"
ORDERS_GLOB = "artifacts/orders/*.csv"


class Check(Probe):
    """A probe from a function: for conditions composed of several readings."""

    name = "check"

    def __init__(self, description: str, fn: Callable[[], Observation]) -> None:
        self.description = description
        self.fn = fn

    def __call__(self) -> Observation:
        return self.fn()

    def describe(self) -> str:
        return self.description


def read_json(path: Path) -> tuple[Any, str | None]:
    """(document, None) or (None, why it could not be read) — never raises for the file's state."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, f"{path} does not exist"
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror}"
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"{path} is not valid JSON ({exc})"


def positions(workdir: Path) -> tuple[dict[str, float], str | None]:
    doc, problem = read_json(workdir / POSITIONS)
    if problem is not None:
        return {}, problem
    raw = doc.get("positions") if isinstance(doc, dict) else None
    if not isinstance(raw, dict):
        return {}, f"{POSITIONS} has no 'positions' object"
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)}, None


def open_positions(workdir: Path) -> Check:
    def look() -> Observation:
        pos, problem = positions(workdir)
        if problem is not None:
            return Observation(False, problem)
        held = {s: q for s, q in pos.items() if q}
        return Observation(bool(held), f"positions: {held or 'none open'}", held)

    return Check(f"open positions in {POSITIONS}", look)


@dataclass(frozen=True)
class OrderRow:
    ts: str
    idempotency_key: str
    symbol: str
    side: str
    qty: str
    file: str


def order_rows(workdir: Path) -> list[OrderRow]:
    """Every row of the orders journal (``artifacts/orders/*.csv``), oldest file first."""
    rows: list[OrderRow] = []
    for path in sorted(workdir.glob(ORDERS_GLOB)):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for row in csv.DictReader(io.StringIO(text)):
            key = row.get("idempotency_key") or ""
            if key:
                rows.append(
                    OrderRow(
                        row.get("ts", ""),
                        key,
                        row.get("symbol", ""),
                        row.get("side", ""),
                        row.get("qty", ""),
                        path.name,
                    )
                )
    return rows


def orders_sent_at_least(workdir: Path, n: int) -> Check:
    def look() -> Observation:
        count = len(order_rows(workdir))
        return Observation(count >= n, f"{count} orders in the journal", count)

    return Check(f"at least {n} orders in the orders journal ({ORDERS_GLOB})", look)


def no_new_orders(workdir: Path) -> Check:
    """Satisfied while the orders journal has no row beyond those present when the check was built."""
    baseline = len(order_rows(workdir))

    def look() -> Observation:
        rows = order_rows(workdir)
        new = rows[baseline:]
        if new:
            shown = ", ".join(f"{r.side} {r.qty} {r.symbol} at {r.ts}" for r in new[:5])
            return Observation(False, f"{len(new)} new order(s) sent: {shown}", len(new))
        return Observation(True, f"no new order ({baseline} in the journal)", 0)

    return Check("no new order is sent", look)


def kill_switch_active(workdir: Path, active: bool) -> Check:
    def look() -> Observation:
        doc, problem = read_json(workdir / KILL_SWITCH)
        if problem is not None:
            return Observation(False, problem)
        value = doc.get("active") if isinstance(doc, dict) else None
        reason = doc.get("reason") if isinstance(doc, dict) else None
        return Observation(value is active, f"kill switch active={value} (reason: {reason})", value)

    return Check(f"kill switch {'active' if active else 'inactive'} in {KILL_SWITCH}", look)


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


def record_time_to_kill(drill: Any, service: str) -> None:
    """Put kill switch activation (from the engine's log) and the last order sent (from the journal) on the timeline."""
    activated = log_timestamp_of(drill.backend, service, "Kill switch activated")
    if activated is None:
        return
    drill.timeline.record_at(EventKind.KILL_SWITCH_ACTIVATED, "kill switch activated (engine log)", wall=activated)
    last = None
    for row in order_rows(drill.backend.workdir):
        try:
            ts = parse_timestamp(row.ts)
        except InputError:
            continue
        if last is None or ts > last:
            last = ts
    if last is not None and last > activated:
        drill.timeline.record_at(EventKind.LAST_ORDER, "last order sent after the kill switch", wall=last)


# --- broker-side truth ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerOrder:
    order_id: str
    idempotency_key: str
    symbol: str
    qty: float
    filled_qty: float
    status: str


def broker_orders(backend: Backend, service: str = "broker", port: str = "http") -> list[BrokerOrder] | str:
    """The broker's own record of every order (``GET /admin/orders``), or why it could not be read."""
    url = backend.endpoint(service, port).url + "/admin/orders"
    reply = http_get(url, timeout=5.0)
    if not isinstance(reply, HttpReply):
        return reply.observed
    if reply.status != 200:
        return f"GET {url} answered {reply.status}"
    try:
        doc = json.loads(reply.text)
    except ValueError as exc:
        return f"GET {url}: not JSON ({exc})"
    raw = doc.get("orders") if isinstance(doc, dict) else doc
    if not isinstance(raw, list):
        return f"GET {url}: no 'orders' list"
    out = []
    for o in raw:
        if not isinstance(o, dict):
            continue
        out.append(
            BrokerOrder(
                order_id=str(o.get("order_id")),
                idempotency_key=str(o.get("idempotency_key")),
                symbol=str(o.get("symbol")),
                qty=float(o.get("qty") or 0),
                filled_qty=float(o.get("filled_qty") or 0),
                status=str(o.get("status")),
            )
        )
    return out


def no_order_lost(backend: Backend, before: list[BrokerOrder]) -> Check:
    """Every order the broker had before the crash is still there, and the engine's journal knows all of them."""

    def look() -> Observation:
        after = broker_orders(backend)
        if isinstance(after, str):
            return Observation(False, after)
        keys_after = {o.idempotency_key for o in after}
        lost = [o.idempotency_key for o in before if o.idempotency_key not in keys_after]
        journal = {r.idempotency_key for r in order_rows(backend.workdir)}
        unknown = [o.idempotency_key for o in after if o.idempotency_key not in journal]
        if lost or unknown:
            return Observation(
                False,
                f"broker lost {len(lost)} order(s) {lost[:5]}; engine journal misses {len(unknown)} "
                f"broker order(s) {unknown[:5]}",
            )
        return Observation(True, f"all {len(before)} pre-crash orders kept; {len(after)} broker orders all journaled")

    return Check("no acknowledged order lost (broker vs engine journal)", look)


def no_double_fill(backend: Backend) -> Check:
    def look() -> Observation:
        orders = broker_orders(backend)
        if isinstance(orders, str):
            return Observation(False, orders)
        seen: dict[str, int] = {}
        for o in orders:
            seen[o.idempotency_key] = seen.get(o.idempotency_key, 0) + 1
        doubled = [k for k, n in seen.items() if n > 1]
        overfilled = [o.order_id for o in orders if o.filled_qty > o.qty]
        if doubled or overfilled:
            return Observation(
                False, f"idempotency keys with several orders: {doubled[:5]}; overfilled: {overfilled[:5]}"
            )
        return Observation(True, f"{len(orders)} broker orders, each key once, none overfilled")

    return Check("no order filled twice (broker side)", look)


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
