"""The harness's one exception tree.

Every error a person can see says what was expected, what was observed, and what to do next
(``hint``). Adapters (Docker, Toxiproxy, subprocess, HTTP) translate their libraries' errors into
the most specific class here with ``raise ... from exc``. The CLI maps classes to exit codes:

    DrillError                       base (exit 1 if nothing more specific)
    ├── InputError                   bad input a person wrote: stack file, feature, tag, runbook (exit 2)
    │   ├── StackFileError           the stack description (file:line or field)
    │   ├── FeatureError             features / steps / tags / deadlines (file:line)
    │   └── RunbookError             the incident runbook: unreadable, no such section/step, not actionable
    ├── EnvironmentProblem           the machine lacks something (exit 3)
    │   ├── ToolMissing              a binary (toxiproxy-server, prometheus, ...) is not installed
    │   └── PortInUse                a port the stack needs is taken
    ├── BackendError                 starting, stopping or controlling services (exit 3)
    │   └── ServiceStartError        a service did not become healthy
    ├── ToxiproxyError               the Toxiproxy API refused or did not answer
    ├── FaultError                   injecting or rolling back a fault
    │   ├── FaultInjectionError
    │   └── FaultRollbackError
    ├── RunbookStepFailed            a runbook step's command failed or timed out when a drill ran it (exit 1)
    ├── SafetyRefusal                live target without override, halt file present (exit 4)
    │   └── DrillHalted              `drill halt` stopped this drill: reported "halted", never a timeout
    ├── FaultRevertedOutside         a fault in place was reverted by someone else: detection cannot be judged
    └── ProbeError                   reading the world failed
        ├── WaitTimeout              a deadline passed: expected vs observed (exit 1)
        └── ServiceDied              the service a wait depends on is dead (exit 1)
"""

from __future__ import annotations


class DrillError(Exception):
    """Base of every harness error; ``hint`` says what to do next."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class InputError(DrillError):
    exit_code = 2

    def __init__(self, message: str, *, location: str | None = None, hint: str | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message, hint=hint)
        self.location = location


class StackFileError(InputError):
    pass


class FeatureError(InputError):
    pass


class RunbookError(InputError):
    pass


class RunbookStepFailed(DrillError):
    pass


class EnvironmentProblem(DrillError):
    exit_code = 3


class ToolMissing(EnvironmentProblem):
    pass


class PortInUse(EnvironmentProblem):
    pass


class BackendError(DrillError):
    exit_code = 3


class ServiceStartError(BackendError):
    pass


class ToxiproxyError(DrillError):
    exit_code = 3


class FaultError(DrillError):
    pass


class FaultInjectionError(FaultError):
    pass


class FaultRollbackError(FaultError):
    pass


class SafetyRefusal(DrillError):
    exit_code = 4


class DrillHalted(SafetyRefusal):
    pass


class FaultRevertedOutside(DrillError):
    pass


class ProbeError(DrillError):
    pass


class WaitTimeout(ProbeError):
    pass


class ServiceDied(ProbeError):
    pass
