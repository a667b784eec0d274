"""Risk rules and the kill switch.

* **Daily P&L** = realized + unrealized (positions marked at the last *valid* close), measured
  from the UTC day's baseline: the first time a UTC date is seen, the lifetime realized and
  unrealized P&L at that moment become that day's zero (so the daily figure resets at midnight UTC
  without touching positions or the kill switch).
* **Pre-trade checks** (in order): kill switch (only risk-reducing orders pass, and only when
  ``allow_risk_reducing_when_killed``), max position per symbol (including orders in flight;
  risk-reducing orders always pass), max orders per rolling minute.
* **Kill switch**: trips when daily P&L <= -``max_daily_loss`` or by hand; persists (SQLite, one
  transaction with its audit row), exports ``kill_switch.json``, sets metrics, logs ``kill_switch``
  "Kill switch activated: <reason>" and calls back the order manager to cancel working orders.
  Reset needs an approver and a reason (audited). If the daily loss is still beyond the limit at
  reset time the approver accepts that loss: the trigger is re-armed ``max_daily_loss`` below the
  P&L at reset, for the rest of that UTC day (logged and audited); otherwise a reset on a breached
  day would re-trip on the next tick and recovery could never be drilled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mockstack.common.logging import EventLog
from mockstack.traderunner import exports
from mockstack.traderunner.config import RiskConfig
from mockstack.traderunner.metrics import Metrics
from mockstack.traderunner.store import KillSwitchState, Position, Store


class ApprovalError(Exception):
    """A reset was asked for without an approver or a reason."""


def utc_date() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class DailyPnL:
    date: str
    realized: float
    unrealized: float

    @property
    def total(self) -> float:
        return self.realized + self.unrealized

    def as_dict(self, max_daily_loss: float) -> dict[str, object]:
        return {
            "date": self.date,
            "realized": round(self.realized, 2),
            "unrealized": round(self.unrealized, 2),
            "total": round(self.total, 2),
            "max_daily_loss": max_daily_loss,
            "updated_at": exports.utc_now_iso(),
        }


def lifetime_pnl(positions: dict[str, Position], marks: dict[str, float]) -> tuple[float, float]:
    """(realized, unrealized) over the store's lifetime; a symbol without a mark is marked at its cost."""
    realized = sum(p.realized for p in positions.values())
    unrealized = sum(p.qty * (marks.get(s, p.avg_price) - p.avg_price) for s, p in positions.items())
    return realized, unrealized


def daily_pnl(
    store: Store, positions: dict[str, Position] | None = None, marks: dict[str, float] | None = None
) -> DailyPnL:
    """Today's (UTC) P&L; the first call on a new date records that date's baseline."""
    positions = store.positions() if positions is None else positions
    marks = store.marks() if marks is None else marks
    realized, unrealized = lifetime_pnl(positions, marks)
    today = utc_date()
    base = store.baseline(today)
    if base is None:
        store.set_baseline(today, realized, unrealized)
        base = store.baseline(today) or (realized, unrealized)
    return DailyPnL(today, realized - base[0], unrealized - base[1])


def trigger_level(config: RiskConfig, state: KillSwitchState, today: str) -> float:
    """Daily P&L at or below which the kill switch trips."""
    level = -config.max_daily_loss
    if state.loss_floor is not None and state.loss_floor_date == today:
        level = min(level, state.loss_floor)
    return level


def is_risk_reducing(position: int, side: str, qty: int) -> bool:
    """True when the order only shrinks the absolute position (never flips it)."""
    signed = qty if side == "buy" else -qty
    after = position + signed
    return position != 0 and abs(after) < abs(position) and (after == 0 or (after > 0) == (position > 0))


@dataclass(frozen=True)
class RiskDecision:
    allowed: bool
    reason: str = ""
    detail: str = ""


def check_order(
    config: RiskConfig,
    *,
    kill_active: bool,
    side: str,
    qty: int,
    exposure: int,
    orders_last_minute: int,
) -> RiskDecision:
    """Pre-trade check of one order; ``exposure`` = position + orders in flight for that symbol."""
    reducing = is_risk_reducing(exposure, side, qty)
    if kill_active and not (reducing and config.allow_risk_reducing_when_killed):
        return RiskDecision(
            False,
            "kill_switch",
            "kill_switch active: no new orders" + ("" if reducing else " (only risk-reducing ones when allowed)"),
        )
    signed = qty if side == "buy" else -qty
    if not reducing and abs(exposure + signed) > config.max_position:
        return RiskDecision(
            False, "max_position", f"position would be {exposure + signed}, max_position is {config.max_position}"
        )
    if orders_last_minute >= config.max_orders_per_minute:
        return RiskDecision(
            False,
            "rate_limit",
            f"{orders_last_minute} orders in the last minute, max_orders_per_minute is {config.max_orders_per_minute}",
        )
    return RiskDecision(True)


class KillSwitch:
    """The kill switch: state in the store, side effects (cancel, export, metrics, log) here."""

    def __init__(
        self,
        store: Store,
        config: RiskConfig,
        log: EventLog,
        metrics: Metrics,
        export_path: Callable[[], None],
        cancel_working: Callable[[], int],
    ) -> None:
        self.store = store
        self.config = config
        self.log = log
        self.metrics = metrics
        self._export = export_path
        self._cancel_working = cancel_working
        self.metrics.kill_switch_active.set(1 if self.state().active else 0)

    def state(self) -> KillSwitchState:
        return self.store.kill_switch()

    @property
    def active(self) -> bool:
        return self.state().active

    def trip(self, reason: str, by: str) -> bool:
        """Activate (idempotent). Returns True when this call tripped it."""
        tripped = self.store.trip_kill_switch(reason, by, exports.utc_now_iso())
        self.metrics.kill_switch_active.set(1)
        if not tripped:
            return False
        self.metrics.kill_switch_trips.inc()
        cancelled = self._cancel_working()
        self._export()  # before the log line: whoever acts on it (an operator, a runbook step) reads the file
        self.log.critical(
            "kill_switch",
            f"Kill switch activated: {reason}",
            reason=reason,
            activated_by=by,
            cancelled_orders=cancelled,
        )
        return True

    def check_loss(self, pnl: DailyPnL) -> bool:
        """Trip when the daily loss limit is breached; True if it tripped now."""
        state = self.state()
        if state.active:
            return False
        level = trigger_level(self.config, state, pnl.date)
        if pnl.total <= level:
            reason = f"daily P&L {pnl.total:.2f} breached max_daily_loss {self.config.max_daily_loss:.2f}" + (
                f" (re-armed level {level:.2f})" if level != -self.config.max_daily_loss else ""
            )
            return self.trip(reason, "risk")
        return False

    def reset(self, approved_by: str, reason: str, pnl: DailyPnL) -> float | None:
        """Audited reset; returns the re-armed loss level when the day's loss is still beyond the limit."""
        if not approved_by.strip() or not reason.strip():
            raise ApprovalError("a kill switch reset needs both --approved-by NAME and --reason TEXT")
        state = self.state()
        floor: float | None = None
        if pnl.total <= trigger_level(self.config, state, pnl.date):
            floor = pnl.total - self.config.max_daily_loss
        self.store.reset_kill_switch(approved_by, reason, exports.utc_now_iso(), floor, pnl.date if floor else None)
        self.metrics.kill_switch_active.set(0)
        self._export()  # before the log line, as for a trip
        extra = (
            f"; daily P&L {pnl.total:.2f} is still beyond the limit, trigger re-armed at {floor:.2f} for {pnl.date}"
            if floor is not None
            else ""
        )
        self.log.warning(
            "kill_switch_reset",
            f"Kill switch reset approved by {approved_by}: {reason}{extra}",
            approved_by=approved_by,
            reason=reason,
            rearmed_level=floor,
        )
        return floor


def kill_switch_doc(state: KillSwitchState) -> dict[str, object]:
    return {
        "active": state.active,
        "reason": state.reason,
        "activated_at": state.activated_at,
        "activated_by": state.activated_by,
    }
