"""Detection: what Alertmanager says (GET /api/v2/alerts), exactly as the on-call's pager sees it."""

from __future__ import annotations

from pytest_bdd import given, parsers, then

from harness.clock import EventKind
from harness.drill import Drill
from harness.probes.alertmanager import AlertAbsent, AlertFiring
from harness.steps._common import role_url


@then(parsers.parse('a {severity} alert "{alert}" fires within {seconds:d} seconds'))
def alert_fires(drill: Drill, severity: str, alert: str, seconds: int) -> None:
    """The alert is firing in Alertmanager with this severity label before the deadline (a detection)."""
    probe = AlertFiring(role_url(drill.backend, "alertmanager"), alert, severity=severity)
    drill.expect(probe, within=seconds, kind=EventKind.ALERT_FIRED, label=f"{severity} {alert} fired")


@given(parsers.parse('the "{alert}" alert is firing'))
def alert_is_firing(drill: Drill, alert: str) -> None:
    """Precondition: the alert is firing (e.g. the always-on Watchdog)."""
    drill.expect(AlertFiring(role_url(drill.backend, "alertmanager"), alert), within=30, kind=EventKind.NOTE)


@then(parsers.parse('the "{alert}" alert fires again within {seconds:d} seconds'))
def alert_fires_again(drill: Drill, alert: str, seconds: int) -> None:
    """The alert is back (for a dead-man's switch this is the recovery)."""
    probe = AlertFiring(role_url(drill.backend, "alertmanager"), alert)
    drill.expect(probe, within=seconds, kind=EventKind.RECOVERED, label=f"{alert} firing again")


@then(parsers.parse('the "{alert}" alert resolves within {seconds:d} seconds'))
def alert_resolves(drill: Drill, alert: str, seconds: int) -> None:
    """The alert is no longer firing in Alertmanager (counts as recovered)."""
    probe = AlertAbsent(role_url(drill.backend, "alertmanager"), alert)
    drill.expect(probe, within=seconds, kind=EventKind.RECOVERED, label=f"{alert} resolved")


@then(parsers.parse('the "{alert}" alert disappears within {seconds:d} seconds'))
def alert_disappears(drill: Drill, alert: str, seconds: int) -> None:
    """The alert is gone: for the Watchdog, this absence IS the detection of failing metrics."""
    probe = AlertAbsent(role_url(drill.backend, "alertmanager"), alert)
    drill.expect(probe, within=seconds, kind=EventKind.DETECTED, label=f"{alert} disappeared")
