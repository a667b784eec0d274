"""The `drill` CLI as a user calls it (subprocess): exit codes and messages. Nothing here starts a stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DRILL = str(Path(sys.executable).parent / "drill")


def drill(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, COLUMNS="200")
    full.update(env or {})
    return subprocess.run([DRILL, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=full)


def test_list_shows_every_scenario_with_tags_and_deadlines() -> None:
    r = drill("list")
    assert r.returncode == 0, r.stderr
    assert "16 scenarios" in r.stdout
    assert "@q1" in r.stdout and "within 5 seconds" in r.stdout


def test_steps_catalogue() -> None:
    r = drill("steps")
    assert r.returncode == 0, r.stderr
    assert "step definitions" in r.stdout
    assert "harness/steps/alerts.py" in r.stdout


def test_lint_clean_and_dirty() -> None:
    assert drill("lint").returncode == 0
    r = drill("lint", "fixtures/features/bad/undefined_step.feature", "fixtures/features/bad/unregistered_tag.feature")
    assert r.returncode == 2
    assert (
        "undefined_step.feature:5" in r.stdout and "undefined step: When the on-call reboots the mainframe" in r.stdout
    )
    assert "tag @nightly_chaos is not a registered marker" in r.stdout


def test_dry_run_of_the_q1_drill_prints_the_plan_and_touches_nothing(tmp_path: Path) -> None:
    r = drill("run", "--quarter", "Q1", "--dry-run", "--report", str(tmp_path / "report"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[dry-run] would inject: price_shock" in r.stdout
    assert "[dry-run] would expect within 5s: alert KillSwitchActive severity=P0" in r.stdout
    assert "2 planned" in r.stdout and "passed" not in r.stdout  # a dry run ran nothing
    assert not list((tmp_path / "report").rglob("stack.json"))


def test_unknown_quarter_is_a_usage_error() -> None:
    r = drill("run", "--quarter", "Q9", "--dry-run")
    assert r.returncode == 2
    assert "'Q9' is not a quarter" in r.stderr


def test_a_selection_matching_nothing_exits_5(tmp_path: Path) -> None:
    r = drill("run", "--tags", "q1 and rollback", "--dry-run", "--report", str(tmp_path / "r"))
    assert r.returncode == 5
    assert "no scenario matched" in r.stdout


def test_an_unregistered_tag_in_the_selection_is_bad_input(tmp_path: Path) -> None:
    r = drill("run", "--tags", "no_such_tag", "--dry-run", "--report", str(tmp_path / "r"))
    assert r.returncode == 2
    assert "no_such_tag" in r.stdout + r.stderr


def test_bad_stack_file_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "stack.yml"
    bad.write_text(
        (ROOT / "docker-compose.yml").read_text().replace("to: broker, port: order", "to: broker, port: fix")
    )
    r = drill("run", "--stack-file", str(bad), "--dry-run")
    assert r.returncode == 2
    assert f"{bad}:" in r.stderr
    assert "x-drill.links.broker.port: service 'broker' has no port named 'fix'" in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_service_in_a_stack_file(tmp_path: Path) -> None:
    bad = tmp_path / "stack.yml"
    bad.write_text((ROOT / "docker-compose.yml").read_text().replace("workdir: traderunner", "workdir: tradrunner"))
    r = drill("stack", "up", "--stack-file", str(bad), "--run-dir", str(tmp_path / "run"))
    assert r.returncode == 2
    assert "x-drill.workdir: unknown service 'tradrunner'" in r.stderr


def test_missing_toxiproxy_says_how_to_install_it(tmp_path: Path) -> None:
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not Path(p, "toxiproxy-server").exists())
    r = drill(
        "run",
        "--quarter",
        "Q1",
        "--report",
        str(tmp_path / "r"),
        env={"PATH": path, "DRILL_TOOLS_DIR": str(tmp_path / "none")},
    )
    assert r.returncode == 3, r.stdout + r.stderr
    assert "toxiproxy-server not found" in r.stderr
    assert "scripts/setup.sh" in r.stderr


def test_cleanup_with_nothing_to_do(tmp_path: Path) -> None:
    r = drill("cleanup", cwd=tmp_path)
    assert r.returncode == 0
    assert "nothing to clean up" in r.stdout


def test_dry_run_progress_lines_name_each_examples_row_and_say_planned(tmp_path: Path) -> None:
    r = drill("run", "--dry-run", "features/broker_connection.feature", "--report", str(tmp_path / "report"))
    assert r.returncode == 0, r.stdout + r.stderr
    for failure in ("goes down", "stops answering", "resets every connection"):
        name = f"The broker link {failure}; after 3 attempts the engine asks for manual intervention"
        assert f"▶ {name} ..." in r.stdout
        assert f"○ planned {name} (dry run: nothing ran)" in r.stdout
    assert "✔" not in r.stdout and "4 planned" in r.stdout


def test_run_workers_option_takes_a_number_or_auto() -> None:
    r = drill("run", "-n", "zero", "--dry-run")
    assert r.returncode == 2 and "expected a positive number of workers or 'auto'" in r.stderr


def test_every_cli_module_imports_on_its_own() -> None:
    for module in ("harness.runbook.cli", "harness.report.cli", "harness.cli", "harness.cli_shared"):
        r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"import {module}: {r.stderr}"
