"""``drill plan``: the year's quarterly drill calendar, each drill's last run, and what is due.

Q1..Q4 come from the runbook's quarterly drill list. A drill's runs are the journals under
``./runs`` (``drill run`` report directories and ``drill gameday`` directories) that contain
scenarios tagged with its quarter; its result is passed only when every one of them passed.

A quarter's drill is *done* once it passed this year; it is *due now* during its quarter while it
is not done, *overdue* when its quarter is over and it is not done, *upcoming* before its quarter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from harness.errors import InputError
from harness.report.model import Run, journal_files, load_run

QUARTER_MONTHS = {"Q1": (1, 3), "Q2": (4, 6), "Q3": (7, 9), "Q4": (10, 12)}


@dataclass(frozen=True)
class DrillRun:
    quarter: str
    day: date
    result: str  # passed | failed | interrupted
    where: Path
    scenarios: int


@dataclass(frozen=True)
class PlanRow:
    quarter: str
    title: str
    window: tuple[date, date]
    last: DrillRun | None
    status: str  # done | done (late) | due now | overdue | upcoming

    @property
    def due(self) -> bool:
        return self.status in ("due now", "overdue")


def quarter_window(quarter: str, year: int) -> tuple[date, date]:
    first, last = QUARTER_MONTHS[quarter]
    end = date(year, 12, 31) if last == 12 else date.fromordinal(date(year, last + 1, 1).toordinal() - 1)
    return date(year, first, 1), end


def quarter_of(day: date) -> str:
    return f"Q{(day.month - 1) // 3 + 1}"


def drill_runs(runs: Iterable[Run]) -> list[DrillRun]:
    out = []
    for run in runs:
        try:
            day = date.fromisoformat(run.started_at[:10])
        except ValueError:
            continue
        for quarter in QUARTER_MONTHS:
            scs = [s for s in run.scenarios if s.quarter == quarter]
            if not scs:
                continue
            if any(s.interrupted for s in scs) or not run.finished:
                result = "interrupted"
            elif all(s.status in ("passed", "skipped") for s in scs):
                result = "passed"
            else:
                result = "failed"
            out.append(DrillRun(quarter, day, result, run.report_dir, len(scs)))
    return out


def load_runs(runs_dir: Path) -> list[Run]:
    """Every report directory directly under ``runs_dir`` that holds a journal (unreadable ones skipped)."""
    out = []
    for d in sorted(p for p in runs_dir.glob("*") if p.is_dir()):
        if not journal_files(d):
            continue
        try:
            out.append(load_run(d))
        except InputError:
            continue
    return out


def build_plan(titles: Mapping[str, str], runs: Sequence[DrillRun], today: date) -> list[PlanRow]:
    rows = []
    for quarter, title in titles.items():
        window = quarter_window(quarter, today.year)
        mine = sorted((r for r in runs if r.quarter == quarter), key=lambda r: (r.day, str(r.where)))
        last = mine[-1] if mine else None
        passed_this_year = [r for r in mine if r.result == "passed" and r.day.year == today.year]
        if passed_this_year:
            in_window = any(window[0] <= r.day <= window[1] for r in passed_this_year)
            status = "done" if in_window or passed_this_year[0].day < window[0] else "done (late)"
        elif today < window[0]:
            status = "upcoming"
        elif today <= window[1]:
            status = "due now"
        else:
            status = "overdue"
        rows.append(PlanRow(quarter, title, window, last, status))
    return rows


def describe_due(rows: Sequence[PlanRow], today: date) -> str:
    due = [r for r in rows if r.due]
    if not due:
        upcoming = next((r for r in rows if r.status == "upcoming"), None)
        nxt = f"; next: {upcoming.quarter} {upcoming.title} from {upcoming.window[0]}" if upcoming else ""
        return f"nothing due on {today}{nxt}"
    parts = [f"{r.quarter} {r.title} ({r.status}, by {r.window[1]})" for r in due]
    return f"due on {today}: " + "; ".join(parts)
