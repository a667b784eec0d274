"""report.html and the post-incident drafts, from fixture journals (no browser: see the integration test)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main
from harness.report import write_reports
from harness.report.checklist import MET, MISSED, NOT_MEASURED, PEOPLE, scenario_checklist
from harness.report.model import load_run

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "journals"


def report_dir(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def test_html_is_one_self_contained_file_with_summary_charts_and_verdicts(tmp_path: Path) -> None:
    html = write_reports(report_dir(tmp_path, "passed")).html.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no external asset
    assert "<script" not in html and "<link" not in html and "<style>" in html
    summary = html.split('<table class="summary">', 1)[1].split("</table>", 1)[0]
    assert summary.count("<tr>") == 7  # header + 6 scenarios
    for col in ("severity", "detected in (MTTD)", "RTO vs target", "verdict"):
        assert col in summary
    assert "7.7s (target 60s)" in summary and 'v-met">met' in summary and 'v-passed">passed' in summary
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="timeline-chart"') == 6
    assert 'class="rto-target"' in html and "RTO target 60s" in html
    for mark in ("ev-fault", "ev-detected", "ev-alert", "runbook-step", "ev-recovered"):
        assert mark in html, mark
    assert "Did not finish" not in html and 'id="stopped"' not in html


def test_the_chart_places_events_in_time_from_the_fault(tmp_path: Path) -> None:
    from harness.report.html import timeline_svg

    run = load_run(report_dir(tmp_path, "passed"))
    svg = timeline_svg(run.scenarios[0], width=960)
    recovered_x = float(re.search(r'class="ev ev-recovered" cx="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    target_x = float(re.search(r'class="rto-target" x1="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    fault_x = float(re.search(r'class="ev ev-fault" d="M([\d.]+)', svg).group(1))  # type: ignore[union-attr]
    assert fault_x == 120.0  # time zero is the fault
    # recovered after 7.7s of a 60s target: about an eighth of the way to the target line
    assert 0.10 < (recovered_x - fault_x) / (target_x - fault_x) < 0.16


def test_a_crashed_run_renders_and_says_where_it_stopped(tmp_path: Path) -> None:
    files = write_reports(report_dir(tmp_path, "crashed"))
    html = files.html.read_text()
    assert 'id="stopped"' in html and "Run did not finish" in html
    assert "resets every connection" in html.split('id="stopped"', 1)[1].split("</div>", 1)[0]
    assert 'v-interrupted">interrupted' in html and 'v-failed">failed' in html
    assert "not recovered (target 60s)" in html
    assert len(files.postmortems) == 3


def test_the_checklist_is_filled_from_measurements_and_left_for_people_otherwise(tmp_path: Path) -> None:
    run = load_run(report_dir(tmp_path, "crashed"))
    ok, failed, running = (scenario_checklist(sc) for sc in run.scenarios)
    states = {it.title: it.state for it in ok}
    assert states == {
        "All team members know their roles": PEOPLE,
        "Runbook steps are clear and actionable": MET,
        "RTO (Recovery Time Objective) is met": MET,
        "Alerts fired with the right severity": MET,
        "Lessons learned documented": PEOPLE,
    }
    failed_states = {it.title: it for it in failed}
    assert failed_states["RTO (Recovery Time Objective) is met"].state == MISSED
    assert failed_states["Alerts fired with the right severity"].state == MISSED
    assert "BrokerManualInterventionRequired: MISSED" in failed_states["Alerts fired with the right severity"].evidence
    assert failed_states["Runbook steps are clear and actionable"].state == NOT_MEASURED  # never reached
    assert {it.title: it.state for it in running}["Runbook steps are clear and actionable"] == NOT_MEASURED


def test_postmortem_has_the_runbook_post_incident_sections(tmp_path: Path) -> None:
    files = write_reports(report_dir(tmp_path, "crashed"))
    by_name = {p.name: p.read_text() for p in files.postmortems}
    failed = by_name["the-broker-link-stops-answering-after-3-attempts-the-engine-asks-for-manual-inte.md"]
    for section in ("## Timeline", "## Root cause", "## Resolution", "## What monitoring caught and missed",
                    "## Drill checklist", "## Lessons learned", "## Follow-ups"):
        assert section in failed, section
    assert "`toxic`" in failed.split("## Root cause", 1)[1].split("##", 1)[0]
    monitoring = failed.split("## What monitoring caught and missed", 1)[1].split("\n## ", 1)[0]
    assert "MTTD (fault → first detection): 3.6s" in monitoring
    assert "**missed**: P0 alert `BrokerManualInterventionRequired` expected within 5s" in monitoring
    assert "- **not recovered**" in failed
    running = by_name["the-broker-link-resets-every-connection-after-3-attempts-the-engine-asks-for-man.md"]
    assert "The drill was interrupted after step" in running
    ok = by_name["the-broker-link-goes-down-after-3-attempts-the-engine-asks-for-manual-interventi.md"]
    assert "caught: P0 alert `BrokerManualInterventionRequired` fired at +4.4s" in ok
    assert "`traderunner broker reconnect` exited 0" in ok


def test_gameday_report_shows_roles_notes_and_lessons(tmp_path: Path) -> None:
    files = write_reports(report_dir(tmp_path, "gameday-q2"))
    html = files.html.read_text()
    assert "GameDay report" in html and "on-call: omar" in html
    assert 'class="notes"' in html and "network team confirms the link is back" in html
    (postmortem,) = files.postmortems
    text = postmortem.read_text()
    assert "| note (rita) | omar acknowledged the page |" in text
    assert "page earlier on the first reconnect failure" in text.split("## Lessons learned", 1)[1]


def test_drill_report_regenerates_everything_from_a_journal(tmp_path: Path) -> None:
    target = report_dir(tmp_path, "crashed")
    result = CliRunner().invoke(main, ["report", str(target)])
    assert result.exit_code == 0, result.output
    for name in ("junit.xml", "cucumber.json", "report.html"):
        assert (target / name).is_file() and f"wrote {target / name}" in result.output.replace("\n", "")
    assert "the run did not finish" in result.output
    missing = CliRunner().invoke(main, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "observed no journal" in missing.output
