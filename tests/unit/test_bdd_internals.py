"""pytest-bdd internals the harness relies on (harness/bdd.py): fail loudly if a release changes them."""

from __future__ import annotations

from pathlib import Path

import pytest_bdd
from pytest_bdd import given, parsers

from harness import bdd


def test_feature_files_parse_without_running(tmp_path: Path) -> None:
    path = tmp_path / "x.feature"
    path.write_text("@q1\nFeature: F\n  Scenario: S\n    Given a thing\n")
    feature = bdd.parse_feature_file(path)
    assert feature.name == "F" and "q1" in feature.tags, f"pytest-bdd {pytest_bdd.__version__}: parser changed"
    (scenario,) = feature.scenarios.values()
    assert [s.name for s in scenario.steps] == ["a thing"]


def test_declared_steps_are_listed_with_their_parser() -> None:
    @given(parsers.parse("a probe step for the registry test {n:d}"))
    def _probe_step(n: int) -> None:
        """Only here to be found in the registry."""

    found = [c for c in bdd.step_definitions() if getattr(c.parser, "name", "").startswith("a probe step")]
    assert found, f"pytest-bdd {pytest_bdd.__version__}: step_function_context_registry no longer lists steps"
    assert found[0].type == "given" and found[0].parser.is_matching("a probe step for the registry test 3")


def test_scenario_lookup_answers_none_for_ordinary_functions() -> None:
    assert bdd.scenario_of_test(test_scenario_lookup_answers_none_for_ordinary_functions) is None
