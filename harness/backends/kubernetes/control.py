"""The kubernetes backend: the stack's services as Deployments and Services in a namespace of their own.

* ``up`` checks the cluster (reachable, kubeconfig pointing at this machine, every image on every Ready
  node), creates namespace ``drill-<run id>`` (labelled ``drill.run-id``), one ClusterIP Service per
  compose service, then Toxiproxy's Deployment; once Toxiproxy answers it creates the links through its
  API (upstream ``<service>:<port>``, resolved in the pods by ``hostAliases``) and then deploys every
  other service (translation: :mod:`harness.backends.kubernetes.manifests`). It waits until every
  ``x-drill.health`` endpoint answers 200 from the host.
* The host reaches every named port on 127.0.0.1 through ``kubectl port-forward``, kept by a separate
  process (:mod:`harness.backends.kubernetes.forward`) on ports chosen per run that stay the same across
  container restarts, scale to zero and back, and rescheduling.
* Faults: **kill** SIGKILLs the container through the node's containerd (``ctr tasks kill``): the
  kubelet restarts it (restartPolicy Always), which is part of what the drill measures. **stop/start**
  scale the Deployment to 0 and back to 1. **pause/resume** freeze and thaw the container's cgroup
  (``ctr tasks pause/resume``). Network faults are Toxiproxy's, unchanged. Kill and pause need the
  node's containerd socket, which ``scripts/k8s-setup.sh`` records in ``runtime.json`` beside the
  kubeconfig.
* ``<run_dir>/stack.json`` records namespace, ports, links, intended states, the owner process and
  the port-forward keeper, so ``drill stack status/down`` and ``drill cleanup`` attach;
  :func:`harness.backends.kubernetes.reaper.reap_dead_runs` deletes the namespaces of dead runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.backends.base import CommandResult, LinkInfo, ServiceState
from harness.backends.container_base import CONTAINER_WORKDIR, ContainerBackend, owner_dead
from harness.backends.kubernetes import exec as k8s_exec
from harness.backends.kubernetes import logs as k8s_logs
from harness.backends.kubernetes import manifests, team
from harness.backends.kubernetes.cluster import (
    Kubectl,
    KubectlResult,
    NodeLink,
    containerd_sockets,
    node_links,
    normalized_image,
    wait_until,
)
from harness.backends.kubernetes.crashloop import CrashLoop
from harness.backends.kubernetes.forward import newest_pods
from harness.backends.kubernetes.forward import read_state as read_forward_state
from harness.backends.kubernetes.node_loss import LEASE_ANNOTATION, NodeLease, lease_conflict
from harness.backends.reaper import proc_start as _proc_start
from harness.errors import BackendError, EnvironmentProblem, InputError, StackFileError
from harness.stack import StackDescription, load_stack
from harness.toxiproxy import ToxiproxyAdapter

BUILD_HINT = (
    "build the images (scripts/build-images.sh) and load them into the node: scripts/k8s-setup.sh does both "
    "(FORCE_IMAGES=1 reloads them)"
)
FORWARD_STATE = "port-forward-state.json"  # the keeper's: service -> the pod its forward goes to
_FAILING = {
    "ErrImageNeverPull",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerError",
    "CreateContainerConfigError",
    "InvalidImageName",
    "RunContainerError",
}


class KubernetesBackend(ContainerBackend):
    """A stack of Deployments in namespace ``drill-<run id>`` of the local cluster."""

    name = "kubernetes"
    default_health_timeout = 90.0
    problem_every_s = 2.0  # asking the API server about the pod costs a kubectl call

    def __init__(
        self,
        stack: StackDescription,
        run_dir: Path,
        *,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        health_timeout: float | None = None,
        kubeconfig: Path | None = None,
    ) -> None:
        super().__init__(stack, run_dir, run_id=run_id, env=env, health_timeout=health_timeout)
        self.namespace = manifests.namespace_name(self.run_id)
        self.kubeconfig = kubeconfig
        self.keeper: dict[str, Any] | None = None
        self._kubectl: Kubectl | None = None
        self._toxiproxy: ToxiproxyAdapter | None = None
        self._followers: dict[str, k8s_logs.LogFollower] = {}
        self._templates: dict[str, dict[str, Any]] = {}
        self._team = team.TeamManifests()  # the team's own manifests, read by compose_services()
        self._holds: dict[str, CrashLoop] = {}
        self.kill_mode = os.environ.get("DRILL_K8S_KILL") or "hold"
        if self.kill_mode not in ("restart", "hold"):
            raise InputError(
                f"DRILL_K8S_KILL={self.kill_mode!r}: expected 'hold' (a killed service stays down until it is "
                "restarted, the default) or 'restart' (the kubelet restarts a killed container by itself)"
            )

    # --- cluster, manifests ------------------------------------------------------------------------

    @property
    def kubectl(self) -> Kubectl:
        if self._kubectl is None:
            self._kubectl = Kubectl(self.kubeconfig, self.namespace)
        return self._kubectl

    def compose_services(self) -> dict[str, manifests.ComposeService]:
        try:
            doc = yaml.safe_load(self.stack.path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise StackFileError(f"cannot read the compose services: {exc}", location=str(self.stack.path)) from exc
        if not isinstance(doc, dict):
            raise StackFileError("not a compose mapping", location=str(self.stack.path))
        env = self._env()
        self._team = team.read_team_manifests(self.stack, doc, env)
        return manifests.read_compose_services(self.stack, doc, env, self.run_dir, skip=self._team.deployments)

    def check_images(self, services: Mapping[str, manifests.ComposeService]) -> None:
        nodes = self.kubectl.node_images()
        if not nodes:
            raise EnvironmentProblem(
                f"the cluster at {self.kubectl.server} has no Ready node",
                hint="`kubectl get nodes`; scripts/k8s-setup.sh starts the nodes",
            )
        missing: dict[str, list[str]] = {}
        wanted = {svc.image for svc in services.values()} | set(self._team.local_images())
        for image in sorted(wanted):
            for node, images in nodes.items():
                if normalized_image(image) not in images and image not in images:
                    missing.setdefault(image, []).append(node)
        if missing:
            raise EnvironmentProblem(
                "image(s) missing from the node(s): "
                + "; ".join(f"{img} (on {', '.join(n)})" for img, n in sorted(missing.items())),
                hint=BUILD_HINT,
            )

    # --- lifecycle ---------------------------------------------------------------------------------

    def plan(self) -> None:
        """Addresses from the description's declared ports, for a dry run: nothing is contacted or created."""
        for spec in self.stack.services.values():
            for port_name, port in spec.ports.items():
                self.ports.setdefault(f"{spec.name}.{port_name}", port)
        toxiproxies = self.stack.services_with_role("toxiproxy")
        for name, link in self.stack.links.items():
            target = self.stack.service(link.target)
            listen = f"{toxiproxies[0].name if toxiproxies else 'toxiproxy'}:{link.listen_port or 0}"
            self.links.setdefault(name, LinkInfo(name, name, listen, f"{target.name}:{target.ports[link.port]}"))

    def up(self) -> None:
        """Namespace, Services, Toxiproxy and its links, then every other service; wait until all are healthy."""
        if self.status == "up":
            raise BackendError(f"a stack is already running from {self.run_dir}", hint="`drill stack down` first")
        services = self.compose_services()  # a compose file that does not translate: exit 2 before anything
        self.kubectl.ping()
        self.check_images(services)
        for sub in ("logs", "workdir"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        for spec in self.stack.services.values():
            for port_name in spec.ports:
                self.ports[f"{spec.name}.{port_name}"] = self._leases.take()
        self.status = "starting"
        self._save()
        try:
            self._create(services)
            self.status = "up"
            self._save()
        except BaseException:
            self.down()
            raise

    def _create(self, services: Mapping[str, manifests.ComposeService]) -> None:
        owner = json.dumps(self.owner) if self.owner else "detached"
        self.kubectl.apply(manifests.namespace(self.namespace, self.run_id, self.run_dir, owner))
        ports = {name: manifests.service_ports(self.stack, name) for name in self.stack.services}
        labels = {manifests.LABEL_RUN_ID: self.run_id, **manifests.MANAGED_BY}
        # the team's Services as written; one from the x-drill ports for every other service of the stack
        items = [team.adopt_object(obj, labels) for obj in self._team.objects]
        items += [manifests.service(name, self.run_id, ports[name])
                  for name in self.stack.services if name not in self._team.service_names]
        self.kubectl.apply({"apiVersion": "v1", "kind": "List", "items": items})
        cluster_ips = {
            s["metadata"]["name"]: s["spec"]["clusterIP"] for s in self.kubectl.json("get", "services")["items"]
        }
        wait_until(
            f"service account 'default' in namespace {self.namespace}",
            lambda: self.kubectl.run("get", "serviceaccount", "default", check=False).code == 0,
            30.0,
        )
        deployments = {
            name: manifests.deployment(svc, self.run_id, ports[name], cluster_ips) for name, svc in services.items()
        }
        for name, dep in self._team.deployments.items():
            deployments[name] = team.adopt(
                dep, name, {**labels, manifests.LABEL_SERVICE: name}, manifests.host_aliases(cluster_ips),
                manifests.eviction_tolerations(),
            )
        self._templates = {name: d["spec"]["template"] for name, d in deployments.items()}
        self._start_keeper()
        toxiproxies = [s.name for s in self.stack.services_with_role("toxiproxy")]
        for name in toxiproxies:
            config = manifests.links_config_map(self.stack, name, self.run_id)
            self.kubectl.apply(config)
            manifests.load_links_at_start(deployments[name], config["metadata"]["name"])
            deployments[name]["spec"]["template"]["spec"]["affinity"] = manifests.STABLE_NODE_AFFINITY
            self._deploy(deployments[name])
        self._wait_all_healthy(toxiproxies)
        self._create_links()
        healthy = set(toxiproxies)
        others = [n for n in self.stack.start_order() if n not in toxiproxies]
        for name in others:
            # a service starts once its depends_on answer (as compose's service_healthy): an engine that finds
            # its broker not there yet gives up after its retries, more likely with pods spread over two nodes
            waiting = [d for d in self.stack.services[name].depends_on if d not in healthy]
            if waiting:
                self._wait_all_healthy(waiting)
                healthy.update(waiting)
            self._deploy(deployments[name])
        self._wait_all_healthy([n for n in others if n not in healthy])

    def _deploy(self, deployment: dict[str, Any]) -> None:
        self._mark([deployment["metadata"]["name"]], ServiceState.RUNNING)
        self.kubectl.apply(deployment)

    def _create_links(self) -> None:
        """Check the proxies Toxiproxy loaded from its ConfigMap; create any it did not (an image that ignores
        ``-config``) through its API."""
        proxy = self.toxiproxy
        toxiproxy_service = self.stack.services_with_role("toxiproxy")[0].name
        loaded = proxy.proxies()
        for want in manifests.link_proxies(self.stack):
            name, listen, upstream = want["name"], want["listen"], want["upstream"]
            got = loaded.get(name)
            if got is None:
                got = proxy.create_proxy(name, listen, upstream)
            elif got.upstream != upstream or got.listen.rsplit(":", 1)[-1] != listen.rsplit(":", 1)[-1]:
                raise BackendError(
                    f"Toxiproxy's proxy {name!r} listens on {got.listen} to {got.upstream}; the stack file says "
                    f"{listen} to {upstream}",
                    hint=f"`drill stack down --run-dir {self.run_dir}` and start again",
                )
            self.links[name] = LinkInfo(name, got.name, f"{toxiproxy_service}:{listen.rsplit(':', 1)[-1]}", upstream)
        self._save()

    def _start_keeper(self) -> None:
        spec = {
            "kubeconfig": str(self.kubectl.kubeconfig),
            "namespace": self.namespace,
            "logs": str(self.run_dir / "logs"),
            "state": str(self.run_dir / FORWARD_STATE),
            "services": {
                name: {str(self.ports[f"{name}.{pn}"]): port for pn, port in self.stack.services[name].ports.items()}
                for name in self.stack.services
                if self.stack.services[name].ports
            },
        }
        (self.run_dir / FORWARD_STATE).unlink(missing_ok=True)  # what a keeper of an earlier stack wrote
        path = self.run_dir / "port-forward.json"
        path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        with (self.run_dir / "logs" / "port-forward.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.backends.kubernetes.forward", str(path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.keeper = {"pid": proc.pid, "start": _proc_start(proc.pid)}
        self._save()

    def _nudge_keeper(self) -> None:
        if self.keeper and not owner_dead(self.keeper):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(self.keeper["pid"]), signal.SIGUSR1)

    def down(self) -> None:
        """Stop the port-forwards, thaw what is frozen, delete the namespace (everything in it) and wait."""
        for follower in self._followers.values():
            follower.close()
        self._followers.clear()
        for loop in self._holds.values():
            loop.stop()
        self._holds.clear()
        stop_keeper(self.keeper)
        self.keeper = None
        try:
            for name in self.stack.services:
                with contextlib.suppress(BackendError):
                    self._thaw(name)
            delete_namespace(self.kubectl, self.namespace, wait=False)
        finally:
            for name in self._intended:
                self._intended[name] = ServiceState.STOPPED
            self.status = "down"
            self._save()
            self._leases.release()

    def close(self) -> None:
        for follower in self._followers.values():
            follower.close()

    # --- pods and containers ---------------------------------------------------------------------------

    def _pods(self, service: str) -> list[dict[str, Any]]:
        self.stack.service(service)
        items: list[dict[str, Any]] = self.kubectl.json(
            "get", "pods", "-l", f"{manifests.LABEL_SERVICE}={service}", timeout=20
        )["items"]
        return sorted(items, key=lambda p: str(p["metadata"].get("creationTimestamp", "")), reverse=True)

    def _pod(self, service: str) -> dict[str, Any] | None:
        """The service's newest pod that is not being deleted."""
        pods = [p for p in self._pods(service) if not p["metadata"].get("deletionTimestamp")]
        return pods[0] if pods else None

    def _pod_name(self, service: str) -> str | None:
        pod = self._pod(service)
        return None if pod is None else str(pod["metadata"]["name"])

    @staticmethod
    def _container_status(pod: Mapping[str, Any], service: str) -> dict[str, Any]:
        for status in pod.get("status", {}).get("containerStatuses", []) or []:
            if status.get("name") == service:
                return dict(status)
        return {}

    def _container(self, service: str, pod: Mapping[str, Any] | None = None) -> tuple[str, str]:
        """(containerd socket, container id) of the service's running container (in ``pod`` when given)."""
        pod = pod if pod is not None else self._pod(service)
        status = self._container_status(pod, service) if pod else {}
        if pod is None or "running" not in status.get("state", {}):
            raise BackendError(
                f"{service} has no running container in namespace {self.namespace}",
                hint=f"start it first; kubectl --kubeconfig {self.kubectl.kubeconfig} -n {self.namespace} get pods",
            )
        node = str(pod["spec"].get("nodeName", ""))
        sockets = containerd_sockets(self.kubectl.kubeconfig)
        if node not in sockets:
            raise EnvironmentProblem(
                f"kill/pause of {service} needs the containerd socket of node {node!r}, which is not known",
                hint="these faults act on the node's runtime: use a cluster made by scripts/k8s-setup.sh "
                "(it records the sockets in runtime.json beside the kubeconfig)",
            )
        return str(sockets[node]), str(status.get("containerID", "")).split("://", 1)[-1]

    def _ctr(self, socket: str, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                ["ctr", "-a", socket, "-n", "k8s.io", *args], capture_output=True, text=True, timeout=30, check=False
            )
        except FileNotFoundError:
            raise EnvironmentProblem(
                "ctr (containerd's client) is not installed", hint="apt-get install containerd"
            ) from None

    def _task_status(self, socket: str, container_id: str) -> str:
        got = self._ctr(socket, "tasks", "ls")
        for line in got.stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == container_id:
                return fields[-1].upper()
        return "UNKNOWN"

    def state(self, service: str) -> ServiceState:
        """What the cluster says now (another drill process may have acted); intent from stack.json."""
        self._reload_intent(service)
        pod = self._pod(service)
        if pod is not None and "running" in self._container_status(pod, service).get("state", {}):
            socket, cid = self._container(service, pod)  # the same snapshot: no race with a restart
            task = self._task_status(socket, cid)
            if task == "PAUSED":
                return ServiceState.PAUSED
            if task == "RUNNING":
                return ServiceState.RUNNING
            # the runtime says the container is gone (killed) before the kubelet has reported it
        return ServiceState.STOPPED if self._intended[service] == ServiceState.STOPPED else ServiceState.DEAD

    def kill(self, service: str) -> None:
        """SIGKILL the container: a crash, no chance to clean up.

        ``hold`` (the default): the crash lasts until the on-call restarts the service (:meth:`start`), as
        on the other backends, where nothing restarts a crashed service by itself. Every restart the
        kubelet makes in the meantime is SIGKILLed again (a crash loop) while the Deployment is scaled to
        zero, so the service stays down without a loop running for the whole outage. ``restart``
        (``DRILL_K8S_KILL=restart``): one SIGKILL, and the kubelet restarts the container (restartPolicy
        Always) — the self-healing the drill then measures.
        """
        socket, cid = self._container(service)
        if self._task_status(socket, cid) == "PAUSED":
            self._ctr(socket, "tasks", "resume", cid)
        if self.kill_mode == "hold":
            self._mark([service], ServiceState.DEAD)
            loop = CrashLoop(socket, self.namespace, service, done=lambda: not self._pods(service))
            self._holds[service] = loop
            loop.start()
        got = self._ctr(socket, "tasks", "kill", "-s", "SIGKILL", cid)
        if got.returncode != 0 and self.kill_mode != "hold":
            raise BackendError(f"kill {service}: ctr tasks kill failed: {(got.stderr or got.stdout).strip()}")
        wait_until(
            f"{service}'s container to die after SIGKILL", lambda: self._task_status(socket, cid) != "RUNNING", 10.0
        )
        if self.kill_mode == "hold":
            # the pod's containers are dead and are killed again if restarted: its deletion sends no SIGTERM
            # to a live process, so this is still a crash, never a graceful stop
            self.kubectl.run("scale", f"deployment/{service}", "--replicas=0")

    def _release(self, service: str) -> None:
        """End a crash loop (hold mode) and replace a pod in crash back-off, so the service starts at once."""
        loop = self._holds.pop(service, None)
        if loop is not None:
            loop.stop()
        pod = self._pod(service)
        if pod is None:
            return
        waiting = self._container_status(pod, service).get("state", {}).get("waiting") or {}
        if loop is not None or waiting.get("reason") == "CrashLoopBackOff":
            name = str(pod["metadata"]["name"])
            self.kubectl.run("delete", "pod", name, "--grace-period=0", "--force", "--wait=false", check=False)

    def stop(self, service: str) -> None:
        """Scale to zero (SIGTERM, SIGKILL after the grace period) and wait until the pod is gone."""
        self._thaw(service)
        self._mark([service], ServiceState.STOPPED)
        self.kubectl.run("scale", f"deployment/{service}", "--replicas=0")
        wait_until(f"{service}'s pod to be gone after scale to 0", lambda: not self._pods(service), 60.0)

    def start(self, service: str) -> None:
        """Scale back to one (or thaw a frozen one) and wait until healthy."""
        state = self.state(service)
        if state is ServiceState.PAUSED:
            self.resume(service)
            return
        self._mark([service], ServiceState.RUNNING)
        if state is not ServiceState.RUNNING:
            self._release(service)
            self.kubectl.run("scale", f"deployment/{service}", "--replicas=1")
            self._nudge_keeper()
        self.wait_healthy(service, self.health_timeout)

    def pause(self, service: str) -> None:
        socket, cid = self._container(service)
        self._mark([service], ServiceState.PAUSED)
        got = self._ctr(socket, "tasks", "pause", cid)
        if got.returncode != 0 and "paused" not in got.stderr:
            raise BackendError(f"pause {service}: ctr tasks pause failed: {(got.stderr or got.stdout).strip()}")

    def resume(self, service: str) -> None:
        self._thaw(service)
        self._mark([service], ServiceState.RUNNING)

    def _thaw(self, service: str) -> None:
        pod = self._pod(service)
        if pod is None or "running" not in self._container_status(pod, service).get("state", {}):
            return
        socket, cid = self._container(service, pod)
        if self._task_status(socket, cid) == "PAUSED":
            got = self._ctr(socket, "tasks", "resume", cid)
            if got.returncode != 0:
                raise BackendError(f"resume {service}: ctr tasks resume failed: {(got.stderr or got.stdout).strip()}")

    # --- nodes (node loss) ---------------------------------------------------------------------------------

    def node_ready(self) -> dict[str, bool]:
        """Node name -> whether the control plane sees it Ready now."""
        return self.kubectl.nodes_ready()

    def node_of(self, service: str) -> str | None:
        """The node the service's current pod is scheduled on (None when it has no pod)."""
        pod = self._pod(service)
        return None if pod is None else (str(pod["spec"].get("nodeName") or "") or None)

    def placement(self) -> dict[str, str | None]:
        """Service -> the node its current pod (the newest not being deleted) is scheduled on, None when it has
        none: the whole stack in one API call."""
        pods = [
            p for p in self.kubectl.json("get", "pods", "-l", manifests.LABEL_SERVICE, timeout=20)["items"]
            if not p["metadata"].get("deletionTimestamp")
        ]
        newest: dict[str, dict[str, Any]] = {}
        for pod in sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", ""))):
            newest[str(pod["metadata"].get("labels", {}).get(manifests.LABEL_SERVICE))] = pod
        return {
            name: (str(newest[name]["spec"].get("nodeName") or "") or None) if name in newest else None
            for name in self.stack.services
        }

    def losable_nodes(self) -> set[str]:
        """The nodes whose link the set-up made, so node loss can cut them off (``runtime.json``)."""
        return set(node_links(self.kubeconfig or self.kubectl.kubeconfig))

    def _node_link(self, node: str) -> NodeLink:
        links = node_links(self.kubeconfig or self.kubectl.kubeconfig)
        if node not in links:
            known = ", ".join(sorted(links)) or "none: the cluster has one node"
            raise EnvironmentProblem(
                f"node loss needs a node whose link the set-up made; {node!r} is not one (nodes that can be lost: "
                f"{known})",
                hint="start the cluster with two nodes: scripts/k8s-setup.sh --nodes 2",
            )
        return links[node]

    def _ip(self, *argv: str, netns: str | None = None) -> str:
        cmd = ["ip", "netns", "exec", netns, "ip", *argv] if netns else ["ip", *argv]
        try:
            got = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        except FileNotFoundError:
            raise EnvironmentProblem("ip (iproute2) is not installed", hint="apt-get install iproute2") from None
        if got.returncode != 0:
            raise BackendError(
                f"`{' '.join(cmd)}` failed: {got.stderr.strip()}",
                hint="node loss changes the node's network: it needs root, like scripts/k8s-setup.sh",
            )
        return got.stdout

    def lose_node(self, node: str) -> None:
        """The whole machine drops off: its link goes down, so its kubelet stops reporting and its pods are cut
        off (they keep running, as on a partitioned machine). The control plane marks it NotReady after its
        grace period (20 s, ``--node-monitor-grace-period``) and evicts its pods 5 s later; their Deployments
        replace them on the nodes that are left. Refused while another run has the node cut off."""
        link = self._node_link(node)
        self._take_node(node)
        try:
            self._ip("link", "set", link.device, "down", netns=link.netns)
        except BaseException:
            self._give_node_back(node)
            raise

    def restore_node(self, node: str, timeout: float = 120.0) -> None:
        """The link back up, with the routes its going down deleted; wait until the node is Ready again. A node
        another run holds is left to that run (this run's cut ended when that run took it)."""
        link = self._node_link(node)
        held, _ = self._node_lease(node)
        if held is not None and held.run_id != self.run_id:
            print(f"node {node}: not put back by run {self.run_id}: it is held by {held.describe()}",
                  file=sys.stderr, flush=True)
            return
        self._ip("link", "set", link.device, "up", netns=link.netns)
        for route in link.routes:
            self._ip("route", "replace", *route.split(), netns=link.netns)
        for route in link.host_routes:
            self._ip("route", "replace", *route.split())
        wait_until(f"node {node} Ready again after its link came back", lambda: self.node_ready().get(node), timeout)
        self._give_node_back(node)
        self._nudge_keeper()

    def _node_lease(self, node: str) -> tuple[NodeLease | None, str]:
        """(the run holding ``node``, the Node's resourceVersion)."""
        obj = self.kubectl.json("get", "node", node, timeout=20, namespaced=False)
        return NodeLease.of(obj), str(obj["metadata"].get("resourceVersion", ""))

    def _take_node(self, node: str) -> None:
        """Mark ``node`` as cut off by this run, only where no run has: the annotation is written with the
        resourceVersion read, so of two runs racing for the node one gets a conflict and reads the winner."""
        lease = NodeLease(self.run_id, self.namespace, self.owner)
        for _ in range(10):
            held, version = self._node_lease(node)
            conflict = lease_conflict(node, held, self.run_id, cut_off=held is not None and not self._link_up(node))
            if conflict:
                raise EnvironmentProblem(
                    conflict, hint=f"kubectl get node {node} -o jsonpath='{{.metadata.annotations}}' shows who"
                )
            if held is not None and held.run_id == self.run_id:
                return  # ours already (an inject retried)
            # a stale mark (its run dead, the node back) is overwritten
            got = self._annotate_node(node, f"{LEASE_ANNOTATION}={lease.value()}", version)
            if got.code == 0:
                return
            if "modified" not in got.stderr and "onflict" not in got.stderr:
                raise BackendError(f"could not mark node {node} as cut off by this run: {got.stderr.strip()}")
            time.sleep(0.2)  # the node changed between read and write (its kubelet's status): read again
        raise BackendError(f"could not mark node {node} as cut off by this run: it kept changing (10 tries)")

    def _link_up(self, node: str) -> bool:
        """The node's link is up (the set-up's state; a node loss sets it down)."""
        link = self._node_link(node)
        shown = json.loads(self._ip("-j", "link", "show", "dev", link.device, netns=link.netns) or "[]")
        return bool(shown) and "UP" in shown[0].get("flags", [])

    def _annotate_node(self, node: str, change: str, version: str) -> KubectlResult:
        """``kubectl annotate node`` only if the Node is still at ``version`` (else a conflict, code != 0)."""
        return self.kubectl.run("annotate", "--overwrite", "node", node, change, f"--resource-version={version}",
                                check=False, namespaced=False, timeout=20)

    def _give_node_back(self, node: str) -> None:
        """Remove this run's mark from ``node`` (only this run's, and only if the Node did not change since)."""
        for _ in range(10):
            held, version = self._node_lease(node)
            if held is None or held.run_id != self.run_id:
                return
            got = self._annotate_node(node, f"{LEASE_ANNOTATION}-", version)
            if got.code == 0:
                return
            time.sleep(0.2)
        raise BackendError(f"could not remove this run's mark {LEASE_ANNOTATION} from node {node} (10 tries)",
                           hint=f"kubectl annotate node {node} {LEASE_ANNOTATION}-")

    # --- health ------------------------------------------------------------------------------------------

    def _problem(self, service: str) -> str | None:
        """Why the service's pod cannot come up (image missing, crash loop), or None while it may still."""
        pod = self._pod(service)
        if pod is None:
            return None
        status = self._container_status(pod, service)
        waiting = status.get("state", {}).get("waiting") or {}
        if waiting.get("reason") in _FAILING:
            return f"{waiting['reason']}: {waiting.get('message', '')}"
        if waiting.get("reason") == "CrashLoopBackOff" and int(status.get("restartCount", 0)) >= 3:
            last = (status.get("lastState") or {}).get("terminated") or {}
            return f"crash loop (restarted {status['restartCount']} times, last exit code {last.get('exitCode')})"
        return None

    def wait_healthy(self, service: str, timeout: float) -> None:
        """It answers its health endpoint from its newest pod, to the host and to the other pods: a replaced pod's
        successor is healthy once the port-forward and the Service go to it, not while the old one still answers."""
        deadline = time.monotonic() + timeout
        super().wait_healthy(service, timeout)
        if self._wait_reached([service], deadline):
            super().wait_healthy(service, max(deadline - time.monotonic(), 1.0))  # through the new forward

    def _wait_all_healthy(self, names: list[str]) -> None:
        deadline = time.monotonic() + self.health_timeout
        super()._wait_all_healthy(names)
        if self._wait_reached(names, deadline):
            super()._wait_all_healthy(names)

    def _not_reached(self, names: list[str]) -> dict[str, str]:
        names = [n for n in names if self.stack.services[n].ports]  # no port: nothing reaches it, nothing to wait for
        if not names:
            return {}
        forwarded = read_forward_state(self.run_dir / FORWARD_STATE)
        return not_reached(
            names,
            self.kubectl.json("get", "services", timeout=20)["items"],
            self.kubectl.json("get", "pods", "-l", manifests.LABEL_SERVICE, timeout=20)["items"],
            self.kubectl.json("get", "endpointslices", timeout=20)["items"],
            {n: (forwarded or {}).get(n) for n in names},
        )

    def _wait_reached(self, names: list[str], deadline: float) -> bool:
        """Until each of ``names`` is reached at its newest pod (:func:`not_reached`), or the error saying which
        is not and why. True when it had to wait (the health answers seen before may have come from the old
        pod)."""
        waited = False
        while names:
            why = self._not_reached(names)
            if not why:
                break
            if time.monotonic() > deadline:
                name = sorted(why)[0]
                raise self._start_failure(name, why[name])
            waited = True
            self._nudge_keeper()
            time.sleep(0.25)
        return waited

    def _log_where(self, service: str) -> str:
        return f"kubectl -n {self.namespace} logs deploy/{service}"

    def _down_hint(self) -> str:
        return f"`drill stack down --run-dir {self.run_dir}` deletes namespace {self.namespace}"

    def _start_problem(self, service: str) -> str | None:
        problem = self._problem(service)
        return f"cannot start: {problem}" if problem else None

    def _not_serving(self, service: str) -> str | None:
        problem = self._start_problem(service)
        if problem is None and self.state(service) is ServiceState.STOPPED:
            return "is not running (scaled to zero)"
        return problem

    # --- logs -------------------------------------------------------------------------------------------

    def log_path(self, service: str) -> Path:
        spec = self.stack.service(service)
        if spec.log and service == self.stack.workdir_service:
            return self.workdir / spec.log
        path = self.run_dir / "logs" / f"{service}.log"
        follower = self._followers.get(service)
        if follower is None or not follower.thread.is_alive():
            follower = k8s_logs.LogFollower(self.kubectl, service, path, lambda: self._pod_name(service))
            self._followers[service] = follower
            follower.start()
        return path

    def log_tail(self, service: str, lines: int = 20) -> list[str]:
        try:
            return k8s_logs.tail(self.kubectl, self._pod_name(service), service, lines)
        except (BackendError, EnvironmentProblem):
            return []

    # --- operator CLI and runbook shell -------------------------------------------------------------------

    def _exec(self, service: str, argv: list[str], timeout: float) -> CommandResult:
        env = self._exec_env()
        pod = self._pod(service)
        if pod is not None and self.state(service) is ServiceState.RUNNING:
            return k8s_exec.exec_in_pod(
                self.kubectl,
                str(pod["metadata"]["name"]),
                service,
                argv,
                workdir=CONTAINER_WORKDIR,
                env=env,
                timeout=timeout,
            )
        template = self._templates.get(service) or self.kubectl.json("get", f"deployment/{service}")["spec"]["template"]
        return k8s_exec.run_once(
            self.kubectl, template, service, argv, workdir=CONTAINER_WORKDIR, env=env, timeout=timeout
        )

    # --- state file ---------------------------------------------------------------------------------------

    def _state_extra(self) -> dict[str, Any]:
        kubeconfig = str(self.kubectl.kubeconfig) if self._kubectl else (str(self.kubeconfig or "") or None)
        return {"namespace": self.namespace, "kubeconfig": kubeconfig, "keeper": self.keeper}

    @classmethod
    def _from_state(cls, data: Mapping[str, Any], run_dir: Path, health_timeout: float | None) -> KubernetesBackend:
        kubeconfig = data.get("kubeconfig")
        return cls(
            load_stack(Path(data["stack_file"])),
            run_dir,
            run_id=str(data["run_id"]),
            env=data.get("env") or {},
            health_timeout=health_timeout,
            kubeconfig=Path(kubeconfig) if kubeconfig else None,
        )

    def _restore_extra(self, data: Mapping[str, Any]) -> None:
        self.namespace = str(data.get("namespace") or self.namespace)
        self.keeper = data.get("keeper")


def not_reached(
    names: list[str],
    services: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    slices: list[dict[str, Any]],
    forwarded: Mapping[str, str | None],
) -> dict[str, str]:
    """service -> why it is not yet reached at its newest pod, for those of ``names`` that are not.

    ``services``, ``pods``, ``slices``: the namespace's items as the API lists them; ``forwarded``: the pod the
    port-forward keeper forwards each service with ports to (None: no forward yet). The host reaches a service
    through its port-forward, the other pods through its Service's ClusterIP; after a pod is replaced (deleted,
    rescheduled, scaled 0 -> 1) both follow the new pod a moment later (the keeper's poll, the endpoint
    controller): until then a health answer on 127.0.0.1 may come from the old pod, and a connection from a pod
    to the Service may go to it."""
    newest = newest_pods(pods, running=False)  # a Pending successor counts: it is what must be reached
    ready: dict[str, set[str]] = {}
    for eps in slices:
        service = (eps["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready"):
                ready.setdefault(str(service), set()).update(endpoint.get("addresses") or [])
    named = {s["metadata"]["name"] for s in services}  # a service no Service is named after: nothing to route
    why: dict[str, str] = {}
    for name in names:
        current = newest.get(name)
        if current is None:
            why[name] = "has no pod"
            continue
        pod_name = current["metadata"]["name"]
        ip = current.get("status", {}).get("podIP")
        if name in forwarded and forwarded[name] != pod_name:
            went = f"still goes to pod {forwarded[name]}" if forwarded[name] else "goes nowhere yet"
            why[name] = f"answers, but the host's port-forward {went}, not to its newest pod {pod_name}"
        elif name in named and not ip:
            why[name] = f"has no address yet for Service {name} (pod {pod_name})"
        elif name in named and ip not in ready.get(name, set()):
            why[name] = (
                f"answers from the host, but Service {name} does not send to its pod {pod_name} ({ip}) yet "
                f"(ready endpoints: {', '.join(sorted(ready.get(name, set()))) or 'none'})"
            )
    return why

def stop_keeper(keeper: Mapping[str, Any] | None) -> None:
    """SIGTERM the port-forward keeper's process group (it and its kubectl children), if it is still ours."""
    if not keeper or owner_dead(keeper):
        return
    pid = int(keeper["pid"])
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _proc_start(pid) is not None:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def delete_namespace(kubectl: Kubectl, namespace: str, timeout: float = 90.0, *, wait: bool = True) -> None:
    """Delete the namespace and everything in it (pods without grace); with ``wait``, until it is gone.

    Without ``wait`` it returns once the deletion is under way (the namespace is ``Terminating``, its
    pods are being killed): the namespace controller finishes within seconds, and a new run never
    shares a namespace with an old one.
    """
    k = kubectl.in_namespace(namespace)
    gone = k.run("get", "namespace", namespace, check=False, namespaced=False)
    if gone.code != 0 and "NotFound" in gone.stderr:
        return
    k.run("delete", "deployments,pods", "--all", "--grace-period=0", "--force", check=False, timeout=60)
    k.run("delete", "namespace", namespace, "--wait=false", check=False, namespaced=False)
    if not wait:
        return
    wait_until(
        f"namespace {namespace} to be deleted",
        lambda: "NotFound" in k.run("get", "namespace", namespace, check=False, namespaced=False).stderr,
        timeout,
        interval=0.5,
    )
