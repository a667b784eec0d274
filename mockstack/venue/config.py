"""Command-line flags of ``python -m mockstack.venue``; every flag also reads an environment variable.

The flag wins over the variable, the variable over the default. A bad value raises
:class:`ConfigError` whose one-line message names the flag or variable, the value and what is
accepted; ``__main__`` prints it and exits with status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NoReturn, TypeVar

from mockstack.common.universe import DEFAULT_SEED
from mockstack.venue.market import DEFAULT_MARKETS, Market, parse_market

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad flag or environment value; the message is the single stderr line."""


@dataclass(frozen=True)
class VenueConfig:
    host: str = "127.0.0.1"
    http_port: int = 7400
    state_db: Path = Path("venue-state.sqlite")
    seed: int = DEFAULT_SEED
    markets: tuple[Market, ...] = DEFAULT_MARKETS
    balances: tuple[tuple[str, Decimal], ...] = (("USDT", Decimal(10000)),)
    volatility: float = 0.0005
    history_seconds: int = 86400


@dataclass(frozen=True)
class _Option:
    flag: str
    env: str
    dest: str
    help: str


_OPTIONS = (
    _Option("--host", "VENUE_HOST", "host", "address to bind (default 127.0.0.1)"),
    _Option("--http-port", "VENUE_HTTP_PORT", "http_port", "HTTP port (default 7400; 0 = any free port)"),
    _Option(
        "--state-db", "VENUE_STATE_DB", "state_db", "SQLite file of orders/fills/balances (default venue-state.sqlite)"
    ),
    _Option("--seed", "MOCKSTACK_SEED", "seed", "seed of the price walk (default 42)"),
    _Option(
        "--markets",
        "VENUE_MARKETS",
        "markets",
        "comma-separated BASE/QUOTE:start_price (default BTC/USDT:60000,ETH/USDT:3000,SOL/USDT:150)",
    ),
    _Option("--balances", "VENUE_BALANCES", "balances", "opening balances ASSET:amount,... (default USDT:10000)"),
    _Option("--volatility", "VENUE_VOLATILITY", "volatility", "per-second volatility of the walk (default 0.0005)"),
    _Option(
        "--history-seconds",
        "VENUE_HISTORY_SECONDS",
        "history_seconds",
        "seconds of price history before the first start (default 86400)",
    ),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"venue: {message} (see --help)")


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        value = int(text.strip())
        if not low <= value <= high:
            raise ValueError
        return value

    return convert


def _host(text: str) -> str:
    value = text.strip()
    if not value or any(c.isspace() for c in value):
        raise ValueError
    return value


def _markets(text: str) -> tuple[Market, ...]:
    markets = tuple(parse_market(part) for part in text.split(",") if part.strip())
    if not markets or len({m.symbol for m in markets}) != len(markets):
        raise ValueError
    return markets


def _balances(text: str) -> tuple[tuple[str, Decimal], ...]:
    out = []
    for part in text.split(","):
        asset, sep, amount_text = part.strip().partition(":")
        try:
            amount = Decimal(amount_text)
        except InvalidOperation:
            raise ValueError from None
        if not (sep and asset.isalnum() and asset.isupper() and amount.is_finite() and amount >= 0):
            raise ValueError
        out.append((asset, amount))
    return tuple(out)


def _volatility(text: str) -> float:
    value = float(text.strip())
    if not (math.isfinite(value) and 0 < value < 0.5):
        raise ValueError
    return value


_ACCEPTED = {
    "host": "a host name or IP address without spaces",
    "http_port": "an integer port from 0 to 65535",
    "state_db": "a file path",
    "seed": "an integer",
    "markets": "comma-separated BASE/QUOTE:price with upper-case assets and a positive price, e.g. BTC/USDT:60000",
    "balances": "comma-separated ASSET:amount with amount >= 0, e.g. USDT:10000,BTC:0.5",
    "volatility": "a number greater than 0 and less than 0.5",
    "history_seconds": "an integer number of seconds from 60 to 2592000 (30 days)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mockstack-venue",
        description="Binance-spot-compatible venue: matching against a seeded price walk, balances, faults.",
    )
    for opt in _OPTIONS:
        parser.add_argument(opt.flag, dest=opt.dest, metavar="VALUE", help=f"{opt.help} [env {opt.env}]")
    return parser


def parse_config(argv: Sequence[str], environ: Mapping[str, str]) -> VenueConfig:
    """The configuration from flags, then environment variables, then defaults."""
    namespace = build_parser().parse_args(list(argv))
    by_dest = {opt.dest: opt for opt in _OPTIONS}
    defaults = VenueConfig()

    def value(dest: str, convert: Callable[[str], T], default: T) -> T:
        opt = by_dest[dest]
        raw: str | None = getattr(namespace, dest)
        source = opt.flag
        if raw is None:
            raw = environ.get(opt.env)
            source = opt.env
        if raw is None:
            return default
        try:
            return convert(raw)
        except (ValueError, OverflowError):
            raise ConfigError(f"venue: {source}={raw!r} is not valid; expected {_ACCEPTED[dest]}") from None

    return VenueConfig(
        host=value("host", _host, defaults.host),
        http_port=value("http_port", _int_in(0, 65535), defaults.http_port),
        state_db=value("state_db", lambda t: Path(t.strip()) if t.strip() else _fail(), defaults.state_db),
        seed=value("seed", _int_in(-(2**63), 2**63 - 1), defaults.seed),
        markets=value("markets", _markets, defaults.markets),
        balances=value("balances", _balances, defaults.balances),
        volatility=value("volatility", _volatility, defaults.volatility),
        history_seconds=value("history_seconds", _int_in(60, 30 * 86400), defaults.history_seconds),
    )


def _fail() -> Path:
    raise ValueError
