"""``traderunner``: the operator CLI (and ``traderunner run``, the service itself).

The CLI finds the running service through ``artifacts/state/runtime.json`` (``http_url``) and calls
its control API. Read-only commands (``status``) fall back to the SQLite store when the service is
down; ``trip-kill-switch`` and ``promote --to lab`` also work offline (safe actions, the service
reads the store at start); ``orders duplicates`` only reads the CSVs.

Exit codes: 0 ok, 1 check failed / mismatch / unhealthy, 2 usage or bad input, 3 refused (kill
switch, SLA, approval), 4 service unreachable.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import requests

from mockstack.traderunner import exports
from mockstack.traderunner.risk import daily_pnl, kill_switch_doc
from mockstack.traderunner.service import SettingsError, parse_settings, promotion_decision, run_service
from mockstack.traderunner.store import DB_RELATIVE_PATH, Store, StoreError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4


class ServiceUnreachable(Exception):
    """The service is not running or does not answer; the message says where we looked."""


class RuntimeUnreadable(ServiceUnreachable):
    """runtime.json exists but cannot be read (cut short mid-write): whether the service runs is unknown."""


def _workdir(ctx: click.Context) -> Path:
    return Path(ctx.obj["workdir"])


def _fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def service_url(workdir: Path) -> str:
    path = workdir / exports.RUNTIME
    try:
        runtime = exports.read_json(path)
    except FileNotFoundError:
        raise ServiceUnreachable(
            f"traderunner is not running ({path} does not exist); start it with 'python -m mockstack.traderunner run'"
        ) from None
    except (ValueError, OSError) as exc:
        raise RuntimeUnreadable(
            f"{path} cannot be read ({exc}): whether the service runs is unknown; "
            "check its health endpoint or process before restarting it"
        ) from exc
    url = runtime.get("http_url") if isinstance(runtime, dict) else None
    if not isinstance(url, str) or not url.startswith("http"):
        raise ServiceUnreachable(f"{path} has no usable 'http_url' ({url!r}); restart the service")
    return url


def call(
    workdir: Path, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, Any]]:
    url = service_url(workdir)
    try:
        resp = requests.request(method, f"{url}{path}", json=body, timeout=timeout)
    except requests.RequestException as exc:
        raise ServiceUnreachable(
            f"traderunner at {url} does not answer ({type(exc).__name__}); is it running? "
            f"(runtime.json may be stale after a crash)"
        ) from exc
    try:
        data = resp.json()
    except ValueError:
        data = {"error": resp.text[:300]}
    return resp.status_code, data if isinstance(data, dict) else {"value": data}


def _call_or_exit(
    workdir: Path, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, Any]]:
    try:
        return call(workdir, method, path, body, timeout)
    except ServiceUnreachable as exc:
        _fail(f"error: {exc}", EXIT_UNREACHABLE)


def _open_store(workdir: Path) -> Store:
    path = workdir / DB_RELATIVE_PATH
    if not path.exists():
        _fail(f"error: no traderunner state at {path} (the service never ran in {workdir})", EXIT_UNREACHABLE)
    try:
        return Store(path)
    except StoreError as exc:
        _fail(f"error: {exc}", EXIT_FAILED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--workdir", default=None, help="traderunner working directory (TR_WORKDIR, default: cwd)")
@click.pass_context
def cli(ctx: click.Context, workdir: str | None) -> None:
    """Operate the traderunner trading engine (see docs/stack-contract.md)."""
    ctx.ensure_object(dict)
    ctx.obj["workdir"] = workdir or os.environ.get("TR_WORKDIR") or os.getcwd()
    ctx.obj["workdir_flag"] = workdir


@cli.command()
@click.option("--workdir", "run_workdir", default=None, help="working directory (TR_WORKDIR)")
@click.option("--host", default=None, help="bind address (TR_HOST, 127.0.0.1)")
@click.option("--http-port", default=None, help="control API / health / metrics port (TR_HTTP_PORT, 7300)")
@click.option("--broker", default=None, help="broker order address HOST:PORT (TR_BROKER_ADDR)")
@click.option("--marketdata", default=None, help="marketdata base URL (TR_MARKETDATA_URL)")
@click.option("--poll-interval-ms", default=None, help="marketdata poll interval (TR_POLL_INTERVAL_MS, 200)")
@click.option("--heartbeat-timeout", default=None, help="seconds without broker traffic (TR_HEARTBEAT_TIMEOUT, 2.0)")
@click.option("--reconnect-attempts", default=None, help="reconnect attempts (TR_RECONNECT_ATTEMPTS, 3)")
@click.option("--reconnect-backoff", default=None, help="first backoff, doubling (TR_RECONNECT_BACKOFF, 0.5)")
@click.pass_context
def run(ctx: click.Context, /, run_workdir: str | None, **flags: str | None) -> None:
    """Run the trading engine service (TR_MODE=lab|paper)."""
    flags["workdir"] = run_workdir or ctx.obj.get("workdir_flag")
    try:
        settings = parse_settings(flags, os.environ)
    except SettingsError as exc:
        _fail(f"traderunner: {exc}", EXIT_USAGE)
    sys.exit(run_service(settings, sys.stderr))


def _print_status(doc: dict[str, Any]) -> None:
    ks = doc.get("kill_switch") or {}
    broker = doc.get("broker") or {}
    pnl = doc.get("daily_pnl") or {}
    sla = doc.get("sla") or {}
    running = (doc.get("service") or {}).get("running")
    if running is None:
        shown = "unknown (runtime.json unreadable; state from SQLite)"
    else:
        shown = "running" if running else "NOT RUNNING (state from SQLite)"
    click.echo(f"service:     {shown}")
    click.echo(f"mode:        {doc.get('mode')}")
    click.echo(
        f"kill switch: {'ACTIVE' if ks.get('active') else 'inactive'}"
        + (
            f" ({ks.get('reason')}, by {ks.get('activated_by')} at {ks.get('activated_at')})"
            if ks.get("active")
            else ""
        )
    )
    if broker:
        click.echo(
            f"broker:      {broker.get('state')} {broker.get('address', '')}"
            + (" - MANUAL INTERVENTION REQUIRED" if broker.get("manual_intervention_required") else "")
        )
    else:
        click.echo("broker:      unknown (service down)")
    positions = doc.get("positions") or {}
    click.echo("positions:   " + (", ".join(f"{s} {q}" for s, q in sorted(positions.items())) or "none"))
    click.echo(
        f"daily P&L:   {pnl.get('total')} (realized {pnl.get('realized')}, unrealized {pnl.get('unrealized')},"
        f" limit -{pnl.get('max_daily_loss')}) [{pnl.get('date')}]"
    )
    if sla:
        n = len(sla.get("violations") or [])
        click.echo(f"data SLA:    {sla.get('status')}" + (f" ({n} violation(s))" if n else ""))
    else:
        click.echo("data SLA:    unknown")


def _offline_status(workdir: Path) -> dict[str, Any]:
    store = _open_store(workdir)
    try:
        marks = store.marks()
        positions = store.positions()
        pnl = daily_pnl(store, positions, marks)
        from mockstack.traderunner.config import ConfigError, load_configs  # noqa: PLC0415 - only offline

        try:
            limit: float | None = load_configs(workdir).risk.max_daily_loss
        except ConfigError:
            limit = None
        sla_state = store.get_value("sla") or {}
        return {
            "service": {"running": False},
            "mode": store.mode(),
            "kill_switch": kill_switch_doc(store.kill_switch()),
            "broker": None,
            "positions": {s: p.qty for s, p in positions.items()},
            "daily_pnl": pnl.as_dict(limit if limit is not None else float("nan")),
            "sla": {
                "status": "violated" if sla_state.get("violated") else "ok",
                "violations": sla_state.get("violations", []),
            },
        }
    finally:
        store.close()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print the status as JSON")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Mode, kill switch, broker link, positions, daily P&L, SLA."""
    workdir = _workdir(ctx)
    from mockstack.traderunner.config import RISK_FILE, STRATEGY_FILE, ConfigError, load_configs  # noqa: PLC0415

    if (workdir / RISK_FILE).exists() and (workdir / STRATEGY_FILE).exists():  # never write defaults from here
        try:
            load_configs(workdir)  # a limit that is not a number is named here, never shown as "limit -nan"
        except ConfigError as exc:
            _fail(f"error: {exc}", EXIT_USAGE)
    try:
        code, doc = call(workdir, "GET", "/api/status")
        if code != 200:
            _fail(f"error: status answered HTTP {code}: {doc.get('error')}", EXIT_FAILED)
    except ServiceUnreachable as exc:
        click.echo(f"note: {exc}; showing the state stored in SQLite", err=True)
        doc = _offline_status(workdir)
        if isinstance(exc, RuntimeUnreadable):
            doc["service"] = {"running": None}
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
    else:
        _print_status(doc)


@cli.command("health-check")
@click.pass_context
def health_check(ctx: click.Context) -> None:
    """Exit 0 healthy, 1 unhealthy (prints which check), 4 unreachable."""
    code, doc = _call_or_exit(_workdir(ctx), "GET", "/health")
    checks = doc.get("checks") or {}
    for name, check in checks.items():
        click.echo(f"{'ok  ' if check.get('ok') else 'FAIL'} {name}: {check.get('detail')}")
    if code == 200:
        click.echo("healthy")
        return
    failing = [n for n, c in checks.items() if not c.get("ok")]
    _fail(f"unhealthy: {', '.join(failing) or f'HTTP {code}'}", EXIT_FAILED)


@cli.command("trip-kill-switch")
@click.option("--reason", required=True, help="why (logged, exported, audited)")
@click.option("--by", default=None, help="who trips it (default: $USER)")
@click.pass_context
def trip_kill_switch(ctx: click.Context, reason: str, by: str | None) -> None:
    """Manually activate the kill switch (works even when the service is down)."""
    workdir = _workdir(ctx)
    who = by or os.environ.get("USER") or "operator"
    if not reason.strip():
        _fail("error: --reason must not be empty", EXIT_USAGE)
    try:
        code, doc = call(workdir, "POST", "/api/kill-switch/trip", {"reason": reason, "by": who})
    except ServiceUnreachable as exc:
        click.echo(f"note: {exc}; tripping in the SQLite store directly", err=True)
        store = _open_store(workdir)
        try:
            tripped = store.trip_kill_switch(f"manual: {reason}", who, exports.utc_now_iso())
            exports.write_json_atomic(workdir / exports.KILL_SWITCH, kill_switch_doc(store.kill_switch()))
        finally:
            store.close()
        click.echo("Kill switch activated (offline)" if tripped else "Kill switch was already active")
        return
    if code != 200:
        _fail(f"error: {doc.get('error')}", EXIT_USAGE if code == 400 else EXIT_FAILED)
    click.echo(
        f"Kill switch activated: manual: {reason} (by {who})"
        if doc.get("tripped")
        else "Kill switch was already active"
    )


@cli.command("reset-kill-switch")
@click.option("--approved-by", required=True, help="approver (audited)")
@click.option("--reason", required=True, help="why it is safe to trade again (audited)")
@click.pass_context
def reset_kill_switch(ctx: click.Context, approved_by: str, reason: str) -> None:
    """Audited reset of the kill switch; both --approved-by and --reason are required."""
    if not approved_by.strip() or not reason.strip():
        _fail("refused: a reset needs a non-empty --approved-by and --reason", EXIT_REFUSED)
    code, doc = _call_or_exit(
        _workdir(ctx), "POST", "/api/kill-switch/reset", {"approved_by": approved_by, "reason": reason}
    )
    if code == 400:
        _fail(f"refused: {doc.get('error')}", EXIT_REFUSED)
    if code != 200:
        _fail(f"error: HTTP {code}: {doc.get('error')}", EXIT_FAILED)
    if not doc.get("reset"):
        click.echo(str(doc.get("message")))
        return
    click.echo(f"Kill switch reset, approved by {approved_by}")
    if doc.get("rearmed_level") is not None:
        click.echo(f"warning: the daily loss is still beyond the limit; trigger re-armed at {doc['rearmed_level']:.2f}")


@cli.group()
def broker() -> None:
    """Broker connector commands."""


@broker.command("reconnect")
@click.option("--wait", default=12.0, show_default=True, help="seconds to wait for the connector")
@click.pass_context
def broker_reconnect(ctx: click.Context, wait: float) -> None:
    """Restart the broker connector (attempt counter reset), then reconcile."""
    code, doc = _call_or_exit(_workdir(ctx), "POST", "/api/broker/reconnect", {"wait": wait}, timeout=wait + 5)
    b = doc.get("broker") or {}
    if code == 200 and doc.get("connected"):
        rec = doc.get("reconcile") or {}
        click.echo(
            f"Broker connected ({b.get('address')}, session {b.get('session_id')}); "
            f"reconciliation {'ok' if rec.get('ok') else 'MISMATCH: ' + json.dumps(rec.get('diff'))}"
        )
        return
    _fail(f"reconnect failed: broker {b.get('state')}: {b.get('last_error')}", EXIT_FAILED)


@cli.group()
def data() -> None:
    """Market data commands (runbook: data fetch + data validate)."""


@data.command("fetch")
@click.pass_context
def data_fetch(ctx: click.Context) -> None:
    """Re-fetch all bars for the traded symbols."""
    code, doc = _call_or_exit(_workdir(ctx), "POST", "/api/data/fetch", timeout=30)
    if code != 200:
        _fail(f"data fetch failed: {doc.get('error')}", EXIT_FAILED)
    bars = doc.get("bars") or {}
    click.echo(
        f"fetched {sum(bars.values())} bars for {len(bars)} symbol(s): "
        + ("clean" if doc.get("clean") else f"{len(doc.get('violations') or [])} violation(s) found")
    )
    for v in (doc.get("violations") or [])[:20]:
        click.echo(f"  {v['symbol']} {v['kind']} at {v['timestamp']}: {v['detail']}")


@data.command("validate")
@click.pass_context
def data_validate(ctx: click.Context) -> None:
    """Re-check the data; exit 1 while the SLA is violated."""
    code, doc = _call_or_exit(_workdir(ctx), "POST", "/api/data/validate")
    if code != 200:
        _fail(f"data validate failed: {doc.get('error')}", EXIT_FAILED)
    sla = doc.get("sla") or {}
    click.echo(
        f"SLA {sla.get('status')}: {doc.get('message')} (completeness {sla.get('completeness')}, "
        f"freshness {sla.get('freshness_seconds')} s)"
    )
    if not doc.get("ok"):
        for v in (sla.get("violations") or [])[-10:]:
            click.echo(f"  {v['symbol']} {v['kind']} at {v['timestamp']}: {v['detail']}")
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option("--accept-broker", is_flag=True, help="adopt the broker's positions (needs --approved-by)")
@click.option("--approved-by", default=None, help="approver for --accept-broker (audited)")
@click.pass_context
def reconcile(ctx: click.Context, accept_broker: bool, approved_by: str | None) -> None:
    """Compare own positions with the broker's; writes expected/actual; exit 1 on mismatch."""
    if accept_broker and not (approved_by or "").strip():
        _fail("error: --accept-broker needs --approved-by NAME", EXIT_USAGE)
    code, doc = _call_or_exit(
        _workdir(ctx),
        "POST",
        "/api/reconcile",
        {"accept_broker": accept_broker, "approved_by": approved_by},
        timeout=15,
    )
    if code != 200:
        _fail(f"reconcile failed: {doc.get('error')}", EXIT_FAILED)
    if doc.get("adopted"):
        click.echo(f"broker positions adopted (approved by {approved_by})")
    diff = doc.get("diff") or {}
    if not diff:
        click.echo("Reconciliation ok: positions match the broker")
        return
    click.echo("Reconciliation mismatch:")
    click.echo(f"  {'symbol':<8} {'expected':>9} {'actual':>9} {'diff':>6}")
    for symbol, d in sorted(diff.items()):
        click.echo(f"  {symbol:<8} {d['expected']:>9} {d['actual']:>9} {d['actual'] - d['expected']:>+6}")
    sys.exit(EXIT_FAILED)


@cli.command()
@click.option("--to", "target", required=True, type=click.Choice(["lab", "paper", "live"]))
@click.pass_context
def promote(ctx: click.Context, target: str) -> None:
    """Change mode: lab always (rollback); paper refused while SLA violated or kill switch active."""
    workdir = _workdir(ctx)
    try:
        code, doc = call(workdir, "POST", "/api/promote", {"to": target, "by": os.environ.get("USER", "operator")})
    except ServiceUnreachable as exc:
        click.echo(f"note: {exc}; deciding from the SQLite store", err=True)
        store = _open_store(workdir)
        try:
            sla = store.get_value("sla") or {}
            allowed, why = promotion_decision(target, store.kill_switch().active, bool(sla.get("violated")))
            if allowed:
                store.set_mode(
                    target, exports.utc_now_iso(), os.environ.get("USER", "operator"), f"promote to {target} (offline)"
                )
        finally:
            store.close()
        if not allowed:
            _fail(f"Promotion blocked: {why}", EXIT_REFUSED)
        click.echo(f"mode is now {target} (offline; TR_MODE at the next start overrides it): {why}")
        return
    if code == 409:
        _fail(f"Promotion blocked: {doc.get('message')}", EXIT_REFUSED)
    if code != 200:
        _fail(f"error: HTTP {code}: {doc.get('error')}", EXIT_USAGE if code == 400 else EXIT_FAILED)
    click.echo(f"mode is now {doc.get('mode')}: {doc.get('message')}")


@cli.group()
def orders() -> None:
    """Order records (artifacts/orders/*.csv)."""


@orders.command("duplicates")
@click.pass_context
def orders_duplicates(ctx: click.Context) -> None:
    """Idempotency keys that appear more than once in the orders CSVs; exit 1 if any."""
    workdir = _workdir(ctx)
    try:
        dups = exports.duplicate_keys(workdir)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        _fail(f"error: cannot read {workdir / exports.ORDERS_DIR}: {exc}", EXIT_USAGE)
    if not dups:
        click.echo("no duplicate idempotency keys")
        return
    for key, n in dups.items():
        click.echo(f"{key} appears {n} times")
    sys.exit(EXIT_FAILED)


def main() -> None:
    cli(prog_name="traderunner")
