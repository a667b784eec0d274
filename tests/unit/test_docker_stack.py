"""The compose file is fit for containers, and the docker backend's pure parts; no Docker needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from harness.backends import BACKENDS, attach_backend
from harness.backends.docker import DockerBackend, _env_name, _interpolate
from harness.errors import InputError
from harness.stack import load_stack

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_docker_is_a_registered_backend() -> None:
    assert {"process", "docker"} <= set(BACKENDS)


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_every_service_publishes_its_named_ports_on_loopback_only_and_is_labelled(name: str) -> None:
    svc = COMPOSE["services"][name]
    declared = set(svc["x-drill"]["ports"].values())
    published = set()
    for mapping in svc.get("ports", []):
        host, _, container = mapping.rpartition(":")
        assert host.startswith("127.0.0.1:"), f"{name}: {mapping} must be published on 127.0.0.1 only"
        assert re.fullmatch(r"127\.0\.0\.1:\$\{DRILL_PORT_[A-Z_]+:-\}", host), mapping
        published.add(int(container))
    assert published == declared
    assert svc["labels"]["drill.run-id"] == "${DRILL_RUN_ID:-manual}"
    assert svc.get("init") is True


def test_port_variables_match_what_the_backend_sets() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    stack = load_stack(ROOT / "docker-compose.yml")
    for spec in stack.services.values():
        for port_name in spec.ports:
            assert "${" + _env_name(spec.name, port_name) + ":-}" in text


def test_workdir_is_bind_mountable_and_networks_volumes_are_labelled() -> None:
    assert "${DRILL_WORKDIR:-traderunner-work}:/work" in COMPOSE["services"]["traderunner"]["volumes"]
    assert COMPOSE["networks"]["stack"]["labels"]["drill.run-id"]
    assert all(v["labels"]["drill.run-id"] for v in COMPOSE["volumes"].values())


def test_interpolation_of_image_variables() -> None:
    public = "ghcr.io/shopify/toxiproxy:2.12.0"
    assert _interpolate("${TOXIPROXY_IMAGE:-" + public + "}", {}) == public
    local = {"TOXIPROXY_IMAGE": "drill-toxiproxy:local"}
    assert _interpolate("${TOXIPROXY_IMAGE:-x}", local) == "drill-toxiproxy:local"


def test_attach_dispatches_on_the_backend_named_in_stack_json(tmp_path: Path) -> None:
    state = {
        "backend": "docker", "run_id": "drill-abc", "project": "drill-abc",
        "stack_file": str(ROOT / "docker-compose.yml"), "status": "up",
        "owner": {"pid": 999999999, "start": "1"}, "env": {}, "ports": {"toxiproxy.api": 1234},
        "links": {"broker": {"proxy": "broker", "listen": "toxiproxy:8666", "upstream": "broker:7100"}},
        "services": {"broker": {"intended": "stopped"}},
    }
    (tmp_path / "stack.json").write_text(json.dumps(state))
    b = attach_backend(tmp_path)
    assert isinstance(b, DockerBackend)
    assert b.project == "drill-abc" and b.endpoint("toxiproxy", "api").address == "127.0.0.1:1234"
    assert b.link("broker").listen == "toxiproxy:8666"
    assert b.orphaned  # its owner pid does not exist
    with pytest.raises(InputError, match="missing"):  # a --run-dir naming no stack is bad input (exit 2)
        attach_backend(tmp_path / "nope")
