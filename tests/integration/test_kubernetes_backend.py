"""The kubernetes backend on a real cluster (scripts/k8s-setup.sh): health through the port-forwards, a killed
container restarted by the kubelet, clean teardown, clean-up after a SIGKILLed run, and the quarterly drills.

When no cluster answers (no kubeconfig, API server down) every test here is *skipped with that reason*;
an image missing from the node is a failure (the set-up script loads them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.backends.base import ServiceState
from harness.errors import EnvironmentProblem
from harness.stack import load_stack

if TYPE_CHECKING:
    from harness.backends.kubernetes.node_loss import NodeLease

pytestmark = [pytest.mark.kubernetes, pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DRILL = str(Path(sys.executable).parent / "drill")


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    from harness.backends.kubernetes import cluster_available

    ok, why = cluster_available()
    if not ok:
        pytest.skip(f"no Kubernetes cluster reachable: {why.splitlines()[0]} (run scripts/k8s-setup.sh)")


def leftovers(namespace: str, ports: list[int]) -> list[str]:
    """What is left of a run: its namespace, and anything still listening on its forwarded ports."""
    from harness.backends.kubernetes import Kubectl

    found = []
    deadline = time.monotonic() + 60  # down() starts the deletion; the namespace controller finishes it
    while Kubectl().run("get", "namespace", namespace, check=False, namespaced=False).code == 0:
        if time.monotonic() > deadline:
            found.append(f"namespace {namespace} (still there 60 s after down)")
            break
        time.sleep(0.5)
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5):
                found.append(f"something answers on 127.0.0.1:{port}")
        except OSError as exc:
            if "refused" not in str(exc).lower():
                found.append(f"127.0.0.1:{port}: {exc}")
    forwards = subprocess.run(["pgrep", "-f", f"port-forward.*--namespace={namespace}"], capture_output=True)
    if forwards.stdout.strip():
        found.append(f"kubectl port-forward processes {forwards.stdout.decode().split()}")
    return found


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[object]:
    from harness.backends.kubernetes import KubernetesBackend

    b = KubernetesBackend(load_stack(ROOT / "docker-compose.yml"), tmp_path / "run")
    b.up()
    try:
        yield b
    finally:
        ports = list(b.ports.values())
        b.down()
        assert leftovers(b.namespace, ports) == []


def test_stack_is_healthy_through_port_forwards_and_a_killed_container_is_restarted(backend: object) -> None:
    from harness.backends.kubernetes import KubernetesBackend

    assert isinstance(backend, KubernetesBackend)
    for name, spec in backend.stack.services.items():
        ok, observed = backend._healthy(spec)
        assert ok, f"{name}: {observed}"
        assert backend.state(name) is ServiceState.RUNNING
    broker_url = backend.endpoint("broker", "http").url
    backend.kill_mode = "restart"  # DRILL_K8S_KILL=restart: the self-healing mode
    restarts_before = backend._container_status(backend._pod("broker") or {}, "broker").get("restartCount", 0)
    started = time.monotonic()
    backend.kill("broker")
    backend.wait_healthy("broker", 60.0)  # nobody starts it: the kubelet does
    took = time.monotonic() - started

    def restarts() -> int:
        return int(backend._container_status(backend._pod("broker") or {}, "broker").get("restartCount", 0))

    # the restarted broker may serve before its kubelet has posted the pod status (seen on node 2 of a busy
    # machine): the restart count in the API follows within the kubelet's status sync
    deadline = time.monotonic() + 30
    while restarts() == restarts_before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert restarts() == restarts_before + 1
    assert backend.endpoint("broker", "http").url == broker_url  # same address across the restart
    print(f"broker killed -> healthy again via the kubelet in {took:.1f}s")


def test_a_killed_service_stays_down_until_started_in_hold_mode(backend: object) -> None:
    from harness.backends.kubernetes import KubernetesBackend

    assert isinstance(backend, KubernetesBackend)
    assert backend.kill_mode == "hold"  # the default: a crash lasts until the on-call restarts the service
    backend.kill("broker")
    # the crash loop ends once the pod is gone (scaled to zero); by then the kubelet would long have restarted it
    deadline = time.monotonic() + 60
    while backend._pods("broker") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert backend._pods("broker") == [], "the killed broker's pod is still there 60 s later"
    assert backend.state("broker") is ServiceState.DEAD
    ok, observed = backend._healthy(backend.stack.service("broker"))
    assert not ok, f"a crashed broker answered: {observed}"
    backend.start("broker")
    assert backend.state("broker") is ServiceState.RUNNING
    assert backend._holds == {}


def test_stop_start_and_pause_resume(backend: object) -> None:
    from harness.backends.kubernetes import KubernetesBackend

    assert isinstance(backend, KubernetesBackend)
    backend.stop("dashboard")
    assert backend.state("dashboard") is ServiceState.STOPPED
    backend.start("dashboard")
    assert backend.state("dashboard") is ServiceState.RUNNING
    backend.pause("marketdata")
    assert backend.state("marketdata") is ServiceState.PAUSED
    ok, observed = backend._healthy(backend.stack.service("marketdata"))
    assert not ok, f"a frozen service answered: {observed}"
    backend.resume("marketdata")
    backend.wait_healthy("marketdata", 30.0)
    result = backend.operator(["status"])
    assert result.exit_code == 0, result.output


def test_toxiproxy_restarted_or_replaced_comes_back_with_every_link(backend: object) -> None:
    """Toxiproxy holds its proxies in memory; they come back from its ConfigMap whenever its container starts:
    after the kubelet restarts it (kill) and in a new pod (deleted, as after a node loss)."""
    from harness.backends.kubernetes import KubernetesBackend

    assert isinstance(backend, KubernetesBackend)
    proxy = backend.toxiproxy
    links = {n: (p.listen, p.upstream) for n, p in proxy.proxies().items()}
    assert set(links) == set(backend.stack.links), links

    def links_back(what: str) -> None:
        backend.wait_healthy("toxiproxy", 60.0)
        assert {n: (p.listen, p.upstream) for n, p in proxy.proxies().items()} == links, what
        # through the link: the engine fetches market data via toxiproxy:<listen port>. wait_healthy saw the
        # Service's endpoints list the pod; kube-proxy on each node programs them a moment later (its own sync,
        # slower on a busy machine), so a first connection may still go to the old pod: the fetch is retried
        # until it goes through, the way the engine's own loop does, and must within a minute.
        deadline = time.monotonic() + 60
        fetched = backend.operator(["data", "fetch"])
        while fetched.exit_code != 0 and time.monotonic() < deadline:
            time.sleep(1.0)
            fetched = backend.operator(["data", "fetch"])
        assert fetched.exit_code == 0, f"{what}: {fetched.output}"

    backend.kill_mode = "restart"
    backend.kill("toxiproxy")
    links_back("after the kubelet restarted the killed Toxiproxy")
    old = backend._pod_name("toxiproxy")
    backend.kubectl.run("delete", "pod", str(old), "--wait=false")
    deadline = time.monotonic() + 60
    while backend._pod_name("toxiproxy") in (None, old):
        assert time.monotonic() < deadline, "no replacement Toxiproxy pod 60 s after the old one was deleted"
        time.sleep(0.5)
    links_back("in the replacement pod")


INJECTOR = """
import sys, time
from pathlib import Path
from harness.backends.kubernetes import KubernetesBackend
from harness.faults.base import FaultContext
from harness.faults.network import LinkDown
from harness.faults.service import Pause, Stop
from harness.stack import load_stack
b = KubernetesBackend(load_stack(Path(sys.argv[2])), Path(sys.argv[1]))
b.up()
ctx = FaultContext(run_dir=b.run_dir)
LinkDown(b, "marketdata", ctx=ctx).inject()
Pause(b, "dashboard", ctx=ctx).inject()
Stop(b, "broker", ctx=ctx).inject()
print("INJECTED", b.namespace, " ".join(str(p) for p in b.ports.values()), flush=True)
time.sleep(3600)
"""


def killed_once_it_says(script: str, run_dir: Path) -> list[str]:
    """Run ``script`` (a stand-in for the drill process) until it prints a line, then SIGKILL its session: the
    words of that line. The port-forward keeper, in a session of its own, lives on, as after a real crash."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(run_dir), str(ROOT / "docker-compose.yml")],
        stdout=subprocess.PIPE, text=True, start_new_session=True, cwd=ROOT,
    )
    assert proc.stdout is not None
    try:
        return proc.stdout.readline().split()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def drill_cleanup(run_dir: Path) -> str:
    cli = subprocess.run(
        [DRILL, "cleanup", "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    return cli.stdout


def test_harness_killed_mid_drill_then_cleanup_leaves_no_namespace_or_port_forward(tmp_path: Path) -> None:
    from harness.backends.kubernetes import Kubectl

    run_dir = tmp_path / "run"
    line = killed_once_it_says(INJECTOR, run_dir)
    assert line[:1] == ["INJECTED"], line
    namespace, ports = line[1], [int(p) for p in line[2:]]
    assert Kubectl().run("get", "namespace", namespace, check=False, namespaced=False).code == 0
    out = drill_cleanup(run_dir)
    assert "gone" in out or "removed" in out, out
    assert leftovers(namespace, ports) == []


NODE_LOSER = """
import sys, time
from pathlib import Path
from harness.backends.kubernetes import KubernetesBackend
from harness.backends.kubernetes.node_loss import LossPlan, NodeLoss, plan_loss
from harness.faults.base import FaultContext
from harness.stack import load_stack
b = KubernetesBackend(load_stack(Path(sys.argv[2])), Path(sys.argv[1]))
b.up()
keep = [s.name for s in b.stack.services_with_role("toxiproxy")]
plan = plan_loss(b.placement(), b.losable_nodes(), b.node_ready(), keep)
if not isinstance(plan, LossPlan):
    b.down()
    print("SKIP", plan, flush=True)
    sys.exit(0)
NodeLoss(b, plan.node, services=plan.services, ctx=FaultContext(run_dir=b.run_dir)).inject()
while b.node_ready().get(plan.node):  # mid-drill: the node is NotReady and its pods are being evicted
    time.sleep(0.5)
print("INJECTED", b.namespace, plan.node, " ".join(str(p) for p in b.ports.values()), flush=True)
time.sleep(3600)
"""


def node_network() -> dict[str, list[str]]:
    """What a node loss touches and a clean-up must put back, read from the kernel: the node namespaces' links
    (with their state) and routes, the host's routes through the node veths, the host's veths that are not
    Docker's (pod veths on the node-1 bridge), and the set-up's iptables rules."""
    from harness.backends.kubernetes import Kubectl
    from harness.backends.kubernetes.cluster import node_links

    def ip_json(*argv: str) -> list[dict[str, object]]:
        got = subprocess.run(["ip", "-j", *argv], capture_output=True, text=True, timeout=30, check=True)
        return list(json.loads(got.stdout or "[]"))

    links = node_links(Kubectl().kubeconfig)
    host_devices = {r.split(" dev ")[1].split()[0] for link in links.values() for r in link.host_routes}
    seen: dict[str, list[str]] = {}
    for node, link in links.items():
        seen[f"{node} links"] = sorted(f"{i['ifname']} {i.get('operstate')}" for i in ip_json("-n", link.netns, "link"))
        seen[f"{node} routes"] = sorted(f"{r.get('dst')} via {r.get('gateway')} dev {r.get('dev')}"
                                        for r in ip_json("-n", link.netns, "route"))
    seen["host routes through node veths"] = sorted(
        f"{r.get('dst')} via {r.get('gateway')} dev {r.get('dev')}"
        for r in ip_json("route") if r.get("dev") in host_devices
    )
    seen["host veths (not Docker's)"] = sorted(
        f"{i['ifname']} {i.get('operstate')}" for i in ip_json("link", "show", "type", "veth")
        if not str(i.get("master", "")).startswith(("docker", "br-"))
    )
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True, timeout=30, check=True).stdout
    seen["iptables rules of the set-up"] = sorted(line for line in rules.splitlines() if "DRILL" in line)
    seen["nodes Ready"] = sorted(f"{n} {ready}" for n, ready in Kubectl().nodes_ready().items())
    return seen


def test_harness_killed_mid_node_loss_then_cleanup_puts_the_node_back(tmp_path: Path) -> None:
    """SIGKILL while a node is cut off (NotReady, its pods being evicted); `drill cleanup` must bring its link
    and routes back and the node Ready, and leave no namespace, port-forward, pod veth or rule of the run."""
    from harness.backends.kubernetes import Kubectl, KubernetesBackend
    from harness.backends.kubernetes.node_loss import refusal

    probe = KubernetesBackend(load_stack(ROOT / "docker-compose.yml"), tmp_path / "probe")
    why = refusal(probe.name, probe.node_ready(), probe.losable_nodes())
    if why is not None:
        pytest.skip(why)
    if os.geteuid() != 0:
        pytest.skip("reading the node network namespaces needs root, like scripts/k8s-setup.sh")
    before = node_network()
    run_dir = tmp_path / "run"
    line = killed_once_it_says(NODE_LOSER, run_dir)  # the drill dies with the node cut off
    if line[:1] == ["SKIP"]:
        pytest.skip(" ".join(line[1:]))
    assert line[:1] == ["INJECTED"], line
    namespace, node, ports = line[1], line[2], [int(p) for p in line[3:]]
    assert Kubectl().nodes_ready()[node] is False
    assert node_network() != before  # the fault is really in place: the node's link is down
    # the dead run still holds the node: another run may not cut it off, and is told how to get it back
    with pytest.raises(EnvironmentProblem, match=f"node {node} is still cut off by run .*its process is gone.*"
                       "`drill cleanup` puts it back"):
        probe.lose_node(node)
    out = drill_cleanup(run_dir)
    assert "rolled back" in out and node in out, out  # the node, not only the namespace
    assert node_lease(node) is None  # and the dead run's mark on it is gone
    assert leftovers(namespace, ports) == []
    deadline = time.monotonic() + 60  # the namespace is gone; the kubelets' CNI tear-down of its pods may trail
    while (after := node_network()) != before and time.monotonic() < deadline:
        time.sleep(1)
    assert {k: v for k, v in after.items() if before.get(k) != v} == {}, (before, after)


def node_lease(node: str) -> NodeLease | None:
    from harness.backends.kubernetes import Kubectl
    from harness.backends.kubernetes.node_loss import NodeLease

    return NodeLease.of(Kubectl().json("get", "node", node, namespaced=False))


def test_two_runs_cannot_cut_off_the_same_node_and_only_the_holder_puts_it_back(tmp_path: Path) -> None:
    """The node is the cluster's: a run that cuts it off holds it until it puts it back. Another run's node loss
    is refused meanwhile, and another run's rollback (a clean-up after it died) leaves the node to the holder."""
    from harness.backends.kubernetes import KubernetesBackend
    from harness.backends.kubernetes.node_loss import refusal

    a = KubernetesBackend(load_stack(ROOT / "docker-compose.yml"), tmp_path / "a")
    b = KubernetesBackend(load_stack(ROOT / "docker-compose.yml"), tmp_path / "b")
    why = refusal(a.name, a.node_ready(), a.losable_nodes())
    if why is not None:
        pytest.skip(why)
    node = sorted(n for n in a.losable_nodes() if a.node_ready().get(n))[0]
    link = a._node_link(node)

    def link_up() -> bool:
        shown = subprocess.run(["ip", "netns", "exec", link.netns, "ip", "-j", "link", "show", "dev", link.device],
                               capture_output=True, text=True, timeout=30, check=True).stdout
        return "UP" in json.loads(shown)[0].get("flags", [])

    assert node_lease(node) is None and link_up()
    a.lose_node(node)
    try:
        assert not link_up()
        held = node_lease(node)
        assert held is not None and held.run_id == a.run_id
        with pytest.raises(EnvironmentProblem, match=f"node {node} is cut off by run {a.run_id} .*alive.*cannot "
                           "share a node"):
            b.lose_node(node)
        b.restore_node(node, timeout=5)  # not b's to put back: untouched
        assert not link_up() and node_lease(node) == held
    finally:
        a.restore_node(node)
    assert link_up() and node_lease(node) is None and a.node_ready()[node]
    b.lose_node(node)  # free again: the next run may
    b.restore_node(node)
    assert link_up() and node_lease(node) is None


@pytest.mark.parametrize("quarter", ["Q1", "Q2", "Q3", "Q4"])
def test_quarterly_drill_passes_on_the_kubernetes_backend(quarter: str, tmp_path: Path) -> None:
    # the default kill mode (hold): Q4's crashed engine stays down until the on-call restarts it, as on the
    # other backends; a single SIGKILL would be healed by the kubelet before TradingEngineDown can fire
    env = {k: v for k, v in os.environ.items() if k != "DRILL_K8S_KILL"}
    proc = subprocess.run(
        [DRILL, "run", "--backend", "kubernetes", "--quarter", quarter, "--report", str(tmp_path / "report")],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "passed" in proc.stdout


def test_parallel_workers_run_in_namespaces_of_their_own(tmp_path: Path) -> None:
    """`drill run -n 2`: both workers drive the same cluster at once, each scenario in its own namespace."""
    import json

    report = tmp_path / "report"
    proc = subprocess.run(
        [DRILL, "run", "-n", "2", "--backend", "kubernetes", "--quarter", "Q2", "--report", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert {p.name for p in report.glob("journal-gw*.json")} == {"journal-gw0.json", "journal-gw1.json"}
    states = [json.loads(p.read_text()) for p in report.glob("runs/*/stack.json")]
    namespaces = [s["namespace"] for s in states]
    assert len(namespaces) == 4 and len(set(namespaces)) == 4, namespaces
    for namespace in namespaces:
        assert leftovers(namespace, []) == []
    assert all(s["status"] == "down" for s in states), [s["status"] for s in states]


def test_node_loss_is_detected_and_the_lost_pods_are_rescheduled(tmp_path: Path) -> None:
    """Two nodes (scripts/k8s-setup.sh --nodes 2): cut node 2 off; the control plane marks it NotReady, its
    pods come back on node 1 (healthy through the same port-forward addresses); rollback makes node 2 Ready again."""
    from harness.backends.kubernetes import KubernetesBackend
    from harness.backends.kubernetes.node_loss import LossPlan, NodeLoss, plan_loss, refusal
    from harness.faults.base import FaultContext

    b = KubernetesBackend(load_stack(ROOT / "docker-compose.yml"), tmp_path / "run")
    why = refusal(b.name, b.node_ready(), b.losable_nodes())  # the same decision as the drill's first step
    if why is not None:
        pytest.skip(why)
    b.up()
    try:
        keep = [s.name for s in b.stack.services_with_role("toxiproxy")]
        plan = plan_loss(b.placement(), b.losable_nodes(), b.node_ready(), keep)
        if not isinstance(plan, LossPlan):
            pytest.skip(plan)
        node = plan.node
        health_ports = {name: spec.health.port for name, spec in b.stack.services.items() if spec.health}
        on_node = [s for s in plan.services if s in health_ports]
        urls = {s: b.endpoint(s, health_ports[s]).url for s in on_node}
        fault = NodeLoss(b, node, services=plan.services, ctx=FaultContext(run_dir=b.run_dir))
        t0 = time.monotonic()
        fault.inject()
        while b.node_ready().get(node):
            assert time.monotonic() - t0 < 120, f"{node} still Ready 120 s after its link went down"
            time.sleep(0.5)
        detected = time.monotonic() - t0
        pending = set(on_node)
        while pending:
            assert time.monotonic() - t0 < 240, f"not rescheduled within 240 s: {sorted(pending)}"
            for s in list(pending):
                if b.node_of(s) not in (None, node) and b._healthy(b.stack.services[s])[0]:
                    pending.discard(s)
            time.sleep(0.5)
        rescheduled = time.monotonic() - t0
        assert all(b.endpoint(s, health_ports[s]).url == u for s, u in urls.items())  # the same addresses
        t1 = time.monotonic()
        fault.rollback()
        assert b.node_ready()[node]
        print(
            f"node loss of {node} ({', '.join(on_node)}): NotReady after {detected:.1f}s, every lost service "
            f"healthy on another node after {rescheduled:.1f}s; rollback (node Ready again) "
            f"{time.monotonic() - t1:.1f}s"
        )
    finally:
        ports = list(b.ports.values())
        b.down()
        assert leftovers(b.namespace, ports) == []


def test_a_teams_own_manifests_run_the_broker_disconnect_drill(tmp_path: Path) -> None:
    """x-drill.kubernetes.manifests: the broker, the market data and the engine deployed from hand-written
    manifests (tests/support/k8s_team.py: container `app`, the team's labels, links re-pointed at Toxiproxy by
    the engine's own arguments); Toxiproxy, monitoring and the dashboard still from compose. Q2 cuts the broker
    link through Toxiproxy, so it passes only if the team's engine really talks through the link."""
    import json

    from harness.backends.kubernetes import KubernetesBackend
    from tests.support.k8s_team import TEAM_SERVICES, mock_manifests, team_stack

    stack_file = team_stack(tmp_path / "team", mock_manifests())
    b = KubernetesBackend(load_stack(stack_file), tmp_path / "up")
    b.up()
    try:  # the team's pods, adopted: its labels and the drill's, the container named after the service
        for name in TEAM_SERVICES:
            pod = b._pod(name) or {}
            assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == name, pod["metadata"]["labels"]
            assert [c["name"] for c in pod["spec"]["containers"]] == [name]
        assert "app.kubernetes.io/name" not in ((b._pod("toxiproxy") or {})["metadata"]["labels"])  # compose's
    finally:
        b.down()
    report = tmp_path / "report"
    proc = subprocess.run(
        [DRILL, "run", "--backend", "kubernetes", "--stack-file", str(stack_file), "--quarter", "Q2",
         "--report", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    states = [json.loads(p.read_text()) for p in report.glob("runs/*/stack.json")]
    assert states and all(s["status"] == "down" for s in states)
    for state in states:
        assert leftovers(state["namespace"], []) == []
    assert "4 passed" in proc.stdout, proc.stdout[-3000:]
