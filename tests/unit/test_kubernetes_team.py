"""The team's own Kubernetes manifests (x-drill.kubernetes.manifests): read, checked, adopted. No cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.backends.kubernetes import manifests, team
from harness.backends.kubernetes.control import KubernetesBackend
from harness.errors import StackFileError
from harness.stack import load_stack
from tests.support.k8s_team import TEAM_SERVICES, mock_manifests, team_stack

ENV = {"DRILL_WORKDIR": "/runs/r1/workdir", "DRILL_RUN_DIR": "/runs/r1"}


def _read(stack_file: Path) -> team.TeamManifests:
    stack = load_stack(stack_file)
    return team.read_team_manifests(stack, yaml.safe_load(stack_file.read_text()), ENV)


def test_the_teams_deployments_replace_the_translation_of_their_services_only(tmp_path: Path) -> None:
    stack_file = team_stack(tmp_path, mock_manifests())
    found = _read(stack_file)
    assert set(found.deployments) == set(TEAM_SERVICES)
    assert found.service_names == set(TEAM_SERVICES)
    assert found.local_images() == {"drill-mockstack:local": "broker"}
    assert found.sources["traderunner"].endswith("traderunner.yaml (document 1)")
    # ${DRILL_WORKDIR} resolved as in the compose file: the engine's working directory is the run's
    volumes = found.deployments["traderunner"]["spec"]["template"]["spec"]["volumes"]
    assert volumes[0]["hostPath"]["path"] == "/runs/r1/workdir"
    backend = KubernetesBackend(load_stack(stack_file), tmp_path / "run")
    translated = backend.compose_services()
    assert set(translated) == set(backend.stack.services) - set(TEAM_SERVICES)  # toxiproxy, monitoring, dashboard


def test_adopting_adds_what_the_backend_needs_and_removes_nothing(tmp_path: Path) -> None:
    found = _read(team_stack(tmp_path, mock_manifests()))
    written = found.deployments["broker"]
    labels = {manifests.LABEL_RUN_ID: "drill-x", manifests.LABEL_SERVICE: "broker"}
    aliases = manifests.host_aliases({"broker": "10.96.0.10", "toxiproxy": "10.96.0.11"})
    dep = team.adopt(written, "broker", labels, aliases, manifests.eviction_tolerations())
    pod = dep["spec"]["template"]["spec"]
    assert dep["metadata"]["labels"] == {"team": "desk", **labels}
    assert dep["spec"]["template"]["metadata"]["labels"] == {"app.kubernetes.io/name": "broker", **labels}
    assert dep["spec"]["selector"] == written["spec"]["selector"]  # the team's selector, untouched
    assert pod["containers"][0]["name"] == "broker"  # the one container: the one a drill kills and pauses
    assert pod["containers"][0]["args"] == written["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"ip": "10.96.0.10", "hostnames": ["broker"]} in pod["hostAliases"]
    assert {t["key"] for t in pod["tolerations"]} == {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"}
    assert written["spec"]["template"]["spec"]["containers"][0]["name"] == "app"  # a copy: the read objects stay


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: broker}
spec:
  replicas: 1
  selector: {matchLabels: {app: broker}}
  template:
    metadata: {labels: {app: broker}}
    spec:
      containers: [{name: app, image: drill-mockstack:local}]
"""


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ("kind: [unclosed\n", "bad.yaml:2", "does not parse"),
        ("- just\n- a list\n", "bad.yaml (document 1)", "must be a mapping"),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n", "bad.yaml (document 1)",
         "kind Namespace is not supported"),
        ("apiVersion: v1\nkind: List\nitems: []\n", "bad.yaml (document 1)", "a List is not accepted"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: broker, namespace: prod}\n", "bad.yaml (document 1)",
         "sets metadata.namespace: prod"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
         + DEPLOYMENT.replace("name: broker}", "name: gateway}"), "bad.yaml (document 2)",
         "Deployment 'gateway' is not a service of the stack file"),
        (DEPLOYMENT.replace("replicas: 1", "replicas: 3"), "bad.yaml (document 1)", "has replicas: 3"),
        (DEPLOYMENT.replace("[{name: app, image: drill-mockstack:local}]",
                            "[{name: app, image: a}, {name: sidecar, image: b}]"), "bad.yaml (document 1)",
         "2 containers and none is named 'broker'"),
        (DEPLOYMENT + "---\n" + DEPLOYMENT, "bad.yaml (document 2)", "a second Deployment 'broker'"),
        ("kind: Service\nmetadata: {name: x}\n", "bad.yaml (document 1)", "'apiVersion' and 'kind' are required"),
    ],
)
def test_bad_manifests_are_stack_file_errors_naming_the_file_and_document(
    body: str, where: str, says: str, tmp_path: Path
) -> None:
    stack_file = team_stack(tmp_path, {"bad.yaml": body})
    with pytest.raises(StackFileError, match=says) as raised:
        _read(stack_file)
    assert raised.value.location is not None and raised.value.location.endswith(where), raised.value.location
    assert raised.value.exit_code == 2


def test_a_glob_that_matches_nothing_or_a_bad_field_is_named(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match=r"'k8s/\*\.yml' matches no file") as raised:
        _read(team_stack(tmp_path / "a", mock_manifests(), globs=("k8s/*.yml",)))
    assert raised.value.hint is not None and "relative to the stack file" in raised.value.hint
    stack_file = team_stack(tmp_path / "b", {})
    stack_file.write_text(stack_file.read_text().replace("kubernetes: {manifests: [k8s/*.yaml]}", "kubernetes: 3"))
    with pytest.raises(StackFileError, match="expected a mapping with 'manifests:'"):
        _read(stack_file)


def test_without_the_field_nothing_changes() -> None:
    root = Path(__file__).resolve().parents[2] / "docker-compose.yml"
    assert _read(root) == team.TeamManifests()
