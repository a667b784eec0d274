"""How orders split into partial fills."""

from __future__ import annotations

import pytest

from mockstack.broker.model import fill_plan, next_fill_qty


@pytest.mark.parametrize(
    ("qty", "ratio", "plan"),
    [
        (1, 0.5, (1,)),
        (2, 0.5, (1, 1)),
        (10, 0.5, (5, 5)),
        (7, 0.5, (3, 4)),
        (10, 0.3, (3, 7)),
        (10, 0.01, (1, 9)),
        (10, 0.99, (9, 1)),
        (10, 0.0, (10,)),
        (10, 1.0, (10,)),
    ],
)
def test_fill_plan(qty: int, ratio: float, plan: tuple[int, ...]) -> None:
    assert fill_plan(qty, ratio) == plan
    assert sum(plan) == qty


def test_next_fill_qty_walks_the_plan_and_stops() -> None:
    assert next_fill_qty(10, 0, 0.5) == 5
    assert next_fill_qty(10, 5, 0.5) == 5
    assert next_fill_qty(10, 10, 0.5) == 0
    assert next_fill_qty(7, 3, 0.5) == 4
