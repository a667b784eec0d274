"""Service logs of an attached stack: the files ``services.NAME.x-drill.attach.log`` names, read where they are."""

from __future__ import annotations

import os
from pathlib import Path

from harness.stack_attach import AttachSpec

TAIL_BYTES = 64 * 1024


def log_path(spec: AttachSpec, run_dir: Path, service: str) -> Path:
    """The declared log file; a service without one gets a path in the run directory that never fills."""
    declared = spec.service(service).log
    return declared if declared is not None else run_dir / "logs" / f"{service}.log"


def log_tail(spec: AttachSpec, run_dir: Path, service: str, lines: int = 20) -> list[str]:
    svc = spec.service(service)
    if svc.log is None:
        return [f"(no log file declared for {service}: set {svc.field}.log to read it in drills)"]
    try:
        with svc.log.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace").splitlines()[-lines:]
    except OSError as exc:
        return [f"(cannot read {svc.log}: {exc.strerror}; check {svc.field}.log)"]
