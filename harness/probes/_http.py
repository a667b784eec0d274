"""HTTP for probes: explicit timeouts, transport errors returned as values (never raised, never hidden)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests


DEFAULT_TIMEOUT = 2.0


@dataclass(frozen=True)
class HttpReply:
    status: int
    text: str

    def health_summary(self) -> str:
        """A health reply as a person needs it: ``HTTP 503: failing checks: data_sla: violated; ...``.

        Every failing check of the stack contract's ``{"checks": {name: {"ok", "detail"}}}`` body is named
        in full (never cut); any other body is given whole.
        """
        return health_summary(self.status, self.text)

    def json(self) -> tuple[bool, object, str]:
        """``(ok, document, problem)``: the body parsed as JSON, or why it could not be."""
        try:
            return True, json.loads(self.text), ""
        except ValueError as exc:
            return False, None, f"HTTP {self.status} body is not JSON ({exc}): {self.text[:200]!r}"


def health_summary(status: int, text: str) -> str:
    """``HTTP <status>`` plus the failing checks of a contract health body, in full; else the whole body."""
    head = f"HTTP {status}"
    try:
        document = json.loads(text)
    except ValueError:
        return f"{head}: {text.strip()}" if text.strip() else head
    checks = document.get("checks") if isinstance(document, dict) else None
    if not isinstance(checks, dict):
        return f"{head}: {text.strip()}"
    failing = [
        f"{name}: {check.get('detail', '')}" if isinstance(check, dict) else f"{name}: {check!r}"
        for name, check in checks.items()
        if not (isinstance(check, dict) and check.get("ok") is True)
    ]
    if failing:
        return f"{head}: failing checks: {'; '.join(failing)}"
    live = document.get("live") if isinstance(document, dict) else None
    return f"{head}: every check ok" + ("" if live is not False else " but live is false")


@dataclass(frozen=True)
class Unreachable:
    url: str
    reason: str

    @property
    def observed(self) -> str:
        return f"unreachable: {self.url}: {self.reason}"


def http_get(
    url: str, *, timeout: float = DEFAULT_TIMEOUT, session: requests.Session | None = None,
    params: dict[str, str] | None = None,
) -> HttpReply | Unreachable:
    import requests

    getter = session.get if session is not None else requests.get
    try:
        response = getter(url, timeout=timeout, params=params)
    except requests.Timeout:
        return Unreachable(url, f"no answer within {timeout:g}s")
    except requests.ConnectionError as exc:
        return Unreachable(url, f"connection failed ({_root(exc)})")
    except requests.RequestException as exc:
        return Unreachable(url, f"{type(exc).__name__}: {exc}")
    return HttpReply(response.status_code, response.text)


def _root(exc: BaseException) -> str:
    if "refused" in str(exc).lower():
        return "connection refused"
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        nxt = seen.__cause__ or seen.__context__
        assert nxt is not None
        seen = nxt
    text = str(seen)
    if "Connection refused" in text or isinstance(seen, ConnectionRefusedError):
        return "connection refused"
    return f"{type(seen).__name__}: {text}"[:200]
