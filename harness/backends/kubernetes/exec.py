"""Commands where the stack runs: the operator CLI and runbook shell blocks, in the service's container.

``kubectl exec`` into the running pod, with the working directory and the stack's mode variable set by
a ``sh -c 'cd DIR && exec env VAR=... "$@"'`` wrapper (kubectl exec has neither option). While the
service is not running (scaled to zero, crashed), the command runs in a one-off pod made from the
Deployment's own pod template (same image, volumes, host aliases), ``restartPolicy: Never``, removed
afterwards: the operator CLI's status command answers "NOT RUNNING" exactly as on the other backends.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.backends.base import CommandResult
from harness.backends.kubernetes.cluster import Kubectl
from harness.commands import run_command
from harness.errors import BackendError


def wrapped(argv: Sequence[str], workdir: str, env: Mapping[str, str]) -> list[str]:
    """``argv`` run in ``workdir`` with ``env`` added, as one argv for ``kubectl exec`` / a container."""
    assignments = [f"{k}={v}" for k, v in sorted(env.items())]
    return ["sh", "-c", f'cd {workdir} 2>/dev/null; exec env "$@"', "drill-exec", *assignments, *argv]


def exec_in_pod(
    kubectl: Kubectl,
    pod: str,
    container: str,
    argv: Sequence[str],
    *,
    workdir: str,
    env: Mapping[str, str],
    timeout: float,
) -> CommandResult:
    result = run_command(
        kubectl.argv("exec", pod, "-c", container, "--", *wrapped(argv, workdir, env)),
        cwd=Path.cwd(),
        env=os.environ,
        timeout=timeout,
    )
    return dataclasses.replace(result, argv=tuple(argv))


def run_once(
    kubectl: Kubectl,
    template: Mapping[str, Any],
    container: str,
    argv: Sequence[str],
    *,
    workdir: str,
    env: Mapping[str, str],
    timeout: float,
) -> CommandResult:
    """Run ``argv`` in a one-off pod built from a Deployment's pod ``template``; its output and exit code.

    Its container is named ``<container>-once``: the crash loop of a service killed in ``hold`` mode SIGKILLs
    every container named like the service in the namespace, and it may still be running (a busy machine) when
    the on-call reads the crashed service's state this way (seen: the operator CLI's status command, exit 137, in Q4).
    """
    start = time.monotonic()
    name = f"{container}-once-{uuid.uuid4().hex[:6]}"
    spec = json.loads(json.dumps(template["spec"]))
    spec["restartPolicy"] = "Never"
    once = f"{container}-once"
    for c in spec["containers"]:
        if c["name"] == container:
            c["name"] = once
            c.pop("command", None)
            c["command"] = wrapped(argv, workdir, env)
            c.pop("args", None)
            c.pop("ports", None)
    labels = {k: v for k, v in (template.get("metadata", {}).get("labels") or {}).items() if k != "drill.service"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {**labels, "drill.once": "1"}},
        "spec": spec,
    }
    kubectl.apply(pod)
    try:
        deadline = start + timeout
        phase = ""
        while time.monotonic() < deadline:
            got = kubectl.run("get", "pod", name, "-o", "jsonpath={.status.phase}", check=False)
            phase = got.stdout.strip()
            if phase in ("Succeeded", "Failed"):
                break
            time.sleep(0.2)
        else:
            return CommandResult(tuple(argv), -9, "", "", time.monotonic() - start, timed_out=True)
        status = kubectl.json("get", "pod", name)["status"]
        terminated = next(
            (s["state"].get("terminated") for s in status.get("containerStatuses", []) if s["name"] == once),
            None,
        )
        code = int(terminated.get("exitCode", -1)) if terminated else -1
        logs = kubectl.run("logs", name, "-c", once, check=False)
        return CommandResult(tuple(argv), code, logs.stdout, logs.stderr, time.monotonic() - start)
    except BackendError:
        raise
    finally:
        kubectl.run("delete", "pod", name, "--wait=false", "--grace-period=0", "--force", check=False)
