"""The attach backend (``--backend attach``): a stack that is already running, described by ``x-drill.attach``.

Modules: :mod:`.backend` (the backend: check, addresses, lifecycle), :mod:`.control` (service
commands and what the harness did), :mod:`.exec` (running commands on this host), :mod:`.logs`,
:mod:`.proxies` (the team's Toxiproxy, touched only where a drill acted).
"""

from __future__ import annotations

from harness.backends.attach.backend import AttachBackend, preflight

__all__ = ["AttachBackend", "preflight"]
