"""Trading faults against a fake of the broker / marketdata admin APIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import FaultError, InputError
from harness.faults import InjectedPosition, LatencySpike, PriceShock, RejectRateSpike, pending
from harness.faults.ledger import cleanup
from tests.unit.fake_backend import FEED, FILL_LATENCY, POSITION, REJECT_RATE, FakeBackend
from tests.unit.http_fakes import FakeAdmin


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path)


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> FakeAdmin:
    fake = FakeAdmin()
    monkeypatch.setattr("requests.request", fake)  # harness.faults._http imports requests when it calls
    return fake


def test_price_shock_defaults(backend: FakeBackend, admin: FakeAdmin) -> None:
    shock = PriceShock(backend, endpoint=FEED)  # type: ignore[arg-type]
    with shock:
        pass
    assert admin.calls[0] == ("POST", "admin/faults", {"kind": "shock", "bars": 3, "pct": -8.0})
    assert admin.calls[1] == ("DELETE", "admin/faults/f1", None)
    assert "kill switch trips" in shock.describe() and shock.kind == "price_shock"


def test_injected_position(backend: FakeBackend, admin: FakeAdmin) -> None:
    with InjectedPosition(backend, "KQZ", -25, endpoint=POSITION):  # type: ignore[arg-type]
        assert admin.positions == {"KQZ": -25}
    assert admin.positions == {}
    assert ("endpoint", "broker", "http") in backend.calls
    with pytest.raises(FaultError, match="non-zero whole number"):
        InjectedPosition(backend, "KQZ", 0, endpoint=POSITION)  # type: ignore[arg-type]


def test_injected_position_rollback_is_idempotent_on_the_service(backend: FakeBackend, admin: FakeAdmin) -> None:
    fault = InjectedPosition(backend, "KQZ", 5, endpoint=POSITION)  # type: ignore[arg-type]
    fault.inject()
    admin.positions.clear()  # someone removed it by hand: the DELETE answers 404, which is fine
    fault.rollback()


def test_reject_rate_spike_restores_the_previous_value(backend: FakeBackend, admin: FakeAdmin) -> None:
    admin.settings["rate"] = 0.05
    with RejectRateSpike(backend, 0.6, endpoint=REJECT_RATE) as fault:  # type: ignore[arg-type]
        assert admin.settings["rate"] == 0.6 and fault.previous == 0.05
    assert admin.settings["rate"] == 0.05


def test_latency_spike_restores_the_previous_value(backend: FakeBackend, admin: FakeAdmin) -> None:
    with LatencySpike(backend, 1500, endpoint=FILL_LATENCY):  # type: ignore[arg-type]
        assert admin.settings["ms"] == 1500
    assert admin.settings["ms"] == 50
    assert admin.calls[0] == ("POST", "admin/fill-latency", {"ms": 1500})


def test_spike_parameters_validated() -> None:
    with pytest.raises(InputError, match=r"rate must be a number in \[0, 1\]"):
        RejectRateSpike(None, 1.5, endpoint=REJECT_RATE)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"ms must be a number in \[0, 600000\]"):
        LatencySpike(None, -1, endpoint=FILL_LATENCY)  # type: ignore[arg-type]


def test_spike_with_lost_reply_restores_the_documented_default(backend: FakeBackend, admin: FakeAdmin) -> None:
    admin.settings["rate"] = 0.0
    admin.lose_reply_once = True
    fault = RejectRateSpike(backend, 0.9, endpoint=REJECT_RATE)  # type: ignore[arg-type]
    with pytest.raises(FaultError):
        fault.inject()
    assert admin.settings["rate"] == 0.0  # rolled back to restore_if_unknown


def test_cleanup_after_a_crash_restores_the_learned_previous_value(backend: FakeBackend, admin: FakeAdmin) -> None:
    admin.settings["ms"] = 75
    LatencySpike(backend, 900, endpoint=FILL_LATENCY).inject()  # type: ignore[arg-type]  # and the run dies here
    (entry,) = pending(backend.run_dir)
    assert entry.record["learned"] == {"previous": 75.0}
    report = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert report.ok and admin.settings["ms"] == 75
