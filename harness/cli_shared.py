"""What every ``drill`` command shares: the console, exit codes, the error wrapper, the defaults.

``harness.cli`` (the ``drill`` group), ``harness.report.cli`` and ``harness.runbook.cli`` all import
from here and never from each other, so each of them imports on its own and there is no cycle.
It imports nothing heavy (no pytest, no backends): ``drill --help`` stays fast.

Exit codes (documented in the README, stable):

    0   every selected drill passed (or the command succeeded)
    1   a drill failed: detection missed its deadline, RTO missed, a runbook step failed
    2   bad input: stack file, feature, tag, deadline, usage
    3   the environment: a tool missing, a port taken, a service that would not start
    4   refused for safety: live target without --allow-live, unknown mode; or stopped by `drill halt`
    5   no scenario matched the selection
    130 interrupted (Ctrl-C); every fault was rolled back
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from harness.errors import DrillError
from harness.project import current_project

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_ENV, EXIT_SAFETY, EXIT_NOTHING, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # an error's paths stay whole, copy-pastable


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print harness errors without a traceback and exit with their documented code."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DrillError as exc:
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}")  # '[tags]' in a message is text
            if exc.hint:
                err_console.print(f"  [yellow]hint:[/] {escape(exc.hint)}")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]: faults rolled back")
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def default_stack_file() -> Path:
    """The drill project's stack file (``stack`` in its drill config; default ./docker-compose.yml)."""
    return current_project().stack


def default_features() -> Path:
    """The drill project's features directory (``features``; default ./features)."""
    return current_project().features


def default_runs() -> Path:
    """Where the drill project's reports and run directories go (``reports``; default ./runs)."""
    return current_project().reports


def rel(path: Path) -> str:
    """``path`` relative to the working directory when it is under it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


stack_file_option = click.option(
    "--stack-file",
    type=click.Path(path_type=Path),
    default=None,
    help="stack description (default: ./docker-compose.yml)",
)
backend_option = click.option(
    "--backend", default=None, help="process, docker, attach or kubernetes (default: the project's, else process)"
)
