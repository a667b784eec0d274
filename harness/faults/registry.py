"""The explicit fault registry: kind name -> class (ledger records, steps and the CLI look faults up here)."""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points

from harness.errors import FaultError, InputError
from harness.faults.base import Fault
from harness.faults.data import FeedCorruption, FileCorruption
from harness.faults.network import LinkDown, Toxic
from harness.faults.service import FullOutage, Kill, Pause, Restart, Stop
from harness.faults.trading import InjectedPosition, LatencySpike, PriceShock, RejectRateSpike

FAULTS: dict[str, type[Fault]] = {
    cls.kind: cls
    for cls in (
        LinkDown,
        Toxic,
        Kill,
        Stop,
        Pause,
        Restart,
        FullOutage,
        FeedCorruption,
        FileCorruption,
        PriceShock,
        InjectedPosition,
        RejectRateSpike,
        LatencySpike,
    )
}

ENTRY_POINT_GROUP = "drill.faults"


def register_fault(cls: type[Fault]) -> type[Fault]:
    """Register a team's own fault class (use as a class decorator) so the ledger can rebuild it.

    ``drill cleanup`` after a crash finds the class again from the ledger record, which names the
    class's module; a package may also declare the module under the ``drill.faults`` entry point group.
    """
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise InputError(f"fault class {cls.__module__}.{cls.__qualname__} has no 'kind'",
                         hint="give it a class attribute kind = \"my_fault\" (unique across the registry)")
    known = FAULTS.get(kind)
    if known is not None and known is not cls and f"{known.__module__}.{known.__qualname__}" != \
            f"{cls.__module__}.{cls.__qualname__}":
        raise InputError(f"fault kind {kind!r} of {cls.__module__}.{cls.__qualname__} is already registered by "
                         f"{known.__module__}.{known.__qualname__}", hint="choose another kind name")
    FAULTS[kind] = cls
    return cls


def fault_class(kind: str, module: str | None = None) -> type[Fault] | None:
    """The class of ``kind``: registered, else from the record's module, else from entry points."""
    if kind in FAULTS:
        return FAULTS[kind]
    if module:
        from harness.project import current_project

        root = str(current_project().root)  # a team's fault module lives in its drill project
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            importlib.import_module(module)
        except Exception as exc:  # the team's module: name it, never hide why it failed
            raise FaultError(f"fault kind {kind!r}: its module '{module}' failed to import: "
                             f"{type(exc).__name__}: {exc}",
                             hint="make the module importable (run from the drill project's root)") from exc
        if kind in FAULTS:
            return FAULTS[kind]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:
            raise FaultError(f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP}) failed to load: "
                             f"{type(exc).__name__}: {exc}") from exc
        if kind in FAULTS:
            return FAULTS[kind]
    return None
