"""Running a command with a timeout and a cap on captured output (operator CLI, runbook blocks).

The command runs in its own process group, so a timeout kills everything it started. Arguments
are passed as a list (never pasted into shell source); runbook shell blocks are run as a script
given to ``bash -c`` with parameters passed as positional arguments, not interpolated.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.backends.base import CommandResult

MAX_OUTPUT = 64 * 1024


def _cap(data: bytes, limit: int) -> str:
    text = data.decode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    head = data[: limit // 2].decode("utf-8", errors="replace")
    tail = data[-limit // 2 :].decode("utf-8", errors="replace")
    return f"{head}\n[... {len(data) - limit} bytes truncated ...]\n{tail}"


def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    max_output: int = MAX_OUTPUT,
    stdin: str | None = None,
) -> CommandResult:
    """Run ``argv``; on timeout kill its process group and report ``timed_out=True`` (exit code -9)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return CommandResult(
        argv=tuple(argv),
        exit_code=proc.returncode if not timed_out else -9,
        stdout=_cap(out, max_output),
        stderr=_cap(err, max_output),
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
    )
