"""The process backend on its own, with a tiny stack: real processes, a real Toxiproxy."""

from __future__ import annotations

import os
import signal
import socket
import urllib.request
from pathlib import Path

import pytest

from harness.backends.base import ServiceState
from harness.backends.process import ProcessBackend
from harness.errors import BackendError, ServiceStartError, StackFileError
from harness.stack import load_stack

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny(tmp_path: Path):  # type: ignore[no-untyped-def]
    backend = ProcessBackend(load_stack(ROOT / "fixtures/stacks/tiny-stack.yml"), tmp_path / "run", health_timeout=15)
    backend.up()
    try:
        yield backend
    finally:
        backend.down()


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return int(resp.status)


def test_up_starts_everything_on_loopback_with_a_proxied_link(tiny: ProcessBackend) -> None:
    web = tiny.endpoint("web", "http")
    assert web.host == "127.0.0.1"
    assert get(web.url + "/") == 200
    link = tiny.link("web")
    assert link.upstream == web.address
    assert get(f"http://{link.listen}/") == 200
    assert all(tiny.state(s) == ServiceState.RUNNING for s in ("web", "client", "toxiproxy"))
    assert "client via 127.0.0.1:" in "\n".join(tiny.log_tail("client"))
    proxy = tiny.toxiproxy.proxy(link.proxy_name)
    assert proxy.enabled and proxy.upstream == web.address


def test_kill_pause_resume_restart(tiny: ProcessBackend) -> None:
    url = tiny.endpoint("web", "http").url + "/"
    tiny.pause("web")
    assert tiny.state("web") == ServiceState.PAUSED
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=0.5)
    tiny.resume("web")
    assert tiny.state("web") == ServiceState.RUNNING
    assert get(url) == 200
    tiny.kill("web")
    assert tiny.state("web") == ServiceState.STOPPED
    tiny.start("web")
    assert get(url) == 200
    tiny.restart("web")
    assert tiny.state("web") == ServiceState.RUNNING


def test_a_crash_nobody_asked_for_is_reported_dead(tiny: ProcessBackend) -> None:
    pid = tiny._procs["web"].pid
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    tiny._reap(tiny._procs["web"], 5)
    assert tiny.state("web") == ServiceState.DEAD
    with pytest.raises(BackendError, match="web is not running"):
        tiny.pause("web")


def test_another_process_can_attach_and_bring_it_down(tiny: ProcessBackend) -> None:
    other = ProcessBackend.attach(tiny.run_dir)
    assert other.endpoint("web", "http") == tiny.endpoint("web", "http")
    assert other.state("web") == ServiceState.RUNNING
    other.pause("web")
    assert tiny.state("web") == ServiceState.PAUSED
    other.down()
    for name in ("web", "client", "toxiproxy"):
        assert not tiny._alive(tiny._procs[name])


def test_two_stacks_side_by_side_do_not_collide(tmp_path: Path, tiny: ProcessBackend) -> None:
    second = ProcessBackend(load_stack(ROOT / "fixtures/stacks/tiny-stack.yml"), tmp_path / "run2")
    second.up()
    try:
        assert second.endpoint("web", "http").port != tiny.endpoint("web", "http").port
        assert second.link("web").proxy_name != tiny.link("web").proxy_name
    finally:
        second.down()


def test_a_service_that_dies_at_start_is_reported_with_its_log_and_nothing_is_left(tmp_path: Path) -> None:
    text = (
        (ROOT / "fixtures/stacks/tiny-stack.yml")
        .read_text()
        .replace('"-m", "http.server"', '"-c", "import sys; sys.exit(\'boom: bad config\')", "-m", "http.server"')
    )
    path = tmp_path / "broken.yml"
    path.write_text(text)
    backend = ProcessBackend(load_stack(path), tmp_path / "run")
    with pytest.raises(ServiceStartError, match=r"web exited \(code 1\) before it was healthy[\s\S]*boom: bad config"):
        backend.up()
    assert all(not backend._alive(p) for p in backend._procs.values())


def test_unknown_placeholder_is_a_stack_file_error(tmp_path: Path) -> None:
    text = (ROOT / "fixtures/stacks/tiny-stack.yml").read_text().replace('{{port.web.http}}"]', '{{port.web.grpc}}"]')
    path = tmp_path / "broken.yml"
    path.write_text(text)
    backend = ProcessBackend(load_stack(path), tmp_path / "run")
    with pytest.raises(StackFileError, match=r"unknown placeholder \{\{port.web.grpc\}\}"):
        backend.up()
    assert all(not backend._alive(p) for p in backend._procs.values())


def test_link_down_through_toxiproxy_refuses_connections(tiny: ProcessBackend) -> None:
    link = tiny.link("web")
    host, port = link.listen.rsplit(":", 1)
    tiny.toxiproxy.set_enabled(link.proxy_name, False)
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
        pass
    tiny.toxiproxy.reset()
    assert get(f"http://{link.listen}/") == 200


def test_a_port_already_taken_is_named_and_nothing_is_left(tmp_path: Path) -> None:
    """A service pinned to a port someone else holds: PortInUse naming the service; every process stopped."""
    from harness.errors import PortInUse

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        text = (
            (ROOT / "fixtures/stacks/tiny-stack.yml")
            .read_text()
            .replace(
                '"http.server", "--bind", "127.0.0.1", "{{port.web.http}}"',
                f'"http.server", "--bind", "127.0.0.1", "{taken}"',
            )
        )
        path = tmp_path / "pinned.yml"
        path.write_text(text)
        backend = ProcessBackend(load_stack(path), tmp_path / "run", health_timeout=10)
        with pytest.raises(PortInUse, match=r"web could not bind its port .*address already in use") as err:
            backend.up()
        assert err.value.exit_code == 3
        assert all(not backend._alive(p) for p in backend._procs.values())
