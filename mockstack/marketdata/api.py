"""The HTTP routes of the marketdata service (see the "marketdata" section of docs/stack-contract.md).

Request input (path, query, JSON body) is parsed here, at the edge, into ints and
:class:`~mockstack.marketdata.faults.FaultSpec`; errors are JSON ``{"error", "field"}`` naming the
field and what is accepted.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from mockstack.common.http import HTTPError, Request, Response, ServiceHTTP
from mockstack.common.logging import EventLog
from mockstack.marketdata.faults import InvalidFaultField, parse_fault_spec
from mockstack.marketdata.feed import FaultState, MarketFeed, UnknownFault, UnknownSymbol
from mockstack.marketdata.metrics import MarketdataMetrics
from mockstack.marketdata.walk import Bar

SUPPORTED_INTERVALS = ("5m",)
SUPPORTED_FORMATS = ("json",)


def bar_json(bar: Bar) -> dict[str, Any]:
    return {
        "timestamp": bar.timestamp,
        "datetime": bar.datetime_text,
        "gmtoffset": 0,
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
    }


def fault_json(state: FaultState) -> dict[str, Any]:
    f = state.fault
    return {
        "id": f.id,
        "kind": f.kind.value,
        "symbol": f.symbol,
        "bars": f.bars,
        "pct": f.pct,
        "first_bar_timestamp": state.first_bar_timestamp,
        "bars_affected": state.bars_affected,
        "complete": state.complete,
    }


def _unix_param(request: Request, name: str) -> int | None:
    raw = request.params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise HTTPError(400, f"'{name}' must be a unix timestamp in whole seconds, got {raw!r}", name) from None


class MarketdataAPI:
    """Handlers bound to one feed; :meth:`install` registers them on a :class:`ServiceHTTP`."""

    def __init__(self, feed: MarketFeed, metrics: MarketdataMetrics, log: EventLog) -> None:
        self.feed = feed
        self.metrics = metrics
        self.log = log

    def install(self, http: ServiceHTTP) -> None:
        http.route("GET", "/api/symbols", self._counted("/api/symbols", self.symbols))
        http.route("GET", r"/api/intraday/(?P<symbol>[^/]+)", self._counted("/api/intraday", self.intraday))
        http.route("GET", "/api/clock", self._counted("/api/clock", self.clock))
        http.route("POST", "/admin/faults", self._counted("/admin/faults", self.add_fault))
        http.route("GET", "/admin/faults", self._counted("/admin/faults", self.list_faults))
        http.route("DELETE", "/admin/faults", self._counted("/admin/faults", self.clear_faults))
        http.route("DELETE", r"/admin/faults/(?P<fault_id>[^/]+)", self._counted("/admin/faults", self.clear_fault))

    def _counted(self, endpoint: str, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                response = handler(request)
            except HTTPError as exc:
                self.metrics.observe_request(endpoint, exc.status)
                raise
            except Exception as exc:
                self.metrics.observe_request(endpoint, 500)
                self.log.error(
                    "request_failed",
                    f"{request.method} {request.path} failed: {exc!r}",
                    traceback=traceback.format_exc(),
                )
                raise HTTPError(500, f"internal error: {exc!r}") from exc
            self.metrics.observe_request(endpoint, response.status)
            return response

        return wrapped

    # -- /api ----------------------------------------------------------------------------------

    def symbols(self, _: Request) -> Response:
        return Response.json(
            [{"symbol": i.symbol, "name": i.name, "start_price": i.start_price} for i in self.feed.instruments]
        )

    def intraday(self, request: Request) -> Response:
        symbol = request.match["symbol"]
        interval = request.params.get("interval", "5m")
        if interval not in SUPPORTED_INTERVALS:
            raise HTTPError(
                400, f"unsupported interval {interval!r}; accepted: {', '.join(SUPPORTED_INTERVALS)}", "interval"
            )
        fmt = request.params.get("fmt", "json")
        if fmt not in SUPPORTED_FORMATS:
            raise HTTPError(400, f"unsupported fmt {fmt!r}; accepted: {', '.join(SUPPORTED_FORMATS)}", "fmt")
        from_ts = _unix_param(request, "from")
        to_ts = _unix_param(request, "to")
        if from_ts is not None and to_ts is not None and to_ts < from_ts:
            raise HTTPError(400, f"'to' ({to_ts}) must not be before 'from' ({from_ts})", "to")
        try:
            bars = self.feed.bars(symbol, from_ts, to_ts)
        except UnknownSymbol as exc:
            raise HTTPError(404, str(exc), "symbol") from exc
        return Response.json([bar_json(b) for b in bars])

    def clock(self, _: Request) -> Response:
        s = self.feed.status()
        return Response.json(
            {
                "bars_published": s.bars_published,
                "last_bar_timestamp": s.last_bar_timestamp,
                "bar_interval_ms": s.bar_interval_ms,
                "stale": s.stale,
                "stale_symbols": list(s.stale_symbols),
                "simulated_timestamp": s.simulated_timestamp,
            }
        )

    # -- /admin/faults -------------------------------------------------------------------------

    def add_fault(self, request: Request) -> Response:
        try:
            spec = parse_fault_spec(request.json(), self.feed.symbols)
        except InvalidFaultField as exc:
            raise HTTPError(400, exc.message, exc.field) from exc
        return Response.json(fault_json(self.feed.add_fault(spec)), 201)

    def list_faults(self, _: Request) -> Response:
        return Response.json({"faults": [fault_json(s) for s in self.feed.faults()]})

    def clear_fault(self, request: Request) -> Response:
        try:
            state = self.feed.clear_fault(request.match["fault_id"])
        except UnknownFault as exc:
            raise HTTPError(404, str(exc), "id") from exc
        return Response.json({"cleared": [fault_json(state)]})

    def clear_faults(self, _: Request) -> Response:
        return Response.json({"cleared": [fault_json(s) for s in self.feed.clear_all()]})
