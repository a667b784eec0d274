"""``drill init``: scaffold a drill project in a team's own repository.

Writes ``drill.toml`` (the project's configuration, :mod:`harness.project`), a commented stack file
for the team's services (unless ``--stack`` points at the one they already have), a package for
their own steps and fault classes, and one starter feature per runbook section they pick. Every
target is checked before anything is written: an existing file is never overwritten without
``--force``, and a refused init leaves the directory as it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from harness.errors import InputError

#: Runbook section -> starter feature (templates/features/<file>).
SECTIONS: Mapping[str, str] = {
    "kill_switch": "kill_switch.feature",
    "broker": "broker_connection.feature",
    "data": "data_quality.feature",
    "outage": "full_outage.feature",
    "positions": "unexpected_position.feature",
}
PACKAGE = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class InitPlan:
    """What ``drill init`` will write: target path -> content."""

    root: Path
    files: Mapping[Path, str]


def _template(name: str) -> str:
    return resources.files("harness.scaffold").joinpath("templates", name).read_text(encoding="utf-8")


def _render(text: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    return text


def plan_init(
    target: Path,
    *,
    sections: Sequence[str] = tuple(SECTIONS),
    stack: Path | None = None,
    runbook: Path | None = None,
    package: str = "drill_steps",
    force: bool = False,
) -> InitPlan:
    """Decide every file ``drill init`` writes; raise :class:`InputError` before anything is written."""
    root = target.resolve()
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise InputError(f"unknown runbook section(s): {', '.join(unknown)}",
                         hint=f"pick from: {', '.join(SECTIONS)} (e.g. --sections kill_switch,broker)")
    if not PACKAGE.match(package):
        raise InputError(f"--package {package!r} is not a Python package name",
                         hint="lower case letters, digits and underscores, e.g. drill_steps")
    if stack is not None and not stack.is_file():
        raise InputError(f"--stack: no stack file at {stack}", hint="point at your existing compose file")
    if runbook is not None and not runbook.is_file():
        raise InputError(f"--runbook: no runbook at {runbook}", hint="point at your incident runbook (markdown)")
    stack_rel = os.path.relpath(stack.resolve(), root) if stack is not None else "docker-compose.yml"
    runbook_rel = os.path.relpath(runbook.resolve(), root) if runbook is not None else None
    values = {
        "name": re.sub(r"[^a-z0-9-]+", "-", root.name.lower()).strip("-") or "trading-stack",
        "package": package,
        "stack": stack_rel,
        "runbook_line": f'runbook = "{runbook_rel}"\n' if runbook_rel else "",
    }
    files: dict[Path, str] = {root / "drill.toml": _render(_template("drill.toml.tmpl"), values)}
    if stack is None:
        compose_values = dict(values, runbook_line=f"  runbook: {runbook_rel}" if runbook_rel else
                              "  # runbook: docs/incident-response-runbook.md   # CHANGE: the runbook drills follow")
        files[root / "docker-compose.yml"] = _render(_template("docker-compose.yml.tmpl"), compose_values)
    for name in ("__init__.py", "steps.py", "faults.py"):
        files[root / package / name] = _render(_template(f"steps/{name}.tmpl"), values)
    for section in dict.fromkeys(sections):
        feature = SECTIONS[section]
        files[root / "features" / feature] = _template(f"features/{feature}")
    if not force:
        existing = [p for p in files if p.exists()]
        if existing:
            raise InputError(
                "drill init would overwrite " + ", ".join(str(p) for p in existing),
                hint="nothing was written; move those files away, or run again with --force",
            )
    return InitPlan(root, files)


def write_plan(plan: InitPlan) -> list[Path]:
    written = []
    for path, content in plan.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
