"""What the console and the reports say is what happened: merged workers, severity, RTO, dry runs.

Issue "Fast, trustworthy runs", item 5. The plugin side (planned, interrupted, outline names) is in
test_plugin.py; the CLI side (progress lines of a dry run) in test_cli.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rich.console import Console

from harness.catalog import lint
from harness.report import write_reports
from harness.report.model import load_run
from harness.runner import print_summary
from harness.step_meaning import asserted_severity, has_recovery, rto_target_s, severity

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "journals"


def table_text(report_dir: Path) -> str:
    console = Console(record=True, width=250, color_system=None)
    print_summary(load_run(report_dir), console)
    return console.export_text()


def test_two_workers_journals_give_one_table_equal_to_the_serial_one(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "xdist", tmp_path / "xdist")
    shutil.copytree(FIXTURES / "passed", tmp_path / "passed")
    merged, serial = table_text(tmp_path / "xdist"), table_text(tmp_path / "passed")
    assert merged.count("Drill results") == 1
    assert "6 passed" in merged
    rows = [line for line in merged.splitlines() if "passed" in line and "│" in line]
    assert len(rows) == 6
    assert merged == serial  # same rows, same order (the features' order, not the workers')
    assert "resets every connection" in merged and "goes down" in merged


def test_merged_reports_list_scenarios_in_feature_order_whatever_worker_finished_first(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "xdist", tmp_path / "r")
    gw0 = tmp_path / "r" / "journal-gw0.json"
    data = json.loads(gw0.read_text())
    data["scenarios"].reverse()
    gw0.write_text(json.dumps(data))
    run = load_run(tmp_path / "r")
    keys = [(s.feature_file, s.line) for s in run.scenarios]
    assert keys == sorted(keys)
    junit = write_reports(tmp_path / "r").junit.read_text()
    assert junit.count("<testcase") == 6


def test_severity_is_what_the_scenario_asserts_falling_back_to_the_tag() -> None:
    steps = ["the broker link stops answering", 'a P1 alert "BrokerDisconnected" fires within 8 seconds',
             'a P0 alert "Other" fires']
    assert asserted_severity(steps) == "P1"
    assert severity(["p0", "q2"], steps) == "P1"
    assert severity(["p2"], ["the dashboard crashes"]) == "P2"
    assert severity([], ["nothing"]) == ""


def test_recovery_and_rto_are_read_from_the_steps() -> None:
    assert has_recovery(['the "DashboardUnavailable" alert resolves within 20 seconds'])
    assert has_recovery(["every service is healthy within 30 seconds"])
    assert not has_recovery(['a P1 alert "DataSLAViolation" fires within 8 seconds'])
    assert rto_target_s(["the recovery meets an RTO of 60 seconds"]) == 60.0
    assert rto_target_s(["trading resumes within an RTO of 2 minutes"]) == 120.0
    assert rto_target_s(["every service is healthy within 30 seconds"]) is None


def test_the_journal_and_reports_use_the_asserted_severity_not_the_feature_tag(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "passed", tmp_path / "r")
    path = tmp_path / "r" / "journal.json"
    data = json.loads(path.read_text())
    sc = data["scenarios"][0]
    assert "p0" in sc["tags"]
    sc["steps"] = [{"keyword": "Then", "text": 'a P1 alert "BrokerDisconnected" fires within 8 seconds', "line": 30,
                    "status": "passed", "duration_s": 1.0, "error": None}]
    path.write_text(json.dumps(data))
    run = load_run(tmp_path / "r")
    assert run.scenarios[0].severity == "P1"
    html = write_reports(tmp_path / "r").html.read_text()
    assert "<td>P1</td>" in html


def test_lint_flags_a_severity_tag_that_disagrees_with_the_alert_and_a_recovery_without_rto(tmp_path: Path) -> None:
    feature = tmp_path / "f.feature"
    feature.write_text(
        "@p0\nFeature: F\n"
        "  Scenario: Stall\n"
        "    Given the trading stack is running in lab mode\n"
        '    Then a P1 alert "BrokerDisconnected" fires within 8 seconds\n'
        "\n"
        "  @p2\n  Scenario: Dashboard\n"
        "    Given the trading stack is running in lab mode\n"
        "    When the dashboard crashes\n"
        '    Then a P2 alert "DashboardUnavailable" fires within 10 seconds\n'
        "    When the on-call restarts the dashboard\n"
        '    Then the "DashboardUnavailable" alert resolves within 20 seconds\n'
    )
    problems = lint([feature])
    errors = [p for p in problems if p.is_error]
    warnings = [p for p in problems if not p.is_error]
    assert [p.location for p in errors] == [f"{feature}:3"]
    assert "tagged @p0 but its first alert step asserts a P1 alert" in errors[0].message
    assert [p.location for p in warnings] == [f"{feature}:8"]
    assert "has a recovery step but states no RTO target" in warnings[0].message


def test_every_project_scenario_with_a_recovery_states_an_rto() -> None:
    assert [p for p in lint([ROOT / "features"]) if "RTO" in p.message] == []


def test_a_drill_without_recovery_says_why_it_has_no_rto(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "passed", tmp_path / "r")
    path = tmp_path / "r" / "journal.json"
    data = json.loads(path.read_text())
    sc = data["scenarios"][0]
    sc["steps"] = [s for s in sc["steps"] if "within" not in s["text"] or "fires" in s["text"]]
    sc["measurements"] = [m for m in sc["measurements"] if m["name"] != "RTO"]
    path.write_text(json.dumps(data))
    text, verdict = load_run(tmp_path / "r").scenarios[0].rto_summary
    assert text == "n/a: no recovery step"
    assert verdict == "no recovery"
    assert "n/a: no recovery step" in table_text(tmp_path / "r")


def test_a_planned_scenario_is_neither_passed_nor_failed(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "passed", tmp_path / "r")
    path = tmp_path / "r" / "journal.json"
    data = json.loads(path.read_text())
    for sc in data["scenarios"]:
        sc["status"] = "planned"
        sc["measurements"] = []
        for st in sc["steps"]:
            st["status"] = "planned"
    path.write_text(json.dumps(data))
    run = load_run(tmp_path / "r")
    assert run.totals == {"planned": 6} and run.passed
    table = table_text(tmp_path / "r")
    assert "6 planned" in table and "passed" not in table
    files = write_reports(tmp_path / "r")
    assert 'skipped="6"' in files.junit.read_text()
    cucumber = json.loads(files.cucumber.read_text())
    assert {s["result"]["status"] for f in cucumber for e in f["elements"] for s in e["steps"]} == {"skipped"}


def test_an_interrupted_scenario_says_so_instead_of_no_target(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "passed", tmp_path / "r")
    path = tmp_path / "r" / "journal.json"
    data = json.loads(path.read_text())
    data["scenarios"][0]["status"] = "interrupted"
    data["scenarios"][0]["measurements"] = []
    data["scenarios"][0]["timeline"]["measurements"] = []
    path.write_text(json.dumps(data))
    assert load_run(tmp_path / "r").scenarios[0].rto_summary == ("- (interrupted)", "not measured")
