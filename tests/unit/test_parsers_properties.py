"""Property-based tests of every parser that reads a person's or a crash's input (issue 11, item 6).

Whatever bytes arrive (a stack file cut short, a feature with a stray byte, a runbook pasted from a
chat, a ledger or journal half-written when the machine died), each parser either returns its
domain object or raises the harness's own error with a location: never another exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.catalog import parse_feature
from harness.errors import DrillError
from harness.faults.ledger import ACTIONS, Ledger, pending
from harness.journal import load_journal
from harness.runbook.linter import LintOptions, lint_runbook
from harness.runbook.parser import parse_text
from harness.stack import StackDescription, load_stack

ROOT = Path(__file__).resolve().parents[2]
STACK_LINES = (ROOT / "docker-compose.yml").read_text(encoding="utf-8").splitlines()
FEATURE_LINES = (ROOT / "features" / "broker_connection.feature").read_text(encoding="utf-8").splitlines()
RUNBOOK_TEXT = (ROOT / "fixtures" / "runbooks" / "well-formed.md").read_text(encoding="utf-8")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

junk = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@st.composite
def mutated(draw: st.DrawFn, lines: list[str]) -> str:
    """The real file with a few lines dropped, duplicated or overwritten with junk, or cut short."""
    out = list(lines)
    for _ in range(draw(st.integers(1, 4))):
        if not out:
            break
        i = draw(st.integers(0, len(out) - 1))
        action = draw(st.sampled_from(["drop", "dup", "junk", "cut"]))
        if action == "drop":
            del out[i]
        elif action == "dup":
            out.insert(i, out[i])
        elif action == "junk":
            out[i] = out[i][: draw(st.integers(0, len(out[i])))] + draw(junk)
        else:
            out = out[:i]
    return "\n".join(out)


def _parses_or_names_the_file(parse: Callable[[Path], object], path: Path) -> object | None:
    """``parse(path)``'s result, or None when it raised the harness's input error naming ``path``."""
    try:
        return parse(path)
    except DrillError as exc:
        assert exc.exit_code == 2 and str(path) in str(exc)
        return None


def _write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


@SETTINGS
@given(text=st.one_of(mutated(STACK_LINES), junk))
def test_a_damaged_stack_file_is_a_stack_file_error_or_a_stack(tmp_path: Path, text: str) -> None:
    stack = _parses_or_names_the_file(load_stack, _write(tmp_path, "docker-compose.yml", text))
    assert stack is None or isinstance(stack, StackDescription) and stack.services


@SETTINGS
@given(data=st.binary(max_size=200))
def test_a_stack_file_of_random_bytes_is_an_input_error(tmp_path: Path, data: bytes) -> None:
    _parses_or_names_the_file(load_stack, _write(tmp_path, "docker-compose.yml", data))


@SETTINGS
@given(data=st.one_of(mutated(FEATURE_LINES).map(str.encode), st.binary(max_size=200)))
def test_a_damaged_feature_parses_or_names_the_file(tmp_path: Path, data: bytes) -> None:
    _parses_or_names_the_file(parse_feature, _write(tmp_path, "drill.feature", data))


@SETTINGS
@given(text=st.one_of(mutated(RUNBOOK_TEXT.splitlines()), junk))
def test_any_runbook_text_parses_and_lints_without_raising(tmp_path: Path, text: str) -> None:
    runbook = parse_text(text, tmp_path / "runbook.md")
    for section in runbook.sections:
        assert section.line >= 1 and section.title == section.title.strip()
    for finding in lint_runbook(runbook, LintOptions(search_path="")):
        assert finding.line >= 0 and finding.message


record = st.fixed_dictionaries(
    {"kind": st.sampled_from(["kill", "link_down", "toxic"]), "fault_id": st.text("abcdef0123", min_size=1,
                                                                                  max_size=6)}
)


@SETTINGS
@given(
    writes=st.lists(st.tuples(st.sampled_from(ACTIONS), record), max_size=12),
    garbage=st.lists(st.binary(max_size=60), max_size=4),
)
def test_the_ledger_reads_back_what_was_written_and_counts_every_bad_line(
    tmp_path: Path, writes: list[tuple[str, dict[str, str]]], garbage: list[bytes]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    for f in run_dir.iterdir():  # hypothesis reuses tmp_path across examples
        f.unlink()
    ledger = Ledger(run_dir)
    for action, rec in writes:
        ledger.append(action, rec)
    with ledger.path.open("ab") as fh:  # a crash may leave anything at the end
        for chunk in garbage:
            fh.write(chunk.replace(b"\n", b" ") + b"\n")
    contents = ledger.read()
    assert [(e.action, e.fault_id) for e in contents.entries[: len(writes)]] == [
        (a, r["fault_id"]) for a, r in writes
    ]
    assert len(contents.entries) + len(contents.bad_lines) >= len(writes)
    last = {r["fault_id"]: a for a, r in writes}
    expected_pending = {f for f, a in last.items() if a != "rolled_back"}
    if not garbage:
        assert {e.fault_id for e in pending(run_dir)} == expected_pending


@SETTINGS
@given(data=st.one_of(st.binary(max_size=200), st.builds(json.dumps, st.dictionaries(st.text(max_size=8),
                                                                                       st.integers()))))
def test_a_damaged_journal_is_an_input_error_or_a_journal(tmp_path: Path, data: bytes | str) -> None:
    journal = _parses_or_names_the_file(load_journal, _write(tmp_path, "journal.json", data))
    assert journal is None or isinstance(journal, dict)
