"""The pytest plugin, tested with pytester: options, dry run, journal, selection, live refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest_plugins = ["pytester"]

CONFTEST = "from scenarios.conftest import *  # noqa: F403  (the real step library, whatever it holds)\n"


@pytest.fixture
def drills(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    for name in ("kill_switch.feature", "rollback.feature"):
        (pytester.path / name).write_text((ROOT / "features" / name).read_text())
    pytester.makepyfile(test_drills="from pytest_bdd import scenarios\nscenarios('.')\n")
    pytester.makeini(
        "[pytest]\nbdd_features_base_dir = .\n"
        "markers =\n    kill_switch: x\n    rollback: x\n    runbook: x\naddopts = --strict-markers\n"
    )
    return pytester


def run(pytester: pytest.Pytester, *args: str, **kwargs: bool) -> pytest.RunResult:
    """Run pytest in the pytester directory with its own ini (not the project's pyproject)."""
    ini = next(p for p in (pytester.path / "tox.ini", pytester.path / "pytest.ini") if p.exists())
    return pytester.runpytest(
        "--rootdir", str(pytester.path), "-c", str(ini), "-p", "no:cacheprovider", *args, **kwargs
    )


def test_dry_run_describes_every_fault_and_expectation_and_touches_nothing(drills: pytest.Pytester) -> None:
    report = drills.path / "report"
    result = run(
        drills,
        "--dry-run",
        "--stack-file",
        str(ROOT / "docker-compose.yml"),
        "--drill-report",
        str(report),
        "--run-dir",
        str(drills.path / "runs"),
        "-s",
        "-m",
        "kill_switch",
    )
    result.assert_outcomes(passed=2, deselected=2)
    out = result.stdout.str()
    assert "[dry-run] would inject: " in out
    assert "price_shock" in out or "shock" in out
    assert "[dry-run] would expect within 5s: alert KillSwitchActive severity=P0 firing" in out
    assert "[dry-run] would run: traderunner reset-kill-switch" in out
    assert not (drills.path / "runs").exists() or not any((drills.path / "runs").rglob("stack.json"))
    journal = json.loads((report / "journal.json").read_text())
    assert journal["finished"] is True and journal["version"] == 1
    first = journal["scenarios"][0]
    assert first["status"] == "planned"  # a dry run ran nothing: nothing passed
    assert first["tags"] == ["kill_switch", "p0", "q1"]
    assert [s["status"] for s in first["steps"]] == ["planned"] * len(first["steps"])
    assert first["faults"] and first["faults"][0]["kind"] == "price_shock"
    assert not any((drills.path / "runs").rglob("ledger.jsonl")), "a dry run wrote a ledger"


def test_feature_selection_by_file(drills: pytest.Pytester) -> None:
    result = run(
        drills,
        "--dry-run",
        "--stack-file",
        str(ROOT / "docker-compose.yml"),
        "--run-dir",
        str(drills.path / "runs"),
        "--drill-feature",
        str(drills.path / "rollback.feature"),
    )
    result.assert_outcomes(passed=2, deselected=2)


def test_a_live_stack_is_refused_before_anything_starts(
    drills: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TR_MODE", "live")
    result = run(
        drills,
        "--dry-run",
        "--stack-file",
        str(ROOT / "docker-compose.yml"),
        "--run-dir",
        str(drills.path / "runs"),
        "-m",
        "rollback",
    )
    result.assert_outcomes(failed=2)
    assert "refusing to inject a fault into stack 'mockstack': its mode is live" in result.stdout.str()


def dry_run_feature(
    pytester: pytest.Pytester, conftest: str, feature: str, report: Path, **kwargs: bool
) -> pytest.RunResult:
    """Bind one feature text in a pytester dir and run it as a dry run with a journal in ``report``."""
    pytester.makeconftest(conftest)
    (pytester.path / "drill.feature").write_text(feature)
    pytester.makepyfile(test_drills="from pytest_bdd import scenarios\nscenarios('.')\n")
    pytester.makeini("[pytest]\nbdd_features_base_dir = .\n")
    return run(
        pytester,
        "--dry-run",
        "--stack-file",
        str(ROOT / "docker-compose.yml"),
        "--drill-report",
        str(report),
        "--run-dir",
        str(pytester.path / "runs"),
        **kwargs,
    )


def test_failed_step_is_recorded_and_later_steps_marked_skipped(pytester: pytest.Pytester) -> None:
    report = pytester.path / "report"
    result = dry_run_feature(
        pytester,
        CONFTEST,
        "Feature: F\n  Scenario: S\n    Given the trading stack is running in lab mode\n"
        '    When the on-call runs "rm -rf /"\n    Then the trading engine reports mode "lab"\n',
        report,
    )
    result.assert_outcomes(failed=1)
    assert "'rm -rf /' is not an operator command of this stack" in result.stdout.str()
    sc = json.loads((report / "journal.json").read_text())["scenarios"][0]
    assert sc["status"] == "failed"
    assert [s["status"] for s in sc["steps"]] == ["planned", "failed", "skipped"]


def test_a_scenario_is_in_the_journal_as_running_while_it_runs(pytester: pytest.Pytester) -> None:
    """A run killed mid-scenario must leave a journal that says where it stopped."""
    report = pytester.path / "report"
    conftest = (
        CONFTEST
        + "import json\nfrom pytest_bdd import then\n"
        + "@then('the journal on disk says this scenario is running')\n"
        + "def _():\n"
        + f"    sc = json.loads(open({str(report / 'journal.json')!r}).read())['scenarios']\n"
        + "    assert [s['status'] for s in sc] == ['running'], sc\n"
    )
    feature = "Feature: F\n  Scenario: S\n    Then the journal on disk says this scenario is running\n"
    result = dry_run_feature(pytester, conftest, feature, report)
    result.assert_outcomes(passed=1)
    assert json.loads((report / "journal.json").read_text())["scenarios"][0]["status"] == "planned"


def test_an_interrupted_run_journal_says_where_it_stopped_with_its_faults_and_timeline(
    pytester: pytest.Pytester,
) -> None:
    """Ctrl-C mid-step: status interrupted, the step it stopped in, the fault injected and rolled back."""
    from harness.report import write_reports
    from harness.report.model import load_run

    report = pytester.path / "report"
    conftest = (
        CONFTEST
        + "from pytest_bdd import then\n"
        + "@then('the on-call presses Ctrl-C')\n"
        + "def _():\n"
        + "    raise KeyboardInterrupt\n"
    )
    feature = (
        "Feature: F\n  Scenario: S\n    Given the trading stack is running in lab mode\n"
        "    When the market drops 8% over 3 bars on every symbol\n"
        "    Then the on-call presses Ctrl-C\n"
        '    And a P0 alert "KillSwitchActive" fires within 5 seconds\n'
    )
    result = dry_run_feature(pytester, conftest, feature, report, no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    journal = json.loads((report / "journal.json").read_text())
    assert journal["finished"] is False and journal["interrupted"] is True
    sc = journal["scenarios"][0]
    assert sc["status"] == "interrupted"
    assert [(s["text"], s["status"]) for s in sc["steps"]] == [
        ("the trading stack is running in lab mode", "planned"),
        ("the market drops 8% over 3 bars on every symbol", "planned"),
        ("the on-call presses Ctrl-C", "interrupted"),
        ('a P0 alert "KillSwitchActive" fires within 5 seconds', "skipped"),
    ]
    assert [f["kind"] for f in sc["faults"]] == ["price_shock"]
    assert sc["faults"][0]["state"] != "injected"  # rolled back before the journal was written
    assert sc["timeline"]["started_at"] and "events" in sc["timeline"]  # the drill's timeline, not {}
    files = write_reports(report)
    where = "during step Then the on-call presses Ctrl-C (line 5)"
    assert load_run(report).scenarios[0].stopped_where == where
    assert f"This scenario was interrupted {where}." in files.html.read_text()
    assert "price_shock" in files.html.read_text()


def test_a_dry_run_records_planned_never_passed(pytester: pytest.Pytester) -> None:
    report = pytester.path / "report"
    feature = "Feature: F\n  Scenario: S\n    Given the trading stack is running in lab mode\n"
    dry_run_feature(pytester, CONFTEST, feature, report).assert_outcomes(passed=1)
    sc = json.loads((report / "journal.json").read_text())["scenarios"][0]
    assert sc["status"] == "planned" and [s["status"] for s in sc["steps"]] == ["planned"]


def test_each_examples_row_carries_its_real_scenario_name_to_the_reports(pytester: pytest.Pytester) -> None:
    from harness.plugin import SCENARIO_PROPERTY
    from harness.runner import SCENARIO_PROPERTY as READ_BY_THE_RUNNER

    assert SCENARIO_PROPERTY == READ_BY_THE_RUNNER
    report = pytester.path / "report"
    feature = (
        "Feature: F\n  Scenario Outline: The broker link <failure>; then <n> attempts\n"
        "    Given the trading stack is running in lab mode\n\n"
        "    Examples:\n      | failure | n |\n      | goes down | 3 |\n      | stops answering | 4 |\n"
    )
    result = dry_run_feature(pytester, CONFTEST, feature, report)
    result.assert_outcomes(passed=2)
    props = [dict(r.user_properties).get(SCENARIO_PROPERTY)
             for r in result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
             if r.when == "setup"]
    assert props == ["The broker link goes down; then 3 attempts", "The broker link stops answering; then 4 attempts"]
