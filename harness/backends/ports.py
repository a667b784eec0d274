"""Ports on 127.0.0.1 for a stack's services, leased machine-wide so that two stacks never pick the same one.

A port that is free when it is picked is free only until someone binds it. Stacks start side by side (``drill
run -n``, pytest-xdist workers, two teams' runs on one machine), and each picks its ports before its services
bind them: two could pick the same port, the first to bind it wins, and the other's health check is answered by
the winner's service (CI: the alerts test's health check got the JSON-lines answer of another stack's broker).
A port is also free again for a moment whenever a drill stops the service that holds it (a kill, a stop, a link
taken down) and the service takes it back when it returns.

So a port is *leased*: a file named after it in one directory per user (``$DRILL_PORT_LEASES``, by default
``/tmp/drill-port-leases-<uid>``), written under an exclusive ``flock`` on that directory's lock file and naming
its holder (pid and process start time, so pid reuse cannot keep a lease alive). A lease lasts until its holder
releases it (its stack going down) or its holder's process is gone; only then may another stack get the port.
A port is leased only when nothing listens on it either, so stacks started by other tools are respected too.

Ports come from below the kernel's ephemeral range: a port from ``bind(0)`` comes from that range, the one every
outgoing connection takes its source port from, so on a busy machine (parallel drills, their health polls and
scrapes) a client connection often held the port by the time the service bound it (PortInUse in CI).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

from harness.backends.base import LOOPBACK
from harness.backends.reaper import owner_alive, owner_record
from harness.errors import BackendError

LEASES_ENV = "DRILL_PORT_LEASES"
_LOCK = ".lock"


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high


def lease_dir() -> Path:
    """Where this user's port leases live (one directory for every drill process of the user)."""
    configured = os.environ.get(LEASES_ENV)
    return Path(configured) if configured else Path("/tmp") / f"drill-port-leases-{os.getuid()}"


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class PortLeases:
    """The ports one holder (a stack) leased: :meth:`take` one more, :meth:`release` them all."""

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory
        self.held: set[int] = set()

    @property
    def directory(self) -> Path:
        return self._directory if self._directory is not None else lease_dir()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        directory = self.directory
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            owner = directory.stat().st_uid
            if owner != os.getuid():  # another user's directory: its leases are not ours to trust or write
                raise PermissionError(f"it belongs to uid {owner}, not to this user (uid {os.getuid()})")
            fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BackendError(
                f"cannot lease ports in {directory}: {exc.strerror or exc}",
                hint=f"point {LEASES_ENV} at a directory of your own (it is made if missing), or remove {directory}",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _leased_to_someone(self, port: int) -> bool:
        """True while a live process holds ``port``'s lease; a dead holder's lease does not count."""
        try:
            holder = json.loads((self.directory / str(port)).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            return False  # a lease file cut short by a crash while it was written: nobody holds it
        return owner_alive(holder) is True

    def take(self) -> int:
        """A port on 127.0.0.1 nothing listens on and no live holder has leased, leased to this holder now."""
        low, _ = _ephemeral_range()
        start = max(10000, low - 12000)
        tries = 256 if low - start >= 1000 else 0
        with self._locked():
            for _ in range(tries):
                port = start + secrets.randbelow(low - start)
                if port in self.held or self._leased_to_someone(port) or not _bindable(port):
                    continue
                return self._lease(port)
            for _ in range(64):  # no room below the range (or all of it taken): the kernel picks
                port = _kernel_port()
                if port not in self.held and not self._leased_to_someone(port):
                    return self._lease(port)
        raise BackendError(
            f"no free port on {LOOPBACK}: every port tried is in use or leased to a live process",
            hint=f"stop stacks you no longer need (`drill cleanup`); the leases are in {self.directory}",
        )

    def _lease(self, port: int) -> int:
        path = self.directory / str(port)
        tmp = path.with_name(f".{port}.{os.getpid()}")
        tmp.write_text(json.dumps(owner_record()), encoding="utf-8")
        tmp.replace(path)  # whole or absent: a reader never sees half a holder
        self.held.add(port)
        return port

    def release(self) -> None:
        """Give back every port this holder leased (its stack is down); a lease someone else took is left alone."""
        if not self.held:
            return
        me = owner_record()
        with self._locked():
            for port in sorted(self.held):
                path = self.directory / str(port)
                try:
                    holder = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if holder == me:
                    path.unlink(missing_ok=True)
        self.held.clear()


_THIS_PROCESS = PortLeases()


def free_port() -> int:
    """A port leased to this process until it ends: for servers that live as long as the process (tests, benches)."""
    return _THIS_PROCESS.take()
