"""Domain records of the broker: orders, fills and their statuses (frozen, built from SQLite rows)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderStatus(StrEnum):
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"

    @property
    def working(self) -> bool:
        return self in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


class RejectReason(StrEnum):
    UNKNOWN_SYMBOL = "unknown_symbol"
    SIZE_LIMIT = "size_limit"
    RATE_LIMIT = "rate_limit"
    RANDOM_REJECT = "random_reject"
    INVALID_ORDER = "invalid_order"


@dataclass(frozen=True)
class Order:
    order_id: str
    idempotency_key: str
    client_id: str
    session_id: str
    symbol: str
    side: Side
    qty: int
    limit_price: float
    filled_qty: int
    status: OrderStatus
    created_at: str
    updated_at: str

    @property
    def leaves_qty(self) -> int:
        return 0 if self.status is OrderStatus.CANCELLED else self.qty - self.filled_qty


@dataclass(frozen=True)
class FillRecord:
    fill_id: str
    order_id: str
    idempotency_key: str
    symbol: str
    side: Side
    qty: int
    price: float
    cum_qty: int
    leaves_qty: int
    status: OrderStatus
    ts: str


@dataclass(frozen=True)
class StoredReject:
    """A ``place`` that was refused, kept so a repeated idempotency key gets the same answer."""

    idempotency_key: str
    reason: RejectReason
    detail: str
    created_at: str


def fill_plan(qty: int, partial_ratio: float) -> tuple[int, ...]:
    """The fill quantities of an order: orders of 2+ units fill in two parts, the first ``ratio``.

    The first part is ``floor(qty * ratio)`` clamped to ``1 .. qty-1``; a ratio of 0 or 1 disables
    partial fills (one fill of the whole quantity).
    """
    if qty < 2 or partial_ratio <= 0.0 or partial_ratio >= 1.0:
        return (qty,)
    first = min(max(int(qty * partial_ratio), 1), qty - 1)
    return (first, qty - first)


def next_fill_qty(qty: int, filled_qty: int, partial_ratio: float) -> int:
    """How much the next fill of an order with ``filled_qty`` already done executes (0 when done)."""
    done = 0
    for part in fill_plan(qty, partial_ratio):
        if filled_qty < done + part:
            return done + part - filled_qty
        done += part
    return 0
