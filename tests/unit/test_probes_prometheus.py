"""Prometheus instant-query probe against real-shaped replies (fixtures/api/prometheus_query_*.json)."""

from __future__ import annotations

import json
import math

import pytest

from harness.errors import InputError, ProbeError
from harness.probes import PROBES, MetricQuery, Sample, parse_query_result
from tests.unit.http_fakes import REFUSED, FakeSession, fixture_text

PROM = "http://127.0.0.1:9090"
URL = PROM + "/api/v1/query"


def session_with(name: str, status: int = 200) -> FakeSession:
    s = FakeSession()
    s.reply(URL, status=status, text=fixture_text(name))
    return s


def test_parse_vector() -> None:
    (sample,) = parse_query_result(json.loads(fixture_text("prometheus_query_vector.json")))
    assert sample == Sample(1.0, 1767623565.004, {"__name__": "traderunner_kill_switch_active",
                                                   "instance": "127.0.0.1:7300", "job": "traderunner"})


def test_parse_scalar_nan_and_empty() -> None:
    assert parse_query_result(json.loads(fixture_text("prometheus_query_scalar.json")))[0].value == 0.25
    assert math.isnan(parse_query_result(json.loads(fixture_text("prometheus_query_nan.json")))[0].value)
    assert parse_query_result(json.loads(fixture_text("prometheus_query_empty.json"))) == ()


def test_parse_error_reply_carries_prometheus_message() -> None:
    with pytest.raises(ProbeError, match="bad_data: invalid parameter"):
        parse_query_result(json.loads(fixture_text("prometheus_query_error.json")))


def test_parse_rejects_range_vectors() -> None:
    with pytest.raises(ProbeError, match="matrix"):
        parse_query_result({"status": "success", "data": {"resultType": "matrix", "result": []}})


def test_threshold_comparison_and_params() -> None:
    session = session_with("prometheus_query_vector.json")
    probe = MetricQuery(PROM, "traderunner_kill_switch_active", "==", 1, session=session)  # type: ignore[arg-type]
    obs = probe()
    assert obs.ok and obs.value == 1.0
    assert 'job="traderunner"' in obs.observed
    assert session.requests == [(URL, {"query": "traderunner_kill_switch_active"})]
    assert not MetricQuery(PROM, "q", ">", 1, session=session)().ok  # type: ignore[arg-type]


def test_any_or_every_series() -> None:
    session = session_with("prometheus_query_multi.json")
    assert MetricQuery(PROM, "rejects", ">", 2, session=session)().ok  # type: ignore[arg-type]
    obs = MetricQuery(PROM, "rejects", ">", 2, every=True, session=session)()  # type: ignore[arg-type]
    assert not obs.ok and 'reason="rate_limit"' in obs.observed


def test_empty_nan_error_and_unreachable_are_observations() -> None:
    empty = MetricQuery(PROM, "missing_metric", session=session_with("prometheus_query_empty.json"))()  # type: ignore[arg-type]
    assert not empty.ok and "no samples for missing_metric" in empty.observed
    nan = MetricQuery(PROM, "x", "<", 5, session=session_with("prometheus_query_nan.json"))()  # type: ignore[arg-type]
    assert not nan.ok
    bad = MetricQuery(PROM, "up{", session=session_with("prometheus_query_error.json", 400))()  # type: ignore[arg-type]
    assert not bad.ok and "parse error" in bad.observed
    down = MetricQuery(PROM, "up", session=FakeSession(replies={URL: REFUSED}))()  # type: ignore[arg-type]
    assert not down.ok and down.observed.startswith("unreachable:")


def test_unknown_operator_is_refused_at_construction() -> None:
    with pytest.raises(InputError, match="unknown comparison '=>'"):
        MetricQuery(PROM, "up", "=>", 1)


def test_registered_and_described() -> None:
    assert PROBES["prometheus_query"] is MetricQuery
    assert MetricQuery(PROM, "up", ">=", 1).describe() == f"up >= 1 (Prometheus {PROM})"
