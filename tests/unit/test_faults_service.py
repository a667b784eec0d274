"""Service faults against the fake backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends.base import ServiceState
from harness.errors import FaultRollbackError, StackFileError
from harness.faults import FullOutage, Kill, Pause, Restart, Stop
from tests.unit.fake_backend import FakeBackend


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path)


def test_kill_then_start_and_wait_healthy(backend: FakeBackend) -> None:
    with Kill(backend, "broker"):  # type: ignore[arg-type]
        assert backend.states["broker"] is ServiceState.STOPPED
    assert backend.service_calls() == [("kill", "broker"), ("state", "broker"), ("start", "broker"),
                                       ("wait_healthy", "broker")]


def test_kill_rollback_on_a_service_already_back_only_checks_health(backend: FakeBackend) -> None:
    with Kill(backend, "broker"):  # type: ignore[arg-type]
        backend.states["broker"] = ServiceState.RUNNING  # restarted by someone else meanwhile
    assert ("start", "broker") not in backend.calls and ("wait_healthy", "broker") in backend.calls


def test_stop(backend: FakeBackend) -> None:
    with Stop(backend, "marketdata"):  # type: ignore[arg-type]
        pass
    assert backend.service_calls()[0] == ("stop", "marketdata") and backend.states["marketdata"] is ServiceState.RUNNING


def test_pause_resumes(backend: FakeBackend) -> None:
    with Pause(backend, "broker"):  # type: ignore[arg-type]
        assert backend.states["broker"] is ServiceState.PAUSED
    assert ("resume", "broker") in backend.calls and backend.states["broker"] is ServiceState.RUNNING


def test_restart_rollback_verifies_running(backend: FakeBackend) -> None:
    with Restart(backend, "traderunner"):  # type: ignore[arg-type]
        backend.states["traderunner"] = ServiceState.DEAD  # crashed after the restart
    assert ("start", "traderunner") in backend.calls and backend.states["traderunner"] is ServiceState.RUNNING


def test_failed_start_on_rollback_is_a_rollback_error(backend: FakeBackend) -> None:
    backend.fail_on.add("start")
    with pytest.raises(FaultRollbackError, match="start"), Kill(backend, "broker"):  # type: ignore[arg-type]
        pass


def test_full_outage_kills_dependants_first_and_restarts_in_dependency_order(backend: FakeBackend) -> None:
    fault = FullOutage(backend)  # type: ignore[arg-type]
    assert fault.services == ["broker", "marketdata", "traderunner", "dashboard"]  # app services only
    with fault:
        assert all(backend.states[s] is ServiceState.STOPPED for s in fault.services)
        assert backend.states["toxiproxy"] is ServiceState.RUNNING
    kills = [c[1] for c in backend.calls if c[0] == "kill"]
    starts = [c[1] for c in backend.calls if c[0] == "start"]
    assert kills == ["dashboard", "traderunner", "marketdata", "broker"]
    assert starts == ["broker", "marketdata", "traderunner", "dashboard"]


def test_full_outage_rollback_tries_every_service_and_reports_all_failures(backend: FakeBackend) -> None:
    fault = FullOutage(backend)  # type: ignore[arg-type]
    fault.inject()
    backend.fail_on.add("start")
    with pytest.raises(FaultRollbackError) as info:
        fault.rollback()
    text = str(info.value)
    assert all(name in text for name in ("broker:", "marketdata:", "traderunner:", "dashboard:"))


def test_full_outage_rejects_unknown_services(backend: FakeBackend) -> None:
    with pytest.raises(StackFileError, match="no service named 'nope'"):
        FullOutage(backend, ["nope"])  # type: ignore[arg-type]
