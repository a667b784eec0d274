"""The explicit fault registry: kind name -> class (ledger records, steps and the CLI look faults up here)."""

from __future__ import annotations

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
