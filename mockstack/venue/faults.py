"""Venue-side faults a drill injects through ``POST /admin/faults``, parsed once and checked strictly.

Kinds (``kind`` field):

* ``lost_ack``: the next ``count`` new orders are executed but their replies are dropped (the
  connection closes with no answer), as when an acknowledgement is lost on the way back.
* ``ban``: every exchange request for ``seconds`` answers ``status`` (418 or 429) with a
  ``Retry-After`` header (``retry_after`` seconds, default: the time left).
* ``error``: exchange requests answer ``status`` (500-599, default 503), for the next ``count``
  requests or for ``seconds``.
* ``hang``: exchange requests received during ``seconds`` get no answer until the fault ends.
* ``stale_klines``: klines stop advancing (for ``seconds``, or until cleared); trading goes on.

A one-shot price shock and an order-less position are separate admin calls (they are events, not
states). Every bad parameter is a :class:`FaultSpecError` naming the field and what it accepts.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any


class FaultKind(Enum):
    LOST_ACK = "lost_ack"
    BAN = "ban"
    ERROR = "error"
    HANG = "hang"
    STALE_KLINES = "stale_klines"


KINDS = ", ".join(k.value for k in FaultKind)
MAX_SECONDS = 3600
MAX_COUNT = 10_000

_FIELDS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.LOST_ACK: ("count",),
    FaultKind.BAN: ("status", "seconds", "retry_after"),
    FaultKind.ERROR: ("status", "count", "seconds"),
    FaultKind.HANG: ("seconds",),
    FaultKind.STALE_KLINES: ("seconds",),
}


class FaultSpecError(ValueError):
    """A bad admin parameter: ``field`` names it, the message says what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FaultSpec:
    kind: FaultKind
    status: int | None = None
    count: int | None = None
    seconds: float | None = None
    retry_after: int | None = None


@dataclass(frozen=True)
class Fault:
    id: str
    spec: FaultSpec
    started: float
    """Monotonic time the fault was added."""
    count_left: int | None

    def until(self) -> float | None:
        return None if self.spec.seconds is None else self.started + self.spec.seconds

    def to_json(self, now: float) -> dict[str, Any]:
        until = self.until()
        return {
            "id": self.id,
            "kind": self.spec.kind.value,
            "status": self.spec.status,
            "count_left": self.count_left,
            "seconds": self.spec.seconds,
            "seconds_left": None if until is None else round(max(0.0, until - now), 3),
            "retry_after": self.spec.retry_after,
        }


def _int(data: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    if name not in data:
        return None
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaultSpecError(name, f"field '{name}' must be an integer from {low} to {high}, got {value!r}")
    return value


def _seconds(data: Mapping[str, Any], name: str = "seconds") -> float | None:
    if name not in data:
        return None
    value = data[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_SECONDS
    ):
        raise FaultSpecError(
            name, f"field '{name}' must be a number of seconds above 0 and at most {MAX_SECONDS}, got {value!r}"
        )
    return float(value)


def parse_fault(data: Mapping[str, Any]) -> FaultSpec:
    """The fault of an admin request body, or :class:`FaultSpecError` naming the bad field."""
    raw_kind = data.get("kind")
    try:
        kind = FaultKind(raw_kind)
    except ValueError:
        raise FaultSpecError("kind", f"field 'kind' must be one of: {KINDS}; got {raw_kind!r}") from None
    allowed = _FIELDS[kind]
    for name in data:
        if name != "kind" and name not in allowed:
            raise FaultSpecError(
                name, f"field '{name}' is not a parameter of a {kind.value} fault; allowed: {', '.join(allowed)}"
            )
    seconds = _seconds(data)
    if kind is FaultKind.LOST_ACK:
        count = _int(data, "count", 1, MAX_COUNT)
        return FaultSpec(kind, count=1 if count is None else count)
    if kind is FaultKind.BAN:
        status = _int(data, "status", 0, 999)
        if status not in (418, 429):
            raise FaultSpecError("status", f"field 'status' of a ban must be 418 or 429, got {data.get('status')!r}")
        if seconds is None:
            raise FaultSpecError("seconds", f"a ban needs 'seconds' (how long it lasts, 1 to {MAX_SECONDS})")
        retry_after = _int(data, "retry_after", 1, MAX_SECONDS)
        return FaultSpec(kind, status=status, seconds=seconds, retry_after=retry_after)
    if kind is FaultKind.ERROR:
        status = _int(data, "status", 500, 599)
        count = _int(data, "count", 1, MAX_COUNT)
        if (count is None) == (seconds is None):
            raise FaultSpecError("count", "an error fault needs exactly one of 'count' (requests) or 'seconds'")
        return FaultSpec(kind, status=503 if status is None else status, count=count, seconds=seconds)
    if kind is FaultKind.HANG:
        if seconds is None:
            raise FaultSpecError(
                "seconds", f"a hang needs 'seconds' (how long requests get no answer, 1 to {MAX_SECONDS})"
            )
        return FaultSpec(kind, seconds=seconds)
    return FaultSpec(kind, seconds=seconds)


@dataclass(frozen=True)
class Refusal:
    """What an exchange request gets instead of its answer."""

    status: int
    retry_after: int | None
    message: str


class FaultBoard:
    """The active faults; thread-safe. Time-limited faults expire by themselves."""

    def __init__(
        self,
        on_change: Callable[[str, Fault], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._faults: dict[str, Fault] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._clock = clock
        self._on_change = on_change
        self._changed = threading.Condition(self._lock)

    def _expire(self) -> list[Fault]:
        now = self._clock()
        gone = [f for f in self._faults.values() if (u := f.until()) is not None and u <= now]
        for f in gone:
            del self._faults[f.id]
        return gone

    def _notify(self, what: str, faults: list[Fault]) -> None:
        if self._on_change is not None:
            for f in faults:
                self._on_change(what, f)

    def add(self, spec: FaultSpec) -> Fault:
        with self._lock:
            fault = Fault(f"V-{next(self._ids)}", spec, self._clock(), spec.count)
            self._faults[fault.id] = fault
            self._changed.notify_all()
        self._notify("added", [fault])
        return fault

    def clear(self, fault_id: str | None = None) -> list[Fault]:
        """Remove one fault (or every fault when ``fault_id`` is None); returns what went."""
        with self._lock:
            if fault_id is None:
                gone = list(self._faults.values())
                self._faults.clear()
            else:
                one = self._faults.pop(fault_id, None)
                gone = [] if one is None else [one]
            self._changed.notify_all()
        self._notify("cleared", gone)
        return gone

    def active(self) -> list[Fault]:
        with self._lock:
            expired = self._expire()
            faults = list(self._faults.values())
        self._notify("expired", expired)
        return faults

    def has(self, kind: FaultKind) -> bool:
        return any(f.spec.kind is kind for f in self.active())

    def now(self) -> float:
        return self._clock()

    def _take(self, fault: Fault) -> list[Fault]:
        """Use one of a counted fault's requests (lock held); returns the fault if that exhausted it."""
        if fault.count_left is None:
            return []
        if fault.count_left <= 1:
            del self._faults[fault.id]
            return [fault]
        self._faults[fault.id] = replace(fault, count_left=fault.count_left - 1)
        return []

    def gate(self) -> Refusal | None:
        """Called for every exchange request: wait out a hang, then a ban or error refusal, if any."""
        expired: list[Fault] = []
        with self._lock:
            while True:
                expired += self._expire()
                hang = next((f for f in self._faults.values() if f.spec.kind is FaultKind.HANG), None)
                if hang is None:
                    break
                until = hang.until()
                assert until is not None
                self._changed.wait(timeout=max(0.0, until - self._clock()) + 0.01)
            refusal: Refusal | None = None
            for fault in self._faults.values():
                if fault.spec.kind is FaultKind.BAN:
                    until = fault.until()
                    assert until is not None and fault.spec.status is not None
                    left = max(1, math.ceil(until - self._clock()))
                    retry = fault.spec.retry_after if fault.spec.retry_after is not None else left
                    word = "banned until" if fault.spec.status == 418 else "Too many requests; retry after"
                    refusal = Refusal(
                        fault.spec.status,
                        retry,
                        f"Way too much request weight used; IP {word} {retry} s (venue fault {fault.id}).",
                    )
                    break
                if fault.spec.kind is FaultKind.ERROR:
                    assert fault.spec.status is not None
                    refusal = Refusal(
                        fault.spec.status,
                        None,
                        f"Internal error; unable to process your request (venue fault {fault.id}).",
                    )
                    expired += self._take(fault)
                    break
        self._notify("expired", expired)
        return refusal

    def take_lost_ack(self) -> Fault | None:
        """If a lost-ack fault is active, use one of its orders and return it."""
        with self._lock:
            fault = next((f for f in self._faults.values() if f.spec.kind is FaultKind.LOST_ACK), None)
            exhausted = [] if fault is None else self._take(fault)
        self._notify("expired", exhausted)
        return fault
