"""Feed and file corruption: admin API calls (fake) and real files under a temporary workdir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.adapter import Endpoint
from harness.errors import FaultInjectionError, FaultRollbackError, InputError
from harness.faults import FeedCorruption, FileCorruption, pending, symbols
from harness.faults.base import Fault, FaultContext
from harness.faults.ledger import cleanup
from tests.unit.fake_backend import FEED, SYMBOLS, FakeBackend
from tests.unit.http_fakes import FakeAdmin


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path)


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> FakeAdmin:
    fake = FakeAdmin()
    monkeypatch.setattr("requests.request", fake)  # harness.faults._http imports requests when it calls
    return fake


def test_feed_corruption_posts_and_deletes_by_id(backend: FakeBackend, admin: FakeAdmin) -> None:
    fault = FeedCorruption(backend, "nan", symbol="KQZ", bars=5, endpoint=FEED)  # type: ignore[arg-type]
    with fault:
        assert fault.remote_id == "f1" and "f1" in admin.feed_faults
    assert admin.feed_faults == {}
    assert admin.calls == [("POST", "admin/faults", {"kind": "nan", "symbol": "KQZ", "bars": 5}),
                           ("DELETE", "admin/faults/f1", None)]


def test_feed_corruption_service_is_a_parameter(backend: FakeBackend, admin: FakeAdmin) -> None:
    with FeedCorruption(backend, "stale", endpoint=Endpoint("broker", "http", "/admin/faults", "test")):  # type: ignore[arg-type]
        pass
    assert ("endpoint", "broker", "http") in backend.calls


def test_feed_corruption_lost_reply_is_rolled_back_by_kind_and_symbol(backend: FakeBackend, admin: FakeAdmin) -> None:
    admin.lose_reply_once = True  # the fault was created but the id never came back
    with pytest.raises(FaultInjectionError, match="got no answer"):
        FeedCorruption(backend, "gap", symbol="KQZ", endpoint=FEED).inject()  # type: ignore[arg-type]
    assert admin.feed_faults == {}
    assert [c[:2] for c in admin.calls] == [("POST", "admin/faults"), ("GET", "admin/faults"),
                                            ("DELETE", "admin/faults/f1")]


def test_feed_corruption_rejected_by_the_service_names_the_field(backend: FakeBackend, admin: FakeAdmin) -> None:
    fault = FeedCorruption(backend, "nan", endpoint=FEED)  # type: ignore[arg-type]
    fault.corruption = "bogus"  # as if the service did not know a kind we thought it knew
    with pytest.raises(FaultInjectionError) as info:
        fault.inject()
    assert "HTTP 400" in str(info.value) and '"field": "kind"' in str(info.value)


def test_feed_corruption_parameters_are_validated() -> None:
    with pytest.raises(InputError, match="kind must be one of gap, stale"):
        FeedCorruption(None, "typo", endpoint=FEED)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="pct only applies to kind shock"):
        FeedCorruption(None, "nan", pct=-5, endpoint=FEED)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"bars must be a number in \[1, 100000\]"):
        FeedCorruption(None, "gap", bars=0, endpoint=FEED)  # type: ignore[arg-type]


def test_feed_rollback_when_the_feed_is_down(backend: FakeBackend, admin: FakeAdmin) -> None:
    fault = FeedCorruption(backend, "nan", endpoint=FEED)  # type: ignore[arg-type]
    fault.inject()
    admin.down = True
    with pytest.raises(FaultRollbackError, match="got no answer"):
        fault.rollback()
    assert len(pending(backend.run_dir)) == 1


def test_symbols_are_asked_never_hard_coded(backend: FakeBackend, admin: FakeAdmin) -> None:
    assert symbols(backend, SYMBOLS) == ("KQZ",)  # type: ignore[arg-type]


# --- files ---------------------------------------------------------------------------------------

POSITIONS = {"positions": {"KQZ": 10}, "updated_at": "2026-01-05T14:30:00Z"}
HEADER = "ts,order_id,idempotency_key,symbol,side,qty,limit_price,status\n"


def write(backend: FakeBackend, rel: str, text: str) -> Path:
    path = backend.workdir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("mode", ["truncate", "garbage", "invalid_json"])
def test_file_corruption_modes_and_restore(backend: FakeBackend, mode: str) -> None:
    original = json.dumps(POSITIONS)
    path = write(backend, "artifacts/state/positions.json", original)
    path.chmod(0o640)
    fault = FileCorruption(backend, "artifacts/state/positions.json", mode)  # type: ignore[arg-type]
    with fault:
        corrupted = path.read_bytes()
        assert corrupted != original.encode()
        with pytest.raises(ValueError):
            json.loads(corrupted)
        assert fault.snapshot.read_text() == original
    assert path.read_text() == original
    assert path.stat().st_mode & 0o777 == 0o640


def test_truncate_keeps_bytes(backend: FakeBackend) -> None:
    path = write(backend, "configs/risk.yml", "max_daily_loss: 500\nmax_position: 100\n")
    with FileCorruption(backend, "configs/risk.yml", "truncate", keep_bytes=10):  # type: ignore[arg-type]
        assert path.read_text() == "max_daily_"


def test_restored_even_if_deleted_meanwhile(backend: FakeBackend) -> None:
    path = write(backend, "artifacts/state/positions.json", json.dumps(POSITIONS))
    with FileCorruption(backend, "artifacts/state/positions.json", "garbage"):  # type: ignore[arg-type]
        path.unlink()
        path.parent.rmdir()
    assert json.loads(path.read_text()) == POSITIONS


def test_duplicate_csv_rows_and_surgical_rollback(backend: FakeBackend) -> None:
    write(backend, "artifacts/orders/2026-01-04.csv", HEADER + "t,o0,k0,KQZ,buy,1,10,sent\n")
    path = write(backend, "artifacts/orders/2026-01-05.csv", HEADER + "t,o1,k1,KQZ,buy,1,10,sent\n"
                 "t,o2,k2,KQZ,sell,1,10,sent")  # no final newline
    fault = FileCorruption(backend, "artifacts/orders/*.csv", "duplicate_csv_rows", rows=2)  # type: ignore[arg-type]
    with fault:
        assert fault.resolved == "artifacts/orders/2026-01-05.csv"  # the newest match
        lines = path.read_text().splitlines()
        assert lines[-2:] == ["t,o1,k1,KQZ,buy,1,10,sent", "t,o2,k2,KQZ,sell,1,10,sent"]
        assert len(lines) == 5
        with path.open("a") as fh:  # the stack keeps writing orders meanwhile
            fh.write("t,o3,k3,KQZ,buy,1,10,sent\n")
    assert path.read_text() == HEADER + ("t,o1,k1,KQZ,buy,1,10,sent\nt,o2,k2,KQZ,sell,1,10,sent\n"
                                         "t,o3,k3,KQZ,buy,1,10,sent\n")


def test_duplicate_rows_need_a_data_row(backend: FakeBackend) -> None:
    write(backend, "orders.csv", HEADER)
    with pytest.raises(FaultInjectionError, match="no data rows"):
        FileCorruption(backend, "orders.csv", "duplicate_csv_rows").inject()  # type: ignore[arg-type]
    assert (backend.workdir / "orders.csv").read_text() == HEADER


def test_missing_file_and_escaping_paths_are_refused(backend: FakeBackend) -> None:
    with pytest.raises(FaultInjectionError, match="does not exist"):
        FileCorruption(backend, "nope.json", "garbage").inject()  # type: ignore[arg-type]
    with pytest.raises(FaultInjectionError, match="no file matches"):
        FileCorruption(backend, "artifacts/*.csv", "garbage").inject()  # type: ignore[arg-type]
    with pytest.raises(InputError, match="without '..'"):
        FileCorruption(backend, "../etc/passwd", "garbage")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="relative to the stack's working directory"):
        FileCorruption(backend, "/etc/passwd", "garbage")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="mode must be one of"):
        FileCorruption(backend, "x", "shred")  # type: ignore[arg-type]


def test_crashed_run_file_corruption_is_restored_by_cleanup(backend: FakeBackend) -> None:
    path = write(backend, "artifacts/state/positions.json", json.dumps(POSITIONS))
    fault = FileCorruption(backend, "artifacts/state/positions.json", "invalid_json")  # type: ignore[arg-type]
    fault.inject()
    del fault  # the run "crashes": only the ledger and the snapshot remain
    (entry,) = pending(backend.run_dir)
    rebuilt = Fault.from_record(backend, entry.record, ctx=FaultContext())  # type: ignore[arg-type]
    assert isinstance(rebuilt, FileCorruption) and rebuilt.resolved == "artifacts/state/positions.json"
    report = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert report.ok and json.loads(path.read_text()) == POSITIONS
