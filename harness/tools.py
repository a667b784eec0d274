"""Finding the third-party binaries the process backend runs, with one clear message when missing."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ToolMissing


@dataclass(frozen=True)
class Tool:
    key: str
    names: tuple[str, ...]
    install_hint: str


TOOLS: dict[str, Tool] = {
    "toxiproxy": Tool(
        "toxiproxy",
        ("toxiproxy-server",),
        "run scripts/setup.sh (go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0 into .tools/bin), "
        "or put toxiproxy-server on PATH",
    ),
    "prometheus": Tool(
        "prometheus", ("prometheus",), "install the Debian package 'prometheus' (scripts/setup.sh does)"
    ),
    "promtool": Tool("promtool", ("promtool",), "install the Debian package 'prometheus' (scripts/setup.sh does)"),
    "alertmanager": Tool(
        "alertmanager",
        ("alertmanager", "prometheus-alertmanager"),
        "install the Debian package 'prometheus-alertmanager' (scripts/setup.sh does)",
    ),
    "amtool": Tool("amtool", ("amtool",), "install the Debian package 'prometheus-alertmanager'"),
}


def tools_dir() -> Path:
    """``<drill project root>/.tools/bin``: tools a project's set-up script installed for it."""
    from harness.project import current_project

    return current_project().root / ".tools" / "bin"


def search_path() -> str:
    """PATH plus the drill project's own .tools/bin (where scripts/setup.sh puts Toxiproxy)."""
    extra = os.environ.get("DRILL_TOOLS_DIR", str(tools_dir()))
    return os.pathsep.join(p for p in (os.environ.get("PATH", ""), extra) if p)


def find_tool(key: str) -> str:
    """Absolute path of the tool's binary, or :class:`ToolMissing` naming how to install it."""
    tool = TOOLS[key]
    path = search_path()
    for name in tool.names:
        found = shutil.which(name, path=path)
        if found:
            return found
    raise ToolMissing(
        f"{' / '.join(tool.names)} not found on PATH or in {tools_dir()}",
        hint=tool.install_hint,
    )
