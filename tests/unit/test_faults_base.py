"""The fault lifecycle on every exit path: the guarantees of harness.faults.base."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import pytest

from harness.clock import EventKind, ManualClock, Timeline
from harness.errors import FaultInjectionError, FaultRollbackError, SafetyRefusal, ToxiproxyError
from harness.faults import Fault, FaultContext, FaultState, LinkDown, pending
from harness.faults.base import Params, ParamValue
from harness.faults.ledger import Ledger
from harness.safety import DryRun
from tests.unit.fake_backend import FakeBackend


class TwoStep(Fault):
    """Applies two changes; can be told to fail after the first (half-applied) or on rollback."""

    kind = "two_step"

    def __init__(self, backend: FakeBackend, *, fail_inject_after: int | None = None, interrupt: bool = False,
                 rollback_failures: int = 0, ctx: FaultContext | None = None, fault_id: str | None = None) -> None:
        super().__init__(backend, ctx=ctx, fault_id=fault_id)  # type: ignore[arg-type]
        self.fake = backend
        self.fail_inject_after = fail_inject_after
        self.interrupt = interrupt
        self.rollback_failures = rollback_failures
        self.applied: list[str] = []
        self.rollbacks = 0

    target = "service broker"  # type: ignore[assignment]
    action = "two changes"  # type: ignore[assignment]
    expected_effect = "something visible"  # type: ignore[assignment]

    def params(self) -> dict[str, ParamValue]:
        return {}

    @classmethod
    def from_params(cls, backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:  # type: ignore[no-untyped-def]
        return cls(backend, ctx=ctx, fault_id=fault_id)

    def _inject(self) -> None:
        for step in ("first", "second"):
            if self.fail_inject_after is not None and len(self.applied) == self.fail_inject_after:
                if self.interrupt:
                    raise KeyboardInterrupt
                raise ToxiproxyError("add toxic: Toxiproxy answered HTTP 500: boom")
            self.fake.calls.append(("apply", step))
            self.applied.append(step)

    def _rollback(self) -> None:
        self.rollbacks += 1
        if self.rollback_failures:
            self.rollback_failures -= 1
            raise ToxiproxyError("remove toxic: Toxiproxy did not answer")
        self.fake.calls.append(("revert", tuple(self.applied)))
        self.applied.clear()


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path)


def actions(backend: FakeBackend) -> list[str]:
    return [e.action for e in Ledger(backend.run_dir).read().entries]


def test_with_block_injects_then_rolls_back_and_records_everything(backend: FakeBackend) -> None:
    timeline = Timeline(ManualClock())
    fault = TwoStep(backend, ctx=FaultContext(timeline=timeline))
    with fault as entered:
        assert entered is fault and fault.state is FaultState.INJECTED
        assert fault.applied == ["first", "second"]
    assert fault.state is FaultState.ROLLED_BACK and fault.applied == []
    assert actions(backend) == ["inject", "injected", "rolled_back"]
    assert [e.kind for e in timeline.events] == [EventKind.FAULT_INJECTED, EventKind.FAULT_ROLLED_BACK]
    assert timeline.events[0].details["fault_id"] == fault.fault_id
    assert pending(backend.run_dir) == ()


def test_exception_inside_the_block_still_rolls_back(backend: FakeBackend) -> None:
    fault = TwoStep(backend)
    with pytest.raises(AssertionError, match="step failed"), fault:
        raise AssertionError("step failed")
    assert fault.rollbacks == 1 and fault.applied == []
    assert pending(backend.run_dir) == ()


def test_keyboard_interrupt_inside_the_block_still_rolls_back(backend: FakeBackend) -> None:
    fault = TwoStep(backend)
    with pytest.raises(KeyboardInterrupt), fault:
        raise KeyboardInterrupt
    assert fault.rollbacks == 1 and fault.applied == []


def test_inject_failing_half_way_rolls_back_what_was_applied(backend: FakeBackend) -> None:
    fault = TwoStep(backend, fail_inject_after=1)
    body_ran = False
    with pytest.raises(FaultInjectionError) as info, fault:
        body_ran = True
    assert not body_ran
    assert ("revert", ("first",)) in backend.calls
    text = str(info.value)
    assert "could not inject two_step" in text and "HTTP 500: boom" in text
    assert "whatever was applied has been rolled back" in text
    assert isinstance(info.value.__cause__, ToxiproxyError)
    assert actions(backend) == ["inject", "inject_failed", "rolled_back"]
    assert pending(backend.run_dir) == ()


def test_direct_inject_failure_rolls_back_too(backend: FakeBackend) -> None:
    """Steps call inject() directly (then yield): a failed inject must not rely on the caller."""
    fault = TwoStep(backend, fail_inject_after=1)
    with pytest.raises(FaultInjectionError):
        fault.inject()
    assert fault.applied == [] and fault.state is FaultState.ROLLED_BACK


def test_keyboard_interrupt_during_inject_rolls_back_and_propagates(backend: FakeBackend) -> None:
    fault = TwoStep(backend, fail_inject_after=1, interrupt=True)
    with pytest.raises(KeyboardInterrupt), fault:
        pass
    assert fault.applied == [] and fault.rollbacks == 1


def test_half_applied_inject_whose_rollback_fails_stays_pending(backend: FakeBackend) -> None:
    fault = TwoStep(backend, fail_inject_after=1, rollback_failures=1)
    with pytest.raises(FaultInjectionError) as info:
        fault.inject()
    assert "rolling back what was applied FAILED" in str(info.value)
    assert any("rolling the half-applied fault back failed" in n for n in info.value.__notes__)
    assert [p.fault_id for p in pending(backend.run_dir)] == [fault.fault_id]


def test_rollback_twice_is_a_no_op_the_second_time(backend: FakeBackend) -> None:
    fault = TwoStep(backend)
    fault.inject()
    fault.rollback()
    fault.rollback()
    assert fault.rollbacks == 1
    assert actions(backend) == ["inject", "injected", "rolled_back"]


def test_rollback_without_inject_is_a_no_op(backend: FakeBackend) -> None:
    fault = TwoStep(backend)
    fault.rollback()
    assert fault.rollbacks == 0 and backend.calls == [] and actions(backend) == []


def test_rollback_failure_is_raised_chained_and_stays_pending(backend: FakeBackend) -> None:
    fault = TwoStep(backend, rollback_failures=1)
    with pytest.raises(FaultRollbackError) as info, fault:
        pass
    assert isinstance(info.value.__cause__, ToxiproxyError)
    assert "drill cleanup" in str(info.value)
    assert actions(backend)[-1] == "rollback_failed"
    assert [p.fault_id for p in pending(backend.run_dir)] == [fault.fault_id]
    fault.rollback()  # a retry works and clears it
    assert fault.state is FaultState.ROLLED_BACK and pending(backend.run_dir) == ()


def test_rollback_failure_never_masks_the_original_exception(backend: FakeBackend) -> None:
    fault = TwoStep(backend, rollback_failures=1)
    with pytest.raises(ValueError, match="the real problem") as info, fault:
        raise ValueError("the real problem")
    (note,) = info.value.__notes__
    assert "rollback failed" in note and "Toxiproxy did not answer" in note


def test_inject_twice_is_refused(backend: FakeBackend) -> None:
    fault = TwoStep(backend)
    fault.inject()
    with pytest.raises(FaultInjectionError, match="already injected"):
        fault.inject()
    fault.rollback()
    fault.inject()  # after a rollback it may be injected again
    fault.rollback()


def test_dry_run_touches_nothing(backend: FakeBackend) -> None:
    dry = DryRun()
    timeline = Timeline(ManualClock())
    fault = LinkDown(backend, "broker", ctx=FaultContext(dry_run=dry, timeline=timeline))  # type: ignore[arg-type]
    with fault:
        pass
    assert backend.calls == []
    assert not (backend.run_dir / "ledger.jsonl").exists()
    assert [p.action for p in dry.planned] == ["inject", "rollback"]
    assert dry.lines()[0].startswith("[dry-run] would inject: link_down: disconnect")
    assert [e.kind for e in timeline.events] == [EventKind.NOTE]


def test_live_stack_is_refused_before_anything_is_touched(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path, mode_env={"TR_MODE": "live"})
    fault = TwoStep(backend)
    with pytest.raises(SafetyRefusal, match="its mode is live"):
        fault.inject()
    assert backend.calls == [] and actions(backend) == [] and fault.state is FaultState.NEW


def test_halt_file_blocks_new_injections(backend: FakeBackend) -> None:
    (backend.run_dir / "HALT").write_text("stop everything\n")
    with pytest.raises(SafetyRefusal, match="stop everything"):
        TwoStep(backend).inject()
    assert backend.calls == []


def test_unwritable_ledger_means_no_injection(backend: FakeBackend, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    fault = TwoStep(backend, ctx=FaultContext(run_dir=not_a_dir / "run"))
    with pytest.raises(FaultInjectionError, match="cannot write the fault ledger"):
        fault.inject()
    assert backend.calls == [] and fault.state is FaultState.NEW
