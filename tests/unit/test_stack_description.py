"""The stack description parser: the real compose file parses; bad input names file:line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import StackFileError
from harness.stack import load_stack, render

ROOT = Path(__file__).resolve().parents[2]


def test_project_compose_file_is_a_valid_stack_description() -> None:
    stack = load_stack(ROOT / "docker-compose.yml")
    assert stack.name == "mockstack"
    assert {"broker", "marketdata", "traderunner", "dashboard", "prometheus", "alertmanager", "toxiproxy"} <= set(
        stack.services
    )
    broker_link = stack.links["broker"]
    assert (broker_link.source, broker_link.target, broker_link.port) == ("traderunner", "broker", "order")
    assert stack.links["marketdata"].target == "marketdata"
    assert stack.workdir_service == "traderunner"
    assert stack.operator is not None and stack.operator.command == ("traderunner",)
    assert stack.mode is not None and stack.mode.env == "TR_MODE"
    order = stack.start_order()
    assert order.index("broker") < order.index("traderunner")
    assert order.index("traderunner") < order.index("dashboard")
    for spec in stack.services.values():
        assert spec.local is not None, f"{spec.name} has no local command"
        assert spec.health is not None, f"{spec.name} has no health endpoint"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.yml"
    path.write_text(text)
    return path


BASE = """\
x-drill:
  name: s
  workdir: a
  links:
    l: {from: a, to: b, port: http}
services:
  a:
    x-drill:
      ports: {http: 1}
  b:
    x-drill:
      ports: {http: 2}
"""


def test_minimal_stack_parses(tmp_path: Path) -> None:
    stack = load_stack(write(tmp_path, BASE))
    assert stack.links["l"].line == 5


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (("to: b", "to: nope"), r"stack.yml:5: x-drill.links.l.to: unknown service 'nope'"),
        (("port: http}", "port: grpc}"), r"x-drill.links.l.port: service 'b' has no port named 'grpc'"),
        (("ports: {http: 2}", "ports: {http: 99999}"), r"stack.yml:12: services.b.x-drill.ports.http: must be a port"),
        (("workdir: a", "workdir: zz"), r"x-drill.workdir: unknown service 'zz'"),
        (("  name: s\n", ""), r"x-drill.name: is missing"),
    ],
)
def test_bad_stack_files_name_line_and_field(tmp_path: Path, mutation: tuple[str, str], expected: str) -> None:
    path = write(tmp_path, BASE.replace(*mutation))
    with pytest.raises(StackFileError, match=expected.replace("(", r"\(").replace("{", r"\{")):
        load_stack(path)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "  c: [unclosed\n")
    with pytest.raises(StackFileError, match=r"stack.yml:1[45]: not valid YAML"):
        load_stack(path)


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match="stack file not found") as err:
        load_stack(tmp_path / "nope.yml")
    assert "--stack-file" in str(err.value)


def test_health_port_must_be_declared(tmp_path: Path) -> None:
    text = BASE.replace("      ports: {http: 2}", "      ports: {http: 2}\n      health: {port: admin, path: /h}")
    with pytest.raises(StackFileError, match="services.b.x-drill.health.port: no port named 'admin'"):
        load_stack(write(tmp_path, text))


def test_depends_on_unknown_service(tmp_path: Path) -> None:
    text = BASE.replace("  b:\n", "  b:\n    depends_on: [ghost]\n")
    with pytest.raises(StackFileError, match="depends_on: unknown service 'ghost'"):
        load_stack(write(tmp_path, text))


def test_render_replaces_known_and_rejects_unknown_placeholders() -> None:
    values = {"port.a.http": "1234", "dir.run": "/r"}
    assert render("x {{port.a.http}} {{ dir.run }}", values, where="w") == "x 1234 /r"
    with pytest.raises(StackFileError, match=r"w: unknown placeholder \{\{port.b.http\}\}") as err:
        render("{{port.b.http}}", values, where="w")
    assert "port.a.http" in str(err.value)
