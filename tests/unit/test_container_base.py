"""The part the docker and kubernetes backends share: stack.json round trip, dead-run bookkeeping (no runtime)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.backends.base import LinkInfo, ServiceState
from harness.backends.container_base import dead_run_state, interpolate, mark_reaped, read_state
from harness.backends.docker import DockerBackend
from harness.backends.kubernetes import KubernetesBackend
from harness.backends.reaper import owner_record
from harness.errors import BackendError
from harness.stack import load_stack

ROOT = Path(__file__).resolve().parents[2]
STACK = load_stack(ROOT / "docker-compose.yml")
DEAD_OWNER = {"pid": 2**22 - 3, "start": "1"}


def _state(run_dir: Path, **fields: object) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "stack.json").write_text(json.dumps({"status": "up", **fields}), encoding="utf-8")
    return run_dir


def test_interpolate_resolves_as_compose_does() -> None:
    env = {"A": "x", "EMPTY": ""}
    assert interpolate("${A}-${B:-d}-${EMPTY:-e}-${C-f}-${C}", env) == "x-d-e-f-"


@pytest.mark.parametrize("cls", [DockerBackend, KubernetesBackend])
def test_stack_json_round_trips_the_shared_and_the_runtime_fields(cls: type, tmp_path: Path) -> None:
    backend = cls(STACK, tmp_path / "run", run_id="drill-abc", env={"X": "1"})
    backend.ports = {"broker.http": 41000}
    backend.links = {"md": LinkInfo("md", "md", "toxiproxy:8667", "marketdata:8101")}
    backend.status = "up"
    backend._mark(["broker"], ServiceState.DEAD)
    again = cls.attach(tmp_path / "run")
    assert type(again) is cls
    assert (again.run_id, again.env_overrides, again.status) == ("drill-abc", {"X": "1"}, "up")
    assert again.ports == backend.ports
    assert again.links == backend.links
    assert again._intended["broker"] is ServiceState.DEAD
    assert again.owner == owner_record()
    assert again.health_timeout == cls.default_health_timeout
    if cls is DockerBackend:
        assert again.project == backend.project
    else:
        assert again.namespace == backend.namespace


def test_a_run_is_dead_when_its_owner_is_gone_or_its_state_says_down_or_is_missing(tmp_path: Path) -> None:
    assert dead_run_state(str(_state(tmp_path / "live", owner=owner_record()))) is None
    assert dead_run_state(str(_state(tmp_path / "detached", owner=None))) is None
    assert dead_run_state(str(_state(tmp_path / "crashed", owner=DEAD_OWNER))) is not None
    assert dead_run_state(str(tmp_path / "nothing")) == {"status": "gone"}
    assert dead_run_state("") == {"status": "gone"}


def test_a_directory_reused_by_another_run_makes_the_old_resources_orphans(tmp_path: Path) -> None:
    run_dir = _state(tmp_path / "reused", owner=owner_record(), namespace="drill-new")
    assert dead_run_state(str(run_dir), expect={"namespace": "drill-new"}) is None
    assert dead_run_state(str(run_dir), expect={"namespace": "drill-old"}) == {"status": "gone"}


def test_mark_reaped_says_down_and_keeps_a_gone_state_untouched(tmp_path: Path) -> None:
    run_dir = _state(tmp_path / "crashed", owner=DEAD_OWNER, keeper={"pid": 1})
    data = dead_run_state(str(run_dir))
    assert data is not None
    mark_reaped(str(run_dir), data, keeper=None)
    assert read_state(run_dir)["status"] == "down" and read_state(run_dir)["keeper"] is None
    mark_reaped(str(tmp_path / "nothing"), {"status": "gone"})
    assert not (tmp_path / "nothing").exists()


def test_reaping_a_dead_run_restores_what_outlives_its_stack_and_closes_out_the_rest(tmp_path: Path) -> None:
    """A corrupted file of the run directory is restored from its snapshot; a link fault (its Toxiproxy went with
    the stack) is closed out. Nothing is left pending, and the notes name what was rolled back."""
    from harness.faults.base import FaultContext
    from harness.faults.data import FileCorruption
    from harness.faults.ledger import Ledger, pending
    from harness.faults.network import LinkDown

    run_dir = tmp_path / "crashed"
    backend = DockerBackend(STACK, run_dir, run_id="drill-dead")
    backend.status = "up"
    backend.links = {"marketdata": LinkInfo("marketdata", "marketdata", "toxiproxy:8667", "marketdata:7200")}
    backend._save()
    state = tmp_path / "crashed" / "workdir" / "artifacts" / "state" / "positions.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"BTC": 1}', encoding="utf-8")
    ctx = FaultContext(run_dir=run_dir)
    FileCorruption(backend, "artifacts/state/positions.json", "garbage", ctx=ctx).inject()
    Ledger(run_dir).append("injected", LinkDown(backend, "marketdata", ctx=ctx).record())
    assert state.read_bytes() != b'{"BTC": 1}' and len(pending(run_dir)) == 2
    data = json.loads((run_dir / "stack.json").read_text())
    data["owner"] = DEAD_OWNER  # the drill process died with both faults in place
    (run_dir / "stack.json").write_text(json.dumps(data))
    reaped = dead_run_state(str(run_dir))
    assert reaped is not None
    notes = mark_reaped(str(run_dir), reaped)
    assert state.read_text() == '{"BTC": 1}'
    assert pending(run_dir) == ()
    assert len(notes) == 1 and "rolled back" in notes[0] and "positions.json" in notes[0], notes


def test_a_corrupt_state_file_says_where(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text("{", encoding="utf-8")
    with pytest.raises(BackendError, match="corrupt stack state"):
        read_state(tmp_path)
