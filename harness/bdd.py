"""The one place the harness reaches into pytest-bdd beyond its public API (``given/when/then``,
``parsers``, ``scenarios`` and the ``pytest_bdd_*`` hooks).

pytest-bdd offers no public way to (a) parse a feature file without running it, (b) list the step
definitions that have been declared, or (c) find the scenario behind a collected test item. These
three live in pytest-bdd's own modules (``parser``, ``steps``, ``scenario``), present since 9.0 (the
lower bound in pyproject.toml). ``tests/unit/test_bdd_internals.py`` fails loudly, naming what
moved, if a pytest-bdd release changes any of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_bdd.parser import Feature, FeatureParser
from pytest_bdd.scenario import scenario_wrapper_template_registry
from pytest_bdd.steps import StepFunctionContext, step_function_context_registry

__all__ = ["Feature", "StepFunctionContext", "parse_feature_file", "scenario_of_test", "step_definitions"]


def parse_feature_file(path: Path) -> Feature:
    """Parse one ``.feature`` file (raises the gherkin parser's own errors, with line numbers)."""
    return FeatureParser(str(path.parent), path.name).parse()


def step_definitions() -> list[StepFunctionContext]:
    """Every step definition declared so far (by importing step modules)."""
    return list(step_function_context_registry.values())


def scenario_of_test(obj: Any) -> Any:
    """The pytest-bdd scenario template behind a test function, or None for ordinary tests."""
    return scenario_wrapper_template_registry.get(obj)
