"""The run record from fixture journals: merging (xdist, crashed runs), JUnit XML, Cucumber JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml

from harness.errors import InputError
from harness.report import write_reports
from harness.report.model import load_run

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "journals"


def report_dir(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def test_a_finished_run_has_its_record_and_every_scenario(tmp_path: Path) -> None:
    run = load_run(report_dir(tmp_path, "passed"))
    assert run.finished and run.stopped_at is None and run.passed
    assert run.revision and run.harness_version == "0.1.0" and run.command and run.command.startswith("drill run")
    assert len(run.scenarios) == 6 and run.totals == {"passed": 6}
    broker = run.scenarios[0]
    assert broker.quarter == "Q2" and broker.severity == "P0"
    assert broker.rto is not None and broker.rto.target_s == 60.0 and broker.rto.met is True


def test_xdist_worker_journals_are_merged_with_the_controller_metadata(tmp_path: Path) -> None:
    merged = load_run(report_dir(tmp_path, "xdist"))
    serial = load_run(report_dir(tmp_path, "passed"))
    assert [p.name for p in merged.sources] == ["journal.json", "journal-gw0.json", "journal-gw1.json"]
    assert sorted(s.nodeid for s in merged.scenarios) == sorted(s.nodeid for s in serial.scenarios)
    assert merged.command == serial.command  # the controller's command line, not a worker's
    cucumber = json.loads(write_reports(merged.report_dir).cucumber.read_text())
    assert sum(len(f["elements"]) for f in cucumber) == 6


def test_a_crashed_run_says_where_it_stopped(tmp_path: Path) -> None:
    run = load_run(report_dir(tmp_path, "crashed"))
    assert not run.finished and not run.passed
    assert run.scenarios[-1].interrupted
    assert run.stopped_at is not None
    assert "resets every connection" in run.stopped_at and "fires within 5 seconds" not in run.stopped_at
    assert "after step Then the trading engine log shows" in run.stopped_at


def test_a_missing_or_foreign_journal_is_a_clear_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="observed no journal"):
        load_run(tmp_path)
    (tmp_path / "journal.json").write_text('{"version": 99}')
    with pytest.raises(InputError, match="expected a drill journal of version 1, observed version 99"):
        load_run(tmp_path)
    (tmp_path / "journal.json").write_text('{"version": 1, "scenarios": [{"feature": 3}]}')
    with pytest.raises(InputError, match=r"scenarios\[0\]\.feature: expected a string"):
        load_run(tmp_path)


def test_junit_has_one_testcase_per_scenario_with_the_feature_as_classname(tmp_path: Path) -> None:
    files = write_reports(report_dir(tmp_path, "passed"))
    xml = JUnitXml.fromfile(str(files.junit))
    cases = [(suite.name, case) for suite in xml for case in suite]
    assert len(cases) == 6
    assert {suite for suite, _ in cases} == {"Broker connection lost", "Kill switch triggered"}
    assert all(case.classname == suite for suite, case in cases)
    assert all(case.is_passed for _, case in cases)
    assert xml.tests == 6 and xml.failures == 0


def test_junit_failure_names_the_failing_step_and_its_error_and_a_crash_is_an_error(tmp_path: Path) -> None:
    files = write_reports(report_dir(tmp_path, "crashed"))
    xml = JUnitXml.fromfile(str(files.junit))
    cases = {case.name: case for suite in xml for case in suite}
    failed = next(c for n, c in cases.items() if "stops answering" in n)
    failure = next(r for r in failed.result if isinstance(r, Failure))
    assert failure.message.startswith('And a P0 alert "BrokerManualInterventionRequired" fires within 5 seconds')
    assert "no alert firing" in (failure.text or "") or "firing" in failure.message
    crashed = next(c for n, c in cases.items() if "resets every connection" in n)
    error = next(r for r in crashed.result if isinstance(r, Error))
    assert "interrupted" in error.message
    assert next(c for n, c in cases.items() if "goes down" in n).is_passed


def test_cucumber_json_statuses_come_from_the_step_records(tmp_path: Path) -> None:
    files = write_reports(report_dir(tmp_path, "crashed"))
    features = json.loads(files.cucumber.read_text())
    assert [f["keyword"] for f in features] == ["Feature"]
    feature = features[0]
    assert feature["uri"] == "features/broker_connection.feature"
    assert {t["name"] for t in feature["tags"]} == {"@broker", "@p0", "@q2"}
    passed, failed, running = feature["elements"]
    assert {s["result"]["status"] for s in passed["steps"]} == {"passed"}
    statuses = [s["result"]["status"] for s in failed["steps"]]
    first_failure = statuses.index("failed")
    assert statuses[:first_failure] == ["passed"] * first_failure
    assert statuses[first_failure + 1:] and set(statuses[first_failure + 1:]) == {"skipped"}
    failing = failed["steps"][first_failure]
    assert "no alert firing" in failing["result"]["error_message"]
    assert failing["keyword"] == "And " and failing["line"] > 0
    assert all(isinstance(s["result"].get("duration", 0), int) for s in failed["steps"])
    assert running["steps"][-1]["result"]["status"] == "failed"
    assert "interrupted" in running["steps"][-1]["result"]["error_message"]


def test_steps_after_a_failure_are_skipped_even_when_a_writer_said_otherwise(tmp_path: Path) -> None:
    target = report_dir(tmp_path, "passed")
    data = json.loads((target / "journal.json").read_text())
    steps = data["scenarios"][0]["steps"]
    steps[3]["status"], steps[3]["error"] = "failed", "boom"
    (target / "journal.json").write_text(json.dumps(data))
    element = json.loads(write_reports(target).cucumber.read_text())[0]["elements"][0]
    assert [s["result"]["status"] for s in element["steps"]][3:] == ["failed"] + ["skipped"] * (len(steps) - 4)
