"""Drill projects (drill.toml / [tool.drill]) and `drill init`, as a team's own directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InputError
from harness.project import BUILTIN_TAGS, ProjectError, binding_module, current_project, find_project, load_project
from harness.scaffold import SECTIONS, plan_init, write_plan
from harness.stack import load_stack

ROOT = Path(__file__).resolve().parents[2]


def test_this_repository_is_a_drill_project_like_any_other() -> None:
    project = find_project(ROOT / "harness")
    assert project is not None and project.root == ROOT
    assert project.features == ROOT / "features" and project.stack == ROOT / "docker-compose.yml"
    assert {"kill_switch", "broker", "q1", "p0"} <= set(project.markers)


def test_drill_toml_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "drill.toml").write_text('features = "drills"\nsteps = ["team.steps"]\n[tags]\npay = "payments"\n')
    (tmp_path / "a" / "b").mkdir(parents=True)
    project = find_project(tmp_path / "a" / "b")
    assert project is not None
    assert project.features == tmp_path / "drills" and project.steps == ("team.steps",)
    assert project.markers == {**BUILTIN_TAGS, "pay": "payments"}


def test_outside_any_project_the_directory_itself_is_used(tmp_path: Path) -> None:
    project = current_project(tmp_path)
    assert project.features == tmp_path / "features" and project.steps == ()


@pytest.mark.parametrize(("text", "message"), [
    ('featurs = "x"\n', "unknown key 'featurs'"),
    ('steps = "team.steps"\n', "steps must be a list of module names"),
    ('steps = ["team-steps"]\n', "steps must be a list of module names"),
    ('features = ""\n', "features must be a non-empty string"),
    ('[tags]\n"bad tag" = "x"\n', "tags.bad tag"),
    ('runbook = "nope.md"\n', "runbook: no file at"),
    ('features = "x\n', "not valid TOML"),
])
def test_bad_configuration_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "drill.toml").write_text(text)
    with pytest.raises(ProjectError) as err:
        load_project(tmp_path / "drill.toml")
    assert message in str(err.value) and str(tmp_path / "drill.toml") in str(err.value)
    assert err.value.exit_code == 2


def test_a_step_module_that_fails_to_import_is_named_with_its_cause(tmp_path: Path) -> None:
    (tmp_path / "drill.toml").write_text('steps = ["brokensteps"]\n')
    (tmp_path / "brokensteps.py").write_text("import no_such_dependency_here\n")
    with pytest.raises(ProjectError) as err:
        load_project(tmp_path / "drill.toml").import_modules()
    assert "steps module 'brokensteps' failed to import: ModuleNotFoundError" in str(err.value)


def test_the_binding_module_binds_exactly_the_selected_features(tmp_path: Path) -> None:
    feature = tmp_path / "elsewhere" / "x.feature"
    module = binding_module([feature], tmp_path / "out")
    text = module.read_text()
    assert repr(str(feature)) in text and text.count(".feature") == 1
    assert (module.parent / "pytest.ini").read_text().startswith("[pytest]")


def test_init_writes_a_project_that_loads(tmp_path: Path) -> None:
    written = write_plan(plan_init(tmp_path, sections=["kill_switch", "broker"]))
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    assert names == {"drill.toml", "docker-compose.yml", "drill_steps/__init__.py", "drill_steps/steps.py",
                     "drill_steps/faults.py", "features/kill_switch.feature", "features/broker_connection.feature"}
    project = load_project(tmp_path / "drill.toml")
    assert project.steps == ("drill_steps.steps",) and project.faults == ("drill_steps.faults",)
    stack = load_stack(project.stack)  # the commented template is a valid stack file
    assert stack.trading.positions is not None and "reconnect" in stack.trading.commands


def test_init_with_an_existing_stack_file_points_at_it(tmp_path: Path) -> None:
    team = tmp_path / "team"
    write_plan(plan_init(team, sections=["data"], stack=ROOT / "docker-compose.yml"))
    assert not (team / "docker-compose.yml").exists()
    assert load_project(team / "drill.toml").stack == ROOT / "docker-compose.yml"


def test_init_never_overwrites_and_writes_nothing_when_refused(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "kill_switch.feature").write_text("mine")
    with pytest.raises(InputError, match="would overwrite"):
        plan_init(tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["features", "kill_switch.feature"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sections": ["kil_switch"]}, "unknown runbook section"),
    ({"package": "Team-Steps"}, "is not a Python package name"),
    ({"stack": Path("/nonexistent/compose.yml")}, "no stack file at"),
])
def test_init_bad_input(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        plan_init(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_every_section_has_a_starter_feature() -> None:
    for section in SECTIONS:
        plan = plan_init(Path("/nonexistent-target"), sections=[section])
        assert any(p.suffix == ".feature" for p in plan.files)


def test_starter_drills_lint_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.catalog import feature_files, lint

    write_plan(plan_init(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    problems = [p for p in lint(feature_files([tmp_path / "features"])) if getattr(p, "level", "error") == "error"]
    assert problems == [], "\n".join(map(str, problems))
