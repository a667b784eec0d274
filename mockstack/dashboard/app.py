"""The dashboard service: fetch both upstreams per request, render, serve."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from mockstack.common.http import Check, HealthReport, Request, Response, ServiceHTTP
from mockstack.common.logging import EventLog
from mockstack.dashboard.model import Alerts, EngineStatus, Summary, Upstream, parse_alerts, parse_engine_status
from mockstack.dashboard.render import render_page


class UpstreamError(Exception):
    """An upstream did not answer usefully; the message says how, for the page."""


def fetch_json(url: str, timeout: float) -> Any:
    """GET ``url`` and decode JSON; :class:`UpstreamError` with a short human reason otherwise."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise UpstreamError(f"answered HTTP {exc.code}") from exc
    except urllib.error.URLError as exc:
        raise UpstreamError(f"cannot connect ({exc.reason})") from exc
    except TimeoutError as exc:
        raise UpstreamError(f"no answer within {timeout:.1f}s") from exc
    except OSError as exc:
        raise UpstreamError(f"connection failed ({exc})") from exc
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UpstreamError("answered something that is not JSON") from exc


class Dashboard:
    def __init__(
        self,
        traderunner_url: str,
        alertmanager_url: str | None,
        *,
        host: str = "127.0.0.1",
        port: int = 7400,
        timeout: float = 1.0,
        log: EventLog | None = None,
    ) -> None:
        self.traderunner_url = traderunner_url.rstrip("/")
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.timeout = timeout
        self.log = log or EventLog("dashboard")
        self.registry = CollectorRegistry()
        self._views = Counter(
            "dashboard_page_views_total", "Pages and summaries served", ["endpoint"], registry=self.registry
        )
        self._reachable = Gauge(
            "dashboard_upstream_reachable",
            "1 if the last request to the upstream worked",
            ["upstream"],
            registry=self.registry,
        )
        self._errors = Counter(
            "dashboard_upstream_errors_total", "Failed upstream requests", ["upstream"], registry=self.registry
        )
        self._last_state: dict[str, bool] = {}
        self._state_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dashboard-fetch")
        self.http = ServiceHTTP("dashboard", host, port, self.registry, self._health)
        self._started = False
        self.http.route("GET", "/", self._page)
        self.http.route("GET", "/api/summary", self._summary_json)

    # --- data ---------------------------------------------------------------------------------

    def _note(self, upstream: Upstream) -> None:
        self._reachable.labels(upstream=upstream.name).set(1 if upstream.reachable else 0)
        if not upstream.reachable:
            self._errors.labels(upstream=upstream.name).inc()
        with self._state_lock:
            before = self._last_state.get(upstream.name)
            self._last_state[upstream.name] = upstream.reachable
        if before is not None and before == upstream.reachable:
            return
        if upstream.reachable:
            self.log.info("upstream_reachable", f"{upstream.name} reachable at {upstream.url}", upstream=upstream.name)
        else:
            self.log.warning(
                "upstream_unreachable",
                f"{upstream.name} unreachable at {upstream.url}: {upstream.error}",
                upstream=upstream.name,
                url=upstream.url,
                error=upstream.error,
            )

    def fetch_engine(self) -> tuple[Upstream, EngineStatus | None]:
        url = f"{self.traderunner_url}/api/status"
        try:
            engine = parse_engine_status(fetch_json(url, self.timeout))
        except UpstreamError as exc:
            up = Upstream("traderunner", self.traderunner_url, False, str(exc))
            engine = None
        except ValueError as exc:
            up = Upstream("traderunner", self.traderunner_url, False, f"unexpected /api/status answer: {exc}")
            engine = None
        else:
            up = Upstream("traderunner", self.traderunner_url, True)
        self._note(up)
        return up, engine

    def fetch_alerts(self) -> Alerts | None:
        if self.alertmanager_url is None:
            return None
        url = f"{self.alertmanager_url}/api/v2/alerts?silenced=false&inhibited=false"
        try:
            raw = fetch_json(url, self.timeout)
            alerts = parse_alerts(raw, Upstream("alertmanager", self.alertmanager_url, True))
        except (UpstreamError, ValueError) as exc:
            alerts = Alerts(Upstream("alertmanager", self.alertmanager_url, False, str(exc)))
        self._note(alerts.upstream)
        return alerts

    def summary(self) -> Summary:
        engine_future = self._pool.submit(self.fetch_engine)
        alerts_future = self._pool.submit(self.fetch_alerts)
        upstream, engine = engine_future.result()
        alerts = alerts_future.result()
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return Summary(generated_at=now, traderunner=upstream, engine=engine, alerts=alerts)

    # --- HTTP ---------------------------------------------------------------------------------

    def _health(self) -> HealthReport:
        # Ready when it can serve pages: an unreachable engine is something the page *shows*.
        return HealthReport(live=True, checks={"http": Check(True, "serving")})

    def _page(self, _: Request) -> Response:
        self._views.labels(endpoint="page").inc()
        return Response.html(render_page(self.summary()))

    def _summary_json(self, _: Request) -> Response:
        self._views.labels(endpoint="summary").inc()
        return Response.json(summary_to_json(self.summary()))

    def start(self) -> None:
        self.http.start()
        self._started = True

    def stop(self) -> None:
        """Stop serving (safe to call when never started: ``shutdown()`` would wait forever then)."""
        if self._started:
            self.http.stop()
            self._started = False
        else:
            self.http._server.server_close()  # ServiceHTTP has no public close for a never-started server
        self._pool.shutdown(wait=False, cancel_futures=True)


def summary_to_json(summary: Summary) -> dict[str, Any]:
    """The JSON body of ``/api/summary`` (field names as in :mod:`mockstack.dashboard.model`)."""
    data = asdict(summary)
    if summary.engine is not None:
        data["engine"]["sla"]["ok"] = summary.engine.sla.ok
    return data
