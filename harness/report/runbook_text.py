"""Just enough of the runbook for reports and GameDay: a section's text, the quarterly drill list.

Tolerant by design (a runbook is prose written by people): a missing section gives None, never an
error. The full parser and linter live in :mod:`harness.runbook`; this module only reads text.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.project import current_project

_HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<text>.*?)[ \t]*$")
_QUARTER_LINE = re.compile(r"^\s*[-*]\s*(?P<q>Q[1-4])\s*:\s*(?P<title>.+?)\s*$")
_NUMBER = re.compile(r"^\d+[.)]\s*")

DEFAULT_QUARTERLY = {
    "Q1": "Simulate kill switch trigger",
    "Q2": "Simulate broker disconnection",
    "Q3": "Simulate data corruption",
    "Q4": "Full system failure drill",
}


def find_runbook(explicit: Path | None = None) -> Path | None:
    """``--runbook`` when given, else the drill project's ``runbook``, else its stack file's ``x-drill.runbook``."""
    if explicit is not None:
        return explicit
    project = current_project()
    if project.runbook is not None:
        return project.runbook
    if project.stack.is_file():
        from harness.stack import load_stack

        return load_stack(project.stack).runbook
    return None


def _norm(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", _NUMBER.sub("", title.strip().strip("*")).lower()).strip()


def section_text(markdown: str, title: str) -> str | None:
    """The section whose heading is ``title`` (numbering and case ignored), up to the next heading of
    the same or a higher level; None when there is no such heading."""
    lines = markdown.splitlines()
    wanted = _norm(title)
    in_fence = False
    start = level = None
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        m = None if in_fence else _HEADING.match(line)
        if m is None:
            continue
        depth = len(m.group("hashes"))
        if start is None and _norm(m.group("text")).startswith(wanted):
            start, level = i, depth
        elif start is not None and level is not None and depth <= level:
            return "\n".join(lines[start:i]).rstrip().rstrip("-").rstrip()
    return "\n".join(lines[start:]).rstrip() if start is not None else None


def quarterly_drills(markdown: str | None) -> dict[str, str]:
    """``- Q1: ...`` lines of the runbook's drill section; the original runbook's list when absent."""
    found: dict[str, str] = {}
    for line in (markdown or "").splitlines():
        m = _QUARTER_LINE.match(line)
        if m and m.group("q") not in found:
            found[m.group("q")] = re.sub(r"\s*\(`[^`]*`\)\s*$", "", m.group("title"))
    return {q: found.get(q, DEFAULT_QUARTERLY[q]) for q in DEFAULT_QUARTERLY}
