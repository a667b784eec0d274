"""The machines the stack runs on: a whole node drops off a cluster (the kubernetes backend, two nodes).

The decisions (may this run lose a node, which one) and the probes live in
:mod:`harness.backends.kubernetes.node_loss`, imported when a step runs (a drill on another backend never
loads the kubernetes backend). Where node loss cannot apply (the process or docker backend, a one-node
cluster) the scenario is *skipped* with the reason before its stack starts: never failed, never passed
silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pytest_bdd import given, parsers, then, when

from harness.clock import EventKind
from harness.drill import Drill
from harness.errors import InputError

if TYPE_CHECKING:
    from harness.backends.kubernetes.node_loss import NodeLoss
    from harness.plugin import DrillSettings

DRY_RUN_NODE = "<the node running most of the stack>"


@given("the trading stack runs on a cluster that can lose a machine")
def cluster_can_lose_a_node(drill_settings: DrillSettings) -> None:
    """Skip the scenario, with the reason, unless this run is on a Kubernetes cluster with a node to lose.

    It asks only the cluster's node list (the scenario's stack is not started yet); a dry run on the
    kubernetes backend asks nothing.
    """
    from harness.backends.kubernetes.node_loss import BACKEND, why_not_here

    if drill_settings.dry_run and drill_settings.backend == BACKEND:
        return
    reason = why_not_here(drill_settings.backend)
    if reason is not None:
        pytest.skip(reason)


@when("the machine running most of the trading stack drops off the cluster")
def node_drops_off(drill: Drill) -> None:
    """Cut off the node that can be lost running most of the stack's services (fault ``node_loss``)."""
    from harness.backends.kubernetes.node_loss import LossPlan, NodeLoss, on_kubernetes, plan_loss

    if drill.dry_run is not None:
        drill.inject(NodeLoss(drill.backend, DRY_RUN_NODE, ctx=drill.ctx))
        return
    k8s = on_kubernetes(drill.backend)
    keep = [s.name for s in k8s.stack.services_with_role("toxiproxy")]
    plan = plan_loss(k8s.placement(), k8s.losable_nodes(), k8s.node_ready(), keep)
    if not isinstance(plan, LossPlan):
        pytest.skip(plan)
    drill.inject(NodeLoss(k8s, plan.node, services=plan.services, ctx=drill.ctx))


@then(parsers.parse("the cluster marks the machine lost within {seconds:d} seconds"))
def node_marked_lost(drill: Drill, seconds: int) -> None:
    """The control plane sees the node NotReady (a detection: MTTD)."""
    from harness.backends.kubernetes.node_loss import NodeLost

    fault = _lost(drill)
    drill.expect(NodeLost(fault.node, lambda: fault.k8s.node_ready()), within=seconds, kind=EventKind.DETECTED,
                 label=f"node {fault.node} NotReady")


@then(parsers.parse("every service it ran is healthy on another machine within {seconds:d} seconds"))
def lost_services_rescheduled(drill: Drill, seconds: int) -> None:
    """Each service the node ran answers its health endpoint from a pod on another node (the recovery: RTO)."""
    from harness.backends.kubernetes.node_loss import Rescheduled
    from harness.probes.base import Probe
    from harness.probes.http import HttpHealth

    fault = _lost(drill)
    stack = drill.backend.stack
    healthy: dict[str, Probe] = {
        s: HttpHealth.for_service(drill.backend, s) for s in fault.services if stack.service(s).health
    }
    probe = Rescheduled(fault.node, fault.services, lambda: fault.k8s.placement(), healthy)
    drill.expect(probe, within=seconds, kind=EventKind.RECOVERED,
                 label=f"{', '.join(fault.services) or 'nothing'} rescheduled off {fault.node}")


@when("the lost machine comes back")
def node_comes_back(drill: Drill) -> None:
    """Its link back up; the step ends when the cluster sees the node Ready again (the fault's rollback)."""
    lost = _lost(drill)
    drill.restore(lambda f: f is lost)


def _lost(drill: Drill) -> NodeLoss:
    from harness.backends.kubernetes.node_loss import NodeLoss

    found = [f for f in drill.faults if isinstance(f, NodeLoss)]
    if not found:
        raise InputError(
            "this step reads the node the scenario cut off, but no node was lost",
            hint="put 'When the machine running most of the trading stack drops off the cluster' before it",
        )
    return found[-1]
