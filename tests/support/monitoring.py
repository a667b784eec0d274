"""Real Prometheus + Alertmanager on free loopback ports, for integration tests and benchmarks.

Reusable pieces (the stack launcher's full-stack alert tests can use the same ones):

* :func:`require_tool` finds a binary or raises :class:`ToolMissing` naming the Debian package.
* :func:`render_local_prometheus_config` renders ``monitoring/prometheus/prometheus.local.yml.tmpl``.
* :func:`start_alertmanager` / :func:`start_prometheus` start the real servers with the exact flags
  documented in ``monitoring/README.md`` (:func:`prometheus_argv`, :func:`alertmanager_argv`).
* :func:`alertmanager_alerts` parses ``GET /api/v2/alerts`` into :class:`FiredAlert` values;
  :func:`wait_for_alerts` polls until a predicate holds and fails with expected-vs-observed.
* :class:`MonitoringStack` is all of that as one context manager.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.processes import ServiceProcess, free_port, http_json, start_service

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING_DIR = REPO_ROOT / "monitoring"
LOCAL_TEMPLATE = MONITORING_DIR / "prometheus" / "prometheus.local.yml.tmpl"
ALERTMANAGER_CONFIG = MONITORING_DIR / "alertmanager" / "alertmanager.yml"

#: binary names tried in order -> Debian package that provides them
TOOLS: dict[str, tuple[tuple[str, ...], str]] = {
    "prometheus": (("prometheus",), "prometheus"),
    "promtool": (("promtool",), "prometheus"),
    "alertmanager": (("prometheus-alertmanager", "alertmanager"), "prometheus-alertmanager"),
    "amtool": (("amtool",), "prometheus-alertmanager"),
    "chromium": (("chromium",), "chromium"),
}

PLACEHOLDER = re.compile(r"\{\{\s*([a-z]+)\.([A-Za-z0-9_\-]+)(?:\.([A-Za-z0-9_\-]+))?\s*\}\}")

# Jobs in the local template: service name -> port name.
TEMPLATE_PORTS: dict[str, str] = {
    "broker": "http",
    "marketdata": "http",
    "traderunner": "http",
    "dashboard": "http",
    "prometheus": "http",
    "alertmanager": "http",
}


class ToolMissing(RuntimeError):
    """A binary the monitoring tests need is not installed."""


def require_tool(tool: str) -> str:
    """Absolute path of ``tool`` (a key of :data:`TOOLS`); :class:`ToolMissing` names the Debian package."""
    names, package = TOOLS[tool]
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise ToolMissing(
        f"{tool} not found on PATH (looked for {', '.join(names)}): install the Debian package "
        f"'{package}' (apt-get install {package}, or run scripts/setup.sh)"
    )


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Replace ``{{kind.a[.b]}}`` placeholders textually; an unknown one is an error naming it."""

    def sub(match: re.Match[str]) -> str:
        key = ".".join(p for p in match.groups() if p)
        if key not in values:
            raise KeyError(f"unknown placeholder {match.group(0)} (known: {', '.join(sorted(values))})")
        return values[key]

    return PLACEHOLDER.sub(sub, text)


def render_local_prometheus_config(
    dest: Path, ports: Mapping[str, int], run_dir: Path, stack_dir: Path = REPO_ROOT
) -> Path:
    """Render the local template to ``dest``. ``ports`` maps service name -> its http port.

    Every service of :data:`TEMPLATE_PORTS` needs a port; give a free, unused port to a service that
    is not running (it is then simply a target that is down).
    """
    missing = sorted(set(TEMPLATE_PORTS) - set(ports))
    if missing:
        raise KeyError(f"no port for {', '.join(missing)}")
    values = {f"port.{svc}.{TEMPLATE_PORTS[svc]}": str(port) for svc, port in ports.items()}
    values["dir.run"] = str(run_dir)
    values["dir.stack"] = str(stack_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(render_template(LOCAL_TEMPLATE.read_text(encoding="utf-8"), values), encoding="utf-8")
    return dest


def prometheus_argv(binary: str, config: Path, data_dir: Path, port: int) -> list[str]:
    """The exact Prometheus command line (documented in monitoring/README.md)."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        # resend firing alerts every second; Prometheus sets endsAt = now + 4 x max(resend delay,
        # eval interval), so a dead Prometheus's alerts (the Watchdog) leave Alertmanager in ~4 s
        "--rules.alert.resend-delay=1s",
        "--log.level=warn",
    ]


def alertmanager_argv(binary: str, config: Path, data_dir: Path, port: int) -> list[str]:
    """The exact Alertmanager command line (documented in monitoring/README.md)."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip: no HA peers, nothing listens beyond the web port
        "--log.level=warn",
    ]


def start_alertmanager(run_dir: Path, port: int, config: Path = ALERTMANAGER_CONFIG) -> ServiceProcess:
    argv = alertmanager_argv(require_tool("alertmanager"), config, run_dir / "alertmanager", port)
    return start_service(
        "alertmanager",
        argv,
        run_dir / "logs",
        health_url=f"http://127.0.0.1:{port}/-/ready",
        ports={"http": port},
        timeout=20.0,
    )


def start_prometheus(run_dir: Path, port: int, config: Path) -> ServiceProcess:
    argv = prometheus_argv(require_tool("prometheus"), config, run_dir / "prometheus" / "data", port)
    return start_service(
        "prometheus",
        argv,
        run_dir / "logs",
        health_url=f"http://127.0.0.1:{port}/-/ready",
        ports={"http": port},
        timeout=30.0,
    )


@dataclass(frozen=True)
class FiredAlert:
    """One alert as Alertmanager lists it."""

    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: str  # active | suppressed | unprocessed
    starts_at: str
    ends_at: str

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def runbook(self) -> str:
        return self.labels.get("runbook", "")

    @classmethod
    def parse(cls, raw: Any) -> FiredAlert:
        if not isinstance(raw, dict):
            raise ValueError(f"alert is not an object: {raw!r}")
        labels = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
        annotations = {str(k): str(v) for k, v in (raw.get("annotations") or {}).items()}
        status = raw.get("status") or {}
        return cls(
            name=labels.get("alertname", ""),
            labels=labels,
            annotations=annotations,
            state=str(status.get("state", "")) if isinstance(status, dict) else "",
            starts_at=str(raw.get("startsAt", "")),
            ends_at=str(raw.get("endsAt", "")),
        )

    def __str__(self) -> str:
        return f"{self.name}{{severity={self.severity}, runbook={self.runbook}, state={self.state}}}"


def alertmanager_alerts(base_url: str, timeout: float = 2.0) -> tuple[FiredAlert, ...]:
    """Every alert Alertmanager currently holds (``GET /api/v2/alerts``)."""
    status, body = http_json("GET", f"{base_url}/api/v2/alerts", timeout=timeout)
    if status != 200 or not isinstance(body, list):
        raise RuntimeError(f"GET {base_url}/api/v2/alerts answered {status}: {str(body)[:300]}")
    return tuple(FiredAlert.parse(item) for item in body)


@dataclass
class WaitResult:
    alerts: tuple[FiredAlert, ...]
    elapsed: float
    attempts: int


def wait_for_alerts(
    base_url: str,
    predicate: Callable[[tuple[FiredAlert, ...]], bool],
    *,
    timeout: float,
    expected: str,
    poll: float = 0.05,
    started: float | None = None,
    watch: tuple[ServiceProcess, ...] = (),
) -> WaitResult:
    """Poll Alertmanager until ``predicate(alerts)``; fail with what was expected and what was seen.

    ``started`` (a ``time.monotonic()`` value) is where the elapsed time is measured from; by default
    the call itself. A process in ``watch`` that dies ends the wait at once with its log tail.
    """
    t0 = time.monotonic() if started is None else started
    deadline = time.monotonic() + timeout
    attempts = 0
    last: tuple[FiredAlert, ...] | str = "no answer yet"
    while True:
        attempts += 1
        try:
            alerts = alertmanager_alerts(base_url)
        except (OSError, RuntimeError) as exc:
            last = f"error: {exc}"
        else:
            if predicate(alerts):
                return WaitResult(alerts, time.monotonic() - t0, attempts)
            last = alerts
        for proc in watch:
            if not proc.alive():
                raise AssertionError(
                    f"{proc.name} died (exit {proc.popen.returncode}) while waiting for: {expected}\n"
                    f"{proc.log_text()[-2000:]}"
                )
        if time.monotonic() >= deadline:
            seen = last if isinstance(last, str) else ", ".join(str(a) for a in last) or "no alerts"
            raise AssertionError(
                f"expected {expected} at {base_url}/api/v2/alerts within {timeout:.1f}s; "
                f"observed after {attempts} polls: {seen}"
            )
        time.sleep(poll)


def named(name: str, **labels: str) -> Callable[[tuple[FiredAlert, ...]], bool]:
    """Predicate: an alert ``name`` with (at least) these labels is present."""

    def check(alerts: tuple[FiredAlert, ...]) -> bool:
        return any(a.name == name and all(a.labels.get(k) == v for k, v in labels.items()) for a in alerts)

    return check


def absent(name: str) -> Callable[[tuple[FiredAlert, ...]], bool]:
    """Predicate: no alert ``name`` is present (resolved alerts leave the API at once)."""

    def check(alerts: tuple[FiredAlert, ...]) -> bool:
        return all(a.name != name for a in alerts)

    return check


@dataclass
class MonitoringStack:
    """A running Prometheus + Alertmanager pair on loopback."""

    prometheus: ServiceProcess
    alertmanager: ServiceProcess
    config: Path
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager.ports['http']}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus.ports['http']}"

    def alerts(self) -> tuple[FiredAlert, ...]:
        return alertmanager_alerts(self.alertmanager_url)

    def wait(
        self,
        predicate: Callable[[tuple[FiredAlert, ...]], bool],
        *,
        timeout: float,
        expected: str,
        started: float | None = None,
    ) -> WaitResult:
        return wait_for_alerts(
            self.alertmanager_url,
            predicate,
            timeout=timeout,
            expected=expected,
            started=started,
            watch=(self.prometheus, self.alertmanager),
        )

    def query(self, promql: str) -> list[Any]:
        """Instant query result vector (for diagnostics)."""
        from urllib.parse import quote

        status, body = http_json("GET", f"{self.prometheus_url}/api/v1/query?query={quote(promql)}")
        if status != 200 or not isinstance(body, dict):
            raise RuntimeError(f"query {promql!r} answered {status}: {str(body)[:300]}")
        result = body.get("data", {}).get("result", [])
        return list(result) if isinstance(result, list) else []

    def stop(self) -> None:
        self.prometheus.stop()
        self.alertmanager.stop()


@contextmanager
def monitoring_stack(run_dir: Path, targets: Mapping[str, int]) -> Iterator[MonitoringStack]:
    """Start Alertmanager then Prometheus, scraping ``targets`` (service -> http port), and always stop them.

    Services of the template missing from ``targets`` get a free port nobody listens on (a down target).
    """
    am_port = free_port()
    prom_port = free_port()
    ports = {svc: free_port() for svc in TEMPLATE_PORTS}
    ports.update(targets)
    ports["alertmanager"] = am_port
    ports["prometheus"] = prom_port
    config = render_local_prometheus_config(run_dir / "prometheus" / "prometheus.yml", ports, run_dir)
    alertmanager = start_alertmanager(run_dir, am_port)
    try:
        prometheus = start_prometheus(run_dir, prom_port, config)
    except BaseException:
        alertmanager.stop()
        raise
    stack = MonitoringStack(prometheus, alertmanager, config, dict(ports))
    try:
        yield stack
    finally:
        stack.stop()


class StandInExporter:
    """A prometheus_client HTTP server on 127.0.0.1 that stands in for the ``traderunner`` job.

    It exposes the traderunner gauges the alert rules read, at healthy values; tests flip them.
    """

    def __init__(self, port: int | None = None) -> None:
        from prometheus_client import CollectorRegistry, Gauge

        self.port = port if port is not None else free_port()
        self.registry = CollectorRegistry()
        self.kill_switch_active = Gauge("traderunner_kill_switch_active", "kill switch", registry=self.registry)
        self.broker_connected = Gauge("traderunner_broker_connected", "broker link", registry=self.registry)
        self.manual_intervention = Gauge(
            "traderunner_broker_manual_intervention_required", "gave up reconnecting", registry=self.registry
        )
        self.position_mismatch = Gauge(
            "traderunner_position_mismatch_symbols", "symbols differing from broker", registry=self.registry
        )
        self.data_sla_ok = Gauge("traderunner_data_sla_ok", "data SLA ok", registry=self.registry)
        self.mode = Gauge("traderunner_mode", "current mode", ["mode"], registry=self.registry)
        self.broker_connected.set(1)
        self.data_sla_ok.set(1)
        self.set_mode("lab")
        self._server: Any = None

    def set_mode(self, mode: str) -> None:
        for name in ("lab", "paper", "live"):
            self.mode.labels(mode=name).set(1 if name == mode else 0)

    def start(self) -> StandInExporter:
        from prometheus_client import start_http_server

        self._server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandInExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until_scraped(stack: MonitoringStack, job: str, timeout: float = 15.0) -> None:
    """Wait until Prometheus has scraped ``job`` successfully (``up == 1``)."""
    deadline = time.monotonic() + timeout
    last: list[Any] = []
    while time.monotonic() < deadline:
        last = stack.query(f'up{{job="{job}"}} == 1')
        if last:
            return
        time.sleep(0.1)
    raise AssertionError(f"Prometheus did not scrape job {job!r} within {timeout}s; up: {stack.query('up')}")
