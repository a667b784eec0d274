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


def tools_dirs() -> tuple[Path, ...]:
    """Where set-up scripts put tools, besides PATH: ``$DRILL_TOOLS_DIR`` when set; else the drill
    project's ``.tools/bin`` and the ``.tools/bin`` of the source checkout the harness runs from (an
    editable install: this repository's ``scripts/setup.sh`` builds Toxiproxy there)."""
    from harness.project import current_project

    if os.environ.get("DRILL_TOOLS_DIR"):  # set: exactly there (besides PATH)
        return (Path(os.environ["DRILL_TOOLS_DIR"]),)
    dirs = [current_project().root / ".tools" / "bin", Path(__file__).resolve().parent.parent / ".tools" / "bin"]
    return tuple(dict.fromkeys(dirs))


def search_path() -> str:
    """PATH plus :func:`tools_dirs`."""
    return os.pathsep.join(p for p in (os.environ.get("PATH", ""), *map(str, tools_dirs())) if p)


def find_tool(key: str) -> str:
    """Absolute path of the tool's binary, or :class:`ToolMissing` naming how to install it."""
    tool = TOOLS[key]
    path = search_path()
    for name in tool.names:
        found = shutil.which(name, path=path)
        if found:
            return found
    raise ToolMissing(
        f"{' / '.join(tool.names)} not found on PATH or in {', '.join(map(str, tools_dirs()))}",
        hint=tool.install_hint,
    )
