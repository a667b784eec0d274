"""Node loss without a cluster: when a run may lose a node (else the scenario is skipped, with the reason),
which node it loses, the probes of detection and rescheduling, and the steps' figures on the timeline
(MTTD = the node marked NotReady, RTO = every lost service healthy on another node, rollback = rejoin).

The cluster is a double of the kubernetes backend driven by a ManualClock: nothing sleeps, nothing runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from harness.backends.kubernetes import KubernetesBackend
from harness.backends.kubernetes.node_loss import (
    LEASE_ANNOTATION,
    LossPlan,
    NodeLease,
    NodeLoss,
    NodeLost,
    Rescheduled,
    lease_conflict,
    plan_loss,
    refusal,
    why_not_here,
)
from harness.clock import EventKind, ManualClock
from harness.drill import Drill
from harness.errors import BackendError, EnvironmentProblem, FaultInjectionError
from harness.faults.base import FaultContext, FaultState
from harness.plugin import DrillSettings
from harness.probes.http import HttpHealth
from harness.stack import StackDescription
from harness.steps.nodes import (
    cluster_can_lose_a_node,
    lost_services_rescheduled,
    node_comes_back,
    node_drops_off,
    node_marked_lost,
)
from harness.steps.trading import recovery_meets_rto
from harness.waiting import Observation
from tests.unit.fake_backend import FakeBackend, make_stack

SETUP = "bash scripts/k8s-setup.sh --nodes 2"
TWO = {"drill-node1": True, "drill-node2": True}


# --- may this run lose a node? ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["process", "docker", "attach"])
def test_another_backend_is_refused_with_what_node_loss_needs(backend: str) -> None:
    reason = refusal(backend, TWO, {"drill-node2"})
    assert reason is not None
    assert SETUP in reason and "at least two nodes" in reason and f"this run uses the {backend} backend" in reason


def test_a_one_node_cluster_is_refused_naming_its_node() -> None:
    reason = refusal("kubernetes", {"drill-node1": True}, set())
    assert reason is not None and SETUP in reason and "1 Ready node(s): drill-node1" in reason


def test_a_second_node_that_is_not_ready_does_not_count() -> None:
    reason = refusal("kubernetes", {"drill-node1": True, "drill-node2": False}, {"drill-node2"})
    assert reason is not None and "1 Ready node(s): drill-node1" in reason


def test_two_ready_nodes_without_a_link_the_setup_made_are_refused() -> None:
    reason = refusal("kubernetes", TWO, set())
    assert reason is not None and "none of its Ready nodes (drill-node1, drill-node2) has a link" in reason


def test_two_ready_nodes_one_of_them_losable_may_lose_a_node() -> None:
    assert refusal("kubernetes", TWO, {"drill-node2"}) is None


def test_another_backend_is_decided_without_asking_any_cluster(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("DRILL_KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    reason = why_not_here("process")
    assert reason is not None and "process backend" in reason
    with pytest.raises(EnvironmentProblem, match="no kubeconfig"):  # on kubernetes a missing cluster fails
        why_not_here("kubernetes")


def test_the_first_step_skips_the_scenario_with_the_reason_on_another_backend(tmp_path: Path) -> None:
    settings = DrillSettings("docker", tmp_path / "docker-compose.yml", tmp_path / "runs", None, False, False, None, ())
    with pytest.raises(pytest.skip.Exception, match=r"at least two nodes .*this run uses the docker backend"):
        cluster_can_lose_a_node(settings)


# --- which node ---------------------------------------------------------------------------------------------

PLACEMENT = {"toxiproxy": "drill-node1", "broker": "drill-node2", "marketdata": "drill-node2",
             "traderunner": "drill-node1", "dashboard": "drill-node2", "prometheus": "drill-node3"}


def test_the_losable_node_running_most_services_is_chosen_with_its_services() -> None:
    ready = {"drill-node1": True, "drill-node2": True, "drill-node3": True}
    plan = plan_loss(PLACEMENT, {"drill-node2", "drill-node3"}, ready, keep=["toxiproxy"])
    assert plan == LossPlan("drill-node2", ("broker", "dashboard", "marketdata"))


def test_a_node_that_is_not_ready_or_not_losable_is_never_chosen() -> None:
    ready = {"drill-node1": True, "drill-node2": False, "drill-node3": True}
    assert plan_loss(PLACEMENT, {"drill-node2", "drill-node3"}, ready) == LossPlan("drill-node3", ("prometheus",))
    reason = plan_loss(PLACEMENT, {"drill-node3"}, TWO)  # drill-node3 is not in the node list at all
    assert isinstance(reason, str) and reason.endswith("; no Ready node can be cut off") and SETUP in reason


def test_no_service_on_the_losable_node_says_that_losing_it_drills_nothing() -> None:
    reason = plan_loss({"broker": "drill-node1", "dashboard": None}, {"drill-node2"}, TWO)
    assert reason == ("the scheduler put no service of the stack on drill-node2 (the node(s) that can be lost): "
                      "losing one would drill nothing")


def test_a_node_running_a_service_that_cannot_be_replaced_is_not_chosen() -> None:
    reason = plan_loss({"toxiproxy": "drill-node2", "broker": "drill-node2"}, {"drill-node2"}, TWO, keep=["toxiproxy"])
    assert isinstance(reason, str) and reason.startswith("toxiproxy runs on the only node(s) that can be lost")


# --- the probes -------------------------------------------------------------------------------------------


def test_node_lost_observes_not_ready_and_turns_api_errors_into_observations() -> None:
    answers: list[Mapping[str, bool] | Exception] = [TWO, {"drill-node2": False}, BackendError("kubectl timed out"), {}]

    def ready() -> Mapping[str, bool]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    probe = NodeLost("drill-node2", ready)
    seen = [probe() for _ in range(4)]
    assert [o.ok for o in seen] == [False, True, False, False]
    assert seen[0].observed == "drill-node2 Ready" and seen[1].observed == "drill-node2 NotReady"
    assert "did not answer: kubectl timed out" in seen[2].observed
    assert seen[3].observed == "drill-node2 is not in the cluster's node list"


def test_rescheduled_waits_for_every_lost_service_on_another_node_and_healthy() -> None:
    where: dict[str, str | None] = {"broker": "drill-node2", "dashboard": None}
    health = {"broker": True}

    class Health(NodeLost):  # any probe will do: its answer is read from ``health``
        def __call__(self) -> Observation:
            return Observation(health["broker"], "200" if health["broker"] else "unreachable")

    probe = Rescheduled("drill-node2", ("broker", "dashboard"), lambda: where, {"broker": Health("x", dict)})
    first = probe()
    assert not first.ok and first.observed == "broker: still on drill-node2; dashboard: no pod scheduled"
    where.update(broker="drill-node1", dashboard="drill-node1")
    health["broker"] = False
    second = probe()
    assert not second.ok and second.observed == "broker: on drill-node1, not healthy yet (unreachable)"
    health["broker"] = True
    third = probe()
    assert third.ok and third.observed == "broker, dashboard healthy on drill-node1"


# --- the steps' figures on the timeline ---------------------------------------------------------------------


class ClusterDouble(KubernetesBackend):
    """Two nodes; node 2 is found NotReady ``not_ready_after`` s after its link goes down and its pods run on
    node 1 ``moved_after`` s after it; rejoining takes ``rejoin_s``."""

    def __init__(self, stack: StackDescription, run_dir: Path, clock: ManualClock, placement: dict[str, str],
                 *, not_ready_after: float = 20.0, moved_after: float = 31.5, rejoin_s: float = 7.0) -> None:
        super().__init__(stack, run_dir)
        self.clock = clock
        self.where = placement
        self.not_ready_after, self.moved_after, self.rejoin_s = not_ready_after, moved_after, rejoin_s
        self.lost_at: float | None = None
        self.calls: list[str] = []
        self.ports = {f"{n}.{p}": 40000 + i for i, (n, s) in enumerate(stack.services.items()) for p in s.ports}
        (run_dir / "logs").mkdir(parents=True)

    def _since_loss(self) -> float:
        return -1.0 if self.lost_at is None else self.clock.now() - self.lost_at

    def node_ready(self) -> dict[str, bool]:
        return {"drill-node1": True, "drill-node2": not self._since_loss() >= self.not_ready_after}

    def placement(self) -> dict[str, str | None]:
        moved = self._since_loss() >= self.moved_after
        return {s: "drill-node1" if moved else n for s, n in self.where.items()}

    def losable_nodes(self) -> set[str]:
        return {"drill-node2"}

    def lose_node(self, node: str) -> None:
        self.calls.append(f"lose {node}")
        self.lost_at = self.clock.now()

    def restore_node(self, node: str, timeout: float = 120.0) -> None:
        self.calls.append(f"restore {node}")
        self.clock.advance(self.rejoin_s)
        self.lost_at = None

    def log_path(self, service: str) -> Path:
        return self.run_dir / "logs" / f"{service}.log"


def cluster_drill(tmp_path: Path, placement: dict[str, str], *, dry_run: bool = False) -> tuple[Drill, ClusterDouble]:
    clock = ManualClock()
    backend = ClusterDouble(make_stack(tmp_path), tmp_path / "run", clock, placement)
    settings = DrillSettings("kubernetes", tmp_path / "docker-compose.yml", tmp_path / "runs", None, dry_run, False,
                             None, ())
    return Drill(backend, settings, name="node loss", clock=clock), backend


ON_TWO = {"toxiproxy": "drill-node1", "broker": "drill-node2", "marketdata": "drill-node1",
          "traderunner": "drill-node2", "dashboard": "drill-node1"}


def test_the_steps_time_detection_rescheduling_and_rejoin_on_the_timeline(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HttpHealth, "__call__", lambda self: Observation(True, "200"))  # healthy once moved
    drill, cluster = cluster_drill(tmp_path, ON_TWO)
    node_drops_off(drill)
    (fault,) = drill.faults
    assert isinstance(fault, NodeLoss)
    assert (fault.node, fault.services) == ("drill-node2", ("broker", "traderunner"))
    node_marked_lost(drill, 60)
    lost_services_rescheduled(drill, 120)
    recovery_meets_rto(drill, 120)
    node_comes_back(drill)
    assert cluster.calls == ["lose drill-node2", "restore drill-node2"]
    figures = {m.name: m for m in drill.measurements()}
    assert figures["MTTD"].value_s == pytest.approx(20.0, abs=0.11)  # probed every 0.1 s
    assert figures["RTO"].value_s == pytest.approx(31.5, abs=0.11)
    assert figures["RTO"].target_s == 120 and figures["RTO"].met
    detected = drill.timeline.first(EventKind.DETECTED)
    recovered = drill.timeline.first(EventKind.RECOVERED)
    rolled_back = drill.timeline.first(EventKind.FAULT_ROLLED_BACK)
    assert detected is not None and detected.label == "node drill-node2 NotReady"
    assert recovered is not None and recovered.label == "broker, traderunner rescheduled off drill-node2"
    assert recovered.details["observed"] == "broker, traderunner healthy on drill-node1"
    assert rolled_back is not None and rolled_back.details["took_s"] == pytest.approx(7.0)


def test_a_wait_that_runs_out_names_what_is_still_on_the_lost_node(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HttpHealth, "__call__", lambda self: Observation(True, "200"))
    drill, cluster = cluster_drill(tmp_path, ON_TWO)
    cluster.moved_after = 500.0
    node_drops_off(drill)
    with pytest.raises(Exception, match="broker: still on drill-node2; traderunner: still on drill-node2"):
        lost_services_rescheduled(drill, 60)
    drill.close()
    assert cluster.calls == ["lose drill-node2", "restore drill-node2"]  # rolled back all the same


def test_nothing_on_the_losable_node_skips_before_any_fault(tmp_path: Path) -> None:
    drill, cluster = cluster_drill(tmp_path, {s: "drill-node1" for s in ON_TWO})
    with pytest.raises(pytest.skip.Exception, match="the scheduler put no service of the stack on drill-node2"):
        node_drops_off(drill)
    assert drill.faults == [] and cluster.calls == []


def test_node_loss_on_another_backend_is_refused_with_the_reason(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    fault = NodeLoss(backend, "drill-node2", ctx=FaultContext(run_dir=tmp_path))
    refused = "node loss needs the kubernetes backend; this drill runs on fake"
    with pytest.raises(FaultInjectionError, match=refused) as err:
        fault.inject()
    assert "whatever was applied has been rolled back" in str(err.value)  # nothing was: nothing may be pending
    assert fault.state is FaultState.ROLLED_BACK and backend.calls == []


def test_a_ledger_record_written_before_services_were_recorded_still_rolls_back(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    record = NodeLoss(backend, "drill-node2", services=["broker"]).record()
    params = record["params"]
    assert isinstance(params, dict) and params.pop("services") == ["broker"]  # what an older harness wrote
    rebuilt = NodeLoss.from_record(backend, record)  # type: ignore[arg-type]
    assert isinstance(rebuilt, NodeLoss) and (rebuilt.node, rebuilt.services) == ("drill-node2", ())


def test_a_dry_run_plans_every_step_and_asks_no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DRILL_KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))  # asking would raise
    drill, cluster = cluster_drill(tmp_path, ON_TWO, dry_run=True)
    cluster_can_lose_a_node(drill.settings)
    node_drops_off(drill)
    node_marked_lost(drill, 60)
    lost_services_rescheduled(drill, 120)
    node_comes_back(drill)
    assert cluster.calls == []
    planned = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert planned[0].startswith("[dry-run] would inject: node_loss: cut the node's network link")
    assert planned[1:3] == [
        "[dry-run] would expect within 60s: the cluster marks node <the node running most of the stack> NotReady",
        "[dry-run] would expect within 120s: every service that ran on <the node running most of the stack> "
        "healthy on another node",
    ]
    assert planned[3].startswith("[dry-run] would roll back: node_loss")
    assert drill.measurements()[0].value_s is None  # nothing ran, nothing measured


def _node(annotation: str | None) -> dict[str, object]:
    annotations = {} if annotation is None else {LEASE_ANNOTATION: annotation}
    return {"metadata": {"name": "drill-node2", "annotations": annotations, "resourceVersion": "7"}}


def test_a_nodes_lease_names_the_run_that_cut_it_off_and_keeps_every_other_run_off_it() -> None:
    from harness.backends.reaper import owner_record

    live = NodeLease("run-a", "drill-run-a", owner_record())
    assert NodeLease.of(_node(live.value())) == live
    assert NodeLease.of(_node(None)) is None
    assert lease_conflict("drill-node2", None, "run-b", cut_off=False) is None  # nobody holds it
    assert lease_conflict("drill-node2", live, "run-a", cut_off=True) is None  # its own (an inject retried)
    refused = lease_conflict("drill-node2", live, "run-b", cut_off=True)
    assert refused is not None
    assert refused.startswith("node drill-node2 is cut off by run run-a (namespace drill-run-a; alive, pid ")
    assert "two node-loss drills cannot share a node" in refused
    dead = NodeLease("run-c", "drill-run-c", {"pid": 2**22 + 17, "start": "1"})  # beyond pid_max: no process
    stale = lease_conflict("drill-node2", dead, "run-b", cut_off=True)
    assert stale is not None and "its process is gone" in stale and "`drill cleanup` puts it back" in stale
    # a dead run's mark on a node that is back (cleaned up without it, or the cluster set up again): taken over
    assert lease_conflict("drill-node2", dead, "run-b", cut_off=False) is None
    assert lease_conflict("drill-node2", live, "run-b", cut_off=False) is not None  # a live run's: never


def test_a_lease_this_harness_did_not_write_still_holds_the_node() -> None:
    held = NodeLease.of(_node("someone's note"))
    assert held is not None and held.run_id == 'unknown (drill.node-loss/run="someone\'s note")'
    why = lease_conflict("drill-node2", held, "run-b", cut_off=False)
    assert why is not None and "a detached or unknown run" in why
