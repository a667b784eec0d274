"""The runbook parser: real runbooks (the team's, the project's), fixtures, malformed input."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import RunbookError
from harness.runbook.parser import Severity, parse_runbook, parse_text, slugify

ROOT = Path(__file__).resolve().parents[2]
TEAM = ROOT / "fixtures/runbooks/team-incident-response-runbook.md"
PROJECT = ROOT / "docs/incident-response-runbook.md"
FIX = ROOT / "fixtures/runbooks"


def test_team_runbook_sections_steps_blocks_and_checks_with_lines() -> None:
    rb = parse_runbook(TEAM)
    assert rb.title == "Incident Response Runbook"
    ks = rb.section("Kill Switch Triggered")
    assert (ks.slug, ks.level, ks.line) == ("kill-switch-triggered", 3, 49)
    assert ks.parents == ("Incident Response Runbook", "Incident Response Procedures")
    assert [(s.number, s.title, s.line) for s in ks.steps] == [
        (1, "Verify trigger reason", 57), (2, "Check portfolio state", 63), (3, "Decision point", 72),
        (4, "Root cause analysis", 76), (5, "Recovery", 81),
    ]
    step1 = ks.step(1)
    assert step1.blocks[0].line == 58 and step1.blocks[0].lang == "bash"
    assert [(c.line, c.text) for c in step1.blocks[0].commands] == [
        (59, "cd /home/mirko/data/workspace/droid/traderunner"), (60, 'grep "kill_switch" artifacts/logs/latest.log'),
    ]
    assert [c.text for c in ks.step(4).checks] == ["Review recent trades", "Check for strategy bugs",
                                                   "Verify data quality"]
    assert ks.step(5).blocks[0].commented_out
    diff = rb.section("unexpected-position").step(2).blocks[0].commands
    assert diff[0].line == 157 and "expected_positions.json artifacts/state/actual_positions.json" in diff[0].text


def test_team_rollback_bare_block_is_an_implicit_step() -> None:
    rb = parse_runbook(TEAM)
    step = rb.section("Rollback to Stable Version").step(1)
    assert step.implicit and not step.numbered and step.line == 177
    assert [c.line for c in step.blocks[0].commands] == [182, 185, 191]
    assert rb.section("Rollback Paper → Lab").step(1).blocks[0].commands[0].text == "export TR_MODE=lab"
    assert not rb.diagnostics_of(Severity.BLOCKING)


def test_project_runbook_parses_cleanly_and_every_incident_has_shell_steps() -> None:
    rb = parse_runbook(PROJECT)
    assert rb.diagnostics == ()
    for name in ("Kill Switch Triggered", "Broker Connection Lost", "Data SLA Violation", "Unexpected Position",
                 "Rollback Paper → Lab", "Trading Engine Down"):
        assert rb.section(name).has_commands, name


def test_well_formed_commands_join_continuations_and_heredocs_and_skip_comments() -> None:
    rb = parse_runbook(FIX / "well-formed.md")
    sec = rb.section("engine stuck")
    cmds = sec.step(1).blocks[0].commands
    assert [(c.line, c.text) for c in cmds] == [(15, 'echo "state: stuck"'), (16, "printf '%s\\n' one two")]
    heredoc = sec.step(2).blocks[0].commands[0]
    assert heredoc.line == 22 and heredoc.text.endswith("NOTE") and "# not a comment" in heredoc.text
    assert sec.step(1).checks[0].text == "Is the service up?"
    assert not sec.step(5).shell_blocks  # json is kept but never run
    assert rb.section("Rollback").step(1).implicit


def test_malformed_unnumbered_step_and_empty_section_are_diagnosed_with_lines() -> None:
    rb = parse_runbook(FIX / "malformed.md")
    found = {(d.code, d.line, d.severity) for d in rb.diagnostics}
    assert ("unnumbered-step", 11, Severity.WARNING) in found
    assert ("empty-section", 21, Severity.WARNING) in found
    broker = rb.section("Broker Down")
    assert [(s.number, s.title, s.numbered) for s in broker.steps] == [
        (1, "Check the link", True), (2, "Reconnect", False), (3, "Reconcile", True),
    ]
    assert str(rb.diagnostics[0]).startswith(f"{FIX / 'malformed.md'}:")


def test_unclosed_fence_before_another_block_is_blocking_and_not_runnable() -> None:
    rb = parse_runbook(FIX / "unclosed-fence.md")
    (d,) = rb.diagnostics
    assert (d.code, d.line, d.severity) == ("unclosed-fence", 6, Severity.BLOCKING)
    blocks = rb.section("Restart").step(1).blocks
    assert not blocks[0].closed and blocks[1].closed and blocks[1].commands[0].text == "echo verify"


def test_unclosed_fence_at_end_of_file_names_the_swallowed_heading() -> None:
    rb = parse_text("# T\n\n### A\n\n1. **x**\n   ```bash\n   echo a\n\n## B\n", "x.md")
    (d,) = rb.diagnostics
    assert d.location == "x.md:6" and d.code == "unclosed-fence" and "heading at line 9" in d.message


@pytest.mark.parametrize("text", ["", "no headings at all\n", "```\n", "1.\n", "#\n", "### \n1. **a**\n```\n```\n"])
def test_garbage_never_crashes(text: str) -> None:
    parse_text(text, "g.md")


def test_slug_and_unknown_section_error() -> None:
    assert slugify("### 1. Kill Switch Triggered") == "kill-switch-triggered"
    assert slugify("Rollback Paper → Lab") == "rollback-paper-lab"
    rb = parse_runbook(TEAM)
    with pytest.raises(RunbookError) as exc:
        rb.section("Martian Invasion")
    assert "no section called 'Martian Invasion'" in exc.value.message and "'Kill Switch Triggered'" in str(exc.value)
    with pytest.raises(RunbookError, match="has no step 9"):
        rb.section("Kill Switch Triggered").step(9)


def test_missing_file_is_a_runbook_error() -> None:
    with pytest.raises(RunbookError, match="runbook not found"):
        parse_runbook(FIX / "nope.md")
