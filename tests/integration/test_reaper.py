"""The reaper on its own, with a stand-in owner and a `sleep` labelled as the run's (no stack needed).

* the owner SIGKILLed alone: the labelled process (in a session of its own, out of reach of the
  owner's process group) is gone within seconds;
* the owner releasing it: the reaper exits and touches nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness.backends.reaper import labelled_processes, proc_start

pytestmark = pytest.mark.integration

OWNER = """
import os, subprocess, sys, time
from pathlib import Path
from harness.backends.reaper import ReaperHandle
run_dir, run_id, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
handle = ReaperHandle(run_dir, run_id, grace=1.0)
child = subprocess.Popen(["sleep", "600"], env=dict(os.environ, DRILL_RUN_ID=run_id), start_new_session=True)
print(handle.pid, child.pid, flush=True)
if mode == "release":
    handle.release()
    print("released", flush=True)
time.sleep(600)
"""


def _start_owner(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], str, int, int]:
    run_id = f"drill-reaper-test-{uuid.uuid4().hex[:8]}"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "run"), run_id, mode], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    reaper_pid, child_pid = (int(x) for x in owner.stdout.readline().split())
    return owner, run_id, reaper_pid, child_pid


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while proc_start(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sigkill_of_the_owner_alone_takes_the_runs_processes_with_it(tmp_path: Path) -> None:
    owner, run_id, reaper_pid, child_pid = _start_owner(tmp_path, "keep")
    try:
        assert labelled_processes(run_id) == [child_pid]
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        assert _gone_within(child_pid, 10.0), f"the run's process {child_pid} outlived its owner"
        assert _gone_within(reaper_pid, 10.0)
        assert "its drill process is gone: 1 process(es) stopped" in (tmp_path / "run" / "reaper.log").read_text()
    finally:
        for pid in labelled_processes(run_id):
            os.kill(pid, signal.SIGKILL)
        if owner.poll() is None:
            owner.kill()


def test_a_released_reaper_exits_and_touches_nothing(tmp_path: Path) -> None:
    owner, run_id, reaper_pid, child_pid = _start_owner(tmp_path, "release")
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "released"
        assert _gone_within(reaper_pid, 10.0)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        time.sleep(0.5)  # had the reaper still been watching, it would act now
        assert proc_start(child_pid) is not None, "a released reaper must not stop anything"
    finally:
        for pid in labelled_processes(run_id):
            os.kill(pid, signal.SIGKILL)
        if owner.poll() is None:
            owner.kill()
