"""Running commands for an attached stack: its declared control commands, the operator CLI, runbook blocks.

Everything runs on this host, in the engine's working directory (``x-drill.attach.workdir``, else
the stack file's directory), with the harness's environment plus ``x-drill.attach.env``. A control
command that fails or hangs is a :class:`~harness.errors.BackendError` that names the command, the
field that declares it and what it printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.backends.base import CommandResult
from harness.commands import run_command
from harness.errors import BackendError
from harness.stack import StackDescription
from harness.stack_attach import AttachSpec, ControlCommand


class Executor:
    def __init__(self, stack: StackDescription, spec: AttachSpec, env: Mapping[str, str] | None = None) -> None:
        self.stack = stack
        self.spec = spec
        self.overrides = dict(env or {})

    @property
    def cwd(self) -> Path:
        workdir = self.spec.workdir
        return workdir if workdir is not None and workdir.is_dir() else self.stack.stack_dir

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.spec.env)
        env.update(self.overrides)
        return env

    def _run(self, argv: Sequence[str], timeout: float, what: str, hint: str) -> CommandResult:
        try:
            return run_command(argv, cwd=self.cwd, env=self.env(), timeout=timeout)
        except OSError as exc:
            raise BackendError(f"cannot run {what}: {argv[0]}: {exc.strerror}", hint=hint) from exc

    def control(self, command: ControlCommand, service: str) -> CommandResult:
        """Run a declared control command; a non-zero exit or a timeout is an error naming its field."""
        fix = f"run it by hand to see why, then fix {command.field} ({command.location})"
        result = self._run(command.argv, self.spec.command_timeout_s, f"the {command.action} command of {service}", fix)
        if result.timed_out or result.exit_code != 0:
            observed = (
                f"no exit within {self.spec.command_timeout_s:g}s (x-drill.attach.command_timeout_s)"
                if result.timed_out else f"exit code {result.exit_code}"
            )
            output = result.output.strip()[-1500:] or "(no output)"
            raise BackendError(
                f"the {command.action} command of {service} failed: `{command.text}`\n"
                f"  expected: exit code 0\n  observed: {observed}\n  output: {output}",
                hint=fix,
            )
        return result

    def operator(self, args: list[str], timeout: float) -> CommandResult:
        op = self.stack.operator
        if op is None:
            raise BackendError("the stack has no x-drill.operator", hint=f"declare it in {self.stack.path}")
        hint = f"put {op.command[0]} on PATH (x-drill.attach.env.PATH) or fix x-drill.operator in {self.stack.path}"
        return self._run([*op.command, *args], timeout, "the operator CLI", hint)

    def shell(self, script: str, timeout: float) -> CommandResult:
        return self._run(["bash", "-o", "pipefail", "-c", script], timeout, "a runbook block", "install bash")
