"""A drill harness that cannot fail proves nothing: these drills run against the real stack and MUST fail,
with a message that says what was expected, what was observed and what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]

CONFTEST = "from scenarios.conftest import *  # noqa: F403  (the real step library)\n"


def run_feature(pytester: pytest.Pytester, text: str) -> tuple[pytest.RunResult, dict]:  # type: ignore[type-arg]
    pytester.makeconftest(CONFTEST)
    (pytester.path / "drill.feature").write_text(text)
    pytester.makepyfile(test_drills="from pytest_bdd import scenarios\nscenarios('.')\n")
    ini = pytester.makeini("[pytest]\nbdd_features_base_dir = .\n")
    report = pytester.path / "report"
    result = pytester.runpytest(
        "--rootdir", str(pytester.path), "-c", str(ini), "-p", "no:cacheprovider",
        "--stack-file", str(ROOT / "docker-compose.yml"), "--run-dir", str(pytester.path / "runs"),
        "--drill-report", str(report),
    )
    return result, json.loads((report / "journal.json").read_text())


def test_an_alert_that_never_fires_fails_the_drill_with_expected_and_observed(pytester: pytest.Pytester) -> None:
    result, journal = run_feature(
        pytester,
        "Feature: F\n  Scenario: S\n    Given the trading stack is running in lab mode\n"
        '    Then a P0 alert "KillSwitchActive" fires within 3 seconds\n',
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "alert KillSwitchActive severity=P0 firing" in out
    assert "KillSwitchActive not firing; Alertmanager has: Watchdog" in out
    sc = journal["scenarios"][0]
    assert [s["status"] for s in sc["steps"]] == ["passed", "failed"]


def test_a_missed_rto_fails_even_though_the_stack_recovered(pytester: pytest.Pytester) -> None:
    result, journal = run_feature(
        pytester,
        "Feature: F\n  Scenario: S\n    Given the trading stack is running in lab mode\n"
        "    When the market data feed starts serving nan bars\n"
        '    Then the SLA report shows status "violated" within 10 seconds\n'
        "    When the market data feed is repaired\n"
        '    And the on-call runs "traderunner data fetch"\n'
        '    And the on-call runs "traderunner data validate"\n'
        '    Then the SLA report shows status "ok" within 10 seconds\n'
        "    And the recovery meets an RTO of 0 seconds\n",
    )
    result.assert_outcomes(failed=1)
    assert "RTO missed: expected recovery within 0s of the fault" in result.stdout.str()
    rto = next(m for m in journal["scenarios"][0]["measurements"] if m["name"] == "RTO")
    assert rto["value_s"] > 0 and rto["met"] is False
    # the fault was rolled back although the scenario failed
    assert all(f["state"] == "rolled_back" for f in journal["scenarios"][0]["faults"])


def test_a_failing_operator_command_shows_its_output(pytester: pytest.Pytester) -> None:
    result, _ = run_feature(
        pytester,
        "Feature: F\n  Scenario: S\n    Given the trading stack is running in lab mode\n"
        '    When the on-call runs "traderunner reset-kill-switch --reason nobody-approved"\n',
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "failed with exit code 2" in out
    assert "approved-by" in out
