"""The kubernetes backend's pure parts: compose -> objects, kubeconfig safety, pod selection. No cluster."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from harness.backends import BACKENDS, attach_backend
from harness.backends.kubernetes import manifests
from harness.backends.kubernetes.cluster import Kubectl, check_server, normalized_image, server_of
from harness.backends.kubernetes.control import KubernetesBackend
from harness.backends.kubernetes.exec import wrapped
from harness.backends.kubernetes.forward import running_pods
from harness.errors import EnvironmentProblem, InputError, StackFileError
from harness.stack import load_stack

ROOT = Path(__file__).resolve().parents[2]
STACK = load_stack(ROOT / "docker-compose.yml")
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ENV = {"DRILL_WORKDIR": "/runs/r1/workdir", "TOXIPROXY_IMAGE": "drill-toxiproxy:local"}


def _services(tmp_path: Path, doc: dict | None = None) -> dict[str, manifests.ComposeService]:
    return manifests.read_compose_services(STACK, doc or COMPOSE, ENV, tmp_path)


def test_kubernetes_is_a_registered_backend() -> None:
    assert "kubernetes" in BACKENDS


def test_namespace_names_are_dns_labels_and_carry_the_run() -> None:
    assert manifests.namespace_name("drill-AB12_cd") == "drill-ab12-cd"
    assert manifests.namespace_name("x" * 100).startswith("drill-")
    assert len(manifests.namespace_name("x" * 100)) <= 63
    ns = manifests.namespace("drill-ab", "drill-ab", Path("/runs/r1"), "detached")
    assert ns["metadata"]["labels"][manifests.LABEL_RUN_ID] == "drill-ab"
    assert ns["metadata"]["annotations"][manifests.ANNOTATION_RUN_DIR] == "/runs/r1"


def test_compose_services_translate_images_commands_environment_and_volumes(tmp_path: Path) -> None:
    services = _services(tmp_path)
    assert set(services) == set(STACK.services)
    trader = services["traderunner"]
    assert trader.image == "drill-mockstack:local"
    assert trader.command is not None and trader.command[:3] == ("python", "-m", "mockstack.traderunner")
    assert trader.environment["TR_MODE"] == "lab"
    assert ("/runs/r1/workdir", "/work", False) in trader.volumes
    assert trader.init and trader.grace_seconds == 5
    assert services["toxiproxy"].image == "drill-toxiproxy:local"
    broker_volume = services["broker"].volumes[0]
    assert broker_volume == (str(tmp_path / "volumes" / "broker-state"), "/data", False)
    prom = services["prometheus"].volumes[0]
    assert prom == (str((ROOT / "monitoring" / "prometheus").resolve()), "/etc/prometheus", True)


def test_deployment_never_pulls_resolves_names_without_dns_and_has_no_probes(tmp_path: Path) -> None:
    svc = _services(tmp_path)["traderunner"]
    ips = {"broker": "10.96.0.10", "toxiproxy": "10.96.0.11"}
    dep = manifests.deployment(svc, "drill-x", manifests.service_ports(STACK, "traderunner"), ips)
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["imagePullPolicy"] == "Never"
    assert container["args"] == list(svc.command or ())
    assert "command" not in container  # the image's entrypoint stays, like compose's `command:`
    assert {"ip": "10.96.0.10", "hostnames": ["broker"]} in pod["hostAliases"]
    assert pod["shareProcessNamespace"] is True  # compose `init: true`
    assert pod["enableServiceLinks"] is False
    assert "livenessProbe" not in container and "readinessProbe" not in container
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["volumes"][0]["hostPath"]["path"] == "/runs/r1/workdir"


def test_toxiproxy_service_exposes_every_link_listen_port() -> None:
    ports = manifests.service_ports(STACK, "toxiproxy")
    assert ports["api"] == 8474
    assert ports["link-broker"] == 8666 and ports["link-marketdata"] == 8667
    assert manifests.link_listen_port(STACK, "broker") == 8666
    svc = manifests.service("toxiproxy", "drill-x", ports)
    assert {p["port"] for p in svc["spec"]["ports"]} == {8474, 8666, 8667}
    assert all(len(p["name"]) <= 15 for p in svc["spec"]["ports"])


def test_toxiproxy_loads_every_link_from_its_config_map_at_each_start(tmp_path: Path) -> None:
    proxies = manifests.link_proxies(STACK)
    assert {p["name"]: (p["listen"], p["upstream"]) for p in proxies} == {
        "broker": ("0.0.0.0:8666", "broker:7100"),
        "marketdata": ("0.0.0.0:8667", "marketdata:7200"),
    }
    config = manifests.links_config_map(STACK, "toxiproxy", "drill-x")
    assert json.loads(config["data"][manifests.LINKS_FILE]) == proxies
    svc = _services(tmp_path)["toxiproxy"]
    dep = manifests.deployment(svc, "drill-x", manifests.service_ports(STACK, "toxiproxy"), {})
    manifests.load_links_at_start(dep, config["metadata"]["name"])
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    # the compose arguments kept, the config file added: a restarted or rescheduled Toxiproxy has its links
    assert container["args"] == [*(svc.command or ()), "-config", f"{manifests.LINKS_DIR}/{manifests.LINKS_FILE}"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == manifests.LINKS_DIR)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == config["metadata"]["name"]


def test_a_service_without_an_image_or_with_a_bad_volume_is_a_stack_file_error(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(COMPOSE))
    del doc["services"]["broker"]["image"]
    with pytest.raises(StackFileError, match=r"services\.broker: the kubernetes backend needs an 'image:'"):
        _services(tmp_path, doc)
    doc = json.loads(json.dumps(COMPOSE))
    doc["services"]["broker"]["volumes"] = ["no-target-path"]
    with pytest.raises(StackFileError, match="not 'source:/container/path"):
        _services(tmp_path, doc)
    doc = json.loads(json.dumps(COMPOSE))
    doc["services"]["broker"]["stop_grace_period"] = "soon"
    with pytest.raises(StackFileError, match="not a duration"):
        _services(tmp_path, doc)


def test_a_compose_file_that_does_not_parse_is_reported_before_touching_any_cluster(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services: [unclosed\n")
    stack = dataclasses.replace(STACK, path=bad)
    backend = KubernetesBackend(stack, tmp_path / "run", kubeconfig=tmp_path / "no-such-kubeconfig")
    with pytest.raises(StackFileError, match="cannot read the compose services"):
        backend.up()


def _runtime(tmp_path: Path) -> Path:
    """A kubeconfig path beside the runtime.json that scripts/k8s-setup.sh writes (its node range)."""
    (tmp_path / "runtime.json").write_text(json.dumps({"node_net": "10.250.0.0/24", "nodes": {}}))
    return tmp_path / "kubeconfig"


@pytest.mark.parametrize("server", ["https://127.0.0.1:6443", "https://10.250.0.1:16443", "https://localhost:1"])
def test_kubeconfig_servers_on_this_machine_are_accepted(server: str, tmp_path: Path) -> None:
    check_server(server, _runtime(tmp_path))


@pytest.mark.parametrize("server", ["https://192.0.2.10:6443", "https://k8s.example.com", "https://10.251.0.1:1"])
def test_a_kubeconfig_pointing_at_another_host_is_refused(server: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="only drives a cluster on this machine"):
        check_server(server, _runtime(tmp_path))


def test_without_the_set_up_scripts_runtime_only_loopback_is_accepted(tmp_path: Path) -> None:
    check_server("https://127.0.0.1:6443", tmp_path / "kubeconfig")
    with pytest.raises(InputError, match=r"node range \(none declared\)"):
        check_server("https://10.250.0.1:16443", tmp_path / "kubeconfig")


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [{"name": "k", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {}}],
            }
        )
    )
    return path


def test_kubectl_refuses_a_remote_kubeconfig_and_explains_missing_or_broken_ones(tmp_path: Path) -> None:
    _runtime(tmp_path)
    assert server_of(_kubeconfig(tmp_path, "https://10.250.0.1:16443")) == "https://10.250.0.1:16443"
    with pytest.raises(InputError, match="192.0.2.7"):
        Kubectl(_kubeconfig(tmp_path, "https://192.0.2.7:6443"))
    with pytest.raises(EnvironmentProblem, match="no kubeconfig at") as missing:
        Kubectl(tmp_path / "absent")
    assert "k8s-setup.sh" in str(missing.value)
    broken = tmp_path / "broken"
    broken.write_text("current-context: nowhere\n")
    with pytest.raises(InputError, match="no usable current context"):
        Kubectl(broken)


def test_images_are_compared_by_their_containerd_names() -> None:
    assert normalized_image("drill-mockstack:local") == "docker.io/library/drill-mockstack:local"
    assert normalized_image("prom/prometheus:v2") == "docker.io/prom/prometheus:v2"
    assert normalized_image("registry.k8s.io/pause:3.10") == "registry.k8s.io/pause:3.10"
    assert normalized_image("busybox") == "docker.io/library/busybox:latest"


def test_exec_wrapper_sets_workdir_and_environment_without_shell_interpolation() -> None:
    argv = wrapped(["traderunner", "status", "$(rm -rf /)"], "/work", {"TR_MODE": "lab"})
    assert argv[:2] == ["sh", "-c"]
    assert argv[3:] == ["drill-exec", "TR_MODE=lab", "traderunner", "status", "$(rm -rf /)"]


def test_the_port_forward_keeper_picks_the_newest_running_pod_of_each_service() -> None:
    def pod(name: str, service: str, phase: str, created: str, deleting: bool = False) -> dict:
        meta = {"name": name, "labels": {manifests.LABEL_SERVICE: service}, "creationTimestamp": created}
        if deleting:
            meta["deletionTimestamp"] = created
        return {"metadata": meta, "status": {"phase": phase}}

    pods = [
        pod("broker-old", "broker", "Running", "2026-01-01T00:00:00Z", deleting=True),
        pod("broker-new", "broker", "Running", "2026-01-01T00:00:05Z"),
        pod("md-pending", "marketdata", "Pending", "2026-01-01T00:00:05Z"),
        pod("md-a", "marketdata", "Running", "2026-01-01T00:00:01Z"),
    ]
    assert running_pods(pods) == {"broker": "broker-new", "marketdata": "md-a"}


def test_state_file_round_trips_through_attach(tmp_path: Path) -> None:
    backend = KubernetesBackend(STACK, tmp_path, run_id="drill-abc", kubeconfig=tmp_path / "kc")
    backend.ports = {"broker.http": 41000}
    backend.keeper = {"pid": 1, "start": "x"}
    backend._save()
    again = attach_backend(tmp_path)
    assert isinstance(again, KubernetesBackend)
    assert again.namespace == "drill-abc" and again.ports == {"broker.http": 41000}
    assert again.keeper == {"pid": 1, "start": "x"}
    assert again.kubeconfig == tmp_path / "kc"


def test_an_unknown_kill_mode_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILL_K8S_KILL", "sometimes")
    with pytest.raises(InputError, match="DRILL_K8S_KILL='sometimes': expected 'hold'"):
        KubernetesBackend(STACK, tmp_path)
    monkeypatch.setenv("DRILL_K8S_KILL", "restart")
    assert KubernetesBackend(STACK, tmp_path).kill_mode == "restart"
    monkeypatch.delenv("DRILL_K8S_KILL")
    assert KubernetesBackend(STACK, tmp_path).kill_mode == "hold"  # a crash lasts until the on-call restarts it


def test_pods_are_evicted_from_a_lost_node_within_seconds() -> None:
    services = KubernetesBackend(STACK, Path("/tmp/x")).compose_services()
    spec = manifests.pod_spec(services["broker"], {"http": 7100}, {})
    assert {(t["key"], t["tolerationSeconds"]) for t in spec["tolerations"]} == {
        ("node.kubernetes.io/unreachable", manifests.EVICT_AFTER_S),
        ("node.kubernetes.io/not-ready", manifests.EVICT_AFTER_S),
    }


def test_only_the_nodes_the_set_up_linked_can_be_lost(tmp_path: Path) -> None:
    from harness.backends.kubernetes.cluster import NodeLink, node_links
    from harness.backends.kubernetes.node_loss import NodeLoss

    link = {"netns": "drill-k8s-n2", "device": "drill-k8s1", "routes": ["10.244.1.0/24 via 10.250.0.1"],
            "host_routes": ["10.244.2.0/24 via 10.250.0.2 dev drill-k8s0"]}
    (tmp_path / "runtime.json").write_text(json.dumps(
        {"nodes": {"drill-node1": {"containerd": "/a"}, "drill-node2": {"containerd": "/b", "link": link}}}
    ))
    assert node_links(tmp_path / "kubeconfig") == {
        "drill-node2": NodeLink("drill-k8s-n2", "drill-k8s1", ("10.244.1.0/24 via 10.250.0.1",),
                                ("10.244.2.0/24 via 10.250.0.2 dev drill-k8s0",))
    }
    backend = KubernetesBackend(STACK, tmp_path / "run", kubeconfig=tmp_path / "kubeconfig")
    with pytest.raises(EnvironmentProblem, match="'drill-node1' is not one .*drill-node2"):
        backend.lose_node("drill-node1")
    fault = NodeLoss(backend, "drill-node2")
    assert fault.params() == {"node": "drill-node2", "services": [], "healthy_timeout_s": 120.0}
