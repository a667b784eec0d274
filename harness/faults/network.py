"""Network faults on a stack link, through Toxiproxy (``backend.link(name).proxy_name``).

* :class:`LinkDown`: the proxy is disabled: it stops listening and drops every connection (a
  broker disconnect). Rollback enables it.
* :class:`Toxic`: one Toxiproxy toxic on one direction of the link, with validated parameters.
  ``jitter`` is a ``latency`` toxic whose ``jitter`` attribute is set. Rollback removes exactly
  the toxic this fault added (its name carries the fault id).

Only :mod:`harness.toxiproxy` talks to Toxiproxy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from harness.errors import InputError
from harness.faults.base import Fault, FaultContext, Params, ParamValue, check_choice, check_range

if TYPE_CHECKING:
    from harness.backends.base import Backend

MAX_MS = 3_600_000  # one hour


class LinkDown(Fault):
    kind = "link_down"

    def __init__(self, backend: Backend, link: str, *, ctx: FaultContext | None = None,
                 fault_id: str | None = None) -> None:
        super().__init__(backend, ctx=ctx, fault_id=fault_id)
        self.link = link

    @property
    def target(self) -> str:
        return f"link {self.link}"

    @property
    def action(self) -> str:
        return "disconnect (proxy disabled: connections dropped and refused)"

    @property
    def expected_effect(self) -> str:
        return f"clients of link {self.link} lose their connection and cannot reconnect until it is restored"

    def params(self) -> dict[str, ParamValue]:
        return {"link": self.link}

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, params.text("link"), ctx=ctx, fault_id=fault_id)

    def _inject(self) -> None:
        self.backend.toxiproxy.set_enabled(self.backend.link(self.link).proxy_name, False)

    def _rollback(self) -> str | None:
        proxy = self.backend.link(self.link).proxy_name
        was_enabled = self.backend.toxiproxy.proxy(proxy).enabled
        self.backend.toxiproxy.set_enabled(proxy, True)
        if was_enabled:
            return f"proxy {proxy} was already enabled (Toxiproxy restarted, or something enabled it)"
        return None


@dataclass(frozen=True)
class Attr:
    lo: int
    hi: int
    unit: str
    default: int | None  # None = required
    meaning: str


@dataclass(frozen=True)
class ToxicSpec:
    toxiproxy_type: str
    attrs: Mapping[str, Attr]
    effect: str


_LATENCY = Attr(0, MAX_MS, "ms", None, "delay added to each chunk of data")
TOXICS: dict[str, ToxicSpec] = {
    "latency": ToxicSpec(
        "latency",
        {"latency": _LATENCY, "jitter": Attr(0, MAX_MS, "ms", 0, "random +/- variation of the delay")},
        "every message on the link arrives {latency} ms late",
    ),
    "jitter": ToxicSpec(
        "latency",
        {"jitter": Attr(1, MAX_MS, "ms", None, "random +/- variation of the delay"),
         "latency": Attr(0, MAX_MS, "ms", -1, "base delay (default: equal to jitter)")},
        "delays on the link vary by +/- {jitter} ms around {latency} ms",
    ),
    "timeout": ToxicSpec(
        "timeout",
        {"timeout": Attr(0, MAX_MS, "ms", 0, "close the connection after this long (0 = never: data just stops)")},
        "data stops flowing on the link (connections stall; closed after {timeout} ms if > 0)",
    ),
    "reset_peer": ToxicSpec(
        "reset_peer",
        {"timeout": Attr(0, MAX_MS, "ms", 0, "reset after this long (0 = at once)")},
        "connections on the link are reset (TCP RST) after {timeout} ms",
    ),
    "bandwidth": ToxicSpec(
        "bandwidth",
        {"rate": Attr(0, 10_000_000, "KB/s", None, "throughput limit")},
        "the link carries at most {rate} KB/s",
    ),
    "slicer": ToxicSpec(
        "slicer",
        {"average_size": Attr(1, 1_048_576, "bytes", None, "average packet size"),
         "size_variation": Attr(0, 1_048_576, "bytes", 0, "variation of the packet size (< average_size)"),
         "delay": Attr(0, 60_000_000, "us", 0, "delay between packets")},
        "data on the link is cut into ~{average_size}-byte pieces ({delay} us apart)",
    ),
    "limit_data": ToxicSpec(
        "limit_data",
        {"bytes": Attr(0, 2**40, "bytes", None, "bytes passed before the connection is closed")},
        "each connection on the link is closed after {bytes} bytes",
    ),
    "slow_close": ToxicSpec(
        "slow_close",
        {"delay": Attr(0, MAX_MS, "ms", None, "delay before the close reaches the other side")},
        "closing a connection on the link takes {delay} ms to reach the other side",
    ),
}


def validate_toxic(toxic: str, attributes: Mapping[str, int | float], stream: str, toxicity: float) -> dict[str, int]:
    """Checked Toxiproxy attributes (defaults filled in); :class:`InputError` naming any bad parameter."""
    spec = TOXICS.get(toxic)
    if spec is None:
        raise InputError(f"unknown toxic {toxic!r}", hint=f"use one of: {', '.join(TOXICS)}")
    from harness.toxiproxy import STREAMS  # the Toxiproxy client (and requests) only once a fault is built

    check_choice("stream", stream, STREAMS)
    check_range("toxicity", toxicity, 0.0, 1.0, "(probability)")
    unknown = sorted(set(attributes) - set(spec.attrs))
    if unknown:
        accepted = ", ".join(f"{n} ({a.unit}, {a.lo}..{a.hi})" for n, a in spec.attrs.items())
        raise InputError(f"{toxic} toxic has no parameter {', '.join(unknown)}", hint=f"accepted: {accepted}")
    checked: dict[str, int] = {}
    for name, attr in spec.attrs.items():
        if name in attributes:
            value = attributes[name]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not attr.lo <= value <= attr.hi:
                raise InputError(
                    f"{toxic} toxic: {name} must be a whole number in [{attr.lo}, {attr.hi}] {attr.unit}; "
                    f"got {value!r}",
                    hint=f"{name}: {attr.meaning}",
                )
            checked[name] = value
        elif attr.default is None:
            raise InputError(
                f"{toxic} toxic needs {name} ({attr.unit}, {attr.lo}..{attr.hi})", hint=f"{name}: {attr.meaning}"
            )
        elif attr.default >= 0:
            checked[name] = attr.default
    if toxic == "jitter" and "latency" not in checked:
        checked["latency"] = checked["jitter"]
    if toxic == "slicer" and checked["size_variation"] >= checked["average_size"]:
        raise InputError(
            f"slicer toxic: size_variation ({checked['size_variation']}) must be smaller than "
            f"average_size ({checked['average_size']})"
        )
    return checked


class Toxic(Fault):
    """One toxic (latency, jitter, timeout, reset_peer, bandwidth, slicer, limit_data, slow_close) on a link.

    ``Toxic(backend, "broker", "latency", latency=500, stream="downstream")``. Parameters are checked
    when the fault is built: an unknown or out-of-range one names itself and the accepted range.
    """

    kind = "toxic"

    def __init__(
        self,
        backend: Backend,
        link: str,
        toxic: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        ctx: FaultContext | None = None,
        fault_id: str | None = None,
        **attributes: int | float,
    ) -> None:
        super().__init__(backend, ctx=ctx, fault_id=fault_id)
        self.link = link
        self.toxic = toxic
        self.stream = stream
        self.toxicity = float(toxicity)
        self.attributes = validate_toxic(toxic, attributes, stream, self.toxicity)

    @property
    def toxic_name(self) -> str:
        return f"drill_{self.fault_id}"

    @property
    def target(self) -> str:
        return f"link {self.link} ({self.stream})"

    @property
    def action(self) -> str:
        attrs = ", ".join(f"{k}={v}" for k, v in self.attributes.items())
        chance = "" if self.toxicity >= 1.0 else f", toxicity {self.toxicity:g}"
        return f"{self.toxic} toxic ({attrs}{chance})"

    @property
    def expected_effect(self) -> str:
        return TOXICS[self.toxic].effect.format(**self.attributes)

    def params(self) -> dict[str, ParamValue]:
        return {"link": self.link, "toxic": self.toxic, "stream": self.stream, "toxicity": self.toxicity,
                **self.attributes}

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        attrs = {k: params.number(k) for k in params.values if k not in ("link", "toxic", "stream", "toxicity")}
        return cls(backend, params.text("link"), params.text("toxic"), stream=params.text("stream"),
                   toxicity=params.number("toxicity"), ctx=ctx, fault_id=fault_id, **attrs)

    def _inject(self) -> None:
        proxy = self.backend.link(self.link).proxy_name
        self.backend.toxiproxy.add_toxic(
            proxy, self.toxic_name, TOXICS[self.toxic].toxiproxy_type, stream=self.stream,
            toxicity=self.toxicity, attributes=dict(self.attributes),
        )

    def _rollback(self) -> str | None:
        proxy = self.backend.link(self.link).proxy_name
        if self.backend.toxiproxy.remove_toxic(proxy, self.toxic_name, missing_ok=True):
            return None
        return f"toxic {self.toxic_name} was no longer on proxy {proxy} (Toxiproxy restarted, or something removed it)"


def latency(backend: Backend, link: str, ms: int, *, jitter_ms: int = 0, stream: str = "downstream",
            ctx: FaultContext | None = None) -> Toxic:
    return Toxic(backend, link, "latency", latency=ms, jitter=jitter_ms, stream=stream, ctx=ctx)
