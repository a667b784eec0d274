"""On Kubernetes a service is healthy once it is reached at its newest pod: by the host (the port-forward goes to
that pod) and by the other pods (its Service lists that pod as a ready endpoint). After a pod is replaced, a
health answer on 127.0.0.1 may still come from the old one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.backends.kubernetes.control import not_reached
from harness.backends.kubernetes.forward import read_state, write_state
from harness.backends.kubernetes.manifests import LABEL_SERVICE


def _pod(name: str, service: str, ip: str | None, created: str, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {LABEL_SERVICE: service}, "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T00:00:09Z"
    return {"metadata": meta, "status": {"podIP": ip, "phase": "Running"} if ip else {"phase": "Pending"}}


def _slice(service: str, *endpoints: tuple[str, bool]) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{service}-abcde", "labels": {"kubernetes.io/service-name": service}},
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in endpoints],
    }


SERVICES = [{"metadata": {"name": "toxiproxy"}}, {"metadata": {"name": "broker"}}]
REPLACED = [
    _pod("toxiproxy-old", "toxiproxy", "10.88.0.5", "2026-11-30T00:00:00Z", deleting=True),
    _pod("toxiproxy-new", "toxiproxy", "10.88.0.9", "2026-11-30T00:00:10Z"),
]


def test_a_replacement_pod_is_not_reached_until_the_forward_and_the_service_go_to_it() -> None:
    ready_slice = [_slice("toxiproxy", ("10.88.0.9", True))]
    # the keeper still forwards to the old pod, which may still answer
    why = not_reached(["toxiproxy"], SERVICES, REPLACED, ready_slice, {"toxiproxy": "toxiproxy-old"})
    assert why == {
        "toxiproxy": "answers, but the host's port-forward still goes to pod toxiproxy-old, not to its newest "
        "pod toxiproxy-new"
    }
    # the keeper ended the old forward and has not started the new one
    why = not_reached(["toxiproxy"], SERVICES, REPLACED, ready_slice, {"toxiproxy": None})
    assert "goes nowhere yet" in why["toxiproxy"]
    # forwarded, but the endpoint controller has not caught up: only the old pod's address, no longer ready
    forwarded = {"toxiproxy": "toxiproxy-new"}
    why = not_reached(["toxiproxy"], SERVICES, REPLACED, [_slice("toxiproxy", ("10.88.0.5", False))], forwarded)
    assert why == {
        "toxiproxy": "answers from the host, but Service toxiproxy does not send to its pod toxiproxy-new "
        "(10.88.0.9) yet (ready endpoints: none)"
    }
    # listed but not ready yet
    assert "toxiproxy" in not_reached(
        ["toxiproxy"], SERVICES, REPLACED, [_slice("toxiproxy", ("10.88.0.9", False))], forwarded
    )
    assert not_reached(["toxiproxy"], SERVICES, REPLACED, ready_slice, forwarded) == {}


def test_the_newest_pod_counts_and_what_has_no_service_or_no_ports_is_not_waited_for() -> None:
    pods = [
        _pod("broker-a", "broker", "10.88.0.3", "2026-11-30T00:00:00Z"),
        _pod("broker-b", "broker", "10.88.1.4", "2026-11-30T00:00:20Z"),
        _pod("keeper-x", "keeper", "10.88.0.7", "2026-11-30T00:00:00Z"),  # no Service, no ports
    ]
    forwarded = {"broker": "broker-b"}
    why = not_reached(["broker", "keeper"], SERVICES, pods, [_slice("broker", ("10.88.0.3", True))], forwarded)
    assert list(why) == ["broker"] and "broker-b (10.88.1.4)" in why["broker"] and "10.88.0.3" in why["broker"]
    both = [_slice("broker", ("10.88.0.3", True), ("10.88.1.4", True))]
    assert not_reached(["broker", "keeper"], SERVICES, pods, both, forwarded) == {}


def test_a_service_without_a_pod_or_an_address_is_not_reached() -> None:
    pending = [_pod("broker-a", "broker", None, "2026-11-30T00:00:00Z")]
    assert not_reached(["broker"], SERVICES, pending, [], {}) == {
        "broker": "has no address yet for Service broker (pod broker-a)"
    }
    assert not_reached(["broker"], SERVICES, [], [], {}) == {"broker": "has no pod"}


def test_the_keepers_state_is_read_whole_or_not_at_all(tmp_path: Path) -> None:
    state = tmp_path / "port-forward-state.json"
    assert read_state(state) is None  # before the keeper's first write: unknown, not "no forwards"
    write_state(state, {"broker": "broker-a", "toxiproxy": "toxiproxy-new"})
    assert read_state(state) == {"broker": "broker-a", "toxiproxy": "toxiproxy-new"}
    assert [p.name for p in tmp_path.iterdir()] == [state.name]  # no temporary file left beside it
    state.write_text("{", encoding="utf-8")
    assert read_state(state) is None
