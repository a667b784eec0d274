"""What every probe is: a small object that looks at the world once and returns an Observation.

Probes never raise for what they are *reading* (an unreachable endpoint, a missing file, a reply of
the wrong shape): that is an observation (``ok=False``, ``observed="unreachable: ..."``) which
:func:`~harness.waiting.wait_until` reports if the deadline passes. They do raise for misuse
(an invalid regex, an unknown comparison operator) when they are built.
"""

from __future__ import annotations

import abc
import operator
from collections.abc import Callable
from typing import ClassVar

from harness.errors import InputError
from harness.waiting import Observation

__all__ = ["COMPARISONS", "Observation", "Probe", "compare", "json_path"]


class Probe(abc.ABC):
    """A named, reusable look at one thing; call it to observe."""

    name: ClassVar[str]

    @abc.abstractmethod
    def __call__(self) -> Observation: ...

    @abc.abstractmethod
    def describe(self) -> str:
        """What this probe expects, in words (used as ``wait_until(what=...)``)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def compare(op: str) -> Callable[[float, float], bool]:
    try:
        return COMPARISONS[op]
    except KeyError:
        raise InputError(
            f"unknown comparison {op!r}", hint=f"use one of: {' '.join(COMPARISONS)}"
        ) from None


_MISSING = object()


def json_path(document: object, path: str) -> tuple[bool, object]:
    """Follow a dotted path (``checks.broker.ok``, list indexes as numbers) into parsed JSON.

    Returns ``(found, value)``; never raises for a document of the wrong shape.
    """
    current: object = document
    for part in path.split(".") if path else ():
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current
