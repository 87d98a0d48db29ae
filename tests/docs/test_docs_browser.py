"""The built site renders in a real headless browser (Debian's Chromium, driven by Playwright), and
no request leaves 127.0.0.1."""
import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from epsanet.weights.catalogue import model_info

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def served(site):
    """The site on a free port of 127.0.0.1, served by a thread of this process."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def browser_page():
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser check needs playwright "
                                         "(the dev extra)")
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"no browser: {CHROMIUM} is missing (make test installs Debian's chromium when run as root)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context()
        requests = []
        context.on("request", lambda request: requests.append(request.url))
        page = context.new_page()
        yield page, requests
        browser.close()


def _hosts(urls):
    return {urlsplit(url).hostname for url in urls if urlsplit(url).scheme not in ("data", "blob", "about")}


def test_the_home_page_renders_its_title_and_navigation_from_127_0_0_1_only(served, browser_page):
    page, requests = browser_page
    requests.clear()
    page.goto(f"{served}/index.html", wait_until="networkidle")
    assert page.title() == "epsanet"
    assert page.locator("article h1").first.inner_text().rstrip("¶") == "epsanet"
    nav = page.locator("nav.md-nav--primary").first
    for entry in ("Get started", "Models", "Weights and the Hub", "Guides", "Gallery", "Performance",
                  "API reference", "Architecture"):
        assert nav.get_by_text(entry, exact=True).count() >= 1, entry
    assert requests and _hosts(requests) == {"127.0.0.1"}


def test_a_model_page_renders_its_model_table_from_127_0_0_1_only(served, browser_page, hooks):
    page, requests = browser_page
    requests.clear()
    page.goto(f"{served}/models/epsanet.html", wait_until="networkidle")
    assert page.title().startswith("EPSANet")
    row = next(r for r in hooks.model_rows() if r.name == "epsanet50_small")
    section_table = page.locator("xpath=//h2[@id='epsanet50_small']/following::table[1]")
    assert section_table.is_visible()
    cells = section_table.locator("td").all_inner_texts()
    assert cells[:3] == [f"{row.params:,}", f"{row.gmacs:.2f}", f"{model_info('epsanet50_small')['paper_top1']:.2f}"]
    assert requests and _hosts(requests) == {"127.0.0.1"}
