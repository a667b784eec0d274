"""The one adapter between the harness and Toxiproxy (client library ``toxiproxy-python``).

The library keeps the server's host and port in *class attributes* of ``APIConsumer`` and calls
``requests`` without timeouts. Both are contained here: every call takes a process-wide lock,
points ``APIConsumer`` at *this* adapter's server for the duration of the call, and passes an
explicit timeout. That lets several stacks (each with its own Toxiproxy) run side by side.
Library and transport errors become :class:`~harness.errors.ToxiproxyError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.errors import ToxiproxyError

T = TypeVar("T")

TOXIC_TYPES = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data")
STREAMS = ("upstream", "downstream")

_LOCK = threading.RLock()


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int | float] = field(default_factory=dict)


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()


class ToxiproxyAdapter:
    """Talks to one Toxiproxy server at ``host:port``."""

    def __init__(self, host: str, port: int, timeout: float = 3.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @contextmanager
    def _bound(self) -> Iterator[None]:
        with _LOCK:
            saved = (APIConsumer.host, APIConsumer.port)
            APIConsumer.host, APIConsumer.port = self.host, self.port
            try:
                yield
            finally:
                APIConsumer.host, APIConsumer.port = saved

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            with self._bound():
                return fn()
        except NotFound as exc:
            raise ToxiproxyError(f"{what}: not found on Toxiproxy {self.url}: {_text(exc)}") from exc
        except ProxyExists as exc:
            raise ToxiproxyError(f"{what}: already exists on Toxiproxy {self.url}: {_text(exc)}") from exc
        except InvalidToxic as exc:
            raise ToxiproxyError(f"{what}: Toxiproxy rejected it: {_text(exc)}") from exc
        except requests.RequestException as exc:
            raise ToxiproxyError(
                f"{what}: Toxiproxy at {self.url} did not answer ({type(exc).__name__})",
                hint="is toxiproxy-server running? `drill stack status` shows the stack's processes",
            ) from exc

    def _checked(self, response: requests.Response, what: str) -> Any:
        if response.status_code >= 400:
            raise ToxiproxyError(f"{what}: Toxiproxy answered HTTP {response.status_code}: {response.text.strip()}")
        return response.json() if response.content else None

    def version(self) -> str:
        resp = self._call("version", lambda: APIConsumer.get("/version", timeout=self.timeout))
        return str(resp.text).strip()

    def ping(self) -> bool:
        try:
            self.version()
        except ToxiproxyError:
            return False
        return True

    def create_proxy(self, name: str, listen: str, upstream: str) -> Proxy:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
        data = self._checked(
            self._call(f"create proxy {name}", lambda: APIConsumer.post("/proxies", json=body, timeout=self.timeout)),
            f"create proxy {name}",
        )
        return _proxy(data)

    def proxy(self, name: str) -> Proxy:
        data = self._checked(
            self._call(f"proxy {name}", lambda: APIConsumer.get(f"/proxies/{name}", timeout=self.timeout)),
            f"proxy {name}",
        )
        return _proxy(data)

    def proxies(self) -> dict[str, Proxy]:
        data = self._checked(
            self._call("list proxies", lambda: APIConsumer.get("/proxies", timeout=self.timeout)), "list proxies"
        )
        return {name: _proxy(p) for name, p in (data or {}).items()}

    def delete_proxy(self, name: str) -> None:
        self._call(f"delete proxy {name}", lambda: APIConsumer.delete(f"/proxies/{name}", timeout=self.timeout))

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Disable = the proxy stops listening and drops every connection (a link that is down)."""
        self._checked(
            self._call(
                f"{'enable' if enabled else 'disable'} proxy {name}",
                lambda: APIConsumer.post(f"/proxies/{name}", json={"enabled": enabled}, timeout=self.timeout),
            ),
            f"set enabled={enabled} on {name}",
        )

    def add_toxic(
        self,
        proxy: str,
        name: str,
        type: str,  # noqa: A002 - Toxiproxy's own word
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, int | float] | None = None,
    ) -> Toxic:
        if type not in TOXIC_TYPES:
            raise ToxiproxyError(f"unknown toxic type {type!r}", hint=f"use one of: {', '.join(TOXIC_TYPES)}")
        if stream not in STREAMS:
            raise ToxiproxyError(f"unknown stream {stream!r}", hint="use upstream or downstream")
        body = {"name": name, "type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes or {}}
        data = self._checked(
            self._call(
                f"add toxic {name} to {proxy}",
                lambda: APIConsumer.post(f"/proxies/{proxy}/toxics", json=body, timeout=self.timeout),
            ),
            f"add toxic {name} to {proxy}",
        )
        return _toxic(data)

    def remove_toxic(self, proxy: str, name: str, *, missing_ok: bool = True) -> bool:
        """True when the toxic was removed, False when it was not there (``missing_ok``)."""
        try:
            self._call(
                f"remove toxic {name} from {proxy}",
                lambda: APIConsumer.delete(f"/proxies/{proxy}/toxics/{name}", timeout=self.timeout),
            )
        except ToxiproxyError:
            if not missing_ok:
                raise
            if name in {t.name for t in self.proxy(proxy).toxics}:
                raise
            return False
        return True

    def reset(self) -> None:
        """Enable every proxy and remove every toxic (what ``drill cleanup`` does first)."""
        self._checked(self._call("reset", lambda: APIConsumer.post("/reset", timeout=self.timeout)), "reset")


def _text(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else ""
    return arg.decode(errors="replace").strip() if isinstance(arg, bytes) else str(arg)


def _toxic(data: dict[str, Any]) -> Toxic:
    return Toxic(
        name=str(data["name"]),
        type=str(data["type"]),
        stream=str(data.get("stream", "downstream")),
        toxicity=float(data.get("toxicity", 1.0)),
        attributes=dict(data.get("attributes") or {}),
    )


def _proxy(data: dict[str, Any]) -> Proxy:
    return Proxy(
        name=str(data["name"]),
        listen=str(data["listen"]),
        upstream=str(data["upstream"]),
        enabled=bool(data.get("enabled", True)),
        toxics=tuple(_toxic(t) for t in data.get("toxics") or ()),
    )
