"""``drill lint --runbook``: the team's runbook's known problems, each at its line; the project's is clean."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.runbook.linter import LintOptions, lint_runbook
from harness.runbook.parser import Severity, parse_runbook, parse_text

ROOT = Path(__file__).resolve().parents[2]
TEAM = ROOT / "fixtures/runbooks/team-incident-response-runbook.md"
PROJECT = ROOT / "docs/incident-response-runbook.md"
FEATURES = ROOT / "features"


def findings(path: Path, **kw: object) -> set[tuple[int, str, Severity]]:
    opts = LintOptions(stack_dir=ROOT, **kw)  # type: ignore[arg-type]
    return {(d.line, d.code, d.severity) for d in lint_runbook(parse_runbook(path), opts)}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """What the mock stack writes (docs/stack-contract.md), without running it."""
    for rel in ("artifacts/logs/latest.log", "artifacts/state/positions.json", "artifacts/state/daily_pnl.json",
                "artifacts/state/expected_positions.json", "artifacts/state/actual_positions.json",
                "artifacts/quality/latest_sla.json", "artifacts/orders/2026-01-05.csv", "configs/risk.yml",
                "artifacts/state/kill_switch.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}\n")
    return tmp_path


def test_team_runbook_reports_each_known_problem_at_its_line(workdir: Path) -> None:
    got = findings(TEAM, workdir=workdir, features=[FEATURES])
    B, W = Severity.BLOCKING, Severity.WARNING  # noqa: N806
    expected = {
        (36, "placeholder", B), (37, "placeholder", B), (40, "placeholder", B), (43, "placeholder", B),
        (59, "absolute-path", B),  # cd /home/mirko/...
        (82, "commented-out", B), (84, "todo", B),  # TODO: Implement reset command
        (102, "commented-out", B), (104, "todo", B),  # TODO: systemctl restart traderunner-broker
        (138, "unknown-make-target", B), (139, "unknown-make-target", B),  # make data:fetch / data:validate
        (179, "todo", B), (188, "todo", B), (191, "unknown-make-target", B), (201, "todo", B),
        (185, "missing-file", W),  # configs/backup/risk.yml.backup: nothing writes it
        (175, "not-drilled", W),  # Rollback to Stable Version
    }
    assert expected <= got, sorted(expected - got)
    # expected/actual positions are written by the stack: the diff step's files exist
    assert not any(line in (157, 158) for line, code, _ in got if code == "missing-file")


def test_team_runbook_messages_say_what_and_how_to_fix() -> None:
    by_line = {d.line: d for d in lint_runbook(parse_runbook(TEAM), LintOptions(stack_dir=ROOT))}
    assert "TODO: Implement reset command" in by_line[84].message
    assert "systemctl restart traderunner-broker" in by_line[104].message
    assert "/home/mirko/data/workspace/droid/traderunner" in by_line[59].message
    assert "make data:fetch" in by_line[138].message and "drill, lint, setup, test" in by_line[138].message
    assert "[Contact Info]" in by_line[36].message and "[Support Number]" in by_line[43].message
    assert all(d.hint for d in by_line.values())


def test_project_runbook_is_clean_including_drill_references(workdir: Path) -> None:
    found = lint_runbook(parse_runbook(PROJECT),
                         LintOptions(stack_dir=ROOT, workdir=workdir, features=[FEATURES], references_block=True))
    assert found == []


def test_hostile_commands_placeholders_unknown_tools_paths_and_syntax() -> None:
    got = findings(ROOT / "fixtures/runbooks/hostile.md")
    assert {(19, "commented-out"), (20, "todo"), (28, "placeholder"), (29, "unknown-command"),
            (30, "unknown-make-target"), (31, "absolute-path"), (33, "shell-syntax")} <= {(ln, c) for ln, c, _ in got}
    assert not any(code == "absolute-path" and line == 13 for line, code, _ in got)  # /dev/zero is fine


def test_builtins_pipelines_wrappers_and_assignments_are_understood() -> None:
    rb = parse_text("### S\n1. **x**\n   ```bash\n   FOO=1 env LC_ALL=C sort /dev/null | uniq -d && cd . ; "
                    "export X=1\n   for f in a; do echo $f; done\n   $(echo true)\n   ```\n", "s.md")
    assert lint_runbook(rb, LintOptions(search_path=os.environ["PATH"])) == []


def test_dangling_feature_reference_is_blocking_for_the_stacks_runbook(tmp_path: Path) -> None:
    feature = tmp_path / "x.feature"
    feature.write_text('Feature: X\n  Scenario: Y\n    When the on-call follows runbook step 7 of '
                       '"Kill Switch Triggered"\n')
    found = lint_runbook(parse_runbook(PROJECT), LintOptions(features=[feature], references_block=True))
    (dangling,) = [d for d in found if d.code == "dangling-reference"]
    assert dangling.location == f"{feature}:3" and dangling.severity == Severity.BLOCKING
    assert "step 7" in dangling.message


def test_cli_lint_runbook_exit_codes(workdir: Path) -> None:
    runner = CliRunner()
    team = runner.invoke(main, ["lint", "--runbook", str(TEAM), "--workdir", str(workdir)])
    assert team.exit_code == 2, team.output
    assert "TODO: Implement reset command" in team.output and "[todo]" in team.output
    assert ":84" in team.output and "blocking" in team.output
    ok = runner.invoke(main, ["lint", "--runbook", str(PROJECT), "--workdir", str(workdir)])
    assert ok.exit_code == 0, ok.output
    assert "no blocking finding, 0 warning(s)" in ok.output


def test_cli_coverage_reads_the_newest_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "runs/report-20260105-143000"
    report.mkdir(parents=True)
    (report / "journal.json").write_text(json.dumps({"version": 1, "scenarios": [
        {"feature": "Kill switch triggered", "status": "failed",
         "scenario": "A market crash breaches the daily loss limit and the kill switch stops trading"},
        {"feature": "Broker connection lost", "status": "passed",  # one Examples row of an outline
         "scenario": "The broker link goes down; after 3 attempts the engine asks for manual intervention"},
    ]}))
    result = CliRunner().invoke(main, ["coverage", "--stack-file", str(ROOT / "docker-compose.yml"),
                                       str(FEATURES)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Kill Switch Triggered" in result.output and "failed" in result.output
    assert "not run" in result.output  # the other sections: no journal ran them
    assert "1/1 passed" in result.output  # the outline's row, matched through its <failure> template
    assert "every section with commands is drilled" in result.output
    team = CliRunner().invoke(main, ["coverage", "--runbook", str(TEAM), str(FEATURES)], terminal_width=200)
    assert team.exit_code == 0 and "uncovered section" in team.output and "Rollback to Stable Version" in team.output
