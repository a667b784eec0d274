"""The traderunner's source of truth: one SQLite database in WAL mode.

``artifacts/state/traderunner.sqlite3`` holds orders, fills, positions (with average price and
realized P&L), the marks (last valid close per symbol), the daily P&L baselines, the kill switch,
the audit trail and small state values (mode, data-quality state). Every state change is one
transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so ``kill -9`` at any moment leaves either the
old or the new state. ``synchronous=NORMAL`` is durable against a process crash in WAL mode (the
WAL is in the OS page cache once ``COMMIT`` returns); only a power cut could lose the last commits.

Errors: :class:`StoreError` names the database file and what to do; it wraps ``sqlite3`` errors.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DB_RELATIVE_PATH = Path("artifacts/state/traderunner.sqlite3")

UNACKED = ("pending", "sent")
WORKING = ("acked", "partially_filled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    local_id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty INTEGER NOT NULL CHECK (qty > 0),
    limit_price REAL NOT NULL,
    status TEXT NOT NULL,
    broker_order_id TEXT,
    filled_qty INTEGER NOT NULL DEFAULT 0,
    reject_reason TEXT,
    created_at REAL NOT NULL,
    sent_at REAL,
    acked_at REAL
);
CREATE INDEX IF NOT EXISTS orders_status ON orders(status);
CREATE TABLE IF NOT EXISTS fills (
    fill_id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    order_id TEXT,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty INTEGER NOT NULL,
    price REAL NOT NULL,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    symbol TEXT PRIMARY KEY,
    qty INTEGER NOT NULL,
    avg_price REAL NOT NULL,
    realized REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS marks (
    symbol TEXT PRIMARY KEY,
    price REAL NOT NULL,
    bar_ts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS day_baseline (
    date TEXT PRIMARY KEY,
    realized REAL NOT NULL,
    unrealized REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kill_switch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    active INTEGER NOT NULL,
    reason TEXT,
    activated_at TEXT,
    activated_by TEXT,
    trips INTEGER NOT NULL DEFAULT 0,
    loss_floor REAL,
    loss_floor_date TEXT
);
INSERT OR IGNORE INTO kill_switch (id, active) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class StoreError(Exception):
    """The database cannot be opened, read or written; the message names the file."""


@dataclass(frozen=True)
class OrderRecord:
    local_id: int
    idempotency_key: str
    symbol: str
    side: str
    qty: int
    limit_price: float
    status: str
    broker_order_id: str | None
    filled_qty: int
    reject_reason: str | None
    created_at: float
    sent_at: float | None
    acked_at: float | None

    @property
    def signed_leaves(self) -> int:
        leaves = self.qty - self.filled_qty
        return leaves if self.side == "buy" else -leaves


@dataclass(frozen=True)
class Position:
    symbol: str
    qty: int
    avg_price: float
    realized: float


@dataclass(frozen=True)
class KillSwitchState:
    active: bool
    reason: str | None
    activated_at: str | None
    activated_by: str | None
    trips: int
    loss_floor: float | None
    loss_floor_date: str | None


@dataclass(frozen=True)
class AuditEntry:
    ts: str
    action: str
    actor: str
    reason: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class FillResult:
    applied_qty: int
    order: OrderRecord | None


def apply_fill_to_position(pos: Position, side: str, qty: int, price: float) -> Position:
    """Average-cost accounting: adding moves the average, reducing realizes (price - avg) per unit."""
    signed = qty if side == "buy" else -qty
    new_qty = pos.qty + signed
    realized = pos.realized
    avg = pos.avg_price
    if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
        avg = (pos.avg_price * abs(pos.qty) + price * qty) / abs(new_qty) if new_qty else 0.0
    else:
        closed = min(abs(signed), abs(pos.qty))
        direction = 1 if pos.qty > 0 else -1
        realized += (price - pos.avg_price) * closed * direction
        if new_qty == 0:
            avg = 0.0
        elif (new_qty > 0) != (pos.qty > 0):
            avg = price  # flipped through zero: the remainder opened at this price
    return Position(pos.symbol, new_qty, avg, realized)


class Store:
    """Thread-safe access to the database (one connection, one lock, one transaction per change)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=5.0)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute("SELECT count(*) FROM orders").fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open the traderunner state database {path}: {exc}. It is unreadable or corrupt; "
                f"move it aside (mv {path} {path}.broken), restart traderunner, then adopt the broker's positions "
                "with 'traderunner reconcile --accept-broker --approved-by NAME'"
            ) from exc

    @classmethod
    def open_in(cls, workdir: Path) -> Store:
        return cls(workdir / DB_RELATIVE_PATH)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot start a transaction: {exc}") from exc
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._conn.execute("ROLLBACK")
                    raise StoreError(f"{self.path}: cannot commit: {exc}") from exc

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: read failed ({exc}); the database may be corrupt") from exc

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers a query."""
        self._query("SELECT 1")

    # --- key/value state -------------------------------------------------------------------
    def get_value(self, key: str) -> Any:
        rows = self._query("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else None

    def set_value(self, key: str, value: Any) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def mode(self) -> str:
        value = self.get_value("mode")
        return str(value) if value else "lab"

    # --- audit -----------------------------------------------------------------------------
    @staticmethod
    def _audit(c: sqlite3.Connection, ts: str, action: str, actor: str, reason: str, detail: dict[str, Any]) -> None:
        c.execute(
            "INSERT INTO audit (ts, action, actor, reason, detail) VALUES (?, ?, ?, ?, ?)",
            (ts, action, actor, reason, json.dumps(detail, default=str)),
        )

    def audit(self, ts: str, action: str, actor: str, reason: str, detail: dict[str, Any] | None = None) -> None:
        with self._tx() as c:
            self._audit(c, ts, action, actor, reason, detail or {})

    def audit_entries(self) -> list[AuditEntry]:
        return [
            AuditEntry(r["ts"], r["action"], r["actor"], r["reason"], json.loads(r["detail"]))
            for r in self._query("SELECT * FROM audit ORDER BY id")
        ]

    def set_mode(self, mode: str, ts: str, actor: str, reason: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO kv (key, value) VALUES ('mode', ?)", (json.dumps(mode),))
            self._audit(c, ts, "mode", actor, reason, {"mode": mode})

    # --- kill switch -----------------------------------------------------------------------
    def kill_switch(self) -> KillSwitchState:
        r = self._query("SELECT * FROM kill_switch WHERE id = 1")[0]
        return KillSwitchState(
            bool(r["active"]),
            r["reason"],
            r["activated_at"],
            r["activated_by"],
            int(r["trips"]),
            r["loss_floor"],
            r["loss_floor_date"],
        )

    def trip_kill_switch(self, reason: str, by: str, ts: str) -> bool:
        """Activate; False (and no change) when already active."""
        with self._tx() as c:
            if c.execute("SELECT active FROM kill_switch WHERE id = 1").fetchone()["active"]:
                return False
            c.execute(
                "UPDATE kill_switch SET active = 1, reason = ?, activated_at = ?, activated_by = ?, "
                "trips = trips + 1 WHERE id = 1",
                (reason, ts, by),
            )
            self._audit(c, ts, "kill_switch_trip", by, reason, {})
            return True

    def reset_kill_switch(
        self, approved_by: str, reason: str, ts: str, loss_floor: float | None, floor_date: str | None
    ) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE kill_switch SET active = 0, loss_floor = ?, loss_floor_date = ? WHERE id = 1",
                (loss_floor, floor_date),
            )
            self._audit(c, ts, "kill_switch_reset", approved_by, reason, {"loss_floor": loss_floor})

    # --- orders ----------------------------------------------------------------------------
    @staticmethod
    def _order(r: sqlite3.Row) -> OrderRecord:
        return OrderRecord(
            r["local_id"],
            r["idempotency_key"],
            r["symbol"],
            r["side"],
            int(r["qty"]),
            float(r["limit_price"]),
            r["status"],
            r["broker_order_id"],
            int(r["filled_qty"]),
            r["reject_reason"],
            float(r["created_at"]),
            r["sent_at"],
            r["acked_at"],
        )

    def insert_order(self, key: str, symbol: str, side: str, qty: int, limit_price: float, now: float) -> OrderRecord:
        """Persist a new order (status ``sent``) BEFORE it is written to the socket: the key survives any crash."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO orders (idempotency_key, symbol, side, qty, limit_price, status, created_at, sent_at) "
                "VALUES (?, ?, ?, ?, ?, 'sent', ?, ?)",
                (key, symbol, side, qty, limit_price, now, now),
            )
            row = c.execute("SELECT * FROM orders WHERE idempotency_key = ?", (key,)).fetchone()
        return self._order(row)

    def order(self, key: str) -> OrderRecord | None:
        rows = self._query("SELECT * FROM orders WHERE idempotency_key = ?", (key,))
        return self._order(rows[0]) if rows else None

    def order_by_broker_id(self, order_id: str) -> OrderRecord | None:
        rows = self._query("SELECT * FROM orders WHERE broker_order_id = ?", (order_id,))
        return self._order(rows[0]) if rows else None

    def orders(self, statuses: tuple[str, ...] | None = None) -> list[OrderRecord]:
        if statuses is None:
            return [self._order(r) for r in self._query("SELECT * FROM orders ORDER BY local_id")]
        marks = ",".join("?" for _ in statuses)
        return [
            self._order(r)
            for r in self._query(f"SELECT * FROM orders WHERE status IN ({marks}) ORDER BY local_id", statuses)
        ]

    def count_orders_since(self, since: float) -> int:
        return int(self._query("SELECT count(*) AS n FROM orders WHERE created_at >= ?", (since,))[0]["n"])

    def mark_acked(self, key: str, order_id: str, now: float) -> OrderRecord | None:
        with self._tx() as c:
            c.execute(
                "UPDATE orders SET broker_order_id = ?, acked_at = COALESCE(acked_at, ?), "
                "status = CASE WHEN status IN ('pending', 'sent') THEN 'acked' ELSE status END "
                "WHERE idempotency_key = ?",
                (order_id, now, key),
            )
            row = c.execute("SELECT * FROM orders WHERE idempotency_key = ?", (key,)).fetchone()
        return self._order(row) if row else None

    def mark_rejected(self, key: str, reason: str) -> OrderRecord | None:
        with self._tx() as c:
            c.execute(
                "UPDATE orders SET status = 'rejected', reject_reason = ? "
                "WHERE idempotency_key = ? AND status IN ('pending', 'sent')",
                (reason, key),
            )
            row = c.execute("SELECT * FROM orders WHERE idempotency_key = ?", (key,)).fetchone()
        return self._order(row) if row else None

    def mark_cancelled(self, key: str) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE orders SET status = 'cancelled' WHERE idempotency_key = ? AND status NOT IN "
                "('filled', 'rejected', 'cancelled')",
                (key,),
            )

    def apply_fill(
        self, key: str, fill_id: str, order_id: str | None, cum_qty: int, price: float, now: float
    ) -> FillResult:
        """Record a fill by its cumulative quantity: re-delivered or already-synced fills apply 0 units.

        Order, fill and position change are one transaction.
        """
        with self._tx() as c:
            row = c.execute("SELECT * FROM orders WHERE idempotency_key = ?", (key,)).fetchone()
            if row is None:
                return FillResult(0, None)
            order = self._order(row)
            cum = min(cum_qty, order.qty)
            qty = cum - order.filled_qty
            if qty <= 0:
                return FillResult(0, order)
            if c.execute("SELECT 1 FROM fills WHERE fill_id = ?", (fill_id,)).fetchone():
                fill_id = f"{fill_id}/{cum}"
            c.execute(
                "INSERT INTO fills (fill_id, idempotency_key, order_id, symbol, side, qty, price, ts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (fill_id, key, order_id, order.symbol, order.side, qty, price, now),
            )
            status = "filled" if cum >= order.qty else "partially_filled"
            c.execute(
                "UPDATE orders SET filled_qty = ?, status = ?, broker_order_id = COALESCE(broker_order_id, ?), "
                "acked_at = COALESCE(acked_at, ?) WHERE idempotency_key = ?",
                (cum, status, order_id, now, key),
            )
            prow = c.execute("SELECT * FROM positions WHERE symbol = ?", (order.symbol,)).fetchone()
            pos = (
                Position(order.symbol, int(prow["qty"]), float(prow["avg_price"]), float(prow["realized"]))
                if prow
                else Position(order.symbol, 0, 0.0, 0.0)
            )
            new = apply_fill_to_position(pos, order.side, qty, price)
            c.execute(
                "INSERT OR REPLACE INTO positions (symbol, qty, avg_price, realized) VALUES (?, ?, ?, ?)",
                (new.symbol, new.qty, new.avg_price, new.realized),
            )
            updated = self._order(c.execute("SELECT * FROM orders WHERE idempotency_key = ?", (key,)).fetchone())
        return FillResult(qty, updated)

    def fills_count(self) -> int:
        return int(self._query("SELECT count(*) AS n FROM fills")[0]["n"])

    # --- positions, marks, P&L -------------------------------------------------------------
    def positions(self) -> dict[str, Position]:
        return {
            r["symbol"]: Position(r["symbol"], int(r["qty"]), float(r["avg_price"]), float(r["realized"]))
            for r in self._query("SELECT * FROM positions ORDER BY symbol")
        }

    def adopt_positions(
        self, target: dict[str, int], marks: dict[str, float], approved_by: str, ts: str, detail: dict[str, Any]
    ) -> None:
        """Set positions to ``target`` (the broker's); the difference is booked at the current mark. Audited."""
        with self._tx() as c:
            current = {r["symbol"]: r for r in c.execute("SELECT * FROM positions").fetchall()}
            for symbol in sorted(set(current) | set(target)):
                qty = int(target.get(symbol, 0))
                row = current.get(symbol)
                old = (
                    Position(symbol, int(row["qty"]), float(row["avg_price"]), float(row["realized"]))
                    if row
                    else Position(symbol, 0, 0.0, 0.0)
                )
                delta = qty - old.qty
                if delta == 0:
                    continue
                price = marks.get(symbol, old.avg_price or 0.0)
                new = apply_fill_to_position(old, "buy" if delta > 0 else "sell", abs(delta), price)
                c.execute(
                    "INSERT OR REPLACE INTO positions (symbol, qty, avg_price, realized) VALUES (?, ?, ?, ?)",
                    (symbol, new.qty, new.avg_price, new.realized),
                )
            self._audit(c, ts, "reconcile_accept_broker", approved_by, "adopt broker positions", detail)

    def marks(self) -> dict[str, float]:
        return {r["symbol"]: float(r["price"]) for r in self._query("SELECT * FROM marks")}

    def set_marks(self, marks: dict[str, tuple[float, int]]) -> None:
        if not marks:
            return
        with self._tx() as c:
            c.executemany(
                "INSERT OR REPLACE INTO marks (symbol, price, bar_ts) VALUES (?, ?, ?)",
                [(s, p, t) for s, (p, t) in marks.items()],
            )

    def baseline(self, date: str) -> tuple[float, float] | None:
        rows = self._query("SELECT realized, unrealized FROM day_baseline WHERE date = ?", (date,))
        return (float(rows[0]["realized"]), float(rows[0]["unrealized"])) if rows else None

    def set_baseline(self, date: str, realized: float, unrealized: float) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO day_baseline (date, realized, unrealized) VALUES (?, ?, ?)",
                (date, realized, unrealized),
            )
