"""Living documentation (``drill docs``) and the quarterly drill calendar (``drill plan``)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from click.testing import CliRunner
from freezegun import freeze_time

from harness.cli import main
from harness.report.plan import DrillRun, build_plan, describe_due
from harness.report.runbook_text import DEFAULT_QUARTERLY, quarterly_drills, section_text

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "journals"


def runs_with(tmp_path: Path, **dirs: str) -> Path:
    runs = tmp_path / "runs"
    for name, fixture in dirs.items():
        shutil.copytree(FIXTURES / fixture, runs / name)
    return runs


def test_docs_group_features_by_runbook_section_with_steps_and_last_results(tmp_path: Path) -> None:
    runs = runs_with(tmp_path, **{"report-20261101-000000": "crashed", "report-20261123-000000": "passed"})
    out = tmp_path / "docs"
    result = CliRunner().invoke(main, ["docs", "--out", str(out), "--format", "md", "--runs", str(runs),
                                       str(ROOT / "features")])
    assert result.exit_code == 0, result.output
    text = (out / "drills.md").read_text()
    sections = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert sections[:2] == ["Kill Switch Triggered", "Broker Connection Lost"]
    broker = text.split("## Broker Connection Lost", 1)[1].split("\n## ", 1)[0]
    assert "### Broker connection lost (quarterly drill Q2, P0)" in broker
    assert "Background:\n  Given the trading stack is running in lab mode" in broker
    assert "the broker link <failure>" in broker and "| goes down |" in broker  # the outline and its Examples
    assert "report-20261123-000000" in text  # the newest report, not the crashed older one
    assert "- last result: The broker link goes down; after 3 attempts the engine asks for manual intervention: " \
           "passed: detected in 3.5s, RTO 7.7s (target 60s) (met)" in broker
    data = text.split("## Data SLA Violation", 1)[1].split("\n## ", 1)[0]
    assert "not run in the newest report" in data


def test_docs_html_is_grouped_too(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    result = CliRunner().invoke(main, ["docs", "--out", str(out), "--runs", str(tmp_path / "none"),
                                       str(ROOT / "features")])
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text()
    assert '<section class="runbook-section" id="broker-connection-lost">' in html
    assert html.index('id="kill-switch-triggered"') < html.index('id="broker-connection-lost"')
    assert "no run yet" in html


def test_plan_states_over_the_year() -> None:
    titles = dict(DEFAULT_QUARTERLY)
    runs = [
        DrillRun("Q1", date(2026, 2, 10), "passed", Path("runs/a"), 2),
        DrillRun("Q2", date(2026, 5, 3), "failed", Path("runs/b"), 4),
        DrillRun("Q3", date(2025, 8, 1), "passed", Path("runs/c"), 7),  # last year's does not count
    ]
    rows = {r.quarter: r for r in build_plan(titles, runs, date(2026, 5, 20))}
    assert rows["Q1"].status == "done" and rows["Q1"].last is not None and rows["Q1"].last.result == "passed"
    assert rows["Q2"].status == "due now" and rows["Q2"].window == (date(2026, 4, 1), date(2026, 6, 30))
    assert rows["Q3"].status == "upcoming" and rows["Q4"].status == "upcoming"
    late = {r.quarter: r for r in build_plan(titles, runs, date(2026, 11, 23))}
    assert late["Q2"].status == "overdue" and late["Q3"].status == "overdue" and late["Q4"].status == "due now"
    assert describe_due(list(late.values()), date(2026, 11, 23)).startswith("due on 2026-11-23: Q2")


@freeze_time("2026-11-23 12:00:00")
def test_drill_plan_reads_runs_and_says_q4_is_due(tmp_path: Path) -> None:
    runs = runs_with(tmp_path, **{"report-20261123-000000": "passed", "gameday-q2-x": "gameday-q2"})
    result = CliRunner().invoke(main, ["plan", "--runs", str(runs)])
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.startswith("│ Q")}
    assert "done (late)" in lines["Q1"] and "passed" in lines["Q1"]
    assert "done (late)" in lines["Q2"]
    assert "never" in lines["Q3"] and "overdue" in lines["Q3"]
    assert "due now" in lines["Q4"]
    assert "Q4 full system failure" in result.output and "(due now, by 2026-12-31)" in result.output.replace("\n", "")


def test_runbook_section_and_quarterly_list_are_read_from_the_markdown() -> None:
    md = ("# Runbook\n## Procedures\n### 2. Broker Connection Lost\ntext\n```bash\n# not a heading\n```\n"
          "### 3. Data SLA Violation\nmore\n## Testing\n- Q1: kill switch (`features/k.feature`)\n- Q3: data\n")
    section = section_text(md, "Broker Connection Lost")
    assert section is not None and section.startswith("### 2. Broker Connection Lost") and "# not a heading" in section
    assert "Data SLA" not in section
    assert section_text(md, "Nope") is None
    assert quarterly_drills(md) == {"Q1": "kill switch", "Q2": DEFAULT_QUARTERLY["Q2"], "Q3": "data",
                                    "Q4": DEFAULT_QUARTERLY["Q4"]}
