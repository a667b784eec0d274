"""The trading adapter (x-drill.trading): parsed once with file:line errors, read loudly, never silently empty."""

from __future__ import annotations

import base64
import http.server
import json
import re
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.backends.base import CommandResult
from harness.clock import EventKind, Timeline
from harness.errors import InputError, StackFileError
from harness.stack import load_stack
from harness.trading import ReadingUnavailable, TradingTruth, resolve_pointer, resolve_records, run_stack_command
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


# --- logins, nested records, several sources, HTTP commands (issue 12) ---------------------------------


class _Api(http.server.BaseHTTPRequestHandler):
    """A real HTTP server on 127.0.0.1 that wants a login: basic drill:secret or bearer tok."""

    calls: list[tuple[str, str, object]] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "")
        return given in ("Basic " + base64.b64encode(b"drill:secret").decode(), "Bearer tok")

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if not self._authorized():
            self._reply(401, {"detail": "Unauthorized"})
        elif self.path == "/open":
            self._reply(200, [{"id": 1, "pair": "A/B", "orders": [{"oid": "o1", "amount": 2, "side": "buy"}]}])
        else:
            self._reply(200, {"trades": [{"id": 2, "pair": "C/D", "orders": [
                {"oid": "o2", "amount": 1, "side": "buy"}, {"oid": "o3", "amount": 1, "side": "sell"}]}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        _Api.calls.append(("POST", self.path, body))
        self._reply(200 if self._authorized() else 401, {"ok": True})


@pytest.fixture
def api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Api.calls = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_reading_logs_in_with_basic_auth_and_is_refused_without(tmp_path: Path, api: str) -> None:
    truth = truth_for(tmp_path, f"""
        positions: {{url: "{api}/open", auth: {{basic: {{user: drill, password: secret}}}}, fields: {{symbol: pair}}}}
        venue: {{positions: {{url: "{api}/open"}}}}
    """)
    assert truth.positions() == {"A/B": 0.0}
    with pytest.raises(ReadingUnavailable, match="answered 401"):
        truth.venue_positions()


def test_credentials_come_from_the_environment_when_declared_so(
    tmp_path: Path, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    truth = truth_for(tmp_path, f"""
        positions: {{url: "{api}/open", auth: {{bearer: {{env: TEAM_API_TOKEN}}}}, fields: {{symbol: pair}}}}
    """)
    monkeypatch.delenv("TEAM_API_TOKEN", raising=False)
    with pytest.raises(InputError) as err:
        truth.positions()
    assert "TEAM_API_TOKEN is not set" in err.value.message and "export TEAM_API_TOKEN" in str(err.value.hint)
    monkeypatch.setenv("TEAM_API_TOKEN", "tok")
    assert truth.positions() == {"A/B": 0.0}


def test_a_wildcard_pointer_flattens_nested_records_from_several_sources(tmp_path: Path, api: str) -> None:
    login = "{basic: {user: drill, password: secret}}"
    truth = truth_for(tmp_path, f"""
        orders:
          sources:
            - {{url: "{api}/open", auth: {login}, pointer: /*/orders/*}}
            - {{url: "{api}/closed", auth: {login}, pointer: /trades/*/orders/*}}
          fields: {{key: oid, symbol: ../pair, qty: amount, side: side}}
    """)
    rows = [(r.key, r.symbol, r.qty, r.side) for r in truth.orders()]
    assert rows == [("o1", "A/B", "2", "buy"), ("o2", "C/D", "1", "buy"), ("o3", "C/D", "1", "sell")]


def test_resolve_records_keeps_each_records_parents() -> None:
    doc = {"t": [{"n": 1, "o": [{"k": "a"}, {"k": "b"}]}, {"n": 2, "o": []}, {"n": 3}]}
    found, values, parents = resolve_records(doc, "/t/*/o/*")
    assert found and values == [{"k": "a"}, {"k": "b"}]
    assert [p[-1]["n"] for p in parents] == [1, 1]
    assert resolve_records(doc, "/nope/*")[0] is False
    assert resolve_records({"m": {"x": {"k": 1}, "y": {"k": 2}}}, "/m/*")[1] == [{"k": 1}, {"k": 2}]


def test_a_wildcard_over_a_scalar_is_unavailable_naming_the_document(tmp_path: Path) -> None:
    truth = truth_for(tmp_path, "orders: {file: o.json, pointer: /trades/*/orders/*, "
                               "fields: {key: k, symbol: s, qty: q}}")
    (truth.backend.workdir / "o.json").write_text(json.dumps({"trades": 3}))
    with pytest.raises(ReadingUnavailable, match="/trades is not a list or an object"):
        truth.orders()


@pytest.mark.parametrize(("trading", "problem"), [
    ("positions: {file: p.json, auth: {bearer: t}}", "positions.auth: only an http or url source can log in"),
    ("positions: {url: 'http://127.0.0.1:1/p', auth: {bearer: t, basic: {user: u, password: p}}}",
     "positions.auth: needs exactly one of basic, bearer"),
    ("positions: {url: 'http://127.0.0.1:1/p', auth: {basic: {user: u}}}", "positions.auth.basic: missing password"),
    ("positions: {url: 'http://127.0.0.1:1/p', auth: {bearer: {env: 'no-such name'}}}",
     "not an environment variable name"),
    ("sla: {file: s.json, pointer: /reports/*/status}", "sla.pointer: a '*' segment yields several records"),
    ("orders: {file: o.json, pointer: /orders/*, fields: {key: k, symbol: ../s, qty: q}}",
     "orders.fields.symbol: '../s' reaches 1 record(s) up"),
    ("orders: {file: o.json, sources: [{file: p.json}], fields: {key: k, symbol: s, qty: q}}",
     "orders.file: give either one source or 'sources:', not both"),
    ("orders: {sources: [], fields: {key: k, symbol: s, qty: q}}", "orders.sources: must be a non-empty list"),
    ("orders: {sources: [{file: a.json, fields: {}}], fields: {key: k, symbol: s, qty: q}}",
     r"orders.sources[0].fields: unknown field"),
    ("kill_switch: {sources: [{file: a.json}]}", "kill_switch.sources: unknown field"),
    ("commands: {reload_trade: {method: FETCH, url: 'http://127.0.0.1:1/r'}}", "unknown HTTP method 'FETCH'"),
    ("commands: {reload_trade: {method: POST}}", "an HTTP command needs 'http: {service, port, path}' or 'url:'"),
    ("commands: {reload_trade: {url: 'http://127.0.0.1:1/r', body: 3}}", "reload_trade.body: must be a JSON object"),
    ("commands: {reload_trade: {http: {service: engine, port: http, path: /r}, auth: {basic: 3}}}",
     "reload_trade.auth.basic: must be a mapping"),
])
def test_bad_new_declarations_name_the_file_line_and_field(tmp_path: Path, trading: str, problem: str) -> None:
    with pytest.raises(StackFileError, match=re.escape(problem)) as err:
        load_stack(stack_with(tmp_path, trading))
    assert "stack.yml:" in str(err.value)


def test_an_http_command_is_called_logged_in_with_its_placeholders_filled(tmp_path: Path, api: str) -> None:
    truth = truth_for(tmp_path, f"""
        commands:
          reload_trade: {{method: POST, url: "{api}/trades/{{id}}/reload", body: {{trade: "{{id}}", n: 1}},
                         auth: {{basic: {{user: drill, password: secret}}}}}}
          reconcile: engine-ctl reconcile
    """)
    spec = truth.spec
    assert spec.is_http_command("reload_trade") and not spec.is_http_command("reconcile")
    with pytest.raises(StackFileError, match="is an HTTP call"):
        spec.command("reload_trade")
    drill = SimpleNamespace(backend=truth.backend, trading=truth, timeline=Timeline(), dry_run=None,
                            last_command=None)
    result = run_stack_command(drill, "reload_trade", id="7/x")
    assert result is not None and result.exit_code == 0 and '"ok": true' in result.stdout
    assert _Api.calls == [("POST", "/trades/7%2Fx/reload", {"trade": "7/x", "n": 1})]
    assert [e.kind for e in drill.timeline.events][-2:] == [EventKind.STEP_STARTED, EventKind.STEP_ENDED]


def test_an_http_command_refused_by_the_server_is_a_non_zero_exit(tmp_path: Path, api: str) -> None:
    truth = truth_for(tmp_path, f'commands: {{reload_trade: {{url: "{api}/trades/{{id}}/reload"}}}}')
    drill = SimpleNamespace(backend=truth.backend, trading=truth, timeline=Timeline(), dry_run=None,
                            last_command=None)
    result = run_stack_command(drill, "reload_trade", id="1")
    assert result is not None and result.exit_code == 401 and result.stderr == "HTTP 401"


def test_positions_as_an_object_take_numbers_and_numeric_text_and_refuse_anything_else(tmp_path: Path) -> None:
    truth = truth_for(tmp_path, "positions: {file: p.json, pointer: /held}")
    path = truth.backend.workdir / "p.json"
    path.write_text(json.dumps({"held": {"A": 2, "B": "0.5"}}))
    assert truth.positions() == {"A": 2.0, "B": 0.5}
    path.write_text(json.dumps({"held": {"USDT": {"free": "10", "locked": "0"}}}))
    with pytest.raises(ReadingUnavailable, match=r"expected symbol -> quantity, observed 'USDT': an object"):
        truth.positions()


def test_an_http_command_to_nothing_is_exit_1_naming_the_address(tmp_path: Path) -> None:
    truth = truth_for(tmp_path, "commands: {reload_trade: {url: 'http://127.0.0.1:1/reload/{id}'}}")
    drill = SimpleNamespace(backend=truth.backend, trading=truth, timeline=Timeline(), dry_run=None,
                            last_command=None)
    result = run_stack_command(drill, "reload_trade", id="1")
    assert result is not None and result.exit_code == 1
    assert "unreachable: http://127.0.0.1:1/reload/1" in result.stderr
