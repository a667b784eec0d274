"""Command-line flags and their environment variables (the flag wins), validated into BrokerConfig.

A bad value raises :class:`ConfigError` whose message is one line naming the flag and variable,
the bad value and what is accepted; ``__main__`` prints it to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

MAX_SYMBOLS = 200


class ConfigError(Exception):
    """A flag or environment value that cannot be used."""


@dataclass(frozen=True)
class BrokerConfig:
    host: str = "127.0.0.1"
    order_port: int = 7100
    http_port: int = 7101
    state_db: Path = Path("broker.sqlite3")
    seed: int = 42
    symbols: int = 8
    heartbeat_interval: float = 0.5
    fill_latency_ms: float = 50.0
    partial_fill_ratio: float = 0.5
    max_order_qty: int = 1000
    max_orders_per_second: int = 50
    reject_rate: float = 0.0
    cancel_on_disconnect: bool = True


@dataclass(frozen=True)
class _Option:
    flag: str
    env: str
    attr: str
    parse: Callable[[str], object]
    accepted: str


def _int(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.strip())
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(text)
        return value

    return parse


def _float(lo: float, hi: float | None = None, lo_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text.strip())
        if not math.isfinite(value) or value < lo or (lo_open and value == lo) or (hi is not None and value > hi):
            raise ValueError(text)
        return value

    return parse


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError(text)
    return text.strip()


def _path(text: str) -> Path:
    if not text.strip():
        raise ValueError(text)
    return Path(text)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(text)


OPTIONS: tuple[_Option, ...] = (
    _Option("--host", "BROKER_HOST", "host", _text, "a host name or IP address to bind"),
    _Option("--order-port", "BROKER_ORDER_PORT", "order_port", _int(0, 65535), "an integer port 0..65535"),
    _Option("--http-port", "BROKER_HTTP_PORT", "http_port", _int(0, 65535), "an integer port 0..65535"),
    _Option("--state-db", "BROKER_STATE_DB", "state_db", _path, "a path to the SQLite state file"),
    _Option("--seed", "MOCKSTACK_SEED", "seed", _int(), "an integer"),
    _Option("--symbols", "MOCKSTACK_SYMBOLS", "symbols", _int(1, MAX_SYMBOLS), f"an integer 1..{MAX_SYMBOLS}"),
    _Option(
        "--heartbeat-interval",
        "BROKER_HEARTBEAT_INTERVAL",
        "heartbeat_interval",
        _float(0.0, 3600.0, lo_open=True),
        "seconds, a number > 0 and <= 3600",
    ),
    _Option(
        "--fill-latency-ms",
        "BROKER_FILL_LATENCY_MS",
        "fill_latency_ms",
        _float(0.0, 3_600_000.0),
        "milliseconds, a number >= 0",
    ),
    _Option(
        "--partial-fill-ratio",
        "BROKER_PARTIAL_FILL_RATIO",
        "partial_fill_ratio",
        _float(0.0, 1.0),
        "a number 0..1 (0 or 1 = no partial fills)",
    ),
    _Option("--max-order-qty", "BROKER_MAX_ORDER_QTY", "max_order_qty", _int(1), "an integer >= 1"),
    _Option(
        "--max-orders-per-second", "BROKER_MAX_ORDERS_PER_SECOND", "max_orders_per_second", _int(1), "an integer >= 1"
    ),
    _Option("--reject-rate", "BROKER_REJECT_RATE", "reject_rate", _float(0.0, 1.0), "a number 0..1"),
)
CANCEL_ENV = "BROKER_CANCEL_ON_DISCONNECT"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mockstack-broker",
        description="Mock IBKR-like broker: JSON-lines order gateway over TCP plus an admin HTTP API.",
    )
    for opt in OPTIONS:
        default = getattr(BrokerConfig(), opt.attr)
        parser.add_argument(
            opt.flag,
            dest=opt.attr,
            default=None,
            metavar=opt.env,
            help=f"{opt.accepted} (env {opt.env}, default {default})",
        )
    parser.add_argument(
        "--cancel-on-disconnect",
        dest="cancel_on_disconnect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"cancel a session's working orders when its connection drops (env {CANCEL_ENV}, default on)",
    )
    return parser


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> BrokerConfig:
    env = os.environ if environ is None else environ
    ns = build_parser().parse_args(argv)
    values: dict[str, object] = {}
    for opt in OPTIONS:
        raw: str | None = getattr(ns, opt.attr)
        source = opt.flag
        if raw is None and opt.env in env:
            raw, source = env[opt.env], opt.env
        if raw is None:
            continue
        try:
            values[opt.attr] = opt.parse(raw)
        except ValueError:
            raise ConfigError(
                f"{opt.flag} / {opt.env}: bad value {raw!r} (from {source}); expected {opt.accepted}"
            ) from None
    if ns.cancel_on_disconnect is not None:
        values["cancel_on_disconnect"] = bool(ns.cancel_on_disconnect)
    elif CANCEL_ENV in env:
        try:
            values["cancel_on_disconnect"] = _bool(env[CANCEL_ENV])
        except ValueError:
            raise ConfigError(
                f"--cancel-on-disconnect / {CANCEL_ENV}: bad value {env[CANCEL_ENV]!r} (from {CANCEL_ENV}); "
                "expected one of 1/0, true/false, yes/no, on/off"
            ) from None
    return BrokerConfig(**values)  # type: ignore[arg-type]
