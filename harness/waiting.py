"""The one way the harness waits: :func:`wait_until` polls a probe until it is satisfied or a deadline passes.

A probe is any callable returning an :class:`Observation` (``harness.probes`` has the real ones).
``wait_until`` records every attempt and the last observation; on timeout it raises
:class:`~harness.errors.WaitTimeout` with what was expected, what was last observed, how many
attempts over how long, the last log lines of the service involved and a hint. When the service
it depends on has died it fails at once with :class:`~harness.errors.ServiceDied` instead of
waiting out the deadline. Time comes from an injectable :class:`~harness.clock.Clock`, so tests
never sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.clock import Clock
from harness.errors import DrillError, ServiceDied, WaitTimeout

if TYPE_CHECKING:
    from harness.backends.base import Backend

LOG_LINES = 15


@dataclass(frozen=True)
class Observation:
    """One look at the world: did it satisfy the probe, what was seen (for people), and the value."""

    ok: bool
    observed: str
    value: Any = None


Probe = Callable[[], Observation]


@dataclass(frozen=True)
class WaitResult:
    observation: Observation
    elapsed_s: float
    attempts: int
    started_at: float  # monotonic reading when the wait began
    satisfied_at: float  # monotonic reading of the satisfying observation

    @property
    def value(self) -> Any:
        return self.observation.value

    @property
    def observed(self) -> str:
        return self.observation.observed


def wait_until(
    probe: Probe,
    *,
    deadline_s: float,
    what: str,
    interval_s: float = 0.1,
    backend: Backend | None = None,
    service: str | None = None,
    clock: Clock | None = None,
    allow_stopped: bool = False,
    hint: str | None = None,
    log_lines: int = LOG_LINES,
) -> WaitResult:
    """Call ``probe`` every ``interval_s`` until it returns ``ok``; at most ``deadline_s`` seconds.

    ``what`` says what is expected, in words a trader reads ("alert KillSwitchActive firing, P0").
    With ``backend`` and ``service``, a service that is DEAD (or STOPPED, unless ``allow_stopped``)
    ends the wait at once with :class:`ServiceDied`, and a timeout shows its last log lines.
    Exceptions raised by the probe itself propagate unchanged (probes turn transport errors into
    observations, so an exception is a bug or a misuse worth seeing).
    """
    if deadline_s < 0:
        raise ValueError(f"deadline_s must be >= 0, got {deadline_s}")
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    clock = clock or Clock()
    start = clock.now()
    attempts = 0
    while True:
        attempts += 1
        observation = probe()
        now = clock.now()
        if observation.ok:
            return WaitResult(observation, now - start, attempts, start, now)
        if backend is not None and service is not None:
            _fail_if_dead(backend, service, what, observation, attempts, now - start, allow_stopped, log_lines)
        elapsed = now - start
        remaining = deadline_s - elapsed
        if remaining <= 0:
            raise WaitTimeout(
                _timeout_message(what, observation, attempts, elapsed, deadline_s, backend, service, log_lines),
                hint=hint or _default_hint(service),
            )
        clock.sleep(min(interval_s, remaining))


def _fail_if_dead(
    backend: Backend,
    service: str,
    what: str,
    observation: Observation,
    attempts: int,
    elapsed: float,
    allow_stopped: bool,
    log_lines: int,
) -> None:
    from harness.backends.base import ServiceState

    state = backend.state(service)
    if state is ServiceState.DEAD or (state is ServiceState.STOPPED and not allow_stopped):
        how = "exited without being asked to" if state is ServiceState.DEAD else "is stopped"
        raise ServiceDied(
            f"gave up waiting for: {what}\n"
            f"  {service} {how} (state {state.value}) after {attempts} attempt(s), {elapsed:.2f}s in\n"
            f"  last observed: {observation.observed}\n" + _log_block(backend, service, log_lines),
            hint=f"the wait cannot succeed while {service} is down: see its log above; "
            f"`drill stack status` shows every service, `drill cleanup` reverts injected faults",
        )


def _timeout_message(
    what: str,
    observation: Observation,
    attempts: int,
    elapsed: float,
    deadline_s: float,
    backend: Backend | None,
    service: str | None,
    log_lines: int,
) -> str:
    lines = [
        f"timed out after {elapsed:.2f}s (deadline {deadline_s:g}s)",
        f"  expected: {what}",
        f"  last observed: {observation.observed}",
        f"  attempts: {attempts}",
    ]
    text = "\n".join(lines)
    if backend is not None and service is not None:
        text += "\n" + _log_block(backend, service, log_lines)
    return text


def _log_block(backend: Backend, service: str, log_lines: int) -> str:
    try:
        tail = backend.log_tail(service, log_lines)
    except (DrillError, OSError) as exc:  # shown in the message, never hidden
        return f"  last log lines of {service}: unavailable ({type(exc).__name__}: {exc})"
    if not tail:
        return f"  last log lines of {service}: (log is empty)"
    body = "\n".join(f"    | {line.rstrip()}" for line in tail[-log_lines:])
    return f"  last {min(len(tail), log_lines)} log lines of {service}:\n{body}"


def _default_hint(service: str | None) -> str:
    where = f" and {service}'s log above" if service else ""
    return (
        "compare the expected and observed values" + where + "; if the stack is only slow, raise the "
        "deadline; `drill stack status` shows what is running"
    )
