"""A stack file that deploys part of the mock stack from "the team's own" Kubernetes manifests.

The manifests are what a team would write by hand for the mock's application services: Deployments and
Services in plain Kubernetes terms (container named ``app``, no drill labels, no hostAliases), the engine's
working directory a ``hostPath`` of ``${DRILL_WORKDIR}``, its links re-pointed at ``toxiproxy:<listen port>``
by its own arguments. The stack file is the project's docker-compose.yml with ``x-drill.kubernetes.manifests`` added,
written in a temporary directory (never in the checkout) beside links to the project's docs/ and monitoring/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEAM_SERVICES = ("broker", "marketdata", "traderunner")


def team_stack(where: Path, manifests: dict[str, str], globs: tuple[str, ...] = ("k8s/*.yaml",)) -> Path:
    """Write ``where/stack.yml`` and ``where/k8s/<name>`` for each of ``manifests`` (file name -> YAML)."""
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    text = text.replace("\nx-drill:\n", f"\nx-drill:\n  kubernetes: {{manifests: [{', '.join(globs)}]}}\n", 1)
    (where / "k8s").mkdir(parents=True, exist_ok=True)
    for shared in ("docs", "monitoring"):  # what the stack file names relative to itself: the runbook, configs
        if not (where / shared).exists():
            (where / shared).symlink_to(ROOT / shared)
    for name, body in manifests.items():
        (where / "k8s" / name).write_text(body, encoding="utf-8")
    stack = where / "stack.yml"
    stack.write_text(text, encoding="utf-8")
    return stack


def _deployment(name: str, args: list[str], ports: dict[str, int], volumes: dict[str, str],
                env: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"team": "desk"}},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{
                        "name": "app",
                        "image": "drill-mockstack:local",
                        "imagePullPolicy": "Never",
                        "args": args,
                        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                        "ports": [{"name": pn, "containerPort": p} for pn, p in ports.items()],
                        "volumeMounts": [{"name": f"v{i}", "mountPath": m} for i, m in enumerate(volumes)],
                    }],
                    "volumes": [{"name": f"v{i}", "hostPath": {"path": h, "type": "DirectoryOrCreate"}}
                                for i, h in enumerate(volumes.values())],
                },
            },
        },
    }


def _service(name: str, ports: dict[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app.kubernetes.io/name": name},
                 "ports": [{"name": pn, "port": p, "targetPort": p} for pn, p in ports.items()]},
    }


def mock_manifests() -> dict[str, str]:
    """The mock stack's broker, market data and trading engine as a team would write them (one file each)."""
    state = "${DRILL_RUN_DIR}/volumes"
    objects = {
        "broker.yaml": [
            _deployment("broker", ["python", "-m", "mockstack.broker", "--host", "0.0.0.0", "--state-db",
                                   "/data/broker.sqlite3"], {"order": 7100, "http": 7101},
                        {"/data": f"{state}/broker-state"}),
            _service("broker", {"order": 7100, "http": 7101}),
        ],
        "marketdata.yaml": [
            _deployment("marketdata", ["python", "-m", "mockstack.marketdata", "--host", "0.0.0.0",
                                       "--anchor-file", "/data/anchor.json"], {"http": 7200},
                        {"/data": f"{state}/marketdata-state"}),
            _service("marketdata", {"http": 7200}),
        ],
        "traderunner.yaml": [
            # the links re-pointed by the team: the engine's broker and market data go through Toxiproxy
            _deployment("traderunner", ["python", "-m", "mockstack.traderunner", "run", "--host", "0.0.0.0",
                                        "--workdir", "/work", "--broker", "toxiproxy:8666",
                                        "--marketdata", "http://toxiproxy:8667"], {"http": 7300},
                        {"/work": "${DRILL_WORKDIR}"}, env={"TR_MODE": "lab", "TR_WORKDIR": "/work"}),
            _service("traderunner", {"http": 7300}),
        ],
    }
    return {name: yaml.safe_dump_all(docs, sort_keys=False) for name, docs in objects.items()}
