"""What the dashboard shows, as frozen dataclasses, and the tolerant parsers that build them.

The parsers accept the shapes the trading engine's ``/api/status`` is likely to use (nested objects
or flat fields, e.g. ``{"kill_switch": {"active": true}}`` or ``{"kill_switch_active": true}``) and
never raise on a surprising answer: a field they cannot read becomes "unknown" and a note in
``EngineStatus.notes``, so the page shows what is known instead of crashing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SEVERITY_ORDER = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}
WATCHDOG = "Watchdog"


@dataclass(frozen=True)
class KillSwitch:
    active: bool | None  # None: unknown
    reason: str = ""
    activated_at: str = ""
    activated_by: str = ""


@dataclass(frozen=True)
class BrokerLink:
    connected: bool | None  # None: unknown
    manual_intervention_required: bool = False
    detail: str = ""


@dataclass(frozen=True)
class Position:
    symbol: str
    qty: float


@dataclass(frozen=True)
class DailyPnl:
    total: float | None
    realized: float | None = None
    unrealized: float | None = None
    max_daily_loss: float | None = None


@dataclass(frozen=True)
class SlaViolation:
    symbol: str
    kind: str
    detail: str


@dataclass(frozen=True)
class DataSla:
    status: str  # "ok" | "violated" | "unknown"
    violations: tuple[SlaViolation, ...] = ()
    checked_at: str = ""

    @property
    def ok(self) -> bool | None:
        return {"ok": True, "violated": False}.get(self.status)


@dataclass(frozen=True)
class EngineStatus:
    mode: str
    kill_switch: KillSwitch
    broker: BrokerLink
    positions: tuple[Position, ...]
    daily_pnl: DailyPnl
    sla: DataSla
    notes: tuple[str, ...] = ()  # fields that could not be read


@dataclass(frozen=True)
class FiringAlert:
    name: str
    severity: str
    runbook: str
    summary: str
    state: str
    starts_at: str

    @property
    def sort_key(self) -> tuple[int, str, str]:
        return (SEVERITY_ORDER.get(self.severity, 9), self.starts_at, self.name)


@dataclass(frozen=True)
class Upstream:
    """How the last request to a dependency went."""

    name: str
    url: str
    reachable: bool
    error: str = ""


@dataclass(frozen=True)
class Alerts:
    upstream: Upstream
    firing: tuple[FiringAlert, ...] = ()  # without the Watchdog, most severe first
    watchdog_present: bool = False


@dataclass(frozen=True)
class Summary:
    generated_at: str
    traderunner: Upstream
    engine: EngineStatus | None  # None when traderunner is unreachable or answered nonsense
    alerts: Alerts | None  # None when no Alertmanager is configured


# --- parsing at the edge ---------------------------------------------------------------------


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in data and data[key] is not None:
            return data[key]
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"true", "yes", "on", "1", "active", "connected", "ok"}:
            return True
        if lowered in {"false", "no", "off", "0", "inactive", "disconnected"}:
            return False
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


def _parse_kill_switch(data: Mapping[str, Any], notes: list[str]) -> KillSwitch:
    raw = _first(data, "kill_switch", "killswitch")
    if isinstance(raw, Mapping):
        active = _as_bool(_first(raw, "active", "activated", "state", "status"))
        if active is None:
            notes.append("kill switch state not understood")
        return KillSwitch(
            active=active,
            reason=_as_text(raw.get("reason")),
            activated_at=_as_text(raw.get("activated_at")),
            activated_by=_as_text(raw.get("activated_by")),
        )
    active = _as_bool(raw if raw is not None else _first(data, "kill_switch_active"))
    if active is None:
        notes.append("kill switch state missing")
    return KillSwitch(active=active, reason=_as_text(data.get("kill_switch_reason")))


_MANUAL_WORDS = ("manual", "intervention", "gave_up", "failed")


def _parse_broker(data: Mapping[str, Any], notes: list[str]) -> BrokerLink:
    raw = _first(data, "broker", "broker_link", "connector")
    connected: bool | None = None
    manual = False
    detail = ""
    if isinstance(raw, Mapping):
        connected = _as_bool(_first(raw, "connected", "is_connected"))
        manual = bool(_as_bool(_first(raw, "manual_intervention_required", "manual_intervention")))
        state = _as_text(_first(raw, "state", "status"))
        detail = _as_text(_first(raw, "detail", "message", "last_error")) or state
        if connected is None and state:
            lowered = state.lower()
            connected = lowered == "connected"
            manual = manual or any(w in lowered for w in _MANUAL_WORDS)
    elif isinstance(raw, str):
        lowered = raw.lower()
        connected = lowered == "connected"
        manual = any(w in lowered for w in _MANUAL_WORDS)
        detail = raw
    else:
        connected = _as_bool(raw if raw is not None else _first(data, "broker_connected"))
    manual = manual or bool(_as_bool(_first(data, "broker_manual_intervention_required", "manual_intervention")))
    if connected is None:
        notes.append("broker link state missing")
    return BrokerLink(connected=connected, manual_intervention_required=manual, detail=detail)


def _parse_positions(data: Mapping[str, Any], notes: list[str]) -> tuple[Position, ...]:
    raw = _first(data, "positions")
    if isinstance(raw, Mapping) and isinstance(raw.get("positions"), Mapping | list):
        raw = raw["positions"]
    out: list[Position] = []
    if isinstance(raw, Mapping):
        for symbol, qty in raw.items():
            number = _as_float(qty.get("qty") if isinstance(qty, Mapping) else qty)
            if number is None:
                notes.append(f"position {symbol} not understood")
                continue
            out.append(Position(str(symbol), number))
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping) and "symbol" in item:
                number = _as_float(_first(item, "qty", "quantity", "position"))
                if number is not None:
                    out.append(Position(str(item["symbol"]), number))
                    continue
            notes.append(f"position entry not understood: {str(item)[:60]}")
    elif raw is not None:
        notes.append("positions not understood")
    return tuple(sorted(out, key=lambda p: p.symbol))


def _parse_pnl(data: Mapping[str, Any], notes: list[str]) -> DailyPnl:
    raw = _first(data, "daily_pnl", "pnl", "daily_p&l")
    if isinstance(raw, Mapping):
        realized = _as_float(raw.get("realized"))
        unrealized = _as_float(raw.get("unrealized"))
        total = _as_float(_first(raw, "total", "daily_pnl", "pnl"))
        if total is None and realized is not None and unrealized is not None:
            total = realized + unrealized
        if total is None:
            notes.append("daily P&L not understood")
        return DailyPnl(total, realized, unrealized, _as_float(raw.get("max_daily_loss")))
    total = _as_float(raw)
    if total is None:
        notes.append("daily P&L missing")
    return DailyPnl(total, max_daily_loss=_as_float(data.get("max_daily_loss")))


def _sla_status(value: Any) -> str:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"ok", "green", "pass", "passed", "healthy"}:
            return "ok"
        if lowered in {"violated", "violation", "red", "fail", "failed"}:
            return "violated"
        return "unknown"
    as_bool = _as_bool(value)
    if as_bool is None:
        return "unknown"
    return "ok" if as_bool else "violated"


def _parse_sla(data: Mapping[str, Any], notes: list[str]) -> DataSla:
    raw = _first(data, "sla", "data_sla", "data_quality", "quality")
    if isinstance(raw, Mapping):
        status = _sla_status(_first(raw, "status", "ok", "state"))
        violations: list[SlaViolation] = []
        items = raw.get("violations")
        if isinstance(items, list):
            for item in items:
                if isinstance(item, Mapping):
                    violations.append(
                        SlaViolation(
                            _as_text(item.get("symbol")), _as_text(item.get("kind")), _as_text(item.get("detail"))
                        )
                    )
        sla = DataSla(status, tuple(violations), _as_text(raw.get("checked_at")))
    else:
        value = raw if raw is not None else _first(data, "sla_status", "sla_ok", "data_sla_ok")
        sla = DataSla(_sla_status(value))
    if sla.status == "unknown":
        notes.append("data SLA status missing")
    return sla


def parse_engine_status(raw: Any) -> EngineStatus:
    """Build an :class:`EngineStatus` from ``/api/status`` JSON; ``ValueError`` if it is not an object."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    notes: list[str] = []
    mode = _as_text(_first(raw, "mode", "trading_mode")) or "unknown"
    return EngineStatus(
        mode=mode,
        kill_switch=_parse_kill_switch(raw, notes),
        broker=_parse_broker(raw, notes),
        positions=_parse_positions(raw, notes),
        daily_pnl=_parse_pnl(raw, notes),
        sla=_parse_sla(raw, notes),
        notes=tuple(notes),
    )


def parse_alerts(raw: Any, upstream: Upstream) -> Alerts:
    """Build :class:`Alerts` from Alertmanager's ``GET /api/v2/alerts``; ``ValueError`` if not a list."""
    if not isinstance(raw, list):
        raise ValueError(f"expected a JSON list of alerts, got {type(raw).__name__}")
    firing: list[FiringAlert] = []
    watchdog = False
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        labels = item.get("labels") if isinstance(item.get("labels"), Mapping) else {}
        annotations = item.get("annotations") if isinstance(item.get("annotations"), Mapping) else {}
        status = item.get("status") if isinstance(item.get("status"), Mapping) else {}
        assert isinstance(labels, Mapping) and isinstance(annotations, Mapping) and isinstance(status, Mapping)
        name = _as_text(labels.get("alertname"))
        if name == WATCHDOG:
            watchdog = True
            continue
        firing.append(
            FiringAlert(
                name=name or "(unnamed)",
                severity=_as_text(labels.get("severity")) or "?",
                runbook=_as_text(labels.get("runbook")),
                summary=_as_text(annotations.get("summary")),
                state=_as_text(status.get("state")) or "active",
                starts_at=_as_text(item.get("startsAt")),
            )
        )
    return Alerts(upstream, tuple(sorted(firing, key=lambda a: a.sort_key)), watchdog)
