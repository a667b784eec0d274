"""`drill lint` finds what pytest-bdd would only find at run time, with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalog import feature_files, lint, load_step_library, scenarios
from harness.errors import FeatureError

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "fixtures/features/bad"


@pytest.fixture(scope="module")
def defs():  # type: ignore[no-untyped-def]
    return load_step_library()


def test_the_project_features_are_clean(defs) -> None:  # type: ignore[no-untyped-def]
    assert lint([ROOT / "features"], defs) == []


def test_step_library_entries_have_docs_and_locations(defs) -> None:  # type: ignore[no-untyped-def]
    assert len(defs) > 30
    for d in defs:
        assert d.where.startswith("harness/steps/"), d.where
        assert d.type in ("given", "when", "then")


def test_undefined_step_is_reported_with_its_line(defs) -> None:  # type: ignore[no-untyped-def]
    problems = lint([BAD / "undefined_step.feature"], defs)
    assert [str(p) for p in problems] == [
        f"{BAD / 'undefined_step.feature'}:5: undefined step: When the on-call reboots the mainframe"
    ]


def test_unregistered_tag_is_reported(defs) -> None:  # type: ignore[no-untyped-def]
    problems = lint([BAD / "unregistered_tag.feature"], defs)
    assert any("tag @nightly_chaos is not a registered marker" in str(p) for p in problems)
    assert all(":1" in p.location or ":2" in p.location for p in problems)


def test_deadline_in_words_is_reported(defs) -> None:  # type: ignore[no-untyped-def]
    problems = lint([BAD / "bad_deadline.feature"], defs)
    messages = [str(p) for p in problems]
    assert any(":5: deadline 'within five seconds' is not a number of seconds" in m for m in messages), messages


def test_gherkin_syntax_error_names_the_file() -> None:
    with pytest.raises(FeatureError, match=r"not_gherkin.feature:5: cannot parse: Unexpected token"):
        scenarios([BAD / "not_gherkin.feature"])


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match="no feature file or directory"):
        feature_files([tmp_path / "nope.feature"])


def test_scenario_listing_reads_tags_deadlines_and_examples() -> None:
    found = {s.name: s for s in scenarios([ROOT / "features/broker_connection.feature"])}
    outline = next(s for n, s in found.items() if "3 attempts" in n)
    assert outline.examples == 3
    assert {"q2", "p0", "broker"} <= set(outline.tags)
    assert "within 20 seconds" in outline.deadlines
    assert "within an RTO of 60 seconds" not in outline.deadlines  # RTO phrased 'meets an RTO of'


BAD_INPUT = Path(__file__).resolve().parents[2] / "fixtures" / "bad-input"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.feature", "empty.feature:1: empty: expected a 'Feature:' line"),
        ("binary.feature", "binary.feature:1: not UTF-8 text (byte 0xff at offset 2)"),
    ],
)
def test_files_that_are_not_features_name_file_and_line(name: str, message: str) -> None:
    with pytest.raises(FeatureError) as err:
        scenarios([BAD_INPUT / name])
    assert message in str(err.value)


def test_a_missing_examples_column_is_named_not_reported_as_an_undefined_step() -> None:
    problems = lint([BAD_INPUT / "missing_examples_column.feature"])
    assert [p.message for p in problems] == [
        "<failur> has no column in the Examples of 'The broker link <failure>' (columns: failure)"
    ]
    assert problems[0].location.endswith("missing_examples_column.feature:4")


def test_a_zero_width_space_in_an_alert_name_is_flagged() -> None:
    problems = lint([BAD_INPUT / "zero_width_alert.feature"])
    assert len(problems) == 1 and "U+200B ZERO WIDTH SPACE" in problems[0].message


def test_look_alike_letters_in_a_quoted_string_are_flagged() -> None:
    from harness.catalog import invisible_or_confusable

    assert invisible_or_confusable('a P0 alert "KillSwitchАctive"')[0].startswith("'KillSwitchАctive' mixes Latin")
    assert invisible_or_confusable('the engine log shows "Kill switch activated"') == []
    assert invisible_or_confusable('price "12 €" in "Zürich"') == []  # non-ASCII is fine when nothing is mixed



REFERENCES = """@p0
Feature: Steps that name what a stack has or lacks
  @q1
  Scenario: A link the stack lacks
    Given the trading stack is running in lab mode
    When the brokr link goes down

  @q2
  Scenario Outline: A service, twice
    When the <service> crashes

    Examples:
      | service       |
      | trading engin |
      | trading engin |
"""


def test_references_are_checked_against_the_stack_once_and_only_in_selected_scenarios(
    defs, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    from harness.catalog import reference_problems
    from harness.stack import load_stack

    feature = tmp_path / "refs.feature"
    feature.write_text(REFERENCES)
    stack = load_stack(ROOT / "docker-compose.yml")
    everything = reference_problems([feature], stack, defs)
    assert [p.location for p in everything] == [f"{feature}:6", f"{feature}:10"]  # the Outline's rows: once
    assert "no link 'brokr' in stack 'mockstack'" in everything[0].message
    assert "no service called 'trading engin'" in everything[1].message
    q2 = reference_problems([feature], stack, defs, marker="q2 and not p3")
    assert [p.location for p in q2] == [f"{feature}:10"]
    assert reference_problems([ROOT / "features"], stack, defs) == []  # the project's own drills name real things
