"""Server-rendered HTML: big red/green tiles, no JavaScript, a meta refresh every 2 s.

Stable hooks for drills and browser tests: ``id="sla-badge"`` (class ``badge-green`` / ``badge-red``,
``badge-grey`` while the SLA is unknown), ``id="kill-switch"``, ``id="broker-link"``,
``id="daily-pnl"``, ``id="mode"``, ``id="positions"``, ``id="alerts"``, ``id="traderunner-unreachable"``;
tiles carry ``data-state``.
"""

from __future__ import annotations

from html import escape

from mockstack.dashboard.model import Alerts, EngineStatus, Summary

REFRESH_SECONDS = 2

CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#0f1419;color:#e6e6e6}
header{display:flex;justify-content:space-between;align-items:baseline;padding:12px 24px;background:#161d26}
header h1{margin:0;font-size:22px}
header .meta{color:#9aa5b1;font-size:13px}
main{padding:16px 24px}
.banner{padding:18px 24px;font-size:26px;font-weight:700;border-radius:10px;margin-bottom:16px}
.banner small{display:block;font-size:14px;font-weight:400;margin-top:6px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:14px;margin-bottom:18px}
.tile{border-radius:12px;padding:16px 18px;min-height:120px}
.tile .label{font-size:13px;text-transform:uppercase;letter-spacing:.08em;opacity:.85}
.tile .value{font-size:30px;font-weight:800;margin-top:8px}
.tile .detail{font-size:13px;margin-top:8px;opacity:.9;word-break:break-word}
.green{background:#0f5d2e;color:#eafff1}
.red{background:#a11d1d;color:#fff0f0}
.amber{background:#8a5a00;color:#fff7e6}
.grey{background:#3a4350;color:#eef1f4}
.badge-green{background:#0f5d2e;color:#eafff1}
.badge-red{background:#a11d1d;color:#fff0f0}
.badge-grey{background:#3a4350;color:#eef1f4}
section{background:#161d26;border-radius:12px;padding:14px 18px;margin-bottom:16px}
section h2{margin:0 0 10px 0;font-size:17px}
table{border-collapse:collapse;width:100%;font-size:15px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #2a3340}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.sev{display:inline-block;min-width:34px;text-align:center;font-weight:700;border-radius:6px;padding:2px 6px}
.sev-P0{background:#d32f2f;color:#fff}.sev-P1{background:#ef6c00;color:#fff}
.sev-P2{background:#f9a825;color:#111}.sev-P3{background:#546e7a;color:#fff}
.muted{color:#9aa5b1}
"""


def _tile(tile_id: str, label: str, value: str, color: str, state: str, detail: str = "", extra_class: str = "") -> str:
    classes = " ".join(c for c in ("tile", color, extra_class) if c)
    detail_html = f'<div class="detail">{escape(detail)}</div>' if detail else ""
    return (
        f'<div class="{classes}" id="{tile_id}" data-state="{escape(state)}">'
        f'<div class="label">{escape(label)}</div><div class="value">{escape(value)}</div>{detail_html}</div>'
    )


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"{value:+,.2f}"


def _qty(value: float) -> str:
    return f"{value:+,.0f}" if value == int(value) else f"{value:+,.4f}"


def _engine_tiles(engine: EngineStatus) -> str:
    ks = engine.kill_switch
    if ks.active is True:
        detail = " · ".join(
            p for p in (ks.reason, f"by {ks.activated_by}" if ks.activated_by else "", ks.activated_at) if p
        )
        kill = _tile("kill-switch", "Kill switch", "ACTIVE — trading halted", "red", "active", detail)
    elif ks.active is False:
        kill = _tile("kill-switch", "Kill switch", "Inactive", "green", "inactive", "trading allowed")
    else:
        kill = _tile("kill-switch", "Kill switch", "Unknown", "grey", "unknown")

    br = engine.broker
    if br.manual_intervention_required:
        broker = _tile(
            "broker-link", "Broker link", "DOWN — manual intervention", "red", "manual_intervention", br.detail
        )
    elif br.connected is True:
        broker = _tile("broker-link", "Broker link", "Connected", "green", "connected", br.detail)
    elif br.connected is False:
        broker = _tile("broker-link", "Broker link", "DISCONNECTED", "red", "disconnected", br.detail)
    else:
        broker = _tile("broker-link", "Broker link", "Unknown", "grey", "unknown")

    pnl = engine.daily_pnl
    if pnl.total is None:
        pnl_tile = _tile("daily-pnl", "Daily P&L", "unknown", "grey", "unknown")
    else:
        parts = []
        if pnl.realized is not None:
            parts.append(f"realized {_money(pnl.realized)}")
        if pnl.unrealized is not None:
            parts.append(f"unrealized {_money(pnl.unrealized)}")
        if pnl.max_daily_loss:
            used = max(0.0, -pnl.total) / pnl.max_daily_loss * 100
            parts.append(f"{used:.0f}% of max daily loss {pnl.max_daily_loss:,.2f} used")
        near_limit = bool(pnl.max_daily_loss) and pnl.total <= -0.8 * (pnl.max_daily_loss or 0)
        color = "green" if pnl.total >= 0 else ("red" if near_limit else "amber")
        state = "profit" if pnl.total >= 0 else "loss"
        pnl_tile = _tile("daily-pnl", "Daily P&L", _money(pnl.total), color, state, " · ".join(parts))

    sla = engine.sla
    if sla.ok is True:
        sla_tile = _tile(
            "sla-badge", "Data SLA", "OK", "", "ok", sla.checked_at and f"checked {sla.checked_at}", "badge-green"
        )
    elif sla.ok is False:
        kinds = sorted({v.kind for v in sla.violations if v.kind})
        detail = f"{len(sla.violations)} violation(s): {', '.join(kinds)}" if sla.violations else "promotion blocked"
        sla_tile = _tile("sla-badge", "Data SLA", "VIOLATED", "", "violated", detail, "badge-red")
    else:
        sla_tile = _tile("sla-badge", "Data SLA", "Unknown", "", "unknown", "", "badge-grey")

    mode_color = {"lab": "grey", "paper": "amber", "live": "red"}.get(engine.mode, "grey")
    mode = _tile("mode", "Mode", engine.mode.upper(), mode_color, engine.mode)
    return f'<div class="tiles">{kill}{broker}{sla_tile}{pnl_tile}{mode}</div>'


def _positions(engine: EngineStatus) -> str:
    if not engine.positions:
        body = '<p class="muted">No positions.</p>'
    else:
        rows = "".join(
            f'<tr data-symbol="{escape(p.symbol)}"><td>{escape(p.symbol)}</td><td class="num">{_qty(p.qty)}</td></tr>'
            for p in engine.positions
        )
        head = '<thead><tr><th>Symbol</th><th class="num">Qty</th></tr></thead>'
        body = f"<table>{head}<tbody>{rows}</tbody></table>"
    return f'<section id="positions"><h2>Positions</h2>{body}</section>'


def _alerts(alerts: Alerts | None) -> str:
    if alerts is None:
        return (
            '<section id="alerts" data-state="not_configured"><h2>Firing alerts</h2>'
            '<p class="muted">No Alertmanager configured (--alertmanager-url).</p></section>'
        )
    if not alerts.upstream.reachable:
        return (
            '<section id="alerts" data-state="unreachable"><h2>Firing alerts</h2>'
            f'<div class="banner red">Alertmanager unreachable<small>{escape(alerts.upstream.url)}: '
            f"{escape(alerts.upstream.error)}</small></div></section>"
        )
    watchdog = (
        '<p class="muted" id="watchdog" data-state="present">Alerting pipeline alive (Watchdog firing).</p>'
        if alerts.watchdog_present
        else '<div class="banner red" id="watchdog" data-state="missing">Watchdog missing: metrics collection '
        "is failing, alerts cannot be trusted</div>"
    )
    if not alerts.firing:
        rows = '<p class="muted">No alerts firing.</p>'
    else:
        items = "".join(
            f'<tr data-alertname="{escape(a.name)}" data-severity="{escape(a.severity)}">'
            f'<td><span class="sev sev-{escape(a.severity)}">{escape(a.severity)}</span></td>'
            f"<td><b>{escape(a.name)}</b></td><td>{escape(a.summary)}</td>"
            f'<td>{escape(a.runbook)}</td><td class="muted">{escape(a.starts_at[:19].replace("T", " "))}'
            f"{'' if a.state == 'active' else ' (' + escape(a.state) + ')'}</td></tr>"
            for a in alerts.firing
        )
        rows = (
            "<table><thead><tr><th>Sev</th><th>Alert</th><th>What</th><th>Runbook</th><th>Since (UTC)</th></tr>"
            f"</thead><tbody>{items}</tbody></table>"
        )
    state = "firing" if alerts.firing else "quiet"
    heading = f"<h2>Firing alerts ({len(alerts.firing)})</h2>"
    return f'<section id="alerts" data-state="{state}">{heading}{watchdog}{rows}</section>'


def render_page(summary: Summary) -> str:
    """The whole HTML page for one :class:`Summary`."""
    tr = summary.traderunner
    if summary.engine is None:
        body = (
            '<div class="banner red" id="traderunner-unreachable" data-state="unreachable">'
            "TRADERUNNER UNREACHABLE — state unknown"
            f"<small>{escape(tr.url)}: {escape(tr.error)}. Use the runbook's trading-engine-down steps.</small></div>"
            '<div class="tiles">'
            + _tile("kill-switch", "Kill switch", "Unknown", "grey", "unknown")
            + _tile("broker-link", "Broker link", "Unknown", "grey", "unknown")
            + _tile("sla-badge", "Data SLA", "Unknown", "", "unknown", "traderunner unreachable", "badge-grey")
            + _tile("daily-pnl", "Daily P&L", "unknown", "grey", "unknown")
            + "</div>"
        )
    else:
        notes = ""
        if summary.engine.notes:
            notes = f'<p class="muted" id="notes">Could not read: {escape("; ".join(summary.engine.notes))}</p>'
        body = _engine_tiles(summary.engine) + notes + _positions(summary.engine)
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Trading dashboard</title><style>{CSS}</style></head><body>"
        f'<header><h1>Trading dashboard</h1><span class="meta">updated {escape(summary.generated_at)} UTC · '
        f"refreshes every {REFRESH_SECONDS} s · engine {escape(tr.url)}</span></header>"
        f"<main>{body}{_alerts(summary.alerts)}</main></body></html>\n"
    )
