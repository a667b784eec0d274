"""A fake ``requests`` session for probe unit tests: canned replies per URL, no network."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "api"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


@dataclass
class FakeResponse:
    status_code: int
    text: str


@dataclass
class FakeSession:
    """``replies[url]`` is a FakeResponse, an exception to raise, or a list consumed one per call."""

    replies: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def reply(self, url: str, status: int = 200, body: Any = None, text: str | None = None) -> None:
        self.replies[url] = FakeResponse(status, text if text is not None else json.dumps(body))

    def get(self, url: str, *, timeout: float, params: dict[str, str] | None = None) -> FakeResponse:
        assert timeout > 0, "every HTTP call needs an explicit timeout"
        self.requests.append((url, dict(params or {})))
        answer = self.replies[url]
        if isinstance(answer, list):
            answer = answer.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]


REFUSED = requests.ConnectionError(
    "HTTPConnectionPool(host='127.0.0.1', port=9093): Max retries exceeded with url: /api/v2/alerts "
    "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))"
)


class FakeAdmin:
    """Stands in for ``requests.request`` in harness.faults._http: a tiny model of the admin APIs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.feed_faults: dict[str, dict[str, Any]] = {}
        self.positions: dict[str, int] = {}
        self.settings: dict[str, float] = {"rate": 0.0, "ms": 50}
        self.down = False
        self.lose_reply_once = False

    def __call__(self, method: str, url: str, *, json: Any = None, timeout: float) -> FakeResponse:
        import json as jsonlib

        assert timeout > 0
        assert url.startswith("http://127.0.0.1:"), "loopback only"
        self.calls.append((method, url.split(":", 2)[2].split("/", 1)[1], json))
        if self.down:
            raise requests.ConnectionError("[Errno 111] Connection refused")
        path = "/" + url.split("/", 3)[3]
        status, body = self.handle(method, path, json)
        if self.lose_reply_once:
            self.lose_reply_once = False
            raise requests.ReadTimeout("read timed out")
        return FakeResponse(status, jsonlib.dumps(body))

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if path == "/admin/faults" and method == "POST":
            if body.get("kind") == "bogus":
                return 400, {"error": "unknown fault kind 'bogus'", "field": "kind"}
            fid = f"f{len(self.feed_faults) + 1}"
            self.feed_faults[fid] = {"id": fid, "symbol": None, **body}
            return 201, self.feed_faults[fid]
        if path == "/admin/faults" and method == "GET":
            return 200, {"faults": list(self.feed_faults.values())}
        if path.startswith("/admin/faults/") and method == "DELETE":
            fid = path.rsplit("/", 1)[1]
            if fid not in self.feed_faults:
                return 404, {"error": f"no fault {fid}"}
            return 200, {"cleared": [self.feed_faults.pop(fid)]}
        if path == "/admin/positions" and method == "POST":
            self.positions[body["symbol"]] = self.positions.get(body["symbol"], 0) + body["qty"]
            return 200, {"positions": self.positions}
        if path.startswith("/admin/positions/") and method == "DELETE":
            symbol = path.rsplit("/", 1)[1]
            if symbol not in self.positions:
                return 404, {"error": f"no injected position for {symbol}"}
            del self.positions[symbol]
            return 200, {"positions": self.positions}
        if path in ("/admin/reject-rate", "/admin/fill-latency") and method == "POST":
            key = "rate" if path.endswith("rate") else "ms"
            previous, self.settings[key] = self.settings[key], body[key]
            return 200, {key: body[key], "previous": previous}
        if path == "/api/symbols":
            return 200, [{"symbol": "KQZ", "name": "Kqz Corp", "start_price": 101.5}]
        return 404, {"error": "not found"}
