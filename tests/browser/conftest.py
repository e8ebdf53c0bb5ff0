"""Browser tests: the workbench served on a free localhost port, driven by Playwright in Debian's Chromium.

Screenshots go to ``test-output/screenshots/`` (kept as artifacts). The server runs in this
process, so tests can read the server-side state of each page through ``app.shell.live_sessions``.
"""

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="install the test extras: pip install -e '.[test]'")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian's chromium is not installed (apt-get install -y chromium); .ci/setup.sh installs it")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server():
    """The workbench on a free localhost port; yields its base URL."""
    from app.server import serve

    port = free_port()
    handle = serve(port=port, threaded=True)
    url = f"http://localhost:{port}/"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    yield url
    handle.stop()


@pytest.fixture
def open_page(browser, server):
    """open_page() → a new page (own browser context, so own session) with the workbench loaded."""
    contexts = []

    def _open():
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.goto(server, wait_until="networkidle", timeout=60_000)
        page.locator(".bf-tabs").first.wait_for(timeout=60_000)
        return page

    yield _open
    for context in contexts:
        context.close()


def screenshot(page, name):
    """Save a screenshot of the page as test-output/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_until(page, condition, what, timeout=30.0):
    """Poll ``condition`` (server or page state) every 100 ms; on time-out save a screenshot named after
    the running test and fail naming ``what`` was awaited."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        page.wait_for_timeout(100)
    test = os.environ.get("PYTEST_CURRENT_TEST", "test").split("::")[-1].split(" ")[0]
    screenshot(page, f"{test}_failure")
    raise AssertionError(f"timed out waiting until {what}")


def session_of(index=-1):
    """The server-side page (template with .workbench and .panes) of the index-th live session."""
    from app.shell import live_sessions

    sessions = live_sessions()
    assert sessions, "no workbench session is alive on the server"
    return sessions[index]


def select_tab(page, name):
    page.locator(".bk-tab", has_text=name).first.click()
    page.wait_for_timeout(300)
