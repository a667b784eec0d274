"""The on-call at the keyboard: operator CLI commands as written in the runbook."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from harness.drill import Drill
from harness.errors import WaitTimeout


@when(parsers.parse('the on-call runs "{command}"'))
def runs(drill: Drill, command: str) -> None:
    """Run an operator command (shlex-split, no shell); it must succeed (exit 0)."""
    result = drill.operator(command)
    if result is not None and result.exit_code != 0:
        raise WaitTimeout(
            f"`{command}` failed with exit code {result.exit_code}:\n{result.output[-2000:]}",
            hint="the runbook step does not work as written",
        )


@when(parsers.parse('the on-call tries to run "{command}"'))
def tries(drill: Drill, command: str) -> None:
    """Run an operator command whose refusal is expected; the next step checks the outcome."""
    drill.operator(command)


@then(parsers.parse('the on-call runs "{command}" and it reports a mismatch'))
def runs_and_mismatch(drill: Drill, command: str) -> None:
    """The command exits 1 (a check that found a difference) and says so."""
    result = drill.operator(command)
    if result is not None and result.exit_code != 1:
        raise WaitTimeout(
            f"expected `{command}` to report a mismatch (exit 1); observed exit {result.exit_code}:\n"
            f"{result.output[-2000:]}"
        )


@then(parsers.parse("the command is refused with exit code {code:d}"))
def refused(drill: Drill, code: int) -> None:
    result = drill.last_command
    if drill.dry_run is not None:
        return
    if result is None:
        raise WaitTimeout("no operator command was run before this step")
    if result.exit_code != code:
        raise WaitTimeout(
            f"expected `{' '.join(result.argv)}` to be refused with exit code {code}; "
            f"observed exit {result.exit_code}:\n{result.output[-2000:]}"
        )


@when(parsers.parse('the on-call runs the stack\'s "{name}" command'))
def runs_stack_command(drill: Drill, name: str) -> None:
    """Run the operator command the stack declares as NAME (x-drill.trading.commands): a shell template or
    an HTTP call, as declared; it must exit 0 (an HTTP call: answer 2xx)."""
    from harness.trading import run_stack_command

    result = run_stack_command(drill, name)
    if result is not None and result.exit_code != 0:
        raise WaitTimeout(
            f"`{' '.join(result.argv)}` (x-drill.trading.commands.{name}) failed with exit code {result.exit_code}:\n"
            f"{result.output[-2000:]}",
            hint="the stack's declared command does not work as written",
        )
