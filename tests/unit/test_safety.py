"""Live refusal, dry run and halt."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import SafetyRefusal
from harness.faults import FaultContext, FullOutage, Kill, LinkDown, Toxic, pending
from harness.safety import DryRun, SafetyPolicy, clear_halt, halt, stack_mode
from tests.unit.fake_backend import FakeBackend


def test_mode_comes_from_the_environment_or_the_stack_description(tmp_path: Path) -> None:
    stack = FakeBackend(tmp_path).stack
    assert stack_mode(stack, {}).mode == "lab" and "default" in stack_mode(stack, {}).source
    assert stack_mode(stack, {"TR_MODE": "paper"}).mode == "paper"
    live = stack_mode(stack, {"TR_MODE": "LIVE"})
    assert live.is_live and live.source == "environment TR_MODE"


def test_any_source_saying_live_wins(tmp_path: Path) -> None:
    stack = FakeBackend(tmp_path / "a", mode_env={"TR_MODE": "live"}).stack
    mode = stack_mode(stack, {"TR_MODE": "lab"})
    assert mode.is_live and mode.source == "services.traderunner.x-drill.local.env.TR_MODE"


def test_live_refused_without_override(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    ctx = FaultContext(safety=SafetyPolicy(environ={"TR_MODE": "live"}))
    with pytest.raises(SafetyRefusal) as info:
        Kill(backend, "broker", ctx=ctx).inject()  # type: ignore[arg-type]
    text = str(info.value)
    assert "its mode is live (environment TR_MODE)" in text and "pass --allow-live to `drill run`" in text
    assert "--confirm" not in text  # `drill run` has no such option: the hint names only real ones
    assert backend.calls == [] and pending(backend.run_dir) == ()
    assert info.value.exit_code == 4


@pytest.mark.parametrize("confirmation", [None, "", "MOCKSTACK", "yes"])
def test_live_override_needs_the_typed_stack_name(tmp_path: Path, confirmation: str | None) -> None:
    backend = FakeBackend(tmp_path)
    ctx = FaultContext(safety=SafetyPolicy(allow_live=True, confirmation=confirmation, environ={"TR_MODE": "live"}))
    with pytest.raises(SafetyRefusal, match="typed confirmation does not match"):
        Kill(backend, "broker", ctx=ctx).inject()  # type: ignore[arg-type]
    assert backend.calls == []


def test_live_with_override_and_confirmation_proceeds(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    ctx = FaultContext(safety=SafetyPolicy(allow_live=True, confirmation="mockstack", environ={"TR_MODE": "live"}))
    with Kill(backend, "broker", ctx=ctx):  # type: ignore[arg-type]
        pass
    assert ("kill", "broker") in backend.calls


def test_default_policy_reads_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TR_MODE", "live")
    with pytest.raises(SafetyRefusal):
        LinkDown(FakeBackend(tmp_path), "broker").inject()  # type: ignore[arg-type]


def test_dry_run_of_every_kind_touches_nothing(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path, mode_env={"TR_MODE": "live"})  # even a live stack: nothing is touched
    dry = DryRun()
    ctx = FaultContext(dry_run=dry)
    faults = [LinkDown(backend, "broker", ctx=ctx), Toxic(backend, "broker", "timeout", ctx=ctx),  # type: ignore[arg-type]
              Kill(backend, "broker", ctx=ctx), FullOutage(backend, ctx=ctx)]  # type: ignore[arg-type]
    for fault in faults:
        with fault:
            pass
    assert backend.calls == []
    assert not (backend.run_dir / "ledger.jsonl").exists()
    assert len(dry.planned) == 8
    assert [p.target for p in dry.planned[::2]] == [
        "link broker", "link broker (downstream)", "service broker",
        "services broker, marketdata, traderunner, dashboard"]


def test_halt_blocks_new_faults_and_reverts_pending_ones(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    LinkDown(backend, "broker").inject()  # type: ignore[arg-type]
    result = halt(backend.run_dir, backend, reason="trader asked to stop")  # type: ignore[arg-type]
    assert result.halt_file == backend.run_dir / "HALT"
    assert "trader asked to stop" in result.halt_file.read_text()
    assert result.cleanup is not None and result.cleanup.ok and len(result.cleanup.rolled_back) == 1
    assert backend.toxiproxy.by_name["drill_broker"].enabled
    with pytest.raises(SafetyRefusal, match="halt file .* is present") as info:
        Kill(backend, "broker").inject()  # type: ignore[arg-type]
    assert "drill resume" in str(info.value)
    assert clear_halt(backend.run_dir) == backend.run_dir / "HALT"
    assert clear_halt(backend.run_dir) is None
    with Kill(backend, "broker"):  # type: ignore[arg-type]
        pass


def test_global_halt_blocks_every_run(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    other_run = backend.run_dir.parent / "run-2"
    result = halt(other_run, None, reason="market open", everywhere=True)
    assert result.halt_file == backend.run_dir.parent / "HALT" and result.cleanup is None
    assert "run `drill cleanup`" in result.summary()
    with pytest.raises(SafetyRefusal, match="market open"):
        Kill(backend, "broker").inject()  # type: ignore[arg-type]
    clear_halt(other_run, everywhere=True)
    Kill(backend, "broker").inject()  # type: ignore[arg-type]


def test_rollback_is_never_blocked_by_a_halt(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    fault = Kill(backend, "broker")  # type: ignore[arg-type]
    fault.inject()
    halt(backend.run_dir, None)
    fault.rollback()
    assert ("start", "broker") in backend.calls


def test_a_stack_whose_mode_cannot_be_determined_is_refused(tmp_path: Path) -> None:
    import dataclasses

    backend = FakeBackend(tmp_path)
    backend.stack = dataclasses.replace(backend.stack, mode=None)  # no x-drill.mode in the stack file
    with pytest.raises(SafetyRefusal, match="cannot be determined") as info:
        Kill(backend, "broker").inject()  # type: ignore[arg-type]
    assert "x-drill: {mode: {env:" in (info.value.hint or "") and info.value.exit_code == 4
    assert backend.calls == [] and pending(backend.run_dir) == ()


def _watched(tmp_path: Path):  # type: ignore[no-untyped-def]
    from harness.clock import Timeline
    from harness.safety import FaultWatch

    backend = FakeBackend(tmp_path)
    timeline = Timeline()
    faults: list[object] = []
    policy = SafetyPolicy()
    watch = FaultWatch(backend, policy, backend.run_dir, lambda: faults, timeline, every_s=0.0)  # type: ignore[arg-type]
    return backend, timeline, faults, watch


def test_a_fault_rolled_back_by_another_process_ends_the_wait_saying_so(tmp_path: Path) -> None:
    import json

    from harness.errors import FaultRevertedOutside
    from harness.faults.ledger import Ledger

    backend, timeline, faults, watch = _watched(tmp_path)
    kill = Kill(backend, "broker")  # type: ignore[arg-type]
    kill.inject()
    faults.append(kill)
    watch.check()  # in place: nothing to say
    Ledger(backend.run_dir).append("rolled_back", kill.record())
    lines = (backend.run_dir / "ledger.jsonl").read_text().splitlines()
    last = json.loads(lines[-1]) | {"pid": 999_999_999}  # as written by `drill cleanup --force` elsewhere
    (backend.run_dir / "ledger.jsonl").write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    with pytest.raises(FaultRevertedOutside, match="rolled back by process 999999999") as err:
        watch.check()
    assert "cannot be judged" in str(err.value)
    assert any("fault reverted from outside" in e["label"] for e in timeline.to_dict()["events"])


def test_a_proxy_enabled_again_behind_the_drills_back_is_noticed(tmp_path: Path) -> None:
    from harness.errors import FaultRevertedOutside

    backend, _, faults, watch = _watched(tmp_path)
    down = LinkDown(backend, "broker")  # type: ignore[arg-type]
    down.inject()
    faults.append(down)
    watch.check()
    backend.toxiproxy.by_name["drill_broker"].enabled = True  # an operator, or a restarted Toxiproxy
    with pytest.raises(FaultRevertedOutside, match="proxy drill_broker was enabled again"):
        watch.check()


def test_a_halt_during_a_wait_is_reported_as_the_halt(tmp_path: Path) -> None:
    from harness.errors import DrillHalted

    backend, _, faults, watch = _watched(tmp_path)
    down = LinkDown(backend, "broker")  # type: ignore[arg-type]
    down.inject()
    faults.append(down)
    halt(backend.run_dir, backend, reason="market open")  # type: ignore[arg-type]
    with pytest.raises(DrillHalted, match="market open"):
        watch.check()
