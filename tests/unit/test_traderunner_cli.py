"""The operator CLI as a user calls it: documented exit codes, offline fallbacks, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mockstack.traderunner import exports
from mockstack.traderunner.cli import cli
from mockstack.traderunner.service import SettingsError, parse_settings
from mockstack.traderunner.store import DB_RELATIVE_PATH, Store, StoreError


def invoke(workdir: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--workdir", str(workdir), *args], env=env)
    return result.exit_code, result.output


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    store = Store.open_in(tmp_path)
    store.insert_order("k1", "ABC", "buy", 10, 100.0, 0.0)
    store.apply_fill("k1", "F-1", "O-1", 10, 100.0, 0.0)
    store.close()
    return tmp_path


def test_status_without_any_state_is_unreachable(tmp_path: Path) -> None:
    code, out = invoke(tmp_path, "status")
    assert code == 4 and "runtime.json does not exist" in out


def test_status_falls_back_to_sqlite_when_the_service_is_down(workdir: Path) -> None:
    code, out = invoke(workdir, "status")
    assert code == 0 and "NOT RUNNING" in out and "ABC 10" in out
    code, out = invoke(workdir, "status", "--json")
    doc = json.loads(out[out.index("{") :])
    assert code == 0 and doc["positions"] == {"ABC": 10} and doc["kill_switch"]["active"] is False


def test_corrupt_runtime_json_is_named_and_read_only_commands_still_work(workdir: Path) -> None:
    runtime = workdir / exports.RUNTIME
    runtime.write_text('{"pid": 12, "http_u')
    code, out = invoke(workdir, "status")
    assert code == 0 and "runtime.json is unreadable or not valid JSON" in out
    assert "service:     unknown" in out and "NOT RUNNING" not in out  # it may well be running
    code, out = invoke(workdir, "health-check")
    assert code == 4 and "runtime.json" in out
    runtime.write_text('{"pid": 12}')
    code, out = invoke(workdir, "data", "validate")
    assert code == 4 and "no usable 'http_url'" in out


def test_corrupt_database_is_named(tmp_path: Path) -> None:
    db = tmp_path / DB_RELATIVE_PATH
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(StoreError, match=str(db)):
        Store(db)
    code, out = invoke(tmp_path, "status")
    assert code == 1 and str(db) in out and "corrupt" in out


def test_offline_trip_then_promotion_rules(workdir: Path) -> None:
    code, out = invoke(workdir, "trip-kill-switch", "--reason", "drill", "--by", "alice")
    assert code == 0 and "Kill switch activated" in out
    assert json.loads((workdir / exports.KILL_SWITCH).read_text())["active"] is True
    code, out = invoke(workdir, "promote", "--to", "paper")
    assert code == 3 and "Promotion blocked" in out and "kill switch" in out
    code, out = invoke(workdir, "promote", "--to", "live")
    assert code == 3 and "no real broker" in out
    code, out = invoke(workdir, "promote", "--to", "lab")
    assert code == 0
    code, _ = invoke(workdir, "promote", "--to", "prod")
    assert code == 2


def test_offline_promotion_refused_while_sla_violated(workdir: Path) -> None:
    store = Store.open_in(workdir)
    store.set_value("sla", {"violated": True, "violations": []})
    store.close()
    code, out = invoke(workdir, "promote", "--to", "paper")
    assert code == 3 and "SLA" in out


def test_usage_errors_exit_2_and_empty_approval_is_refused(workdir: Path) -> None:
    assert invoke(workdir, "reset-kill-switch", "--reason", "x")[0] == 2
    assert invoke(workdir, "reset-kill-switch", "--approved-by", "x")[0] == 2
    assert invoke(workdir, "reset-kill-switch", "--approved-by", " ", "--reason", "x")[0] == 3
    assert invoke(workdir, "reconcile", "--accept-broker")[0] == 2
    assert invoke(workdir, "trip-kill-switch")[0] == 2
    assert invoke(workdir, "no-such-command")[0] == 2


def test_service_commands_exit_4_when_the_service_is_down(workdir: Path) -> None:
    for args in (
        ["health-check"],
        ["broker", "reconnect"],
        ["data", "fetch"],
        ["data", "validate"],
        ["reconcile"],
        ["reset-kill-switch", "--approved-by", "a", "--reason", "b"],
    ):
        code, out = invoke(workdir, *args)
        assert code == 4, (args, out)


def test_orders_duplicates_scans_the_csvs(tmp_path: Path) -> None:
    assert invoke(tmp_path, "orders", "duplicates")[0] == 0
    orders = tmp_path / exports.ORDERS_DIR
    orders.mkdir(parents=True)
    header = ",".join(exports.CSV_HEADER)
    rows = "t,TR-1,key-a,ABC,buy,1,1.0,sent\nt,TR-2,key-b,ABC,buy,1,1.0,sent\n"
    (orders / "2026-01-05.csv").write_text(f"{header}\n{rows}")
    code, out = invoke(tmp_path, "orders", "duplicates")
    assert code == 0 and "no duplicate" in out
    (orders / "2026-01-06.csv").write_text(f"{header}\nt,TR-3,key-a,ABC,buy,1,1.0,sent\n")
    code, out = invoke(tmp_path, "orders", "duplicates")
    assert code == 1 and "key-a appears 2 times" in out


def test_run_refuses_live_mode_and_bad_values_with_exit_2(tmp_path: Path) -> None:
    code, out = invoke(tmp_path, "run", env={"TR_MODE": "live"})
    assert code == 2 and "this mock has no real broker; use lab or paper" in out
    code, out = invoke(tmp_path, "run", env={"TR_MODE": "prod"})
    assert code == 2 and "TR_MODE" in out
    code, out = invoke(tmp_path, "run", "--http-port", "abc")
    assert code == 2 and "--http-port='abc'" in out and len(out.strip().splitlines()) == 1
    code, out = invoke(tmp_path, "run", env={"TR_BROKER_ADDR": "nohost"})
    assert code == 2 and "TR_BROKER_ADDR" in out


def test_run_refuses_malformed_config_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/risk.yml").write_text("max_daily_loss: -3\n")
    code, out = invoke(tmp_path, "run", "--workdir", str(tmp_path), "--http-port", "0")
    assert code == 2 and "risk.yml" in out and "max_daily_loss" in out


def test_settings_flags_win_over_environment(tmp_path: Path) -> None:
    s = parse_settings(
        {"http_port": "8000", "workdir": str(tmp_path)},
        {"TR_HTTP_PORT": "9000", "TR_POLL_INTERVAL_MS": "100", "TR_MODE": "paper"},
    )
    assert (s.http_port, s.poll_interval, s.mode, s.workdir) == (8000, 0.1, "paper", tmp_path)
    with pytest.raises(SettingsError, match="TR_RECONNECT_ATTEMPTS='0'"):
        parse_settings({}, {"TR_RECONNECT_ATTEMPTS": "0"})


def test_atomic_export_replaces_a_corrupt_file(tmp_path: Path) -> None:
    target = tmp_path / exports.POSITIONS
    target.parent.mkdir(parents=True)
    target.write_text("{garbage")
    with pytest.raises(ValueError, match="positions.json is unreadable"):
        exports.read_json(target)
    exports.write_json_atomic(target, exports.positions_doc({"ABC": 3}))
    assert exports.read_json(target)["positions"] == {"ABC": 3}
    assert [p.name for p in target.parent.iterdir()] == ["positions.json"]  # no temp file left behind


def test_a_risk_limit_that_is_not_a_number_is_named_not_shown_as_nan(workdir: Path) -> None:
    from mockstack.traderunner.config import RISK_FILE, load_configs

    load_configs(workdir)  # writes both files with their defaults
    risk = workdir / RISK_FILE
    risk.write_text(risk.read_text().replace("max_daily_loss: 1000.0", "max_daily_loss: lots"))
    code, out = invoke(workdir, "status")
    assert code == 2 and "max_daily_loss" in out and "lots" in out and "nan" not in out


def test_a_stale_engine_with_the_same_pid_does_not_own_its_successors_runtime_file() -> None:
    from mockstack.traderunner.service import owns_runtime

    doc = {"pid": 7, "http_url": "http://127.0.0.1:7300", "started_at": "2026-11-30T18:00:05.000Z"}
    assert owns_runtime(doc, 7, "2026-11-30T18:00:05.000Z")
    assert not owns_runtime(doc, 7, "2026-11-30T17:59:00.000Z")  # same pid, another container's engine
    assert not owns_runtime(doc, 8, "2026-11-30T18:00:05.000Z") and not owns_runtime([], 7, "x")
