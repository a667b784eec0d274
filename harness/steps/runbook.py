"""The on-call follows the incident runbook: its steps run as written, against the stack."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from harness.drill import Drill
from harness.runbook.executor import follow_step, output_shows


@when(parsers.parse('the on-call follows runbook step {number:d} of "{section}"'))
@then(parsers.parse('the on-call follows runbook step {number:d} of "{section}"'))
def follows_step(drill: Drill, number: int, section: str) -> None:
    """Run step NUMBER of runbook section SECTION (x-drill.runbook) in the stack's working directory; it must exit 0."""
    follow_step(drill, section, number)


@when(parsers.parse('the on-call follows runbook step {number:d} of "{section}" and it reports a mismatch'))
@then(parsers.parse('the on-call follows runbook step {number:d} of "{section}" and it reports a mismatch'))
def follows_step_mismatch(drill: Drill, number: int, section: str) -> None:
    """Run a runbook check step that must find a problem: its last command exits 1."""
    follow_step(drill, section, number, expect_exit=1)


@then(parsers.parse('its output shows "{text}"'))
def step_output_shows(drill: Drill, text: str) -> None:
    """The output of the runbook step just followed contains TEXT."""
    output_shows(drill, text)
