"""The dashboard in a real headless Chromium: the SLA badge is green, then turns red by itself.

The dashboard runs as a real process (``python -m mockstack.dashboard``) against a stub trading
engine in the test process: this test is about rendering and auto-refresh, not about the engine.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ServiceProcess, free_port, http_json, start_service

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GREEN = re.compile(r"(^|\s)badge-green(\s|$)")
RED = re.compile(r"(^|\s)badge-red(\s|$)")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def engine_status(sla: str) -> dict[str, Any]:
    violations = [] if sla == "ok" else [{"symbol": "ABC", "kind": "nan", "timestamp": 0, "detail": "close is NaN"}]
    return {
        "mode": "paper",
        "kill_switch": {"active": False, "reason": None, "activated_at": None, "activated_by": None},
        "broker": {"connected": True, "manual_intervention_required": False},
        "positions": {"ABC": 10, "DEFG": -5},
        "daily_pnl": {"realized": 12.5, "unrealized": -2.0, "total": 10.5, "max_daily_loss": 500.0},
        "sla": {"status": sla, "violations": violations, "checked_at": "2026-01-05T14:35:00Z"},
    }


class StubEngine:
    """``GET /api/status`` answering whatever ``self.status`` holds (thread-safe swap)."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = engine_status("ok")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:
                if self.path != "/api/status":
                    self.send_error(404)
                    return
                body = json.dumps(outer.status).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubEngine:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def engine() -> Iterator[StubEngine]:
    with StubEngine() as stub:
        yield stub


@pytest.fixture
def dashboard(tmp_path: Path, engine: StubEngine) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = start_service(
        "dashboard",
        [
            "python",
            "-m",
            "mockstack.dashboard",
            "--http-port",
            str(port),
            "--traderunner-url",
            f"http://127.0.0.1:{engine.port}",
        ],
        tmp_path / "logs",
        health_url=f"http://127.0.0.1:{port}/health",
        ports={"http": port},
    )
    try:
        yield proc
    finally:
        assert proc.stop() == 0, f"dashboard did not exit 0 on SIGTERM:\n{proc.log_text()[-2000:]}"


def chromium_path() -> str:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(
            f"{CHROMIUM} not found: install the Debian package 'chromium' (apt-get install chromium, "
            "or run scripts/setup.sh)",
            pytrace=False,
        )
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


def test_sla_badge_turns_red_on_its_own_when_the_sla_is_violated(
    dashboard: ServiceProcess, engine: StubEngine, request: pytest.FixtureRequest
) -> None:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("the Python package 'playwright' is missing: pip install -e '.[dev]'", pytrace=False)
    executable = chromium_path()
    url = f"http://127.0.0.1:{dashboard.ports['http']}/"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(url)
            badge = page.locator("#sla-badge")
            expect(badge).to_have_class(GREEN, timeout=5000)
            expect(badge).to_contain_text("OK")
            expect(page.locator("#kill-switch")).to_have_attribute("data-state", "inactive")
            expect(page.locator("#broker-link")).to_have_attribute("data-state", "connected")
            expect(page.locator("#positions")).to_contain_text("DEFG")
            expect(page.locator("#daily-pnl")).to_contain_text("+10.50")
            page.screenshot(path=str(ARTIFACTS / "dashboard-sla-ok.png"), full_page=True)

            flipped = time.monotonic()
            engine.status = engine_status("violated")
            # no reload from the test: the page's own 2 s meta refresh must bring the change
            expect(page.locator("#sla-badge")).to_have_class(RED, timeout=6000)
            expect(page.locator("#sla-badge")).to_contain_text("VIOLATED")
            print(f"badge turned red {time.monotonic() - flipped:.2f}s after the SLA was violated")
            page.screenshot(path=str(ARTIFACTS / "dashboard-sla-violated.png"), full_page=True)
        except BaseException:
            shot = ARTIFACTS / f"FAILED-{request.node.name}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failure: {shot}\ndashboard log:\n{dashboard.log_text()[-2000:]}")
            raise
        finally:
            browser.close()


def test_engine_down_shows_traderunner_unreachable_instead_of_crashing(
    dashboard: ServiceProcess, engine: StubEngine
) -> None:
    base = f"http://127.0.0.1:{dashboard.ports['http']}"
    engine.__exit__()
    status, summary = http_json("GET", f"{base}/api/summary")
    assert status == 200, summary
    assert summary["traderunner"]["reachable"] is False
    assert summary["engine"] is None
    status, page = http_json("GET", f"{base}/")
    assert status == 200
    assert "TRADERUNNER UNREACHABLE" in page
    assert 'id="sla-badge"' in page and "badge-grey" in page
    assert http_json("GET", f"{base}/health")[0] == 200
    assert dashboard.alive()
