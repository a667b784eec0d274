"""A team's own Kubernetes manifests in place of the compose translation (``x-drill.kubernetes.manifests``).

Teams on Kubernetes already have manifests (or render them from their charts: ``helm template``). The stack
file keeps what the drills need (x-drill ports, health, links, roles) and points at them:

.. code-block:: yaml

    x-drill:
      kubernetes:
        manifests: [k8s/*.yaml]     # globs relative to the stack file; every matching file is read

* A **Deployment** whose ``metadata.name`` is a service of the stack file replaces that service's
  translation; the services no Deployment names (Toxiproxy, Prometheus, Alertmanager, ...) are still
  translated from compose. **Services, ConfigMaps and Secrets** are applied as written. Nothing else is
  accepted (one replica per service, like the drills assume; no namespace: each run has its own).
* ``${VAR}`` in the files is resolved as in the compose file (``DRILL_WORKDIR``, ``DRILL_RUN_DIR``, the image
  variables): a ``hostPath`` of ``${DRILL_WORKDIR}`` is the run's working directory on this machine.
* **Adopted, not rewritten**: the Deployment and its pods get the run's labels (``drill.run-id``,
  ``drill.service``: how the backend finds the pods), ``hostAliases`` for the stack's Service names (a cluster
  without DNS) and the 5 s eviction tolerations of the compose translation; the container the drill kills,
  pauses and reads is the one named after the service (a single container is renamed to it).
* **Links** are re-pointed by the team, in its manifests: the client's address for a dependency becomes
  ``toxiproxy:<listen_port>`` (an env var or flag of its Deployment), and the link in ``x-drill.links``
  names the real service as ``to:``; Toxiproxy's upstream is then ``<service>:<container port>``.
* **Images** with ``imagePullPolicy: Never`` must be on the nodes (checked before anything is created);
  others are pulled by the cluster as the team's cluster always does.

Every error names the file and the document (``k8s/app.yaml (document 2)``), the problem and the fix,
and is raised before any cluster call (exit 2).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.backends.container_base import interpolate
from harness.errors import StackFileError
from harness.stack import StackDescription

SUPPORTED_KINDS = ("Deployment", "Service", "ConfigMap", "Secret")
FIELD = "x-drill.kubernetes.manifests"


@dataclass(frozen=True)
class TeamManifests:
    """The team's objects, read and checked: Deployments by the service they replace, the rest as written."""

    deployments: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    objects: tuple[dict[str, Any], ...] = ()  # Services, ConfigMaps, Secrets
    sources: Mapping[str, str] = field(default_factory=dict)  # service -> "file (document N)"

    @property
    def service_names(self) -> set[str]:
        """Names of the Kubernetes Services the team wrote."""
        return {str(o["metadata"]["name"]) for o in self.objects if o.get("kind") == "Service"}

    def local_images(self) -> dict[str, str]:
        """Image -> the service whose Deployment runs it with ``imagePullPolicy: Never`` (must be on the nodes)."""
        found: dict[str, str] = {}
        for service, dep in self.deployments.items():
            for container in _pod(dep).get("containers", []):
                if container.get("imagePullPolicy") == "Never":
                    found.setdefault(str(container["image"]), service)
        return found


def read_team_manifests(stack: StackDescription, doc: Mapping[str, Any], env: Mapping[str, str]) -> TeamManifests:
    """The manifests ``x-drill.kubernetes.manifests`` names (empty when the stack file names none)."""
    top = doc.get("x-drill") or {}
    k8s = top.get("kubernetes") if isinstance(top, Mapping) else None
    if k8s is None:
        return TeamManifests()
    where = str(stack.path)
    if not isinstance(k8s, Mapping) or not isinstance(k8s.get("manifests"), list) or not k8s["manifests"]:
        raise StackFileError(
            "x-drill.kubernetes: expected a mapping with 'manifests:', a list of file globs",
            location=where, hint="write e.g. 'kubernetes: {manifests: [k8s/*.yaml]}' under x-drill",
        )
    files: list[Path] = []
    for pattern in k8s["manifests"]:
        if not isinstance(pattern, str) or not pattern.strip():
            raise StackFileError(f"{FIELD}: {pattern!r} is not a file glob", location=where,
                                 hint="give paths relative to the stack file, e.g. k8s/*.yaml")
        matched = sorted(p for p in stack.stack_dir.glob(pattern) if p.is_file())
        if not matched:
            raise StackFileError(f"{FIELD}: '{pattern}' matches no file under {stack.stack_dir}", location=where,
                                 hint="paths are relative to the stack file")
        files += [p for p in matched if p not in files]
    deployments: dict[str, dict[str, Any]] = {}
    objects: list[dict[str, Any]] = []
    sources: dict[str, str] = {}
    for path in files:
        for index, obj in _documents(path, env):
            source = f"{path} (document {index})"
            kind = _check_object(obj, source)
            if kind != "Deployment":
                objects.append(obj)
                continue
            name = str(obj["metadata"]["name"])
            if name not in stack.services:
                raise StackFileError(
                    f"Deployment '{name}' is not a service of the stack file", location=source,
                    hint=f"name the Deployment after its service ({', '.join(sorted(stack.services))}), "
                    "or add the service to the stack file with its x-drill ports and health",
                )
            if name in deployments:
                raise StackFileError(f"a second Deployment '{name}' (the first is in {sources[name]})", location=source,
                                     hint="one Deployment per service")
            _check_deployment(obj, name, source)
            deployments[name] = obj
            sources[name] = source
    return TeamManifests(deployments, tuple(objects), sources)


def _documents(path: Path, env: Mapping[str, str]) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = interpolate(path.read_text(encoding="utf-8"), env)
        docs = list(yaml.safe_load_all(text))
    except OSError as exc:
        raise StackFileError(f"cannot read the manifest: {exc.strerror or exc}", location=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise StackFileError("not UTF-8 text", location=str(path), hint="a manifest is YAML text") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise StackFileError(f"the manifest does not parse: {getattr(exc, 'problem', None) or exc}", location=loc,
                             hint="fix the YAML (kubectl apply --dry-run=client -f FILE says the same)") from exc
    out = []
    for index, obj in enumerate(docs, start=1):
        if obj is None:
            continue  # an empty document (a trailing ---)
        if not isinstance(obj, dict):
            raise StackFileError(f"a manifest document must be a mapping, got {type(obj).__name__}",
                                 location=f"{path} (document {index})", hint="one Kubernetes object per document")
        out.append((index, obj))
    return out


def _check_object(obj: Mapping[str, Any], source: str) -> str:
    kind = obj.get("kind")
    meta = obj.get("metadata")
    if not isinstance(kind, str) or not isinstance(obj.get("apiVersion"), str):
        raise StackFileError("not a Kubernetes object: 'apiVersion' and 'kind' are required", location=source)
    if kind == "List":
        raise StackFileError("a List is not accepted", location=source, hint="one object per YAML document (---)")
    if kind not in SUPPORTED_KINDS:
        raise StackFileError(
            f"kind {kind} is not supported here", location=source,
            hint=f"the drill deploys {', '.join(SUPPORTED_KINDS)} into a namespace of its own per run; "
            "leave cluster-wide objects (CRDs, RBAC, namespaces) to the cluster's set-up",
        )
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise StackFileError(f"{kind} has no metadata.name", location=source)
    if meta.get("namespace"):
        raise StackFileError(
            f"{kind} '{meta['name']}' sets metadata.namespace: {meta['namespace']}", location=source,
            hint="remove it: each drill run deploys into a namespace of its own (drill-<run id>)",
        )
    return kind


def _pod(deployment: Mapping[str, Any]) -> dict[str, Any]:
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def _check_deployment(dep: Mapping[str, Any], service: str, source: str) -> None:
    spec = dep.get("spec")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("template"), Mapping):
        raise StackFileError(f"Deployment '{service}' has no spec.template", location=source)
    replicas = spec.get("replicas", 1)
    if replicas != 1:
        raise StackFileError(
            f"Deployment '{service}' has replicas: {replicas}", location=source,
            hint="a drill measures one instance per service (stop scales it to 0 and back to 1): set replicas: 1",
        )
    containers = _pod(dep).get("containers")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, Mapping) for c in containers):
        raise StackFileError(f"Deployment '{service}' has no containers", location=source)
    if len(containers) > 1 and not any(c.get("name") == service for c in containers):
        raise StackFileError(
            f"Deployment '{service}' has {len(containers)} containers and none is named '{service}'", location=source,
            hint=f"name the service's own container '{service}': it is the one a drill kills, pauses and reads",
        )
    for c in containers:
        if not isinstance(c.get("image"), str) or not c["image"]:
            raise StackFileError(f"Deployment '{service}': container '{c.get('name')}' has no image", location=source)


def adopt(
    dep: Mapping[str, Any], service: str, labels: Mapping[str, str], host_aliases: list[dict[str, Any]],
    tolerations: list[dict[str, Any]],
) -> dict[str, Any]:
    """A copy of the team's Deployment the backend can drive: its labels, name resolution and eviction added,
    the service's container named after the service. Nothing the team set is removed."""
    out = adopt_object(dep, labels)
    spec = out["spec"]
    spec["replicas"] = 1
    template = spec["template"]
    _add_labels(template, labels)
    pod = template["spec"]
    known = {h for alias in pod.get("hostAliases") or [] for h in alias.get("hostnames", [])}
    pod["hostAliases"] = [*(pod.get("hostAliases") or []),
                          *(a for a in host_aliases if not known.intersection(a["hostnames"]))]
    keys = {t.get("key") for t in pod.get("tolerations") or []}
    pod["tolerations"] = [*(pod.get("tolerations") or []), *(t for t in tolerations if t["key"] not in keys)]
    containers = pod["containers"]
    if len(containers) == 1:
        containers[0]["name"] = service
    return out


def adopt_object(obj: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """A copy of a team object with the run's labels added to its own."""
    out: dict[str, Any] = copy.deepcopy(dict(obj))
    _add_labels(out, labels)
    return out


def _add_labels(obj: dict[str, Any], labels: Mapping[str, str]) -> None:
    meta = obj.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
