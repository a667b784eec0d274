"""HTTP client of the marketdata service (EODHD-like ``/api/symbols`` and ``/api/intraday``).

It returns the raw decoded JSON (``NaN`` literals included): validation is :mod:`quality`'s job,
never this module's. Network and HTTP errors become :class:`MarketDataError` naming the URL.
"""

from __future__ import annotations

import threading
from typing import Any

import requests


class MarketDataError(Exception):
    """The marketdata service could not be reached or answered with an error."""


class MarketDataClient:
    def __init__(self, base_url: str, timeout: float = 1.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._lock = threading.Lock()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        with self._lock:
            try:
                resp = self._session.get(url, params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                raise MarketDataError(f"GET {url} failed: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            raise MarketDataError(f"GET {url} answered HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            return resp.json()
        except ValueError as exc:
            raise MarketDataError(f"GET {url} did not answer JSON: {exc}") from exc

    def symbols(self) -> list[str]:
        data = self._get("/api/symbols")
        if not isinstance(data, list):
            raise MarketDataError(f"{self.base_url}/api/symbols: expected a list, got {type(data).__name__}")
        return [str(item["symbol"]) for item in data if isinstance(item, dict) and "symbol" in item]

    def intraday(self, symbol: str, from_ts: int | None = None) -> list[Any]:
        params: dict[str, Any] = {"interval": "5m"}
        if from_ts is not None:
            params["from"] = int(from_ts)
        data = self._get(f"/api/intraday/{symbol}", params)
        if not isinstance(data, list):
            raise MarketDataError(f"/api/intraday/{symbol}: expected a list of bars, got {type(data).__name__}")
        return data

    def close(self) -> None:
        self._session.close()
