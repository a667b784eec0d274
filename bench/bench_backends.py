"""Backends side by side, in one run: stack up to all-healthy and one quarterly drill's wall time on the process,
docker and kubernetes backends, then fault-injection latency per fault type on Kubernetes.

Run (under the shared lock: it starts real stacks):
    flock /tmp/drill-heavy.lock .venv/bin/python bench/bench_backends.py [--rounds 2] [--quarter Q1] [--fault-rounds 3]

A backend whose engine or cluster is not there is reported as skipped, with the reason. Fault latency is
measured from the host, through the backend's own port-forwards, as a drill sees it:
  * kill, ``restart`` mode: ``inject()`` call -> health endpoint fails, and -> healthy again with nobody acting
    (the kubelet's restart); ``hold`` mode (the default): ``inject()`` -> health fails, ``rollback()`` -> healthy;
  * stop / pause (of the dashboard, which no link leads to): ``inject()`` -> health fails; ``rollback()`` ->
    healthy again;
  * link_down / latency: through a port-forward to Toxiproxy's link port (the marketdata link), ``inject()``
    -> a probe through the link fails / is slow; ``rollback()`` -> clean again;
  * full_outage: ``inject()`` -> every application service's health fails; ``rollback()`` -> all healthy;
  * node_loss (two nodes, once: it takes about a minute): ``inject()`` -> the node NotReady (detection), ->
    every service it ran healthy on another node (rescheduling); ``rollback()`` -> the node Ready again.
    On one node it is reported as skipped, with the reason.
Prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench_stack import time_up_down  # noqa: I001 - sibling script, run from bench/ or the project root

from harness.backends.base import Backend
from harness.backends.ports import free_port
from harness.backends.process import ProcessBackend
from harness.errors import BackendError, DrillError
from harness.faults import FaultContext, FullOutage, Kill, LinkDown, Pause, Stop, Toxic
from harness.faults.base import Fault
from harness.stack import load_stack

ROOT = Path(__file__).resolve().parents[1]
CAP_S = 120.0


def available(name: str) -> tuple[bool, str]:
    if name == "process":
        return True, ""
    if name == "docker":
        from harness.backends.docker import engine_available

        return (True, "") if engine_available() else (False, "no Docker engine (scripts/docker-setup.sh)")
    from harness.backends.kubernetes import cluster_available

    ok, why = cluster_available()
    return ok, why.splitlines()[0] if not ok else ""


def factory(name: str) -> Callable[..., Backend]:
    if name == "process":
        return ProcessBackend
    if name == "docker":
        from harness.backends.docker import DockerBackend

        return DockerBackend
    from harness.backends.kubernetes import KubernetesBackend

    return KubernetesBackend


def healthy(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (OSError, ValueError):
        return False


def until(check: Callable[[], bool], since: float) -> float:
    """Seconds from ``since`` to the start of the first probe for which ``check()`` held (CAP_S if never)."""
    while time.monotonic() - since < CAP_S:
        started = time.monotonic()
        if check():
            return started - since
        time.sleep(0.02)
    return CAP_S


def health_url(backend: Backend, service: str) -> str:
    spec = backend.stack.service(service)
    assert spec.health is not None
    return backend.endpoint(service, spec.health.port).url + spec.health.path


class LinkForward:
    """``kubectl port-forward`` to Toxiproxy's listen port of a link, re-made whenever kubectl has exited: kubectl
    ends a port-forward when a connection to the pod fails (seen here at every link_down: the disabled proxy
    refuses it). A probe right after a re-make includes kubectl's start (a few tenths of a second)."""

    def __init__(self, argv: list[str], remote_port: int) -> None:
        self.argv = argv
        self.remote_port = remote_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/health"
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = -1

    def _ensure(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.restarts += 1
        self.proc = subprocess.Popen([*self.argv, f"{self.port}:{self.remote_port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)

    def healthy(self, timeout: float = 0.5) -> bool:
        self._ensure()
        return healthy(self.url, timeout)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def fault_latencies(rounds: int) -> None:
    from harness.backends.kubernetes import KubernetesBackend

    stack = load_stack(ROOT / "docker-compose.yml")
    figures: dict[str, list[float]] = {}
    failures: list[str] = []

    def note(label: str, value: float) -> None:
        figures.setdefault(label, []).append(value)
        print(f"  {label}: {value:.2f}s", flush=True)

    def trial(what: str, body: Callable[[], None]) -> None:
        """One fault, measured; a fault that fails is reported and the others still run (it is rolled back)."""
        try:
            body()
        except DrillError as exc:
            first = exc.message.splitlines()[0]
            failures.append(f"{what}: {first}")
            print(f"  {what}: FAILED: {first}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-k8s-faults-") as tmp:
        backend = KubernetesBackend(stack, Path(tmp) / "run")
        backend.up()
        ctx = FaultContext(run_dir=backend.run_dir)
        link = LinkForward(backend.kubectl.argv("port-forward", "svc/toxiproxy", "--address", "127.0.0.1"), 8667)

        def kill(service: str, mode: str) -> None:
            url = health_url(backend, service)
            backend.kill_mode = mode  # restart: the kubelet's self-healing; hold (the default): down until rollback
            t0 = time.monotonic()
            fault = Kill(backend, service, ctx=ctx)
            try:
                fault.inject()
                note(f"kill {service} ({mode} mode): inject -> health fails", until(lambda: not healthy(url), t0))
                if mode == "restart":
                    note(f"kill {service} (restart mode): inject -> healthy again (kubelet restart)",
                         until(lambda: healthy(url, 1.0), t0))
            finally:
                t1 = time.monotonic()
                fault.rollback()
            if mode == "hold":
                note(f"kill {service} (hold mode): rollback -> healthy", until(lambda: healthy(url), t1))

        def service_fault(kind: str, cls: type[Stop] | type[Pause]) -> None:
            # on the dashboard, which no link leads to: a pause of a link's target (marketdata) left its
            # Toxiproxy proxy hung after the thaw here (curl through toxiproxy:8667 timed out, the API then
            # did not answer `disable`), which would spoil every link figure after it
            url = health_url(backend, "dashboard")
            t0 = time.monotonic()
            fault = cls(backend, "dashboard", ctx=ctx)
            try:
                fault.inject()
                note(f"{kind} dashboard: inject -> health fails", until(lambda: not healthy(url, 0.3), t0))
            finally:
                t1 = time.monotonic()
                fault.rollback()
            note(f"{kind} dashboard: rollback -> healthy", until(lambda: healthy(url), t1))

        def link_fault(kind: str, fault: Fault) -> None:
            # measured on a link that serves: after stop/pause of marketdata it may take a moment to again
            if until(lambda: link.healthy(0.4), time.monotonic()) >= CAP_S:
                raise BackendError(f"the marketdata link does not serve through Toxiproxy ({link.url})")
            t0 = time.monotonic()
            try:
                fault.inject()
                note(f"{kind} (marketdata link): inject -> effect", until(lambda: not link.healthy(0.4), t0))
            finally:
                t1 = time.monotonic()
                rollback_retrying(fault)
            note(f"{kind} (marketdata link): rollback -> clean", until(lambda: link.healthy(0.4), t1))

        def outage() -> None:
            urls = [health_url(backend, s.name) for s in stack.app_services() if s.health]
            t0 = time.monotonic()
            fault = FullOutage(backend, ctx=ctx)
            try:
                fault.inject()
                note("full_outage: inject -> every service's health failed",
                     until(lambda: all(not healthy(u, 0.3) for u in urls), t0))
            finally:
                t1 = time.monotonic()
                fault.rollback()
            note("full_outage: rollback -> all healthy", until(lambda: all(healthy(u) for u in urls), t1))

        try:
            until(lambda: link.healthy(), time.monotonic())
            for i in range(rounds):
                print(f"fault round {i + 1} of {rounds} on kubernetes:", flush=True)
                for service in ("broker", "dashboard"):
                    for mode in ("restart", "hold"):
                        trial(f"kill {service} ({mode})", lambda s=service, m=mode: kill(s, m))
                trial("link_down marketdata", lambda: link_fault("link_down", LinkDown(backend, "marketdata", ctx=ctx)))
                trial("latency 800ms marketdata", lambda: link_fault(
                    "latency 800ms", Toxic(backend, "marketdata", "latency", latency=800, ctx=ctx)))
                for kind, cls in (("stop", Stop), ("pause", Pause)):
                    trial(f"{kind} dashboard", lambda k=kind, c=cls: service_fault(k, c))
                trial("full_outage", outage)
            trial("node_loss", lambda: node_loss(backend, ctx, note))
        finally:
            link.close()
            backend.down()
    print(f"fault injection on kubernetes (seconds; p50 / max over rounds; the link probe's port-forward was "
          f"re-made {link.restarts} time(s)):")
    for label, values in figures.items():
        print(f"  {label}: p50 {statistics.median(values):.2f}, max {max(values):.2f} (n={len(values)})")
    for failure in failures:
        print(f"  FAILED {failure}")


def rollback_retrying(fault: Fault, tries: int = 5) -> None:
    """Roll back; when it fails (seen: Toxiproxy's API not answering within 3 s right after a pause or stop of
    the link's target), say so and try again, so one slow answer does not leave the fault on for the next ones."""
    for attempt in range(1, tries + 1):
        try:
            fault.rollback()
            return
        except DrillError as exc:
            print(f"  rollback of {fault.kind} failed (attempt {attempt}/{tries}): {exc.message.splitlines()[0]}",
                  flush=True)
            if attempt == tries:
                raise
            time.sleep(2.0)


def node_loss(backend: Backend, ctx: FaultContext, note: Callable[[str, float], None]) -> None:
    """The node that can be lost running most of the stack: detection, rescheduling, rejoin (once)."""
    from harness.backends.kubernetes.node_loss import LossPlan, NodeLoss, on_kubernetes, plan_loss, refusal

    k8s = on_kubernetes(backend)
    ready = k8s.node_ready()
    losable = k8s.losable_nodes()
    keep = [s.name for s in k8s.stack.services_with_role("toxiproxy")]
    why = refusal("kubernetes", ready, losable)
    plan = why or plan_loss(k8s.placement(), losable, ready, keep)
    if not isinstance(plan, LossPlan):
        print(f"node_loss: skipped: {plan}")
        return
    urls = {s: health_url(k8s, s) for s in plan.services if k8s.stack.service(s).health}

    def moved() -> bool:
        where = k8s.placement()
        return all(where.get(s) not in (None, plan.node) for s in plan.services) and all(
            healthy(u, 1.0) for u in urls.values()
        )

    fault = NodeLoss(k8s, plan.node, services=plan.services, ctx=ctx)
    t0 = time.monotonic()
    fault.inject()
    try:
        note(f"node_loss ({plan.node}: {', '.join(plan.services)}): inject -> node NotReady",
             until(lambda: not k8s.node_ready().get(plan.node), t0))
        note("node_loss: inject -> every lost service healthy on another node", until(moved, t0))
    finally:
        t1 = time.monotonic()
        fault.rollback()
        note("node_loss: rollback -> node Ready again", time.monotonic() - t1)


def drill_totals(report: Path) -> str:
    """``2 passed`` from the run's journal(s); what is missing when there is none."""
    import json

    counts: dict[str, int] = {}
    for journal in sorted(report.glob("journal*.json")):
        for scenario in json.loads(journal.read_text(encoding="utf-8")).get("scenarios", []):
            counts[scenario["status"]] = counts.get(scenario["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no journal written"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="stack up/down rounds per backend (0: none)")
    parser.add_argument("--quarter", default="Q1", help='the quarterly drill to time ("": none)')
    parser.add_argument("--fault-rounds", type=int, default=3)
    parser.add_argument("--backends", default="process,docker,kubernetes")
    args = parser.parse_args()
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    usable = []
    for name in names:
        ok, why = available(name)
        if ok:
            usable.append(name)
        else:
            print(f"{name}: skipped: {why}")
    for name in usable if args.rounds > 0 else ():
        time_up_down(factory(name), args.rounds, f"{name} stack")
    drill = str(Path(sys.executable).parent / "drill")
    for name in usable if args.quarter else ():
        with tempfile.TemporaryDirectory(prefix="bench-drill-") as tmp:
            t0 = time.monotonic()
            rc = subprocess.run(
                [drill, "run", "--backend", name, "--quarter", args.quarter, "--report", tmp],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
            ).returncode
            took = time.monotonic() - t0
            totals = drill_totals(Path(tmp))
        print(f"drill run --quarter {args.quarter} on {name}: {took:.1f}s wall (exit {rc}: {totals})")
    if "kubernetes" in usable and args.fault_rounds > 0:
        fault_latencies(args.fault_rounds)


if __name__ == "__main__":
    main()
