"""Reports built from the run journal: the run record, CI formats, HTML, post-incident drafts, docs.

``write_reports(report_dir)`` reads every journal of a report directory (``journal.json``, and
``journal-<worker>.json`` under xdist), merges them and writes, beside them:

* ``junit.xml``: one testcase per scenario (classname = feature), for CI;
* ``cucumber.json``: the standard Cucumber JSON, from the journal's step records;
* ``report.html``: one self-contained page: summary, timeline chart per scenario, filled checklist;
* ``postmortems/<scenario>.md``: a post-incident draft per scenario, in the runbook's shape.

It works on a run that crashed half-way (``finished: false``): every file says where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the writers are imported when reports are written: `drill --help` stays fast
    from harness.report.model import Run


@dataclass(frozen=True)
class ReportFiles:
    run: Run
    junit: Path
    cucumber: Path
    html: Path
    postmortems: tuple[Path, ...]

    def all(self) -> list[Path]:
        return [self.junit, self.cucumber, self.html, *self.postmortems]


def write_reports(report_dir: Path) -> ReportFiles:
    """(Re)generate every report of ``report_dir`` from its journal(s)."""
    from harness.report.cucumber import write_cucumber
    from harness.report.html import write_html
    from harness.report.junit import write_junit
    from harness.report.model import load_run
    from harness.report.postmortem import write_postmortems

    run = load_run(report_dir)
    return ReportFiles(
        run=run,
        junit=write_junit(run, report_dir / "junit.xml"),
        cucumber=write_cucumber(run, report_dir / "cucumber.json"),
        html=write_html(run, report_dir / "report.html"),
        postmortems=tuple(write_postmortems(run, report_dir / "postmortems")),
    )


__all__ = ["ReportFiles", "write_reports"]
