"""``python -m mockstack.dashboard``: flags (each also read from an environment variable; the flag wins)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlsplit

from mockstack.common.logging import EventLog
from mockstack.dashboard.app import Dashboard


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    traderunner_url: str
    alertmanager_url: str | None
    timeout: float


def _pick(flag_value: str | None, env: str, default: str | None) -> str | None:
    if flag_value is not None:
        return flag_value
    return os.environ.get(env, default)


def _url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{name}: bad value {value!r}: expected an http(s) URL such as http://127.0.0.1:7300")
    return value.rstrip("/")


def parse_config(argv: list[str] | None = None) -> Config:
    parser = _Parser(prog="mockstack-dashboard", description="The trading dashboard (HTML, /api/summary).")
    parser.add_argument("--host", help="listen address (DASHBOARD_HOST, default 127.0.0.1)")
    parser.add_argument("--http-port", help="listen port (DASHBOARD_HTTP_PORT, default 7400)")
    parser.add_argument(
        "--traderunner-url", help="trading engine base URL (DASHBOARD_TRADERUNNER_URL, default http://127.0.0.1:7300)"
    )
    parser.add_argument("--alertmanager-url", help="Alertmanager base URL (DASHBOARD_ALERTMANAGER_URL, optional)")
    parser.add_argument(
        "--upstream-timeout",
        help="seconds to wait for each upstream per page (DASHBOARD_UPSTREAM_TIMEOUT, default 1.0)",
    )
    args = parser.parse_args(argv)

    host = _pick(args.host, "DASHBOARD_HOST", "127.0.0.1") or "127.0.0.1"
    raw_port = _pick(args.http_port, "DASHBOARD_HTTP_PORT", "7400") or ""
    try:
        port = int(raw_port)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"--http-port / DASHBOARD_HTTP_PORT: bad value {raw_port!r}: expected an integer 0..65535")
    tr = _url(
        _pick(args.traderunner_url, "DASHBOARD_TRADERUNNER_URL", "http://127.0.0.1:7300") or "",
        "--traderunner-url / DASHBOARD_TRADERUNNER_URL",
    )
    am_raw = _pick(args.alertmanager_url, "DASHBOARD_ALERTMANAGER_URL", None)
    am = _url(am_raw, "--alertmanager-url / DASHBOARD_ALERTMANAGER_URL") if am_raw else None
    raw_timeout = _pick(args.upstream_timeout, "DASHBOARD_UPSTREAM_TIMEOUT", "1.0") or ""
    try:
        timeout = float(raw_timeout)
    except ValueError:
        timeout = -1.0
    if not 0.05 <= timeout <= 30:
        raise ConfigError(
            f"--upstream-timeout / DASHBOARD_UPSTREAM_TIMEOUT: bad value {raw_timeout!r}: expected seconds 0.05..30"
        )
    return Config(host, port, tr, am, timeout)


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_config(argv)
    except ConfigError as exc:
        print(f"mockstack-dashboard: {exc}", file=sys.stderr)
        return 2
    log = EventLog("dashboard")
    try:
        dashboard = Dashboard(
            config.traderunner_url,
            config.alertmanager_url,
            host=config.host,
            port=config.port,
            timeout=config.timeout,
            log=log,
        )
    except OSError as exc:
        log.error("listen_failed", f"Cannot listen on {config.host}:{config.port}: {exc.strerror or exc}")
        return 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    dashboard.start()
    log.info(
        "started",
        f"Dashboard serving on http://{config.host}:{dashboard.http.port}/",
        port=dashboard.http.port,
        traderunner_url=config.traderunner_url,
        alertmanager_url=config.alertmanager_url,
    )
    stop.wait()
    log.info("stopping", "Dashboard stopping")
    dashboard.stop()
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
