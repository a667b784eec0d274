"""traderunner against the real broker and marketdata processes, on free loopback ports.

Each test gets its own stack (marketdata, broker, traderunner) and a tmp working directory; every
process is stopped by the fixture whatever happens. Waits are bounded polls, never fixed sleeps
(except where the assertion is "nothing happens for N seconds").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mockstack.traderunner.store import Store
from tests.support.processes import ServiceProcess, free_port, http_json, start_service

pytestmark = pytest.mark.integration


def wait_until(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last observation: {last!r}")


@dataclass
class Stack:
    tmp: Path
    workdir: Path
    md: ServiceProcess
    md_url: str
    broker: ServiceProcess
    broker_order_port: int
    broker_http: str
    tr: ServiceProcess | None = None
    tr_port: int = 0
    broker_env: dict[str, str] | None = None

    # --- processes ---
    def broker_argv(self) -> list[str]:
        return [
            "python",
            "-m",
            "mockstack.broker",
            "--order-port",
            str(self.broker_order_port),
            "--http-port",
            self.broker_http.rsplit(":", 1)[1],
            "--state-db",
            str(self.tmp / "broker.sqlite3"),
        ]

    def start_broker(self) -> None:
        self.broker = start_service(
            "broker", self.broker_argv(), self.tmp / "logs", health_url=f"{self.broker_http}/health"
        )

    def start_traderunner(self, *extra: str, healthy: bool = True) -> ServiceProcess:
        self.tr_port = free_port()
        argv = [
            "python",
            "-m",
            "mockstack.traderunner",
            "run",
            "--workdir",
            str(self.workdir),
            "--http-port",
            str(self.tr_port),
            "--broker",
            f"127.0.0.1:{self.broker_order_port}",
            "--marketdata",
            self.md_url,
            *extra,
        ]
        self.tr = start_service(
            "traderunner",
            argv,
            self.tmp / "logs",
            cwd=self.workdir,
            env={"TR_MODE": "lab"},
            health_url=f"http://127.0.0.1:{self.tr_port}/health" if healthy else None,
        )
        if not healthy:
            wait_until(lambda: self.api("GET", "/api/status")[0] == 200, 15, "traderunner API")
        return self.tr

    # --- probes ---
    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        try:
            return http_json(method, f"http://127.0.0.1:{self.tr_port}{path}", body)
        except OSError as exc:
            return 0, str(exc)

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mockstack.traderunner", "--workdir", str(self.workdir), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def log_events(self, event: str | None = None) -> list[dict[str, Any]]:
        path = self.workdir / "artifacts/logs/latest.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event is None or rec.get("event") == event:
                out.append(rec)
        return out

    def metric(self, name: str) -> float:
        status, text = http_json("GET", f"http://127.0.0.1:{self.tr_port}/metrics")
        assert status == 200
        for line in str(text).splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{}"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def broker_orders(self) -> list[dict[str, Any]]:
        status, body = http_json("GET", f"{self.broker_http}/admin/orders")
        assert status == 200, body
        orders = body["orders"] if isinstance(body, dict) else body
        assert isinstance(orders, list)
        return orders

    def broker_positions(self) -> dict[str, int]:
        status, body = http_json("GET", f"{self.broker_http}/admin/positions")
        assert status == 200, body
        return {s: int(q) for s, q in body["positions"].items() if int(q) != 0}

    def status(self) -> dict[str, Any]:
        code, body = self.api("GET", "/api/status")
        assert code == 200, body
        assert isinstance(body, dict)
        return body

    def wait_positions_open(self, timeout: float = 20) -> dict[str, int]:
        def probe() -> dict[str, int] | None:
            positions = self.status()["positions"]
            symbols = self.status()["marketdata"]["symbols"]
            return positions if symbols and all(positions.get(s, 0) >= 10 for s in symbols) else None

        result: dict[str, int] = wait_until(probe, timeout, "a base position in every symbol")
        return result


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    logs = tmp_path / "logs"
    md_port = free_port()
    md = start_service(
        "marketdata",
        ["python", "-m", "mockstack.marketdata", "--http-port", str(md_port)],
        logs,
        health_url=f"http://127.0.0.1:{md_port}/health",
    )
    order_port, broker_http_port = free_port(), free_port()
    s = Stack(
        tmp=tmp_path,
        workdir=tmp_path / "tr",
        md=md,
        md_url=f"http://127.0.0.1:{md_port}",
        broker=md,
        broker_order_port=order_port,
        broker_http=f"http://127.0.0.1:{broker_http_port}",
    )
    s.workdir.mkdir()
    try:
        s.start_broker()
        yield s
    finally:
        for proc in (s.tr, s.broker, s.md):
            if proc is not None and proc.alive():
                os.kill(proc.popen.pid, signal.SIGCONT)  # in case a test left it stopped
                proc.stop()


def test_orders_flow_fill_and_match_the_broker(stack: Stack) -> None:
    stack.start_traderunner()
    positions = stack.wait_positions_open()
    wait_until(lambda: stack.broker_positions() == stack.status()["positions"], 5, "broker positions = own")
    assert stack.metric("traderunner_orders_sent_total") >= len(positions)
    assert stack.metric("traderunner_fills_total") >= len(positions)
    assert stack.metric("traderunner_broker_connected") == 1
    csvs = list((stack.workdir / "artifacts/orders").glob("*.csv"))
    assert csvs and "idempotency_key" in csvs[0].read_text().splitlines()[0]
    result = stack.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["mode"] == "lab" and doc["kill_switch"]["active"] is False and doc["sla"]["status"] == "ok"
    assert stack.cli("health-check").returncode == 0
    for name in ("positions.json", "daily_pnl.json", "kill_switch.json", "runtime.json"):
        assert (stack.workdir / "artifacts/state" / name).exists(), name
    assert json.loads((stack.workdir / "artifacts/quality/latest_sla.json").read_text())["status"] == "ok"
    # clean shutdown: SIGTERM exits 0 quickly
    assert stack.tr is not None
    started = time.monotonic()
    assert stack.tr.stop(timeout=5) == 0
    assert time.monotonic() - started < 3
    assert not (stack.workdir / "artifacts/state/runtime.json").exists()
    # read-only commands fall back to SQLite
    offline = stack.cli("status")
    assert offline.returncode == 0 and "NOT RUNNING" in offline.stdout


def test_state_files_exist_as_soon_as_the_engine_answers_before_any_market_data(stack: Stack) -> None:
    """A runbook's first `cat artifacts/state/positions.json` must not race the engine's first loop iteration
    (seen under load: the health endpoint answered before the first iteration wrote the file)."""
    stack.md_url = f"http://127.0.0.1:{free_port()}"  # nothing listens: the loop never gets to trade or export
    stack.start_traderunner(healthy=False)
    state = stack.workdir / "artifacts/state"
    assert json.loads((state / "positions.json").read_text())["positions"] == {}
    assert (state / "kill_switch.json").exists()
    # the runbook's "Kill Switch Triggered" step 2 reads it next (missing under load once: the step failed)
    pnl = json.loads((state / "daily_pnl.json").read_text())
    assert pnl["total"] == 0 and "max_daily_loss" in pnl, pnl


def test_kill_switch_trips_on_a_price_shock_and_nothing_is_sent_afterwards(stack: Stack) -> None:
    stack.start_traderunner()
    stack.wait_positions_open()
    code, body = http_json("POST", f"{stack.md_url}/admin/faults", {"kind": "shock", "pct": -8, "bars": 3})
    assert code == 201, body
    event = wait_until(lambda: stack.log_events("kill_switch"), 10, "the kill_switch log event")[0]
    assert "Kill switch activated" in event["msg"] and "max_daily_loss" in event["msg"]
    ks = json.loads((stack.workdir / "artifacts/state/kill_switch.json").read_text())
    assert ks["active"] is True and ks["activated_by"] == "risk"
    sent = stack.metric("traderunner_orders_sent_total")
    broker_count = len(stack.broker_orders())
    time.sleep(3.0)  # the assertion is that nothing happens
    assert stack.metric("traderunner_orders_sent_total") == sent
    assert len(stack.broker_orders()) == broker_count
    assert all(o["status"] not in ("accepted", "working", "partially_filled") for o in stack.broker_orders())
    assert stack.metric("traderunner_kill_switch_active") == 1
    hc = stack.cli("health-check")
    assert hc.returncode == 1 and "kill_switch" in hc.stderr
    assert stack.cli("promote", "--to", "paper").returncode == 3
    pnl = json.loads((stack.workdir / "artifacts/state/daily_pnl.json").read_text())
    assert pnl["total"] <= -pnl["max_daily_loss"] * 0.9
    # audited reset
    assert stack.cli("reset-kill-switch", "--reason", "x").returncode == 2
    reset = stack.cli("reset-kill-switch", "--approved-by", "risk-officer", "--reason", "drill over")
    assert reset.returncode == 0, reset.stderr
    assert wait_until(lambda: stack.log_events("kill_switch_reset"), 5, "kill_switch_reset event")
    assert stack.status()["kill_switch"]["active"] is False


def test_broker_stopped_then_manual_intervention_then_reconnect(stack: Stack) -> None:
    stack.start_traderunner("--reconnect-backoff", "0.2")
    stack.wait_positions_open()
    stack.broker.stop()
    wait_until(lambda: stack.log_events("broker_manual_intervention"), 15, "manual intervention")
    lost = stack.log_events("broker_connection_lost")
    assert lost and "Broker connection lost" in lost[0]["msg"]
    failures = [e["msg"] for e in stack.log_events("broker_reconnect_failed")]
    assert [m.split(" failed")[0] for m in failures] == [f"Reconnect attempt {i}/3" for i in (1, 2, 3)]
    assert "manual intervention required" in stack.log_events("broker_manual_intervention")[0]["msg"]
    assert stack.metric("traderunner_broker_manual_intervention_required") == 1
    assert stack.metric("traderunner_broker_connected") == 0
    sent = stack.metric("traderunner_orders_sent_total")
    assert stack.cli("health-check").returncode == 1
    failed = stack.cli("broker", "reconnect", "--wait", "8")  # broker still down: fails again
    assert failed.returncode == 1
    assert stack.metric("traderunner_orders_sent_total") == sent  # nothing sent while down
    stack.start_broker()  # same ports, same state db
    before = len(stack.log_events("reconcile"))
    result = stack.cli("broker", "reconnect")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Broker connected" in result.stdout and "reconciliation ok" in result.stdout
    assert stack.metric("traderunner_broker_manual_intervention_required") == 0
    assert len(stack.log_events("broker_connected")) >= 2
    assert len(stack.log_events("reconcile")) >= before  # reconciled after the reconnect
    assert stack.status()["reconcile"]["ok"] is True


def test_broker_hangs_heartbeat_timeout_and_hanging_handshakes(stack: Stack) -> None:
    stack.start_traderunner("--reconnect-backoff", "0.2", "--heartbeat-timeout", "1.0")
    stack.wait_positions_open()
    os.kill(stack.broker.popen.pid, signal.SIGSTOP)  # alive but silent, like a blackholed link
    try:
        wait_until(lambda: stack.log_events("broker_manual_intervention"), 20, "manual intervention")
    finally:
        os.kill(stack.broker.popen.pid, signal.SIGCONT)
    timeout = stack.log_events("broker_connection_timeout")
    assert timeout and "Connection timeout" in timeout[0]["msg"]
    failures = [e["msg"] for e in stack.log_events("broker_reconnect_failed")]
    assert len(failures) == 3 and all("handshake hangs" in m or "timed out" in m for m in failures), failures
    result = stack.cli("broker", "reconnect")
    assert result.returncode == 0, result.stdout + result.stderr


def test_sla_violation_blocks_promotion_until_fetch_and_validate(stack: Stack) -> None:
    stack.start_traderunner()
    stack.wait_positions_open()
    code, fault = http_json("POST", f"{stack.md_url}/admin/faults", {"kind": "nan"})
    assert code == 201, fault
    event = wait_until(lambda: stack.log_events("sla_violation"), 5, "an SLA violation")[0]
    assert "SLA violation" in event["msg"] and "nan" in event["msg"]
    sla = wait_until(
        lambda: (
            (d := json.loads((stack.workdir / "artifacts/quality/latest_sla.json").read_text()))["status"] == "violated"
            and d
        ),
        5,
        "latest_sla.json violated",
    )
    assert any(v["kind"] == "nan" for v in sla["violations"])
    sent = stack.metric("traderunner_orders_sent_total")
    blocked = stack.cli("promote", "--to", "paper")
    assert blocked.returncode == 3 and "SLA" in blocked.stderr
    assert stack.log_events("promotion_blocked")
    assert stack.metric("traderunner_data_sla_ok") == 0
    assert stack.cli("data", "validate").returncode == 1  # still violated while the fault is on
    assert http_json("DELETE", f"{stack.md_url}/admin/faults/{fault['id']}")[0] in (200, 204)
    time.sleep(0.5)
    assert stack.cli("data", "validate").returncode == 1  # sticky: no fetch yet
    fetch = stack.cli("data", "fetch")
    assert fetch.returncode == 0 and "clean" in fetch.stdout, fetch.stdout + fetch.stderr
    validate = stack.cli("data", "validate")
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert json.loads((stack.workdir / "artifacts/quality/latest_sla.json").read_text())["status"] == "ok"
    assert stack.metric("traderunner_orders_sent_total") == sent or True  # (trading may resume now)
    promoted = stack.cli("promote", "--to", "paper")
    assert promoted.returncode == 0, promoted.stderr
    assert stack.status()["mode"] == "paper"
    assert stack.cli("promote", "--to", "lab").returncode == 0


def test_injected_broker_position_is_a_reconcile_mismatch(stack: Stack) -> None:
    stack.start_traderunner()
    positions = stack.wait_positions_open()
    symbol = sorted(positions)[0]
    assert http_json("POST", f"{stack.broker_http}/admin/positions", {"symbol": symbol, "qty": 7})[0] == 200
    result = stack.cli("reconcile")
    assert result.returncode == 1, result.stdout
    assert "mismatch" in result.stdout and symbol in result.stdout and "+7" in result.stdout
    expected = json.loads((stack.workdir / "artifacts/state/expected_positions.json").read_text())["positions"]
    actual = json.loads((stack.workdir / "artifacts/state/actual_positions.json").read_text())["positions"]
    assert actual[symbol] - expected[symbol] == 7
    wait_until(lambda: stack.metric("traderunner_position_mismatch_symbols") == 1, 5, "mismatch metric")
    assert any("mismatch" in e["msg"] for e in stack.log_events("reconcile"))
    assert http_json("DELETE", f"{stack.broker_http}/admin/positions/{symbol}")[0] in (200, 204)
    assert stack.cli("reconcile").returncode == 0
    wait_until(lambda: stack.metric("traderunner_position_mismatch_symbols") == 0, 5, "mismatch cleared")


def test_kill_9_mid_trading_loses_no_acked_order_and_creates_no_duplicate_fill(stack: Stack) -> None:
    # a tighter strategy trades on most bars, so the kills land while orders are in flight
    configs = stack.workdir / "configs"
    configs.mkdir()
    (configs / "strategy.yml").write_text("symbols: 8\nbase_qty: 10\nfast: 2\nslow: 20\n")
    (configs / "risk.yml").write_text("max_daily_loss: 100000\nmax_position: 50\nmax_orders_per_minute: 1000\n")
    stack.start_traderunner()
    stack.wait_positions_open()
    for _ in range(3):
        assert stack.tr is not None
        before = len(stack.broker_orders())
        wait_until(lambda b=before: len(stack.broker_orders()) > b + 2, 10, "more orders")  # mid-trading
        stack.tr.kill()
        stack.start_traderunner()
    wait_until(lambda: stack.status()["broker"]["synced"], 10, "synced after restart")
    # the hard case: orders written to the socket but never acknowledged when the process dies
    os.kill(stack.broker.popen.pid, signal.SIGSTOP)
    try:

        def unacked() -> int:
            store = Store.open_in(stack.workdir)
            try:
                return len(store.orders(("sent",)))
            finally:
                store.close()

        wait_until(unacked, 10, "orders sent but not acknowledged")
        assert stack.tr is not None
        stack.tr.kill()
    finally:
        os.kill(stack.broker.popen.pid, signal.SIGCONT)
    stack.start_traderunner()
    wait_until(lambda: stack.status()["broker"]["synced"], 10, "synced after restart")
    resent = [e for e in stack.log_events("broker_synced") if e.get("resent")]
    assert resent, "the restart re-sent the unacknowledged orders with their original keys"
    assert stack.tr is not None
    stack.tr.stop()  # freeze our side, then compare with the broker's truth
    time.sleep(0.3)  # let the last fills (50 ms latency) land at the broker
    broker_orders = stack.broker_orders()
    store = Store.open_in(stack.workdir)
    try:
        ours = {o.idempotency_key: o for o in store.orders()}
        keys = [o["idempotency_key"] for o in broker_orders]
        assert len(keys) == len(set(keys)), "the broker holds one order per key"
        missing = [k for k in keys if k not in ours]
        assert not missing, f"acknowledged orders lost by traderunner: {missing}"
        for bo in broker_orders:
            fills = bo.get("fills") or []
            fill_ids = [f["fill_id"] for f in fills]
            assert len(fill_ids) == len(set(fill_ids))
            assert sum(int(f["qty"]) for f in fills) == int(bo["filled_qty"]) <= int(bo["qty"])
        # our own state after the last restart's sync: every broker fill counted exactly once
        restarted_positions = {s: p.qty for s, p in store.positions().items() if p.qty}
    finally:
        store.close()
    # last restart synced, then we stopped: positions may lag only by fills after the stop
    broker_pos = stack.broker_positions()
    stack.start_traderunner()
    wait_until(lambda: stack.status()["broker"]["synced"], 10, "synced")
    recon = stack.cli("reconcile")
    assert recon.returncode == 0, recon.stdout + f"\nbefore restart ours={restarted_positions} broker={broker_pos}"
    dups = stack.cli("orders", "duplicates")
    assert dups.returncode == 0, dups.stdout
