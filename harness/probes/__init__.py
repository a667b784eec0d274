"""Probes read the world (Alertmanager, Prometheus, logs, HTTP health, files, the operator CLI).

Each returns an :class:`~harness.waiting.Observation`; :func:`~harness.waiting.wait_until` polls
them. ``PROBES`` is the explicit registry (name -> class) used by steps, the CLI and the
conformance test.
"""

from __future__ import annotations

from harness.probes.alertmanager import Alert, AlertAbsent, AlertFiring, fetch_alerts, parse_alerts
from harness.probes.base import Probe
from harness.probes.cli import OperatorCommand
from harness.probes.files import CsvDuplicates, JsonFileField
from harness.probes.http import HttpHealth
from harness.probes.logs import LogLine, LogMatch, event_pattern, parse_log_line
from harness.probes.prometheus import MetricQuery, Sample, parse_query_result, query

PROBES: dict[str, type[Probe]] = {
    cls.name: cls
    for cls in (
        AlertFiring,
        AlertAbsent,
        MetricQuery,
        LogMatch,
        HttpHealth,
        JsonFileField,
        CsvDuplicates,
        OperatorCommand,
    )
}

__all__ = [
    "PROBES",
    "Alert",
    "AlertAbsent",
    "AlertFiring",
    "CsvDuplicates",
    "HttpHealth",
    "JsonFileField",
    "LogLine",
    "LogMatch",
    "MetricQuery",
    "OperatorCommand",
    "Probe",
    "Sample",
    "event_pattern",
    "fetch_alerts",
    "parse_alerts",
    "parse_log_line",
    "parse_query_result",
    "query",
]
