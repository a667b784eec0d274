"""A drill project: a team's own directory of features, steps, stack file and runbook.

A directory is a drill project when it has a ``drill.toml`` or a ``[tool.drill]`` table in its
``pyproject.toml`` (``drill init`` writes one). Every ``drill`` command finds the project by
walking up from the current directory, the way pytest finds its rootdir, and takes its defaults
from it; command-line options override them. This repository's own drills are one such project.

.. code-block:: toml

    [tool.drill]
    features = "features"              # the .feature files (a directory)
    stack = "docker-compose.yml"       # the stack file (compose + x-drill)
    steps = ["team_drills.steps"]      # the team's own step modules, importable from the project root
    faults = ["team_drills.faults"]    # modules defining the team's own Fault classes (registered on import)
    runbook = "docs/runbook.md"        # optional: else the stack file's x-drill.runbook
    backend = "process"                # process | docker | attach | ...
    reports = "runs"                   # report directories and run directories go here

    [tool.drill.tags]                  # the team's own Gherkin tags (q1..q4 and p0..p3 are built in)
    payments = "runbook section Payments Down"

Parsed once, here, into a frozen :class:`DrillProject`; every error names the file and the field
(and the line, for TOML syntax errors).
"""

from __future__ import annotations

import importlib
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InputError

CONFIG_FILE = "drill.toml"
BUILTIN_TAGS: Mapping[str, str] = {
    **{f"q{n}": f"quarterly drill Q{n} of the runbook" for n in range(1, 5)},
    **{f"p{n}": f"incident severity P{n}" for n in range(4)},
}
KEYS = ("features", "stack", "steps", "faults", "runbook", "backend", "reports", "tags")
MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
TAG = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class ProjectError(InputError):
    """The drill project's configuration is wrong (exit 2)."""


@dataclass(frozen=True)
class DrillProject:
    root: Path
    config: Path  # the drill.toml / pyproject.toml it was read from ("" when defaults only)
    features: Path
    stack: Path
    steps: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    runbook: Path | None = None
    backend: str = "process"
    reports: Path = field(default=Path("runs"))
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def markers(self) -> dict[str, str]:
        """Every tag a feature of this project may carry: built in, then the project's own."""
        return {**BUILTIN_TAGS, **self.tags}

    def import_modules(self) -> None:
        """Import the project's step and fault modules (from its root), naming any that fails."""
        root = str(self.root)
        if root not in sys.path:
            sys.path.insert(0, root)
        for kind, names in (("steps", self.steps), ("faults", self.faults)):
            for name in names:
                try:
                    importlib.import_module(name)
                except Exception as exc:  # the team's code: report it as their input, with the cause
                    raise ProjectError(
                        f"{kind} module '{name}' failed to import: {type(exc).__name__}: {exc}",
                        location=f"{self.config}",
                        hint=f"fix the module, or remove it from '{kind}' in {self.config.name} "
                        f"(modules are imported from {self.root})",
                    ) from exc


def find_project(start: Path | None = None) -> DrillProject | None:
    """The drill project containing ``start`` (default: the current directory), or None."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        drill_toml = directory / CONFIG_FILE
        if drill_toml.is_file():
            return load_project(drill_toml)
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and _has_tool_drill(pyproject):
            return load_project(pyproject)
    return None


def current_project(start: Path | None = None) -> DrillProject:
    """The project around ``start``; outside any project, the directory itself with the default layout."""
    found = find_project(start)
    if found is not None:
        return found
    root = (start or Path.cwd()).resolve()
    return DrillProject(root=root, config=root / CONFIG_FILE, features=root / "features",
                        stack=root / "docker-compose.yml", reports=root / "runs")


def _has_tool_drill(pyproject: Path) -> bool:
    try:
        return "drill" in _read_toml(pyproject).get("tool", {})
    except ProjectError:
        return True  # a broken pyproject.toml with [tool.drill] in it: load_project reports it


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)  # Python 3.12+; 3.11 says "(at line N, column M)" in the message
        if line is None:
            found = re.search(r"at line (\d+)", str(exc))
            line = int(found.group(1)) if found else None
        raise ProjectError(f"not valid TOML: {exc}", location=f"{path}:{line}" if line else str(path),
                           hint="fix the TOML syntax") from exc
    except OSError as exc:
        raise ProjectError(f"cannot read: {exc.strerror}", location=str(path)) from exc


def load_project(config: Path) -> DrillProject:
    config = config.resolve()
    data = _read_toml(config)
    table: Any = data.get("tool", {}).get("drill", {}) if config.name == "pyproject.toml" else data
    prefix = "[tool.drill]" if config.name == "pyproject.toml" else CONFIG_FILE
    if not isinstance(table, dict):
        raise ProjectError(f"{prefix} must be a table", location=str(config),
                           hint='write [tool.drill] followed by key = "value" lines')
    for key in table:
        if key not in KEYS:
            raise ProjectError(f"{prefix}: unknown key '{key}'", location=str(config),
                               hint=f"keys allowed: {', '.join(KEYS)}")
    root = config.parent

    def text(key: str, default: str) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or not value:
            raise ProjectError(f"{prefix}.{key} must be a non-empty string, got {value!r}", location=str(config),
                               hint=f'write {key} = "{default}" (a path relative to {root})')
        return value

    def modules(key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and MODULE.match(v) for v in value):
            raise ProjectError(f"{prefix}.{key} must be a list of module names, got {value!r}",
                               location=str(config), hint=f'write e.g. {key} = ["team_drills.{key}"]')
        return tuple(value)

    tags_raw = table.get("tags", {})
    if not isinstance(tags_raw, dict):
        raise ProjectError(f"{prefix}.tags must be a table of tag = \"description\"", location=str(config),
                           hint='write a [tags] table (in pyproject.toml: [tool.drill.tags]), then payments = "..."')
    tags: dict[str, str] = {}
    for tag, desc in tags_raw.items():
        if not TAG.match(tag) or not isinstance(desc, str):
            raise ProjectError(f"{prefix}.tags.{tag}: expected a tag name = \"what it means\", got {desc!r}",
                               location=str(config), hint=f'write {tag} = "runbook section ..." (a quoted description)')
        tags[tag] = desc
    runbook = (root / text("runbook", "-")).resolve() if "runbook" in table else None
    if runbook is not None and not runbook.is_file():
        raise ProjectError(f"{prefix}.runbook: no file at {runbook}", location=str(config),
                           hint="give the runbook's path relative to the project root")
    return DrillProject(
        root=root,
        config=config,
        features=(root / text("features", "features")).resolve(),
        stack=(root / text("stack", "docker-compose.yml")).resolve(),
        steps=modules("steps"),
        faults=modules("faults"),
        runbook=runbook,
        backend=text("backend", "process"),
        reports=(root / text("reports", "runs")).resolve(),
        tags=tags,
    )


def binding_module(features: list[Path], out_dir: Path) -> Path:
    """Write the pytest module that binds exactly ``features`` (absolute paths) and return its path.

    ``drill run`` collects this file, not a checkout's test package: the features can live anywhere,
    and a broken feature that is not selected is never parsed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    module = out_dir / "test_drill_features.py"
    listed = "".join(f"    {str(p.resolve())!r},\n" for p in features)
    module.write_text(
        '"""Generated by `drill run`: binds the selected features (pytest-bdd)."""\n\n'
        "from pytest_bdd import scenarios\n\n"
        f"scenarios(\n{listed})\n",
        encoding="utf-8",
    )
    ini = out_dir / "pytest.ini"
    ini.write_text("[pytest]\n# generated by `drill run`: the team's own pytest settings do not apply to drills\n",
                   encoding="utf-8")
    return module
