"""Node loss (kubernetes backend, two nodes): a whole machine drops off the cluster.

Inject cuts the node's link (:meth:`KubernetesBackend.lose_node`): its kubelet stops reporting, its pods are
cut off while they keep running, as on a partitioned machine. What a drill then measures is Kubernetes' own
response: the node found ``NotReady`` (detection, about 20-25 s here: ``--node-monitor-grace-period=20s``),
and its pods evicted 5 s later and replaced on the node that is left (rescheduling). Rollback puts the link
back and waits until the node is Ready; the services' health after that is the scenario's to check.

Registered as fault kind ``node_loss``, so the ledger and ``drill cleanup`` put a lost node back after a
crash of the drill. On a one-node cluster, or any other backend, it refuses with the reason (never a silent
no-op): a node that cannot be lost is an :class:`EnvironmentProblem`.

What a node-loss drill (``features/node_loss.feature``) needs around the fault lives here too, so the steps
stay thin and the decisions are tested without a cluster:

* :func:`refusal` / :func:`why_not_here`: why this run cannot lose a node (another backend, fewer than two
  Ready nodes, no node whose link the set-up made), the reason a scenario is *skipped* with;
* :func:`plan_loss`: which node to lose (the one that can be lost running most of the stack) and the
  services that go with it, or why no choice drills anything;
* :class:`NodeLost` (the detection: the control plane marks the node NotReady) and :class:`Rescheduled`
  (the recovery: every lost service answers its health endpoint from a pod on another node), the probes
  whose moments land on the timeline as MTTD and RTO;
* :class:`NodeLease`: the node is the cluster's, not the run's. The run that cuts a node off marks the Node
  object (annotation ``drill.node-loss/run``, set only where there is none, with a resource-version
  precondition); another run cannot cut the same node off meanwhile, and only the run that holds it puts it
  back, so cleaning up after a dead run never brings back a node a live run has cut off.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from harness.errors import BackendError, EnvironmentProblem
from harness.faults.base import Fault, FaultContext, Params, ParamValue
from harness.faults.registry import register_fault
from harness.probes.base import Probe
from harness.waiting import Observation

if TYPE_CHECKING:
    from harness.backends.base import Backend
    from harness.backends.kubernetes.control import KubernetesBackend

HEALTHY_TIMEOUT_S = 120.0
BACKEND = "kubernetes"
NEEDS = (
    "node loss needs a Kubernetes cluster with at least two nodes "
    "(drill run --backend kubernetes, after bash scripts/k8s-setup.sh --nodes 2)"
)


def on_kubernetes(backend: Backend) -> KubernetesBackend:
    """``backend`` as the kubernetes backend; on any other, :class:`EnvironmentProblem` saying what node loss needs."""
    from harness.backends.kubernetes.control import KubernetesBackend

    if not isinstance(backend, KubernetesBackend):
        raise EnvironmentProblem(
            f"node loss needs the kubernetes backend; this drill runs on {backend.name}",
            hint="drill run --backend kubernetes, on a cluster made by scripts/k8s-setup.sh --nodes 2",
        )
    return backend


def refusal(backend: str, ready: Mapping[str, bool], losable: Collection[str]) -> str | None:
    """Why a run on ``backend`` cannot lose a node (None: it can). ``ready``: node -> Ready now; ``losable``:
    the nodes whose link the set-up made. A node can be lost when it is Ready, losable, and another Ready node
    is left to take its pods."""
    if backend != BACKEND:
        return f"{NEEDS}; this run uses the {backend} backend"
    up = sorted(n for n, ok in ready.items() if ok)
    if len(up) < 2:
        return f"{NEEDS}; this cluster has {len(up)} Ready node(s){': ' + ', '.join(up) if up else ''}"
    if not any(n in losable for n in up):
        return (f"{NEEDS}; none of its Ready nodes ({', '.join(up)}) has a link the set-up made, so none can be "
                "cut off (runtime.json beside the kubeconfig lists them)")
    return None


def why_not_here(backend: str, kubeconfig: Path | None = None) -> str | None:
    """:func:`refusal` for this run: asks the cluster only on the kubernetes backend. A cluster that does not
    answer is not a reason to skip: it raises (:class:`EnvironmentProblem`), as it fails every other drill."""
    if backend != BACKEND:
        return refusal(backend, {}, ())
    from harness.backends.kubernetes.cluster import Kubectl, node_links

    kubectl = Kubectl(kubeconfig)
    return refusal(backend, kubectl.nodes_ready(), set(node_links(kubectl.kubeconfig)))


LEASE_ANNOTATION = "drill.node-loss/run"


@dataclass(frozen=True)
class NodeLease:
    """Which run has cut a node off: the value of the Node's ``drill.node-loss/run`` annotation."""

    run_id: str
    namespace: str
    owner: Mapping[str, Any] | None = None

    def value(self) -> str:
        return json.dumps({"run_id": self.run_id, "namespace": self.namespace, "owner": self.owner}, sort_keys=True)

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> NodeLease | None:
        """The lease on a Node object as the API returns it, or None. A value this harness did not write still
        holds the node (someone else's), under an unknown run."""
        raw = ((node.get("metadata") or {}).get("annotations") or {}).get(LEASE_ANNOTATION)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            return cls(run_id=f"unknown ({LEASE_ANNOTATION}={raw[:80]!r})", namespace="?")
        owner = data.get("owner")
        return cls(str(data.get("run_id")), str(data.get("namespace")), owner if isinstance(owner, dict) else None)

    def describe(self) -> str:
        from harness.backends.reaper import owner_alive

        alive = owner_alive(self.owner)
        who = {True: f"alive, pid {self.owner and self.owner.get('pid')}", False: "its process is gone",
               None: "a detached or unknown run"}[alive]
        return f"run {self.run_id} (namespace {self.namespace}; {who})"


def lease_conflict(node: str, held: NodeLease | None, run_id: str, cut_off: bool) -> str | None:
    """Why run ``run_id`` may not cut ``node`` off while ``held`` holds it (None: it may). ``cut_off``: the node's
    link is down now. A mark left by a dead run on a node whose link is up (its run was cleaned up without
    removing it, or the cluster was set up again) holds nothing: it may be taken over."""
    if held is None or held.run_id == run_id:
        return None
    from harness.backends.reaper import owner_alive

    if owner_alive(held.owner) is False:
        if not cut_off:
            return None
        return (f"node {node} is still cut off by {held.describe()}: `drill cleanup` puts it back (it restores "
                "what dead runs left), then run this drill again")
    return (f"node {node} is cut off by {held.describe()}; two node-loss drills cannot share a node: wait until "
            "that drill has put it back")


@dataclass(frozen=True)
class LossPlan:
    """The node a drill cuts off and the stack's services scheduled on it."""

    node: str
    services: tuple[str, ...]


def plan_loss(
    placement: Mapping[str, str | None], losable: Collection[str], ready: Mapping[str, bool],
    keep: Collection[str] = (),
) -> LossPlan | str:
    """The Ready node that can be lost running most of the stack's services (``placement``: service -> node),
    or why no node can be lost usefully. A node running a service in ``keep`` is never chosen: one whose
    replacement cannot take over (Toxiproxy: its links are made once, when the stack starts)."""
    candidates = sorted(n for n in losable if ready.get(n))
    if not candidates:
        return f"{NEEDS}; no Ready node can be cut off"
    on: dict[str, tuple[str, ...]] = {
        n: tuple(sorted(s for s, where in placement.items() if where == n)) for n in candidates
    }
    usable = {n: services for n, services in on.items() if services and not set(services) & set(keep)}
    if usable:
        node = max(sorted(usable), key=lambda n: len(usable[n]))  # most services; ties: the first by name
        return LossPlan(node, usable[node])
    if not any(on.values()):
        return (f"the scheduler put no service of the stack on {', '.join(candidates)} (the node(s) that can be "
                "lost): losing one would drill nothing")
    pinned = sorted({s for services in on.values() for s in services if s in keep})
    return (f"{', '.join(pinned)} runs on the only node(s) that can be lost ({', '.join(candidates)}); a "
            "replacement would start without the stack's links, which are made when the stack starts")


class NodeLost(Probe):
    """The detection: the control plane no longer sees ``node`` Ready (its kubelet stopped reporting)."""

    name = "node_lost"

    def __init__(self, node: str, ready: Callable[[], Mapping[str, bool]]) -> None:
        self.node = node
        self.ready = ready

    def __call__(self) -> Observation:
        try:
            state = self.ready().get(self.node)
        except BackendError as exc:
            return Observation(False, f"the API server did not answer: {exc.message[:200]}")
        if state is None:
            return Observation(False, f"{self.node} is not in the cluster's node list")
        return Observation(not state, f"{self.node} {'Ready' if state else 'NotReady'}")

    def describe(self) -> str:
        return f"the cluster marks node {self.node} NotReady"


class Rescheduled(Probe):
    """The recovery: every service lost with ``node`` runs in a pod on another node and answers its health
    endpoint there (through the same host address as before the loss)."""

    name = "rescheduled"

    def __init__(
        self, node: str, services: Collection[str], placement: Callable[[], Mapping[str, str | None]],
        healthy: Mapping[str, Probe],
    ) -> None:
        self.node = node
        self.services = tuple(services)
        self.placement = placement
        self.healthy = healthy

    def __call__(self) -> Observation:
        try:
            where = self.placement()
        except BackendError as exc:
            return Observation(False, f"the API server did not answer: {exc.message[:200]}")
        waiting = []
        for service in self.services:
            node = where.get(service)
            if node is None or node == self.node:
                waiting.append(f"{service}: {'no pod scheduled' if node is None else 'still on ' + node}")
                continue
            probe = self.healthy.get(service)
            seen = probe() if probe is not None else Observation(True, "no health endpoint declared")
            if not seen.ok:
                waiting.append(f"{service}: on {node}, not healthy yet ({seen.observed[:120]})")
        if waiting:
            return Observation(False, "; ".join(waiting))
        moved = sorted({str(where.get(s)) for s in self.services})
        return Observation(True, f"{', '.join(self.services)} healthy on {', '.join(moved)}")

    def describe(self) -> str:
        which = f" ({', '.join(self.services)})" if self.services else ""
        return f"every service that ran on {self.node}{which} healthy on another node"


@register_fault
class NodeLoss(Fault):
    """Cut a node off the cluster. Rollback: its link back, the node Ready again."""

    kind = "node_loss"
    outlives_stack = True  # the node is the cluster's: deleting the run's namespace does not bring it back

    def __init__(self, backend: Backend, node: str, *, services: Collection[str] = (),
                 healthy_timeout_s: float = HEALTHY_TIMEOUT_S, ctx: FaultContext | None = None,
                 fault_id: str | None = None) -> None:
        super().__init__(backend, ctx=ctx, fault_id=fault_id)
        self.node = node
        self.services = tuple(services)  # the stack's services scheduled on the node when it is cut off
        self.healthy_timeout_s = healthy_timeout_s

    @property
    def k8s(self) -> KubernetesBackend:
        return on_kubernetes(self.backend)

    @property
    def target(self) -> str:
        return f"node {self.node}" + (f" (running {', '.join(self.services)})" if self.services else "")

    @property
    def action(self) -> str:
        return "cut the node's network link (the machine drops off)"

    @property
    def expected_effect(self) -> str:
        return (f"{self.node} turns NotReady; its pods are evicted and replaced on the nodes left; the services "
                "they ran are unreachable until then")

    def params(self) -> dict[str, ParamValue]:
        return {"node": self.node, "services": list(self.services), "healthy_timeout_s": self.healthy_timeout_s}

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        services = params.texts("services") if "services" in params.values else []  # older records: none
        return cls(backend, params.text("node"), services=services,
                   healthy_timeout_s=params.number("healthy_timeout_s"), ctx=ctx, fault_id=fault_id)

    def _inject(self) -> None:
        self.k8s.lose_node(self.node)

    def _rollback(self) -> None:
        from harness.backends.kubernetes.control import KubernetesBackend

        if not isinstance(self.backend, KubernetesBackend):
            return  # _inject refused before touching anything: there is no node to put back
        # the machine back: link up, routes back, node Ready. How the services fare afterwards (an engine
        # whose data SLA was violated, orders to reconcile) is the scenario's to judge, as after a network fault
        self.k8s.restore_node(self.node, timeout=self.healthy_timeout_s)
