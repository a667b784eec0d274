"""The run journal: what happened in each drill scenario, as versioned JSON.

The pytest plugin fills one :class:`ScenarioRecord` per scenario (steps with their results, the
faults injected and rolled back, the timeline and the measurements) and rewrites
``<report_dir>/journal.json`` after every scenario, so a run that crashed half-way still leaves a
readable journal that says where it stopped (``"finished": false``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

JOURNAL_VERSION = 1
JOURNAL_FILE = "journal.json"


@dataclass
class StepRecord:
    keyword: str
    text: str
    line: int
    status: str  # passed | failed | skipped
    duration_s: float = 0.0
    error: str | None = None


@dataclass
class ScenarioRecord:
    nodeid: str
    feature: str
    feature_file: str
    scenario: str
    line: int
    tags: list[str]
    status: str = "running"  # running | passed | failed | skipped | error | planned (dry run) | interrupted | halted
    duration_s: float = 0.0  # the scenario's steps (pytest "call"), including its stack start
    stack_up_s: float = 0.0  # starting its fresh stack (happens during the first step that needs it)
    teardown_s: float = 0.0  # rolling back faults and stopping the stack
    steps: list[StepRecord] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)
    timeline: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    index: int = -1  # position in the run's collection: merged xdist journals list scenarios in this order
    roles: dict[str, str] = field(default_factory=dict)  # GameDay: role -> person
    lessons: str | None = None  # GameDay: lessons learned typed at the end

    @property
    def severity(self) -> str:
        """What the scenario asserts (its first alert's severity), falling back to its tag."""
        from harness.step_meaning import severity

        return severity(self.tags, (s.text for s in self.steps))

    @property
    def quarter(self) -> str:
        return next((t.upper() for t in sorted(self.tags) if t in ("q1", "q2", "q3", "q4")), "")


def git_revision(cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def harness_version() -> str | None:
    """The installed version of the harness (its distribution's metadata), None when not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trading-drill-harness")
    except PackageNotFoundError:
        return None


def command_line() -> str:
    """How this process was started, as one shell-quoted line (``drill run --quarter Q2 ...``)."""
    return shlex.join([Path(sys.argv[0]).name if sys.argv else "?", *sys.argv[1:]])


@dataclass
class Journal:
    path: Path
    backend: str
    stack_file: str
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    revision: str | None = None
    harness_version: str | None = field(default_factory=harness_version)
    command: str = field(default_factory=command_line)
    scenarios: list[ScenarioRecord] = field(default_factory=list)
    finished: bool = False
    interrupted: bool = False  # Ctrl-C / SIGTERM: its scenarios say where they stopped
    mode: str = "run"  # run (drill run) | gameday (drill gameday)

    def write(self) -> None:
        data = {
            "version": JOURNAL_VERSION,
            "mode": self.mode,
            "backend": self.backend,
            "stack_file": self.stack_file,
            "revision": self.revision,
            "harness_version": self.harness_version,
            "command": self.command,
            "started_at": self.started_at,
            "finished": self.finished,
            "interrupted": self.interrupted,
            "scenarios": [asdict(s) for s in self.scenarios],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)


def load_journal(path: Path) -> dict[str, Any]:
    """The journal as written; a clear error if it is missing or not a journal."""
    from harness.errors import InputError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no journal at {path}", hint="run `drill run --report DIR` first") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    except (UnicodeDecodeError, OSError) as exc:  # a journal cut or garbled by a crash, or unreadable
        raise InputError(f"{path}: cannot read the journal: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != JOURNAL_VERSION:
        raise InputError(f"{path}: not a drill journal of version {JOURNAL_VERSION}")
    return data
