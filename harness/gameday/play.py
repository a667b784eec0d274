"""Playing a GameDay plan's steps through their real step functions, with the same :class:`Drill` as ``drill run``.

What a GameDay watches is exactly what the drill asserts: each step of the scenario calls the step
function pytest-bdd would call (the shared library or the project's own), with its parsed values.
Three things differ from a pytest run, and :class:`GameDayDrill` adds them without touching a step:

* **per-thread deadlines**: a detection is watched from the fault, concurrently with the others and
  with people acting, so its deadline counts from the fault (``within(...)`` overrides the deadline
  the step's own ``drill.expect`` uses, in that thread only); the recovery is watched until the
  drill's time limit, since people take the time they take;
* **what each wait saw**: every satisfied ``expect`` is remembered per thread (kind, label, moment),
  so the console says "detected: P0 X fired at +3.4s" and the RTO is read from the same moment;
* **cancellation**: waits in watcher threads end at once when the drill stops (abort, Ctrl-C,
  SIGTERM); the main thread's sleeps, e.g. a fault's rollback, are never interrupted.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.backends.base import Backend
from harness.clock import Clock, EventKind
from harness.drill import Drill
from harness.probes.base import Probe
from harness.waiting import WaitResult

if TYPE_CHECKING:
    from harness.gameday.plan import PlanStep
    from harness.plugin import DrillSettings


class Cancelled(Exception):  # noqa: N818 - a signal between threads, not an error a person sees
    """The drill stopped while a watcher thread was waiting."""


@dataclass(frozen=True)
class Seen:
    """One satisfied wait of a step: what it recorded on the timeline and when it was observed."""

    kind: EventKind
    label: str
    at: float  # monotonic reading of the satisfying observation


class GameDayDrill(Drill):
    """A :class:`Drill` whose waits can be re-timed per thread, report what they saw, and be cancelled."""

    def __init__(self, backend: Backend, settings: DrillSettings, *, name: str, stop: threading.Event,
                 base: Clock | None = None) -> None:
        self._stop = stop
        self._local = threading.local()
        self._base = base  # a ManualClock in unit tests; None = real time, and a cancellable wait sleeps on ``stop``
        clock = Clock(sleep=self._sleep) if base is None else Clock(base.now, base.wall, self._sleep)
        super().__init__(backend, settings, name=name, clock=clock)

    def _sleep(self, seconds: float) -> None:
        cancellable = getattr(self._local, "cancellable", False)
        if self._base is not None:
            self._base.sleep(seconds)
        elif cancellable:
            self._stop.wait(seconds)
        else:
            time.sleep(seconds)
        if cancellable and self._stop.is_set():
            raise Cancelled("the drill stopped")

    @contextmanager
    def watching(self, within: float | None = None, *, cancellable: bool = True) -> Iterator[list[Seen]]:
        """In this thread: waits end when the drill stops (``cancellable``), ``within`` replaces each
        wait's deadline, and the satisfied waits are collected into the yielded list."""
        seen: list[Seen] = []
        self._local.cancellable, self._local.within, self._local.seen = cancellable, within, seen
        try:
            yield seen
        finally:
            self._local.cancellable, self._local.within, self._local.seen = False, None, None

    def expect(
        self,
        probe: Probe,
        *,
        within: float,
        kind: EventKind = EventKind.DETECTED,
        service: str | None = None,
        label: str | None = None,
        allow_stopped: bool = True,
    ) -> WaitResult | None:
        override = getattr(self._local, "within", None)
        if self._stop.is_set() and getattr(self._local, "cancellable", False):
            raise Cancelled("the drill stopped")
        result = super().expect(probe, within=override if override is not None else within, kind=kind,
                                service=service, label=label, allow_stopped=allow_stopped)
        seen = getattr(self._local, "seen", None)
        if result is not None and seen is not None:
            seen.append(Seen(kind, label or probe.describe(), result.satisfied_at))
        return result


def call_step(step: PlanStep, drill: Drill) -> object:
    """Run ``step`` through its step function as pytest-bdd would: parsed values (with the step's
    converters) plus the drill. A generator step runs to its ``yield``; the drill's ``close()``
    reverts its faults like pytest's teardown would."""
    context = step.definition.context
    parsed = context.parser.parse_arguments(step.text) or {}
    values = {k: context.converters[k](v) if k in context.converters else v for k, v in parsed.items()}
    params = inspect.signature(context.step_func).parameters
    kwargs = {k: v for k, v in values.items() if k in params}
    if "drill" in params:
        kwargs["drill"] = drill
    result = context.step_func(**kwargs)
    if inspect.isgenerator(result):
        result = next(result, None)
    return result
