"""Reaching the cluster: which kubeconfig, whether it is safe to use, and ``kubectl`` as the client.

The client is ``kubectl`` through subprocess (no Python dependency; see docs/kubernetes.md for why):
every call is ``kubectl --kubeconfig K ...`` with a timeout, JSON output is parsed once here, and a
failure becomes a :class:`~harness.errors.BackendError` carrying kubectl's own message.

The kubeconfig is ``$DRILL_KUBECONFIG``, else ``$KUBECONFIG``, else the one ``scripts/k8s-setup.sh``
writes (``$DRILL_K8S_STATE/kubeconfig``, default ``/var/cache/drill-k8s/cluster/kubeconfig``). Its
server must be loopback or inside the node range the set-up script owns (its runtime.json): a drill
injects faults, so it never talks to a cluster somewhere else.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import shutil
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import BackendError, DrillError, EnvironmentProblem, InputError, ToolMissing

DEFAULT_CACHE = Path("/var/cache/drill-k8s")
SETUP_HINT = "run scripts/k8s-setup.sh (builds and starts a local cluster, writes its kubeconfig)"
RUNTIME_FILE = "runtime.json"


def default_state_dir() -> Path:
    return Path(
        os.environ.get("DRILL_K8S_STATE") or Path(os.environ.get("DRILL_K8S_CACHE") or DEFAULT_CACHE) / "cluster"
    )


def kubeconfig_path() -> Path:
    """The kubeconfig the backend uses (see the module docstring for the order)."""
    for var in ("DRILL_KUBECONFIG", "KUBECONFIG"):
        value = os.environ.get(var)
        if value:
            return Path(value.split(os.pathsep)[0])
    return default_state_dir() / "kubeconfig"


def server_of(kubeconfig: Path) -> str:
    """The API server URL of the kubeconfig's current context; :class:`InputError` when it does not parse."""
    try:
        doc = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EnvironmentProblem(f"no kubeconfig at {kubeconfig}: no cluster to run on", hint=SETUP_HINT) from None
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the kubeconfig: {exc}", location=str(kubeconfig)) from exc
    try:
        current = doc["current-context"]
        context = next(c["context"] for c in doc["contexts"] if c["name"] == current)
        return str(next(c["cluster"]["server"] for c in doc["clusters"] if c["name"] == context["cluster"]))
    except (KeyError, TypeError, StopIteration) as exc:
        raise InputError(
            f"the kubeconfig has no usable current context (missing {exc})",
            location=str(kubeconfig),
            hint="`kubectl config use-context NAME`, or point DRILL_KUBECONFIG at the set-up script's kubeconfig",
        ) from None


def project_node_net(kubeconfig: Path) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The node address range the set-up script created and owns, from the ``runtime.json`` it writes
    beside its kubeconfig (``node_net``); None for any other kubeconfig. The harness itself knows no range."""
    try:
        net = json.loads((kubeconfig.parent / "runtime.json").read_text(encoding="utf-8")).get("node_net")
        return ipaddress.ip_network(str(net)) if net else None
    except (OSError, ValueError, AttributeError):
        return None


def check_server(server: str, kubeconfig: Path) -> None:
    """Refuse a server that is neither loopback nor in the node range the project's set-up script owns."""
    host = urllib.parse.urlsplit(server).hostname or ""
    node_net = project_node_net(kubeconfig)
    try:
        addr = ipaddress.ip_address(host)
        allowed = addr.is_loopback or (node_net is not None and addr in node_net)
    except ValueError:
        allowed = host == "localhost"
    if not allowed:
        raise InputError(
            f"the kubeconfig points at {server}: the kubernetes backend only drives a cluster on this machine "
            f"(a loopback address, or the node range {node_net or '(none declared)'} that scripts/k8s-setup.sh "
            "made and recorded in runtime.json beside its kubeconfig)",
            location=str(kubeconfig),
            hint="faults are real: use the local cluster (scripts/k8s-setup.sh) or point DRILL_KUBECONFIG at its "
            "kubeconfig",
        )


@functools.cache
def kubectl_binary() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise ToolMissing(
            "kubectl is not installed", hint="apt-get install kubernetes-client, or run scripts/k8s-setup.sh"
        )
    return path


@dataclass(frozen=True)
class KubectlResult:
    code: int
    stdout: str
    stderr: str


class Kubectl:
    """``kubectl`` bound to one kubeconfig (checked once) and, optionally, one namespace."""

    def __init__(self, kubeconfig: Path | None = None, namespace: str | None = None) -> None:
        self.kubeconfig = (kubeconfig or kubeconfig_path()).resolve()
        self.server = server_of(self.kubeconfig)
        check_server(self.server, self.kubeconfig)
        self.namespace = namespace

    def in_namespace(self, namespace: str) -> Kubectl:
        other = Kubectl.__new__(Kubectl)
        other.kubeconfig, other.server, other.namespace = self.kubeconfig, self.server, namespace
        return other

    def argv(self, *args: str, namespaced: bool = True) -> list[str]:
        base = [kubectl_binary(), f"--kubeconfig={self.kubeconfig}"]
        if namespaced and self.namespace:
            base.append(f"--namespace={self.namespace}")
        return [*base, *args]

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 60.0, check: bool = True, namespaced: bool = True
    ) -> KubectlResult:
        argv = self.argv(*args, namespaced=namespaced)
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise BackendError(
                f"`kubectl {' '.join(args)}` did not answer within {timeout:.0f}s (server {self.server})",
                hint="is the cluster overloaded or down? `kubectl get nodes`; " + SETUP_HINT,
            ) from None
        result = KubectlResult(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise self.error(args, result)
        return result

    def error(self, args: tuple[str, ...] | list[str], result: KubectlResult) -> DrillError:
        text = (result.stderr or result.stdout).strip()[-1500:]
        if _unreachable(text):
            return EnvironmentProblem(
                f"no Kubernetes cluster answers at {self.server} (kubeconfig {self.kubeconfig}): {text}",
                hint=SETUP_HINT,
            )
        return BackendError(f"`kubectl {' '.join(args)}` failed (exit {result.code}): {text}")

    def json(self, *args: str, timeout: float = 60.0, namespaced: bool = True) -> Any:
        out = self.run(*args, "-o", "json", timeout=timeout, namespaced=namespaced).stdout
        try:
            return json.loads(out)
        except json.JSONDecodeError as exc:
            raise BackendError(f"`kubectl {' '.join(args)}` printed no JSON: {out[:300]!r}") from exc

    def apply(self, manifest: dict[str, Any], timeout: float = 60.0) -> None:
        self.run("apply", "-f", "-", stdin=json.dumps(manifest), timeout=timeout)

    def ping(self, timeout: float = 10.0) -> None:
        """The API server answers ``/readyz``, else :class:`EnvironmentProblem` saying how to start one."""
        result = self.run("get", "--raw", "/readyz", timeout=timeout, check=False, namespaced=False)
        if result.code != 0:
            raise EnvironmentProblem(
                f"no Kubernetes cluster answers at {self.server} (kubeconfig {self.kubeconfig}): "
                f"{(result.stderr or result.stdout).strip()[-500:]}",
                hint=SETUP_HINT,
            )

    def nodes_ready(self) -> dict[str, bool]:
        """Node name -> whether the control plane sees it Ready now."""
        return {
            str(node["metadata"]["name"]): _ready(node) for node in self.json("get", "nodes")["items"]
        }

    def node_images(self) -> dict[str, set[str]]:
        """Every Ready node's image names (as the kubelet reports them)."""
        nodes = self.json("get", "nodes")["items"]
        found: dict[str, set[str]] = {}
        for node in nodes:
            if _ready(node):
                names = {n for img in node["status"].get("images", []) for n in img.get("names", [])}
                found[node["metadata"]["name"]] = names
        return found


def _ready(node: Any) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in node.get("status", {}).get("conditions", [])
    )


def _unreachable(text: str) -> bool:
    markers = ("connection refused", "no route to host", "i/o timeout", "Unable to connect to the server", "dial tcp")
    return any(m in text for m in markers)


def normalized_image(image: str) -> str:
    """``drill-mockstack:local`` as containerd names it: ``docker.io/library/drill-mockstack:local``."""
    name = image if ":" in image.rsplit("/", 1)[-1] or "@" in image else f"{image}:latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def _runtime_nodes(kubeconfig: Path) -> dict[str, Any]:
    """The ``nodes`` of the set-up script's ``runtime.json`` (beside the kubeconfig, else the default state)."""
    for where in (kubeconfig.parent / RUNTIME_FILE, default_state_dir() / RUNTIME_FILE):
        try:
            data = json.loads(where.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return dict(data.get("nodes", {}))
    return {}


def containerd_sockets(kubeconfig: Path) -> dict[str, Path]:
    """Node name -> its containerd socket, from the set-up script's ``runtime.json`` beside the kubeconfig."""
    return {str(k): Path(v["containerd"]) for k, v in _runtime_nodes(kubeconfig).items()}


@dataclass(frozen=True)
class NodeLink:
    """How a node made by ``scripts/k8s-setup.sh --nodes 2`` is cut off and put back: its end of the node veth
    (``device`` in network namespace ``netns``) and the routes a link going down deletes."""

    netns: str
    device: str
    routes: tuple[str, ...]
    host_routes: tuple[str, ...]


def node_links(kubeconfig: Path) -> dict[str, NodeLink]:
    """Node name -> its :class:`NodeLink`, for the nodes that can be lost (``runtime.json``)."""
    links = {}
    for node, info in _runtime_nodes(kubeconfig).items():
        link = info.get("link")
        if isinstance(link, dict):
            links[str(node)] = NodeLink(
                str(link["netns"]),
                str(link["device"]),
                tuple(str(r) for r in link.get("routes", [])),
                tuple(str(r) for r in link.get("host_routes", [])),
            )
    return links


def wait_until(what: str, check: Any, timeout: float, interval: float = 0.2) -> Any:
    """Poll ``check()`` until it returns something truthy; :class:`BackendError` naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BackendError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)
