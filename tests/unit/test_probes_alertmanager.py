"""Alertmanager v2 probes against real-shaped replies (fixtures/api/alertmanager_v2_*.json)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests

from harness.errors import ProbeError
from harness.probes import PROBES, Alert, AlertAbsent, AlertFiring, parse_alerts
from tests.unit.http_fakes import REFUSED, FakeSession, fixture_text

AM = "http://127.0.0.1:9093"
URL = AM + "/api/v2/alerts"
DURING = datetime(2026, 1, 5, 14, 33, tzinfo=UTC)  # between startsAt and endsAt of the fixture
AFTER = datetime(2026, 1, 5, 14, 40, tzinfo=UTC)


def session_with(name: str) -> FakeSession:
    s = FakeSession()
    s.reply(URL, text=fixture_text(name))
    return s


def test_parse_real_reply_into_frozen_alerts() -> None:
    alerts = parse_alerts(json.loads(fixture_text("alertmanager_v2_alerts.json")))
    by_name = {a.name: a for a in alerts}
    kill = by_name["KillSwitchActive"]
    assert isinstance(kill, Alert)
    assert kill.severity == "P0" and kill.state == "active"
    assert kill.labels["runbook"] == "kill-switch-triggered"
    assert kill.starts_at == datetime(2026, 1, 5, 14, 32, 39, tzinfo=UTC)
    assert kill.ends_at == datetime(2026, 1, 5, 14, 37, 39, tzinfo=UTC)
    assert kill.fingerprint == "fd143bf63a6820e6"
    assert by_name["BrokerConnectionLost"].state == "suppressed"
    with pytest.raises(AttributeError):
        kill.state = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"alerts": []}, "not a JSON list"),
        ([{"labels": {}, "status": {"state": "active"}, "startsAt": "2026-01-05T14:00:00Z"}], "no 'alertname'"),
        ([{"labels": {"alertname": "A"}, "startsAt": "2026-01-05T14:00:00Z"}], "status.state missing"),
        ([{"labels": {"alertname": "A"}, "status": {"state": "active"}, "startsAt": "soon"}], "not an ISO"),
    ],
)
def test_parse_rejects_wrong_shapes_naming_the_field(document: object, problem: str) -> None:
    with pytest.raises(ProbeError, match=problem):
        parse_alerts(document)


def test_zero_ends_at_means_open_ended() -> None:
    doc = [{"labels": {"alertname": "A"}, "status": {"state": "active"}, "startsAt": "2026-01-05T14:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z"}]
    assert parse_alerts(doc)[0].ends_at is None


def test_alert_firing_with_name_severity_and_labels() -> None:
    probe = AlertFiring(AM, "KillSwitchActive", severity="P0", labels={"runbook": "kill-switch-triggered"},
                        session=session_with("alertmanager_v2_alerts.json"), now=lambda: DURING)  # type: ignore[arg-type]
    obs = probe()
    assert obs.ok and isinstance(obs.value, Alert) and obs.value.name == "KillSwitchActive"
    assert "KillSwitchActive[P0]" in obs.observed


def test_wrong_severity_is_not_a_match_and_says_what_is_firing() -> None:
    probe = AlertFiring(AM, "KillSwitchActive", severity="P1", session=session_with("alertmanager_v2_alerts.json"),  # type: ignore[arg-type]
                        now=lambda: DURING)
    obs = probe()
    assert not obs.ok
    assert "KillSwitchActive not firing" in obs.observed and "KillSwitchActive[P0](active" in obs.observed


def test_suppressed_alert_is_not_firing_unless_asked() -> None:
    session = session_with("alertmanager_v2_alerts.json")
    assert not AlertFiring(AM, "BrokerConnectionLost", session=session, now=lambda: DURING)().ok  # type: ignore[arg-type]
    assert AlertFiring(AM, "BrokerConnectionLost", include_suppressed=True, session=session,  # type: ignore[arg-type]
                       now=lambda: DURING)().ok


def test_alert_past_its_ends_at_is_resolved() -> None:
    session = session_with("alertmanager_v2_alerts.json")
    assert not AlertFiring(AM, "KillSwitchActive", session=session, now=lambda: AFTER)().ok  # type: ignore[arg-type]
    assert AlertAbsent(AM, "KillSwitchActive", session=session, now=lambda: AFTER)().ok  # type: ignore[arg-type]


def test_alert_absent() -> None:
    firing = AlertAbsent(AM, "KillSwitchActive", session=session_with("alertmanager_v2_alerts.json"),  # type: ignore[arg-type]
                         now=lambda: DURING)()
    assert not firing.ok and "still firing" in firing.observed
    empty = AlertAbsent(AM, "KillSwitchActive", session=session_with("alertmanager_v2_alerts_empty.json"))()  # type: ignore[arg-type]
    assert empty.ok and "no alerts firing" in empty.observed


@pytest.mark.parametrize("probe_cls", [AlertFiring, AlertAbsent])
def test_unreachable_is_an_observation_never_ok(probe_cls: type[AlertFiring]) -> None:
    session = FakeSession(replies={URL: REFUSED})
    obs = probe_cls(AM, "KillSwitchActive", session=session)()  # type: ignore[arg-type]
    assert not obs.ok
    assert obs.observed == f"unreachable: {URL}: connection failed (connection refused)"


def test_timeout_and_bad_replies_are_observations() -> None:
    session = FakeSession(replies={URL: requests.Timeout("read timed out")})
    assert "no answer within 2s" in AlertFiring(AM, "A", session=session)().observed  # type: ignore[arg-type]
    session.reply(URL, status=503, text="not ready")
    assert AlertFiring(AM, "A", session=session)().observed == "Alertmanager answered HTTP 503: not ready"  # type: ignore[arg-type]
    session.reply(URL, text="<html>")
    assert "body is not JSON" in AlertFiring(AM, "A", session=session)().observed  # type: ignore[arg-type]
    session.reply(URL, body={"status": "success", "data": {}})  # a Prometheus URL by mistake
    assert "unexpected reply: Alertmanager reply is not a JSON list" in AlertFiring(AM, "A", session=session)().observed  # type: ignore[arg-type]


def test_registered_by_name_and_describe() -> None:
    assert PROBES["alert_firing"] is AlertFiring and PROBES["alert_absent"] is AlertAbsent
    text = AlertFiring(AM, "KillSwitchActive", severity="P0", labels={"service": "traderunner"}).describe()
    assert text == f"alert KillSwitchActive severity=P0 service=traderunner firing in Alertmanager {AM}"
