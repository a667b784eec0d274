"""`drill cleanup` and `drill halt` from another process while a drill is live (issue 11, "Done means").

The live run is a real `drill run` of a drill project of its own. Cleanup must leave it alone (its
fault stays in place, its ledger gets no line from cleanup); halt must stop it cleanly: the scenario
in progress and every one still to come are reported "halted" with the reason, the later ones
inject nothing, and nothing of the run is left. Its progress lines say "halted" (never "failed")
and it exits 4, the README's code for a run refused or stopped for safety.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends.reaper import labelled_processes
from harness.toxiproxy import ToxiproxyAdapter

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DRILL = str(Path(sys.executable).parent / "drill")

FEATURE = """Feature: A fault held long enough to be halted
  Scenario: The broker link is down while the drill waits
    Given the trading stack is running in lab mode
    When the broker link goes down
    Then the trading engine log shows "a line this engine never writes" within 90 seconds

  Scenario: A later scenario of the same run
    Given the trading stack is running in lab mode
    When the broker link goes down
"""


def _wait_for(what: str, check, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _injected_ledger(runs: Path) -> Path | None:
    for ledger in runs.glob("*/ledger.jsonl"):
        if '"action": "injected"' in ledger.read_text():
            return ledger
    return None


def test_cleanup_leaves_a_live_run_alone_and_halt_stops_it_reported_halted(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "held.feature").write_text(FEATURE)
    (tmp_path / "drill.toml").write_text(f'stack = "{ROOT / "docker-compose.yml"}"\n')  # a drill project of its own
    report = tmp_path / "runs" / "report-live"  # where `drill run` puts it by default: cleanup and halt look there
    runs = report / "runs"
    run = subprocess.Popen(
        [DRILL, "run", "--report", str(report)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=dict(os.environ, DRILL_TOOLS_DIR=str(ROOT / ".tools" / "bin")),  # tmp_path is no checkout
    )  # fmt: skip
    try:
        def injected() -> Path | None:
            if run.poll() is not None:  # it ended before injecting: show why
                assert run.stdout is not None
                pytest.fail(f"the drill run ended early (exit {run.returncode}):\n{run.stdout.read()[-3000:]}")
            return _injected_ledger(runs)

        ledger = _wait_for("the live run to inject its fault", injected)
        run_dir = ledger.parent
        state = json.loads((run_dir / "stack.json").read_text())
        proxy = ToxiproxyAdapter("127.0.0.1", state["ports"]["toxiproxy.api"])
        link = state["links"]["broker"]["proxy"]
        assert not proxy.proxy(link).enabled

        cleaned = subprocess.run([DRILL, "cleanup"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert "left alone" in cleaned.stdout and "rolled back" not in cleaned.stdout
        assert not proxy.proxy(link).enabled  # the live run's fault is still in place
        assert {json.loads(x)["pid"] for x in ledger.read_text().splitlines()} == {run.pid}

        halted = subprocess.run(
            [DRILL, "halt", "--reason", "market open"], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert halted.returncode == 0, halted.stdout + halted.stderr
        assert "halt file written" in halted.stdout
        out, _ = run.communicate(timeout=90)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 4, out  # README: 4 refused for safety, halted by `drill halt`
    progress = " ".join(out.split())
    assert "■ halted The broker link is down while the drill waits" in progress, out
    assert "■ halted A later scenario of the same run" in progress, out
    assert "✘ failed" not in progress and "market open" in progress, out
    assert "2 halted" in progress, out
    journal = json.loads((report / "journal.json").read_text())
    statuses = [(s["scenario"], s["status"]) for s in journal["scenarios"]]
    assert statuses == [
        ("The broker link is down while the drill waits", "halted"),
        ("A later scenario of the same run", "halted"),
    ], out
    for sc in journal["scenarios"]:
        assert "market open" in sc["error"] and "timed out" not in sc["error"], sc["error"]
    assert [p.parent for p in runs.glob("*/ledger.jsonl")] == [run_dir]  # the later scenario injected nothing
    assert not labelled_processes(state["run_id"])
