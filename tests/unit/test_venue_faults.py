"""Venue fault specs are parsed strictly (400 naming the field) and the board applies them."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from mockstack.venue.faults import FaultBoard, FaultKind, FaultSpec, FaultSpecError, parse_fault


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"kind": "meteor"}, "kind", "lost_ack, ban, error, hang, stale_klines"),
        ({}, "kind", "must be one of"),
        ({"kind": "lost_ack", "count": 0}, "count", "from 1 to"),
        ({"kind": "lost_ack", "count": True}, "count", "integer"),
        ({"kind": "lost_ack", "seconds": 3}, "seconds", "allowed: count"),
        ({"kind": "ban", "status": 403, "seconds": 5}, "status", "418 or 429"),
        ({"kind": "ban", "status": 418}, "seconds", "needs 'seconds'"),
        ({"kind": "ban", "status": 429, "seconds": -1}, "seconds", "above 0"),
        ({"kind": "error", "status": 404, "count": 1}, "status", "from 500 to 599"),
        ({"kind": "error"}, "count", "exactly one of"),
        ({"kind": "error", "count": 2, "seconds": 2}, "count", "exactly one of"),
        ({"kind": "hang"}, "seconds", "needs 'seconds'"),
        ({"kind": "hang", "seconds": "10"}, "seconds", "number of seconds"),
        ({"kind": "stale_klines", "seconds": 1e9}, "seconds", "at most 3600"),
    ],
)
def test_bad_parameters_name_the_field_and_what_is_allowed(body: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_fault(body)
    assert info.value.field == field
    assert says in str(info.value)


def test_good_specs_parse_with_defaults() -> None:
    assert parse_fault({"kind": "lost_ack"}) == FaultSpec(FaultKind.LOST_ACK, count=1)
    assert parse_fault({"kind": "error", "count": 3}) == FaultSpec(FaultKind.ERROR, status=503, count=3)
    assert parse_fault({"kind": "ban", "status": 418, "seconds": 30, "retry_after": 10}).retry_after == 10
    assert parse_fault({"kind": "stale_klines"}) == FaultSpec(FaultKind.STALE_KLINES)


def test_ban_refuses_with_retry_after_until_it_expires() -> None:
    clock = Clock()
    events: list[tuple[str, str]] = []
    board = FaultBoard(lambda what, f: events.append((what, f.id)), clock=clock)
    fault = board.add(parse_fault({"kind": "ban", "status": 418, "seconds": 20}))
    refusal = board.gate()
    assert refusal is not None and refusal.status == 418 and refusal.retry_after == 20
    clock.t += 15
    refusal = board.gate()
    assert refusal is not None and refusal.retry_after == 5
    clock.t += 5
    assert board.gate() is None
    assert events == [("added", fault.id), ("expired", fault.id)]


def test_counted_error_refuses_exactly_count_requests() -> None:
    board = FaultBoard(clock=Clock())
    board.add(parse_fault({"kind": "error", "status": 502, "count": 2}))
    statuses = [r.status if (r := board.gate()) else 200 for _ in range(4)]
    assert statuses == [502, 502, 200, 200]
    assert board.active() == []


def test_lost_ack_is_used_once_per_order() -> None:
    board = FaultBoard(clock=Clock())
    board.add(parse_fault({"kind": "lost_ack", "count": 2}))
    assert board.take_lost_ack() is not None
    assert board.take_lost_ack() is not None
    assert board.take_lost_ack() is None


def test_hang_holds_requests_until_cleared() -> None:
    board = FaultBoard()
    fault = board.add(parse_fault({"kind": "hang", "seconds": 30}))
    answered = threading.Event()

    def request() -> None:
        board.gate()
        answered.set()

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    assert not answered.wait(0.3), "a request during a hang gets no answer"
    board.clear(fault.id)
    assert answered.wait(2.0), "clearing the hang releases held requests"
    thread.join(1)


def test_hang_ends_by_itself() -> None:
    board = FaultBoard()
    board.add(parse_fault({"kind": "hang", "seconds": 0.2}))
    started = time.monotonic()
    assert board.gate() is None
    assert 0.15 <= time.monotonic() - started < 2.0
