"""traderunner configuration: ``configs/risk.yml`` and ``configs/strategy.yml``.

Both files are parsed once, at start, into frozen dataclasses. A missing file is written with the
defaults below (and the defaults are then what runs). A malformed file is never replaced by a
silent default: :class:`ConfigError` names the file, the YAML line or the field, what was found and
how to fix it; the service prints it and exits 2.

Why the defaults are what they are (marketdata defaults: 8 symbols priced 20-400, one bar every
200 ms, volatility 0.001 per bar):

* ``base_qty: 10`` units per symbol (plus ``base_qty // 5`` = 2 more while fast SMA > slow SMA)
  keeps a long book of roughly 15-18k currency units on the default universe (sum of prices
  ~1,500), so "a few positions are open" from the first seconds.
* ``max_daily_loss: 1000`` is ~6 % of that book. A ``shock`` of -8 % on every symbol loses
  ~1,200-1,450, which breaches it unless the walk had already gained > ~1.5-2.5 % that day.
  An undisturbed walk moves one symbol ~0.1 % per bar, i.e. ~9.5 % (1 sigma) in 30 minutes, but the
  8 independent symbols diversify the book to ~4 % (1 sigma) in 30 minutes. Measured with
  ``bench/bench_traderunner.py --simulate`` (100 seeded walks, this strategy): the walk alone trips
  it in 0/100 runs within 10 minutes and 6/100 within 30 minutes; the shock trips it in 100/100
  runs when it lands at minute 1, 92/100 at minute 5, 82/100 at minute 15. The margin cannot be
  much wider: per-symbol walk variance over 30 minutes exceeds the shock itself, so any limit low
  enough for the shock is reachable by a long enough walk (the daily reset is at UTC midnight).
* ``max_position: 50`` units: well above the strategy's 12, so it only stops a runaway.
* ``max_orders_per_minute: 120``: the SMA(10)/SMA(40) add-on (with its hysteresis band) trades
  ~50 orders/minute on 8 symbols; 120 leaves room and still stops a loop that sends orders on every bar.
* ``allow_risk_reducing_when_killed: false``: once killed, nothing is sent (drills assert that).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

RISK_FILE = Path("configs/risk.yml")
STRATEGY_FILE = Path("configs/strategy.yml")


class ConfigError(Exception):
    """A configuration file is unreadable or invalid; the message says where and how to fix it."""


@dataclass(frozen=True)
class RiskConfig:
    max_daily_loss: float = 1000.0
    max_position: int = 50
    max_orders_per_minute: int = 120
    allow_risk_reducing_when_killed: bool = False


@dataclass(frozen=True)
class StrategyConfig:
    symbols: int | tuple[str, ...] = 8
    base_qty: int = 10
    fast: int = 10
    slow: int = 40

    @property
    def add_qty(self) -> int:
        """Extra units held while the fast SMA is above the slow one (small: it doubles variance otherwise)."""
        return max(1, self.base_qty // 5)


@dataclass(frozen=True)
class Configs:
    risk: RiskConfig
    strategy: StrategyConfig


RISK_DEFAULT_TEXT = """\
# traderunner risk limits (read once at start; restart traderunner after editing).
# max_daily_loss: kill switch trips when daily P&L (realized + unrealized) <= -this (currency units).
max_daily_loss: 1000.0
# max_position: largest absolute position per symbol, in units.
max_position: 50
# max_orders_per_minute: orders beyond this in any 60 s window are blocked.
max_orders_per_minute: 120
# allow_risk_reducing_when_killed: let position-reducing orders through while the kill switch is active.
allow_risk_reducing_when_killed: false
"""

STRATEGY_DEFAULT_TEXT = """\
# traderunner strategy (read once at start; restart traderunner after editing).
# symbols: how many of marketdata's /api/symbols to trade (a count), or a list of tickers.
symbols: 8
# base_qty: long units always held per symbol; base_qty // 5 more while SMA(fast) > SMA(slow).
base_qty: 10
fast: 10
slow: 40
"""


def _positive_number(path: Path, name: str, value: Any, integer: bool) -> float | int:
    kind = "a positive integer" if integer else "a positive number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise ConfigError(
            f"{path}: field '{name}' must be {kind}, got {value!r} ({type(value).__name__}); "
            f"fix: set e.g. '{name}: {10 if integer else 1000.0}'"
        )
    if value != value or value <= 0:  # NaN or not positive
        raise ConfigError(f"{path}: field '{name}' must be {kind} (> 0), got {value!r}; fix: use a value above 0")
    return value


def _load_mapping(path: Path, default_text: str) -> dict[str, Any]:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(default_text, encoding="utf-8")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc}); fix: make it a readable UTF-8 YAML file") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{path}:{where}: malformed YAML ({problem}); fix the syntax there, or delete the file "
            "to have traderunner write the defaults"
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of 'field: value' lines, got {type(data).__name__}; "
            "fix: write one 'field: value' per line"
        )
    return data


def _check_unknown(path: Path, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{path}: unknown field '{unknown[0]}'; accepted fields: {', '.join(sorted(allowed))} "
            "(fix the spelling or remove it)"
        )


def parse_risk(path: Path, data: dict[str, Any]) -> RiskConfig:
    allowed = {f.name for f in fields(RiskConfig)}
    _check_unknown(path, data, allowed)
    d = RiskConfig()
    flag = data.get("allow_risk_reducing_when_killed", d.allow_risk_reducing_when_killed)
    if not isinstance(flag, bool):
        raise ConfigError(
            f"{path}: field 'allow_risk_reducing_when_killed' must be true or false, got {flag!r}; "
            "fix: write 'allow_risk_reducing_when_killed: false'"
        )
    return RiskConfig(
        max_daily_loss=float(
            _positive_number(path, "max_daily_loss", data.get("max_daily_loss", d.max_daily_loss), integer=False)
        ),
        max_position=int(_positive_number(path, "max_position", data.get("max_position", d.max_position), True)),
        max_orders_per_minute=int(
            _positive_number(
                path, "max_orders_per_minute", data.get("max_orders_per_minute", d.max_orders_per_minute), True
            )
        ),
        allow_risk_reducing_when_killed=flag,
    )


def parse_strategy(path: Path, data: dict[str, Any]) -> StrategyConfig:
    allowed = {f.name for f in fields(StrategyConfig)}
    _check_unknown(path, data, allowed)
    d = StrategyConfig()
    raw_symbols = data.get("symbols", d.symbols)
    symbols: int | tuple[str, ...]
    if isinstance(raw_symbols, list):
        if not raw_symbols or not all(isinstance(s, str) and s.strip() for s in raw_symbols):
            raise ConfigError(
                f"{path}: field 'symbols' must be a count or a non-empty list of tickers, got {raw_symbols!r}; "
                "fix: 'symbols: 8' or 'symbols: [ABC, DEF]'"
            )
        symbols = tuple(s.strip() for s in raw_symbols)
    else:
        try:
            symbols = int(_positive_number(path, "symbols", raw_symbols, True))
        except ConfigError as exc:
            raise ConfigError(f"{exc} (or a list of tickers)") from None
    base_qty = int(_positive_number(path, "base_qty", data.get("base_qty", d.base_qty), True))
    fast = int(_positive_number(path, "fast", data.get("fast", d.fast), True))
    slow = int(_positive_number(path, "slow", data.get("slow", d.slow), True))
    if fast >= slow:
        raise ConfigError(
            f"{path}: field 'fast' ({fast}) must be smaller than 'slow' ({slow}); fix: e.g. fast: 10, slow: 40"
        )
    return StrategyConfig(symbols=symbols, base_qty=base_qty, fast=fast, slow=slow)


def load_configs(workdir: Path) -> Configs:
    """Parse both files under ``workdir`` (writing defaults for absent ones); raises :class:`ConfigError`."""
    risk_path = workdir / RISK_FILE
    strategy_path = workdir / STRATEGY_FILE
    risk = parse_risk(risk_path, _load_mapping(risk_path, RISK_DEFAULT_TEXT))
    strategy = parse_strategy(strategy_path, _load_mapping(strategy_path, STRATEGY_DEFAULT_TEXT))
    if strategy.base_qty + strategy.add_qty > risk.max_position:
        raise ConfigError(
            f"{strategy_path}: field 'base_qty' ({strategy.base_qty}) plus its add-on ({strategy.add_qty}) exceeds "
            f"max_position ({risk.max_position}) in {risk_path}; fix: lower base_qty or raise max_position"
        )
    return Configs(risk=risk, strategy=strategy)
