"""The venue's truth in SQLite: orders, fills, balances, order-less bookings and price shocks.

WAL mode; every state change (an order placed and possibly filled, a resting order filled, a cancel,
a booking) is exactly one transaction that also moves the balances, so ``kill -9`` at any point
leaves the state before or after a change, never half of it. Amounts are ``Decimal`` stored as
text. The connection is shared by the HTTP threads and the matcher thread, serialised by a lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    order_id        INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    type            TEXT NOT NULL,
    time_in_force   TEXT NOT NULL,
    price           TEXT NOT NULL,
    orig_qty        TEXT NOT NULL,
    executed_qty    TEXT NOT NULL,
    cumm_quote_qty  TEXT NOT NULL,
    status          TEXT NOT NULL,
    reserved        TEXT NOT NULL,
    time_ms         INTEGER NOT NULL,
    update_time_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    trade_id         INTEGER PRIMARY KEY,
    order_id         INTEGER NOT NULL REFERENCES orders(order_id),
    symbol           TEXT NOT NULL,
    side             TEXT NOT NULL,
    price            TEXT NOT NULL,
    qty              TEXT NOT NULL,
    quote_qty        TEXT NOT NULL,
    commission       TEXT NOT NULL,
    commission_asset TEXT NOT NULL,
    is_maker         INTEGER NOT NULL,
    time_ms          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_by_order ON fills(order_id);
CREATE TABLE IF NOT EXISTS balances (asset TEXT PRIMARY KEY, free TEXT NOT NULL, locked TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bookings (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    asset   TEXT NOT NULL,
    amount  TEXT NOT NULL,
    reason  TEXT NOT NULL,
    time_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS shocks (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol TEXT NOT NULL,
    tick   INTEGER NOT NULL,
    factor REAL NOT NULL
);
"""


class Side(Enum):
    BUY = "BUY"
    SELL = "SELL"


class Status(Enum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"

    @property
    def working(self) -> bool:
        return self in (Status.NEW, Status.PARTIALLY_FILLED)


@dataclass(frozen=True)
class Order:
    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cumm_quote_qty: Decimal
    status: Status
    reserved: Decimal
    """What this order still holds locked (quote for a buy, base for a sell)."""
    time_ms: int
    update_time_ms: int


@dataclass(frozen=True)
class FillRecord:
    trade_id: int
    order_id: int
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    time_ms: int


@dataclass(frozen=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal


@dataclass(frozen=True)
class Booking:
    asset: str
    amount: Decimal
    reason: str
    time_ms: int


class LedgerError(Exception):
    """The state database cannot be opened or used."""


class InsufficientBalance(LedgerError):
    def __init__(self, asset: str, needed: Decimal, free: Decimal) -> None:
        super().__init__(f"needs {needed} {asset} free, has {free}")
        self.asset = asset
        self.needed = needed
        self.free = free


class OrderGone(LedgerError):
    """The order is unknown or no longer working."""


_ORDER_COLUMNS = (
    "order_id, client_order_id, symbol, side, type, time_in_force, price, orig_qty, executed_qty, "
    "cumm_quote_qty, status, reserved, time_ms, update_time_ms"
)
_FILL_COLUMNS = (
    "trade_id, order_id, symbol, side, price, qty, quote_qty, commission, commission_asset, is_maker, time_ms"
)


def _order(row: sqlite3.Row) -> Order:
    return Order(
        order_id=int(row["order_id"]),
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        type=row["type"],
        time_in_force=row["time_in_force"],
        price=Decimal(row["price"]),
        orig_qty=Decimal(row["orig_qty"]),
        executed_qty=Decimal(row["executed_qty"]),
        cumm_quote_qty=Decimal(row["cumm_quote_qty"]),
        status=Status(row["status"]),
        reserved=Decimal(row["reserved"]),
        time_ms=int(row["time_ms"]),
        update_time_ms=int(row["update_time_ms"]),
    )


def _fill(row: sqlite3.Row) -> FillRecord:
    return FillRecord(
        trade_id=int(row["trade_id"]),
        order_id=int(row["order_id"]),
        symbol=row["symbol"],
        side=Side(row["side"]),
        price=Decimal(row["price"]),
        qty=Decimal(row["qty"]),
        quote_qty=Decimal(row["quote_qty"]),
        commission=Decimal(row["commission"]),
        commission_asset=row["commission_asset"],
        is_maker=bool(row["is_maker"]),
        time_ms=int(row["time_ms"]),
    )


@dataclass(frozen=True)
class NewOrder:
    """An order as validated by the engine, before the ledger gives it an id."""

    client_order_id: str
    symbol: str
    base: str
    quote: str
    side: Side
    type: str
    time_in_force: str
    price: Decimal
    qty: Decimal


class Ledger:
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
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open state database {path}: {exc}") from exc

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
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    # ----------------------------------------------------------------------- set-up

    def genesis(self, default: int) -> int:
        """The first second of the price walk: stored on first start so a restart continues the same walk."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'genesis'").fetchone()
            if row is not None:
                return int(row[0])
            db.execute("INSERT INTO meta (key, value) VALUES ('genesis', ?)", (str(default),))
            return default

    def seed_balances(self, balances: Mapping[str, Decimal]) -> None:
        """Opening balances, only on a fresh database (a restart keeps the booked state)."""
        with self._transaction() as db:
            if db.execute("SELECT COUNT(*) FROM balances").fetchone()[0]:
                return
            for asset, amount in balances.items():
                db.execute("INSERT INTO balances (asset, free, locked) VALUES (?, ?, '0')", (asset, str(amount)))

    def shocks(self) -> list[tuple[str, int, float]]:
        with self._lock:
            rows = self._db.execute("SELECT symbol, tick, factor FROM shocks ORDER BY seq").fetchall()
        return [(r["symbol"], int(r["tick"]), float(r["factor"])) for r in rows]

    def record_shock(self, symbol: str, tick: int, factor: float) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO shocks (symbol, tick, factor) VALUES (?, ?, ?)", (symbol, tick, factor))

    # ----------------------------------------------------------------------- reads

    def order(self, order_id: int) -> Order | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return _order(row) if row else None

    def order_by_client_id(self, client_order_id: str) -> Order | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_order_id = ?", (client_order_id,)
            ).fetchone()
        return _order(row) if row else None

    def orders(self, symbol: str | None = None, working_only: bool = False) -> list[Order]:
        sql = f"SELECT {_ORDER_COLUMNS} FROM orders WHERE 1 = 1"
        args: list[object] = []
        if symbol is not None:
            sql += " AND symbol = ?"
            args.append(symbol)
        if working_only:
            sql += " AND status IN ('NEW', 'PARTIALLY_FILLED')"
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY order_id", args).fetchall()
        return [_order(r) for r in rows]

    def fills(self, symbol: str | None = None, order_id: int | None = None) -> list[FillRecord]:
        sql = f"SELECT {_FILL_COLUMNS} FROM fills WHERE 1 = 1"
        args: list[object] = []
        if symbol is not None:
            sql += " AND symbol = ?"
            args.append(symbol)
        if order_id is not None:
            sql += " AND order_id = ?"
            args.append(order_id)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY trade_id", args).fetchall()
        return [_fill(r) for r in rows]

    def balances(self) -> list[Balance]:
        with self._lock:
            rows = self._db.execute("SELECT asset, free, locked FROM balances ORDER BY asset").fetchall()
        return [Balance(r["asset"], Decimal(r["free"]), Decimal(r["locked"])) for r in rows]

    def bookings(self) -> list[Booking]:
        with self._lock:
            rows = self._db.execute("SELECT asset, amount, reason, time_ms FROM bookings ORDER BY seq").fetchall()
        return [Booking(r["asset"], Decimal(r["amount"]), r["reason"], int(r["time_ms"])) for r in rows]

    # ----------------------------------------------------------------------- writes

    @staticmethod
    def _balance(db: sqlite3.Connection, asset: str) -> Balance:
        row = db.execute("SELECT free, locked FROM balances WHERE asset = ?", (asset,)).fetchone()
        if row is None:
            return Balance(asset, Decimal(0), Decimal(0))
        return Balance(asset, Decimal(row["free"]), Decimal(row["locked"]))

    @staticmethod
    def _move(db: sqlite3.Connection, asset: str, free: Decimal = Decimal(0), locked: Decimal = Decimal(0)) -> None:
        current = Ledger._balance(db, asset)
        db.execute(
            "INSERT INTO balances (asset, free, locked) VALUES (?, ?, ?) "
            "ON CONFLICT(asset) DO UPDATE SET free = excluded.free, locked = excluded.locked",
            (asset, str(current.free + free), str(current.locked + locked)),
        )

    def place(self, new: NewOrder, now_ms: int, fill_price: Decimal | None) -> tuple[Order, bool]:
        """Book ``new`` (locking what it needs), filling it at ``fill_price`` at once when given.

        Returns ``(order, created)``: a client order id seen before returns the original order and
        ``created=False`` (never a second order, never a second fill). Raises
        :class:`InsufficientBalance` (nothing booked) when the free balance does not cover it.
        """
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_order_id = ?", (new.client_order_id,)
            ).fetchone()
            if row is not None:
                return _order(row), False
            if new.side is Side.BUY:
                asset, need = new.quote, new.qty * (new.price if fill_price is None else max(new.price, fill_price))
            else:
                asset, need = new.base, new.qty
            have = self._balance(db, asset).free
            if have < need:
                raise InsufficientBalance(asset, need, have)
            order_id = int(db.execute("SELECT COALESCE(MAX(order_id), 0) + 1 FROM orders").fetchone()[0])
            self._move(db, asset, free=-need, locked=need)
            db.execute(
                f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '0', '0', 'NEW', ?, ?, ?)",
                (
                    order_id,
                    new.client_order_id,
                    new.symbol,
                    new.side.value,
                    new.type,
                    new.time_in_force,
                    str(new.price),
                    str(new.qty),
                    str(need),
                    now_ms,
                    now_ms,
                ),
            )
            if fill_price is not None:
                self._fill(db, order_id, new.base, new.quote, fill_price, now_ms, is_maker=False)
            order = _order(
                db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)).fetchone()
            )
            return order, True

    def fill(self, order_id: int, base: str, quote: str, price: Decimal, now_ms: int) -> Order:
        """Fill what is left of a working order at ``price`` (a resting order that the market reached)."""
        with self._transaction() as db:
            self._fill(db, order_id, base, quote, price, now_ms, is_maker=True)
            return _order(db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)).fetchone())

    def _fill(
        self, db: sqlite3.Connection, order_id: int, base: str, quote: str, price: Decimal, now_ms: int, is_maker: bool
    ) -> None:
        row = db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        if row is None or not _order(row).status.working:
            raise OrderGone(f"order {order_id} is not working")
        order = _order(row)
        qty = order.orig_qty - order.executed_qty
        quote_qty = qty * price
        if order.side is Side.BUY:
            self._move(db, quote, free=order.reserved - quote_qty, locked=-order.reserved)
            self._move(db, base, free=qty)
        else:
            self._move(db, base, locked=-order.reserved)
            self._move(db, quote, free=quote_qty)
        trade_id = int(db.execute("SELECT COALESCE(MAX(trade_id), 0) + 1 FROM fills").fetchone()[0])
        db.execute(
            f"INSERT INTO fills ({_FILL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, '0', ?, ?, ?)",
            (
                trade_id,
                order_id,
                order.symbol,
                order.side.value,
                str(price),
                str(qty),
                str(quote_qty),
                base if order.side is Side.BUY else quote,
                int(is_maker),
                now_ms,
            ),
        )
        done = replace(
            order,
            executed_qty=order.orig_qty,
            cumm_quote_qty=order.cumm_quote_qty + quote_qty,
            status=Status.FILLED,
            reserved=Decimal(0),
            update_time_ms=now_ms,
        )
        db.execute(
            "UPDATE orders SET executed_qty = ?, cumm_quote_qty = ?, status = ?, reserved = '0', update_time_ms = ? "
            "WHERE order_id = ?",
            (str(done.executed_qty), str(done.cumm_quote_qty), done.status.value, now_ms, order_id),
        )

    def cancel(self, order_id: int, base: str, quote: str, now_ms: int) -> Order:
        """Cancel a working order and release what it held; :class:`OrderGone` if it is not working."""
        with self._transaction() as db:
            row = db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)).fetchone()
            if row is None or not _order(row).status.working:
                raise OrderGone(f"order {order_id} is not working")
            order = _order(row)
            asset = quote if order.side is Side.BUY else base
            self._move(db, asset, free=order.reserved, locked=-order.reserved)
            db.execute(
                "UPDATE orders SET status = 'CANCELED', reserved = '0', update_time_ms = ? WHERE order_id = ?",
                (now_ms, order_id),
            )
            return replace(order, status=Status.CANCELED, reserved=Decimal(0), update_time_ms=now_ms)

    def book(self, asset: str, amount: Decimal, reason: str, now_ms: int) -> Balance:
        """Credit (or debit) ``asset`` with no order behind it: an unexplained position."""
        with self._transaction() as db:
            if self._balance(db, asset).free + amount < 0:
                raise InsufficientBalance(asset, -amount, self._balance(db, asset).free)
            self._move(db, asset, free=amount)
            db.execute(
                "INSERT INTO bookings (asset, amount, reason, time_ms) VALUES (?, ?, ?, ?)",
                (asset, str(amount), reason, now_ms),
            )
            return self._balance(db, asset)
