"""The harness holds no knowledge of any particular stack (DESIGN.md, issue "Drill your own stack").

Every string constant in ``harness/`` code (docstrings excepted: they may give examples) is
scanned for the mock stack's names: its services, file paths, log texts, admin paths, metric and
alert names, environment variables. They belong in the stack file (``x-drill``, including its
trading adapter). Freqtrade, the third-party bot drilled in ``examples/``, may not be mentioned at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"

MOCK_NAMES = (
    "traderunner", "mockstack", "marketdata",                              # services and packages
    "artifacts/", "positions.json", "kill_switch.json", "latest_sla", "orders/*.csv", "latest.log",  # files
    "idempotency_key", "filled_qty",                                       # journal / broker columns
    "Kill switch activated", "Reconnect attempt", "manual intervention required", "Connection timeout",  # logs
    "/admin/", "/api/symbols",                                             # admin paths
    "TR_WORKDIR", "TR_MODE",                                               # environment
    "KillSwitchActive", "BrokerManualInterventionRequired", "DataSLAViolation", "TradingEngineDown",
    "UnexpectedPosition",                                                  # alert names
)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
    ]


def offending(path: Path) -> list[str]:
    return [
        f"{path.relative_to(HARNESS.parent)}:{line}: {name!r} in {text[:80]!r}"
        for line, text in constants(path)
        for name in MOCK_NAMES
        if name in text
    ]


def test_the_scanner_finds_a_mock_name_in_code_but_not_in_a_docstring(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('"""Reads artifacts/state/positions.json, for example."""\nPATH = "artifacts/x.json"\n')
    found = [f for line, text in constants(sample) for f in MOCK_NAMES if f in text]
    assert found == ["artifacts/"]


@pytest.mark.parametrize("path", sorted(HARNESS.rglob("*.py")), ids=lambda p: str(p.relative_to(HARNESS)))
def test_no_mock_name_is_a_constant_in_the_harness(path: Path) -> None:
    problems = offending(path)
    assert not problems, "the mock's names belong in the stack file (x-drill), not in harness/:\n" + "\n".join(
        problems
    )


def test_the_harness_never_mentions_freqtrade() -> None:
    mentions = [
        f"{p.relative_to(HARNESS.parent)}:{n}"
        for p in sorted(HARNESS.rglob("*"))
        if p.is_file() and p.suffix in (".py", ".tmpl", ".feature", ".md", ".yml", ".toml", ".html")
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if "freqtrade" in line.lower()
    ]
    assert not mentions, f"Freqtrade-specific text in harness/: {mentions}"
