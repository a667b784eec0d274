"""HTTP health endpoints: status code, optionally a JSON field (``checks.broker.ok``) equal to a value."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.probes._http import DEFAULT_TIMEOUT, HttpReply, http_get
from harness.probes.base import Probe, json_path
from harness.waiting import Observation

if TYPE_CHECKING:
    import requests

    from harness.backends.base import Backend

_ANY = object()


class HttpHealth(Probe):
    """Satisfied when ``GET url`` answers ``status`` (and ``field`` equals ``equals``). Value: the field or status."""

    name = "http_health"

    def __init__(
        self,
        url: str,
        *,
        status: int = 200,
        field: str | None = None,
        equals: object = _ANY,
        timeout: float = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self.status = status
        self.field = field
        self.equals = equals
        self.timeout = timeout
        self.session = session

    @classmethod
    def for_service(cls, backend: Backend, service: str, *, status: int = 200, field: str | None = None,
                    equals: object = _ANY, timeout: float = DEFAULT_TIMEOUT) -> HttpHealth:
        """The health endpoint the stack description declares for ``service``."""
        from harness.errors import StackFileError

        spec = backend.stack.service(service)
        if spec.health is None:
            raise StackFileError(
                f"service '{service}' declares no health endpoint",
                location=str(backend.stack.path),
                hint=f"add x-drill.health: {{port: ..., path: /health}} to services.{service}",
            )
        url = backend.endpoint(service, spec.health.port).url + spec.health.path
        return cls(url, status=status, field=field, equals=equals, timeout=timeout)

    def __call__(self) -> Observation:
        reply = http_get(self.url, timeout=self.timeout, session=self.session)
        if not isinstance(reply, HttpReply):
            return Observation(False, reply.observed)
        head = f"HTTP {reply.status}"
        if self.field is None:
            return Observation(reply.status == self.status, reply.health_summary(), reply.status)
        ok, document, problem = reply.json()
        if not ok:
            return Observation(False, problem)
        found, value = json_path(document, self.field)
        if not found:
            return Observation(False, f"{head}: no field {self.field!r} in {reply.text[:200]}")
        matched = reply.status == self.status and (self.equals is _ANY or value == self.equals)
        return Observation(matched, f"{head}, {self.field} = {value!r}", value)

    def describe(self) -> str:
        want = f"HTTP {self.status}"
        if self.field is not None:
            want += f" with {self.field}" + ("" if self.equals is _ANY else f" == {self.equals!r}")
        return f"{want} from {self.url}"
