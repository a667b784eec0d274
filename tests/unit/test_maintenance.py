"""`drill cleanup` / `drill halt` decide by the run's owner: live runs are never touched, finished ones stay quiet."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from harness.backends.reaper import owner_alive, owner_record, proc_start
from harness.faults.ledger import Ledger, pending
from harness.maintenance import Liveness, cleanup_runs, find_runs, halt_runs, resume_runs

ROOT = Path(__file__).resolve().parents[2]
DEAD_OWNER = {"pid": 999_999_999, "start": "1"}  # beyond pid_max: no such process


def make_run(root: Path, name: str, *, owner: object, status: str = "up", pending_kill: bool = False) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    state = {
        "backend": "process",
        "run_id": f"drill-test-{uuid.uuid4().hex[:8]}",  # no process carries this label
        "stack_file": str(ROOT / "docker-compose.yml"),
        "status": status,
        "owner": owner,
        "env": {},
        "ports": {},
        "links": {},
        "services": {},
    }
    (run_dir / "stack.json").write_text(json.dumps(state))
    if pending_kill:
        record = {"kind": "kill", "fault_id": "f1", "params": {"service": "broker"}, "description": "kill broker"}
        Ledger(run_dir).append("inject", record)
        Ledger(run_dir).append("injected", record)
    return run_dir


def test_owner_is_pid_plus_start_time_so_a_recycled_pid_is_not_the_owner() -> None:
    me = owner_record()
    assert me["pid"] == os.getpid() and me["start"] == proc_start(os.getpid())
    assert owner_alive(me) is True
    assert owner_alive({"pid": os.getpid(), "start": "0"}) is False  # same pid, another process
    assert owner_alive(DEAD_OWNER) is False
    assert owner_alive(None) is None  # detached: `drill stack up`


def test_runs_are_classified_by_their_owner(tmp_path: Path) -> None:
    make_run(tmp_path, "a-live", owner=owner_record())
    make_run(tmp_path, "b-dead", owner=DEAD_OWNER)
    make_run(tmp_path, "c-manual", owner=None)
    (tmp_path / "d-corrupt").mkdir()
    (tmp_path / "d-corrupt" / "stack.json").write_text("{not json")
    kinds = [(r.run_dir.name, r.liveness) for r in find_runs([], tmp_path)]
    assert kinds == [
        ("a-live", Liveness.LIVE),
        ("b-dead", Liveness.DEAD),
        ("c-manual", Liveness.DETACHED),
        ("d-corrupt", Liveness.CORRUPT),
    ]


def test_cleanup_never_touches_a_live_run(tmp_path: Path) -> None:
    live = make_run(tmp_path, "live", owner=owner_record(), pending_kill=True)
    before = (live / "ledger.jsonl").read_bytes()
    outcome = cleanup_runs(find_runs([], tmp_path))
    assert outcome.exit_code == 0
    assert (live / "ledger.jsonl").read_bytes() == before and len(pending(live)) == 1
    assert any("live (drill pid" in line and "left alone" in line for line in outcome.lines)


def test_cleanup_force_on_a_live_run_asks_and_a_no_leaves_it(tmp_path: Path) -> None:
    live = make_run(tmp_path, "live", owner=owner_record(), pending_kill=True)
    asked: list[str] = []
    outcome = cleanup_runs(find_runs([live], tmp_path), force=True, confirm=lambda q: asked.append(q) is not None)
    assert len(asked) == 1 and str(live) in asked[0] and "is live" in asked[0]
    assert len(pending(live)) == 1 and any("left alone" in line for line in outcome.lines)


def test_cleanup_tears_down_a_dead_run_without_restarting_anything(tmp_path: Path) -> None:
    dead = make_run(tmp_path, "dead", owner=DEAD_OWNER, pending_kill=True)
    outcome = cleanup_runs(find_runs([], tmp_path))
    assert outcome.exit_code == 0
    assert pending(dead) == ()  # closed out: its target went with the stack
    assert json.loads((dead / "stack.json").read_text())["status"] == "down"
    assert any("its drill process is gone" in x and "1 fault(s) gone with the stack" in x for x in outcome.lines)
    again = cleanup_runs(find_runs([], tmp_path))
    assert again.lines == ("1 finished run(s): nothing left behind",)


def test_long_gone_runs_are_one_line(tmp_path: Path) -> None:
    for i in range(30):
        make_run(tmp_path, f"old-{i:02}", owner=DEAD_OWNER, status="down")
    outcome = cleanup_runs(find_runs([], tmp_path))
    assert outcome.lines == ("30 finished run(s): nothing left behind",) and outcome.exit_code == 0


def test_an_unreadable_ledger_fails_cleanup_with_exit_2_naming_the_line(tmp_path: Path) -> None:
    dead = make_run(tmp_path, "dead", owner=None, pending_kill=False)
    with (dead / "ledger.jsonl").open("a") as fh:
        fh.write('{"seq": 1, "action": "injec\n')
    outcome = cleanup_runs(find_runs([dead], tmp_path))
    assert outcome.exit_code == 2
    assert any("NOT REVERTED: ledger.jsonl line 1" in line for line in outcome.lines)


def test_halt_covers_live_runs_and_their_coming_scenarios_and_leaves_finished_runs_alone(tmp_path: Path) -> None:
    live_root = tmp_path / "report-1" / "runs"
    live = make_run(live_root, "scenario-a", owner=owner_record())
    done = make_run(tmp_path / "report-0" / "runs", "scenario-z", owner=DEAD_OWNER, status="down")
    outcome = halt_runs(find_runs([], tmp_path), reason="market open")
    assert outcome.exit_code == 0, outcome.lines
    assert (live / "HALT").read_text().strip().endswith("market open")
    assert (live_root / "HALT").exists()  # the run's next scenarios get new run dirs under this root
    assert not (done / "HALT").exists() and not (done.parent / "HALT").exists()
    assert resume_runs(find_runs([], tmp_path)).lines == (f"removed {live / 'HALT'}", f"removed {live_root / 'HALT'}")


def test_halt_with_no_live_run_says_so(tmp_path: Path) -> None:
    make_run(tmp_path, "old", owner=DEAD_OWNER, status="down")
    outcome = halt_runs(find_runs([], tmp_path), reason="")
    assert outcome.lines == ("no live run: nothing to halt (finished runs are left as they are)",)
    assert not list(tmp_path.rglob("HALT"))


def test_a_named_run_dir_without_a_stack_is_bad_input(tmp_path: Path) -> None:
    from harness.errors import InputError

    with pytest.raises(InputError, match="no stack was started"):
        find_runs([tmp_path / "nowhere"], tmp_path)
