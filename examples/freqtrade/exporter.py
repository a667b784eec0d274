#!/usr/bin/env python3
"""Freqtrade's REST API as Prometheus metrics (Freqtrade ships none). Standard library only.

    python exporter.py --port 8690 --freqtrade-url http://127.0.0.1:8680 --venue-url http://127.0.0.1:8670 \
        [--venue-admin-url http://127.0.0.1:8671] [--username drill --password drill]

Every scrape of ``/metrics`` asks the bot and the venue afresh (nothing cached):

* ``freqtrade_up``: 1 when ``/api/v1/ping`` answered; a bot metric whose endpoint did not answer in
  time is absent from that scrape.
* ``freqtrade_state{state}``: 1 for the bot's state (running, paused = ``stopentry``, stopped).
* ``freqtrade_runmode{runmode}``: 1 for the bot's run mode (``live``, ``dry_run``) from ``show_config``.
* ``freqtrade_last_process_age_seconds``: now - ``last_process_ts`` of ``/api/v1/health``.
* ``freqtrade_open_trades``, ``freqtrade_max_open_trades``, ``freqtrade_balance_total{currency}``.
* ``freqtrade_exchange_errors_total{kind}``: the bot's own WARNING/ERROR log records about the
  exchange, by kind (network, rate_limit, other), counted once each from ``/api/v1/logs``.
* ``freqtrade_api_errors_total{endpoint}``: the exporter's failed calls to the bot's API.
* ``freqtrade_venue_reachable``: 1 when the venue answered ``/api/v3/ping`` (any HTTP status) on
  the path the bot uses (its Toxiproxy link), 0 on a refused/timed-out connection.
* ``freqtrade_venue_position_diff{asset}``: venue holding minus the bot's open-trade amount, and
  ``freqtrade_venue_unknown_orders``: venue orders the bot has never recorded (from the venue's
  truth, ``/admin/truth``) -- both 0 when bot and venue agree.

It listens on 127.0.0.1 only and refuses URLs to any other host.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

KINDS = {
    "rate_limit": re.compile(
        r"DDosProtection|DDoSProtection|RateLimitExceeded|\b418\b|\b429\b|Too many requests", re.I
    ),
    "network": re.compile(
        r"ExchangeNotAvailable|NetworkError|RequestTimeout|TemporaryError|timed out|Connection refused|"
        r"RemoteDisconnected|Connection aborted|Could not load markets|Max retries exceeded",
        re.I,
    ),
}
EXCHANGE_LOGGERS = ("freqtrade.exchange", "freqtrade.freqtradebot", "freqtrade.worker", "ccxt")
STATES = ("running", "paused", "stopped", "reload_config")


def _loopback_url(flag: str, url: str) -> str:
    host = urlsplit(url).hostname or ""
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise SystemExit(f"exporter: {flag} {url!r} is not on 127.0.0.1; the exporter only talks to this machine")
    return url.rstrip("/")


class Exporter:
    def __init__(
        self,
        freqtrade_url: str,
        venue_url: str,
        venue_admin_url: str | None,
        username: str,
        password: str,
        timeout: float,
    ) -> None:
        self.freqtrade_url = freqtrade_url
        self.venue_url = venue_url
        self.venue_admin_url = venue_admin_url
        self.timeout = timeout
        self.budget = 4 * timeout
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._auth = {"Authorization": f"Basic {token}"}
        self._lock = threading.Lock()
        self.exchange_errors = {kind: 0 for kind in (*KINDS, "other")}
        self.api_errors: dict[str, int] = {}
        self._last_log_ts = 0.0

    def _get(self, url: str, headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=self.timeout) as reply:
            return json.loads(reply.read())

    def _bot(self, endpoint: str) -> Any:
        try:
            return self._get(f"{self.freqtrade_url}/api/v1/{endpoint}", self._auth)
        except (OSError, ValueError) as exc:
            name = endpoint.split("?")[0]
            self.api_errors[name] = self.api_errors.get(name, 0) + 1
            raise BotUnavailable(f"{endpoint}: {exc}") from exc

    def _count_logs(self) -> None:
        logs = self._bot("logs?limit=500").get("logs", [])
        newest = self._last_log_ts
        for _date, ts, name, level, message in logs:
            if ts <= self._last_log_ts:
                continue
            newest = max(newest, ts)
            if level not in ("WARNING", "ERROR", "CRITICAL"):
                continue
            kind = next((k for k, pattern in KINDS.items() if pattern.search(message)), None)
            if kind is None and not str(name).startswith(EXCHANGE_LOGGERS):
                continue
            self.exchange_errors[kind or "other"] += 1
        self._last_log_ts = newest

    def _venue_reachable(self) -> int:
        try:
            urllib.request.urlopen(f"{self.venue_url}/api/v3/ping", timeout=self.timeout).close()
        except urllib.error.HTTPError:
            return 1  # it answered, if only with a refusal (a ban is not an outage)
        except OSError:
            return 0
        return 1

    def collect(self) -> list[str]:
        with self._lock:
            return self._collect()

    def _collect(self) -> list[str]:
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{labels} {value}" for labels, value in samples)

        bot: dict[str, Any] = {}
        try:
            self._bot("ping")
            up = 1
        except BotUnavailable:
            up = 0
        metric("freqtrade_up", "gauge", "1 when the bot's REST API answers /api/v1/ping", [("", up)])
        if up:
            # Each call on its own: some (status, balance) wait for the exchange while the bot's loop is
            # blocked, and must not hide the others. A budget keeps the scrape under its timeout.
            deadline = time.monotonic() + self.budget
            for key, endpoint in (
                ("config", "show_config"),
                ("health", "health"),
                ("count", "count"),
                ("logs", None),
                ("open", "status"),
                ("trades", "trades?limit=500"),
                ("balance", "balance"),
            ):
                if time.monotonic() > deadline:
                    break
                try:
                    if endpoint is None:
                        self._count_logs()
                    else:
                        bot[key] = self._bot(endpoint)
                except BotUnavailable:
                    continue
        if "config" in bot:
            state = str(bot["config"].get("state", "")).lower()
            metric(
                "freqtrade_state",
                "gauge",
                "1 for the bot's current state (paused: after stopentry)",
                [(f'{{state="{s}"}}', int(s == state)) for s in STATES],
            )
            runmode = str(bot["config"].get("runmode", "")).lower()
            metric("freqtrade_runmode", "gauge", "1 for the bot's run mode (live, dry_run, ...)",
                   [(f'{{runmode="{runmode}"}}', 1)] if runmode else [])
        if "health" in bot and bot["health"].get("last_process_ts"):
            age = round(time.time() - float(bot["health"]["last_process_ts"]), 3)
            metric("freqtrade_last_process_age_seconds", "gauge", "seconds since the bot's last loop", [("", age)])
        if "count" in bot:
            metric("freqtrade_open_trades", "gauge", "open trades", [("", bot["count"].get("current", 0))])
            metric("freqtrade_max_open_trades", "gauge", "max open trades", [("", bot["count"].get("max", 0))])
        if "balance" in bot:
            metric(
                "freqtrade_balance_total",
                "gauge",
                "balance per currency as the bot sees it",
                [
                    (f'{{currency="{c["currency"]}"}}', c.get("balance", 0))
                    for c in bot["balance"].get("currencies", [])
                ],
            )
        metric(
            "freqtrade_exchange_errors_total",
            "counter",
            "bot log records about exchange errors, by kind",
            [(f'{{kind="{k}"}}', v) for k, v in self.exchange_errors.items()],
        )
        metric(
            "freqtrade_api_errors_total",
            "counter",
            "failed calls of the exporter to the bot's REST API",
            [(f'{{endpoint="{e}"}}', v) for e, v in sorted(self.api_errors.items())] or [('{endpoint="ping"}', 0)],
        )
        metric(
            "freqtrade_venue_reachable",
            "gauge",
            "1 when the venue answers on the bot's path to it",
            [("", self._venue_reachable())],
        )
        if self.venue_admin_url and {"config", "open", "trades"} <= set(bot):
            self._divergence(bot, metric)
        return lines

    def _divergence(self, bot: dict[str, Any], metric: Any) -> None:
        try:
            truth = self._get(f"{self.venue_admin_url}/admin/truth")
        except (OSError, ValueError):
            metric("freqtrade_venue_truth_up", "gauge", "1 when the venue's truth answers", [("", 0)])
            return
        metric("freqtrade_venue_truth_up", "gauge", "1 when the venue's truth answers", [("", 1)])
        held: dict[str, Decimal] = {}
        for trade in bot["open"]:
            base = trade["base_currency"]
            held[base] = held.get(base, Decimal(0)) + Decimal(str(trade["amount"]))
        stake = bot["config"].get("stake_currency", "USDT")
        diffs = []
        for asset, row in truth.get("balances", {}).items():
            if asset == stake:
                continue
            venue = Decimal(row["free"]) + Decimal(row["locked"])
            diffs.append((f'{{asset="{asset}"}}', float(venue - held.get(asset, Decimal(0)))))
        metric("freqtrade_venue_position_diff", "gauge", "venue holding minus the bot's open-trade amount", diffs)
        # /trades lists closed trades only; the open ones (with their orders) come from /status.
        trades = [*bot["trades"].get("trades", []), *bot["open"]]
        known = {str(o.get("order_id")) for t in trades for o in t.get("orders", [])}
        unknown = sum(
            1 for o in truth.get("orders", []) if str(o["orderId"]) not in known and o["executedQty"] != "0.00000000"
        )
        metric(
            "freqtrade_venue_unknown_orders", "gauge", "executed venue orders the bot has no record of", [("", unknown)]
        )


class BotUnavailable(Exception):
    pass


def serve(exporter: Exporter, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

        def do_GET(self) -> None:
            if self.path == "/health":
                body, ctype = b'{"ok": true}', "application/json"
            elif self.path == "/metrics":
                body, ctype = ("\n".join(exporter.collect()) + "\n").encode(), "text/plain; version=0.0.4"
            else:
                self.send_error(404, "try /metrics or /health")
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Freqtrade REST API -> Prometheus metrics (127.0.0.1 only)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--freqtrade-url", required=True)
    parser.add_argument("--venue-url", required=True, help="the venue on the bot's path (its Toxiproxy link)")
    parser.add_argument("--venue-admin-url", help="the venue's admin API, for divergence metrics")
    parser.add_argument("--username", default="drill")
    parser.add_argument("--password", default="drill")
    parser.add_argument("--timeout", type=float, default=0.8, help="seconds per call (below the scrape timeout)")
    args = parser.parse_args(argv)
    exporter = Exporter(
        _loopback_url("--freqtrade-url", args.freqtrade_url),
        _loopback_url("--venue-url", args.venue_url),
        _loopback_url("--venue-admin-url", args.venue_admin_url) if args.venue_admin_url else None,
        args.username,
        args.password,
        args.timeout,
    )
    server = serve(exporter, args.port)
    print(
        json.dumps({"event": "exporter_started", "msg": f"Exporter on http://127.0.0.1:{args.port}/metrics"}),
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
