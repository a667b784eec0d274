"""report.html in a real headless Chromium: it renders offline and every timeline chart is visible.

The page is opened from a file:// URL with every network request blocked, which proves it is
self-contained (inline CSS and SVG, no external asset).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.mark.parametrize("fixture", ["passed", "crashed"])
def test_report_renders_in_chromium_with_visible_timeline_charts(tmp_path: Path, fixture: str) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"expected Debian chromium at {CHROMIUM}, observed none; fix: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    from harness.report import write_reports

    target = tmp_path / fixture
    shutil.copytree(ROOT / "fixtures" / "journals" / fixture, target)
    files = write_reports(target)
    ARTIFACTS.mkdir(exist_ok=True)
    external: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                       else (external.append(route.request.url), route.abort()))
            page.goto(files.html.as_uri())
            charts = page.locator("svg.timeline-chart")
            assert charts.count() == len(files.run.scenarios)
            first = charts.first
            first.scroll_into_view_if_needed()
            assert first.is_visible()
            box = first.bounding_box()
            assert box is not None and box["width"] > 600 and box["height"] > 150
            assert page.locator("svg.timeline-chart text.rto-label").first.is_visible()  # "RTO target 60s"
            line = page.locator("svg.timeline-chart line.rto-target").first.bounding_box()
            assert line is not None and line["height"] > 100  # drawn across every lane (a vertical line)
            assert page.locator("table.summary tr").count() == len(files.run.scenarios) + 1
            if fixture == "crashed":
                assert page.locator("#stopped").is_visible()
                assert "resets every connection" in page.locator("#stopped").inner_text()
            page.screenshot(path=str(ARTIFACTS / f"report-{fixture}.png"), full_page=True)
            first.screenshot(path=str(ARTIFACTS / f"report-{fixture}-timeline.png"))
        finally:
            browser.close()
    assert external == []
    assert (ARTIFACTS / f"report-{fixture}.png").stat().st_size > 10_000
