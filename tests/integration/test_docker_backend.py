"""The docker backend against a real Docker engine: the quarterly drills, crash clean-up, pause safety.

Needs a running engine and the local images (scripts/docker-setup.sh, scripts/build-images.sh). When
no engine is reachable every test here is *skipped with that reason*; a missing image is a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.base import ServiceState
from harness.stack import load_stack

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DRILL = str(Path(sys.executable).parent / "drill")


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    from harness.backends.docker import engine_available

    if not engine_available():
        pytest.skip("no Docker engine: run scripts/docker-setup.sh")


def leftovers(project: str) -> list[str]:
    import docker

    client = docker.from_env()
    label = {"label": f"com.docker.compose.project={project}"}
    found = [f"container {c.name}" for c in client.containers.list(all=True, ignore_removed=True, filters=label)]
    found += [f"network {n.name}" for n in client.networks.list(filters=label)]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=label)]
    client.close()
    return found


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[object]:
    from harness.backends.docker import DockerBackend

    b = DockerBackend(load_stack(ROOT / "docker-compose.yml"), tmp_path / "run")
    b.up()
    try:
        yield b
    finally:
        b.down()
        assert leftovers(b.project) == []


# Q2 and Q3 (4 and 7 scenarios) run with two workers, each with a compose project of its own, which is
# also how a team runs a long quarter on Docker; Q1 and Q4 keep the one-process path covered.
@pytest.mark.parametrize(
    ("quarter", "workers"),
    [("Q1", []), ("Q2", ["-n", "2"]), ("Q3", ["-n", "2"]), ("Q4", [])],
    ids=["Q1", "Q2-n2", "Q3-n2", "Q4"],
)
def test_quarterly_drill_passes_on_the_docker_backend(quarter: str, workers: list[str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [DRILL, "run", "--backend", "docker", "--quarter", quarter, *workers, "--report", str(tmp_path / "report")],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "passed" in proc.stdout


def test_a_paused_container_is_unpaused_when_the_fault_block_fails(backend: object) -> None:
    from harness.backends.docker import DockerBackend
    from harness.faults.base import FaultContext
    from harness.faults.service import Pause

    assert isinstance(backend, DockerBackend)
    ctx = FaultContext(run_dir=backend.run_dir)
    with pytest.raises(RuntimeError), Pause(backend, "dashboard", ctx=ctx):
        assert backend.state("dashboard") == ServiceState.PAUSED
        raise RuntimeError("a step failed while the dashboard was frozen")
    assert backend.state("dashboard") == ServiceState.RUNNING


def test_down_removes_a_paused_and_a_killed_container(tmp_path: Path) -> None:
    from harness.backends.docker import DockerBackend

    b = DockerBackend(load_stack(ROOT / "docker-compose.yml"), tmp_path / "run")
    b.up()
    try:
        b.pause("marketdata")
        b.kill("traderunner")
        assert b.state("marketdata") == ServiceState.PAUSED
        assert b.state("traderunner") == ServiceState.STOPPED
    finally:
        b.down()
    assert leftovers(b.project) == []


INJECTOR = """
import sys, time
from pathlib import Path
from harness.backends.docker import DockerBackend
from harness.faults.base import FaultContext
from harness.faults.network import LinkDown
from harness.faults.service import Kill, Pause
from harness.stack import load_stack
b = DockerBackend(load_stack(Path(sys.argv[2])), Path(sys.argv[1]))
b.up()
ctx = FaultContext(run_dir=b.run_dir)
LinkDown(b, "marketdata", ctx=ctx).inject()
Pause(b, "dashboard", ctx=ctx).inject()
Kill(b, "broker", ctx=ctx).inject()
print("INJECTED", b.project, flush=True)
time.sleep(3600)
"""


def test_harness_killed_mid_drill_then_cleanup_leaves_no_container_network_or_volume(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", INJECTOR, str(run_dir), str(ROOT / "docker-compose.yml")],
        stdout=subprocess.PIPE, text=True, start_new_session=True, cwd=ROOT,
    )
    assert proc.stdout is not None
    project = ""
    try:
        line = proc.stdout.readline().split()
        assert line[:1] == ["INJECTED"], line
        project = line[1]
        assert leftovers(project)  # the stack is there, paused dashboard, killed broker
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    started = time.monotonic()
    cli = subprocess.run(
        [DRILL, "cleanup", "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    # the run's reaper may have torn the stack down already ("nothing left behind"), or cleanup does it
    assert any(w in cli.stdout for w in ("gone", "removed", "nothing left behind")), cli.stdout
    assert leftovers(project) == [], f"left after `drill cleanup` ({time.monotonic() - started:.1f}s)"


def test_cleanup_reaps_labelled_leftovers_of_a_run_whose_directory_is_gone(tmp_path: Path) -> None:
    import shutil

    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", INJECTOR, str(run_dir), str(ROOT / "docker-compose.yml")],
        stdout=subprocess.PIPE, text=True, start_new_session=True, cwd=ROOT,
    )
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline().split()
        assert line[:1] == ["INJECTED"], line
        project = line[1]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    shutil.rmtree(run_dir)  # nothing on disk points at the containers any more: only their labels do
    cli = subprocess.run([DRILL, "cleanup"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert leftovers(project) == [], cli.stdout
