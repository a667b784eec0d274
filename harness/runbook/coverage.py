"""Which drill exercises which runbook section, and how it went the last time it ran.

A drill *exercises* a section when one of its steps follows a step of it
(``the on-call follows runbook step N of "Section"``). Results come from run journals
(``runs/report-*/journal.json``): for each scenario, the newest journal that ran it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.catalog import feature_files, parse_feature
from harness.runbook.parser import Runbook, Section, slugify

FOLLOWS = re.compile(r'follows runbook step (?P<step>\d+) of "(?P<section>[^"]+)"')


@dataclass(frozen=True)
class DrillRef:
    """One feature step that follows a runbook step."""

    feature_file: Path
    feature: str
    scenario: str
    line: int
    section: str
    step: int

    @property
    def slug(self) -> str:
        return slugify(self.section)


@dataclass(frozen=True)
class ScenarioResult:
    status: str  # passed | failed | error | skipped | mixed (outline rows differ) | not run
    journal: Path | None
    detail: str = ""


@dataclass(frozen=True)
class SectionCoverage:
    section: Section
    refs: tuple[DrillRef, ...]
    results: tuple[tuple[str, str, ScenarioResult], ...]  # (feature, scenario, result)

    @property
    def covered(self) -> bool:
        return bool(self.refs)


def drill_references(paths: Iterable[Path]) -> list[DrillRef]:
    """Every ``follows runbook step N of "..."`` step in the features under ``paths``."""
    refs: list[DrillRef] = []
    for path in feature_files(paths):
        feature = parse_feature(path)
        for sc in feature.scenarios.values():
            rows = [
                dict(zip(ex.example_params, values, strict=False)) for ex in sc.examples or [] for values in ex.examples
            ]
            for st in sc.steps:
                texts = {st.name}
                for row in rows:
                    text = st.name
                    for key, value in row.items():
                        text = text.replace(f"<{key}>", value)
                    texts.add(text)
                for text in sorted(texts):
                    m = FOLLOWS.search(text)
                    if m and "<" not in m.group("section"):
                        refs.append(DrillRef(path, feature.name, sc.name, st.line_number, m.group("section"),
                                             int(m.group("step"))))
    return refs


def journals(runs_dir: Path) -> list[Path]:
    """``report-*/journal.json`` under ``runs_dir``, newest first."""
    found = [p for p in runs_dir.glob("report-*/journal.json") if p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _load(path: Path) -> list[dict[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    scenarios = data.get("scenarios") if isinstance(data, dict) else None
    return [s for s in scenarios if isinstance(s, dict)] if isinstance(scenarios, list) else []


def last_results(journal_paths: Sequence[Path]) -> dict[tuple[str, str], ScenarioResult]:
    """(feature name, scenario name) -> its result in the newest journal that ran it."""
    out: dict[tuple[str, str], ScenarioResult] = {}
    for path in journal_paths:
        grouped: dict[tuple[str, str], list[str]] = {}
        for sc in _load(path):
            key = (str(sc.get("feature", "")), str(sc.get("scenario", "")))
            grouped.setdefault(key, []).append(str(sc.get("status", "?")))
        for key, statuses in grouped.items():
            if key in out:
                continue
            kinds = sorted(set(statuses))
            status = kinds[0] if len(kinds) == 1 else "mixed"
            detail = f"{statuses.count('passed')}/{len(statuses)} passed" if len(statuses) > 1 else ""
            out[key] = ScenarioResult(status, path, detail)
    return out


def coverage(runbook: Runbook, features: Sequence[Path], journal_paths: Sequence[Path]) -> list[SectionCoverage]:
    """One row per runbook section that has commands to run (the sections a drill can exercise)."""
    refs = drill_references(features)
    results = last_results(journal_paths)
    rows: list[SectionCoverage] = []
    for section in runbook.sections:
        if not section.has_commands:
            continue
        mine = tuple(r for r in refs if r.slug == section.slug)
        scenarios = sorted({(r.feature, r.scenario) for r in mine})
        res = tuple((f, s, _result_of(results, f, s)) for f, s in scenarios)
        rows.append(SectionCoverage(section, mine, res))
    return rows


def _result_of(results: dict[tuple[str, str], ScenarioResult], feature: str, scenario: str) -> ScenarioResult:
    """A scenario's result; a Scenario Outline's ``<param>`` template gathers every Examples row it ran as."""
    if (feature, scenario) in results:
        return results[(feature, scenario)]
    if "<" not in scenario:
        return ScenarioResult("not run", None)
    pattern = re.compile("^" + re.sub(r"\\<[^>]+\\>|<[^>]+>", ".+", re.escape(scenario)) + "$")
    rows = [r for (f, s), r in results.items() if f == feature and pattern.match(s)]
    if not rows:
        return ScenarioResult("not run", None)
    statuses = [r.status for r in rows]
    status = statuses[0] if len(set(statuses)) == 1 else "mixed"
    return ScenarioResult(status, rows[0].journal, f"{statuses.count('passed')}/{len(rows)} passed")
