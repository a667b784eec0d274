"""Trading faults: a price shock, an unexpected position, and venue reject-rate / fill-latency spikes.

Each goes through an admin endpoint the stack declares in ``x-drill.trading.faults`` (stack
contract): ``position`` takes ``POST {symbol, qty}`` (rollback ``DELETE <path>/<symbol>``);
``reject_rate`` (``{rate}``) and ``fill_latency`` (``{ms}``) answer the previous value, which
rollback restores. If the reply with the previous value was lost, rollback restores
``restore_if_unknown`` (the stack's documented default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from harness.adapter import Endpoint
from harness.errors import FaultError
from harness.faults._http import admin_call, field
from harness.faults.base import Fault, FaultContext, Params, ParamValue, check_range
from harness.faults.data import FeedCorruption, endpoint_from, endpoint_params

if TYPE_CHECKING:
    from harness.backends.base import Backend


class PriceShock(FeedCorruption):
    """A real market move: ``pct`` % (default -8) spread over ``bars`` bars (default 3).

    Rollback clears the fault on the feed, but the move stays in the price history (it happened).
    """

    kind = "price_shock"

    def __init__(
        self,
        backend: Backend,
        *,
        pct: float = -8.0,
        bars: int = 3,
        symbol: str | None = None,
        endpoint: Endpoint,
        ctx: FaultContext | None = None,
        fault_id: str | None = None,
    ) -> None:
        super().__init__(backend, "shock", symbol=symbol, bars=bars, pct=pct, endpoint=endpoint,
                         ctx=ctx, fault_id=fault_id)

    @property
    def expected_effect(self) -> str:
        return (f"prices move {self.pct:g}% over {self.bars} bars: the daily loss limit is breached and the "
                "kill switch trips (default risk config)")

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, pct=params.number("pct"), bars=params.integer("bars"), symbol=params.opt_text("symbol"),
                   endpoint=endpoint_from(params), ctx=ctx, fault_id=fault_id)


class _VenueFault(Fault):
    """A fault set through one of the venue's admin endpoints (``x-drill.trading.faults``)."""

    def __init__(self, backend: Backend, *, endpoint: Endpoint, ctx: FaultContext | None,
                 fault_id: str | None) -> None:
        super().__init__(backend, ctx=ctx, fault_id=fault_id)
        self.endpoint = endpoint
        self.service = endpoint.service

    def _url(self, suffix: str = "") -> str:
        return self.backend.endpoint(self.endpoint.service, self.endpoint.port).url + self.endpoint.path + suffix


class InjectedPosition(_VenueFault):
    """A position at the broker with no order behind it (the *unexpected position* incident)."""

    kind = "injected_position"

    def __init__(self, backend: Backend, symbol: str, qty: int, *, endpoint: Endpoint,
                 ctx: FaultContext | None = None, fault_id: str | None = None) -> None:
        super().__init__(backend, endpoint=endpoint, ctx=ctx, fault_id=fault_id)
        if isinstance(qty, bool) or not isinstance(qty, int) or qty == 0:
            raise FaultError(f"qty must be a non-zero whole number of units (negative = short); got {qty!r}")
        self.symbol = symbol
        self.qty = qty

    @property
    def target(self) -> str:
        return f"{self.service} positions ({self.symbol})"

    @property
    def action(self) -> str:
        return f"add a position of {self.qty:+d} {self.symbol} with no order"

    @property
    def expected_effect(self) -> str:
        return "reconciliation finds a mismatch between expected and actual positions; the alert fires"

    def params(self) -> dict[str, ParamValue]:
        return {"symbol": self.symbol, "qty": self.qty, **endpoint_params(self.endpoint)}

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, params.text("symbol"), params.integer("qty"), endpoint=endpoint_from(params),
                   ctx=ctx, fault_id=fault_id)

    def _inject(self) -> None:
        admin_call("POST", self._url(), body={"symbol": self.symbol, "qty": self.qty}, what="inject position")

    def _rollback(self) -> None:
        admin_call("DELETE", self._url(f"/{self.symbol}"), what="remove injected position", ok=(200, 204, 404))


class _SettingSpike(_VenueFault):
    """Set a broker setting that answers ``{<key>: new, "previous": old}``; rollback restores ``old``."""

    key: str

    def __init__(self, backend: Backend, value: float, *, restore_if_unknown: float, endpoint: Endpoint,
                 ctx: FaultContext | None, fault_id: str | None) -> None:
        super().__init__(backend, endpoint=endpoint, ctx=ctx, fault_id=fault_id)
        self.value = value
        self.restore_if_unknown = restore_if_unknown
        self.previous: float | None = None

    @property
    def target(self) -> str:
        return f"{self.service} {self.key}"

    def params(self) -> dict[str, ParamValue]:
        return {"value": self.value, "restore_if_unknown": self.restore_if_unknown, **endpoint_params(self.endpoint)}

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, params.number("value"), restore_if_unknown=params.number("restore_if_unknown"),
                   endpoint=endpoint_from(params), ctx=ctx, fault_id=fault_id)

    def learned(self) -> dict[str, ParamValue]:
        return {"previous": self.previous}

    def _restore_learned(self, learned: Params) -> None:
        self.previous = learned.opt_number("previous")

    def _send(self, value: float) -> float:
        body: dict[str, object] = {self.key: int(value) if self.key == "ms" else value}
        reply = admin_call("POST", self._url(), body=body, what=f"set {self.key}")
        previous = field(reply, "previous", f"set {self.key}")
        if isinstance(previous, bool) or not isinstance(previous, int | float):
            raise FaultError(f"set {self.key}: 'previous' is not a number: {reply.text[:200]}")
        return float(previous)

    def _inject(self) -> None:
        self.previous = self._send(self.value)

    def _rollback(self) -> None:
        self._send(self.previous if self.previous is not None else self.restore_if_unknown)


class RejectRateSpike(_SettingSpike):
    """The broker rejects a fraction ``rate`` (0..1) of orders at random."""

    kind = "reject_rate_spike"
    key = "rate"

    def __init__(self, backend: Backend, rate: float, *, restore_if_unknown: float = 0.0, endpoint: Endpoint,
                 ctx: FaultContext | None = None, fault_id: str | None = None) -> None:
        check_range("rate", rate, 0.0, 1.0, "(fraction of orders)")
        super().__init__(backend, rate, restore_if_unknown=restore_if_unknown, endpoint=endpoint,
                         ctx=ctx, fault_id=fault_id)

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, params.number("value"), restore_if_unknown=params.number("restore_if_unknown"),
                   endpoint=endpoint_from(params), ctx=ctx, fault_id=fault_id)

    @property
    def action(self) -> str:
        return f"reject {self.value:.0%} of orders"

    @property
    def expected_effect(self) -> str:
        return "order rejections climb above the SLO: the order-rejections alert fires"


class LatencySpike(_SettingSpike):
    """The broker takes ``ms`` milliseconds to fill each order."""

    kind = "latency_spike"
    key = "ms"

    def __init__(self, backend: Backend, ms: int, *, restore_if_unknown: float = 0, endpoint: Endpoint,
                 ctx: FaultContext | None = None, fault_id: str | None = None) -> None:
        check_range("ms", ms, 0, 600_000, "ms")
        super().__init__(backend, ms, restore_if_unknown=restore_if_unknown, endpoint=endpoint,
                         ctx=ctx, fault_id=fault_id)

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, params.integer("value") if isinstance(params.values.get("value"), int)
                   else int(params.number("value")), restore_if_unknown=params.number("restore_if_unknown"),
                   endpoint=endpoint_from(params), ctx=ctx, fault_id=fault_id)

    @property
    def action(self) -> str:
        return f"fill latency {self.value:g} ms"

    @property
    def expected_effect(self) -> str:
        return "fills slow down: order latency rises and the high-latency alert fires"
