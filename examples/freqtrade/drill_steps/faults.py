"""Our own fault: a venue-side fault through the venue's admin API (mockstack/venue/PROTOCOL.md).

The venue executes an order and drops its reply (``lost_ack``), bans with 418/429 (``ban``), answers
5xx (``error``), hangs (``hang``) or freezes its klines (``stale_klines``). Decorated with
@register_fault: the run's ledger names this module, so `drill cleanup` can clear it after a crash.
"""

from __future__ import annotations

from typing import Self

from harness.backends.base import Backend
from harness.faults import Fault, register_fault
from harness.faults._http import admin_call
from harness.faults.base import FaultContext, Params, ParamValue, check_choice, check_range

SERVICE, PORT, PATH = "venue", "http", "/admin/faults"
KINDS = ("lost_ack", "ban", "error", "hang", "stale_klines")
EFFECTS = {
    "lost_ack": "the bot's next order is executed at the venue but the bot never hears of it",
    "ban": "every exchange request is refused; the bot backs off",
    "error": "exchange requests fail with 5xx; the bot retries",
    "hang": "exchange requests get no answer; the bot's loop blocks",
    "stale_klines": "candles stop advancing",
}


@register_fault
class VenueFault(Fault):
    kind = "venue_fault"

    def __init__(
        self,
        backend: Backend,
        fault: str,
        *,
        count: int | None = None,
        seconds: float | None = None,
        status: int | None = None,
        ctx: FaultContext | None = None,
        fault_id: str | None = None,
    ) -> None:
        super().__init__(backend, ctx=ctx, fault_id=fault_id)
        self.fault = check_choice("fault", fault, KINDS)
        if count is not None:
            check_range("count", count, 1, 10_000)
        if seconds is not None:
            check_range("seconds", seconds, 0.1, 3600, "s")
        self.count, self.seconds, self.status = count, seconds, status
        self.service = SERVICE
        self.remote_id: str | None = None

    @property
    def target(self) -> str:
        return "the venue's exchange API"

    @property
    def action(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in (("count", self.count), ("seconds", self.seconds),
                                                   ("status", self.status)) if v is not None)
        return f"{self.fault}{extra}"

    @property
    def expected_effect(self) -> str:
        return EFFECTS[self.fault]

    def params(self) -> dict[str, ParamValue]:
        return {"fault": self.fault, "count": self.count, "seconds": self.seconds, "status": self.status}

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, params.text("fault"), count=params.opt_integer("count"),
                   seconds=params.opt_number("seconds"), status=params.opt_integer("status"),
                   ctx=ctx, fault_id=fault_id)

    def learned(self) -> dict[str, ParamValue]:
        return {"remote_id": self.remote_id}

    def _restore_learned(self, learned: Params) -> None:
        self.remote_id = learned.opt_text("remote_id")

    def _url(self) -> str:
        return self.backend.endpoint(SERVICE, PORT).url + PATH

    def _inject(self) -> None:
        body: dict[str, object] = {"kind": self.fault}
        body.update({k: v for k, v in (("count", self.count), ("seconds", self.seconds), ("status", self.status))
                     if v is not None})
        reply = admin_call("POST", self._url(), body=body, what=f"inject venue fault {self.fault}", ok=(201,))
        assert isinstance(reply.body, dict)
        self.remote_id = str(reply.body["id"])

    def _rollback(self) -> None:
        if self.remote_id is not None:  # a fault that ran out (count, seconds) is already gone: 404 is fine
            admin_call("DELETE", f"{self._url()}/{self.remote_id}", what="clear venue fault", ok=(200, 204, 404))
        else:
            admin_call("DELETE", self._url(), what="clear every venue fault", ok=(200, 204))
