"""Alertmanager API v2: which alerts are firing (``GET {url}/api/v2/alerts``).

The reply is parsed once, here, into frozen :class:`Alert` s. Alertmanager's own states are
``active``, ``suppressed`` (silenced or inhibited) and ``unprocessed`` (just received); an alert
counts as *firing* when it is ``active`` or ``unprocessed`` (``suppressed`` too with
``include_suppressed=True``) and its ``endsAt`` is not in the past.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from harness.clock import parse_timestamp, utc_now
from harness.errors import DrillError, ProbeError
from harness.probes._http import DEFAULT_TIMEOUT, HttpReply, http_get
from harness.probes.base import Probe
from harness.waiting import Observation

if TYPE_CHECKING:
    import requests

FIRING_STATES = frozenset({"active", "unprocessed"})


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str | None
    labels: Mapping[str, str]
    state: str
    starts_at: datetime
    ends_at: datetime | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    fingerprint: str = ""

    def matches(self, name: str, severity: str | None = None, labels: Mapping[str, str] | None = None) -> bool:
        if self.name != name:
            return False
        if severity is not None and self.severity != severity:
            return False
        return all(self.labels.get(k) == v for k, v in (labels or {}).items())

    def is_firing(self, now: datetime, *, include_suppressed: bool = False) -> bool:
        states = FIRING_STATES | {"suppressed"} if include_suppressed else FIRING_STATES
        if self.state not in states:
            return False
        return self.ends_at is None or self.ends_at > now

    def summary(self) -> str:
        extra = ",".join(
            f"{k}={v}" for k, v in sorted(self.labels.items()) if k not in ("alertname", "severity")
        )
        return f"{self.name}[{self.severity or '-'}]({self.state}{', ' + extra if extra else ''})"


def parse_alerts(document: object) -> tuple[Alert, ...]:
    """Parse an ``/api/v2/alerts`` reply; :class:`ProbeError` naming the field when it is not one."""
    if not isinstance(document, list):
        raise ProbeError(
            f"Alertmanager reply is not a JSON list of alerts (got {type(document).__name__})",
            hint="is the URL an Alertmanager (API v2), not Prometheus? it should end in :9093-like port",
        )
    alerts = []
    for i, item in enumerate(document):
        where = f"alert[{i}]"
        if not isinstance(item, dict):
            raise ProbeError(f"Alertmanager reply: {where} is not an object")
        labels = _str_map(item.get("labels"), f"{where}.labels")
        if "alertname" not in labels:
            raise ProbeError(f"Alertmanager reply: {where}.labels has no 'alertname'")
        status = item.get("status")
        state = status.get("state") if isinstance(status, dict) else None
        if not isinstance(state, str):
            raise ProbeError(f"Alertmanager reply: {where}.status.state missing")
        starts = item.get("startsAt")
        if not isinstance(starts, str):
            raise ProbeError(f"Alertmanager reply: {where}.startsAt missing")
        ends = item.get("endsAt")
        try:
            starts_at = parse_timestamp(starts)
            ends_at = parse_timestamp(ends) if isinstance(ends, str) and not ends.startswith("0001-") else None
        except DrillError as exc:
            raise ProbeError(f"Alertmanager reply: {where}: {exc.message}") from exc
        alerts.append(
            Alert(
                name=labels["alertname"],
                severity=labels.get("severity"),
                labels=labels,
                state=state,
                starts_at=starts_at,
                ends_at=ends_at,
                annotations=_str_map(item.get("annotations") or {}, f"{where}.annotations"),
                fingerprint=str(item.get("fingerprint", "")),
            )
        )
    return tuple(alerts)


def _str_map(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ProbeError(f"Alertmanager reply: {where} is not an object")
    return {str(k): str(v) for k, v in value.items()}


def fetch_alerts(
    url: str, *, timeout: float = DEFAULT_TIMEOUT, session: requests.Session | None = None
) -> tuple[Alert, ...] | str:
    """All alerts Alertmanager at ``url`` knows, or a string saying why they could not be read."""
    reply = http_get(f"{url.rstrip('/')}/api/v2/alerts", timeout=timeout, session=session)
    if not isinstance(reply, HttpReply):
        return reply.observed
    if reply.status != 200:
        return f"Alertmanager answered HTTP {reply.status}: {reply.text[:200]}"
    ok, document, problem = reply.json()
    if not ok:
        return problem
    try:
        return parse_alerts(document)
    except ProbeError as exc:
        return f"unexpected reply: {exc.message}"


class _AlertProbe(Probe):
    def __init__(
        self,
        url: str,
        alert: str,
        *,
        severity: str | None = None,
        labels: Mapping[str, str] | None = None,
        include_suppressed: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.url = url
        self.alert = alert
        self.severity = severity
        self.labels = dict(labels or {})
        self.include_suppressed = include_suppressed
        self.timeout = timeout
        self.session = session
        self.now = now

    def _wanted(self) -> str:
        parts = [self.alert]
        if self.severity:
            parts.append(f"severity={self.severity}")
        parts += [f"{k}={v}" for k, v in sorted(self.labels.items())]
        return " ".join(parts)

    def _firing(self) -> tuple[tuple[Alert, ...], tuple[Alert, ...]] | str:
        """(matching firing alerts, every firing alert) or why alerts could not be read."""
        alerts = fetch_alerts(self.url, timeout=self.timeout, session=self.session)
        if isinstance(alerts, str):
            return alerts
        now = self.now()
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        firing = tuple(a for a in alerts if a.is_firing(now, include_suppressed=self.include_suppressed))
        matching = tuple(a for a in firing if a.matches(self.alert, self.severity, self.labels))
        return matching, firing


def _listing(alerts: tuple[Alert, ...]) -> str:
    return ", ".join(a.summary() for a in alerts) if alerts else "no alerts firing"


class AlertFiring(_AlertProbe):
    """Satisfied when an alert with this name (and severity, labels) is firing. Value: the Alert."""

    name = "alert_firing"

    def __call__(self) -> Observation:
        result = self._firing()
        if isinstance(result, str):
            return Observation(False, result)
        matching, firing = result
        if matching:
            return Observation(True, f"firing: {_listing(matching)}", matching[0])
        return Observation(False, f"{self.alert} not firing; Alertmanager has: {_listing(firing)}")

    def describe(self) -> str:
        return f"alert {self._wanted()} firing in Alertmanager {self.url}"


class AlertAbsent(_AlertProbe):
    """Satisfied when no matching alert is firing (never fired, or resolved)."""

    name = "alert_absent"

    def __call__(self) -> Observation:
        result = self._firing()
        if isinstance(result, str):
            return Observation(False, result)
        matching, firing = result
        if matching:
            return Observation(False, f"still firing: {_listing(matching)}", matching[0])
        return Observation(True, f"{self.alert} not firing; Alertmanager has: {_listing(firing)}")

    def describe(self) -> str:
        return f"alert {self._wanted()} not firing (resolved) in Alertmanager {self.url}"
