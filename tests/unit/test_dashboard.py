"""Dashboard parsing (tolerant, at the edge), rendering and configuration; no network, no sleeps."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from mockstack.dashboard.__main__ import ConfigError, parse_config
from mockstack.dashboard.app import summary_to_json
from mockstack.dashboard.model import Summary, Upstream, parse_alerts, parse_engine_status
from mockstack.dashboard.render import render_page

NESTED: dict[str, Any] = {
    "mode": "paper",
    "kill_switch": {"active": True, "reason": "daily loss limit", "activated_at": "t", "activated_by": "risk"},
    "broker": {"connected": False, "manual_intervention_required": True},
    "positions": {"positions": {"XYZ": 3, "ABC": -2}, "updated_at": "t"},
    "daily_pnl": {"realized": -400, "unrealized": -150.5, "total": -550.5, "max_daily_loss": 500},
    "sla": {"status": "violated", "violations": [{"symbol": "ABC", "kind": "gap", "detail": "missing bar"}]},
}
FLAT: dict[str, Any] = {
    "mode": "lab",
    "kill_switch_active": False,
    "broker_connected": True,
    "positions": [{"symbol": "ABC", "qty": 5}],
    "daily_pnl": 12.0,
    "sla_ok": True,
}


def page_for(raw: Any) -> str:
    engine = parse_engine_status(raw)
    return render_page(Summary("now", Upstream("traderunner", "http://x", True), engine, None))


def test_nested_status_shape() -> None:
    engine = parse_engine_status(NESTED)
    assert engine.kill_switch.active is True and engine.kill_switch.reason == "daily loss limit"
    assert engine.broker.connected is False and engine.broker.manual_intervention_required
    assert [(p.symbol, p.qty) for p in engine.positions] == [("ABC", -2.0), ("XYZ", 3.0)]
    assert engine.daily_pnl.total == -550.5
    assert engine.sla.ok is False and engine.sla.violations[0].kind == "gap"
    assert engine.notes == ()


def test_flat_status_shape() -> None:
    engine = parse_engine_status(FLAT)
    assert engine.kill_switch.active is False
    assert engine.broker.connected is True
    assert engine.positions[0].qty == 5.0
    assert engine.daily_pnl.total == 12.0
    assert engine.sla.status == "ok"


@pytest.mark.parametrize(
    ("broker", "connected", "manual"),
    [
        ("connected", True, False),
        ("disconnected", False, False),
        ("manual_intervention_required", False, True),
        ({"state": "reconnecting"}, False, False),
    ],
)
def test_broker_as_state_words(broker: Any, connected: bool, manual: bool) -> None:
    link = parse_engine_status({"broker": broker}).broker
    assert (link.connected, link.manual_intervention_required) == (connected, manual)


def test_unknown_shape_is_unknown_not_a_crash() -> None:
    engine = parse_engine_status({"something": "else", "positions": "??", "daily_pnl": {"total": "NaN"}})
    assert engine.kill_switch.active is None and engine.broker.connected is None
    assert engine.sla.status == "unknown" and engine.daily_pnl.total is None
    assert engine.notes
    page = page_for({"something": "else"})
    assert 'id="sla-badge"' in page and "badge-grey" in page and "Could not read" in page


def test_not_an_object_is_rejected() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        parse_engine_status([1, 2])


def test_page_is_red_where_it_matters_and_escapes_text() -> None:
    raw = dict(NESTED, kill_switch={"active": True, "reason": "<script>alert(1)</script>"})
    page = page_for(raw)
    assert '<meta http-equiv="refresh" content="2">' in page
    assert 'id="sla-badge" data-state="violated"' in page and "badge-red" in page
    assert 'id="kill-switch" data-state="active"' in page and "ACTIVE" in page
    assert "manual intervention" in page
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_green_badge_when_sla_ok() -> None:
    page = page_for(FLAT)
    assert 'class="tile badge-green" id="sla-badge" data-state="ok"' in page


def test_unreachable_engine_page() -> None:
    summary = Summary(
        "now", Upstream("traderunner", "http://127.0.0.1:1", False, "cannot connect (refused)"), None, None
    )
    page = render_page(summary)
    assert "TRADERUNNER UNREACHABLE" in page and "cannot connect (refused)" in page
    assert summary_to_json(summary)["traderunner"]["reachable"] is False


def test_alerts_sorted_by_severity_watchdog_separate() -> None:
    raw = [
        {"labels": {"alertname": "Watchdog", "severity": "P2"}, "status": {"state": "active"}},
        {
            "labels": {"alertname": "DataSLAViolation", "severity": "P1", "runbook": "data-sla-violation"},
            "annotations": {"summary": "SLA"},
            "status": {"state": "active"},
            "startsAt": "2026-01-01T00:00:01Z",
        },
        {
            "labels": {"alertname": "KillSwitchActive", "severity": "P0", "runbook": "kill-switch-triggered"},
            "annotations": {"summary": "KS"},
            "status": {"state": "active"},
            "startsAt": "2026-01-01T00:00:02Z",
        },
        "junk",
    ]
    alerts = parse_alerts(raw, Upstream("alertmanager", "http://am", True))
    assert alerts.watchdog_present
    assert [a.name for a in alerts.firing] == ["KillSwitchActive", "DataSLAViolation"]
    page = render_page(Summary("now", Upstream("traderunner", "http://x", True), parse_engine_status(FLAT), alerts))
    assert 'data-alertname="KillSwitchActive" data-severity="P0"' in page
    no_watchdog = parse_alerts(raw[1:], Upstream("alertmanager", "http://am", True))
    assert "Watchdog missing" in render_page(
        Summary("now", Upstream("traderunner", "http://x", True), None, no_watchdog)
    )


def test_config_flag_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_HTTP_PORT", "7999")
    monkeypatch.setenv("DASHBOARD_TRADERUNNER_URL", "http://127.0.0.1:1/")
    assert parse_config([]).port == 7999
    config = parse_config(["--http-port", "7401"])
    assert config.port == 7401 and config.traderunner_url == "http://127.0.0.1:1"
    assert config.alertmanager_url is None and config.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--http-port", "x"], "--http-port / DASHBOARD_HTTP_PORT"),
        (["--traderunner-url", "ftp://h"], "--traderunner-url / DASHBOARD_TRADERUNNER_URL"),
        (["--upstream-timeout", "0"], "--upstream-timeout"),
    ],
)
def test_bad_values_name_the_flag(argv: list[str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_config(argv)


def test_bad_value_exits_2_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mockstack.dashboard", "--http-port", "99999"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DASHBOARD_HTTP_PORT" in lines[0] and "99999" in lines[0], result.stderr
