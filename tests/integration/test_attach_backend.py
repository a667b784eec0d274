"""The attach backend against a stack another process started (the issue's "attach test").

Another ``drill`` process starts the mock stack (``drill stack up`` on the process backend). The test
writes an attach stack file for it from that run's ``stack.json`` (addresses, Toxiproxy proxy names,
commands acting on the recorded pids), runs the Q1 and Q2 drills with ``drill run --backend attach``,
and checks that afterwards every proxy is enabled with no toxic left and every service still runs
with the same pid: the harness started nothing, stopped nothing, and reverted all it did.

Run it under the shared lock: ``flock /tmp/drill-heavy.lock .venv/bin/pytest tests/integration/test_attach_backend.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends.attach import AttachBackend
from harness.backends.base import ServiceState
from harness.errors import FaultInjectionError
from harness.faults.base import FaultContext
from harness.faults.network import LinkDown, Toxic
from harness.faults.service import Kill, Pause
from harness.stack import load_stack
from harness.toxiproxy import ToxiproxyAdapter
from tests.support.processes import http_json

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
APPS = ("broker", "marketdata", "traderunner", "dashboard")

# A service "operator" that acts on the process stack by the pids its drill process recorded:
# kill/pause/resume signal the recorded process group; start/stop go through the process backend
# (which records the new pid, so `drill stack down` still stops everything at the end).
CTL = """\
import json, os, signal, sys
from pathlib import Path
run_dir, verb, service = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
signals = {"kill": signal.SIGKILL, "pause": signal.SIGSTOP, "resume": signal.SIGCONT}
if verb in signals:
    pid = json.loads((run_dir / "stack.json").read_text())["services"][service]["pid"]
    os.killpg(pid, signals[verb])
else:
    from harness.backends.process import ProcessBackend
    getattr(ProcessBackend.attach(run_dir), verb)(service)
"""


def drill(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("TR_MODE", None)
    return subprocess.run([str(BIN / "drill"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def pids(run_dir: Path) -> dict[str, int]:
    state = json.loads((run_dir / "stack.json").read_text())
    return {name: int(rec["pid"]) for name, rec in state["services"].items()}


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZXT"


def attach_file(tmp: Path, run_dir: Path) -> Path:
    """An attach stack file for the process stack in ``run_dir``, from what its stack.json recorded."""
    state: dict[str, Any] = json.loads((run_dir / "stack.json").read_text())
    ports: dict[str, int] = state["ports"]
    ctl = tmp / "ctl.py"
    ctl.write_text(CTL)

    def commands(service: str) -> str:
        lines = [f"          {verb}: [{sys.executable}, {ctl}, {run_dir}, {verb}, {service}]"
                 for verb in ("kill", "stop", "start", "pause", "resume")]
        return "\n".join(lines)

    def service(name: str, title: str, extra: str = "") -> str:
        addresses = ", ".join(f"{key.split('.')[1]}: 127.0.0.1:{port}" for key, port in ports.items()
                              if key.startswith(f"{name}."))
        head = [f"  {name}:", "    x-drill:", f"      title: {title}", "      health: {port: http, path: /health}",
                "      attach:", f"        addresses: {{{addresses}}}"]
        return "\n".join(head) + "\n" + extra + "        commands:\n" + commands(name) + "\n"

    proxies = ", ".join(f"{name}: {link['proxy']}" for name, link in state["links"].items())
    # the team declares where its truth is read: here, the mock's own adapter (as JSON, a YAML flow mapping)
    trading = json.dumps(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-drill"]["trading"])
    text = textwrap.dedent(f"""\
        # written by tests/integration/test_attach_backend.py for the stack in {run_dir}
        x-drill:
          name: attached-mock
          mode: {{env: TR_MODE, default: lab}}
          workdir: traderunner
          operator: {{service: traderunner, command: [traderunner]}}
          runbook: {ROOT / "docs" / "incident-response-runbook.md"}
          links:
            broker: {{from: traderunner, to: broker, port: order}}
            marketdata: {{from: traderunner, to: marketdata, port: http}}
          trading: {trading}
          attach:
            workdir: {run_dir / "workdir"}
            env:
              TR_WORKDIR: {run_dir / "workdir"}
              PATH: "{BIN}:${{PATH}}"
            toxiproxy:
              api: http://127.0.0.1:{ports["toxiproxy.api"]}
              proxies: {{{proxies}}}
            prometheus: http://127.0.0.1:{ports["prometheus.http"]}
            alertmanager: http://localhost:{ports["alertmanager.http"]}
            health_timeout_s: 30
        services:
        """)
    text += service("broker", "broker")
    text += service("marketdata", "market data feed")
    text += service("traderunner", "trading engine", "        log: artifacts/logs/latest.log\n")
    text += service("dashboard", "dashboard")
    path = tmp / "attach.yml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def started_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(run dir, attach stack file) of a stack another drill process started; always brought down."""
    tmp = tmp_path_factory.mktemp("attach")
    run_dir = tmp / "stack"
    up = drill("stack", "up", "--run-dir", str(run_dir), "--stack-file", str(ROOT / "docker-compose.yml"), cwd=tmp)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield run_dir, attach_file(tmp, run_dir)
    finally:
        down = drill("stack", "down", "--run-dir", str(run_dir), cwd=tmp)
        assert down.returncode == 0, down.stdout + down.stderr


def proxies_clean(run_dir: Path) -> list[str]:
    """What is wrong with the stack's proxies (disabled, or a toxic left); [] when all are clean."""
    state = json.loads((run_dir / "stack.json").read_text())
    tox = ToxiproxyAdapter("127.0.0.1", int(state["ports"]["toxiproxy.api"]))
    problems = []
    for link in state["links"].values():
        proxy = tox.proxy(link["proxy"])
        if not proxy.enabled:
            problems.append(f"{proxy.name} is disabled")
        problems += [f"{proxy.name} has toxic {t.name}" for t in proxy.toxics]
    return problems


def runbook(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One of the runbook's operator commands, run as the runbook writes it."""
    return subprocess.run([str(BIN / "traderunner"), *args], env=dict(os.environ, TR_WORKDIR=str(workdir)),
                          capture_output=True, text=True, timeout=60)


def close_the_drill(run_dir: Path) -> None:
    """What the on-call does after a GameDay on a shared stack, before the next drill, following the runbook
    until the engine stays healthy:

    * reset the kill switch (Q1 leaves it tripped by hand), again if the day's loss trips it anew before
      the reset can re-arm it below the loss (Q1's price shock lasts the day on a stack that is not
      restarted);
    * "Data SLA Violation", recovery: re-fetch and re-validate. On a busy machine a drill's link faults
      can hold the feed back long enough to violate the SLA, and the engine stays not ready until the
      data is fetched again (it never heals by itself, by design).
    """
    workdir = run_dir / "workdir"
    port = json.loads((run_dir / "stack.json").read_text())["ports"]["traderunner.http"]
    started = time.monotonic()
    healthy_since: float | None = None
    status, body = 0, None
    while time.monotonic() - started < 300:
        status, body = http_json("GET", f"http://127.0.0.1:{port}/health")
        if status == 200:
            healthy_since = healthy_since or time.monotonic()
            if time.monotonic() - healthy_since >= 3:
                print(f"engine healthy {time.monotonic() - started:.1f}s after the drill ended")
                return
        else:
            healthy_since = None
            checks = (body or {}).get("checks", {}) if isinstance(body, dict) else {}
            if not checks.get("data_sla", {}).get("ok", True):
                for step in (("data", "fetch"), ("data", "validate")):  # exits 1 while still bad: try again
                    runbook(workdir, *step)
            switch = json.loads((workdir / "artifacts" / "state" / "kill_switch.json").read_text())
            if switch.get("active"):
                reset = runbook(workdir, "reset-kill-switch", "--approved-by", "head-of-risk",
                                "--reason", "drill over")
                assert reset.returncode == 0, reset.stdout + reset.stderr
        time.sleep(0.5)
    raise AssertionError(f"the engine did not recover after the drill: {body}")


def scenario_results(report: Path) -> dict[str, str]:
    journal = json.loads((report / "journal.json").read_text())
    results = {}
    for sc in journal["scenarios"]:
        failed = [f"{s['keyword']} {s['text']}: {(s.get('error') or '')[:400]}" for s in sc["steps"]
                  if s["status"] not in ("passed", "skipped")]
        results[sc["scenario"]] = sc["status"] + ("" if not failed else " at " + " | ".join(failed))
    return results


def test_q2_drills_run_against_a_stack_the_harness_did_not_start(started_stack: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    run_quarter(started_stack, "Q2", tmp_path)


def test_service_faults_act_through_the_declared_commands_and_are_reverted(started_stack: tuple[Path, Path],
                                                                            tmp_path: Path) -> None:
    """Kill and pause go through the declared commands; link faults touch only the declared proxies."""
    run_dir, stack_file = started_stack
    backend = AttachBackend(load_stack(stack_file), tmp_path / "run")
    backend.up()
    ctx = FaultContext(run_dir=backend.run_dir)
    before = pids(run_dir)
    with Pause(backend, "dashboard", ctx=ctx):
        assert backend.state("dashboard") is ServiceState.PAUSED
        assert Path(f"/proc/{before['dashboard']}/stat").read_text().split(") ")[1][0] == "T"
    assert backend.state("dashboard") is ServiceState.RUNNING and pids(run_dir) == before
    with Kill(backend, "dashboard", ctx=ctx):
        assert not alive(before["dashboard"])
        assert backend.state("dashboard") is ServiceState.STOPPED
    assert backend.state("dashboard") is ServiceState.RUNNING  # started again by the declared start command
    assert alive(pids(run_dir)["dashboard"])
    with LinkDown(backend, "broker", ctx=ctx), Toxic(backend, "marketdata", "latency", latency=100, ctx=ctx):
        assert proxies_clean(run_dir)
    assert proxies_clean(run_dir) == []
    backend.down()
    assert all(alive(p) for p in pids(run_dir).values())


def test_a_fault_whose_revert_is_not_declared_is_refused_before_anything_happens(
    started_stack: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, stack_file = started_stack
    text = stack_file.read_text()
    lines = [ln for ln in text.splitlines() if not ("resume:" in ln and "broker" in ln)]
    no_resume = tmp_path / "no-resume.yml"
    no_resume.write_text("\n".join(lines) + "\n")
    backend = AttachBackend(load_stack(no_resume), tmp_path / "run")
    backend.up()
    before = pids(run_dir)
    with pytest.raises(FaultInjectionError, match=r"services.broker.x-drill.attach.commands.resume is not declared"):
        Pause(backend, "broker", ctx=FaultContext(run_dir=backend.run_dir)).inject()
    assert pids(run_dir) == before and alive(before["broker"])
    assert backend.state("broker") is ServiceState.RUNNING


def test_drill_cleanup_after_a_crash_reverts_only_what_the_run_did(started_stack: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    """A run killed mid-fault leaves a ledger; `drill cleanup` on its run dir resumes and re-enables just that."""
    run_dir, stack_file = started_stack
    backend = AttachBackend(load_stack(stack_file), tmp_path / "run")
    backend.up()
    ctx = FaultContext(run_dir=backend.run_dir)
    Pause(backend, "marketdata", ctx=ctx).inject()
    LinkDown(backend, "marketdata", ctx=ctx).inject()  # never rolled back here: the "crash"
    assert backend.state("marketdata") is ServiceState.PAUSED
    cli = drill("cleanup", "--run-dir", str(backend.run_dir), cwd=tmp_path, timeout=120)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.count("rolled back:") == 2, cli.stdout
    assert proxies_clean(run_dir) == []
    assert backend.state("marketdata") is ServiceState.RUNNING
    assert all(alive(p) for p in pids(run_dir).values())


def test_an_unreachable_attached_service_is_exit_3_before_any_fault(started_stack: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    run_dir, stack_file = started_stack
    port = json.loads((run_dir / "stack.json").read_text())["ports"]["broker.http"]
    moved = tmp_path / "moved.yml"
    moved.write_text(stack_file.read_text().replace(f"http: 127.0.0.1:{port}", "http: 127.0.0.1:1"))
    report = tmp_path / "report"
    result = drill("run", "--backend", "attach", "--stack-file", str(moved), "--quarter", "Q2",
                   "--report", str(report), cwd=ROOT, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "attached service broker is unreachable: tried 127.0.0.1:1 (port 'http')" in result.stderr
    assert "services.broker.x-drill.attach.addresses.http" in result.stderr and "Traceback" not in result.stderr
    assert not (report / "journal.json").exists()  # refused before pytest started: no drill ran


def run_quarter(started_stack: tuple[Path, Path], quarter: str, tmp_path: Path) -> None:
    run_dir, stack_file = started_stack
    close_the_drill(run_dir)  # the on-call brings the shared stack back to health before a drill (the harness
    # refuses to drill an unhealthy attached stack, exit 3): the tests before may have left the feed stale
    before = pids(run_dir)
    assert all(alive(p) for p in before.values()), before
    report = tmp_path / "report"
    try:
        result = drill("run", "--backend", "attach", "--stack-file", str(stack_file), "--quarter", quarter,
                       "--report", str(report), cwd=ROOT)  # this repository is the drill project
    finally:
        close_the_drill(run_dir)
    results = scenario_results(report) if (report / "journal.json").exists() else {}
    # the stack is as the harness found it, whatever the verdicts
    assert proxies_clean(run_dir) == []
    after = pids(run_dir)
    assert after == before, "the harness restarted or replaced a service it did not start"
    assert all(alive(p) for p in after.values()), {n: alive(p) for n, p in after.items()}
    assert result.returncode == 0, f"{results}\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    assert results and all(v == "passed" for v in results.values()), results


def test_q1_drills_run_against_a_stack_the_harness_did_not_start(started_stack: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    """Last in the module: Q1's price shock leaves the day's loss beyond the limit on this shared stack."""
    run_quarter(started_stack, "Q1", tmp_path)
