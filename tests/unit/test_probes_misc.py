"""HTTP health, file and operator-CLI probes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.backends.base import CommandResult
from harness.errors import InputError
from harness.probes import PROBES, CsvDuplicates, HttpHealth, JsonFileField, OperatorCommand, Probe
from tests.unit.fake_backend import FakeBackend
from tests.unit.http_fakes import REFUSED, FakeSession

HEALTH = "http://127.0.0.1:7300/health"
BODY = {"service": "traderunner", "live": True, "ready": False,
        "checks": {"broker": {"ok": False, "detail": "manual intervention required"}}}


def test_every_registered_probe_is_a_probe_with_a_name() -> None:
    assert set(PROBES) == {"alert_firing", "alert_absent", "prometheus_query", "log_line", "http_health",
                           "json_file_field", "csv_duplicates", "operator_cli"}
    for name, cls in PROBES.items():
        assert issubclass(cls, Probe) and cls.name == name


def test_health_status_and_json_field() -> None:
    session = FakeSession()
    session.reply(HEALTH, status=503, body=BODY)
    assert not HttpHealth(HEALTH, session=session)().ok  # type: ignore[arg-type]
    assert HttpHealth(HEALTH, status=503, session=session)().ok  # type: ignore[arg-type]
    obs = HttpHealth(HEALTH, status=503, field="checks.broker.ok", equals=False, session=session)()  # type: ignore[arg-type]
    assert obs.ok and obs.value is False and obs.observed == "HTTP 503, checks.broker.ok = False"
    missing = HttpHealth(HEALTH, status=503, field="checks.store.ok", session=session)()  # type: ignore[arg-type]
    assert not missing.ok and "no field 'checks.store.ok'" in missing.observed


def test_health_unreachable_is_an_observation() -> None:
    obs = HttpHealth(HEALTH, session=FakeSession(replies={HEALTH: REFUSED}))()  # type: ignore[arg-type]
    assert not obs.ok and obs.observed == f"unreachable: {HEALTH}: connection failed (connection refused)"


def test_health_for_service_uses_the_stack_description(tmp_path: Path) -> None:
    probe = HttpHealth.for_service(FakeBackend(tmp_path), "traderunner")
    assert probe.url == HEALTH


def test_json_file_field(tmp_path: Path) -> None:
    path = tmp_path / "artifacts" / "state" / "kill_switch.json"
    probe = JsonFileField("artifacts/state/kill_switch.json", "active", equals=True, root=tmp_path)
    assert "does not exist" in probe().observed
    path.parent.mkdir(parents=True)
    path.write_text('{"active": fal')
    assert "not valid JSON" in probe().observed
    path.write_text(json.dumps({"active": False, "reason": None}))
    assert not probe().ok
    path.write_text(json.dumps({"active": True, "reason": "daily loss limit"}))
    obs = probe()
    assert obs.ok and obs.observed == "kill_switch.json: active = True"
    assert JsonFileField(path, "reason")().value == "daily loss limit"
    assert "no field 'nope'" in JsonFileField(path, "nope")().observed


def test_csv_duplicates_across_files(tmp_path: Path) -> None:
    orders = tmp_path / "orders"
    orders.mkdir()
    header = "ts,order_id,idempotency_key,symbol,side,qty,limit_price,status\n"
    (orders / "2026-01-05.csv").write_text(header + "t,o1,k1,AAA,buy,1,10,sent\nt,o2,k2,AAA,buy,1,10,sent\n")
    (orders / "2026-01-06.csv").write_text(header + "t,o3,k3,AAA,buy,1,10,sent\n")
    clean = CsvDuplicates(orders, "*.csv", "idempotency_key")()
    assert clean.ok and clean.value == () and "3 row(s) in 2 file(s)" in clean.observed
    with (orders / "2026-01-06.csv").open("a") as fh:
        fh.write("t,o4,k1,AAA,buy,1,10,sent\n")
    dup = CsvDuplicates(orders, "*.csv", "idempotency_key")()
    assert not dup.ok and dup.value == (("k1", 2),) and "k1 x2" in dup.observed
    assert CsvDuplicates(orders, "*.csv", "idempotency_key", expect_duplicates=True)().ok
    assert "no column 'nope'" in CsvDuplicates(orders, "*.csv", "nope")().observed


def result(code: int, out: str) -> CommandResult:
    return CommandResult(("traderunner", "status"), code, out, "", 0.1)


def test_operator_cli_exit_code_and_output(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    backend.operator_results = [result(1, "1 mismatch: AAA expected 0 actual 25\n"), result(0, "ok\n")]
    probe = OperatorCommand(backend, ["reconcile"], exit_code=1, output=r"mismatch: \w+")  # type: ignore[arg-type]
    obs = probe()
    assert obs.ok and obs.observed == "exit 1: 1 mismatch: AAA expected 0 actual 25"
    assert not probe().ok
    assert backend.calls == [("operator", ("reconcile",)), ("operator", ("reconcile",))]
    assert probe.describe() == "`reconcile` gives exit 1 and output matching /mismatch: \\w+/"


def test_operator_cli_timeout_is_never_ok(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    backend.operator_results = [CommandResult(("traderunner",), -9, "", "", 30.0, timed_out=True)]
    obs = OperatorCommand(backend, ["status"], exit_code=None)()  # type: ignore[arg-type]
    assert not obs.ok and obs.observed.startswith("timed out after 30s")


def test_operator_cli_bad_regex_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="invalid output regex"):
        OperatorCommand(FakeBackend(tmp_path), ["status"], output="(")  # type: ignore[arg-type]
