"""The stack description translated into Kubernetes objects: one Namespace, one Service and one Deployment
per compose service. Pure functions of their inputs (unit-tested without a cluster).

* **Names.** The namespace is ``drill-<run id>``, labelled ``drill.run-id``; its annotations carry the
  run directory and the owning process, which is how ``drill cleanup`` finds a dead run's namespace.
* **Images.** The compose ``image:`` with its variables resolved (the local ``drill-*`` images that
  ``scripts/build-images.sh`` makes when you did not set them), ``imagePullPolicy: Never``: nothing is
  pulled, an image missing from the node is reported before anything is created.
* **Commands.** Compose ``entrypoint`` -> ``command``, compose ``command`` -> ``args`` (the same split:
  ``args`` keeps the image's entrypoint). ``environment`` is copied with its variables resolved.
* **Volumes.** Bind mounts (``./monitoring/...``, ``${DRILL_WORKDIR}``) become ``hostPath`` volumes: the
  cluster made by ``scripts/k8s-setup.sh`` runs on this machine, so the trading engine's working
  directory is the run's ``workdir/`` exactly as on the other backends. Named volumes become
  ``<run_dir>/volumes/<name>`` (they survive scale-to-zero, like a compose volume survives a stop).
* **Names resolve without cluster DNS.** Every pod gets ``hostAliases`` mapping each service name to its
  Service's ClusterIP, so ``toxiproxy:8666`` or ``alertmanager:9093`` in the compose commands and in
  Prometheus' static targets work unchanged.
* **compose ``init: true``** becomes ``shareProcessNamespace: true``: the pod's pause process is PID 1
  and reaps zombies, so the service gets SIGTERM like under tini. ``stop_grace_period`` becomes
  ``terminationGracePeriodSeconds``. No liveness or readiness probes: a frozen service must stay frozen
  (the drill measures it), and health is asked from the host as on every backend.
* **Links.** Toxiproxy's Service also exposes each link's ``listen_port``. The proxies (upstream
  ``<service>:<container port>``) are a ConfigMap that Toxiproxy loads at start (``-config``): a Toxiproxy
  pod that is restarted or rescheduled comes back with every link (without the faults that were on them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.container_base import interpolate
from harness.errors import StackFileError
from harness.stack import StackDescription

LABEL_RUN_ID = "drill.run-id"
LABEL_SERVICE = "drill.service"
ANNOTATION_RUN_DIR = "drill/run-dir"
ANNOTATION_OWNER = "drill/owner"
MANAGED_BY = {"app.kubernetes.io/managed-by": "drill"}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


@dataclass(frozen=True)
class ComposeService:
    """What the kubernetes backend reads from one compose service, variables resolved."""

    name: str
    image: str
    command: tuple[str, ...] | None
    entrypoint: tuple[str, ...] | None
    environment: Mapping[str, str]
    volumes: tuple[tuple[str, str, bool], ...]  # (host path, container path, read-only)
    init: bool
    grace_seconds: int


def namespace_name(run_id: str) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", run_id.lower()).strip("-")
    if not name.startswith("drill-"):
        name = f"drill-{name}"
    return name[:63].rstrip("-")


def port_name(name: str) -> str:
    """A Kubernetes port name (lowercase alphanumerics and '-', at most 15 characters)."""
    clean = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-") or "port"
    return clean[:15].rstrip("-")


def read_compose_services(
    stack: StackDescription, doc: Mapping[str, Any], env: Mapping[str, str], run_dir: Path,
    skip: Collection[str] = (),
) -> dict[str, ComposeService]:
    """The compose ``services:`` the backend needs, variables resolved with ``env``; errors name the field.
    ``skip``: the services the team's own manifests deploy (:mod:`.team`)."""
    raw_services = doc.get("services")
    if not isinstance(raw_services, Mapping):
        raise StackFileError("no 'services:' mapping", location=str(stack.path))
    found: dict[str, ComposeService] = {}
    for name in stack.services:
        if name in skip:
            continue
        svc = raw_services.get(name)
        where = f"services.{name}"
        if not isinstance(svc, Mapping) or not svc.get("image"):
            raise StackFileError(
                f"{where}: the kubernetes backend needs an 'image:' (build it first, then load it into the node)",
                location=str(stack.path),
            )
        found[name] = ComposeService(
            name=name,
            image=interpolate(str(svc["image"]), env),
            command=_argv(svc.get("command"), env, f"{where}.command", stack),
            entrypoint=_argv(svc.get("entrypoint"), env, f"{where}.entrypoint", stack),
            environment=_environment(svc.get("environment"), env, f"{where}.environment", stack),
            volumes=tuple(_volume(v, env, stack, run_dir, f"{where}.volumes") for v in svc.get("volumes") or []),
            init=bool(svc.get("init", False)),
            grace_seconds=_grace(svc.get("stop_grace_period"), f"{where}.stop_grace_period", stack),
        )
    return found


def _argv(value: Any, env: Mapping[str, str], where: str, stack: StackDescription) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return ("sh", "-c", interpolate(value, env))
    if isinstance(value, list):
        return tuple(interpolate(str(v), env) for v in value)
    raise StackFileError(f"{where}: expected a list of strings, got {type(value).__name__}", location=str(stack.path))


def _environment(value: Any, env: Mapping[str, str], where: str, stack: StackDescription) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): interpolate("" if v is None else str(v), env) for k, v in value.items()}
    if isinstance(value, list):
        pairs = [str(item).split("=", 1) for item in value]
        return {p[0]: interpolate(p[1] if len(p) > 1 else env.get(p[0], ""), env) for p in pairs}
    raise StackFileError(f"{where}: expected a mapping or a list of KEY=VALUE", location=str(stack.path))


def _volume(
    value: Any, env: Mapping[str, str], stack: StackDescription, run_dir: Path, where: str
) -> tuple[str, str, bool]:
    if not isinstance(value, str):
        raise StackFileError(
            f"{where}: only the short syntax 'source:target[:ro]' is supported", location=str(stack.path)
        )
    parts = interpolate(value, env).split(":")
    if len(parts) < 2 or not parts[1].startswith("/"):
        raise StackFileError(f"{where}: '{value}' is not 'source:/container/path[:ro]'", location=str(stack.path))
    source, target, read_only = parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")
    if source.startswith(("/", ".", "~")):
        host = Path(source).expanduser()
        host = host if host.is_absolute() else (stack.stack_dir / host)
    else:
        host = run_dir / "volumes" / source  # a named volume: one directory per run
    return (str(host.resolve()), target, read_only)


def _grace(value: Any, where: str, stack: StackDescription) -> int:
    if value is None:
        return 10
    match = _DURATION.match(str(value).strip())
    if not match:
        raise StackFileError(f"{where}: '{value}' is not a duration like 5s", location=str(stack.path))
    number, unit = float(match.group(1)), match.group(2) or "s"
    seconds = number / 1000 if unit == "ms" else number * 60 if unit == "m" else number
    return max(1, round(seconds))


def namespace(name: str, run_id: str, run_dir: Path, owner: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {LABEL_RUN_ID: run_id, **MANAGED_BY},
            "annotations": {ANNOTATION_RUN_DIR: str(run_dir), ANNOTATION_OWNER: owner},
        },
    }


def service_ports(stack: StackDescription, name: str) -> dict[str, int]:
    """Kubernetes port name -> container port: the x-drill ports, plus each link's listen port on Toxiproxy."""
    spec = stack.service(name)
    ports = {port_name(p): n for p, n in spec.ports.items()}
    if spec.role == "toxiproxy":
        for index, (link, link_spec) in enumerate(sorted(stack.links.items())):
            ports[port_name(f"link-{link}")] = link_spec.listen_port or 20000 + index
    return ports


def link_listen_port(stack: StackDescription, link: str) -> int:
    toxiproxy = stack.services_with_role("toxiproxy")[0].name
    return service_ports(stack, toxiproxy)[port_name(f"link-{link}")]


LINKS_DIR = "/etc/drill-toxiproxy"
LINKS_FILE = "links.json"


def link_proxies(stack: StackDescription) -> list[dict[str, Any]]:
    """Toxiproxy's proxies for the stack's links, in its ``-config`` / ``/populate`` format."""
    proxies = []
    for name, spec in sorted(stack.links.items()):
        target = stack.service(spec.target)
        proxies.append({
            "name": name,
            "listen": f"0.0.0.0:{link_listen_port(stack, name)}",
            "upstream": f"{target.name}:{target.ports[spec.port]}",
            "enabled": True,
        })
    return proxies


def links_config_map(stack: StackDescription, toxiproxy: str, run_id: str) -> dict[str, Any]:
    """The ConfigMap holding :func:`link_proxies` for Toxiproxy service ``toxiproxy``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{toxiproxy}-links", "labels": {LABEL_RUN_ID: run_id, **MANAGED_BY}},
        "data": {LINKS_FILE: json.dumps(link_proxies(stack), indent=2)},
    }


def load_links_at_start(deployment: dict[str, Any], config_map: str) -> None:
    """Mount the links ConfigMap into Toxiproxy's Deployment and add ``-config`` to its arguments, so every
    start of its container (a restart, a pod on another node) re-creates the proxies."""
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    # no compose `command`: the image's CMD would be replaced by these args, so keep Toxiproxy's API reachable
    args = container.get("args") or ["-host=0.0.0.0"]
    container["args"] = [*args, "-config", f"{LINKS_DIR}/{LINKS_FILE}"]
    container["volumeMounts"].append({"name": "drill-links", "mountPath": LINKS_DIR, "readOnly": True})
    pod["volumes"].append({"name": "drill-links", "configMap": {"name": config_map}})


def service(name: str, run_id: str, ports: Mapping[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {LABEL_RUN_ID: run_id, LABEL_SERVICE: name, **MANAGED_BY}},
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_SERVICE: name},
            "ports": [{"name": pn, "port": p, "targetPort": p, "protocol": "TCP"} for pn, p in ports.items()],
        },
    }


EVICT_AFTER_S = 5
# Toxiproxy holds the faults on the links in memory (the links themselves come back from its ConfigMap): a
# replacement pod would start with every fault gone. It prefers the node scripts/k8s-setup.sh labels
# drill.node=1, the one node loss never takes (a soft preference: on a cluster without the label it changes
# nothing).
STABLE_NODE_AFFINITY = {
    "nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "preference": {"matchExpressions": [{"key": "drill.node", "operator": "In", "values": ["1"]}]},
            }
        ]
    }
}


def host_aliases(cluster_ips: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each Service name -> its ClusterIP in the pods' /etc/hosts: names resolve without cluster DNS."""
    return [{"ip": ip, "hostnames": [host]} for host, ip in sorted(cluster_ips.items())]


def eviction_tolerations() -> list[dict[str, Any]]:
    """A lost node's pods are replaced on another node within seconds of it being found NotReady (the default,
    300 s, would outlast any drill): the node-loss drill measures detection and rescheduling."""
    return [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": EVICT_AFTER_S}
        for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
    ]


def pod_spec(
    svc: ComposeService, ports: Mapping[str, int], cluster_ips: Mapping[str, str], *, restart: str = "Always"
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": svc.name,
        "image": svc.image,
        "imagePullPolicy": "Never",
        "ports": [{"name": pn, "containerPort": p, "protocol": "TCP"} for pn, p in ports.items()],
        "env": [{"name": k, "value": v} for k, v in sorted(svc.environment.items())],
        "volumeMounts": [
            {"name": f"v{i}", "mountPath": target, "readOnly": ro} for i, (_, target, ro) in enumerate(svc.volumes)
        ],
    }
    if svc.entrypoint is not None:
        container["command"] = list(svc.entrypoint)
    if svc.command is not None:
        container["args"] = list(svc.command)
    return {
        "restartPolicy": restart,
        "shareProcessNamespace": svc.init,
        "terminationGracePeriodSeconds": svc.grace_seconds,
        "enableServiceLinks": False,  # no FOO_PORT=tcp://... variables: the compose environment only
        "automountServiceAccountToken": False,
        "hostAliases": host_aliases(cluster_ips),
        "tolerations": eviction_tolerations(),
        "containers": [container],
        "volumes": [
            {"name": f"v{i}", "hostPath": {"path": host, "type": "DirectoryOrCreate"}}
            for i, (host, _, _) in enumerate(svc.volumes)
        ],
    }


def deployment(
    svc: ComposeService, run_id: str, ports: Mapping[str, int], cluster_ips: Mapping[str, str]
) -> dict[str, Any]:
    labels = {LABEL_RUN_ID: run_id, LABEL_SERVICE: svc.name, **MANAGED_BY}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": svc.name, "labels": labels},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # never two copies on one SQLite file / one workdir
            "selector": {"matchLabels": {LABEL_SERVICE: svc.name}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec(svc, ports, cluster_ips)},
        },
    }
