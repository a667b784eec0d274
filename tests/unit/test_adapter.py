"""The trading adapter (x-drill.trading): parsed once with file:line errors, read loudly, never silently empty."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness.backends.base import CommandResult
from harness.errors import InputError, StackFileError
from harness.stack import load_stack
from harness.trading import ReadingUnavailable, TradingTruth, resolve_pointer
from tests.unit.fake_backend import FakeBackend

STACK = """\
x-drill:
  name: team
  workdir: engine
  operator: {service: engine, command: [engine-ctl]}
  trading:
%s
services:
  engine:
    x-drill:
      ports: {http: 8080}
      health: {port: http, path: /health}
  gateway:
    x-drill:
      ports: {admin: 9101}
"""


def stack_with(tmp_path: Path, trading: str) -> Path:
    path = tmp_path / "stack.yml"
    path.write_text(STACK % textwrap.indent(textwrap.dedent(trading).strip("\n"), "    "), encoding="utf-8")
    return path


def truth_for(tmp_path: Path, trading: str) -> TradingTruth:
    backend = FakeBackend(tmp_path)
    backend.stack = load_stack(stack_with(tmp_path, trading))  # type: ignore[misc]
    return TradingTruth(backend)  # type: ignore[arg-type]


def test_the_mock_stack_declares_every_reading_the_shared_steps_use() -> None:
    spec = load_stack(Path(__file__).resolve().parents[2] / "docker-compose.yml").trading
    assert spec.engine == "traderunner"
    for reading in (spec.positions, spec.kill_switch, spec.sla, spec.orders, spec.venue_orders, spec.connected):
        assert reading is not None
    assert {"reconcile", "reset_kill_switch", "reconnect", "promote"} <= set(spec.commands)
    assert {"feed", "position", "reject_rate", "fill_latency"} <= set(spec.faults)
    assert spec.command_line("reset_kill_switch", approver="risk desk", reason="x; rm -rf /") == (
        "traderunner reset-kill-switch --approved-by 'risk desk' --reason 'x; rm -rf /'"
    )


def test_an_unknown_field_names_the_line_and_the_allowed_fields(tmp_path: Path) -> None:
    with pytest.raises(StackFileError) as err:
        load_stack(stack_with(tmp_path, "positons: {file: p.json}"))
    assert "stack.yml:6" in str(err.value) and "x-drill.trading.positons: unknown field" in str(err.value)
    assert "positions" in str(err.value.hint)


def test_a_reading_needs_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match=r"x-drill.trading.sla: needs exactly one source"):
        load_stack(stack_with(tmp_path, "sla: {file: a.json, url: 'http://127.0.0.1:1/x'}"))


def test_a_pointer_must_be_rfc6901_and_services_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match="a JSON pointer starts with '/'"):
        load_stack(stack_with(tmp_path, "sla: {file: a.json, pointer: status}"))
    with pytest.raises(StackFileError, match="unknown service 'broker'"):
        load_stack(stack_with(tmp_path, "sla: {http: {service: broker, port: http, path: /sla}}"))
    with pytest.raises(StackFileError, match="service 'gateway' has no port named 'http'"):
        load_stack(stack_with(tmp_path, "sla: {http: {service: gateway, port: http, path: /sla}}"))


def test_unknown_command_marker_and_fault_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match=r"commands.rebooot: unknown name"):
        load_stack(stack_with(tmp_path, "commands: {rebooot: engine-ctl reboot}"))
    with pytest.raises(StackFileError, match=r"markers.kill: unknown name"):
        load_stack(stack_with(tmp_path, "markers: {kill: boom}"))
    with pytest.raises(StackFileError, match=r"faults.feeed: unknown fault endpoint"):
        load_stack(stack_with(tmp_path, "faults: {feeed: {service: gateway, port: admin, path: /f}}"))


def test_an_order_journal_must_name_its_key_symbol_and_qty_columns(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match=r"orders.fields: missing qty, symbol"):
        load_stack(stack_with(tmp_path, "orders: {csv: 'orders/*.csv', fields: {key: id}}"))


def test_a_pointer_that_does_not_resolve_says_what_the_document_is(tmp_path: Path) -> None:
    truth = truth_for(tmp_path, "positions: {file: state.json, pointer: /positions}")
    (truth.backend.workdir / "state.json").write_text(json.dumps({"holdings": {"AAA": 3}}))
    with pytest.raises(ReadingUnavailable) as err:
        truth.positions()
    assert "JSON pointer '/positions' does not resolve" in err.value.message
    assert "keys holdings" in err.value.message and "stack.yml" in str(err.value.hint)


def test_a_missing_file_is_unavailable_never_empty(tmp_path: Path) -> None:
    truth = truth_for(tmp_path, "positions: {file: state.json, pointer: /positions}")
    with pytest.raises(ReadingUnavailable, match="state.json does not exist"):
        truth.positions()


def test_an_undeclared_reading_fails_naming_the_field_to_add(tmp_path: Path) -> None:
    truth = truth_for(tmp_path, "sla: {file: sla.json, pointer: /status}")
    with pytest.raises(ReadingUnavailable) as err:
        truth.venue_orders()
    assert "declares no x-drill.trading.venue.orders" in err.value.message


def test_a_command_that_prints_non_json_names_the_command(tmp_path: Path) -> None:
    truth = truth_for(tmp_path, "kill_switch: {command: engine-ctl kill-switch --json, pointer: /active}")
    truth.backend.operator_results.append(  # type: ignore[attr-defined]
        CommandResult(("engine-ctl",), 0, "kill switch: on\n", "", 0.1))
    with pytest.raises(ReadingUnavailable) as err:
        truth.kill_switch()
    assert "`engine-ctl kill-switch --json`" in err.value.message and "expected JSON" in err.value.message


def test_a_command_outside_the_operator_cli_is_input_error(tmp_path: Path) -> None:
    truth = truth_for(tmp_path, "kill_switch: {command: rm -rf /, pointer: /active}")
    with pytest.raises(InputError, match="not an operator command"):
        truth.kill_switch()


def test_readings_from_files_and_csv_journals(tmp_path: Path) -> None:
    truth = truth_for(tmp_path, """
        positions: {file: s/pos.json, pointer: /open, fields: {symbol: pair, qty: amount}}
        kill_switch: {file: s/ks.json, pointer: /state, equals: stopped, reason: /why}
        sla: {file: s/sla.json, pointer: /report/status}
        orders: {csv: 'o/*.csv', fields: {key: cid, symbol: sym, qty: q, side: side, time: ts}}
    """)
    wd = truth.backend.workdir
    (wd / "s").mkdir(parents=True)
    (wd / "o").mkdir()
    (wd / "s/pos.json").write_text(json.dumps({"open": [{"pair": "A/B", "amount": 2}, {"pair": "A/B", "amount": 1}]}))
    (wd / "s/ks.json").write_text(json.dumps({"state": "stopped", "why": "loss"}))
    (wd / "s/sla.json").write_text(json.dumps({"report": {"status": "ok"}}))
    (wd / "o/1.csv").write_text("cid,sym,q,side,ts\nk1,A/B,2,buy,t1\nk2,A/B,1,sell,t2\n")
    assert truth.positions() == {"A/B": 3.0}
    ks = truth.kill_switch()
    assert ks.active and ks.reason == "loss"
    assert truth.sla_status() == "ok"
    assert [(r.key, r.qty) for r in truth.orders()] == [("k1", "2"), ("k2", "1")]


def test_a_custom_adapter_class_answers_undeclared_readings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "teamtruth.py"
    pkg.write_text(
        "class Truth:\n"
        "    def __init__(self, backend):\n        self.backend = backend\n"
        "    def venue_orders(self):\n"
        "        return [{'key': 'k1', 'id': '7', 'symbol': 'A', 'qty': 2, 'filled': 2, 'status': 'filled'}]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    truth = truth_for(tmp_path, "adapter: teamtruth:Truth")
    assert [(o.key, o.filled_qty) for o in truth.venue_orders()] == [("k1", 2.0)]
    with pytest.raises(ReadingUnavailable, match="declares no x-drill.trading.sla"):
        truth.sla_status()


def test_an_adapter_class_that_cannot_be_imported_is_named(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match="cannot import module 'no_such_team_module'"):
        truth_for(tmp_path, "adapter: no_such_team_module:Truth")


@pytest.mark.parametrize(("pointer", "found", "value"), [
    ("", True, {"a/b": [1, {"~x": 2}]}), ("/a~1b/1/~0x", True, 2), ("/a~1b/2", False, None), ("/nope", False, None),
])
def test_json_pointer(pointer: str, found: bool, value: object) -> None:
    assert resolve_pointer({"a/b": [1, {"~x": 2}]}, pointer) == (found, value)
