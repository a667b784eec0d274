"""The traderunner service: main loop, HTTP control API, /health, /metrics, runtime.json.

Threads: the main loop (poll marketdata -> validate -> marks -> daily P&L / kill switch -> strategy
-> risk -> orders -> exports, every ``poll_interval``), the broker connector, the HTTP server.
Engine state is guarded by one re-entrant lock; nothing waits on the network while holding it
(broker answers are processed on the connector thread, which needs the lock).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from mockstack.common.http import Check, HealthReport, HTTPError, Request, Response, ServiceHTTP
from mockstack.common.logging import EventLog
from mockstack.traderunner import exports
from mockstack.traderunner.broker_connector import BrokerConnector, BrokerUnavailable
from mockstack.traderunner.config import ConfigError, Configs, load_configs
from mockstack.traderunner.marketdata_client import MarketDataClient, MarketDataError
from mockstack.traderunner.metrics import Metrics
from mockstack.traderunner.orders import OrderManager
from mockstack.traderunner.quality import BAR_SECONDS, FeedQuality, Violation, bar_time
from mockstack.traderunner.risk import ApprovalError, DailyPnL, KillSwitch, check_order, daily_pnl, kill_switch_doc
from mockstack.traderunner.store import UNACKED, WORKING, Store, StoreError
from mockstack.traderunner.strategy import Strategy

SERVICE = "traderunner"
LOOKBACK_BARS = 5
RECONCILE_INTERVAL = 1.0
EXPORT_INTERVAL = 1.0
MODES = ("lab", "paper", "live")
LIVE_REFUSAL = "this mock has no real broker; use lab or paper"



def owns_runtime(doc: object, pid: int, started_at: str) -> bool:
    """Whether runtime.json names this process: the same pid *and* start time. Two engines in two containers can
    have the same pid; a stale one (its machine cut off, then back) must not delete its successor's file."""
    return isinstance(doc, dict) and doc.get("pid") == pid and doc.get("started_at") == started_at

class SettingsError(Exception):
    """A flag or environment variable has a bad value (exit 2, one line)."""


@dataclass(frozen=True)
class Settings:
    workdir: Path
    host: str = "127.0.0.1"
    http_port: int = 7300
    broker_host: str = "127.0.0.1"
    broker_port: int = 7100
    marketdata_url: str = "http://127.0.0.1:7200"
    poll_interval: float = 0.2
    heartbeat_timeout: float = 2.0
    reconnect_attempts: int = 3
    reconnect_backoff: float = 0.5
    mode: str = "lab"


_FLAGS: dict[str, tuple[str, str]] = {
    # name: (flag, env var)
    "workdir": ("--workdir", "TR_WORKDIR"),
    "host": ("--host", "TR_HOST"),
    "http_port": ("--http-port", "TR_HTTP_PORT"),
    "broker": ("--broker", "TR_BROKER_ADDR"),
    "marketdata": ("--marketdata", "TR_MARKETDATA_URL"),
    "poll_interval_ms": ("--poll-interval-ms", "TR_POLL_INTERVAL_MS"),
    "heartbeat_timeout": ("--heartbeat-timeout", "TR_HEARTBEAT_TIMEOUT"),
    "reconnect_attempts": ("--reconnect-attempts", "TR_RECONNECT_ATTEMPTS"),
    "reconnect_backoff": ("--reconnect-backoff", "TR_RECONNECT_BACKOFF"),
}


def parse_settings(flags: Mapping[str, str | None], env: Mapping[str, str]) -> Settings:
    """Flags win over environment variables; a bad value raises :class:`SettingsError` naming both."""

    def raw(name: str) -> tuple[str | None, str]:
        flag, var = _FLAGS[name]
        value = flags.get(name)
        if value is not None:
            return value, flag
        return env.get(var), var

    def bad(where: str, value: str, accepted: str) -> SettingsError:
        return SettingsError(f"{where}={value!r} is invalid: expected {accepted}")

    def number(name: str, default: float, *, integer: bool, minimum: float, accepted: str) -> float:
        value, where = raw(name)
        if value is None or value == "":
            return default
        try:
            parsed = int(value) if integer else float(value)
        except ValueError:
            raise bad(where, value, accepted) from None
        if parsed < minimum or parsed != parsed:
            raise bad(where, value, accepted)
        return parsed

    workdir_raw, _ = raw("workdir")
    workdir = Path(workdir_raw) if workdir_raw else Path.cwd()
    host = raw("host")[0] or "127.0.0.1"
    http_port = int(number("http_port", 7300, integer=True, minimum=0, accepted="a port number 0-65535"))
    if http_port > 65535:
        raise bad(raw("http_port")[1], str(http_port), "a port number 0-65535")
    broker_raw, broker_where = raw("broker")
    broker_raw = broker_raw or "127.0.0.1:7100"
    b_host, sep, b_port = broker_raw.rpartition(":")
    if not sep or not b_host or not b_port.isdigit() or not 0 < int(b_port) <= 65535:
        raise bad(broker_where, broker_raw, "HOST:PORT, e.g. 127.0.0.1:7100")
    md_raw, md_where = raw("marketdata")
    md_url = md_raw or "http://127.0.0.1:7200"
    parts = urlsplit(md_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad(md_where, md_url, "an http URL, e.g. http://127.0.0.1:7200")
    poll_ms = number("poll_interval_ms", 200, integer=True, minimum=10, accepted="an integer >= 10 (milliseconds)")
    hb = number("heartbeat_timeout", 2.0, integer=False, minimum=0.1, accepted="seconds >= 0.1")
    attempts = int(number("reconnect_attempts", 3, integer=True, minimum=1, accepted="an integer >= 1"))
    backoff = number("reconnect_backoff", 0.5, integer=False, minimum=0.0, accepted="seconds >= 0")
    mode = env.get("TR_MODE", "lab") or "lab"
    if mode == "live":
        raise SettingsError(f"TR_MODE=live is refused: {LIVE_REFUSAL}")
    if mode not in ("lab", "paper"):
        raise SettingsError(f"TR_MODE={mode!r} is invalid: expected lab or paper")
    return Settings(
        workdir=workdir,
        host=host,
        http_port=http_port,
        broker_host=b_host,
        broker_port=int(b_port),
        marketdata_url=md_url,
        poll_interval=poll_ms / 1000.0,
        heartbeat_timeout=hb,
        reconnect_attempts=attempts,
        reconnect_backoff=backoff,
        mode=mode,
    )


def promotion_decision(target: str, kill_active: bool, sla_violated: bool) -> tuple[bool, str]:
    """Whether switching to ``target`` mode is allowed, and why (shared by service and offline CLI)."""
    if target == "lab":
        return True, "lab is always allowed (rollback)"
    if target == "live":
        return False, f"live is refused: {LIVE_REFUSAL}"
    if target != "paper":
        return False, f"unknown mode {target!r}: expected lab, paper or live"
    reasons = []
    if sla_violated:
        reasons.append("the data SLA is violated (run 'traderunner data fetch' and 'traderunner data validate')")
    if kill_active:
        reasons.append("the kill switch is active (reset it with approval first)")
    if reasons:
        return False, "; ".join(reasons)
    return True, "paper allowed: SLA ok and kill switch inactive"


class Engine:
    def __init__(self, settings: Settings, configs: Configs, store: Store, log: EventLog) -> None:
        self.settings = settings
        self.configs = configs
        self.store = store
        self.log = log
        self.metrics = Metrics()
        self.lock = threading.RLock()
        self._kill_export_lock = threading.Lock()
        self.started_at = exports.utc_now_iso()
        self.workdir = settings.workdir
        self.md = MarketDataClient(settings.marketdata_url)
        self.strategy = Strategy(configs.strategy)
        self.connector = BrokerConnector(
            settings.broker_host,
            settings.broker_port,
            client_id=f"traderunner-{os.getpid()}",
            log=log,
            metrics=self.metrics,
            on_message=self._on_broker_message,
            on_connected=self._on_connected,
            heartbeat_timeout=settings.heartbeat_timeout,
            attempts=settings.reconnect_attempts,
            backoff=settings.reconnect_backoff,
        )
        self.orders = OrderManager(store, self.connector, log, self.metrics, self.workdir)
        self.kill = KillSwitch(
            store, configs.risk, log, self.metrics, self._export_kill_switch, self.orders.cancel_working
        )
        self.symbols: list[str] | None = None
        self.quality: FeedQuality | None = None
        self.md_ok = False
        self.md_detail = "not polled yet"
        self.synced = False
        self._needs_sync = threading.Event()
        self._stop = threading.Event()
        self._loop_thread: threading.Thread | None = None
        self._last_reconcile = 0.0
        self._recon_prev_diff: dict[str, dict[str, int]] | None = None
        self._recon_logged: str | None = None
        self.reconcile_state: dict[str, Any] = {"checked_at": None, "ok": None, "diff": {}}
        self._marks_cache: dict[str, float] = dict(store.marks())
        self._last_export: dict[str, Any] = {}
        self._last_export_at = 0.0
        self._sla_persisted: tuple[bool, int] | None = None
        self._blocked_logged: dict[str, tuple[str, str, int]] = {}
        self._sla_log_at: dict[tuple[str, str], float] = {}
        self._trading_paused_logged = False
        self.http: ServiceHTTP | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        with self.lock:
            self.store.set_mode(self.settings.mode, exports.utc_now_iso(), "TR_MODE", "set at start")
            self.metrics.set_mode(self.settings.mode)
            # the state files exist before the engine answers its health endpoint: a runbook's first
            # `cat artifacts/state/positions.json` or `daily_pnl.json` must never race the first loop iteration
            # (on a busy machine it came after the runbook's step: "No such file or directory"). The first
            # export writes every file (its interval has not started)
            self._export(daily_pnl(self.store, None, self._marks_cache))
        self.orders.repair_journal()
        self.http = ServiceHTTP(
            SERVICE, self.settings.host, self.settings.http_port, self.metrics.registry, self.health
        )
        for method, path, handler in (
            ("GET", "/api/status", self._api_status),
            ("POST", "/api/kill-switch/trip", self._api_trip),
            ("POST", "/api/kill-switch/reset", self._api_reset),
            ("POST", "/api/broker/reconnect", self._api_reconnect),
            ("POST", "/api/data/fetch", self._api_fetch),
            ("POST", "/api/data/validate", self._api_validate),
            ("POST", "/api/reconcile", self._api_reconcile),
            ("POST", "/api/promote", self._api_promote),
        ):
            self.http.route(method, path, handler)
        self.http.start()
        self.connector.start()
        self._loop_thread = threading.Thread(target=self._loop, name="traderunner-loop", daemon=True)
        self._loop_thread.start()
        url = f"http://{self.settings.host if self.settings.host != '0.0.0.0' else '127.0.0.1'}:{self.http.port}"
        exports.write_json_atomic(
            self.workdir / exports.RUNTIME, {"pid": os.getpid(), "http_url": url, "started_at": self.started_at}
        )
        self.log.info(
            "service_started",
            f"traderunner started in {self.settings.mode} mode, API on {url}",
            http_url=url,
            mode=self.settings.mode,
            workdir=str(self.workdir),
        )

    def stop(self) -> None:
        self._stop.set()
        self.connector.stop()
        if self._loop_thread is not None:
            self._loop_thread.join(1.5)
        if self.http is not None:
            self.http.stop()
        runtime = self.workdir / exports.RUNTIME
        try:
            if owns_runtime(exports.read_json(runtime), os.getpid(), self.started_at):
                runtime.unlink()
        except (FileNotFoundError, ValueError, AttributeError):
            pass
        self.md.close()
        self.log.info("service_stopped", "traderunner stopped")

    # --- broker callbacks -----------------------------------------------------------------------
    def _on_connected(self) -> None:
        """Runs on the connector thread: the sync waits for broker answers, so it gets its own thread."""
        self.synced = False
        self._needs_sync.set()
        threading.Thread(target=self._post_connect, name="broker-sync", daemon=True).start()

    def _on_broker_message(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "positions":  # answer to an automatic (fire-and-forget) reconcile
            self._compare_positions(msg, manual=False, confirm=False)
            return
        with self.lock:
            self.orders.on_message(msg, lambda: self.kill.active)

    def _post_connect(self) -> None:
        if not self._needs_sync.is_set():
            return
        self._needs_sync.clear()
        try:
            resent = self.orders.resend_unacked()
            snapshot = self.connector.request({"type": "orders"}, "orders", 3.0)
            orders = snapshot.get("orders")
            with self.lock:
                self.orders.sync(orders if isinstance(orders, list) else [])
                if self.kill.active:
                    self.orders.cancel_working()
            self.reconcile(manual=False, confirm=True)
            self.synced = True
            self.log.info(
                "broker_synced", f"Broker session synced ({resent} unacknowledged order(s) re-sent)", resent=resent
            )
        except BrokerUnavailable as exc:
            self.log.error("broker_sync_failed", f"Sync after connect failed: {exc}")

    # --- main loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.step()
            except Exception as exc:  # the loop must outlive one bad iteration; it is logged, not hidden
                self.log.error(
                    "loop_error", f"Main loop iteration failed: {type(exc).__name__}: {exc}", error=repr(exc)
                )
            self.metrics.loop_duration.observe(time.monotonic() - started)
            next_t += self.settings.poll_interval
            delay = next_t - time.monotonic()
            if delay < 0:
                next_t = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def _resolve_symbols(self) -> None:
        try:
            available = self.md.symbols()
        except MarketDataError as exc:
            self.md_ok, self.md_detail = False, str(exc)
            return
        wanted = self.configs.strategy.symbols
        if isinstance(wanted, int):
            symbols = available[:wanted]
        else:
            symbols = [s for s in wanted if s in available]
            missing = [s for s in wanted if s not in available]
            if missing:
                self.log.error("config_error", f"configs/strategy.yml symbols not offered by marketdata: {missing}")
        quality = FeedQuality(symbols, time.monotonic, stale_after=5 * self.settings.poll_interval)
        quality.restore(self.store.get_value("sla"))
        self.symbols = symbols
        self.quality = quality
        self.log.info("symbols", f"Trading {len(symbols)} symbol(s): {', '.join(symbols)}", symbols=symbols)
        self.fetch_history()

    def step(self) -> None:
        if self.symbols is None or self.quality is None:
            self._resolve_symbols()
            if self.quality is None:
                return
        raws = self._poll()
        with self.lock:
            new_symbols = self._ingest(raws)
            self._update_marks()
            pnl = self._pnl()
            self.kill.check_loss(pnl)
            if new_symbols:
                self._trade(new_symbols)
            self._export(pnl)
        if self.connector.connected and self.synced and time.monotonic() - self._last_reconcile >= RECONCILE_INTERVAL:
            # fire and forget: the answer is compared on the connector thread, the loop never waits
            self._last_reconcile = time.monotonic()
            self.connector.send({"type": "positions"})

    def _poll(self) -> dict[str, list[Any] | None]:
        assert self.symbols is not None and self.quality is not None
        out: dict[str, list[Any] | None] = {}
        errors = []
        for symbol in self.symbols:
            last = self.quality.last_timestamp(symbol)
            since = last - LOOKBACK_BARS * BAR_SECONDS if last is not None else None
            try:
                out[symbol] = self.md.intraday(symbol, since)
            except MarketDataError as exc:
                out[symbol] = None
                errors.append(str(exc))
        self.md_ok = not errors
        self.md_detail = errors[0] if errors else "last poll ok"
        return out

    def _log_violations(self, found: list[Violation] | tuple[Violation, ...]) -> None:
        now = time.monotonic()
        for v in found:
            self.metrics.data_violations.labels(kind=v.kind).inc()
            key = (v.symbol, v.kind)
            if now - self._sla_log_at.get(key, -1e9) < 2.0:
                continue  # metrics count every one; the log says it at most every 2 s per symbol and kind
            self._sla_log_at[key] = now
            self.log.error(
                "sla_violation",
                f"SLA violation: {v.kind} on {v.symbol} at {bar_time(v.timestamp)}: {v.detail}",
                symbol=v.symbol,
                kind=v.kind,
                timestamp=v.timestamp,
                detail=v.detail,
            )

    def _ingest(self, raws: dict[str, list[Any] | None]) -> list[str]:
        assert self.quality is not None
        new_symbols = []
        for symbol, raw in raws.items():
            if raw is None:
                self.quality.poll_failed(symbol)
                continue
            result = self.quality.ingest(symbol, raw)
            self._log_violations(result.violations)
            if result.new_bars:
                self.metrics.bars_processed.inc(len(result.new_bars))
                new_symbols.append(symbol)
        self._log_violations(self.quality.check_staleness())
        self._persist_sla()
        return new_symbols

    def _persist_sla(self) -> None:
        assert self.quality is not None
        key = (self.quality.violated, len(self.quality.violations))
        self.metrics.data_sla_ok.set(0 if self.quality.violated else 1)
        if key != self._sla_persisted:
            self._sla_persisted = key
            self.store.set_value("sla", self.quality.sticky_state())
            self._export_sla()

    def _update_marks(self) -> None:
        assert self.quality is not None and self.symbols is not None
        changed: dict[str, tuple[float, int]] = {}
        for symbol in self.symbols:
            last = self.quality.last_close(symbol)
            if last is not None and self._marks_cache.get(symbol) != last[0]:
                changed[symbol] = last
                self._marks_cache[symbol] = last[0]
        self.store.set_marks(changed)

    def _pnl(self) -> DailyPnL:
        positions = self.store.positions()
        pnl = daily_pnl(self.store, positions, self._marks_cache)
        self.metrics.daily_pnl.set(round(pnl.total, 2))
        for symbol, pos in positions.items():
            self.metrics.position.labels(symbol=symbol).set(pos.qty)
        return pnl

    def _trade(self, symbols: list[str]) -> None:
        assert self.quality is not None
        if not (self.connector.connected and self.synced):
            return
        if self.quality.violated:
            if not self._trading_paused_logged:
                self._trading_paused_logged = True
                self.log.warning("trading_paused", "Trading paused: the data SLA is violated (no orders on bad data)")
            return
        self._trading_paused_logged = False
        positions = self.store.positions()
        open_orders = self.store.orders(UNACKED + WORKING)
        killed = self.kill.active
        risk = self.configs.risk
        for symbol in symbols:
            in_flight = [o for o in open_orders if o.symbol == symbol]
            pos = positions[symbol].qty if symbol in positions else 0
            intent = self.strategy.decide(
                symbol, self.quality.closes(symbol, self.configs.strategy.slow), pos, len(in_flight)
            )
            if intent is None:
                continue
            decision = check_order(
                risk,
                kill_active=killed,
                side=intent.side,
                qty=intent.qty,
                exposure=pos + sum(o.signed_leaves for o in in_flight),
                orders_last_minute=self.store.count_orders_since(time.time() - 60.0),
            )
            if not decision.allowed:
                marker = (decision.reason, intent.side, intent.qty)
                if self._blocked_logged.get(symbol) != marker:
                    self._blocked_logged[symbol] = marker
                    self.log.warning(
                        "order_blocked",
                        f"Order blocked ({decision.reason}): {intent.side} {intent.qty} {symbol}: {decision.detail}",
                        reason=decision.reason,
                        symbol=symbol,
                        side=intent.side,
                        qty=intent.qty,
                    )
                continue
            self._blocked_logged.pop(symbol, None)
            self.orders.place(intent)

    # --- exports --------------------------------------------------------------------------------
    def _write_if_changed(self, rel: Path, doc: dict[str, Any], volatile: tuple[str, ...] = ("updated_at",)) -> None:
        comparable = {k: v for k, v in doc.items() if k not in volatile}
        if self._last_export.get(str(rel)) == comparable:
            return
        self._last_export[str(rel)] = comparable
        exports.write_json_atomic(self.workdir / rel, doc)

    def _export_kill_switch(self) -> None:
        # the loop, a trip (any thread) and a reset export it: one at a time, each reading the state it writes,
        # so a slower writer's older state never lands after a newer one
        with self._kill_export_lock:
            self._write_if_changed(exports.KILL_SWITCH, kill_switch_doc(self.kill.state()), ())

    def _export_sla(self) -> None:
        if self.quality is not None:
            exports.write_json_atomic(self.workdir / exports.LATEST_SLA, self.quality.report(exports.utc_now_iso()))

    def _export_positions(self) -> None:
        positions = {s: p.qty for s, p in self.store.positions().items()}
        self._write_if_changed(exports.POSITIONS, exports.positions_doc(positions))

    def _export(self, pnl: DailyPnL) -> None:
        self._export_positions()
        self._export_kill_switch()
        now = time.monotonic()
        if now - self._last_export_at >= EXPORT_INTERVAL:
            self._last_export_at = now
            exports.write_json_atomic(self.workdir / exports.DAILY_PNL, pnl.as_dict(self.configs.risk.max_daily_loss))
            self._export_sla()

    # --- reconciliation, data, promotion (also used by the HTTP API) ----------------------------
    def reconcile(self, *, manual: bool, confirm: bool = False) -> dict[str, Any]:
        """Compare own positions with the broker's; raises BrokerUnavailable when not connected."""
        self._last_reconcile = time.monotonic()
        tries = 4 if manual else 1
        result: dict[str, Any] = {}
        for attempt in range(tries):
            # our book as of the broker's answer (read on the session thread, in the order the broker wrote):
            # read later, it could hold a fill the broker reported after answering, a mismatch that is not one
            reply, book = self.connector.request_observed(
                {"type": "positions"}, "positions", 2.0, observe=lambda _reply: self._book()
            )
            result = self._compare_positions(reply, manual=manual, confirm=confirm, final=False, book=book)
            if result["ok"] or not result["in_flight"] or attempt == tries - 1:
                break
            time.sleep(0.3)  # fills in flight: look again before calling it a mismatch
        return self._compare_positions(reply, manual=manual, confirm=confirm, book=book)

    def _book(self) -> tuple[dict[str, int], bool]:
        """Our non-zero positions, and whether any order is in flight (unacknowledged or working)."""
        with self.lock:
            expected = {s: p.qty for s, p in self.store.positions().items() if p.qty != 0}
            return expected, bool(self.store.orders(UNACKED + WORKING))

    def _compare_positions(
        self,
        reply: dict[str, Any],
        *,
        manual: bool,
        confirm: bool,
        final: bool = True,
        book: tuple[dict[str, int], bool] | None = None,
    ) -> dict[str, Any]:
        """The broker's ``reply`` against ``book`` (our book as of the reply; read now when not given, as on
        the session thread, where an automatic check's answer is handled in the broker's order)."""
        actual = _broker_positions(reply)
        expected, in_flight = book if book is not None else self._book()
        diff = _position_diff(expected, actual)
        if not final:
            return {"ok": not diff, "in_flight": in_flight}
        with self.lock:
            exports.write_json_atomic(self.workdir / exports.EXPECTED_POSITIONS, exports.positions_doc(expected))
            exports.write_json_atomic(self.workdir / exports.ACTUAL_POSITIONS, exports.positions_doc(actual))
            # automatic checks call a diff real only when seen twice in a row (or with nothing in flight)
            confirmed = not diff or manual or confirm or not in_flight or diff == self._recon_prev_diff
            self._recon_prev_diff = diff
            if confirmed:
                self.metrics.mismatch_symbols.set(len(diff))
                self.reconcile_state = {"checked_at": exports.utc_now_iso(), "ok": not diff, "diff": diff}
                signature = repr(sorted(diff.items()))
                if signature != self._recon_logged:
                    self._recon_logged = signature
                    if diff:
                        text = ", ".join(f"{s} expected {d['expected']} actual {d['actual']}" for s, d in diff.items())
                        self.log.error("reconcile", f"Reconciliation mismatch: {text}", diff=diff)
                    else:
                        self.log.info("reconcile", "Reconciliation ok: positions match the broker", positions=expected)
        return {"ok": not diff, "expected": expected, "actual": actual, "diff": diff, "in_flight": in_flight}

    def fetch_history(self) -> dict[str, Any]:
        """``data fetch``: re-fetch every symbol's full history and re-validate it."""
        assert self.symbols is not None and self.quality is not None
        histories: dict[str, list[Any]] = {}
        for symbol in self.symbols:
            histories[symbol] = self.md.intraday(symbol, None)
        with self.lock:
            found = self.quality.replace_history(histories)
            self._log_violations(found)
            self._update_marks()
            self._persist_sla()
            self._export_sla()
            clean = self.quality.fetch_clean
        self.log.info(
            "data_fetch",
            f"Data fetch: {sum(len(h) for h in histories.values())} bars for "
            f"{len(histories)} symbol(s), {'clean' if clean else f'{len(found)} violation(s)'}",
            clean=clean,
        )
        return {
            "bars": {s: len(h) for s, h in histories.items()},
            "clean": clean,
            "violations": [v.as_dict() for v in found],
        }

    def validate_data(self) -> dict[str, Any]:
        assert self.quality is not None
        with self.lock:
            ok, message = self.quality.validate()
            self._sla_persisted = None
            self._persist_sla()
            self._export_sla()
            report = self.quality.report(exports.utc_now_iso())
        self.log.info("data_validate", f"Data validate: {message}", ok=ok)
        return {"ok": ok, "message": message, "sla": report}

    def promote(self, target: str, actor: str) -> tuple[bool, str]:
        with self.lock:
            violated = (
                self.quality.violated
                if self.quality is not None
                else bool((self.store.get_value("sla") or {}).get("violated"))
            )
            allowed, why = promotion_decision(target, self.kill.active, violated)
            if not allowed:
                self.log.warning("promotion_blocked", f"Promotion blocked: to {target}: {why}", target=target)
                return False, why
            self.store.set_mode(target, exports.utc_now_iso(), actor, f"promote to {target}")
            self.metrics.set_mode(target)
            self.log.info("promotion", f"Mode changed to {target}", mode=target)
            return True, why

    # --- status and health ----------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self.lock:
            pnl = daily_pnl(self.store, None, self._marks_cache)
            ks = self.kill.state()
            sla = self.quality.report(exports.utc_now_iso()) if self.quality is not None else None
            open_orders = self.store.orders(UNACKED + WORKING)
            return {
                "service": {"pid": os.getpid(), "started_at": self.started_at, "running": True},
                "mode": self.store.mode(),
                "kill_switch": kill_switch_doc(ks) | {"trips": ks.trips},
                "broker": self.connector.status() | {"synced": self.synced},
                "marketdata": {"ok": self.md_ok, "detail": self.md_detail, "symbols": self.symbols or []},
                "positions": {s: p.qty for s, p in self.store.positions().items()},
                "daily_pnl": pnl.as_dict(self.configs.risk.max_daily_loss),
                "sla": sla,
                "orders": {"open": len(open_orders), "total": len(self.store.orders())},
                "reconcile": self.reconcile_state,
            }

    def health(self) -> HealthReport:
        try:
            self.store.ping()
            store_check = Check(True, str(self.store.path))
        except StoreError as exc:
            store_check = Check(False, str(exc))
        ks = self.kill.state() if store_check.ok else None
        violated = self.quality.violated if self.quality is not None else True
        loop_alive = self._loop_thread is None or self._loop_thread.is_alive()
        return HealthReport(
            live=loop_alive,
            checks={
                "broker": Check(
                    self.connector.connected,
                    self.connector.state + (f": {self.connector.last_error}" if not self.connector.connected else ""),
                ),
                "marketdata": Check(self.md_ok, self.md_detail),
                "store": store_check,
                "kill_switch": Check(
                    ks is not None and not ks.active,
                    "inactive" if ks is not None and not ks.active else f"active: {ks.reason if ks else 'unknown'}",
                ),
                "data_sla": Check(
                    not violated, "ok" if not violated else ("violated" if self.quality is not None else "no data yet")
                ),
            },
        )

    # --- HTTP handlers --------------------------------------------------------------------------
    def _api_status(self, _: Request) -> Response:
        return Response.json(self.status())

    def _api_trip(self, req: Request) -> Response:
        body = req.json()
        reason = str(body.get("reason") or "").strip()
        if not reason:
            raise HTTPError(400, "missing field 'reason'", "reason")
        by = str(body.get("by") or "operator")
        with self.lock:
            tripped = self.kill.trip(f"manual: {reason}", by)
            return Response.json({"tripped": tripped, "kill_switch": kill_switch_doc(self.kill.state())})

    def _api_reset(self, req: Request) -> Response:
        body = req.json()
        approved_by = str(body.get("approved_by") or "")
        reason = str(body.get("reason") or "")
        with self.lock:
            if not self.kill.active:
                return Response.json(
                    {
                        "reset": False,
                        "message": "the kill switch is not active",
                        "kill_switch": kill_switch_doc(self.kill.state()),
                    }
                )
            try:
                floor = self.kill.reset(approved_by, reason, daily_pnl(self.store, None, self._marks_cache))
            except ApprovalError as exc:
                raise HTTPError(400, str(exc), "approved_by" if not approved_by.strip() else "reason") from exc
            return Response.json(
                {"reset": True, "rearmed_level": floor, "kill_switch": kill_switch_doc(self.kill.state())}
            )

    def _api_reconnect(self, req: Request) -> Response:
        wait = float(req.json().get("wait", 10.0))
        self.synced = False
        self.connector.request_reconnect()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.connector.connected and self.synced:
                break
            if self.connector.state == "manual_intervention":
                break
            time.sleep(0.05)
        return Response.json(
            {
                "connected": self.connector.connected and self.synced,
                "broker": self.connector.status(),
                "reconcile": self.reconcile_state,
            }
        )

    def _api_fetch(self, _: Request) -> Response:
        if self.quality is None:
            raise HTTPError(409, "no symbols yet: marketdata has not answered /api/symbols")
        try:
            return Response.json(self.fetch_history())
        except MarketDataError as exc:
            raise HTTPError(409, f"data fetch failed: {exc}") from exc

    def _api_validate(self, _: Request) -> Response:
        if self.quality is None:
            raise HTTPError(409, "no data yet: marketdata has not answered")
        return Response.json(self.validate_data())

    def _api_reconcile(self, req: Request) -> Response:
        body = req.json()
        accept = bool(body.get("accept_broker"))
        approved_by = str(body.get("approved_by") or "").strip()
        if accept and not approved_by:
            raise HTTPError(400, "--accept-broker needs --approved-by NAME", "approved_by")
        try:
            result = self.reconcile(manual=True)
            if accept and not result["ok"]:
                self._adopt_broker_positions(approved_by)
                result = self.reconcile(manual=True) | {"adopted": True}
        except BrokerUnavailable as exc:
            raise HTTPError(409, f"cannot reconcile: {exc}") from exc
        return Response.json(result)

    def _adopt_broker_positions(self, approved_by: str, *, tries: int = 40) -> None:
        """Adopt the broker's positions from a snapshot consistent with our own book.

        Trading goes on meanwhile, so a snapshot is adopted only if, between just before the broker was
        asked and the adoption (under the lock), no order was in flight and no fill changed our positions.
        Otherwise a fill would be counted twice or lost (adopting a snapshot taken before a fill we have
        already booked). Orders are booked ``pending`` before they are sent, so "nothing in flight" covers
        a fill the broker made but has not reported yet.
        """
        for _ in range(tries):
            before, busy = self._book()
            if not busy:
                actual = _broker_positions(self.connector.request({"type": "positions"}, "positions", 2.0))
                with self.lock:
                    now, busy = self._book()
                    if now == before and not busy:
                        diff = _position_diff(now, actual)
                        self.store.adopt_positions(
                            actual, dict(self._marks_cache), approved_by, exports.utc_now_iso(), {"diff": diff}
                        )
                        self.log.warning(
                            "reconcile_accept_broker", f"Broker positions adopted, approved by {approved_by}", diff=diff
                        )
                        return
            time.sleep(0.1)
        raise HTTPError(
            409,
            "cannot adopt the broker's positions: orders kept being sent and filled while reconciling "
            f"({tries} tries); activate the kill switch, then reconcile again",
        )

    def _api_promote(self, req: Request) -> Response:
        body = req.json()
        target = str(body.get("to") or "")
        allowed, why = self.promote(target, str(body.get("by") or "operator"))
        return Response.json({"allowed": allowed, "mode": self.store.mode(), "message": why}, 200 if allowed else 409)


def _broker_positions(reply: dict[str, Any]) -> dict[str, int]:
    """The broker's non-zero positions from its ``positions`` reply."""
    raw = reply.get("positions")
    return {str(s): int(q) for s, q in (raw.items() if isinstance(raw, dict) else []) if int(q) != 0}


def _position_diff(expected: dict[str, int], actual: dict[str, int]) -> dict[str, dict[str, int]]:
    """Every symbol whose size differs between our book and the broker's."""
    return {
        s: {"expected": expected.get(s, 0), "actual": actual.get(s, 0)}
        for s in sorted(set(expected) | set(actual))
        if expected.get(s, 0) != actual.get(s, 0)
    }


def _other_instance(workdir: Path) -> str | None:
    try:
        runtime = exports.read_json(workdir / exports.RUNTIME)
        pid = int(runtime["pid"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"traderunner" not in cmdline.read_bytes():
        return None  # the pid was reused by something else
    return f"pid {pid} ({runtime.get('http_url')})"


def run_service(settings: Settings, stderr: Any) -> int:
    """Start everything, serve until SIGTERM/SIGINT, stop cleanly. Returns the exit status."""
    workdir = settings.workdir
    try:
        configs = load_configs(workdir)
    except ConfigError as exc:
        print(f"traderunner: refusing to start: {exc}", file=stderr)
        return 2
    other = _other_instance(workdir)
    if other:
        print(f"traderunner: refusing to start: another traderunner runs on {workdir}: {other}", file=stderr)
        return 1
    try:
        store = Store.open_in(workdir)
    except StoreError as exc:
        print(f"traderunner: refusing to start: {exc}", file=stderr)
        return 2
    log = EventLog(SERVICE, workdir / exports.LOG_PATH)
    engine = Engine(settings, configs, store, log)
    try:
        engine.start()
    except OSError as exc:
        print(
            f"traderunner: cannot listen on {settings.host}:{settings.http_port} ({exc}); "
            "choose another --http-port / TR_HTTP_PORT",
            file=stderr,
        )
        store.close()
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    while not stop.wait(0.2):
        pass
    engine.stop()
    store.close()
    log.close()
    return 0
