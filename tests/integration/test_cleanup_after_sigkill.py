"""A fault injector is SIGKILLed mid-fault; `drill cleanup` reverts what its ledger says and the stack is healthy.

The stack's owner (this test) stays alive, so cleanup reverts only the faults whose injecting process is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.backends.base import ServiceState
from harness.backends.process import ProcessBackend
from harness.probes._http import HttpReply, http_get
from harness.probes.http import HttpHealth
from harness.stack import load_stack
from harness.trading import services_healthy
from harness.waiting import Observation, wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

INJECTOR = """
import sys, time
from pathlib import Path
from harness.backends.process import ProcessBackend
from harness.probes._http import HttpReply, http_get
from harness.probes.http import HttpHealth
from harness.faults.base import FaultContext
from harness.faults.network import LinkDown
from harness.faults.service import Pause
b = ProcessBackend.attach(Path(sys.argv[1]))
ctx = FaultContext(run_dir=b.run_dir)
LinkDown(b, "marketdata", ctx=ctx).inject()
Pause(b, "dashboard", ctx=ctx).inject()
print("INJECTED", flush=True)
time.sleep(3600)
"""


def _every_check_but_the_sla(backend: ProcessBackend) -> Callable[[], Observation]:
    """The engine's health checks other than ``data_sla``: what reverting the faults must bring back."""
    url = HttpHealth.for_service(backend, "traderunner").url

    def look() -> Observation:
        reply = http_get(url)
        if not isinstance(reply, HttpReply):
            return Observation(False, reply.observed)
        ok, document, problem = reply.json()
        checks = document.get("checks") if ok and isinstance(document, dict) else None
        if not isinstance(checks, dict):
            return Observation(False, problem or reply.health_summary())
        bad = {k: v for k, v in checks.items() if k != "data_sla" and not v.get("ok")}
        return Observation(not bad, reply.health_summary())

    return look


def _follow_runbook_data_recovery(backend: ProcessBackend) -> None:
    """The runbook's data recovery: fetch, then validate; both again while validate still exits 1."""
    tries: list[str] = []
    for _ in range(5):
        fetched = backend.operator(["data", "fetch"], timeout=60)
        assert fetched.exit_code == 0, fetched.output
        validated = backend.operator(["data", "validate"], timeout=60)
        if validated.exit_code == 0:
            return
        tries.append(validated.output.strip())
    raise AssertionError("`traderunner data validate` kept exiting 1 after 5 re-fetches:\n" + "\n".join(tries))


def test_sigkill_mid_fault_then_cleanup_restores_a_healthy_stack(tmp_path: Path) -> None:
    backend = ProcessBackend(load_stack(ROOT / "docker-compose.yml"), tmp_path / "run")
    backend.up()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", INJECTOR, str(backend.run_dir)],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "INJECTED"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        assert backend.state("dashboard") == ServiceState.PAUSED
        assert not backend.toxiproxy.proxy(backend.link("marketdata").proxy_name).enabled

        cli = subprocess.run(
            [str(Path(sys.executable).parent / "drill"), "cleanup", "--run-dir", str(backend.run_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert "rolled back" in cli.stdout
        assert backend.state("dashboard") == ServiceState.RUNNING
        assert backend.toxiproxy.proxy(backend.link("marketdata").proxy_name).enabled
        # What cleanup guarantees: every fault reverted (above), so every link carries traffic again and
        # each service's own connections come back. How long the marketdata link stayed down depends on
        # how busy the machine is: long enough, and the engine's data SLA is violated, which is sticky
        # until the runbook's recovery. So the test follows the runbook ("Data SLA Violation", step 4:
        # `traderunner data fetch` + `traderunner data validate`, again while validate exits 1) before it
        # asks for readiness, and passes the same way on an idle or a loaded machine.
        wait_until(
            _every_check_but_the_sla(backend), deadline_s=20, backend=backend, service="traderunner",
            what="every check of the trading engine but its (sticky) data SLA ok once the links are restored",
        )
        _follow_runbook_data_recovery(backend)
        wait_until(
            services_healthy(backend, list(backend.stack.services)), deadline_s=20,
            what="every service healthy after cleanup and the runbook's data recovery",
        )
        again = subprocess.run(
            [str(Path(sys.executable).parent / "drill"), "cleanup", "--run-dir", str(backend.run_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        # the run's owner (this test) is alive and nothing orphaned is left: the run is not touched
        assert again.returncode == 0 and "left alone" in again.stdout and "rolled back" not in again.stdout
    finally:
        backend.down()


def test_drill_halt_reverts_faults_and_blocks_new_ones(tmp_path: Path) -> None:
    from harness.errors import SafetyRefusal
    from harness.faults.base import FaultContext
    from harness.faults.service import Pause

    backend = ProcessBackend(load_stack(ROOT / "docker-compose.yml"), tmp_path / "run")
    backend.up()
    drill_bin = str(Path(sys.executable).parent / "drill")
    try:
        Pause(backend, "dashboard", ctx=FaultContext(run_dir=backend.run_dir)).inject()
        r = subprocess.run(
            [drill_bin, "halt", "--run-dir", str(backend.run_dir), "--reason", "market open"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert backend.state("dashboard") == ServiceState.RUNNING
        assert (backend.run_dir / "HALT").read_text().strip().endswith("market open")
        with pytest.raises(SafetyRefusal, match="halt file .* is present: new faults are blocked"):
            Pause(backend, "dashboard", ctx=FaultContext(run_dir=backend.run_dir)).inject()
        assert backend.state("dashboard") == ServiceState.RUNNING
        r = subprocess.run(
            [drill_bin, "resume", "--run-dir", str(backend.run_dir)], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0 and not (backend.run_dir / "HALT").exists()
    finally:
        backend.down()
