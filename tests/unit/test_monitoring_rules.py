"""The alert rules, Prometheus configs and Alertmanager config are valid and tested with the real tools.

A missing promtool/amtool FAILS (naming the Debian package): a silently skipped check would let a
broken rule file reach a drill.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.monitoring import (
    ALERTMANAGER_CONFIG,
    MONITORING_DIR,
    REPO_ROOT,
    TEMPLATE_PORTS,
    ToolMissing,
    render_local_prometheus_config,
    require_tool,
)
from tests.support.processes import free_port

RULES_DIR = MONITORING_DIR / "prometheus" / "rules"
TESTS_DIR = MONITORING_DIR / "prometheus" / "tests"
COMPOSE_CONFIG = MONITORING_DIR / "prometheus" / "prometheus.compose.yml"
CONTRACT = REPO_ROOT / "docs" / "stack-contract.md"

# What the brief and the runbook ask for: alert -> severity.
EXPECTED_SEVERITY = {
    "KillSwitchActive": "P0",
    "TradingEngineDown": "P0",
    "BrokerManualInterventionRequired": "P0",
    "UnexpectedPosition": "P0",
    "BrokerDisconnected": "P1",
    "OrderRejectionRateHigh": "P1",
    "OrderLatencyHigh": "P1",
    "DataSLAViolation": "P1",
    "PaperTradingEngineDown": "P1",
    "Watchdog": "P2",
    "DashboardUnavailable": "P2",
    "MetricsTargetDown": "P2",
    "PerformanceDegradation": "P3",
}
ALWAYS_FIRING = {"Watchdog"}


def tool(name: str) -> str:
    try:
        return require_tool(name)
    except ToolMissing as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 0, (
        f"{' '.join(argv)} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def rule_files() -> list[Path]:
    files = sorted(RULES_DIR.glob("*.yml"))
    assert files, f"no rule files in {RULES_DIR}"
    return files


def promtool_test_files() -> list[Path]:
    files = sorted(TESTS_DIR.glob("*.yml"))
    assert files, f"no promtool test files in {TESTS_DIR}"
    return files


def alert_rules() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in rule_files():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in doc["groups"]:
            out.extend(r for r in group["rules"] if "alert" in r)
    return out


def contract_runbook_slugs() -> set[str]:
    text = CONTRACT.read_text(encoding="utf-8")
    found = re.search(r"the section slug:(.*?)\n\s*Alertmanager", text, re.S)
    assert found, f"cannot find the list of runbook slugs ('the section slug: ...') in {CONTRACT}"
    slugs = set(re.findall(r"`([a-z0-9-]+)`", found.group(1)))
    assert slugs, f"no slugs found in the Monitoring section of {CONTRACT}"
    return slugs


def test_promtool_check_rules() -> None:
    run([tool("promtool"), "check", "rules", *map(str, rule_files())])


def test_promtool_unit_tests_pass() -> None:
    run([tool("promtool"), "test", "rules", *map(str, promtool_test_files())])


def test_every_alert_has_the_expected_severity_and_a_contract_runbook_slug() -> None:
    slugs = contract_runbook_slugs()
    rules = alert_rules()
    got = {r["alert"]: r["labels"].get("severity") for r in rules}
    assert got == EXPECTED_SEVERITY
    for rule in rules:
        labels = rule["labels"]
        assert labels.get("runbook") in slugs, f"{rule['alert']}: runbook {labels.get('runbook')!r} not in {slugs}"
        assert rule["annotations"].get("summary"), f"{rule['alert']} has no summary"
        assert rule["annotations"].get("description"), f"{rule['alert']} has no description"


def test_every_p0_can_reach_alertmanager_within_five_seconds() -> None:
    # scrape 1 s + evaluation 1 s + `for` + send: `for` must stay at 1 s or less for P0
    for rule in alert_rules():
        if rule["labels"]["severity"] == "P0":
            hold = str(rule.get("for", "0s"))
            assert hold in {"0s", "1s"}, f"{rule['alert']} is P0 but waits for: {hold}"


def test_promtool_tests_cover_every_alert_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in promtool_test_files():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = set(EXPECTED_SEVERITY)
    assert names - firing == set(), f"no promtool test sees these alerts fire: {sorted(names - firing)}"
    not_quiet = names - ALWAYS_FIRING - quiet
    assert not_quiet == set(), f"no promtool test checks these alerts stay quiet: {sorted(not_quiet)}"


def test_rendered_local_template_is_a_valid_config(tmp_path: Path) -> None:
    ports = {svc: free_port() for svc in TEMPLATE_PORTS}
    config = render_local_prometheus_config(tmp_path / "prometheus.yml", ports, tmp_path)
    text = config.read_text(encoding="utf-8")
    assert "{{" not in text, f"placeholders left in the rendered config:\n{text}"
    run([tool("promtool"), "check", "config", str(config)])
    doc = yaml.safe_load(text)
    assert doc["global"]["scrape_interval"] == "1s"
    assert doc["global"]["evaluation_interval"] == "1s"
    every_target = [t for job in doc["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    every_target += [t for am in doc["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    assert all(t.startswith("127.0.0.1:") for t in every_target), every_target
    assert f"127.0.0.1:{ports['traderunner']}" in every_target


def test_compose_config_is_valid_and_has_the_same_jobs_as_the_local_template(tmp_path: Path) -> None:
    run([tool("promtool"), "check", "config", str(COMPOSE_CONFIG)])
    compose = yaml.safe_load(COMPOSE_CONFIG.read_text(encoding="utf-8"))
    local_path = render_local_prometheus_config(
        tmp_path / "p.yml", {svc: free_port() for svc in TEMPLATE_PORTS}, tmp_path
    )
    local = yaml.safe_load(local_path.read_text(encoding="utf-8"))
    assert [j["job_name"] for j in compose["scrape_configs"]] == [j["job_name"] for j in local["scrape_configs"]]
    assert compose["global"] == local["global"]


def test_amtool_check_config() -> None:
    run([tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG)])
