"""Cucumber JSON (``cucumber.json``), built from the journal's step records.

The format read by cucumber-html-reporter, Allure, Jenkins' Cucumber plugin and friends: a list
of features, each with ``elements`` (scenarios) whose ``steps`` carry a ``result`` with
``status`` (passed | failed | skipped | undefined) and ``duration`` in nanoseconds. Steps after a
failure are ``skipped``. It is built from the merged journals, so it is the same under xdist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.model import Run, Scenario, slug

STATUSES = {"passed", "failed", "skipped", "undefined", "pending"}


def _tags(tags: tuple[str, ...], line: int) -> list[dict[str, Any]]:
    return [{"name": f"@{t}", "line": line} for t in tags]


def _element(sc: Scenario) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for st in sc.steps:
        status = "skipped" if st.status == "planned" else st.status if st.status in STATUSES else "failed"
        result: dict[str, Any] = {"status": status}
        if status not in ("skipped", "undefined"):
            result["duration"] = int(round(st.duration_s * 1e9))
        if st.error and status in ("failed", "undefined"):
            result["error_message"] = st.error
        steps.append({
            "keyword": f"{st.keyword} ",
            "name": st.text,
            "line": st.line,
            "match": {"location": f"{sc.feature_file}:{st.line}"},
            "result": result,
        })
    if sc.interrupted:
        # the run died inside this scenario: its last recorded step is where it stopped
        steps.append({
            "keyword": "* ",
            "name": "the run stopped here (interrupted)",
            "line": sc.line,
            "match": {"location": f"{sc.feature_file}:{sc.line}"},
            "result": {"status": "failed", "duration": 0, "error_message": "interrupted: the run did not finish"},
        })
    elif sc.status in ("failed", "error") and not any(s["result"]["status"] == "failed" for s in steps):
        # failed outside a step (setup, teardown rollback): make the failure visible to readers
        steps.append({
            "keyword": "* ",
            "name": "scenario teardown" if sc.status == "error" else "scenario setup",
            "line": sc.line,
            "match": {"location": f"{sc.feature_file}:{sc.line}"},
            "result": {"status": "failed", "duration": 0, "error_message": sc.error or sc.status},
        })
    return {
        "id": f"{slug(sc.feature)};{sc.slug}",
        "keyword": "Scenario",
        "name": sc.name,
        "description": "",
        "line": sc.line,
        "type": "scenario",
        "tags": _tags(sc.tags, sc.line - 1),
        "steps": steps,
    }


def build_cucumber(run: Run) -> list[dict[str, Any]]:
    features: dict[str, dict[str, Any]] = {}
    for sc in run.scenarios:
        key = sc.feature_file or sc.feature
        if key not in features:
            # feature tags = tags every scenario of the feature shares (Gherkin inherits them downwards)
            common = set(sc.tags)
            for other in run.scenarios:
                if (other.feature_file or other.feature) == key:
                    common &= set(other.tags)
            features[key] = {
                "uri": sc.feature_file,
                "id": slug(sc.feature),
                "keyword": "Feature",
                "name": sc.feature,
                "description": "",
                "line": 1,
                "tags": _tags(tuple(sorted(common)), 1),
                "elements": [],
            }
        features[key]["elements"].append(_element(sc))
    return list(features.values())


def write_cucumber(run: Run, path: Path) -> Path:
    path.write_text(json.dumps(build_cucumber(run), indent=2), encoding="utf-8")
    return path
