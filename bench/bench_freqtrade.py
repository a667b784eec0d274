"""Freqtrade's time to detection and time to recovery under each venue fault (issue 12).

Run (needs examples/freqtrade/setup.sh once; starts real services, so under the shared lock):
    flock /tmp/drill-heavy.lock .venv/bin/python bench/bench_freqtrade.py [--faults venue_down,hang,...]

Brings the example's stack (examples/freqtrade/docker-compose.yml) up with the harness's process
backend, waits for the bot's first trade, then for each fault prints one line:

* ``detect``: fault injected -> the fault's alert is active in Alertmanager (the example's rules);
* ``recover``: fault removed (or the runbook's remedy applied) -> the bot works again, by a fault-
  specific observable (first venue request after the fault, last_process fresh, trade reconciled...);
* facts checked on the way (orders lost/duplicated, requests during a ban, ...).

With ``--drills`` it instead runs both drill projects, Freqtrade's (``examples/freqtrade``) and the
mock stack's equivalent features, and prints each fault's MTTD and RTO as the harness measured
them (from each run's ``journal.json``) side by side; ``--journals FT_REPORT MOCK_REPORT`` prints the
same table from two existing report directories:
    flock /tmp/drill-heavy.lock .venv/bin/python bench/bench_freqtrade.py --drills

Every figure is measured from real processes on 127.0.0.1; nothing is asserted here.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harness.backends.process import ProcessBackend
from harness.stack import load_stack

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "freqtrade"
STACK_FILE = EXAMPLE / "docker-compose.yml"
DRILL = Path(sys.executable).parent / "drill"
# fault: (Freqtrade drill scenario, name fragment), (the mock stack's equivalent feature, name fragment)
EQUIVALENTS: tuple[tuple[str, str, str, str], ...] = (
    ("venue down", "refuses connections", "broker_connection.feature", "link goes down"),
    ("venue hangs", "stops answering; the stale loop", "broker_connection.feature", "link stops answering; after 3"),
    ("lost ack / unknown fill", "reply is lost", "unexpected_position.feature", "position without"),
    ("418 ban / rejects", "bans Freqtrade with 418", "latency_and_rejections.feature", "rejects more than"),
    ("kill -9 mid-trade", "killed with -9", "full_outage.feature", "alone is killed"),
    ("kill switch", "stopentry stops new entries", "kill_switch.feature", "market crash"),
)
AUTH = {"Authorization": "Basic " + base64.b64encode(b"drill:drill").decode()}
FAULTS = ("venue_down", "hang", "ban_418", "lost_ack", "kill_9", "stopentry")
T = TypeVar("T")
BOT_418 = r'venue_requests_total\{endpoint="(?!ping)[^"]+",status="418"\} (\S+)'  # the exporter's pings excluded


def call(
    method: str, url: str, body: dict[str, Any] | None = None, auth: bool = False, timeout: float = 5.0
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **(AUTH if auth else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            raw, status = reply.read(), reply.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, step: float = 0.25) -> tuple[T, float]:
    """(first truthy value of ``probe``, seconds it took); TimeoutError naming ``what``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value, time.monotonic() - start
        time.sleep(step)
    raise TimeoutError(f"no {what} within {timeout:.0f} s")


@dataclass(frozen=True)
class Result:
    fault: str
    detect_s: float | None
    recover_s: float | None
    notes: str


class Bench:
    def __init__(self, backend: ProcessBackend) -> None:
        self.backend = backend
        self.bot_url = f"http://{backend.endpoint('freqtrade', 'http').address}/api/v1"
        self.venue = f"http://{backend.endpoint('venue', 'http').address}"
        self.alerts = f"http://{backend.endpoint('alertmanager', 'http').address}/api/v2/alerts"

    # ----------------------------------------------------------------------- readings

    def alert_active(self, name: str) -> bool:
        status, body = call("GET", self.alerts)
        return status == 200 and any(
            a["labels"].get("alertname") == name and a["status"]["state"] == "active" for a in body
        )

    def venue_requests(self) -> float:
        """Exchange requests the venue answered with 200, the exporter's ping excluded."""
        with urllib.request.urlopen(f"{self.venue}/metrics", timeout=3) as reply:
            text = reply.read().decode()
        total = 0.0
        for line in text.splitlines():
            m = re.match(r'venue_requests_total\{endpoint="([^"]+)",status="200"\} (\S+)', line)
            if m and m.group(1) != "ping":
                total += float(m.group(2))
        return total

    def bot(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
        status, reply = call(method, f"{self.bot_url}/{path}", body, auth=True, timeout=timeout)
        if status != 200:
            raise OSError(f"{method} {path}: HTTP {status} {reply}")
        return reply

    def last_process_age(self) -> float:
        last = self.bot("GET", "health", timeout=2).get("last_process_ts")
        return float("inf") if last is None else time.time() - float(last)  # None: no loop yet

    def truth(self) -> dict[str, Any]:
        status, body = call("GET", f"{self.venue}/admin/truth")
        assert status == 200, body
        return dict(body)

    def open_trades(self) -> list[dict[str, Any]]:
        return list(self.bot("GET", "status"))

    def fault(self, body: dict[str, Any]) -> str:
        status, reply = call("POST", f"{self.venue}/admin/faults", body)
        assert status == 201, reply
        return str(reply["id"])

    def wait_quiet(self, *alerts: str) -> None:
        for name in alerts:

            def resolved(alert: str = name) -> bool:
                return not self.alert_active(alert)

            wait_for(resolved, 90, f"{name} to resolve")

    def fresh_trade(self) -> dict[str, Any]:
        """An open trade younger than 20 s (its timed exit is 60 s away)."""

        def young() -> dict[str, Any] | None:
            for t in self.open_trades():
                if not t["has_open_orders"] and time.time() - t["open_timestamp"] / 1000 < 20:
                    return t
            return None

        return wait_for(young, 150, "a freshly opened trade", step=0.5)[0]

    # ----------------------------------------------------------------------- faults

    def venue_down(self) -> Result:
        link = self.backend.link("venue")
        proxies = self.backend.toxiproxy
        before = self.venue_requests()
        t0 = time.monotonic()
        proxies.set_enabled(link.proxy_name, False)
        _, detect = wait_for(lambda: self.alert_active("FreqtradeVenueUnreachable"), 60, "venue-unreachable alert")
        time.sleep(max(0.0, 20 - (time.monotonic() - t0)))
        state = self.bot("GET", "show_config")["state"]
        health_age = self.last_process_age()
        log_mb = self.backend.log_path("freqtrade").stat().st_size / 1e6
        proxies.set_enabled(link.proxy_name, True)
        t1 = time.monotonic()
        mark = self.venue_requests()
        _, recover = wait_for(lambda: self.venue_requests() > mark, 60, "a bot request reaching the venue again")
        wait_for(lambda: not self.alert_active("FreqtradeVenueUnreachable"), 90, "alert resolution")
        resolved = time.monotonic() - t1
        return Result(
            "venue_down",
            detect,
            recover,
            f"state during outage={state}, last_process age during outage={health_age:.1f}s, "
            f"bot log {log_mb:.1f} MB after 20 s down, alert resolved {resolved:.1f}s "
            f"after link up; venue requests before={before:.0f}",
        )

    def hang(self) -> Result:
        seconds = 45
        t0 = time.monotonic()
        self.fault({"kind": "hang", "seconds": seconds})
        _, detect = wait_for(lambda: self.alert_active("FreqtradeLoopStale"), 90, "stale-loop alert")
        worst = self.last_process_age()
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        _, recover = wait_for(lambda: self.last_process_age() < 8, 120, "a fresh last_process")
        return Result(
            "hang",
            detect,
            recover,
            f"venue hangs {seconds} s; last_process age at detection {worst:.0f}s; "
            "recover = hang ends -> last_process younger than 8 s",
        )

    def ban_418(self) -> Result:
        with urllib.request.urlopen(f"{self.venue}/metrics", timeout=3) as reply:
            text = reply.read().decode()
        refused0 = sum(float(v) for v in re.findall(BOT_418, text))
        self.fault({"kind": "ban", "status": 418, "seconds": 30})
        t0 = time.monotonic()
        _, detect = wait_for(lambda: self.alert_active("FreqtradeRateLimitBan"), 60, "rate-limit alert")
        time.sleep(max(0.0, 30.5 - (time.monotonic() - t0)))
        with urllib.request.urlopen(f"{self.venue}/metrics", timeout=3) as reply:
            text = reply.read().decode()
        refused = sum(float(v) for v in re.findall(BOT_418, text))
        mark = self.venue_requests()
        _, recover = wait_for(lambda: self.venue_requests() > mark, 60, "a bot request after the ban")
        backoff = [ln for ln in self.backend.log_tail("freqtrade", 4000) if "backoff" in ln.lower()]
        delays = sorted({m for ln in backoff for m in re.findall(r"backoff delay:? (\d+)", ln)}, key=int)
        return Result(
            "ban_418",
            detect,
            recover,
            f"bot requests refused during the 30 s ban: {refused - refused0:.0f} (exporter pings excluded); "
            f"bot back-off delays seen: {', '.join(delays) or 'none logged'}",
        )

    def lost_ack(self) -> Result:
        trade = self.fresh_trade()
        tid = trade["trade_id"]
        sells_before = [o for o in self.truth()["orders"] if o["side"] == "SELL"]
        self.fault({"kind": "lost_ack", "count": 1})
        t0 = time.monotonic()
        status, reply = call("POST", f"{self.bot_url}/forceexit", {"tradeid": str(tid)}, auth=True, timeout=30)
        _, detect_after = wait_for(lambda: self.alert_active("FreqtradeTradesDiverged"), 90, "diverged alert")
        detect = time.monotonic() - t0
        still_open = any(t["trade_id"] == tid for t in self.open_trades())
        t1 = time.monotonic()
        reload_status, _ = call("POST", f"{self.bot_url}/trades/{tid}/reload", auth=True, timeout=30)
        _, _ = wait_for(lambda: not any(t["trade_id"] == tid for t in self.open_trades()), 60, "trade closed")
        recover = time.monotonic() - t1
        closed = self.bot("GET", f"trade/{tid}")
        sells = [o for o in self.truth()["orders"] if o["side"] == "SELL"]
        new_sells = len(sells) - len(sells_before)
        known = {o["order_id"] for o in closed["orders"]}
        unknown = [o for o in sells if str(o["orderId"]) not in known and o not in sells_before]
        found = any("Found previously unknown order" in ln for ln in self.backend.log_tail("freqtrade", 2000))
        return Result(
            "lost_ack",
            detect,
            recover,
            f"forceexit HTTP {status} ({str(reply)[:60]!r}); trade still open in bot={still_open}; "
            f"reload HTTP {reload_status}; exit_reason={closed['exit_reason']}; "
            f"'Found previously unknown order' logged={found}; new venue sells={new_sells}, "
            f"not in the bot after reload={len(unknown)}",
        )

    def kill_9(self) -> Result:
        trade = self.fresh_trade()
        orders_before = len(self.truth()["orders"])
        t0 = time.monotonic()
        self.backend.kill("freqtrade")
        _, _ = wait_for(lambda: self.alert_active("FreqtradeDown"), 60, "bot-down alert")
        detect = time.monotonic() - t0
        t1 = time.monotonic()
        self.backend.start("freqtrade")
        _, _ = wait_for(lambda: self.bot("GET", "show_config", timeout=2).get("state") == "running", 90, "RUNNING")
        running = time.monotonic() - t1
        _, _ = wait_for(lambda: self.last_process_age() < 5, 90, "a first loop after restart")
        recover = time.monotonic() - t1
        open_after = [t["trade_id"] for t in self.open_trades()]
        orders_after = self.truth()["orders"]
        keys = [o["clientOrderId"] for o in orders_after]
        found = any(
            "Found open trade" in ln or "open trade" in ln.lower() for ln in self.backend.log_tail("freqtrade", 500)
        )
        return Result(
            "kill_9",
            detect,
            recover,
            f"RUNNING {running:.1f}s after restart; trade {trade['trade_id']} still open after restart="
            f"{trade['trade_id'] in open_after}; venue orders {orders_before} -> {len(orders_after)}, "
            f"duplicate client ids={len(keys) - len(set(keys))}; 'open trade' logged={found}",
        )

    def stopentry(self) -> Result:
        t0 = time.monotonic()
        self.bot("POST", "stopentry")
        _, _ = wait_for(lambda: self.alert_active("FreqtradeEntriesStopped"), 60, "entries-stopped alert")
        detect = time.monotonic() - t0
        buys_at_stop = sum(1 for o in self.truth()["orders"] if o["side"] == "BUY")
        open_at_stop = len(self.open_trades())
        exited = False
        if open_at_stop:
            _, _ = wait_for(lambda: not self.open_trades(), 120, "the open trade's timed exit while stopped")
            exited = True
        time.sleep(10)
        buys_while_stopped = sum(1 for o in self.truth()["orders"] if o["side"] == "BUY") - buys_at_stop
        t1 = time.monotonic()
        self.bot("POST", "start")
        _, _ = wait_for(
            lambda: sum(1 for o in self.truth()["orders"] if o["side"] == "BUY") > buys_at_stop,
            120,
            "a new entry after start",
        )
        recover = time.monotonic() - t1
        return Result(
            "stopentry",
            detect,
            recover,
            f"open trades at stop={open_at_stop}, exit still ran while stopped={exited}, "
            f"entries while stopped={buys_while_stopped}; recover = start -> next entry order at the venue",
        )


def journal_figures(report: Path) -> dict[str, tuple[str, float | None, float | None]]:
    """scenario name -> (status, MTTD, RTO) from a drill report's journal.json."""
    journal = json.loads((report / "journal.json").read_text(encoding="utf-8"))
    out: dict[str, tuple[str, float | None, float | None]] = {}
    for scenario in journal["scenarios"]:
        values = {m["name"]: m["value_s"] for m in scenario["measurements"]}
        out[scenario["scenario"]] = (scenario["status"], values.get("MTTD"), values.get("RTO"))
    return out


def run_drills(workdir: Path, report: Path, features: list[str]) -> float:
    """``drill run`` in ``workdir`` (wall seconds); its figures are read from the report afterwards."""
    t0 = time.monotonic()
    subprocess.run([str(DRILL), "run", *features, "--report", str(report)], cwd=workdir, check=False,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def print_comparison(ft_report: Path, mock_report: Path) -> None:
    ft, mock = journal_figures(ft_report), journal_figures(mock_report)

    def pick(table: dict[str, tuple[str, float | None, float | None]], fragment: str) -> tuple[str, str, str, str]:
        for name, (status, mttd, rto) in table.items():
            if fragment in name:
                return (name[:44], status, f"{mttd:.1f}" if mttd is not None else "-",
                        f"{rto:.1f}" if rto is not None else "-")
        return ("(not run)", "-", "-", "-")

    print(f"{'fault':<24} {'Freqtrade MTTD':>14} {'RTO':>6}  {'mock MTTD':>9} {'RTO':>6}  mock scenario")
    for fault, ft_name, _, mock_name in EQUIVALENTS:
        _, ft_status, ft_mttd, ft_rto = pick(ft, ft_name)
        mock_scenario, mock_status, mock_mttd, mock_rto = pick(mock, mock_name)
        flag = "" if ft_status == mock_status == "passed" else f"  [freqtrade {ft_status}, mock {mock_status}]"
        print(f"{fault:<24} {ft_mttd:>14} {ft_rto:>6}  {mock_mttd:>9} {mock_rto:>6}  {mock_scenario}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated subset of {', '.join(FAULTS)}")
    parser.add_argument("--run-dir", type=Path, help="keep the run here (default: a temporary directory)")
    parser.add_argument("--drills", action="store_true",
                        help="run both drill projects and print MTTD/RTO per fault side by side")
    parser.add_argument("--journals", nargs=2, type=Path, metavar=("FT_REPORT", "MOCK_REPORT"),
                        help="print the side-by-side table from two existing drill report directories")
    args = parser.parse_args()
    if args.journals:
        print_comparison(*args.journals)
        return
    if args.drills:
        with tempfile.TemporaryDirectory(prefix="bench-drills-") as tmp:
            ft_wall = run_drills(EXAMPLE, Path(tmp) / "freqtrade", [])
            mock_features = sorted({f"features/{feature}" for _, _, feature, _ in EQUIVALENTS})
            mock_wall = run_drills(ROOT, Path(tmp) / "mock", mock_features)
            print(f"drill run wall time: Freqtrade {ft_wall:.0f}s (6 scenarios), mock stack {mock_wall:.0f}s "
                  f"({', '.join(Path(f).stem for f in mock_features)})", flush=True)
            print_comparison(Path(tmp) / "freqtrade", Path(tmp) / "mock")
        return
    chosen = [f for f in args.faults.split(",") if f]
    unknown = [f for f in chosen if f not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(unknown)}; choose from {', '.join(FAULTS)}")
    with tempfile.TemporaryDirectory(prefix="bench-freqtrade-") as tmp:
        run_dir = args.run_dir or Path(tmp) / "run"
        backend = ProcessBackend(load_stack(STACK_FILE), run_dir, health_timeout=90)
        t0 = time.monotonic()
        backend.up()
        print(f"stack up (all healthy) in {time.monotonic() - t0:.1f}s; run dir {run_dir}", flush=True)
        try:
            bench = Bench(backend)
            _, first = wait_for(lambda: bench.truth()["orders"], 120, "the bot's first order at the venue")
            print(f"first order at the venue {first:.1f}s after all-healthy", flush=True)
            print(f"{'fault':<12} {'detect_s':>9} {'recover_s':>10}  notes", flush=True)
            for name in chosen:
                try:
                    result: Result = getattr(bench, name)()
                except (TimeoutError, OSError, AssertionError) as exc:
                    print(f"{name:<12} {'-':>9} {'-':>10}  FAILED: {exc}", flush=True)
                    continue
                detect = f"{result.detect_s:.1f}" if result.detect_s is not None else "-"
                recover = f"{result.recover_s:.1f}" if result.recover_s is not None else "-"
                print(f"{result.fault:<12} {detect:>9} {recover:>10}  {result.notes}", flush=True)
                try:
                    bench.wait_quiet(
                        "FreqtradeVenueUnreachable", "FreqtradeLoopStale", "FreqtradeDown", "FreqtradeTradesDiverged"
                    )
                except TimeoutError as exc:
                    print(f"  (alerts did not settle: {exc})", flush=True)
        finally:
            t1 = time.monotonic()
            backend.down()
            print(f"stack down in {time.monotonic() - t1:.1f}s", flush=True)


if __name__ == "__main__":
    main()
