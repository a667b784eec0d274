"""The harness as a team installs it: a wheel (not editable) in a fresh venv, outside any checkout.

`drill init` makes a team directory a drill project; the team writes a feature from catalogue steps
plus one step of its own; `drill lint` and `drill run` then pass against the mock stack started
from its stack file. Nothing here may rely on this checkout being importable or the current directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# one worker builds the wheel and installs it once for both tests (--dist loadgroup)
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("installed_tool")]

ROOT = Path(__file__).resolve().parents[2]

TEAM_FEATURE = """\
@p0 @kill_switch
Feature: The team's own drill
  Catalogue steps plus one step the team wrote itself (drill_steps/steps.py).

  Scenario: The kill switch is tripped by hand; the team's own step checks the engine
    Given the trading stack is running in lab mode
    Then the trading engine answers its health check within 10 seconds
    When the on-call trips the kill switch by hand because "team drill"
    Then a P0 alert "KillSwitchActive" fires within 20 seconds
    And the kill switch is still active
"""


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def source_copy(dest: Path) -> Path:
    """The checkout's tracked files, copied: the wheel is built from them and never in the checkout itself.

    Building in place writes build/ and *.egg-info into the checkout; two builds at once (xdist workers, a
    developer's own `pip wheel .`) then collide on build/bdist.* ("File exists", "Directory not empty"), and a
    stale build/lib can ship modules the checkout no longer has.
    """
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=False, timeout=60)
    if listed.returncode == 0:
        for name in filter(None, listed.stdout.decode().split("\0")):
            src = ROOT / name
            if src.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
    else:  # a source tree without git (an sdist, an export)
        shutil.copytree(ROOT, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", ".tools", "build", "dist", "runs", "*.egg-info", "__pycache__", "examples", "docker"))
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv with the harness installed from its wheel."""
    base = tmp_path_factory.mktemp("installed")
    dist = base / "dist"
    source = source_copy(base / "source")
    build = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
                cwd=base, env=dict(os.environ), timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=300)
    bin_dir = base / "venv" / "bin"
    install = run([str(bin_dir / "pip"), "install", "-q", str(wheel)], cwd=base, env=dict(os.environ), timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    return bin_dir


def team_env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYTEST"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["DRILL_TOOLS_DIR"] = str(ROOT / ".tools" / "bin")  # where this machine's set-up put toxiproxy-server
    return env


def test_the_wheel_does_not_ship_the_checkouts_test_package(installed: Path) -> None:
    site = run([str(installed / "python"), "-c", "import harness, importlib.util as u; print(harness.__file__); "
                "print(u.find_spec('scenarios'))"], cwd=installed, env=team_env(installed), timeout=60)
    assert "site-packages" in site.stdout.splitlines()[0], site.stdout
    assert site.stdout.splitlines()[1] == "None", "a top-level 'scenarios' package would collide in site-packages"


def test_a_team_project_from_drill_init_lints_and_runs(installed: Path, tmp_path: Path) -> None:
    team = tmp_path / "team-repo"
    team.mkdir()
    env = team_env(installed)
    init = run([str(installed / "drill"), "init", "--sections", "kill_switch",
                "--stack", str(ROOT / "docker-compose.yml")], cwd=team, env=env, timeout=60)
    assert init.returncode == 0, init.stdout + init.stderr
    assert (team / "drill.toml").is_file() and (team / "drill_steps" / "steps.py").is_file()
    (team / "features" / "kill_switch.feature").unlink()  # the starter drill is the team's to adapt
    (team / "features" / "team.feature").write_text(TEAM_FEATURE)

    lint = run([str(installed / "drill"), "lint"], cwd=team, env=env, timeout=120)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    steps = run([str(installed / "drill"), "steps"], cwd=team, env=env, timeout=120)
    assert "drill_steps/steps.py" in steps.stdout and "harness/steps/" in steps.stdout, steps.stdout[-2000:]

    drill = run([str(installed / "drill"), "run", "--report", str(team / "report")], cwd=team, env=env, timeout=600)
    out = drill.stdout + drill.stderr
    assert drill.returncode == 0, out[:3000] + "\n...\n" + out[-1500:]
    assert "1 passed" in out and "Traceback" not in out
    assert (team / "report" / "report.html").is_file()

    # every other command works from the team's directory, on the team's project
    for argv in (["list"], ["report", str(team / "report")], ["docs"], ["coverage"], ["plan"]):
        r = run([str(installed / "drill"), *argv], cwd=team, env=env, timeout=120)
        assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, (argv, r.stdout[-1500:], r.stderr)
    assert "The team's own drill" in run([str(installed / "drill"), "list"], cwd=team, env=env, timeout=60).stdout


def test_bad_team_input_is_answered_without_a_traceback(installed: Path, tmp_path: Path) -> None:
    team = tmp_path / "broken-team"
    team.mkdir()
    env = team_env(installed)
    assert run([str(installed / "drill"), "init", "--sections", "kill_switch", "--stack",
                str(ROOT / "docker-compose.yml")], cwd=team, env=env, timeout=60).returncode == 0
    (team / "drill_steps" / "steps.py").write_text("import not_installed_anywhere\n")
    r = run([str(installed / "drill"), "run", "--dry-run"], cwd=team, env=env, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "steps module 'drill_steps.steps' failed to import: ModuleNotFoundError" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    (team / "drill.toml").write_text(textwrap.dedent("""\
        features = "features"
        stepz = ["drill_steps.steps"]
    """))
    r = run([str(installed / "drill"), "lint"], cwd=team, env=env, timeout=120)
    assert r.returncode == 2 and "unknown key 'stepz'" in r.stderr, r.stdout + r.stderr
