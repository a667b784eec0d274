"""The bad-input corpus (issue 11): each input through the real `drill` CLI, as a user calls it.

Each case is pinned to its documented exit code (2 input, 3 environment, 4 safety) and to a message
that names the input. No case may print a traceback, and none starts a stack: every one is answered
before pytest starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "fixtures" / "bad-input"
DRILL = str(Path(sys.executable).parent / "drill")


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    never: tuple[str, ...] = ()


def stack(name: str) -> tuple[str, ...]:
    return ("--stack-file", str(BAD / f"stack_{name}.yml"))


CASES = [
    Case("unknown-backend", ("run", "--backend", "k8s"), 2,
         ("unknown backend 'k8s'", "attach, docker, kubernetes, process")),
    Case("broken-tags", ("run", "--tags", "p0 and"), 2, ("'(p0 and)' is not a valid expression",), never=("running",)),
    Case("unwritable-report", ("run", "--report", "/proc/drill-report"), 2, ("cannot write the report directory",)),
    Case(
        "live-mode", ("run", "--quarter", "Q1", "--dry-run"), 4, ("its mode is live (environment TR_MODE)",
                                                                "--allow-live"),
        env={"TR_MODE": "live"}, never=("--confirm",),
    ),
    Case("live-by-default", ("run", "--dry-run", *stack("live_by_default")), 4, ("its mode is live",)),
    Case("unknown-mode", ("run", "--dry-run", "--stack-file", str(ROOT / "fixtures/stacks/tiny-stack.yml")), 4,
         ("mode (lab, paper or live) cannot be determined", "x-drill: {mode:")),
    Case("unknown-tool", ("run", "--dry-run", *stack("unknown_tool")), 2,
         ("stack_unknown_tool.yml:9", "{{tool.toxiproxyy}}", "no tool 'toxiproxyy'")),
    Case("unknown-port", ("run", "--dry-run", *stack("unknown_port")), 2,
         ("stack_unknown_port.yml:16", "{{port.web.htpp}}", "has no port 'htpp'")),
    Case("duplicate-port", ("run", "--dry-run", *stack("duplicate_port")), 2,
         ("stack_duplicate_port.yml:16", "'admin' and 'http' are both port 8080")),
    Case("self-link", ("run", "--dry-run", *stack("self_link")), 2, ("stack_self_link.yml:6", "links 'web' to itself")),
    Case("duplicate-listen-port", ("run", "--dry-run", *stack("duplicate_listen_port")), 2,
         ("stack_duplicate_listen_port.yml:7", "21000 is already the listen_port of link 'web'")),
    Case("undefined-step", ("run", "--dry-run", str(ROOT / "fixtures/features/bad/undefined_step.feature")), 2,
         ("undefined_step.feature:", "undefined step")),
    Case("missing-examples-column", ("run", "--dry-run", str(BAD / "missing_examples_column.feature")), 2,
         ("missing_examples_column.feature:4", "<failur> has no column"), never=("undefined step",)),
    Case("empty-feature", ("run", "--dry-run", str(BAD / "empty.feature")), 2, ("empty.feature:1: empty",)),
    Case("binary-feature", ("run", "--dry-run", str(BAD / "binary.feature")), 2, ("binary.feature:1: not UTF-8",)),
    Case("not-gherkin", ("lint", str(ROOT / "fixtures/features/bad/not_gherkin.feature")), 2,
         ("not_gherkin.feature:5: cannot parse",)),
    Case("zero-width-space", ("lint", str(BAD / "zero_width_alert.feature")), 2,
         ("zero_width_alert.feature:4", "U+200B ZERO WIDTH SPACE")),
    Case("empty-runbook", ("lint", "--runbook", str(BAD / "empty_runbook.md")), 2, ("no section with steps",)),
    Case("runbook-without-steps", ("lint", "--runbook", str(BAD / "runbook_without_sections.md")), 2,
         ("no section with steps (1 heading(s), 0 steps)",)),
    Case("force-without-run", ("cleanup", "--force"), 2, ("--force needs the live run named",)),
    Case("cleanup-unknown-run-dir", ("cleanup", "--run-dir", "/nonexistent/run"), 2,
         ("no stack was started in /nonexistent/run",)),
]  # fmt: skip


def drill(args: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "TR_MODE"} | (env or {})
    return subprocess.run([DRILL, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_answered_with_its_code_and_names_the_input(case: Case, tmp_path: Path) -> None:
    args = case.args
    if args[0] == "run" and "--report" not in args:
        args = (*args, "--report", str(tmp_path / "report"))
    result = drill(args, ROOT, case.env)  # from this repository: its drill project
    out = " ".join((result.stdout + result.stderr).split())  # the console wraps long lines
    assert result.returncode == case.code, out
    for text in case.says:
        assert text in out
    for text in case.never:
        assert text not in out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert not (tmp_path / "report").exists(), "nothing may be written or started for bad input"


def test_a_ledger_that_cannot_be_read_in_full_fails_cleanup_with_2_naming_the_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "manual"
    run_dir.mkdir(parents=True)
    state = {"backend": "process", "run_id": "drill-corpus", "stack_file": str(ROOT / "docker-compose.yml"),
             "status": "up", "owner": None, "env": {}, "ports": {}, "links": {}, "services": {}}  # fmt: skip
    (run_dir / "stack.json").write_text(json.dumps(state))
    (run_dir / "ledger.jsonl").write_text('{"seq": 1, "action": "injected", "kind": "link_d\n')
    result = drill(("cleanup", "--run-dir", str(run_dir)), tmp_path)
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, out
    assert "NOT REVERTED: ledger.jsonl line 1 cannot be read" in out and "link_d" in out
    assert "Traceback" not in out
