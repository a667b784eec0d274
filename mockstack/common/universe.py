"""The seeded instrument universe shared by broker and marketdata (same seed -> same symbols)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from faker import Faker

DEFAULT_SEED = 42
DEFAULT_COUNT = 8


@dataclass(frozen=True)
class Instrument:
    symbol: str
    name: str
    start_price: float


def build_universe(seed: int = DEFAULT_SEED, count: int = DEFAULT_COUNT) -> tuple[Instrument, ...]:
    """``count`` instruments with unique 3-4 letter tickers derived from seeded fake company names."""
    if count < 1:
        raise ValueError(f"universe size must be at least 1, got {count}")
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[Instrument] = []
    while len(out) < count:
        name = fake.company()
        letters = re.sub(r"[^A-Z]", "", name.upper())
        if len(letters) < 3:
            continue
        symbol = letters[: 3 + (len(out) % 2)]
        if symbol in seen:
            continue
        seen.add(symbol)
        out.append(Instrument(symbol=symbol, name=name, start_price=round(rng.uniform(20.0, 400.0), 2)))
    return tuple(out)
