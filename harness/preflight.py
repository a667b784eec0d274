"""Everything ``drill run`` can check before pytest starts and before any stack starts.

Bad input is answered at once, with the documented exit code and the input named, instead of
surfacing inside a scenario after a whole stack came up:

* the backend name, the ``--tags``/``--quarter`` marker expression, the report directory (exit 2);
* the stack file, and every ``{{...}}`` placeholder in its local commands, environments and
  templates: an unknown ``{{port.s.p}}``, ``{{link.x}}`` or ``{{tool.x}}`` is named with file:line (2);
* the features: each selected file parses (file:line), every step is defined, every ``<column>``
  of a Scenario Outline exists in its Examples (2);
* the tools the stack's commands need are installed (3);
* the safety mode: a live stack without ``--allow-live``, or a stack whose mode cannot be
  determined, is refused (4), also for ``--dry-run``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.adapter import load_adapter_class
from harness.errors import FeatureError, InputError, StackFileError
from harness.safety import SafetyPolicy
from harness.stack import PLACEHOLDER, StackDescription, load_stack
from harness.tools import TOOLS, find_tool

if TYPE_CHECKING:
    from harness.catalog import LintProblem

# placeholders every backend fills in besides ports, links and tools
FIXED_PLACEHOLDERS = frozenset({"dir.run", "dir.workdir", "dir.stack", "python"})


def check_backend(name: str, source: str | None = None) -> None:
    """``name`` is a backend; ``source`` says where it was given (default: the --backend option)."""
    from harness.backends import BACKENDS

    if name not in BACKENDS:
        options = f"--backend {' or --backend '.join(sorted(BACKENDS))}"
        raise InputError(
            f"unknown backend '{name}'\n  expected: one of {', '.join(sorted(BACKENDS))}\n"
            f"  observed: {source or f'--backend {name}'}",
            hint=f"fix it there, or pass {options}" if source else f"use {options}",
        )


def check_marker(marker: str | None) -> None:
    """A ``-m`` expression pytest would reject (``p0 and``) is bad input, before anything is printed."""
    if not marker:
        return
    from _pytest.mark.expression import Expression  # pytest's own parser for -m: the same verdict pytest gives

    try:
        Expression.compile(marker)
    except Exception as exc:  # ParseError before pytest 8.4, SyntaxError since: both name the column
        message = getattr(exc, "message", None) or getattr(exc, "msg", None) or str(exc)
        column = getattr(exc, "column", None) or getattr(exc, "offset", None)
        raise InputError(
            f"the tag selection '{marker}' is not a valid expression: {message} (column {column})",
            hint="combine tags with and / or / not and parentheses, e.g. --tags 'p0 and not outage'",
        ) from exc


def check_report_dir(report_dir: Path) -> None:
    """The report directory can be created and written, or exit 2 naming it (what is created here is removed)."""
    missing: list[Path] = []
    at = report_dir
    while not at.exists() and at != at.parent:
        missing.append(at)
        at = at.parent
    created: list[Path] = []
    try:
        for directory in reversed(missing):  # really try: permission bits say nothing for root, /proc, read-only mounts
            directory.mkdir()
            created.append(directory)
        with tempfile.NamedTemporaryFile(dir=report_dir, prefix=".drill-write-check-"):
            pass
    except OSError as exc:
        raise InputError(
            f"cannot write the report directory {report_dir}: {exc.strerror or exc}",
            hint="pass --report with a directory you can write",
        ) from exc
    finally:
        for directory in reversed(created):
            with contextlib.suppress(OSError):
                directory.rmdir()


def check_placeholders(stack: StackDescription) -> None:
    """Every ``{{...}}`` in the stack's local commands, environments and templates names something real."""
    for spec in stack.services.values():
        if spec.local is None:
            continue
        texts: list[tuple[str, str]] = [(t, "command") for t in spec.local.command]
        texts += [(v, f"env.{k}") for k, v in spec.local.env.items()]
        for source in spec.local.templates:
            try:
                texts.append(((stack.stack_dir / source).read_text(encoding="utf-8"), f"templates ({source})"))
            except OSError as exc:
                raise StackFileError(
                    f"services.{spec.name}.x-drill.local.templates: cannot read {source}: {exc.strerror}",
                    location=f"{stack.path}:{spec.line}",
                    hint=f"templates map a file relative to {stack.stack_dir} to its name in the run directory",
                ) from exc
        for text, field in texts:
            for match in PLACEHOLDER.finditer(text):
                problem = _placeholder_problem(stack, match.group(1), match.group(2), match.group(3))
                if problem:
                    raise StackFileError(
                        f"services.{spec.name}.x-drill.local.{field}: unknown placeholder {match.group(0)}: {problem}",
                        location=f"{stack.path}:{spec.line}",
                        hint="fix the placeholder's name in the stack file",
                    )


def _placeholder_problem(stack: StackDescription, kind: str, a: str | None, b: str | None) -> str | None:
    key = ".".join(p for p in (kind, a, b) if p)
    if key in FIXED_PLACEHOLDERS:
        return None
    if kind in ("port", "addr"):
        if a is None or a not in stack.services:
            return f"no service '{a}' (services: {', '.join(stack.services)})"
        ports = stack.services[a].ports
        if b not in ports:
            return f"service '{a}' has no port '{b}' (its ports: {', '.join(ports) or 'none'})"
        return None
    if kind == "link":
        return None if a in stack.links else f"no link '{a}' (links: {', '.join(stack.links) or 'none'})"
    if kind == "tool":
        return None if a in TOOLS else f"no tool '{a}' (known tools: {', '.join(sorted(TOOLS))})"
    return f"'{key}' is not a placeholder (use port.S.P, addr.S.P, link.L, tool.T, dir.run, dir.workdir, python)"


def check_tools(stack: StackDescription) -> None:
    """The binaries the stack's local commands name are installed (exit 3 with how to install them)."""
    for spec in stack.services.values():
        if spec.local is None:
            continue
        for token in spec.local.command:
            for match in PLACEHOLDER.finditer(token):
                if match.group(1) == "tool" and match.group(2):
                    find_tool(match.group(2))


def check_features(features: Sequence[Path]) -> None:
    """Each feature parses and binds: defined steps, Examples columns; every problem with file:line."""
    from harness.catalog import lint

    _raise_problems([p for p in lint(features) if p.is_error])


def check_references(features: Sequence[Path], stack: StackDescription, marker: str | None = None) -> None:
    """The links, services, modes and runbook steps the selected scenarios' steps name exist in ``stack``."""
    from harness.catalog import reference_problems

    _raise_problems(reference_problems(features, stack, marker=marker))


def _raise_problems(problems: Sequence[LintProblem]) -> None:
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise FeatureError(
            f"{len(problems)} problem(s) in the selected feature(s):\n  {shown}{more}",
            hint="fix them (`drill lint` lists them all), or select other features",
        )


def check_safety(stack: StackDescription, *, allow_live: bool, environ: Mapping[str, str] | None = None) -> None:
    """A live stack without --allow-live, or a stack of unknown mode, is refused (exit 4) before pytest."""
    if allow_live:
        return  # the typed confirmation is checked when the first fault would go in
    SafetyPolicy(environ=os.environ if environ is None else environ).check_live(stack)


def preflight(
    stack_file: Path,
    backend: str,
    dry_run: bool,
    *,
    features: Sequence[Path] = (),
    marker: str | None = None,
    report_dir: Path | None = None,
    allow_live: bool = False,
    backend_source: str | None = None,
) -> StackDescription:
    """Fail before pytest starts (and before any stack starts) on everything that can be checked now."""
    check_backend(backend, backend_source)
    check_marker(marker)
    stack = load_stack(stack_file)
    check_placeholders(stack)
    load_adapter_class(stack.trading)  # x-drill.trading.adapter names a class that imports (file:line)
    check_safety(stack, allow_live=allow_live)  # a live stack is refused (4) whatever else is wrong
    if features:
        check_features(features)
    if report_dir is not None:
        check_report_dir(report_dir)
    if not dry_run and backend == "process":
        check_tools(stack)
    if not dry_run and backend == "attach":  # an unreachable attached service: exit 3 before pytest starts
        from harness.backends.attach import preflight as check_attached

        check_attached(stack)
    if features:  # last: what the steps name in this particular stack (an unreachable one says so first)
        check_references(features, stack, marker)
    return stack


__all__ = ["preflight"]
