"""The docker backend's reaper against the real Docker engine (issue 11: a stack never outlives its owner).

`drill run --backend docker` starts a drill that holds its fault; the test SIGKILLs the drill process
alone (not its process group, nothing else) and asserts that, WITHOUT `drill cleanup`, every container,
network and volume labelled with that run's compose project is gone within seconds: the run's reaper, which watches
its owner through a pipe only the owner holds, removed them. The time it took is printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.faults.ledger import pending
from tests.integration.test_docker_backend import engine, leftovers  # noqa: F401 - engine: skips without Docker

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DRILL = str(Path(sys.executable).parent / "drill")
TEARDOWN_DEADLINE_S = 30.0  # the reaper force-removes; this only bounds a hung engine

FEATURE = """Feature: A fault held while the drill process is killed
  Scenario: The broker link is down while the drill waits
    Given the trading stack is running in lab mode
    When the broker link goes down
    Then the trading engine log shows "a line this engine never writes" within 300 seconds
"""


def _status(run_dir: Path) -> str:
    return str(json.loads((run_dir / "stack.json").read_text()).get("status"))


def _injected_run(report: Path) -> tuple[str, Path] | None:
    """The compose project and run directory of the run once its fault is in."""
    for ledger in (report / "runs").glob("*/ledger.jsonl"):
        if '"action": "injected"' in ledger.read_text():
            state = json.loads((ledger.parent / "stack.json").read_text())
            return str(state["project"]), ledger.parent  # every container, network and volume carries it
    return None


def test_sigkill_of_the_drill_process_alone_removes_the_runs_containers_without_cleanup(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "held.feature").write_text(FEATURE)
    (tmp_path / "drill.toml").write_text(f'stack = "{ROOT / "docker-compose.yml"}"\nbackend = "docker"\n')
    report = tmp_path / "report"
    run = subprocess.Popen(
        [DRILL, "run", "--report", str(report)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,  # its own group: only the pid is signalled, never a group
    )  # fmt: skip
    project = ""
    try:
        deadline = time.monotonic() + 240
        found = None
        while found is None:
            if run.poll() is not None:
                assert run.stdout is not None
                pytest.fail(f"the run ended before injecting (exit {run.returncode}):\n{run.stdout.read()[-3000:]}")
            assert time.monotonic() < deadline, "the docker run did not inject its fault within 240 s"
            found = _injected_run(report)
            time.sleep(0.2)
        project, run_dir = found
        assert any(x.startswith("container ") for x in leftovers(project)), "the run's containers are not up"
        os.kill(run.pid, signal.SIGKILL)  # the drill process alone
        killed = time.monotonic()
        run.wait(10)
        left = leftovers(project)
        while left and time.monotonic() - killed < TEARDOWN_DEADLINE_S:
            time.sleep(0.25)
            left = leftovers(project)
        took = time.monotonic() - killed
        print(f"docker stack of {project} removed {took:.1f}s after SIGKILL of the drill process")
        assert left == [], f"{took:.0f}s after SIGKILL, without `drill cleanup`, still there: {left}"
        while _status(run_dir) != "down" and time.monotonic() - killed < TEARDOWN_DEADLINE_S:
            time.sleep(0.1)  # the reaper closes the ledger, then marks the run down, after removing the containers
        assert _status(run_dir) == "down"
        assert pending(run_dir) == ()  # the link fault was closed out with the stack it lived in
        assert not (run_dir / "HALT").exists()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if project and leftovers(project):  # never leave a stack behind for the next test
            subprocess.run([DRILL, "cleanup", "--down"], cwd=tmp_path, capture_output=True, timeout=180)
