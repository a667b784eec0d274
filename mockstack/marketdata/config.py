"""Command-line flags of ``python -m mockstack.marketdata``; every flag also reads an environment variable.

The flag wins over the variable, the variable over the default. A bad value raises
:class:`ConfigError` whose message is one line naming the flag or variable, the value, and what is
accepted; ``__main__`` prints it and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TypeVar

from mockstack.common.universe import DEFAULT_COUNT, DEFAULT_SEED

T = TypeVar("T")

DEFAULT_START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
MAX_SYMBOLS = 100
MAX_HISTORY_BARS = 1_000_000


class ConfigError(ValueError):
    """A bad flag or environment value; the message is the single stderr line."""


@dataclass(frozen=True)
class MarketdataConfig:
    host: str = "127.0.0.1"
    http_port: int = 7200
    seed: int = DEFAULT_SEED
    symbols: int = DEFAULT_COUNT
    bar_interval_ms: int = 200
    start: datetime = DEFAULT_START
    history_bars: int = 50
    volatility: float = 0.001
    anchor_file: Path | None = None  # where the feed's first start is kept, so a restart carries on from there


@dataclass(frozen=True)
class _Option:
    flag: str
    env: str
    dest: str
    help: str


_OPTIONS = (
    _Option("--host", "MARKETDATA_HOST", "host", "address to bind (default 127.0.0.1)"),
    _Option("--http-port", "MARKETDATA_HTTP_PORT", "http_port", "HTTP port (default 7200; 0 = any free port)"),
    _Option("--seed", "MOCKSTACK_SEED", "seed", "seed of the universe and the random walk (default 42)"),
    _Option("--symbols", "MOCKSTACK_SYMBOLS", "symbols", "number of instruments (default 8)"),
    _Option(
        "--bar-interval-ms",
        "MARKETDATA_BAR_INTERVAL_MS",
        "bar_interval_ms",
        "real milliseconds per published 5-minute bar (default 200)",
    ),
    _Option("--start", "MARKETDATA_START", "start", "simulated time of the first bar (default 2026-01-05T14:30:00Z)"),
    _Option(
        "--history-bars", "MARKETDATA_HISTORY_BARS", "history_bars", "bars already published at start (default 50)"
    ),
    _Option("--volatility", "MARKETDATA_VOLATILITY", "volatility", "per-bar volatility of the walk (default 0.001)"),
    _Option(
        "--anchor-file",
        "MARKETDATA_ANCHOR_FILE",
        "anchor_file",
        "file keeping the wall-clock time of the feed's first start; a restarted feed carries on from it instead "
        "of replaying its history from the first bar (default: none, every start is a first start)",
    ),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"marketdata: {message} (see --help)")


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


def _start(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _path(text: str) -> Path:
    if not text.strip():
        raise ValueError
    return Path(text.strip())


def _volatility(text: str) -> float:
    value = float(text.strip())
    if not (math.isfinite(value) and 0 < value < 0.5):
        raise ValueError
    return value


_ACCEPTED = {
    "host": "a host name or IP address without spaces",
    "http_port": "an integer port from 0 to 65535",
    "seed": "an integer",
    "symbols": f"an integer from 1 to {MAX_SYMBOLS}",
    "bar_interval_ms": "an integer number of milliseconds, at least 1",
    "start": "an ISO-8601 time such as 2026-01-05T14:30:00Z (no zone = UTC)",
    "history_bars": f"an integer from 0 to {MAX_HISTORY_BARS}",
    "volatility": "a number greater than 0 and less than 0.5",
    "anchor_file": "a file path (written at the first start)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m mockstack.marketdata",
        description="Mock EODHD-like market data: M5 bars from a seeded random walk on a compressed clock.",
    )
    for opt in _OPTIONS:
        parser.add_argument(opt.flag, dest=opt.dest, metavar="VALUE", help=f"{opt.help} [env {opt.env}]")
    return parser


def parse_config(argv: Sequence[str], environ: Mapping[str, str]) -> MarketdataConfig:
    """The configuration from flags, then environment variables, then defaults."""
    namespace = build_parser().parse_args(list(argv))
    by_dest = {opt.dest: opt for opt in _OPTIONS}
    defaults = MarketdataConfig()

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
            raise ConfigError(f"marketdata: {source}={raw!r} is not valid; expected {_ACCEPTED[dest]}") from None

    return MarketdataConfig(
        host=value("host", _host, defaults.host),
        http_port=value("http_port", _int_in(0, 65535), defaults.http_port),
        seed=value("seed", _int_in(-(2**63), 2**63 - 1), defaults.seed),
        symbols=value("symbols", _int_in(1, MAX_SYMBOLS), defaults.symbols),
        bar_interval_ms=value("bar_interval_ms", _int_in(1, 86_400_000), defaults.bar_interval_ms),
        start=value("start", _start, defaults.start),
        history_bars=value("history_bars", _int_in(0, MAX_HISTORY_BARS), defaults.history_bars),
        volatility=value("volatility", _volatility, defaults.volatility),
        anchor_file=value("anchor_file", _path, defaults.anchor_file),
    )


def feed_age(anchor_file: Path, wall_clock: Callable[[], float]) -> float:
    """Real seconds since the feed first started with ``anchor_file`` (0.0 the first time, which writes it).

    A vendor's feed does not rewind when one of its servers restarts: with an anchor file a restarted feed
    (a crash, a pod rescheduled on another node) publishes the bars due by now, carrying on where the old
    process would be, instead of starting again from ``--history-bars`` with timestamps the clients already
    have (which they rightly see as a stale feed).
    """
    try:
        started_at = float(json.loads(anchor_file.read_text(encoding="utf-8"))["started_at"])
    except FileNotFoundError:
        try:
            anchor_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = anchor_file.with_name(f".{anchor_file.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"started_at": wall_clock()}), encoding="utf-8")
            tmp.replace(anchor_file)
        except OSError as exc:
            raise ConfigError(f"marketdata: anchor file {anchor_file} cannot be written ({exc.strerror or exc}); "
                              "give --anchor-file a writable path") from None
        return 0.0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"marketdata: anchor file {anchor_file} cannot be read ({type(exc).__name__}: {exc}); "
            "delete it to start the feed from its first bar, or give --anchor-file another path"
        ) from None
    if not math.isfinite(started_at):
        raise ConfigError(f"marketdata: anchor file {anchor_file}: started_at is {started_at}; delete the file")
    return max(0.0, wall_clock() - started_at)
