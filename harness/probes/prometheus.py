"""Prometheus instant queries (``GET {url}/api/v1/query?query=...``) compared with a threshold.

The reply (``{"status", "data": {"resultType", "result"}}``) is parsed once into frozen
:class:`Sample` s: a ``vector`` gives one sample per series, a ``scalar`` one unlabelled sample.
Values follow Prometheus' string encoding (``"1"``, ``"NaN"``, ``"+Inf"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.errors import ProbeError
from harness.probes._http import DEFAULT_TIMEOUT, HttpReply, http_get
from harness.probes.base import Probe, compare
from harness.waiting import Observation

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class Sample:
    value: float
    timestamp: float
    labels: Mapping[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{{{labels}}} {self.value:g}" if labels else f"{self.value:g}"


def _sample_value(pair: object, where: str) -> tuple[float, float]:
    if not (isinstance(pair, list) and len(pair) == 2):
        raise ProbeError(f"Prometheus reply: {where} is not a [timestamp, \"value\"] pair")
    try:
        return float(pair[0]), float(pair[1])
    except (TypeError, ValueError) as exc:
        raise ProbeError(f"Prometheus reply: {where} has a non-numeric value {pair!r}") from exc


def parse_query_result(document: object) -> tuple[Sample, ...]:
    """Parse an instant-query reply; :class:`ProbeError` with Prometheus' own error text on failure."""
    if not isinstance(document, dict):
        raise ProbeError("Prometheus reply is not a JSON object")
    if document.get("status") != "success":
        raise ProbeError(
            f"Prometheus query failed: {document.get('errorType', '?')}: {document.get('error', document)}",
            hint="check the PromQL (try it in the Prometheus UI /graph)",
        )
    data = document.get("data")
    if not isinstance(data, dict):
        raise ProbeError("Prometheus reply has no 'data' object")
    result_type, result = data.get("resultType"), data.get("result")
    if result_type == "vector":
        if not isinstance(result, list):
            raise ProbeError("Prometheus reply: vector result is not a list")
        samples = []
        for i, item in enumerate(result):
            if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
                raise ProbeError(f"Prometheus reply: result[{i}] has no 'metric' object")
            ts, value = _sample_value(item.get("value"), f"result[{i}].value")
            samples.append(Sample(value, ts, {str(k): str(v) for k, v in item["metric"].items()}))
        return tuple(samples)
    if result_type == "scalar":
        ts, value = _sample_value(result, "scalar result")
        return (Sample(value, ts),)
    raise ProbeError(
        f"Prometheus reply: resultType {result_type!r} is not supported by an instant-value probe",
        hint="write a query that returns an instant vector or a scalar (not a range vector)",
    )


def query(
    url: str, promql: str, *, timeout: float = DEFAULT_TIMEOUT, session: requests.Session | None = None
) -> tuple[Sample, ...] | str:
    """The samples of an instant query, or a string saying why there are none."""
    reply = http_get(f"{url.rstrip('/')}/api/v1/query", timeout=timeout, session=session, params={"query": promql})
    if not isinstance(reply, HttpReply):
        return reply.observed
    ok, document, problem = reply.json()
    if not ok:
        return problem
    try:
        return parse_query_result(document)
    except ProbeError as exc:
        return exc.message


class MetricQuery(Probe):
    """Satisfied when the query's value compares true with ``threshold`` (any series, or ``every``).

    An empty result is never satisfied (the metric is missing, which is worth seeing). Value: the
    first satisfying sample's value (float).
    """

    name = "prometheus_query"

    def __init__(
        self,
        url: str,
        promql: str,
        op: str = ">",
        threshold: float = 0.0,
        *,
        every: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self.promql = promql
        self.op = op
        self._cmp = compare(op)
        self.threshold = threshold
        self.every = every
        self.timeout = timeout
        self.session = session

    def __call__(self) -> Observation:
        samples = query(self.url, self.promql, timeout=self.timeout, session=self.session)
        if isinstance(samples, str):
            return Observation(False, samples)
        if not samples:
            return Observation(False, f"no samples for {self.promql} (metric missing or no series match)")
        good = [s for s in samples if not math.isnan(s.value) and self._cmp(s.value, self.threshold)]
        listing = "; ".join(s.summary() for s in samples[:10]) + (" ..." if len(samples) > 10 else "")
        ok = len(good) == len(samples) if self.every else bool(good)
        return Observation(ok, f"{self.promql} = {listing}", good[0].value if good else samples[0].value)

    def describe(self) -> str:
        scope = "every series of " if self.every else ""
        return f"{scope}{self.promql} {self.op} {self.threshold:g} (Prometheus {self.url})"
