"""Every registered fault goes through the same checks: record round trip, describe, dry run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import harness.backends.kubernetes.node_loss  # noqa: F401 - registers node_loss (imported on use elsewhere)
from harness.faults import FAULTS, Fault, FaultContext, FaultState
from harness.safety import DryRun
from tests.unit.fake_backend import FEED, FILL_LATENCY, POSITION, REJECT_RATE, FakeBackend

EXAMPLES: dict[str, dict[str, object]] = {
    "link_down": {"link": "broker"},
    "toxic": {"link": "broker", "toxic": "latency", "latency": 250},
    "kill": {"service": "broker"},
    "stop": {"service": "broker"},
    "pause": {"service": "broker"},
    "restart": {"service": "broker"},
    "full_outage": {},
    "feed_corruption": {"corruption": "nan", "symbol": "KQZ", "endpoint": FEED},
    "file_corruption": {"path": "artifacts/state/positions.json", "mode": "garbage"},
    "price_shock": {"endpoint": FEED},
    "injected_position": {"symbol": "KQZ", "qty": 25, "endpoint": POSITION},
    "reject_rate_spike": {"rate": 0.5, "endpoint": REJECT_RATE},
    "latency_spike": {"ms": 800, "endpoint": FILL_LATENCY},
    "node_loss": {"node": "drill-node2", "services": ["broker", "dashboard"]},
}


def build(kind: str, backend: FakeBackend, ctx: FaultContext | None = None) -> Fault:
    return FAULTS[kind](backend, ctx=ctx, **EXAMPLES[kind])  # type: ignore[arg-type]


def test_every_fault_has_an_example() -> None:
    assert set(EXAMPLES) == set(FAULTS)
    for kind, cls in FAULTS.items():
        assert cls.kind == kind


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_record_round_trip(kind: str, tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    fault = build(kind, backend)
    record = json.loads(json.dumps(fault.record()))  # what the ledger stores
    rebuilt = Fault.from_record(backend, record)  # type: ignore[arg-type]
    assert type(rebuilt) is type(fault)
    assert rebuilt.fault_id == fault.fault_id
    assert rebuilt.params() == fault.params()
    assert rebuilt.describe() == fault.describe()
    assert rebuilt.state is FaultState.INJECTED  # rebuilt to be rolled back
    assert backend.calls == []


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_describe_names_what_target_and_expected_effect(kind: str, tmp_path: Path) -> None:
    fault = build(kind, FakeBackend(tmp_path))
    text = fault.describe()
    assert text.startswith(f"{kind}: ") and f" on {fault.target}; expected: " in text
    assert fault.expected_effect and fault.action


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_dry_run_touches_nothing(kind: str, tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    dry = DryRun()
    with build(kind, backend, FaultContext(dry_run=dry)):
        pass
    assert backend.calls == []
    assert [p.action for p in dry.planned] == ["inject", "rollback"]
    assert not list(backend.run_dir.iterdir())


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_rollback_of_a_fault_never_injected_is_a_no_op(kind: str, tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    fault = build(kind, backend)
    fault.rollback()
    fault.rollback()
    assert backend.calls == [] and fault.state is FaultState.NEW
