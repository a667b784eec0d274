"""Port leases: a stack's ports come from below the kernel's ephemeral range (where no client connection's source
port can take them between the pick and the service's bind), and no two live holders on the machine ever get the
same port (CI: two stacks starting side by side picked one port, and one's health check got the other's broker)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from pytest import MonkeyPatch

from harness.backends import ports
from harness.backends.ports import PortLeases, free_port
from harness.backends.process import ProcessBackend
from harness.backends.reaper import owner_record
from harness.errors import BackendError
from harness.stack import load_stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def leases(tmp_path: Path) -> PortLeases:
    return PortLeases(tmp_path / "leases")


def _pick(monkeypatch: MonkeyPatch, *ports_in_order: int) -> None:
    """Make the random picks return ``ports_in_order`` (then keep returning the last one)."""
    low, _ = ports._ephemeral_range()
    start = max(10000, low - 12000)
    offsets = [p - start for p in ports_in_order]
    monkeypatch.setattr(
        "harness.backends.ports.secrets.randbelow", lambda _n: offsets.pop(0) if len(offsets) > 1 else offsets[0]
    )


def test_ports_are_bindable_below_the_ephemeral_range_and_leased(leases: PortLeases) -> None:
    low, _ = ports._ephemeral_range()
    taken = {leases.take() for _ in range(50)}
    assert len(taken) == 50 and taken == leases.held
    assert all(max(10000, low - 12000) <= p < low for p in taken), sorted(taken)
    for port in taken:
        holder = json.loads((leases.directory / str(port)).read_text())
        assert holder == owner_record()
    for port in list(taken)[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_never_returned(leases: PortLeases, monkeypatch: MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setattr(ports, "_ephemeral_range", lambda: (taken + 1, 60999))
        start = max(10000, taken + 1 - 12000)
        picks = iter([taken - start, 0])  # the first pick is the port held above, the second is free
        monkeypatch.setattr("harness.backends.ports.secrets.randbelow", lambda _n: next(picks))
        assert leases.take() == start


def test_a_port_leased_to_a_live_process_is_never_returned_even_while_nothing_listens(
    leases: PortLeases, tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    other = PortLeases(leases.directory)
    first = other.take()  # held by this live process through another holder (another stack of this process)
    second = other.take()
    free = PortLeases(tmp_path / "elsewhere").take()  # bindable, and not leased in this directory
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (leases.directory / str(second)).write_text(json.dumps(owner_record(sleeper.pid)))  # another process' lease
        _pick(monkeypatch, first, second, free)
        assert leases.take() == free
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_dead_holders_lease_and_a_lease_cut_short_are_taken_over(
    leases: PortLeases, tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    elsewhere = PortLeases(tmp_path / "elsewhere")
    dead_port, torn_port = elsewhere.take(), elsewhere.take()  # bindable ports
    leases.directory.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (leases.directory / str(dead_port)).write_text(json.dumps({"pid": dead.pid, "start": "1"}))
    (leases.directory / str(torn_port)).write_text('{"pid": 12')  # a lease file a crash cut short
    _pick(monkeypatch, dead_port, torn_port)
    assert leases.take() == dead_port
    assert leases.take() == torn_port
    assert json.loads((leases.directory / str(dead_port)).read_text()) == owner_record()


def test_release_gives_back_the_holders_ports_only(leases: PortLeases) -> None:
    mine = [leases.take() for _ in range(3)]
    other = PortLeases(leases.directory)
    theirs = other.take()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        # one of "mine" was taken over meanwhile (its file names another holder): release leaves it alone
        (leases.directory / str(mine[0])).write_text(json.dumps(owner_record(sleeper.pid)))
        leases.release()
        assert not leases.held
        assert (leases.directory / str(mine[0])).exists()
        assert not (leases.directory / str(mine[1])).exists() and not (leases.directory / str(mine[2])).exists()
        assert (leases.directory / str(theirs)).exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_two_processes_taking_ports_at_once_never_get_the_same_one(tmp_path: Path) -> None:
    """Without leases, 2 x 300 random picks in a 12000-port range share about 7 ports; with them, none.
    Both holders stay alive until both are done: a holder that has exited gives its ports back."""
    code = textwrap.dedent(
        """
        import json, sys
        from harness.backends.ports import PortLeases
        leases = PortLeases()
        sys.stdin.readline()  # both start together
        print(json.dumps([leases.take() for _ in range(300)]), flush=True)
        sys.stdin.readline()  # and hold their leases until both are done
        """
    )
    env = {**os.environ, ports.LEASES_ENV: str(tmp_path / "shared")}
    argv = [sys.executable, "-c", code]
    pipe = subprocess.PIPE
    procs = [subprocess.Popen(argv, env=env, stdin=pipe, stdout=pipe, text=True) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outs = []
        for proc in procs:
            assert proc.stdout is not None
            outs.append(set(json.loads(proc.stdout.readline())))
        assert len(outs[0]) == 300 and len(outs[1]) == 300
        assert not outs[0] & outs[1]
    finally:
        for proc in procs:
            proc.communicate("done\n", timeout=60)


def test_without_room_below_the_range_the_kernel_picks_and_it_is_still_leased(
    leases: PortLeases, monkeypatch: MonkeyPatch
) -> None:
    monkeypatch.setattr(ports, "_ephemeral_range", lambda: (1024, 65000))
    port = leases.take()
    assert 1024 <= port <= 65535
    assert (leases.directory / str(port)).exists()


def test_free_port_leases_for_the_life_of_the_process(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    monkeypatch.setenv(ports.LEASES_ENV, str(tmp_path / "process"))
    port = free_port()
    assert json.loads((tmp_path / "process" / str(port)).read_text()) == owner_record()


def test_a_health_check_answered_by_another_program_says_so(tmp_path: Path) -> None:
    """A port another stack's JSON-lines server answers on: the health check names it, it does not crash."""
    backend = ProcessBackend(load_stack(ROOT / "fixtures" / "stacks" / "tiny-stack.yml"), tmp_path / "run")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        backend.ports["web.http"] = server.getsockname()[1]

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b'{"type":"error","code":"malformed"}\n')

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        ok, observed = backend._healthy(backend.stack.services["web"])
        thread.join(5)
    assert not ok
    assert observed.startswith(f"not HTTP at http://127.0.0.1:{backend.ports['web.http']}/ (BadStatusLine: ")
    assert "is another program on it?" in observed


def test_a_lease_directory_that_cannot_be_used_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(BackendError) as info:
        PortLeases(blocker / "leases").take()
    assert str(blocker / "leases") in info.value.message and ports.LEASES_ENV in (info.value.hint or "")
