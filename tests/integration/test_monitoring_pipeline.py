"""End to end through REAL Prometheus and Alertmanager: a metric changes -> the alert is in Alertmanager.

A prometheus_client exporter in the test process stands in for the ``traderunner`` job; every other
job of the local template points at a port nobody listens on. (The full-stack alert tests reuse
``tests.support.monitoring`` once the stack launcher exists.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockstack.dashboard.app import Dashboard
from tests.support.monitoring import (
    MonitoringStack,
    StandInExporter,
    ToolMissing,
    absent,
    monitoring_stack,
    named,
    require_tool,
    wait_for_alerts,
    wait_until_scraped,
)
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

P0_DEADLINE = 5.0  # the contract: a P0 is visible in Alertmanager within 5 s of its cause


@pytest.fixture
def exporter() -> Iterator[StandInExporter]:
    with StandInExporter() as exp:
        yield exp


@pytest.fixture
def stack(tmp_path: Path, exporter: StandInExporter) -> Iterator[MonitoringStack]:
    missing = []
    for tool in ("prometheus", "alertmanager"):
        try:
            require_tool(tool)
        except ToolMissing as exc:
            missing.append(str(exc))
    if missing:
        pytest.fail("\n".join(missing), pytrace=False)
    with monitoring_stack(tmp_path, {"traderunner": exporter.port}) as running:
        running.wait(named("Watchdog"), timeout=20, expected="the Watchdog alert (pipeline alive)")
        wait_until_scraped(running, "traderunner")
        yield running


def test_kill_switch_alert_reaches_alertmanager_within_5s_and_resolves(
    stack: MonitoringStack, exporter: StandInExporter
) -> None:
    assert absent("KillSwitchActive")(stack.alerts())

    exporter.kill_switch_active.set(1)
    fired = stack.wait(
        named("KillSwitchActive", severity="P0", runbook="kill-switch-triggered"),
        timeout=P0_DEADLINE,
        expected="KillSwitchActive{severity=P0, runbook=kill-switch-triggered}",
    )
    alert = next(a for a in fired.alerts if a.name == "KillSwitchActive")
    assert "Kill switch ACTIVE" in alert.annotations["summary"]
    assert alert.annotations["description"]
    assert alert.labels["job"] == "traderunner"
    assert named("Watchdog", severity="P2", runbook="metrics-collection-failing")(fired.alerts)

    # the dashboard reads the same Alertmanager: the P0 is listed first, the Watchdog is "pipeline alive"
    board = Dashboard(f"http://127.0.0.1:{free_port()}", stack.alertmanager_url, port=0, timeout=1.0)
    try:
        summary = board.summary()
    finally:
        board.stop()
    assert summary.engine is None and not summary.traderunner.reachable
    assert summary.alerts is not None and summary.alerts.watchdog_present
    assert summary.alerts.firing[0].name == "KillSwitchActive" and summary.alerts.firing[0].severity == "P0"

    exporter.kill_switch_active.set(0)
    stack.wait(absent("KillSwitchActive"), timeout=P0_DEADLINE, expected="KillSwitchActive resolved (gone)")
    print(f"KillSwitchActive visible after {fired.elapsed:.2f}s")


def test_engine_down_fires_trading_engine_down_and_paper_outage(
    stack: MonitoringStack, exporter: StandInExporter
) -> None:
    exporter.set_mode("paper")
    time.sleep(1.5)  # let Prometheus scrape the paper mode at least once
    assert absent("TradingEngineDown")(stack.alerts())

    exporter.stop()
    down = stack.wait(
        named("TradingEngineDown", severity="P0", runbook="trading-engine-down"),
        timeout=P0_DEADLINE,
        expected="TradingEngineDown{severity=P0, runbook=trading-engine-down}",
    )
    stack.wait(
        named("PaperTradingEngineDown", severity="P1", runbook="trading-engine-down"),
        timeout=P0_DEADLINE,
        expected="PaperTradingEngineDown{severity=P1} (engine was in paper mode)",
    )
    # the other jobs of the template point at dead ports: collection failing is visible too
    assert named("MetricsTargetDown", job="broker", severity="P2")(stack.alerts())
    print(f"TradingEngineDown visible after {down.elapsed:.2f}s")


def test_watchdog_leaves_alertmanager_when_prometheus_dies(stack: MonitoringStack) -> None:
    assert named("Watchdog")(stack.alerts())
    stack.prometheus.kill()
    t0 = time.monotonic()
    # Prometheus stamps endsAt = now + 4 x max(resend delay 1 s, eval interval 1 s)
    gone = wait_for_alerts(
        stack.alertmanager_url,
        absent("Watchdog"),
        timeout=8,
        expected="Watchdog gone after Prometheus died",
        started=t0,
        watch=(stack.alertmanager,),
    )
    print(f"Watchdog gone {gone.elapsed:.2f}s after Prometheus died")
