"""Faults: failures injected into a stack, always rolled back (see :mod:`harness.faults.base`).

Where each lives: network (Toxiproxy: link down, toxics), service (kill, stop, pause, restart,
full outage), data (feed corruption, file corruption), trading (price shock, injected position,
reject-rate and fill-latency spikes). ``FAULTS`` is the registry; ``ledger`` keeps the record that
``drill cleanup`` reverts from.
"""

from __future__ import annotations

from harness.faults.base import Fault, FaultContext, FaultState
from harness.faults.data import FeedCorruption, FileCorruption, symbols
from harness.faults.ledger import CleanupReport, Ledger, LedgerEntry, cleanup, pending
from harness.faults.network import TOXICS, LinkDown, Toxic
from harness.faults.registry import FAULTS, register_fault
from harness.faults.service import FullOutage, Kill, Pause, Restart, Stop
from harness.faults.trading import InjectedPosition, LatencySpike, PriceShock, RejectRateSpike

__all__ = [
    "FAULTS",
    "TOXICS",
    "CleanupReport",
    "Fault",
    "FaultContext",
    "FaultState",
    "FeedCorruption",
    "FileCorruption",
    "FullOutage",
    "InjectedPosition",
    "Kill",
    "LatencySpike",
    "Ledger",
    "LedgerEntry",
    "LinkDown",
    "Pause",
    "PriceShock",
    "RejectRateSpike",
    "Restart",
    "Stop",
    "Toxic",
    "cleanup",
    "pending",
    "register_fault",
    "symbols",
]
