"""Node loss (kubernetes backend, two nodes): a whole machine drops off the cluster.

Inject cuts the node's link (:meth:`KubernetesBackend.lose_node`): its kubelet stops reporting, its pods are
cut off while they keep running, as on a partitioned machine. What a drill then measures is Kubernetes' own
response: the node found ``NotReady`` (detection, about 20-25 s here: ``--node-monitor-grace-period=20s``),
and its pods evicted 5 s later and replaced on the node that is left (rescheduling). Rollback puts the link
back and waits until the node is Ready; the services' health after that is the scenario's to check.

Registered as fault kind ``node_loss``, so the ledger and ``drill cleanup`` put a lost node back after a
crash of the drill. On a one-node cluster, or any other backend, it refuses with the reason (never a silent
no-op): a node that cannot be lost is an :class:`EnvironmentProblem`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from harness.errors import EnvironmentProblem
from harness.faults.base import Fault, FaultContext, Params, ParamValue
from harness.faults.registry import register_fault

if TYPE_CHECKING:
    from harness.backends.base import Backend
    from harness.backends.kubernetes.control import KubernetesBackend

HEALTHY_TIMEOUT_S = 120.0


@register_fault
class NodeLoss(Fault):
    """Cut a node off the cluster. Rollback: its link back, the node Ready again."""

    kind = "node_loss"

    def __init__(self, backend: Backend, node: str, *, healthy_timeout_s: float = HEALTHY_TIMEOUT_S,
                 ctx: FaultContext | None = None, fault_id: str | None = None) -> None:
        super().__init__(backend, ctx=ctx, fault_id=fault_id)
        self.node = node
        self.healthy_timeout_s = healthy_timeout_s

    @property
    def k8s(self) -> KubernetesBackend:
        from harness.backends.kubernetes.control import KubernetesBackend

        if not isinstance(self.backend, KubernetesBackend):
            raise EnvironmentProblem(
                f"node loss needs the kubernetes backend; this drill runs on {self.backend.name}",
                hint="drill run --backend kubernetes, on a cluster made by scripts/k8s-setup.sh --nodes 2",
            )
        return self.backend

    @property
    def target(self) -> str:
        return f"node {self.node}"

    @property
    def action(self) -> str:
        return "cut the node's network link (the machine drops off)"

    @property
    def expected_effect(self) -> str:
        return (f"{self.node} turns NotReady; its pods are evicted and replaced on the nodes left; the services "
                "they ran are unreachable until then")

    def params(self) -> dict[str, ParamValue]:
        return {"node": self.node, "healthy_timeout_s": self.healthy_timeout_s}

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, params.text("node"), healthy_timeout_s=params.number("healthy_timeout_s"),
                   ctx=ctx, fault_id=fault_id)

    def _inject(self) -> None:
        self.k8s.lose_node(self.node)

    def _rollback(self) -> None:
        # the machine back: link up, routes back, node Ready. How the services fare afterwards (an engine
        # whose data SLA was violated, orders to reconcile) is the scenario's to judge, as after a network fault
        self.k8s.restore_node(self.node, timeout=self.healthy_timeout_s)
