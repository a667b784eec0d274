"""The broker's truth in SQLite: orders, fills, rejects (by idempotency key) and injected positions.

WAL mode; every state change is exactly one transaction, so ``kill -9`` at any point leaves either
the state before or the state after a change, never half of it. The connection is shared by the
asyncio thread and the admin HTTP thread, serialised by a lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from mockstack.broker.model import FillRecord, Order, OrderStatus, RejectReason, Side, StoredReject

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id        TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    client_id       TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty             INTEGER NOT NULL CHECK (qty > 0),
    limit_price     REAL NOT NULL,
    filled_qty      INTEGER NOT NULL DEFAULT 0 CHECK (filled_qty >= 0 AND filled_qty <= qty),
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejects (
    idempotency_key TEXT PRIMARY KEY,
    reason          TEXT NOT NULL,
    detail          TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    fill_id    TEXT NOT NULL UNIQUE,
    order_id   TEXT NOT NULL REFERENCES orders(order_id),
    qty        INTEGER NOT NULL CHECK (qty > 0),
    price      REAL NOT NULL,
    cum_qty    INTEGER NOT NULL,
    leaves_qty INTEGER NOT NULL,
    status     TEXT NOT NULL,
    ts         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_by_order ON fills(order_id);
CREATE TABLE IF NOT EXISTS adjustments (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol     TEXT NOT NULL,
    qty        INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
"""

_ORDER_COLUMNS = (
    "order_id, idempotency_key, client_id, session_id, symbol, side, qty, limit_price, "
    "filled_qty, status, created_at, updated_at"
)


class StoreError(Exception):
    """The state database cannot be opened or used."""


class ConflictError(StoreError):
    """A state change lost against the current state (e.g. a second fill of a filled order)."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _order(row: sqlite3.Row) -> Order:
    return Order(
        order_id=row["order_id"],
        idempotency_key=row["idempotency_key"],
        client_id=row["client_id"],
        session_id=row["session_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        qty=int(row["qty"]),
        limit_price=float(row["limit_price"]),
        filled_qty=int(row["filled_qty"]),
        status=OrderStatus(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class Store:
    """Typed access to the state database. Every public method that writes is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open state database {path}: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def ping(self) -> str:
        """A cheap read proving the database answers; returns the journal mode."""
        with self._lock:
            row = self._db.execute("PRAGMA journal_mode").fetchone()
            return str(row[0])

    # ----------------------------------------------------------------------- reads

    def order_by_key(self, idempotency_key: str) -> Order | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
        return _order(row) if row else None

    def order(self, order_id: str) -> Order | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return _order(row) if row else None

    def reject_by_key(self, idempotency_key: str) -> StoredReject | None:
        with self._lock:
            row = self._db.execute(
                "SELECT idempotency_key, reason, detail, created_at FROM rejects WHERE idempotency_key = ?",
                (idempotency_key,),
            ).fetchone()
        if row is None:
            return None
        return StoredReject(row["idempotency_key"], RejectReason(row["reason"]), row["detail"], row["created_at"])

    def orders(self) -> list[Order]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders ORDER BY seq").fetchall()
        return [_order(r) for r in rows]

    def working_orders(self, session_id: str | None = None) -> list[Order]:
        sql = f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status IN (?, ?)"
        args: tuple[str, ...] = (OrderStatus.ACCEPTED.value, OrderStatus.PARTIALLY_FILLED.value)
        if session_id is not None:
            sql += " AND session_id = ?"
            args = (*args, session_id)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return [_order(r) for r in rows]

    def fills(self, order_id: str | None = None) -> list[FillRecord]:
        sql = (
            "SELECT f.fill_id, f.order_id, o.idempotency_key, o.symbol, o.side, f.qty, f.price, f.cum_qty, "
            "f.leaves_qty, f.status, f.ts FROM fills f JOIN orders o ON o.order_id = f.order_id"
        )
        args: tuple[str, ...] = ()
        if order_id is not None:
            sql += " WHERE f.order_id = ?"
            args = (order_id,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY f.seq", args).fetchall()
        return [
            FillRecord(
                r["fill_id"],
                r["order_id"],
                r["idempotency_key"],
                r["symbol"],
                Side(r["side"]),
                int(r["qty"]),
                float(r["price"]),
                int(r["cum_qty"]),
                int(r["leaves_qty"]),
                OrderStatus(r["status"]),
                r["ts"],
            )
            for r in rows
        ]

    def traded_positions(self) -> dict[str, int]:
        """Net quantity per symbol from fills alone."""
        with self._lock:
            rows = self._db.execute(
                "SELECT o.symbol AS symbol, SUM(CASE o.side WHEN 'buy' THEN f.qty ELSE -f.qty END) AS qty "
                "FROM fills f JOIN orders o ON o.order_id = f.order_id GROUP BY o.symbol"
            ).fetchall()
        return {r["symbol"]: int(r["qty"]) for r in rows}

    def adjustments(self) -> dict[str, int]:
        """Net injected (order-less) quantity per symbol."""
        with self._lock:
            rows = self._db.execute("SELECT symbol, SUM(qty) AS qty FROM adjustments GROUP BY symbol").fetchall()
        return {r["symbol"]: int(r["qty"]) for r in rows}

    def order_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM orders").fetchone()[0])

    # ----------------------------------------------------------------------- writes (one transaction each)

    def insert_order(
        self,
        *,
        idempotency_key: str,
        client_id: str,
        session_id: str,
        symbol: str,
        side: Side,
        qty: int,
        limit_price: float,
    ) -> Order:
        """A new accepted order; its id is ``O-<sequence>``."""
        now = utc_now()
        with self._transaction() as db:
            seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM orders").fetchone()[0])
            order_id = f"O-{seq:06d}"
            db.execute(
                f"INSERT INTO orders (seq, {_ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                (
                    seq,
                    order_id,
                    idempotency_key,
                    client_id,
                    session_id,
                    symbol,
                    side.value,
                    qty,
                    limit_price,
                    OrderStatus.ACCEPTED.value,
                    now,
                    now,
                ),
            )
        return Order(
            order_id,
            idempotency_key,
            client_id,
            session_id,
            symbol,
            side,
            qty,
            limit_price,
            0,
            OrderStatus.ACCEPTED,
            now,
            now,
        )

    def insert_reject(
        self, *, idempotency_key: str, reason: RejectReason, detail: str, client_id: str, session_id: str
    ) -> StoredReject:
        now = utc_now()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO rejects (idempotency_key, reason, detail, client_id, session_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (idempotency_key, reason.value, detail, client_id, session_id, now),
            )
        return StoredReject(idempotency_key, reason, detail, now)

    def record_fill(self, order_id: str, expected_filled_qty: int, qty: int) -> FillRecord:
        """Execute ``qty`` of ``order_id`` at its limit price, if it is still working with exactly
        ``expected_filled_qty`` filled (compare-and-set: a fill can never be applied twice)."""
        now = utc_now()
        with self._transaction() as db:
            row = db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)).fetchone()
            if row is None:
                raise ConflictError(f"no order {order_id}")
            order = _order(row)
            if not order.status.working or order.filled_qty != expected_filled_qty:
                raise ConflictError(
                    f"order {order_id} is {order.status.value} with {order.filled_qty} filled, "
                    f"expected working with {expected_filled_qty}"
                )
            cum = order.filled_qty + qty
            if qty <= 0 or cum > order.qty:
                raise ConflictError(f"fill of {qty} would overfill order {order_id} ({order.filled_qty}/{order.qty})")
            status = OrderStatus.FILLED if cum == order.qty else OrderStatus.PARTIALLY_FILLED
            fill_seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM fills").fetchone()[0])
            fill_id = f"F-{fill_seq:06d}"
            db.execute(
                "INSERT INTO fills (seq, fill_id, order_id, qty, price, cum_qty, leaves_qty, status, ts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (fill_seq, fill_id, order_id, qty, order.limit_price, cum, order.qty - cum, status.value, now),
            )
            db.execute(
                "UPDATE orders SET filled_qty = ?, status = ?, updated_at = ? WHERE order_id = ?",
                (cum, status.value, now, order_id),
            )
        return FillRecord(
            fill_id,
            order_id,
            order.idempotency_key,
            order.symbol,
            order.side,
            qty,
            order.limit_price,
            cum,
            order.qty - cum,
            status,
            now,
        )

    def cancel_order(self, order_id: str) -> Order:
        """Mark a working order cancelled; ConflictError if it is unknown or no longer working."""
        now = utc_now()
        with self._transaction() as db:
            row = db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)).fetchone()
            if row is None:
                raise ConflictError(f"no order {order_id}")
            order = _order(row)
            if not order.status.working:
                raise ConflictError(f"order {order_id} is {order.status.value}")
            db.execute(
                "UPDATE orders SET status = ?, updated_at = ? WHERE order_id = ?",
                (OrderStatus.CANCELLED.value, now, order_id),
            )
        return Order(
            order.order_id,
            order.idempotency_key,
            order.client_id,
            order.session_id,
            order.symbol,
            order.side,
            order.qty,
            order.limit_price,
            order.filled_qty,
            OrderStatus.CANCELLED,
            order.created_at,
            now,
        )

    def add_adjustment(self, symbol: str, qty: int) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO adjustments (symbol, qty, created_at) VALUES (?, ?, ?)", (symbol, qty, utc_now()))

    def remove_adjustments(self, symbol: str) -> int:
        """Delete every injected adjustment of ``symbol``; returns how many rows went."""
        with self._transaction() as db:
            cur = db.execute("DELETE FROM adjustments WHERE symbol = ?", (symbol,))
            return int(cur.rowcount)
