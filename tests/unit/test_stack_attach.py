"""The attach schema (``x-drill.attach``): parsed once into frozen dataclasses; bad input names file:line and field."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import StackFileError
from harness.stack import load_stack
from harness.stack_attach import Address

ROOT = Path(__file__).resolve().parents[2]
DRILL = str(Path(sys.executable).parent / "drill")

BASE = """\
x-drill:
  name: paper
  mode: {env: PAPER_MODE, default: paper}
  workdir: engine
  links:
    broker: {from: engine, to: broker, port: order}
  attach:
    workdir: /srv/engine
    env:
      TR_WORKDIR: /srv/engine
    toxiproxy:
      api: http://127.0.0.1:8474
      proxies: {broker: paper-broker}
    prometheus: http://localhost:9090
    alertmanager: http://127.0.0.1:9093
services:
  broker:
    x-drill:
      health: {port: http, path: /health}
      attach:
        addresses: {order: 127.0.0.1:7100, http: 7101}
  engine:
    x-drill:
      ports: {http: 7300}
      health: {port: http, path: /health}
      attach:
        addresses: {http: "127.0.0.1:7300"}
        log: logs/engine.log
        commands:
          kill: systemctl kill -s KILL engine
          start: [systemctl, start, engine]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "attach.yml"
    path.write_text(text)
    return path


def test_the_example_stack_file_parses_into_frozen_dataclasses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPER_ROOT", "/opt/paper")
    monkeypatch.delenv("TOXIPROXY_PORT", raising=False)
    stack = load_stack(ROOT / "fixtures" / "stacks" / "attach-paper.yml")
    spec = stack.attach
    assert spec is not None
    assert spec.workdir == Path("/opt/paper/traderunner")
    assert spec.env["TR_WORKDIR"] == "/opt/paper/traderunner"
    assert spec.toxiproxy is not None and spec.toxiproxy.api == Address("127.0.0.1", 8474)
    assert dict(spec.toxiproxy.proxies) == {"broker": "paper-broker", "marketdata": "paper-marketdata"}
    assert spec.variables == {"PAPER_ROOT": "/opt/paper", "TOXIPROXY_PORT": None}
    engine = spec.services["traderunner"]
    assert engine.log == Path("/opt/paper/traderunner/artifacts/logs/latest.log")
    assert engine.commands["kill"].argv == ("/bin/sh", "-c", "systemctl kill -s KILL traderunner")
    assert spec.services["marketdata"].commands["kill"].argv == ("systemctl", "kill", "-s", "KILL", "paper-marketdata")
    assert stack.services["broker"].ports == {"order": 7100, "http": 7101}  # from the addresses
    # the team's monitoring is added from its URLs, with the roles steps look for
    assert stack.services["prometheus"].role == "prometheus" and stack.services["prometheus"].ports == {"http": 9090}
    assert spec.address("toxiproxy", "api") == Address("127.0.0.1", 8474)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.workdir = None  # type: ignore[misc]


def test_values_interpolate_like_compose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_PORT", "7399")
    monkeypatch.setenv("EMPTY", "")
    monkeypatch.delenv("NOPE", raising=False)
    text = (
        BASE.replace('"127.0.0.1:7300"', '"127.0.0.1:${ENGINE_PORT}"')
        .replace("ports: {http: 7300}", "ports: {http: 7399}")
        .replace("TR_WORKDIR: /srv/engine", "TR_WORKDIR: ${NOPE:-/srv/default}")
        .replace("kill: systemctl kill -s KILL engine", "kill: kill -KILL $$(cat /run/engine.pid)${EMPTY:-}")
    )
    stack = load_stack(write(tmp_path, text))
    assert stack.attach is not None
    assert stack.attach.address("engine", "http") == Address("127.0.0.1", 7399)
    assert stack.attach.env["TR_WORKDIR"] == "/srv/default"
    assert stack.attach.services["engine"].commands["kill"].text == "kill -KILL $(cat /run/engine.pid)"
    assert stack.attach.address("prometheus", "http") == Address("127.0.0.1", 9090)  # localhost -> 127.0.0.1


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        # unknown fields, at every level
        (("    workdir: /srv/engine\n", "    workdir: /srv/engine\n    wrkdir: /x\n"),
         r"attach.yml:9: x-drill.attach.wrkdir: unknown field"),
        (("        log: logs/engine.log\n", "        logs: logs/engine.log\n"),
         r"attach.yml:28: services.engine.x-drill.attach.logs: unknown field"),
        (("          kill: systemctl", "          murder: systemctl"),
         r"attach.yml:30: services.engine.x-drill.attach.commands.murder: unknown field"),
        # a declared port without an address
        (('addresses: {http: "127.0.0.1:7300"}', "addresses: {admin: 127.0.0.1:7301}"),
         r"attach.yml:27: services.engine.x-drill.attach.addresses: no address for port 'http'"),
        # a service the file lists but does not say where it runs
        (("      attach:\n        addresses: {http: \"", "      attachx:\n        addresses: {http: \""),
         r"attach.yml:24: services.engine.x-drill.attach: is missing"),
        # non-loopback hosts, in an address and in a URL
        (('"127.0.0.1:7300"', '"10.0.0.5:7300"'),
         r"attach.yml:27: services.engine.x-drill.attach.addresses.http: host '10.0.0.5' is not 127.0.0.1"),
        (("http://localhost:9090", "http://prometheus.paper.internal:9090"),
         r"attach.yml:14: x-drill.attach.prometheus: host 'prometheus.paper.internal' is not 127.0.0.1"),
        # URLs the probes cannot use
        (("http://127.0.0.1:9093", "https://127.0.0.1:9093/am"),
         r"attach.yml:15: x-drill.attach.alertmanager: must be http://HOST:PORT \(no path\)"),
        (("127.0.0.1:7100,", "127.0.0.1:99999,"),
         r"attach.yml:21: services.broker.x-drill.attach.addresses.order: must be HOST:PORT"),
        # every link needs the existing proxy's name
        (("proxies: {broker: paper-broker}", "proxies: {}"),
         r"attach.yml:12: x-drill.attach.toxiproxy.proxies: no proxy name for link\(s\) broker"),
        (("proxies: {broker: paper-broker}", "proxies: {broker: paper-broker, feed: x}"),
         r"attach.yml:13: x-drill.attach.toxiproxy.proxies.feed: no link of that name"),
        # an unset variable without a default
        (("TR_WORKDIR: /srv/engine", "TR_WORKDIR: ${DRILL_TEST_UNSET_VAR}"),
         r"attach.yml:10: x-drill.attach.env.TR_WORKDIR: \$\{DRILL_TEST_UNSET_VAR\} is not set and has no default"),
        (("kill: systemctl kill", "kill: ${1} kill"), r"attach.yml:30: .*commands.kill: invalid interpolation"),
        (("command_timeout_s", "command_timeout_s"), None),
    ],
)
def test_bad_attach_sections_name_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mutation: tuple[str, str], expected: str | None
) -> None:
    monkeypatch.delenv("DRILL_TEST_UNSET_VAR", raising=False)
    text = BASE.replace(*mutation)
    assert text != BASE or expected is None, f"mutation {mutation} did not apply"
    if expected is None:
        assert load_stack(write(tmp_path, text)).attach is not None
        return
    with pytest.raises(StackFileError, match=expected) as err:
        load_stack(write(tmp_path, text))
    assert err.value.hint, "every error says what to do"


def test_an_allowed_host_is_accepted_only_when_listed(tmp_path: Path) -> None:
    text = BASE.replace('"127.0.0.1:7300"', '"paper-engine:7300"')
    with pytest.raises(StackFileError, match="add it to x-drill.attach.allow_hosts"):
        load_stack(write(tmp_path, text))
    allowed = text.replace("    workdir: /srv/engine\n", "    workdir: /srv/engine\n    allow_hosts: [paper-engine]\n")
    stack = load_stack(write(tmp_path, allowed))
    assert stack.attach is not None and stack.attach.address("engine", "http") == Address("paper-engine", 7300)


def test_a_fault_needing_an_undeclared_command_is_refused_naming_the_field(tmp_path: Path) -> None:
    stack = load_stack(write(tmp_path, BASE))
    assert stack.attach is not None
    assert [c.text for c in stack.attach.commands_for("engine", "kill")] == ["systemctl kill -s KILL engine"]
    with pytest.raises(StackFileError) as err:
        stack.attach.commands_for("engine", "pause")
    message = str(err.value)
    assert re.search(r"attach.yml:27: cannot pause engine: services.engine.x-drill.attach.commands.pause and "
                     r"services.engine.x-drill.attach.commands.resume are not declared", message), message
    assert "add 'pause: <command>', 'resume: <command>'" in message
    with pytest.raises(StackFileError, match=r"cannot stop engine: services.engine.x-drill.attach.commands.stop is"):
        stack.attach.commands_for("engine", "stop")
    # kill is declared, but without start it could not be reverted: refused too
    no_start = load_stack(write(tmp_path, BASE.replace("          start: [systemctl, start, engine]\n", "")))
    assert no_start.attach is not None
    with pytest.raises(StackFileError, match=r"commands.start is not declared \(kill is only done when its revert"):
        no_start.attach.commands_for("engine", "kill")
    with pytest.raises(StackFileError, match="team's prometheus, which the harness never controls"):
        stack.attach.commands_for("prometheus", "kill")


def test_monitoring_services_are_reached_through_their_url_only(tmp_path: Path) -> None:
    text = BASE + """\
  prom:
    x-drill:
      role: prometheus
      ports: {http: 9090}
      attach:
        addresses: {http: 127.0.0.1:9090}
"""
    with pytest.raises(StackFileError, match=r"attach.yml:36: services.prom.x-drill.attach: a prometheus service is"):
        load_stack(write(tmp_path, text))
    without = text.replace("      attach:\n        addresses: {http: 127.0.0.1:9090}\n", "")
    declared = load_stack(write(tmp_path, without))
    assert "prometheus" not in declared.services  # the declared one is used, with the URL's address
    assert declared.attach is not None and declared.attach.address("prom", "http") == Address("127.0.0.1", 9090)


def test_a_stack_file_without_attach_has_none(tmp_path: Path) -> None:
    assert load_stack(ROOT / "docker-compose.yml").attach is None


def drill_run(*args: str) -> subprocess.CompletedProcess[str]:
    """``drill run --backend attach`` on this repository's drills (its root is their drill project)."""
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([DRILL, "run", "--backend", "attach", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_attached_service_exits_3_naming_service_address_and_field(tmp_path: Path) -> None:
    port = closed_port()
    path = write(tmp_path, BASE.replace("order: 127.0.0.1:7100", f"order: 127.0.0.1:{port}"))
    r = drill_run("--stack-file", str(path), "--quarter", "Q2", "--report", str(tmp_path / "report"))
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"attached service broker is unreachable: tried 127.0.0.1:{port} (port 'order')" in r.stderr
    assert "Check services.broker.x-drill.attach.addresses.order (" in r.stderr and "attach.yml:21)" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "report" / "journal.json").exists()


def test_bad_attach_input_through_the_cli_is_exit_2_with_file_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("        log: logs/engine.log\n", "        logs: logs/engine.log\n"))
    r = drill_run("--stack-file", str(path), "--quarter", "Q2", "--report", str(tmp_path / "r1"))
    assert r.returncode == 2 and "attach.yml:28: services.engine.x-drill.attach.logs: unknown field" in r.stderr
    r = drill_run("--stack-file", str(ROOT / "docker-compose.yml"), "--quarter", "Q2", "--report", str(tmp_path / "r2"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "has no x-drill.attach" in r.stderr and "--backend process" in r.stderr and "Traceback" not in r.stderr
