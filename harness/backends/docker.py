"""The docker backend: the stack's ``services:`` as containers, through the compose CLI and the Docker SDK.

* ``up`` runs the compose file unchanged under a per-run project name (``drill-<id>``): Toxiproxy first,
  then the links are created through its API (listening on each link's ``listen_port`` inside the
  stack's network, upstream ``<service>:<container port>``), then every other service. It waits until
  every ``x-drill.health`` endpoint answers 200 from the host.
* Every named port is published on 127.0.0.1 only, on a host port this backend picks per run
  (``DRILL_PORT_<SERVICE>_<PORT>``) and reads back from the container. A fixed choice rather than
  Docker's ephemeral one: an ephemeral port changes when a killed container is started again, and
  drills keep URLs across a restart. Runs side by side never share a port or a project.
* The workdir service's working directory is a per-run host directory (``DRILL_WORKDIR``), bind-mounted,
  so probes read ``artifacts/`` exactly as on the process backend and a container restart keeps its
  SQLite store. Its log is the bind-mounted ``artifacts/logs/latest.log``; every other service's
  container log is followed into ``<run_dir>/logs/<service>.log`` once someone asks for its path.
* Per-service control (kill/stop/start/pause/resume) acts on the containers with the SDK; the operator
  CLI and runbook shell blocks run with ``docker exec`` in the workdir container (in a one-off container
  of the same image, same mounts and network, while it is not running).
* Images come from the compose file's variables; when you did not set them and the local images built
  by ``scripts/build-images.sh`` exist, the backend points ``BASE_IMAGE``, ``TOXIPROXY_IMAGE``,
  ``PROMETHEUS_IMAGE`` and ``ALERTMANAGER_IMAGE`` at them. Nothing is ever pulled here.
* ``<run_dir>/stack.json`` records project, ports, links, intended states and the owning process, so
  ``drill stack status/down`` and ``drill cleanup`` attach; :func:`reap_dead_runs` removes the
  containers, networks and volumes of runs whose drill process is gone.

Docker SDK and compose failures become :class:`~harness.errors.EnvironmentProblem` (no engine, image
missing), :class:`~harness.errors.ServiceStartError` or :class:`~harness.errors.BackendError`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import docker.errors
import yaml

import docker
from harness.backends.base import LOOPBACK, CommandResult, LinkInfo, ServiceState
from harness.backends.container_base import (
    CONTAINER_WORKDIR,
    LOCAL_IMAGES,
    STATE_FILE,
    ContainerBackend,
    dead_run_state,
    mark_reaped,
    read_state,
)
from harness.backends.container_base import interpolate as _interpolate
from harness.backends.reaper import ReaperHandle
from harness.commands import run_command
from harness.errors import BackendError, EnvironmentProblem, PortInUse, ServiceStartError, StackFileError, ToolMissing
from harness.stack import StackDescription
from harness.toxiproxy import ToxiproxyAdapter

__all__ = ["CONTAINER_WORKDIR", "LOCAL_IMAGES", "STATE_FILE", "DockerBackend", "read_state"]
LABEL_RUN_ID = "drill.run-id"
LABEL_RUN_DIR = "drill.run-dir"
LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
SETUP_HINT = "run scripts/docker-setup.sh (installs docker.io and starts dockerd)"
BUILD_HINT = (
    "run scripts/build-images.sh (builds every image offline), or, with a registry, "
    "`docker compose -f docker-compose.yml build` / `pull`"
)
_EXEC_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="docker-exec")


def _docker_error(what: str, exc: Exception) -> BackendError:
    explanation = getattr(exc, "explanation", None) or str(exc)
    return BackendError(f"{what}: Docker said: {explanation}")


@functools.cache
def compose_command() -> tuple[str, ...]:
    """``docker compose`` (v2) when the plugin is there, else ``docker-compose`` (v1)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20, check=False)
        if probe.returncode == 0:
            return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise ToolMissing(
        "neither `docker compose` (v2) nor `docker-compose` (v1) is installed",
        hint="run scripts/docker-setup.sh (Debian package docker-compose)",
    )


def docker_client() -> docker.DockerClient:
    """A client of the local engine, or :class:`EnvironmentProblem` saying how to get one."""
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EnvironmentProblem(f"no Docker engine reachable: {exc}", hint=SETUP_HINT) from exc
    return client


def engine_available() -> bool:
    try:
        docker_client().close()
    except EnvironmentProblem:
        return False
    return True


def _env_name(service: str, port_name: str) -> str:
    return "DRILL_PORT_" + re.sub(r"[^A-Za-z0-9]", "_", f"{service}_{port_name}").upper()


class DockerBackend(ContainerBackend):
    """A stack of containers described by a :class:`StackDescription` (its compose ``services:``)."""

    name = "docker"

    def __init__(
        self,
        stack: StackDescription,
        run_dir: Path,
        *,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        health_timeout: float | None = None,
    ) -> None:
        super().__init__(stack, run_dir, run_id=run_id, env=env, health_timeout=health_timeout)
        self.project = re.sub(r"[^a-z0-9_-]", "-", self.run_id.lower())
        self._reaper: ReaperHandle | None = None
        self._client: docker.DockerClient | None = None
        self._containers: dict[str, Any] = {}
        self._toxiproxy: ToxiproxyAdapter | None = None
        self._followers: dict[str, threading.Thread] = {}
        self._stop_following = threading.Event()

    # --- engine, paths, addresses ----------------------------------------------------------------

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker_client()
        return self._client

    # --- compose ------------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        """The compose file's environment: the shared one plus each published port as ``DRILL_PORT_*``."""
        ports = {}
        for key, port in self.ports.items():
            service, port_name = key.split(".", 1)
            ports[_env_name(service, port_name)] = str(port)
        return self._run_env(ports)

    def _image_exists(self, image: str) -> bool:
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.DockerException as exc:
            raise _docker_error(f"inspect image {image}", exc) from exc
        return True

    def _compose(self, *args: str, timeout: float = 180.0) -> CommandResult:
        argv = [
            *compose_command(),
            "-p",
            self.project,
            "-f",
            str(self.stack.path),
            "--project-directory",
            str(self.stack.stack_dir),
            *args,
        ]
        result = run_command(argv, cwd=self.stack.stack_dir, env=self._env(), timeout=timeout)
        if result.exit_code != 0:
            text = result.output.strip()[-2000:]
            if "port is already allocated" in text or "address already in use" in text:
                raise PortInUse(f"compose {' '.join(args)}: a host port was taken: {text}", hint="run again")
            raise ServiceStartError(
                f"`{' '.join(argv)}` failed (exit {result.exit_code}{', timed out' if result.timed_out else ''}):\n"
                f"    {text}",
                hint=f"the compose file is {self.stack.path}; `drill stack down --run-dir {self.run_dir}` cleans up",
            )
        return result

    def _service_images(self) -> dict[str, str]:
        try:
            doc = yaml.safe_load(self.stack.path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise StackFileError(f"cannot read the compose services: {exc}", location=str(self.stack.path)) from exc
        env = self._env()
        images: dict[str, str] = {}
        for name, svc in (doc.get("services") or {}).items():
            if isinstance(svc, dict) and svc.get("image"):
                images[str(name)] = _interpolate(str(svc["image"]), env)
            elif isinstance(svc, dict):
                raise StackFileError(
                    f"services.{name}: the docker backend needs an 'image:' (build it first)",
                    location=str(self.stack.path),
                )
        return images

    def check_images(self) -> None:
        missing = sorted({img for img in self._service_images().values() if not self._image_exists(img)})
        if missing:
            raise EnvironmentProblem(
                f"image(s) not present in the local Docker engine: {', '.join(missing)}", hint=BUILD_HINT
            )

    # --- lifecycle ----------------------------------------------------------------------------------

    def up(self) -> None:
        """Start the stack (Toxiproxy, links, then every service) and wait until all are healthy."""
        self.client  # noqa: B018 - fails early, with the set-up hint, when there is no engine
        if self.status == "up":
            raise BackendError(f"a stack is already running from {self.run_dir}", hint="`drill stack down` first")
        self.check_images()
        for sub in ("logs", "workdir"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        if self.owner is not None and self._reaper is None:
            self._reaper = ReaperHandle(self.run_dir, self.run_id)  # removes the run's containers if we die
        for attempt in range(3):
            try:
                self._up_once()
                return
            except PortInUse:
                if attempt == 2:
                    raise
                self.links.clear()  # another process took a port between the choice and the bind: again

    def _up_once(self) -> None:
        for spec in self.stack.services.values():
            for port_name in spec.ports:
                self.ports[f"{spec.name}.{port_name}"] = self._leases.take()
        self.status = "starting"
        self._save()
        try:
            toxiproxies = [s.name for s in self.stack.services_with_role("toxiproxy")]
            if toxiproxies:
                self._compose("up", "-d", "--no-build", "--no-deps", *toxiproxies)
                self._mark(toxiproxies, ServiceState.RUNNING)
                self._wait_all_healthy(toxiproxies)
                self._create_links()
            others = [n for n in self.stack.start_order() if n not in toxiproxies]
            self._compose("up", "-d", "--no-build", *others)
            self._mark(others, ServiceState.RUNNING)
            self._read_back_ports()
            self.status = "up"
            self._save()
            self._wait_all_healthy(others)
        except BaseException:
            self.down()
            raise
        self._save()

    def _create_links(self) -> None:
        proxy = self.toxiproxy
        for name, spec in self.stack.links.items():
            target = self.stack.service(spec.target)
            upstream = f"{target.name}:{target.ports[spec.port]}"
            listen_port = spec.listen_port or 20000 + len(self.links)
            # proxy names carry the run id: cleanup and halt verify a Toxiproxy is the run's before touching it
            created = proxy.create_proxy(f"{self.run_id}-{name}", f"0.0.0.0:{listen_port}", upstream)
            toxiproxy_service = self.stack.services_with_role("toxiproxy")[0].name
            self.links[name] = LinkInfo(name, created.name, f"{toxiproxy_service}:{listen_port}", upstream)
        self._save()

    def _read_back_ports(self) -> None:
        """The host ports Docker actually published (they are what endpoints hand out)."""
        for spec in self.stack.services.values():
            if not spec.ports:
                continue
            container = self._container(spec.name, refresh=True)
            if container is None:
                continue
            published = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
            for port_name, cport in spec.ports.items():
                bindings = published.get(f"{cport}/tcp") or []
                for binding in bindings:
                    if binding.get("HostIp") not in (LOOPBACK, "", None):
                        continue
                    if binding.get("HostIp") != LOOPBACK:
                        raise BackendError(
                            f"{spec.name} publishes port {cport} on {binding.get('HostIp') or 'every address'}",
                            hint=f"publish it on 127.0.0.1 only in {self.stack.path}",
                        )
                    self.ports[f"{spec.name}.{port_name}"] = int(binding["HostPort"])

    def down(self) -> None:
        """Remove every container, network and volume of the run (paused ones are unpaused first)."""
        self._stop_following.set()
        try:
            client = self.client
        except EnvironmentProblem:
            self.status = "down"
            self._save()
            raise
        self._unpause_all()
        try:
            self._compose("down", "--volumes", "--remove-orphans", "--timeout", "5", timeout=120.0)
        finally:
            remove_project(client, self.project)  # whatever compose left (or all of it, if compose failed)
            self._containers.clear()
            for name in self._intended:
                self._intended[name] = ServiceState.STOPPED
            self.status = "down"
            self._save()
            self._leases.release()
            if self._reaper is not None:
                self._reaper.release()
                self._reaper = None

    def _unpause_all(self) -> None:
        for container in self._project_containers():
            if container.status == "paused":
                with contextlib.suppress(docker.errors.DockerException):
                    container.unpause()

    def close(self) -> None:
        self._stop_following.set()
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- containers -----------------------------------------------------------------------------------

    def _project_containers(self) -> list[Any]:
        try:
            label = {"label": f"{LABEL_PROJECT}={self.project}"}
            return list(self.client.containers.list(all=True, ignore_removed=True, filters=label))
        except docker.errors.DockerException as exc:
            raise _docker_error(f"list containers of {self.project}", exc) from exc

    def _container(self, service: str, *, refresh: bool = False) -> Any | None:
        self.stack.service(service)
        container = self._containers.get(service)
        if container is not None:
            try:
                container.reload()
                return container
            except docker.errors.NotFound:
                self._containers.pop(service, None)
            except docker.errors.DockerException as exc:
                raise _docker_error(f"inspect {service}", exc) from exc
        try:
            found = self.client.containers.list(
                all=True,
                ignore_removed=True,
                filters={"label": [f"{LABEL_PROJECT}={self.project}", f"{LABEL_SERVICE}={service}"]},
            )
        except docker.errors.DockerException as exc:
            raise _docker_error(f"find the container of {service}", exc) from exc
        if not found:
            return None
        self._containers[service] = found[0]
        return found[0]

    def _require(self, service: str) -> Any:
        container = self._container(service)
        if container is None:
            raise BackendError(
                f"{service} has no container in project {self.project}", hint="start the stack first (`drill stack up`)"
            )
        return container

    def state(self, service: str) -> ServiceState:
        """What the engine says now (another drill process may have acted); intent from stack.json."""
        container = self._container(service)
        if container is None:
            return ServiceState.STOPPED
        status = container.status
        if status in ("running", "restarting"):
            return ServiceState.RUNNING
        if status == "paused":
            return ServiceState.PAUSED
        self._reload_intent(service)
        return ServiceState.STOPPED if self._intended[service] == ServiceState.STOPPED else ServiceState.DEAD

    def _act(self, service: str, what: str, fn: Any) -> None:
        try:
            fn()
        except docker.errors.DockerException as exc:
            raise _docker_error(f"{what} {service}", exc) from exc

    def _wait_status(self, service: str, done: tuple[str, ...], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            container = self._container(service)
            if container is None or container.status in done:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def kill(self, service: str) -> None:
        container = self._running(service)
        self._mark([service], ServiceState.STOPPED)
        self._act(service, "kill", lambda: container.kill(signal="SIGKILL"))
        self._wait_status(service, ("exited", "dead"), 10.0)

    def stop(self, service: str) -> None:
        container = self._running(service)
        self._mark([service], ServiceState.STOPPED)
        if container.status == "paused":
            self._act(service, "unpause", container.unpause)
        self._act(service, "stop", lambda: container.stop(timeout=5))
        self._wait_status(service, ("exited", "dead"), 10.0)

    def start(self, service: str) -> None:
        state = self.state(service)
        if state is ServiceState.PAUSED:
            self.resume(service)
            return
        if state is ServiceState.RUNNING:
            return
        container = self._require(service)
        self._mark([service], ServiceState.RUNNING)
        self._act(service, "start", container.start)
        self._read_back_ports()
        self._save()
        self.wait_healthy(service, self.health_timeout)

    def pause(self, service: str) -> None:
        container = self._running(service)
        if container.status == "paused":
            return
        self._mark([service], ServiceState.PAUSED)
        self._act(service, "pause", container.pause)

    def resume(self, service: str) -> None:
        container = self._container(service)
        if container is not None and container.status == "paused":
            self._act(service, "unpause", container.unpause)
        if container is not None:
            self._mark([service], ServiceState.RUNNING)

    def _running(self, service: str) -> Any:
        container = self._require(service)
        if container.status not in ("running", "paused", "restarting"):
            raise BackendError(
                f"{service} is not running (container {container.name}: {container.status})",
                hint=f"start it first; its log: docker logs {container.name}",
            )
        return container

    # --- health ----------------------------------------------------------------------------------------

    def _log_where(self, service: str) -> str:
        container = self._containers.get(service)
        return f"docker logs {container.name}" if container is not None else str(self.run_dir / "logs")

    def _down_hint(self) -> str:
        return f"`drill stack down --run-dir {self.run_dir}` removes the containers"

    def _start_problem(self, service: str) -> str | None:
        container = self._container(service)
        if container is None or container.status in ("exited", "dead"):
            code = container.attrs.get("State", {}).get("ExitCode") if container is not None else None
            return f"exited (code {code}) before it was healthy"
        return None

    def _not_serving(self, service: str) -> str | None:
        state = self.state(service)
        return None if state in (ServiceState.RUNNING, ServiceState.PAUSED) else f"is not running ({state.value})"

    # --- logs ---------------------------------------------------------------------------------------------

    def log_path(self, service: str) -> Path:
        spec = self.stack.service(service)
        if spec.log and service == self.stack.workdir_service:
            return self.workdir / spec.log
        path = self.run_dir / "logs" / f"{service}.log"
        self._follow(service, path)
        return path

    def log_tail(self, service: str, lines: int = 20) -> list[str]:
        try:
            container = self._container(service)
            if container is not None:
                raw = container.logs(tail=lines)
                return str(raw.decode("utf-8", errors="replace")).splitlines()[-lines:]
        except (docker.errors.DockerException, BackendError, EnvironmentProblem):
            pass
        path = self.run_dir / "logs" / f"{service}.log"
        try:
            return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def _follow(self, service: str, path: Path) -> None:
        """Copy the container's log into ``path`` as it is written, across container restarts."""
        thread = self._followers.get(service)
        if thread is not None and thread.is_alive():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        ready = threading.Event()
        thread = threading.Thread(
            target=self._follow_loop, args=(service, path, ready), name=f"follow-{service}", daemon=True
        )
        self._followers[service] = thread
        thread.start()
        ready.wait(2.0)  # the current log is in the file before the caller reads it

    def _follow_loop(self, service: str, path: Path, ready: threading.Event) -> None:
        since: float | None = None
        with path.open("ab") as out:
            while not self._stop_following.is_set():
                try:
                    container = self._container(service)
                    if container is None:
                        ready.set()
                        time.sleep(0.5)
                        continue
                    running = container.status in ("running", "paused", "restarting")
                    stream: Iterator[bytes] = container.logs(stream=True, follow=running, since=since)
                    first = True
                    for chunk in stream:
                        out.write(chunk)
                        out.flush()
                        if first:
                            first = False
                        if self._stop_following.is_set():
                            break
                    since = time.time()
                    ready.set()
                    if not running:
                        time.sleep(0.3)
                except (docker.errors.DockerException, BackendError, EnvironmentProblem, OSError):
                    ready.set()
                    time.sleep(0.5)

    # --- operator CLI and runbook shell -----------------------------------------------------------------

    def _exec(self, service: str, argv: list[str], timeout: float) -> CommandResult:
        """``docker exec`` in the service's container (a one-off container like it, when it is not running)."""
        container = self._require(service)
        start = time.monotonic()
        env = self._exec_env()
        if container.status == "running":
            return self._exec_in(container, argv, env, timeout, start)
        return self._run_once(container, argv, env, timeout, start)

    def _exec_in(
        self, container: Any, argv: list[str], env: dict[str, str], timeout: float, start: float
    ) -> CommandResult:
        api = self.client.api
        try:
            exec_id = api.exec_create(container.id, argv, workdir=CONTAINER_WORKDIR, environment=env)["Id"]
        except docker.errors.DockerException as exc:
            raise _docker_error(f"docker exec {' '.join(argv)} in {container.name}", exc) from exc
        future = _EXEC_POOL.submit(api.exec_start, exec_id, demux=True)
        try:
            out, err = future.result(timeout=timeout)
        except FutureTimeout:
            with contextlib.suppress(docker.errors.DockerException, ProcessLookupError, PermissionError):
                pid = int(api.exec_inspect(exec_id).get("Pid") or 0)
                if pid > 0:
                    os.kill(pid, signal.SIGKILL)  # a host pid: the engine reports it in the host's namespace
            return CommandResult(tuple(argv), -9, "", "", time.monotonic() - start, timed_out=True)
        except docker.errors.DockerException as exc:
            raise _docker_error(f"docker exec {' '.join(argv)} in {container.name}", exc) from exc
        code = api.exec_inspect(exec_id).get("ExitCode")
        return CommandResult(
            tuple(argv),
            int(code if code is not None else -1),
            (out or b"").decode("utf-8", errors="replace"),
            (err or b"").decode("utf-8", errors="replace"),
            time.monotonic() - start,
        )

    def _run_once(
        self, container: Any, argv: list[str], env: dict[str, str], timeout: float, start: float
    ) -> CommandResult:
        networks = list(((container.attrs.get("NetworkSettings") or {}).get("Networks") or {}).keys())
        mounts = [_mount_spec(m) for m in container.attrs.get("Mounts") or []]
        try:
            once = self.client.containers.create(
                container.image.id,
                argv,
                working_dir=CONTAINER_WORKDIR,
                environment=env,
                volumes=mounts,
                network=networks[0] if networks else None,
                labels={LABEL_RUN_ID: self.run_id, LABEL_PROJECT: self.project, LABEL_RUN_DIR: str(self.run_dir)},
            )
        except docker.errors.DockerException as exc:
            raise _docker_error(f"one-off container for {' '.join(argv)}", exc) from exc
        try:
            once.start()
            try:
                result = once.wait(timeout=timeout)
            except Exception:  # requests' ReadTimeout: the command outlived its timeout
                with contextlib.suppress(docker.errors.DockerException):
                    once.kill()
                return CommandResult(tuple(argv), -9, "", "", time.monotonic() - start, timed_out=True)
            out = once.logs(stdout=True, stderr=False).decode("utf-8", errors="replace")
            err = once.logs(stdout=False, stderr=True).decode("utf-8", errors="replace")
            return CommandResult(tuple(argv), int(result.get("StatusCode", -1)), out, err, time.monotonic() - start)
        except docker.errors.DockerException as exc:
            raise _docker_error(f"one-off container for {' '.join(argv)}", exc) from exc
        finally:
            with contextlib.suppress(docker.errors.DockerException):
                once.remove(force=True)

    # --- state file ------------------------------------------------------------------------------------

    def _state_extra(self) -> dict[str, Any]:
        return {"project": self.project}

    def _restore_extra(self, data: Mapping[str, Any]) -> None:
        self.project = str(data.get("project") or self.project)


def _mount_spec(mount: dict[str, Any]) -> str:
    source = mount["Source"] if mount.get("Type") == "bind" else mount["Name"]
    return f"{source}:{mount['Destination']}:{'rw' if mount.get('RW') else 'ro'}"


def _remove_container(client: docker.DockerClient, container: Any, wait_s: float = 30.0) -> bool:
    """Force-remove ``container``; True if this call removed it. Another process (the run's reaper, a
    second ``drill cleanup``) may be removing it already: then wait until it is gone, so the project's
    network can be removed after it."""
    try:
        container.remove(force=True, v=True)
        return True
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        if exc.status_code != 409 or "already in progress" not in str(exc):
            raise
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            client.containers.get(container.id)
        except docker.errors.NotFound:
            return False
        time.sleep(0.2)
    raise BackendError(
        f"container {container.name} was still being removed by another process after {wait_s:g}s",
        hint="run `drill cleanup` again once Docker has finished",
    )


def remove_project(client: docker.DockerClient, project: str) -> list[str]:
    """Force-remove every container, network and volume labelled with compose ``project``; what was removed."""
    removed: list[str] = []
    label = {"label": f"{LABEL_PROJECT}={project}"}
    try:
        # ignore_removed: the run's reaper (or a second cleanup) may remove a container between the engine's
        # listing and docker-py's inspect of each entry; without it that race fails the whole cleanup
        for container in client.containers.list(all=True, ignore_removed=True, filters=label):
            if container.status == "paused":
                with contextlib.suppress(docker.errors.DockerException):
                    container.unpause()
            if _remove_container(client, container):
                removed.append(f"container {container.name}")
        for network in client.networks.list(filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()
                removed.append(f"network {network.name}")
        for volume in client.volumes.list(filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)
                removed.append(f"volume {volume.name}")
    except docker.errors.DockerException as exc:
        raise _docker_error(f"remove project {project}", exc) from exc
    return removed


def reap_dead_runs() -> list[str]:
    """Remove the containers, networks and volumes of drill runs whose drill process is gone.

    A run is dead when its ``stack.json`` (found through the ``drill.run-dir`` label) is missing, says
    ``down``, or names an owner process that no longer exists. Stacks started by hand
    (``drill stack up``, or compose without a run id) are never touched.
    """
    client = docker_client()
    try:
        projects: dict[str, str] = {}
        for kind in (
            client.containers.list(all=True, ignore_removed=True, filters={"label": LABEL_RUN_ID}),
            client.networks.list(filters={"label": LABEL_RUN_ID}),
            client.volumes.list(filters={"label": LABEL_RUN_ID}),
        ):
            for obj in kind:
                labels = obj.attrs.get("Labels") or (obj.attrs.get("Config") or {}).get("Labels") or {}
                project, run_dir = labels.get(LABEL_PROJECT), labels.get(LABEL_RUN_DIR, "")
                if project and run_dir and labels.get(LABEL_RUN_ID, "manual") != "manual":
                    projects[project] = run_dir
    except docker.errors.DockerException as exc:
        raise _docker_error("list labelled containers", exc) from exc
    notes: list[str] = []
    for project, run_dir in sorted(projects.items()):
        data = dead_run_state(run_dir)
        if data is None:
            continue
        removed = remove_project(client, project)
        if removed:
            notes.append(f"{run_dir}: removed what a dead run left behind: {', '.join(removed)}")
        notes += mark_reaped(run_dir, data)
    client.close()
    return notes
