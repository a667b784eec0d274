"""``report.html``: one self-contained file (inline CSS and SVG, no external asset, no script).

* the run: where, what, which revision, and where it stopped if it crashed half-way;
* a summary table: scenario, severity, detected in (MTTD), RTO vs target, verdict;
* the runbook's drill checklist for the run, filled from measurements;
* per scenario: a timeline chart (fault -> detection -> alert -> runbook steps -> recovery, with
  the RTO target drawn as a line), its steps, its own checklist, faults and notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

from harness.report.checklist import Item, run_checklist, scenario_checklist
from harness.report.model import Event, Run, Scenario, unique_slugs

LANES = ("fault", "detection", "alert", "runbook", "recovery", "note")
LANE_OF = {
    "fault_injected": "fault", "fault_rolled_back": "fault",
    "detected": "detection", "alert_fired": "alert", "alert_resolved": "alert",
    "step_started": "runbook", "step_ended": "runbook",
    "kill_switch_activated": "detection", "last_order": "detection",
    "recovered": "recovery", "note": "note",
}
COLORS = {"fault": "#c62828", "detection": "#ef6c00", "alert": "#d84315", "runbook": "#1565c0",
          "recovery": "#2e7d32", "note": "#6a1b9a"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:1.5rem 2rem;color:#1b1b1b;
background:#fafafa;line-height:1.4}
h1{margin:.2rem 0 1rem}h2{margin:2rem 0 .4rem;border-top:1px solid #ddd;padding-top:1rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;background:#fff}
th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top;font-size:.92rem}
th{background:#f0f0f0}
.meta td:first-child{font-weight:600;color:#555}
.v{font-weight:700;padding:.1rem .45rem;border-radius:.3rem;color:#fff;white-space:nowrap}
.v-passed,.v-met{background:#2e7d32}.v-failed,.v-error,.v-missed{background:#c62828}
.v-interrupted{background:#6d4c41}.v-planned{background:#1565c0}.v-skipped,.v-no-recovery,.v-not-measured,.v-no-target{background:#757575}
.v-for-people{background:#1565c0}
.banner{padding:.7rem 1rem;border-radius:.4rem;margin:1rem 0;font-weight:600}
.stopped{background:#fff3e0;border:1px solid #ef6c00}
.err{background:#ffebee;border:1px solid #c62828;padding:.5rem;white-space:pre-wrap;font-family:monospace;
font-size:.85rem;overflow-x:auto}
.tags span{display:inline-block;background:#eceff1;border-radius:.3rem;padding:0 .4rem;margin-right:.3rem;
font-size:.8rem}
figure{margin:.5rem 0;background:#fff;border:1px solid #ddd;padding:.5rem;overflow-x:auto}
figcaption{font-size:.85rem;color:#555}
.st-failed td,.st-undefined td{background:#ffebee}.st-skipped td{color:#888}
code{background:#eceff1;padding:0 .2rem;border-radius:.2rem}
.small{font-size:.85rem;color:#555}
"""


def _v(verdict: str) -> str:
    return f'<span class="v v-{escape(verdict.replace(" ", "-"))}">{escape(verdict)}</span>'


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def rto_text(sc: Scenario) -> tuple[str, str]:
    """(RTO vs target, its verdict) for tables: :attr:`Scenario.rto_summary`."""
    return sc.rto_summary


# --- the timeline chart ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scale:
    t0: float
    t1: float
    x0: float
    x1: float

    def x(self, t: float) -> float:
        span = self.t1 - self.t0 or 1.0
        return self.x0 + (min(max(t, self.t0), self.t1) - self.t0) / span * (self.x1 - self.x0)


def _nice_step(span: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if span / step <= 10:
            return float(step)
    return 7200.0


def timeline_svg(sc: Scenario, *, width: int = 960) -> str:
    """The scenario's incident timeline as inline SVG (seconds from the fault on the x axis)."""
    origin = sc.fault_origin
    events = [e for e in sc.events if origin is None or e.offset_s >= origin - 0.001]
    rel = [(e, e.offset_s - (origin or 0.0)) for e in events]
    rto = sc.rto
    target = rto.target_s if rto is not None else None
    t_end = max([t for _, t in rel] + [target or 0.0, 1.0])
    scale = _Scale(0.0, t_end * 1.06, 120.0, width - 30.0)
    lane_h, top = 30.0, 28.0
    height = top + lane_h * len(LANES) + 34
    y_of = {lane: top + i * lane_h + lane_h / 2 for i, lane in enumerate(LANES)}
    bottom = top + lane_h * len(LANES)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline-chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" data-scenario="{escape(sc.name)}" '
        f'aria-label="timeline of {escape(sc.name)}">',
        f"<title>Timeline: {escape(sc.name)} (seconds from the fault)</title>",
        '<rect x="0" y="0" width="100%" height="100%" fill="#fff"/>',
    ]
    for i, lane in enumerate(LANES):
        y = top + i * lane_h
        if i % 2 == 0:
            parts.append(f'<rect x="{scale.x0:.1f}" y="{y}" width="{scale.x1 - scale.x0:.1f}" height="{lane_h}" '
                         'fill="#f7f7f7"/>')
        parts.append(f'<text x="8" y="{y + lane_h / 2 + 4:.1f}" font-size="12" fill="{COLORS[lane]}" '
                     f'font-weight="600">{lane}</text>')
    step = _nice_step(scale.t1 - scale.t0)
    tick = 0.0
    while tick <= scale.t1 + 1e-9:
        x = scale.x(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#e0e0e0"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" font-size="10" text-anchor="middle" '
                     f'fill="#555">{tick:g}s</text>')
        tick += step
    parts.append(f'<text x="{scale.x1:.1f}" y="{bottom + 28}" font-size="10" text-anchor="end" fill="#555">'
                 "seconds since the fault was injected</text>")
    # fault active: injected -> rolled back (or the end of the chart)
    injected = [(e, t) for e, t in rel if e.kind == "fault_injected"]
    for e, t in injected:
        fid = e.details.get("fault_id")
        back = next((bt for be, bt in rel if be.kind == "fault_rolled_back" and be.details.get("fault_id") == fid
                     and bt >= t), None)
        end = back if back is not None else scale.t1
        y = y_of["fault"]
        parts.append(f'<rect class="fault-active" x="{scale.x(t):.1f}" y="{y - 7}" '
                     f'width="{max(scale.x(end) - scale.x(t), 2):.1f}" height="14" fill="{COLORS["fault"]}" '
                     f'opacity="0.25"><title>fault active {t:.1f}s to '
                     f'{"end" if back is None else f"{back:.1f}s"}: {escape(e.label)}</title></rect>')
    # runbook steps: started -> ended as a bar
    for e, t in rel:
        if e.kind != "step_started":
            continue
        end_t = next((et for ee, et in rel if ee.kind == "step_ended" and ee.label == e.label and et >= t), t)
        ended = next((ee for ee, et in rel if ee.kind == "step_ended" and ee.label == e.label and et >= t), None)
        code = ended.details.get("exit_code") if ended is not None else None
        color = COLORS["runbook"] if code in (0, None) else COLORS["fault"]
        y = y_of["runbook"]
        parts.append(f'<rect class="runbook-step" x="{scale.x(t):.1f}" y="{y - 8}" '
                     f'width="{max(scale.x(end_t) - scale.x(t), 3):.1f}" height="16" fill="{color}" rx="2">'
                     f'<title>{escape(e.label)}: {t:.1f}s to {end_t:.1f}s, exit {code}</title></rect>')
        parts.append(f'<text x="{scale.x(end_t) + 4:.1f}" y="{y + 4}" font-size="10" fill="{color}">'
                     f'{escape(_short(e.label, 40))}</text>')
    for e, t in rel:
        lane = LANE_OF.get(e.kind, "note")
        if e.kind in ("step_started", "step_ended"):
            continue
        x, y, c = scale.x(t), y_of[lane], COLORS[lane]
        tip = f"<title>+{t:.2f}s {escape(e.kind)}: {escape(e.label)}</title>"
        if e.kind == "fault_injected":
            parts.append(f'<path class="ev ev-fault" d="M{x:.1f} {y - 8} l8 8 l-8 8 l-8 -8 z" fill="{c}">{tip}</path>')
        elif e.kind == "fault_rolled_back":
            parts.append(f'<path class="ev ev-rollback" d="M{x:.1f} {y - 7} l7 7 l-7 7 l-7 -7 z" fill="#fff" '
                         f'stroke="{c}" stroke-width="2">{tip}</path>')
        elif e.kind == "alert_fired":
            parts.append(f'<path class="ev ev-alert" d="M{x:.1f} {y - 8} l8 14 l-16 0 z" fill="{c}">{tip}</path>')
            parts.append(f'<text x="{x + 10:.1f}" y="{y + 4}" font-size="10" fill="{c}">'
                         f'{escape(_short(e.label, 45))} +{t:.1f}s</text>')
        elif e.kind == "recovered":
            parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{c}" stroke-width="2"/>')
            parts.append(f'<circle class="ev ev-recovered" cx="{x:.1f}" cy="{y}" r="7" fill="{c}">{tip}</circle>')
            parts.append(f'<text x="{x + 10:.1f}" y="{y + 4}" font-size="10" fill="{c}">recovered +{t:.1f}s</text>')
        elif e.kind == "note":
            parts.append(f'<rect class="ev ev-note" x="{x - 4:.1f}" y="{y - 4}" width="8" height="8" fill="{c}">'
                         f"{tip}</rect>")
        else:
            parts.append(f'<circle class="ev ev-detected" cx="{x:.1f}" cy="{y}" r="6" fill="{c}">{tip}</circle>')
    first_detection = next(((e, t) for e, t in rel if e.kind in ("detected", "alert_fired") and t >= 0
                            and origin is not None), None)
    if first_detection is not None:
        e, t = first_detection
        parts.append(f'<text x="{scale.x(t) + 8:.1f}" y="{y_of["detection"] - 9}" font-size="10" '
                     f'fill="{COLORS["detection"]}">detected +{t:.1f}s: {escape(_short(e.label, 40))}</text>')
    if target is not None:
        x = scale.x(target)
        parts.append(f'<line class="rto-target" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom}" '
                     'stroke="#000" stroke-width="2" stroke-dasharray="6 4"><title>RTO target</title></line>')
        parts.append(f'<text class="rto-label" x="{x - 4:.1f}" y="{top - 10}" font-size="11" text-anchor="end" '
                     'font-weight="600">'
                     f"RTO target {target:g}s</text>")
    if not rel:
        parts.append(f'<text x="{scale.x0 + 10:.1f}" y="{top + 40}" font-size="13" fill="#555">'
                     "no event was recorded (the scenario stopped before its first step)</text>")
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --- the page --------------------------------------------------------------------------------------


def _checklist_html(items: tuple[Item, ...]) -> str:
    rows = "".join(
        f"<tr><td>{'☑' if it.state == 'met' else '☐'} {escape(it.title)}</td><td>{_v(it.state)}</td>"
        f"<td>{escape(it.evidence)}</td></tr>" for it in items
    )
    return f'<table class="checklist"><tr><th>checklist item</th><th>state</th><th>evidence</th></tr>{rows}</table>'


def _event_row(sc: Scenario, e: Event) -> str:
    by = escape(str(e.details.get("by")))
    return (f"<tr><td>{sc.since_fault(e):+.2f}s</td><td>{escape(e.wall)}</td><td>{by}</td>"
            f"<td>{escape(e.label)}</td></tr>")


def _scenario_html(sc: Scenario, anchor: str) -> str:
    rto, rto_verdict = rto_text(sc)
    steps = "".join(
        f'<tr class="st-{escape(s.status)}"><td>{escape(s.keyword)}</td><td>{escape(s.text)}</td>'
        f"<td>{_v(s.status)}</td><td>{s.duration_s:.2f}s</td>"
        f"<td>{'<div class=err>' + escape(s.error) + '</div>' if s.error else ''}</td></tr>"
        for s in sc.steps
    )
    faults = "".join(f"<li><code>{escape(f.kind)}</code> {escape(f.description)} ({escape(f.state)})</li>"
                     for f in sc.faults) or "<li>none</li>"
    notes = sc.people_notes
    notes_html = ""
    if notes:
        notes_html = ('<h3>Notes taken during the drill</h3><table class="notes"><tr><th>since fault</th>'
                      "<th>wall</th><th>by</th><th>note</th></tr>" + "".join(_event_row(sc, e) for e in notes)
                      + "</table>")
    error = f'<div class="err">{escape(sc.error)}</div>' if sc.error else ""
    stopped = ""
    if sc.interrupted:
        stopped = f'<div class="banner stopped">This scenario was interrupted {escape(sc.stopped_where)}.</div>'
    roles = ""
    if sc.roles:
        roles = "<p><b>Roles:</b> " + ", ".join(f"{escape(k)}: {escape(v)}" for k, v in sc.roles.items()) + "</p>"
    return f"""
<section class="scenario" id="{escape(anchor)}">
<h2>{escape(sc.name)} {_v(sc.verdict)}</h2>
<p class="tags">{escape(sc.feature)} · <code>{escape(sc.feature_file)}:{sc.line}</code>
{''.join(f'<span>@{escape(t)}</span>' for t in sc.tags)}</p>
{stopped}{roles}
<p>Detected in (MTTD): <b>{_s(sc.mttd.value_s if sc.mttd else None)}</b> · RTO: <b>{escape(rto)}</b> {_v(rto_verdict)}
· steps {sc.duration_s:.1f}s (stack start {sc.stack_up_s:.1f}s, teardown {sc.teardown_s:.1f}s)</p>
<figure>{timeline_svg(sc)}<figcaption>fault → detection → alert → runbook steps → recovery; dashed line: RTO
target. Hover a mark for its details.</figcaption></figure>
{error}
<h3>Steps</h3><table><tr><th></th><th>step</th><th>status</th><th>time</th><th>error</th></tr>{steps}</table>
<h3>Drill checklist</h3>{_checklist_html(scenario_checklist(sc))}
<h3>Faults injected</h3><ul>{faults}</ul>
{notes_html}
<p class="small">Post-incident draft: <a href="postmortems/{escape(anchor)}.md">postmortems/{escape(anchor)}.md</a></p>
</section>"""


def render_html(run: Run) -> str:
    slugs = unique_slugs(run.scenarios)
    rows = []
    for sc, anchor in zip(run.scenarios, slugs, strict=True):
        rto, rto_verdict = rto_text(sc)
        rows.append(
            f'<tr><td><a href="#{escape(anchor)}">{escape(sc.name)}</a></td><td>{escape(sc.feature)}</td>'
            f"<td>{escape(sc.severity)}</td><td>{_s(sc.mttd.value_s if sc.mttd else None)}</td>"
            f"<td>{escape(rto)} {_v(rto_verdict)}</td><td>{_v(sc.verdict)}</td></tr>"
        )
    totals = ", ".join(f"{n} {s}" for s, n in sorted(run.totals.items())) or "no scenario ran"
    stopped = run.stopped_at
    banner = (f'<div class="banner stopped" id="stopped">Run did not finish: {escape(stopped)}.</div>'
              if stopped else "")
    meta = [("mode", run.mode), ("started", run.started_at), ("backend", run.backend), ("stack", run.stack_file),
            ("revision", run.revision or "unknown"), ("harness version", run.harness_version or "unknown"),
            ("command", run.command or "unknown"), ("finished", "yes" if run.finished else "NO"),
            ("journals", ", ".join(p.name for p in run.sources))]
    title = "GameDay report" if run.mode == "gameday" else "Drill report"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} {escape(run.started_at)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>{title}: {escape(totals)}</h1>
{banner}
<table class="meta">{''.join(f'<tr><td>{k}</td><td>{escape(v)}</td></tr>' for k, v in meta)}</table>
<h2>Summary</h2>
<table class="summary"><tr><th>scenario</th><th>feature</th><th>severity</th><th>detected in (MTTD)</th>
<th>RTO vs target</th><th>verdict</th></tr>{''.join(rows)}</table>
<h2>Drill checklist (runbook, "Testing This Runbook")</h2>
{_checklist_html(run_checklist(run.scenarios))}
{''.join(_scenario_html(sc, a) for sc, a in zip(run.scenarios, slugs, strict=True))}
<p class="small">Also in this directory: journal.json (the record), junit.xml, cucumber.json, postmortems/.</p>
</body></html>
"""


def write_html(run: Run, path: Path) -> Path:
    path.write_text(render_html(run), encoding="utf-8")
    return path
