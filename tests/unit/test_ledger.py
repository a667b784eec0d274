"""The fault ledger: append-only records, pending faults, cleanup after a crashed run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.backends.base import ServiceState
from harness.errors import FaultError, FaultRollbackError, InputError
from harness.faults import Kill, LinkDown, Toxic, cleanup, pending
from harness.faults.base import Fault
from harness.faults.ledger import Ledger
from tests.unit.fake_backend import FakeBackend


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path)


def test_every_inject_and_rollback_is_a_json_line(backend: FakeBackend) -> None:
    with Kill(backend, "broker") as fault:  # type: ignore[arg-type]
        pass
    lines = [json.loads(x) for x in (backend.run_dir / "ledger.jsonl").read_text().splitlines()]
    assert [x["action"] for x in lines] == ["inject", "injected", "rolled_back"]
    assert [x["seq"] for x in lines] == [1, 2, 3]
    assert {x["fault_id"] for x in lines} == {fault.fault_id}
    assert lines[0]["record"]["params"] == {"service": "broker", "healthy_timeout_s": 30.0}
    assert lines[0]["record"]["description"].startswith("kill: SIGKILL (crash) on service broker")


def test_pending_lists_faults_not_rolled_back_in_injection_order(backend: FakeBackend) -> None:
    down = LinkDown(backend, "broker")  # type: ignore[arg-type]
    slow = Toxic(backend, "broker", "latency", latency=300)  # type: ignore[arg-type]
    kill = Kill(backend, "marketdata")  # type: ignore[arg-type]
    for f in (down, slow, kill):
        f.inject()
    slow.rollback()
    assert [p.fault_id for p in pending(backend.run_dir)] == [down.fault_id, kill.fault_id]
    assert pending(backend.run_dir / "elsewhere") == ()


def test_cleanup_rebuilds_and_rolls_back_latest_first_resetting_only_the_runs_proxies(backend: FakeBackend) -> None:
    from tests.unit.fake_backend import FakeProxy

    backend.toxiproxy.by_name["other-run_broker"] = FakeProxy(enabled=False, toxics={"t": {"type": "latency",
                                                                                          "stream": "upstream"}})
    down = LinkDown(backend, "broker")  # type: ignore[arg-type]
    kill = Kill(backend, "marketdata")  # type: ignore[arg-type]
    down.inject()
    kill.inject()
    backend.calls.clear()  # the run crashed here; a new process runs `drill cleanup`
    report = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert report.ok
    assert backend.calls[0] == ("toxiproxy.proxies",)  # read-only: is this Toxiproxy the run's?
    assert ("toxiproxy.reset",) not in backend.calls  # a global reset would undo other runs' faults
    assert [c for c in backend.calls if c[0] in ("start", "toxiproxy.set_enabled")] == [
        ("toxiproxy.set_enabled", "drill_broker", True), ("start", "marketdata"),
        ("toxiproxy.set_enabled", "drill_broker", True)]
    other = backend.toxiproxy.by_name["other-run_broker"]
    assert not other.enabled and other.toxics  # another run's proxy: untouched
    assert backend.states["marketdata"] is ServiceState.RUNNING
    assert pending(backend.run_dir) == ()
    assert "rolled back: kill: SIGKILL" in report.summary() and "the run's 1 proxies reset" in report.summary()
    again = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert again.rolled_back == () and "no pending faults" in again.summary()


def test_cleanup_reports_failures_and_keeps_going(backend: FakeBackend) -> None:
    Kill(backend, "broker").inject()  # type: ignore[arg-type]
    Kill(backend, "marketdata").inject()  # type: ignore[arg-type]
    backend.states["broker"] = ServiceState.DEAD
    backend.fail_on.add("start")
    backend.toxiproxy.fail_on.add("proxies")
    report = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert not report.ok and len(report.failed) == 2  # both tried; no network faults, so reset is a note
    assert "could not reset" in report.toxiproxy
    with pytest.raises(FaultRollbackError, match="FAILED: kill"):
        report.raise_if_failed()
    assert len(pending(backend.run_dir)) == 2
    backend.fail_on.clear()
    assert cleanup(backend, backend.run_dir).ok  # type: ignore[arg-type]
    assert pending(backend.run_dir) == ()


def test_toxiproxy_unreachable_is_a_failure_when_network_faults_are_pending(backend: FakeBackend) -> None:
    LinkDown(backend, "broker").inject()  # type: ignore[arg-type]
    backend.toxiproxy.fail_on.update({"proxies", "set_enabled"})
    report = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert [d for d, _ in report.failed][0] == "toxiproxy reset"


def test_a_halt_racing_the_runs_own_rollback_counts_only_what_is_still_pending(backend: FakeBackend) -> None:
    from harness.faults.ledger import without_what_the_run_reverted

    down = LinkDown(backend, "broker")  # type: ignore[arg-type]
    kill = Kill(backend, "marketdata")  # type: ignore[arg-type]
    down.inject()
    kill.inject()
    backend.toxiproxy.fail_on.update({"proxies", "set_enabled"})  # the run is stopping its stack
    backend.fail_on.add("start")
    report = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert {d for d, _ in report.failed} == {"toxiproxy reset", down.describe(), kill.describe()}
    assert without_what_the_run_reverted(report) == report  # nothing reverted by the run yet: all failures stand
    backend.toxiproxy.fail_on.clear()
    down.rollback()  # the run, having seen the HALT file, reverts its network fault itself
    settled = without_what_the_run_reverted(report)
    assert settled.failed == ((kill.describe(), dict(report.failed)[kill.describe()]),)  # still pending: a failure
    assert f"{down.describe()} (by the run itself)" in settled.rolled_back
    assert settled.toxiproxy.startswith("not needed: the run reverted its network faults itself")
    backend.fail_on.clear()
    kill.rollback()
    assert without_what_the_run_reverted(report).ok


def test_a_line_cut_short_by_a_crash_is_skipped_and_reported(backend: FakeBackend) -> None:
    Kill(backend, "broker").inject()  # type: ignore[arg-type]
    with (backend.run_dir / "ledger.jsonl").open("a") as fh:
        fh.write('{"seq": 3, "action": "inj')  # the process died mid-write
    Kill(backend, "marketdata").inject()  # type: ignore[arg-type]  # next append starts on a new line
    contents = Ledger(backend.run_dir).read()
    assert contents.bad_lines == (3,)
    assert len(pending(backend.run_dir)) == 2
    report = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert report.rolled_back and not report.failed  # what could be read was reverted...
    assert not report.complete and not report.ok  # ...but line 3 may name a fault still in place
    assert "NOT REVERTED: ledger.jsonl line 3 cannot be read: '{\"seq\": 3, \"action\": \"inj'" in report.summary()
    with pytest.raises(InputError, match="line 3") as err:
        report.raise_if_failed()
    assert err.value.exit_code == 2


def test_a_ledger_that_cannot_be_read_is_bad_input_not_all_clear(backend: FakeBackend) -> None:
    Kill(backend, "broker").inject()  # type: ignore[arg-type]
    path = backend.run_dir / "ledger.jsonl"
    path.unlink()
    path.mkdir()  # reading it fails (works under root too, unlike chmod 000)
    with pytest.raises(InputError, match="cannot read the fault ledger .*ledger.jsonl") as err:
        cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert err.value.exit_code == 2


def test_a_live_runs_cleanup_reverts_only_faults_whose_injector_is_gone(backend: FakeBackend) -> None:
    mine = Kill(backend, "broker")  # type: ignore[arg-type]
    mine.inject()  # injected by this (live) process
    Kill(backend, "marketdata").inject()  # type: ignore[arg-type]
    lines = (backend.run_dir / "ledger.jsonl").read_text().splitlines()
    dead = [json.loads(x) for x in lines[2:]]
    for doc in dead:
        doc["pid"], doc["pid_start"] = 999_999_999, "1"  # a helper process that is gone
    (backend.run_dir / "ledger.jsonl").write_text("\n".join(lines[:2] + [json.dumps(d) for d in dead]) + "\n")
    report = cleanup(backend, backend.run_dir, only_orphaned=True)  # type: ignore[arg-type]
    assert len(report.rolled_back) == 1 and "marketdata" in report.rolled_back[0]
    assert [e.fault_id for e in pending(backend.run_dir)] == [mine.fault_id]
    assert ("toxiproxy.proxies",) not in backend.calls and "the run is live" in report.toxiproxy


def test_records_rebuild_every_registered_kind_or_fail_clearly(backend: FakeBackend) -> None:
    with pytest.raises(FaultError, match="unknown fault kind 'meteor'"):
        Fault.from_record(backend, {"kind": "meteor", "fault_id": "x", "params": {}})  # type: ignore[arg-type]
    with pytest.raises(FaultError, match="parameter 'service' must be a string"):
        Fault.from_record(backend, {"kind": "kill", "fault_id": "x", "params": {"service": 3}})  # type: ignore[arg-type]


def test_unknown_action_is_a_bug(backend: FakeBackend) -> None:
    with pytest.raises(ValueError):
        Ledger(backend.run_dir).append("exploded", {})


def test_a_toxiproxy_without_the_runs_proxies_gets_no_rollback(backend: FakeBackend) -> None:
    LinkDown(backend, "broker").inject()  # type: ignore[arg-type]
    backend.toxiproxy.by_name = {"someone-elses": backend.toxiproxy.by_name["drill_broker"]}  # another server
    backend.calls.clear()
    report = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert not report.ok and "holds none of this run's proxies" in report.summary()
    assert [c for c in backend.calls if c[0].startswith("toxiproxy.")] == [("toxiproxy.proxies",)]  # read only
    assert len(pending(backend.run_dir)) == 1


def test_a_halt_whose_rollback_fails_after_the_run_rolled_back_itself_records_no_failure(
    backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order CI saw: `drill halt` resets the run's proxies and rolls back its link_down; meanwhile the run,
    having seen the HALT file, rolls the fault back (ledger: rolled_back) and stops its stack, so the halt's
    rollback finds Toxiproxy gone. That is no failure, and no `rollback_failed` line may follow the run's
    `rolled_back` (it would make the fault look pending again to every later clean-up)."""
    from harness.errors import ToxiproxyError

    down = LinkDown(backend, "broker")  # type: ignore[arg-type]
    down.inject()

    def run_unwinds_then_toxiproxy_is_gone(name: str) -> object:
        down._ledger("rolled_back")  # the run's own rollback, written by the run
        raise ToxiproxyError("proxy: Toxiproxy at http://127.0.0.1:8474 did not answer (ConnectionError)")

    monkeypatch.setattr(backend.toxiproxy, "proxy", run_unwinds_then_toxiproxy_is_gone)
    report = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert report.failed == () and report.ok
    assert report.rolled_back == (f"{down.describe()} (by the run itself)",)
    actions = [json.loads(x)["action"] for x in (backend.run_dir / "ledger.jsonl").read_text().splitlines()]
    assert actions == ["inject", "injected", "rolled_back"]
    assert pending(backend.run_dir) == ()


def test_a_clean_up_skips_what_the_run_rolled_back_after_the_clean_up_read_the_ledger(backend: FakeBackend) -> None:
    down = LinkDown(backend, "broker")  # type: ignore[arg-type]
    kill = Kill(backend, "marketdata")  # type: ignore[arg-type]
    down.inject()
    kill.inject()
    real_start = backend.start

    def start_and_meanwhile_the_run_reverts_its_link(service: str) -> None:  # kill is rolled back first
        down.rollback()
        real_start(service)

    backend.start = start_and_meanwhile_the_run_reverts_its_link  # type: ignore[method-assign]
    backend.calls.clear()
    report = cleanup(backend, backend.run_dir, reset_toxiproxy=False)  # type: ignore[arg-type]
    assert report.ok and report.rolled_back == (kill.describe(), f"{down.describe()} (by the run itself)")
    assert [c for c in backend.calls if c[0] == "toxiproxy.set_enabled"] == [
        ("toxiproxy.set_enabled", "drill_broker", True)]  # once, by the run: the clean-up left it alone
