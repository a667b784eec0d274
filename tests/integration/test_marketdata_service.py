"""The real marketdata process on a free loopback port, driven over HTTP as traderunner and drills do."""

from __future__ import annotations

import http.client
import math
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.processes import ServiceProcess, free_port, http_json, start_service

pytestmark = pytest.mark.integration

T = TypeVar("T")
INTERVAL_MS = 50
HISTORY = 5
VIEW_KINDS = ("gap", "nan", "negative", "ohlc", "duplicate", "out_of_order")


def start_marketdata(log_dir: Path, *extra: str) -> tuple[ServiceProcess, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = ["python", "-m", "mockstack.marketdata", "--http-port", str(port), "--symbols", "3", *extra]
    proc = start_service(
        "marketdata", argv, log_dir, health_url=f"{base}/health", ports={"http": port}, env={"MOCKSTACK_SEED": "42"}
    )
    return proc, base


def wait_for(probe: Callable[[], T | None], timeout: float = 5.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last observation: {last!r}")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, str]]:
    proc, base = start_marketdata(
        tmp_path_factory.mktemp("marketdata"),
        "--bar-interval-ms",
        str(INTERVAL_MS),
        "--history-bars",
        str(HISTORY),
    )
    try:
        yield proc, base
    finally:
        proc.stop()


@pytest.fixture
def base(service: tuple[ServiceProcess, str]) -> Iterator[str]:
    proc, url = service
    assert proc.alive(), proc.log_text()[-2000:]
    yield url
    http_json("DELETE", f"{url}/admin/faults")


def get(url: str) -> Any:
    status, body = http_json("GET", url)
    assert status == 200, body
    return body


def symbols(base: str) -> list[str]:
    return [s["symbol"] for s in get(f"{base}/api/symbols")]


def problems(bars: list[dict[str, Any]]) -> list[str]:
    """What a data-quality validator would flag (the traderunner's checks)."""
    found = []
    for prev, bar in zip(bars, bars[1:], strict=False):
        step = bar["timestamp"] - prev["timestamp"]
        if step == 0:
            found.append("duplicate")
        elif step < 0:
            found.append("out_of_order")
        elif step > 300:
            found.append("gap")
    for bar in bars:
        prices = [bar[k] for k in ("open", "high", "low", "close")]
        if any(math.isnan(p) for p in prices):
            found.append("nan")
        elif any(p <= 0 for p in prices):
            found.append("negative")
        elif bar["high"] < bar["low"]:
            found.append("ohlc")
    return found


def fault_done(base: str, fault_id: str) -> dict[str, Any] | None:
    faults = {f["id"]: f for f in get(f"{base}/admin/faults")["faults"]}
    return faults[fault_id] if faults[fault_id]["complete"] else None


def test_bars_appear_at_the_configured_cadence(base: str) -> None:
    first = get(f"{base}/api/clock")
    assert first["bar_interval_ms"] == INTERVAL_MS
    t0 = time.monotonic()
    time.sleep(1.0)
    second = get(f"{base}/api/clock")
    elapsed = time.monotonic() - t0
    expected = elapsed * 1000 / INTERVAL_MS
    assert abs((second["bars_published"] - first["bars_published"]) - expected) <= 3
    assert second["last_bar_timestamp"] > first["last_bar_timestamp"]
    sym = symbols(base)[0]
    bars = get(f"{base}/api/intraday/{sym}?interval=5m&from={second['last_bar_timestamp']}")
    assert bars and bars[0]["timestamp"] == second["last_bar_timestamp"]


def test_symbols_and_history_are_seeded(base: str) -> None:
    listed = get(f"{base}/api/symbols")
    assert len(listed) == 3
    sym = listed[0]["symbol"]
    bars = get(f"{base}/api/intraday/{sym}?interval=5m&to=1767624600")
    assert [b["datetime"] for b in bars] == [
        "2026-01-05 14:30:00",
        "2026-01-05 14:35:00",
        "2026-01-05 14:40:00",
        "2026-01-05 14:45:00",
        "2026-01-05 14:50:00",
    ]
    assert bars[0]["open"] == listed[0]["start_price"]


@pytest.mark.parametrize("kind", VIEW_KINDS)
def test_view_fault_shows_up_and_disappears_when_cleared(base: str, kind: str) -> None:
    sym = symbols(base)[1]
    status, fault = http_json("POST", f"{base}/admin/faults", {"kind": kind, "symbol": sym, "bars": 2})
    assert status == 201, fault
    wait_for(lambda: fault_done(base, fault["id"]), what=f"{kind} fault to cover its 2 bars")
    since = fault["first_bar_timestamp"] - 300
    wait_for(
        lambda: len(get(f"{base}/api/intraday/{sym}?interval=5m&from={since}")) >= 5,
        what="the bars after the window",
    )
    corrupted = get(f"{base}/api/intraday/{sym}?interval=5m&from={since}")
    assert kind in problems(corrupted), corrupted
    other = get(f"{base}/api/intraday/{symbols(base)[0]}?interval=5m&from={since}")
    assert problems(other) == []
    status, cleared = http_json("DELETE", f"{base}/admin/faults/{fault['id']}")
    assert status == 200 and cleared["cleared"][0]["id"] == fault["id"]
    clean = get(f"{base}/api/intraday/{sym}?interval=5m&from={since}")
    assert problems(clean) == []
    assert clean[1]["timestamp"] == fault["first_bar_timestamp"]


def test_stale_stops_the_feed_and_resumes_at_the_current_time(base: str) -> None:
    sym = symbols(base)[2]
    status, fault = http_json("POST", f"{base}/admin/faults", {"kind": "stale"})
    assert status == 201
    frozen = get(f"{base}/api/clock")
    assert frozen["stale"] is True
    time.sleep(10 * INTERVAL_MS / 1000)
    still = get(f"{base}/api/clock")
    assert still["bars_published"] == frozen["bars_published"]
    assert still["simulated_timestamp"] > frozen["simulated_timestamp"]
    last_before = get(f"{base}/api/intraday/{sym}")[-1]["timestamp"]
    http_json("DELETE", f"{base}/admin/faults/{fault['id']}")
    resumed = wait_for(
        lambda: get(f"{base}/api/intraday/{sym}?from={last_before + 1}"), what="the first bar after the stale feed"
    )
    assert resumed[0]["timestamp"] - last_before >= 10 * 300  # a gap: never backfilled
    assert get(f"{base}/api/clock")["stale"] is False


def test_shock_is_a_real_move_that_stays(base: str) -> None:
    sym = symbols(base)[0]
    status, fault = http_json("POST", f"{base}/admin/faults", {"kind": "shock", "pct": -8, "bars": 3})
    assert status == 201 and fault["pct"] == -8.0
    wait_for(lambda: fault_done(base, fault["id"]), what="the shock to finish")
    since = fault["first_bar_timestamp"] - 300
    bars = get(f"{base}/api/intraday/{sym}?from={since}&to={since + 900}")
    assert bars[3]["close"] / bars[0]["close"] == pytest.approx(0.92, abs=1e-4)
    http_json("DELETE", f"{base}/admin/faults/{fault['id']}")
    assert get(f"{base}/api/intraday/{sym}?from={since}&to={since + 900}") == bars


def test_errors_name_the_field_and_accepted_values(base: str) -> None:
    status, body = http_json("GET", f"{base}/api/intraday/NOPE?interval=5m")
    assert status == 404 and body["field"] == "symbol" and "NOPE" in body["error"]
    status, body = http_json("GET", f"{base}/api/intraday/{symbols(base)[0]}?interval=1d")
    assert status == 400 and body["field"] == "interval" and "5m" in body["error"]
    status, body = http_json("POST", f"{base}/admin/faults", {"kind": "earthquake"})
    assert status == 400 and body["field"] == "kind" and "out_of_order" in body["error"]
    status, body = http_json("POST", f"{base}/admin/faults", {"kind": "gap", "bars": -1})
    assert status == 400 and body["field"] == "bars"
    status, body = http_json("DELETE", f"{base}/admin/faults/f999")
    assert status == 404 and body["field"] == "id"


def test_metrics_and_health_are_exposed(base: str) -> None:
    http_json("POST", f"{base}/admin/faults", {"kind": "nan"})
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for name in (
        "marketdata_bars_published_total",
        "marketdata_last_bar_timestamp_seconds",
        'marketdata_active_faults{kind="nan"} 1.0',
        'marketdata_requests_total{endpoint="/admin/faults",status="201"}',
    ):
        assert name in text
    status, health = http_json("GET", f"{base}/health")
    assert status == 200 and health["service"] == "marketdata" and health["checks"]["clock"]["ok"] is True


def test_sigterm_exits_cleanly_and_faults_are_logged(tmp_path: Path) -> None:
    proc, base = start_marketdata(tmp_path, "--bar-interval-ms", "100")
    try:
        status, fault = http_json("POST", f"{base}/admin/faults", {"kind": "gap"})
        assert status == 201
        http_json("DELETE", f"{base}/admin/faults/{fault['id']}")
        t0 = time.monotonic()
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(5) == 0
        assert time.monotonic() - t0 < 2.0
    finally:
        proc.stop()
    log = proc.log_text()
    for event in ('"event": "fault_added"', '"event": "fault_cleared"', '"event": "service_stopped"'):
        assert event in log


def test_bad_environment_value_exits_2_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mockstack.marketdata"],
        env={"MARKETDATA_BAR_INTERVAL_MS": "fast", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=20,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "MARKETDATA_BAR_INTERVAL_MS='fast'" in result.stderr and "milliseconds" in result.stderr


def test_keep_alive_polls_do_not_stall(base: str) -> None:
    """traderunner polls through a keep-alive session: no 40 ms Nagle/delayed-ACK stall per request.

    Such a stall delays *every* request on the connection by ~40 ms, so the fastest of 20 requests
    shows it; a busy machine only slows some of them (the total time used to be asserted, and
    failed under load without any stall).
    """
    port = int(base.rsplit(":", 1)[1])
    sym = symbols(base)[0]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    took = []
    try:
        for _ in range(20):
            t0 = time.monotonic()
            conn.request("GET", f"/api/intraday/{sym}?interval=5m&from=1767623400&to=1767624000")
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
            took.append(time.monotonic() - t0)
    finally:
        conn.close()
    assert min(took) < 0.035, f"every keep-alive request took >= 35 ms (a per-request stall): {took}"
