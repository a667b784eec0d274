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


def test_a_corrupt_state_file_says_where(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text("{", encoding="utf-8")
    with pytest.raises(BackendError, match="corrupt stack state"):
        read_state(tmp_path)
