"""JUnit XML (``junit.xml``): one ``<testcase>`` per scenario, ``classname`` = the feature.

The common JUnit schema CI servers read (Jenkins, GitLab, GitHub test reporters): a failed
scenario has a ``<failure>`` whose message is the failing step and its error; a scenario whose
teardown failed (a fault that could not be rolled back) has an ``<error>``; a scenario the run
never finished (crash) has an ``<error>`` saying so.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.report.model import Run, Scenario

# XML 1.0 forbids most control characters; service output sometimes carries them.
_CONTROL = {c: None for c in range(32) if c not in (9, 10, 13)}


def _clean(text: str) -> str:
    return text.translate(_CONTROL)


def _failure_message(sc: Scenario) -> str:
    step = sc.failing_step
    if step is not None:
        first = (step.error or sc.error or "failed").strip().splitlines()
        return _clean(f"{step.keyword} {step.text} (line {step.line}): {first[0] if first else 'failed'}")
    return _clean((sc.error or sc.status).strip().splitlines()[0] if (sc.error or "").strip() else sc.status)


def _details(sc: Scenario) -> str:
    lines = [f"{s.status:>9}  {s.keyword} {s.text}" + (f"\n           {s.error.strip()}" if s.error else "")
             for s in sc.steps]
    lines += [f"{m.name}: {'n/a' if m.value_s is None else f'{m.value_s:.3f}s'}"
              + ("" if m.target_s is None else f" (target {m.target_s:g}s)") + f" {m.verdict}" for m in sc.metrics]
    if sc.error:
        lines.append(sc.error.strip())
    return _clean("\n".join(lines))


def _testcase(sc: Scenario) -> ET.Element:
    case = ET.Element("testcase", {
        "classname": sc.feature,
        "name": sc.name,
        "time": f"{sc.duration_s + sc.teardown_s:.3f}",
        "file": sc.feature_file,
        "line": str(sc.line),
    })
    if sc.status == "failed":
        ET.SubElement(case, "failure", {"message": _failure_message(sc), "type": "DrillFailed"}).text = _details(sc)
    elif sc.status == "error":
        ET.SubElement(case, "error", {"message": _failure_message(sc), "type": "DrillError"}).text = _details(sc)
    elif sc.interrupted:
        where = sc.stopped_where
        ET.SubElement(case, "error", {"message": _clean(f"interrupted: the run stopped during this scenario {where}"),
                                      "type": "Interrupted"}).text = _details(sc)
    elif sc.status == "skipped":
        ET.SubElement(case, "skipped", {"message": _clean(sc.error or "skipped")})
    elif sc.status == "planned":
        ET.SubElement(case, "skipped", {"message": "dry run: planned, not run"})
    out = [f"{e.offset_s - (sc.fault_origin or 0.0):+8.3f}s  {e.kind:<18} {e.label}" for e in sc.events]
    if out:
        ET.SubElement(case, "system-out").text = _clean("timeline (seconds from the fault):\n" + "\n".join(out))
    return case


def build_junit(run: Run) -> ET.ElementTree[ET.Element]:
    root = ET.Element("testsuites", {"name": "drill"})
    features: dict[str, list[Scenario]] = {}
    for sc in run.scenarios:
        features.setdefault(sc.feature, []).append(sc)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for feature, scs in features.items():
        counts = {
            "tests": len(scs),
            "failures": sum(s.status == "failed" for s in scs),
            "errors": sum(s.status == "error" or s.interrupted for s in scs),
            "skipped": sum(s.status in ("skipped", "planned") for s in scs),
        }
        t = sum(s.duration_s + s.teardown_s for s in scs)
        suite = ET.SubElement(root, "testsuite", {"name": feature, **{k: str(v) for k, v in counts.items()},
                                                  "time": f"{t:.3f}", "timestamp": run.started_at,
                                                  "file": scs[0].feature_file})
        props = ET.SubElement(suite, "properties")
        for name, value in (("backend", run.backend), ("stack_file", run.stack_file), ("revision", run.revision),
                            ("harness_version", run.harness_version), ("command", run.command),
                            ("finished", str(run.finished).lower())):
            if value is not None:
                ET.SubElement(props, "property", {"name": name, "value": _clean(value)})
        for sc in scs:
            suite.append(_testcase(sc))
        for k, v in counts.items():
            totals[k] += v
        total_time += t
    root.attrib.update({k: str(v) for k, v in totals.items()})
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(run: Run, path: Path) -> Path:
    build_junit(run).write(path, encoding="utf-8", xml_declaration=True)
    return path
