"""One module owns time: a clock, the drill timeline, and the metrics computed from it.

* :class:`Clock` reads a **monotonic** clock for every duration and a **wall** clock (UTC) only for
  display and for mapping timestamps found in service logs onto the timeline. Both are injectable;
  :class:`ManualClock` is the deterministic clock unit tests use (its ``sleep`` advances time).
  The default clock looks ``time.monotonic`` / ``datetime.now`` up at call time, so freezegun works.
* :class:`Timeline` records :class:`Event` s (fault injected, detected, alert fired, runbook step
  started/ended, kill switch tripped, last order, recovered, ...).
* MTTD, time-to-kill and RTO are *computed* from the events (:meth:`Timeline.mttd` ...) and judged
  against :class:`Targets` into frozen :class:`Measurement` s. ``Timeline.to_json()`` is what
  reports embed.

Definitions (all in seconds, monotonic):

* **MTTD** = first detection (``detected`` or ``alert_fired``) - first ``fault_injected``.
* **time-to-kill** = last ``last_order`` - first ``kill_switch_activated`` (0 when no order left after
  the kill switch; how long orders kept flowing once the switch was thrown).
* **RTO** = first ``recovered`` after the first fault - first ``fault_injected``.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from harness.errors import InputError

Detail = str | int | float | bool | None


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 timestamp as written by services (``2026-01-05T14:30:00.123Z``) into UTC.

    A timestamp without an offset is taken to be UTC (the stack contract says logs are UTC).
    """
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InputError(
            f"not an ISO-8601 timestamp: {text!r}",
            hint="expected e.g. 2026-01-05T14:30:00.123Z (UTC) as the stack contract's log 'ts' field",
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class Clock:
    """Monotonic time for durations, wall time (UTC) for display; both injectable.

    At construction the clock takes one (monotonic, wall) *anchor* pair; :meth:`monotonic_at` maps a
    wall-clock timestamp (e.g. from a service's log line) to this clock's monotonic scale with it.
    """

    def __init__(
        self,
        monotonic: Callable[[], float] | None = None,
        wall: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._monotonic = monotonic or (lambda: time.monotonic())
        self._wall = wall or utc_now
        self._sleep = sleep or (lambda s: time.sleep(s))
        self.anchor_monotonic = self.now()
        self.anchor_wall = self.wall()

    def now(self) -> float:
        """Monotonic seconds (only differences mean anything)."""
        return self._monotonic()

    def wall(self) -> datetime:
        """Current wall-clock time, timezone-aware UTC."""
        value = self._wall()
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)

    def monotonic_at(self, wall: datetime | str) -> float:
        """Where a wall-clock instant falls on this clock's monotonic scale (via the anchor pair)."""
        when = parse_timestamp(wall) if isinstance(wall, str) else wall
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return self.anchor_monotonic + (when - self.anchor_wall).total_seconds()

    def wall_at(self, monotonic: float) -> datetime:
        """The wall-clock instant of a monotonic reading (for display)."""
        return self.anchor_wall + timedelta(seconds=monotonic - self.anchor_monotonic)


class ManualClock(Clock):
    """A clock that only moves when told to: ``advance()`` or ``sleep()`` (which never blocks)."""

    def __init__(self, start: float = 1000.0, wall_start: datetime | None = None) -> None:
        self._t = start
        self._wall_start = wall_start or datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
        self._start = start
        self.sleeps: list[float] = []
        super().__init__(
            monotonic=lambda: self._t,
            wall=lambda: self._wall_start + timedelta(seconds=self._t - self._start),
            sleep=self._advance_sleep,
        )

    def advance(self, seconds: float) -> None:
        self._t += seconds

    def _advance_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._t += seconds


class EventKind(enum.StrEnum):
    FAULT_INJECTED = "fault_injected"
    FAULT_ROLLED_BACK = "fault_rolled_back"
    DETECTED = "detected"
    ALERT_FIRED = "alert_fired"
    ALERT_RESOLVED = "alert_resolved"
    STEP_STARTED = "step_started"
    STEP_ENDED = "step_ended"
    KILL_SWITCH_ACTIVATED = "kill_switch_activated"
    LAST_ORDER = "last_order"
    RECOVERED = "recovered"
    NOTE = "note"


DETECTION_KINDS = frozenset({EventKind.DETECTED, EventKind.ALERT_FIRED})


@dataclass(frozen=True)
class Stamp:
    """A moment on a clock: monotonic reading and wall time, taken together."""

    t: float
    wall: datetime


@dataclass(frozen=True)
class Event:
    kind: EventKind
    t: float  # monotonic seconds on the timeline's clock
    wall: datetime
    label: str
    details: Mapping[str, Detail] = field(default_factory=dict)
    source: str = "harness"  # "harness" (observed now) or "log" (mapped from a log timestamp)

    def to_dict(self, origin: float) -> dict[str, Detail | dict[str, Detail]]:
        return {
            "kind": self.kind.value,
            "offset_s": round(self.t - origin, 6),
            "wall": self.wall.isoformat(timespec="milliseconds"),
            "label": self.label,
            "source": self.source,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class Targets:
    """Objectives a drill is judged against (seconds); ``None`` = not judged."""

    mttd_s: float | None = None
    time_to_kill_s: float | None = None
    rto_s: float | None = None


@dataclass(frozen=True)
class Measurement:
    name: str
    value_s: float | None  # None = the events needed to compute it were never recorded
    target_s: float | None  # None = no objective for it
    met: bool | None  # None = no objective; False when not measured but an objective exists

    @property
    def verdict(self) -> str:
        if self.target_s is None:
            return "no target" if self.value_s is not None else "not measured"
        if self.value_s is None:
            return "missed (not measured)"
        return "met" if self.met else "missed"

    def describe(self) -> str:
        value = "n/a" if self.value_s is None else f"{self.value_s:.3f}s"
        target = "" if self.target_s is None else f" (target <= {self.target_s:g}s)"
        return f"{self.name}: {value}{target}: {self.verdict}"

    def to_dict(self) -> dict[str, Detail]:
        return {
            "name": self.name,
            "value_s": self.value_s,
            "target_s": self.target_s,
            "met": self.met,
            "verdict": self.verdict,
        }


def judge(name: str, value: float | None, target: float | None) -> Measurement:
    if target is None:
        return Measurement(name, value, None, None)
    return Measurement(name, value, target, value is not None and value <= target)


class Timeline:
    """The ordered record of what happened in one drill. Thread-safe for appends."""

    def __init__(self, clock: Clock | None = None, *, name: str = "") -> None:
        self.clock = clock or Clock()
        self.name = name
        self.origin = self.clock.now()
        self.started_at = self.clock.wall()
        self._events: list[Event] = []
        self._lock = threading.Lock()

    # --- recording -------------------------------------------------------------------------------

    def stamp(self) -> Stamp:
        return Stamp(self.clock.now(), self.clock.wall())

    def record(self, kind: EventKind | str, label: str, *, at: Stamp | None = None, **details: Detail) -> Event:
        """Record an event happening now, or at ``at`` (a :meth:`stamp` taken when it began)."""
        when = at or self.stamp()
        return self._append(Event(EventKind(kind), when.t, when.wall, label, details))

    def record_at(
        self, kind: EventKind | str, label: str, *, wall: datetime | str, **details: Detail
    ) -> Event:
        """Record an event that happened at a wall-clock instant read elsewhere (a service log's ``ts``).

        The instant is mapped onto the monotonic scale through the clock's anchor, so it can be
        compared with events observed by the harness (same host, same wall clock).
        """
        when = parse_timestamp(wall) if isinstance(wall, str) else wall
        return self._append(
            Event(EventKind(kind), self.clock.monotonic_at(when), when, label, details, source="log")
        )

    def note(self, label: str, **details: Detail) -> Event:
        return self._append(Event(EventKind.NOTE, self.clock.now(), self.clock.wall(), label, details))

    def _append(self, event: Event) -> Event:
        with self._lock:
            self._events.append(event)
        return event

    # --- reading ---------------------------------------------------------------------------------

    @property
    def events(self) -> tuple[Event, ...]:
        """All events, ordered by monotonic time (log-mapped events fall into place)."""
        with self._lock:
            return tuple(sorted(self._events, key=lambda e: e.t))

    def of(self, kinds: EventKind | str | Iterable[EventKind | str], after: float | None = None) -> tuple[Event, ...]:
        wanted = {EventKind(kinds)} if isinstance(kinds, str) else {EventKind(k) for k in kinds}
        return tuple(e for e in self.events if e.kind in wanted and (after is None or e.t >= after))

    def first(self, kinds: EventKind | str | Iterable[EventKind | str], after: float | None = None) -> Event | None:
        found = self.of(kinds, after)
        return found[0] if found else None

    def last(self, kinds: EventKind | str | Iterable[EventKind | str], after: float | None = None) -> Event | None:
        found = self.of(kinds, after)
        return found[-1] if found else None

    def elapsed(self) -> float:
        return self.clock.now() - self.origin

    # --- metrics ---------------------------------------------------------------------------------

    def mttd(self) -> float | None:
        fault = self.first(EventKind.FAULT_INJECTED)
        if fault is None:
            return None
        detection = self.first(DETECTION_KINDS, after=fault.t)
        return None if detection is None else detection.t - fault.t

    def time_to_kill(self) -> float | None:
        kill = self.first(EventKind.KILL_SWITCH_ACTIVATED)
        if kill is None:
            return None
        orders = self.of(EventKind.LAST_ORDER)
        if not orders:
            return None
        return max(0.0, orders[-1].t - kill.t)

    def rto(self) -> float | None:
        fault = self.first(EventKind.FAULT_INJECTED)
        if fault is None:
            return None
        recovered = self.first(EventKind.RECOVERED, after=fault.t)
        return None if recovered is None else recovered.t - fault.t

    def measurements(self, targets: Targets | None = None) -> tuple[Measurement, ...]:
        targets = targets or Targets()
        return (
            judge("MTTD", self.mttd(), targets.mttd_s),
            judge("time-to-kill", self.time_to_kill(), targets.time_to_kill_s),
            judge("RTO", self.rto(), targets.rto_s),
        )

    # --- serialisation ---------------------------------------------------------------------------

    def to_dict(self, targets: Targets | None = None) -> dict[str, object]:
        return {
            "name": self.name,
            "started_at": self.started_at.isoformat(timespec="milliseconds"),
            "events": [e.to_dict(self.origin) for e in self.events],
            "measurements": [m.to_dict() for m in self.measurements(targets)],
        }

    def to_json(self, targets: Targets | None = None, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(targets), indent=indent)
