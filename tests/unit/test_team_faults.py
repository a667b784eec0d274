"""A team's own fault class registers itself, and `drill cleanup` rebuilds it from the ledger after a crash."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import FaultError, InputError
from harness.faults import FAULTS, cleanup, pending
from harness.faults.registry import register_fault
from tests.unit.fake_backend import FakeBackend

TEAM_FAULT = textwrap.dedent('''
    from typing import Self
    from harness.faults import Fault, register_fault

    @register_fault
    class DeskPhoneDown(Fault):
        """The trading desk's phone line is cut (the team's own fault)."""
        kind = "desk_phone_down"
        events: list[str] = []

        def __init__(self, backend, line, *, ctx=None, fault_id=None):
            super().__init__(backend, ctx=ctx, fault_id=fault_id)
            self.line = line

        @property
        def target(self): return f"desk line {self.line}"
        @property
        def action(self): return "cut the line"
        @property
        def expected_effect(self): return "the desk escalates by chat"
        def params(self): return {"line": self.line}

        @classmethod
        def from_params(cls, backend, params, *, ctx, fault_id) -> Self:
            return cls(backend, params.text("line"), ctx=ctx, fault_id=fault_id)

        def _inject(self): DeskPhoneDown.events.append("cut " + self.line)
        def _rollback(self): DeskPhoneDown.events.append("restored " + self.line)
''')


@pytest.fixture
def team_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "team_faults_mod.py").write_text(TEAM_FAULT)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "team_faults_mod"
    FAULTS.pop("desk_phone_down", None)
    sys.modules.pop("team_faults_mod", None)


def test_a_crashed_runs_team_fault_is_rebuilt_from_its_module_and_rolled_back(
    tmp_path: Path, team_module: str
) -> None:
    backend = FakeBackend(tmp_path)
    module = __import__(team_module)
    module.DeskPhoneDown(backend, "desk-2").inject()
    assert [p.record["module"] for p in pending(backend.run_dir)] == [team_module]
    # the drill process dies; a new process (empty registry, module not yet imported) runs `drill cleanup`
    FAULTS.pop("desk_phone_down")
    sys.modules.pop(team_module)
    report = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert report.ok, report.summary()
    assert sys.modules[team_module].DeskPhoneDown.events == ["restored desk-2"]
    assert pending(backend.run_dir) == ()


def test_an_unknown_kind_whose_module_is_gone_is_named(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    from harness.faults.base import Fault

    with pytest.raises(FaultError, match="its module 'gone_team_module' failed to import"):
        Fault.from_record(backend, {"kind": "nope", "fault_id": "f1", "module": "gone_team_module",  # type: ignore[arg-type]
                                    "params": {}, "learned": {}})


def test_two_classes_cannot_claim_one_kind(team_module: str) -> None:
    module = __import__(team_module)

    class Impostor(module.DeskPhoneDown):  # type: ignore[name-defined,misc]
        pass

    with pytest.raises(InputError, match="already registered"):
        register_fault(Impostor)
