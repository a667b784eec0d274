"""examples/freqtrade as a drill project: its drill.toml, its stack file's trading adapter, its steps."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.adapter import FileSource, HttpSource
from harness.project import load_project
from harness.stack import load_stack

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "freqtrade"
DRILL = Path(sys.executable).parent / "drill"
FEATURES = ("venue_down", "venue_hangs", "lost_order_ack", "rate_limit_ban", "bot_killed", "stopentry_kill_switch")


def test_the_project_names_its_stack_steps_faults_and_every_feature() -> None:
    project = load_project(EXAMPLE / "drill.toml")
    assert project.backend == "process"
    assert list(project.steps) == ["drill_steps.steps"] and list(project.faults) == ["drill_steps.faults"]
    assert {p.stem for p in (EXAMPLE / "features").glob("*.feature")} == set(FEATURES)


def test_drill_lint_finds_every_step_once_and_every_tag_known() -> None:
    result = subprocess.run([str(DRILL), "lint"], cwd=EXAMPLE, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every step defined once" in result.stdout


def test_the_runbook_passes_drill_lint() -> None:
    result = subprocess.run([str(DRILL), "lint", "--runbook", "RUNBOOK.md"], cwd=EXAMPLE, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_trading_adapter_reads_the_bot_logged_in_and_its_orders_from_open_and_closed_trades() -> None:
    spec = load_stack(EXAMPLE / "docker-compose.yml").trading
    assert spec.engine == "freqtrade"
    assert spec.orders is not None and [p.pointer for p in spec.orders.parts] == ["/*/orders/*",
                                                                                  "/trades/*/orders/*"]
    for reading in (spec.positions, spec.kill_switch, spec.orders):
        assert reading is not None
        for part in reading.parts:
            assert isinstance(part.source, HttpSource) and part.source.auth is not None
            assert part.source.service == "freqtrade"
    assert spec.venue_orders is not None and spec.venue_orders.fields["key"] == "orderId"
    reload = spec.http_command("reload_trade")
    assert reload.method == "POST" and reload.target.auth is not None
    assert reload.filled(id="12")[0].path == "/api/v1/trades/12/reload"
    assert spec.command_line("trip_kill_switch", reason="x").endswith("stopbuy")


def test_the_stack_file_names_no_host_but_loopback() -> None:
    """Every address in the example's stack file is 127.0.0.1/localhost (or a placeholder filled with it)."""
    text = (EXAMPLE / "docker-compose.yml").read_text(encoding="utf-8")
    hosts = set(re.findall(r"https?://([^/:\"'\s}{]+)", text))
    assert hosts <= {"127.0.0.1", "localhost"}, hosts
    spec = load_stack(EXAMPLE / "docker-compose.yml").trading
    readings = [spec.positions, spec.kill_switch, spec.orders, spec.venue_orders]
    for reading in readings:
        assert reading is not None
        for part in reading.parts:
            assert not isinstance(part.source, FileSource)
            assert isinstance(part.source, HttpSource) and part.source.url is None  # a stack service: loopback


def test_the_venue_fault_round_trips_through_the_ledger_and_refuses_unknown_kinds(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from drill_steps.faults import VenueFault
    finally:
        sys.path.remove(str(EXAMPLE))
    from harness.errors import DrillError
    from harness.faults.base import Params
    from tests.unit.fake_backend import FakeBackend

    backend = FakeBackend(tmp_path)
    fault = VenueFault(backend, "ban", status=418, seconds=30)  # type: ignore[arg-type]
    again = VenueFault.from_params(backend, Params(fault.params(), "test"), ctx=fault.ctx,  # type: ignore[arg-type]
                                   fault_id="x")
    assert again.params() == fault.params() and "ban" in again.describe()
    with pytest.raises(DrillError, match="fault"):
        VenueFault(backend, "explode")  # type: ignore[arg-type]
