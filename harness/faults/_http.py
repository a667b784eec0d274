"""Admin HTTP calls for faults: explicit timeouts, every failure a FaultError naming the URL and reply."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import FaultError

if TYPE_CHECKING:
    pass

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class AdminReply:
    status: int
    body: object  # parsed JSON (None if empty or not JSON)
    text: str


def admin_call(
    method: str,
    url: str,
    *,
    body: dict[str, object] | None = None,
    timeout: float = TIMEOUT_S,
    what: str,
    ok: tuple[int, ...] = (200, 201),
) -> AdminReply:
    """One request; a status outside ``ok`` or a transport error raises :class:`FaultError`."""
    import requests

    try:
        response = requests.request(method, url, json=body, timeout=timeout)
    except requests.RequestException as exc:
        raise FaultError(
            f"{what}: {method} {url} got no answer ({type(exc).__name__})",
            hint="is the service running? `drill stack status` shows it",
        ) from exc
    text = response.text
    try:
        parsed: object = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    reply = AdminReply(response.status_code, parsed, text)
    if response.status_code not in ok:
        raise FaultError(
            f"{what}: {method} {url} answered HTTP {response.status_code}\n"
            f"  expected: HTTP {' or '.join(map(str, ok))}\n  observed: {text.strip()[:300]}",
            hint="the error names the field it did not accept; fix the fault's parameters",
        )
    return reply


def field(reply: AdminReply, name: str, what: str) -> object:
    if not isinstance(reply.body, dict) or name not in reply.body:
        raise FaultError(f"{what}: the reply has no {name!r} field: {reply.text.strip()[:300]}")
    return reply.body[name]
