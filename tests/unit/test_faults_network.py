"""Network faults against a fake Toxiproxy adapter: the calls made and the parameter validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import FaultRollbackError, InputError
from harness.faults import TOXICS, LinkDown, Toxic
from harness.faults.network import latency
from tests.unit.fake_backend import FakeBackend


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path)


def test_link_down_disables_and_rollback_enables(backend: FakeBackend) -> None:
    with LinkDown(backend, "broker"):  # type: ignore[arg-type]
        assert backend.toxiproxy.by_name["drill_broker"].enabled is False
    assert backend.toxiproxy.by_name["drill_broker"].enabled is True
    assert [c for c in backend.calls if c[0].startswith("toxiproxy")] == [
        ("toxiproxy.set_enabled", "drill_broker", False), ("toxiproxy.set_enabled", "drill_broker", True)]


def test_toxic_adds_exactly_one_named_toxic_and_removes_it(backend: FakeBackend) -> None:
    fault = Toxic(backend, "broker", "latency", latency=500, stream="upstream")  # type: ignore[arg-type]
    with fault:
        (name,) = backend.toxiproxy.by_name["drill_broker"].toxics
        assert name == f"drill_{fault.fault_id}"
    assert backend.toxiproxy.by_name["drill_broker"].toxics == {}
    add = next(c for c in backend.calls if c[0] == "toxiproxy.add_toxic")
    assert add == ("toxiproxy.add_toxic", "drill_broker", fault.toxic_name, "latency", "upstream", 1.0,
                   {"latency": 500, "jitter": 0})


@pytest.mark.parametrize(
    ("toxic", "attrs", "sent_type", "sent"),
    [
        ("jitter", {"jitter": 100}, "latency", {"jitter": 100, "latency": 100}),
        ("jitter", {"jitter": 50, "latency": 200}, "latency", {"jitter": 50, "latency": 200}),
        ("timeout", {}, "timeout", {"timeout": 0}),
        ("reset_peer", {"timeout": 10}, "reset_peer", {"timeout": 10}),
        ("bandwidth", {"rate": 1}, "bandwidth", {"rate": 1}),
        ("slicer", {"average_size": 8, "delay": 10}, "slicer", {"average_size": 8, "size_variation": 0, "delay": 10}),
        ("limit_data", {"bytes": 1024}, "limit_data", {"bytes": 1024}),
        ("slow_close", {"delay": 2000}, "slow_close", {"delay": 2000}),
    ],
)
def test_every_toxic_type(backend: FakeBackend, toxic: str, attrs: dict[str, int], sent_type: str,
                          sent: dict[str, int]) -> None:
    with Toxic(backend, "broker", toxic, **attrs):  # type: ignore[arg-type]
        pass
    add = next(c for c in backend.calls if c[0] == "toxiproxy.add_toxic")
    assert add[3] == sent_type and add[6] == sent
    assert set(TOXICS) >= {toxic}


@pytest.mark.parametrize(
    ("toxic", "kwargs", "message"),
    [
        ("latency", {}, "latency toxic needs latency"),
        ("latency", {"latency": -1}, r"latency must be a whole number in \[0, 3600000\] ms; got -1"),
        ("latency", {"latency": 1.5}, "got 1.5"),
        ("latency", {"latncy": 5}, "has no parameter latncy"),
        ("bandwidth", {"rate": True}, "got True"),
        ("slicer", {"average_size": 8, "size_variation": 8}, "size_variation .* must be smaller"),
        ("teleport", {}, "unknown toxic 'teleport'"),
        ("latency", {"latency": 5, "stream": "sideways"}, "stream must be one of upstream, downstream"),
        ("latency", {"latency": 5, "toxicity": 2}, r"toxicity must be a number in \[0, 1\]"),
    ],
)
def test_bad_parameters_are_named_with_the_accepted_range(backend: FakeBackend, toxic: str,
                                                           kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Toxic(backend, "broker", toxic, **kwargs)  # type: ignore[arg-type]
    assert backend.calls == []


def test_unknown_parameter_error_lists_accepted_ones(backend: FakeBackend) -> None:
    with pytest.raises(InputError) as info:
        Toxic(backend, "broker", "latency", latncy=5)  # type: ignore[arg-type]
    assert "accepted: latency (ms, 0..3600000), jitter (ms, 0..3600000)" in str(info.value)


def test_float_that_is_whole_is_accepted(backend: FakeBackend) -> None:
    assert Toxic(backend, "broker", "latency", latency=250.0).attributes == {"latency": 250, "jitter": 0}  # type: ignore[arg-type]


def test_rollback_failure_when_toxiproxy_is_down(backend: FakeBackend) -> None:
    fault = latency(backend, "broker", 100)  # type: ignore[arg-type]
    fault.inject()
    backend.toxiproxy.fail_on.add("remove_toxic")
    with pytest.raises(FaultRollbackError, match="did not answer"):
        fault.rollback()
    backend.toxiproxy.fail_on.clear()
    fault.rollback()
    assert backend.toxiproxy.by_name["drill_broker"].toxics == {}


def test_describe_says_what_target_and_effect(backend: FakeBackend) -> None:
    text = Toxic(backend, "broker", "latency", latency=500).describe()  # type: ignore[arg-type]
    assert text == ("toxic: latency toxic (latency=500, jitter=0) on link broker (downstream); "
                    "expected: every message on the link arrives 500 ms late")
    assert "clients of link broker lose their connection" in LinkDown(backend, "broker").describe()  # type: ignore[arg-type]
