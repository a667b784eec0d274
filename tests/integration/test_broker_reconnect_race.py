"""`traderunner broker reconnect` while the engine is already (re)connected must leave it connected and trading.

Regression: the control API wrote the connector's state after waking the connector thread; when the
thread reconnected first, "connected" was overwritten and orders stayed blocked for good.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.backends.process import ProcessBackend
from harness.probes.http import HttpHealth
from harness.stack import load_stack
from harness.trading import TradingTruth
from harness.waiting import wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_repeated_reconnects_while_connected_keep_the_engine_trading(tmp_path: Path) -> None:
    backend = ProcessBackend(load_stack(ROOT / "docker-compose.yml"), tmp_path / "run")
    backend.up()
    try:
        connected = HttpHealth.for_service(backend, "traderunner", field="checks.broker.ok", equals=True)
        for i in range(8):
            result = backend.operator(["broker", "reconnect"], timeout=30)
            assert result.exit_code == 0, f"reconnect {i + 1}: {result.output}"
            wait_until(connected, deadline_s=5, what=f"broker connected after reconnect {i + 1}")
        before = len(TradingTruth(backend).orders())
        deadline = time.monotonic() + 20
        while len(TradingTruth(backend).orders()) == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(TradingTruth(backend).orders()) > before, "no order sent after the reconnects: engine blocked"
        status = backend.operator(["status"], timeout=30)
        assert "connected" in status.output and "reconnecting" not in status.output, status.output
    finally:
        backend.down()
