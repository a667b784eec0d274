"""free_port: listening ports come from below the kernel's ephemeral range, where no client connection's
source port can take them between the pick and the service's bind (PortInUse in CI)."""

from __future__ import annotations

import socket

from pytest import MonkeyPatch

from harness.backends import process
from harness.backends.process import free_port


def test_ports_are_bindable_and_below_the_ephemeral_range() -> None:
    low, _ = process._ephemeral_range()
    ports = {free_port() for _ in range(50)}
    assert all(max(10000, low - 12000) <= p < low for p in ports), sorted(ports)
    assert len(ports) > 40  # random picks, not one port over and over
    for port in list(ports)[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_never_returned(monkeypatch: MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setattr(process, "_ephemeral_range", lambda: (taken + 1, 60999))
        start = max(10000, taken + 1 - 12000)
        picks = iter([taken - start, 0])  # the first pick is the port held above, the second is free
        monkeypatch.setattr("harness.backends.process.secrets.randbelow", lambda _n: next(picks))
        assert free_port() == start


def test_without_room_below_the_range_the_kernel_picks(monkeypatch: MonkeyPatch) -> None:
    monkeypatch.setattr(process, "_ephemeral_range", lambda: (1024, 65000))
    assert 1024 <= free_port() <= 65535
