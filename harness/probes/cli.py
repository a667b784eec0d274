"""The stack's operator CLI (``x-drill.operator``) run through the backend: exit code and output."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from harness.errors import InputError
from harness.probes.base import Probe
from harness.waiting import Observation

if TYPE_CHECKING:
    from harness.backends.base import Backend


class OperatorCommand(Probe):
    """Satisfied when ``operator(args)`` exits ``exit_code`` (None = any) and its output matches ``output``.

    Value: the :class:`~harness.backends.base.CommandResult`.
    """

    name = "operator_cli"

    def __init__(
        self,
        backend: Backend,
        args: list[str],
        *,
        exit_code: int | None = 0,
        output: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.backend = backend
        self.args = list(args)
        self.exit_code = exit_code
        try:
            self.output = re.compile(output) if output is not None else None
        except re.error as exc:
            raise InputError(f"invalid output regex {output!r}: {exc}") from exc
        self.timeout = timeout

    def __call__(self) -> Observation:
        result = self.backend.operator(self.args, timeout=self.timeout)
        text = result.output.strip()
        shown = text if len(text) <= 400 else text[:200] + " ... " + text[-200:]
        if result.timed_out:
            return Observation(False, f"timed out after {self.timeout:g}s; output: {shown}", result)
        ok = (self.exit_code is None or result.exit_code == self.exit_code) and (
            self.output is None or self.output.search(result.output) is not None
        )
        return Observation(ok, f"exit {result.exit_code}: {shown or '(no output)'}", result)

    def describe(self) -> str:
        want = "any exit code" if self.exit_code is None else f"exit {self.exit_code}"
        if self.output is not None:
            want += f" and output matching /{self.output.pattern}/"
        return f"`{' '.join(self.args)}` gives {want}"
