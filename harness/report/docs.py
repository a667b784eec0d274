"""Living documentation: the drills as a reader-friendly document, with their last results.

``drill docs`` renders every feature grouped by the runbook section it proves (from its tags:
``@kill_switch``, ``@broker``, ...; else from the "Runbook section" line of its description), with
its quarterly drill (``@q1``..``@q4``), each scenario's Given/When/Then (Examples included), and the
last result and measured times of each scenario from the newest journal under
``./runs/report-*/journal.json``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from harness.catalog import parse_feature
from harness.errors import InputError
from harness.report.html import CSS, rto_text
from harness.report.model import QUARTERS, SEVERITIES, Run, Scenario, load_run, slug


def sections() -> tuple[tuple[str, str], ...]:
    """tag -> section title, in the order the drill project declares its tags (``[tool.drill.tags]``).

    A tag described as ``runbook section <Title>`` groups its features under that title; other tags
    are grouped under their description.
    """
    from harness.project import current_project

    return tuple((tag, desc.removeprefix("runbook section ").strip()) for tag, desc in current_project().tags.items())


OTHER = "Other drills"
RUNBOOK_LINE = re.compile(r'Runbook section "(?P<title>[^"]+)"')


@dataclass(frozen=True)
class DocStep:
    keyword: str
    text: str
    background: bool


@dataclass(frozen=True)
class DocScenario:
    name: str
    line: int
    tags: tuple[str, ...]
    steps: tuple[DocStep, ...]
    examples_header: tuple[str, ...]
    examples: tuple[tuple[str, ...], ...]
    results: tuple[Scenario, ...]  # from the newest journal; several for an outline


@dataclass(frozen=True)
class DocFeature:
    name: str
    path: Path
    section: str
    tags: tuple[str, ...]
    description: str
    scenarios: tuple[DocScenario, ...]

    @property
    def quarter(self) -> str:
        return next((t.upper() for t in sorted(self.tags) if t in QUARTERS), "")

    @property
    def severity(self) -> str:
        return next((t.upper() for t in sorted(self.tags) if t in SEVERITIES), "")


def section_of(tags: Sequence[str], description: str) -> str:
    for tag, title in sections():
        if tag in tags:
            return title
    m = RUNBOOK_LINE.search(description)
    return m.group("title") if m else OTHER


def newest_journal(runs_dir: Path) -> Run | None:
    """The newest ``runs/report-*`` run with a journal (report dir names sort by time), merged."""
    candidates = sorted((p for p in runs_dir.glob("report-*") if p.is_dir() and
                         any(p.glob("journal*.json"))), key=lambda p: p.name)
    for path in reversed(candidates):
        try:
            return load_run(path)
        except InputError:
            continue
    return None


def collect(features: Sequence[Path], run: Run | None) -> list[DocFeature]:
    results: dict[tuple[str, int], list[Scenario]] = {}
    for sc in run.scenarios if run else ():
        results.setdefault((Path(sc.feature_file).name, sc.line), []).append(sc)
    out = []
    for path in features:
        feature = parse_feature(path)
        tags = tuple(sorted(feature.tags))
        description = feature.description or ""
        scenarios = []
        for tpl in feature.scenarios.values():
            steps = tuple(DocStep(s.keyword, s.name, s.background is not None) for s in tpl.steps)
            header: tuple[str, ...] = ()
            rows: list[tuple[str, ...]] = []
            for ex in tpl.examples or ():
                header = tuple(ex.example_params)
                rows.extend(tuple(str(c) for c in r) for r in ex.examples)
            scenarios.append(DocScenario(
                name=tpl.name, line=tpl.line_number, tags=tuple(sorted(set(tags) | set(tpl.tags))), steps=steps,
                examples_header=header, examples=tuple(rows),
                results=tuple(results.get((path.name, tpl.line_number), ())),
            ))
        out.append(DocFeature(feature.name, path, section_of(tags, description), tags, description.strip(),
                              tuple(scenarios)))
    return out


def grouped(features: Sequence[DocFeature]) -> list[tuple[str, list[DocFeature]]]:
    order = [title for _, title in sections()]
    groups: dict[str, list[DocFeature]] = {}
    for f in features:
        groups.setdefault(f.section, []).append(f)
    return sorted(groups.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))


def _result_line(sc: Scenario) -> str:
    rto, rto_verdict = rto_text(sc)
    mttd = sc.mttd.value_s if sc.mttd else None
    when = (sc.timeline_started_at or "")[:16].replace("T", " ")
    detected = "-" if mttd is None else f"{mttd:.1f}s"
    return f"{sc.verdict}: detected in {detected}, RTO {rto} ({rto_verdict})" + (f", {when} UTC" if when else "")


def render_markdown(features: Sequence[DocFeature], run: Run | None) -> str:
    source = f"`{run.report_dir}` ({run.started_at})" if run else "no run yet (`drill run` writes runs/report-*/)"
    lines = ["# Drills: the runbook, executable", "", f"Last results from: {source}.", ""]
    for section, feats in grouped(features):
        lines += [f"## {section}", ""]
        for f in feats:
            meta = ", ".join(x for x in (f.quarter and f"quarterly drill {f.quarter}", f.severity) if x)
            lines += [f"### {f.name}" + (f" ({meta})" if meta else ""), "",
                      f"`{f.path.name}` · " + " ".join(f"`@{t}`" for t in f.tags), ""]
            if f.description:
                lines += [f.description, ""]
            for sc in f.scenarios:
                lines += [f"#### Scenario: {sc.name}", "", "```gherkin"]
                background = [st for st in sc.steps if st.background]
                if background:
                    lines.append("Background:")
                    lines += [f"  {st.keyword} {st.text}" for st in background]
                lines.append(f"Scenario: {sc.name}")
                lines += [f"  {st.keyword} {st.text}" for st in sc.steps if not st.background]
                lines.append("```")
                if sc.examples:
                    lines += ["", "| " + " | ".join(sc.examples_header) + " |",
                              "|" + " --- |" * len(sc.examples_header)]
                    lines += ["| " + " | ".join(r) + " |" for r in sc.examples]
                lines.append("")
                if sc.results:
                    lines += [f"- last result: {r.name}: {_result_line(r)}" for r in sc.results]
                else:
                    lines.append("- last result: not run in the newest report")
                lines.append("")
    return "\n".join(lines)


def _verdict(text: str) -> str:
    return f'<span class="v v-{escape(text)}">{escape(text)}</span>'


def render_html_docs(features: Sequence[DocFeature], run: Run | None) -> str:
    source = f"{escape(str(run.report_dir))} ({escape(run.started_at)})" if run else "no run yet"
    body = [f"<h1>Drills: the runbook, executable</h1><p>Last results from: {source}.</p>", "<nav><ul>"]
    groups = grouped(features)
    body += [f'<li><a href="#{slug(s)}">{escape(s)}</a> ({len(fs)})</li>' for s, fs in groups]
    body.append("</ul></nav>")
    for section, feats in groups:
        body.append(f'<section class="runbook-section" id="{slug(section)}"><h2>{escape(section)}</h2>')
        for f in feats:
            meta = " · ".join(x for x in (f.quarter and f"quarterly drill {f.quarter}", f.severity) if x)
            body.append(f'<article class="feature"><h3>{escape(f.name)} <small>{escape(meta)}</small></h3>'
                        f'<p class="tags"><code>{escape(f.path.name)}</code> '
                        + "".join(f"<span>@{escape(t)}</span>" for t in f.tags) + "</p>"
                        f"<p>{escape(f.description)}</p>")
            for sc in f.scenarios:
                steps = "".join(f"<div{' class=small' if st.background else ''}><b>{escape(st.keyword)}</b> "
                                f"{escape(st.text)}</div>" for st in sc.steps)
                examples = ""
                if sc.examples:
                    examples = ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in sc.examples_header) + "</tr>"
                                + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>"
                                          for r in sc.examples) + "</table>")
                results = "".join(f"<li>{escape(r.name)}: {_verdict(r.verdict)} {escape(_result_line(r))}</li>"
                                  for r in sc.results) or "<li>not run in the newest report</li>"
                body.append(f'<div class="scenario"><h4>Scenario: {escape(sc.name)}</h4>{steps}{examples}'
                            f"<ul>{results}</ul></div>")
            body.append("</article>")
        body.append("</section>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Drills</title><style>{CSS}</style>'
            f"</head><body>{''.join(body)}</body></html>\n")


def write_docs(features: Sequence[Path], out_dir: Path, fmt: str, runs_dir: Path) -> Path:
    if fmt not in ("html", "md"):
        raise InputError(f"expected --format html or md, observed {fmt!r}", hint="drill docs --format md")
    run = newest_journal(runs_dir)
    docs = collect(features, run)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "md":
        path = out_dir / "drills.md"
        path.write_text(render_markdown(docs, run), encoding="utf-8")
    else:
        path = out_dir / "index.html"
        path.write_text(render_html_docs(docs, run), encoding="utf-8")
    return path
