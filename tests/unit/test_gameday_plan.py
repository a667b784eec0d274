"""GameDay plans derived from a project's own @q1..@q4 scenarios (small features in tmp_path, the real step library)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalog import StepDef, load_step_library
from harness.gameday import GameDayPlanError, load_plan
from harness.gameday.session import rto_target
from harness.project import DrillProject, current_project

LINK_LOST = """\
@q2 @p0
Feature: Venue link lost
  Background:
    Given the trading stack is running in lab mode

  Scenario Outline: The <link> link <failure>; the engine gives up and pages
    When the <link> link <failure>
    Then a P0 alert "VenueGone" fires within 20 seconds
    And the trading engine log shows "gave up" within 5 seconds
    And no new order is sent for 2 seconds
    When the on-call follows runbook step 1 of "Venue Down"
    Then its output shows "down"
    When the <link> link is restored
    And the on-call follows runbook step 3 of "Venue Down"
    Then the trading engine is connected to the broker within 10 seconds
    And the on-call follows runbook step 4 of "Venue Down"
    And the recovery meets an RTO of 45 seconds

    Examples:
      | link  | failure         |
      | venue | goes down       |
      | venue | stops answering |
"""

OUTAGE = """\
Feature: Everything crashes
  @q4
  Scenario: One service only
    Given the trading stack is running in lab mode
    When the trading engine crashes
    Then a P0 alert "EngineDown" fires within 10 seconds
    When the on-call restarts the trading engine
    Then every service is healthy within 30 seconds
    And the recovery meets an RTO of 60 seconds

  @q4 {chosen}
  Scenario: Every service
    Given the trading stack is running in lab mode
    When every service of the trading stack crashes
    Then a P0 alert "EngineDown" fires within 10 seconds
    When the on-call restarts every service
    Then every service is healthy within 45 seconds
    And no order was filled twice
    And the recovery meets an RTO of 90 seconds
"""


@pytest.fixture(scope="module")
def library() -> list[StepDef]:
    return load_step_library(current_project(Path(__file__).parent))


def project_with(tmp_path: Path, **features: str) -> DrillProject:
    (tmp_path / "features").mkdir(exist_ok=True)
    for name, text in features.items():
        (tmp_path / "features" / f"{name}.feature").write_text(text, encoding="utf-8")
    return current_project(tmp_path)


def test_an_outline_is_played_with_its_first_examples_row_and_sorted_into_phases(tmp_path: Path,
                                                                                 library: list[StepDef]) -> None:
    plan = load_plan("q2", project=project_with(tmp_path, link=LINK_LOST), library=library)
    assert plan.quarter == "Q2" and plan.feature == "Venue link lost"
    assert plan.scenario == "The venue link goes down; the engine gives up and pages"
    assert plan.example == {"link": "venue", "failure": "goes down"}
    assert plan.tags == ("p0", "q2")
    assert [s.text for s in plan.preconditions] == ["the trading stack is running in lab mode"]
    assert plan.fault.text == "the venue link goes down" and plan.fault.line == 7
    assert [s.text for s in plan.detections] == ['a P0 alert "VenueGone" fires within 20 seconds',
                                                 'the trading engine log shows "gave up" within 5 seconds']
    # watched together from the fault: the second may take what `drill run` gives it after the first
    assert plan.detection_deadlines() == (20.0, 25.0)
    assert [s.text for s in plan.checks] == ["no new order is sent for 2 seconds"]
    assert [s.text for s in plan.response] == ['the on-call follows runbook step 1 of "Venue Down"',
                                               'its output shows "down"', "the venue link is restored",
                                               'the on-call follows runbook step 3 of "Venue Down"']
    assert plan.fault_end is not None and plan.fault_end.text == "the venue link is restored"
    assert plan.recovery.text == "the trading engine is connected to the broker within 10 seconds"
    assert plan.recovery.deadline_s == 10
    # the RTO step is judged by the GameDay itself (with --rto overriding it), so it is not replayed
    assert [s.text for s in plan.follow_up] == ['the on-call follows runbook step 4 of "Venue Down"']
    assert plan.rto_s == 45 and plan.rto_line == 17 and plan.sections == ("Venue Down",)
    assert plan.choice() == f"the only scenario tagged @q2: {tmp_path / 'features' / 'link.feature'}:6"


def test_the_scenario_tagged_gameday_is_chosen_among_several(tmp_path: Path, library: list[StepDef]) -> None:
    plan = load_plan("Q4", project=project_with(tmp_path, outage=OUTAGE.format(chosen="@gameday")), library=library)
    assert plan.scenario == "Every service" and "gameday" in plan.tags
    assert plan.recovery.deadline_s == 45 and plan.rto_s == 90
    assert plan.fault_end is not None and plan.fault_end.text == "the on-call restarts every service"
    assert [s.text for s in plan.follow_up] == ["no order was filled twice"]
    assert len(plan.candidates) == 2 and "(tagged @gameday) of 2 scenarios tagged @q4" in plan.choice()


def test_without_a_gameday_tag_the_first_tagged_scenario_is_chosen_and_the_console_says_so(
        tmp_path: Path, library: list[StepDef]) -> None:
    plan = load_plan("Q4", project=project_with(tmp_path, outage=OUTAGE.format(chosen="")), library=library)
    assert plan.scenario == "One service only"
    assert "the first; tag another @gameday to choose it" in plan.choice()


def test_feature_chooses_a_file_outside_the_features_directory(tmp_path: Path, library: list[StepDef]) -> None:
    elsewhere = tmp_path / "elsewhere.feature"
    elsewhere.write_text(LINK_LOST, encoding="utf-8")
    project = project_with(tmp_path, outage=OUTAGE.format(chosen=""))
    assert load_plan("Q2", feature=elsewhere, project=project, library=library).feature_file == elsewhere
    with pytest.raises(GameDayPlanError, match="no scenario tagged @q4 in .*elsewhere.feature"):
        load_plan("Q4", feature=elsewhere, project=project, library=library)


def test_no_scenario_with_the_tag_names_the_tag_and_the_features_directory(tmp_path: Path,
                                                                           library: list[StepDef]) -> None:
    project = project_with(tmp_path, link=LINK_LOST)
    with pytest.raises(GameDayPlanError) as caught:
        load_plan("Q3", project=project, library=library)
    assert caught.value.exit_code == 2
    assert f"no scenario tagged @q3 in {tmp_path / 'features'}" in caught.value.message
    assert "@q3" in (caught.value.hint or "")


def test_a_missing_features_directory_and_a_bad_quarter_are_input_errors(tmp_path: Path,
                                                                         library: list[StepDef]) -> None:
    with pytest.raises(GameDayPlanError, match="no features directory at"):
        load_plan("Q1", project=current_project(tmp_path), library=library)
    with pytest.raises(GameDayPlanError, match="expected a quarter Q1..Q4, observed 'Q5'"):
        load_plan("Q5", project=project_with(tmp_path, link=LINK_LOST), library=library)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('    Then a P0 alert "X" fires within 5 seconds\n', "has no When step that injects a fault"),
        ("    When the venue link goes down\n    Then no new order is sent for 2 seconds\n"
         "    When the venue link is restored\n    Then every service is healthy within 30 seconds\n",
         "has no detection after its fault"),
        ('    When the venue link goes down\n    Then a P0 alert "X" fires within 5 seconds\n'
         "    When the venue link is restored\n", "has no step that records the recovery"),
        ("    When the venue link goes down\n    Then the moon is made of cheese\n", "undefined step: Then the moon"),
    ],
    ids=["no-fault", "no-detection", "no-recovery", "undefined-step"],
)
def test_a_scenario_a_gameday_cannot_play_is_refused_with_its_location(tmp_path: Path, library: list[StepDef],
                                                                       body: str, message: str) -> None:
    text = "@q1\nFeature: F\n  Scenario: S\n    Given the trading stack is running in lab mode\n" + body
    project = project_with(tmp_path, f=text)
    with pytest.raises(GameDayPlanError, match=message) as caught:
        load_plan("Q1", project=project, library=library)
    assert str(tmp_path / "features" / "f.feature") in (caught.value.location or "")


def test_the_rto_comes_from_the_scenario_and_rto_overrides_it(tmp_path: Path, library: list[StepDef]) -> None:
    plan = load_plan("Q2", project=project_with(tmp_path, link=LINK_LOST), library=library)
    assert rto_target(plan, None) == 45 and rto_target(plan, 3.0) == 3.0
    silent = LINK_LOST.replace("    And the recovery meets an RTO of 45 seconds\n", "")
    plan = load_plan("Q2", project=project_with(tmp_path, link=silent), library=library)
    assert plan.rto_s is None and rto_target(plan, 30.0) == 30.0
    with pytest.raises(GameDayPlanError, match="states no RTO target") as caught:
        rto_target(plan, None)
    assert "--rto" in (caught.value.hint or "")


def test_a_team_step_that_needs_a_pytest_fixture_is_refused_before_anything_starts(tmp_path: Path) -> None:
    package = tmp_path / "gd_team_steps_fixture"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from pytest_bdd import then\n\n"
        "@then('the tape is checked within 5 seconds')\n"
        "def tape(drill, request):\n    drill.recovered('tape')\n",
        encoding="utf-8",
    )
    (tmp_path / "drill.toml").write_text('steps = ["gd_team_steps_fixture"]\n', encoding="utf-8")
    text = LINK_LOST.replace("Then the trading engine is connected to the broker within 10 seconds",
                             "Then the tape is checked within 5 seconds")
    project = project_with(tmp_path, link=text)
    with pytest.raises(GameDayPlanError, match=r"needs the pytest fixture\(s\) request"):
        load_plan("Q2", project=project)


def test_a_team_fault_step_is_recognised_through_its_helper(tmp_path: Path) -> None:
    package = tmp_path / "gd_team_steps_helper"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from pytest_bdd import when\n\n"
        "def inject_outage(drill):\n    raise NotImplementedError\n\n"
        "@when('the venue vanishes')\n"
        "def vanish(drill):\n    inject_outage(drill)\n\n"
        "@when('the venue comes back')\n"
        "def back(drill):\n    drill.restore()\n",
        encoding="utf-8",
    )
    (tmp_path / "drill.toml").write_text('steps = ["gd_team_steps_helper"]\n', encoding="utf-8")
    text = ("@q1\nFeature: F\n  Scenario: S\n    Given the trading stack is running in lab mode\n"
            "    When the venue vanishes\n"
            '    Then a P0 alert "VenueGone" fires within 5 seconds\n'
            "    When the venue comes back\n"
            "    Then every service is healthy within 30 seconds\n")
    plan = load_plan("Q1", project=project_with(tmp_path, f=text))
    assert plan.fault.text == "the venue vanishes"
    assert plan.fault_end is not None and plan.fault_end.text == "the venue comes back"


def test_drill_gameday_without_the_quarters_scenario_exits_2_naming_the_tag_and_the_features(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from harness.cli import main

    project_with(tmp_path, link=LINK_LOST)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["gameday", "Q3", "--auto"])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())  # the console wraps long lines
    assert f"error: no scenario tagged @q3 in {tmp_path / 'features'}" in output
    assert "Traceback" not in output
