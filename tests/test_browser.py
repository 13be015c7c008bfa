"""The lab in a real browser: JupyterLab, the aiops_lab extension and the drift notebook in Chromium.

One JupyterLab and one Chromium serve the whole module. The drift notebook is opened and run
with Run > Run All Cells like a user would; then its charts, the DriftExplorer widget, the status
bar item and a launcher card are checked in the page, and the server routes without the token.
Screenshots go to ``tmp_path`` and are copied to ``$AIOPS_LAB_SCREENSHOTS`` (default
``reports/browser-screenshots/``).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="playwright is not installed (pip install -e '.[test]'; never `playwright install`)",
)
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (pip install -e '.[lab]')")

import browser_support as bs  # noqa: E402  (after the skips)

CHROMIUM = bs.chromium_path()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium not found at /usr/bin/chromium or $AIOPS_LAB_CHROMIUM "
        "(apt-get install chromium)",
    ),
]

TOKEN = "aiops-lab-browser-token-93b2"
NOTEBOOK = "drift_investigation.ipynb"
RUN_TIMEOUT_S = 300
BAD_TEXT = (
    "renderer has not been properly enabled",
    "JavaScript Error",
    "Error loading script",
    "Failed to fetch dynamically imported module",
    "esm.sh",
    "cdn.jsdelivr",
)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """save(page, name): a full-page screenshot in tmp and in the artifacts folder."""
    here = tmp_path_factory.mktemp("screenshots")
    keep = bs.screenshot_dir()

    def save(page, name: str) -> Path:
        path = here / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shutil.copy2(path, keep / path.name)
        return path

    return save


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from aiops_lab.reporting import notebook_path

    root = tmp_path_factory.mktemp("lab-root")
    shutil.copy2(notebook_path("drift"), root / NOTEBOOK)
    home = tmp_path_factory.mktemp("lab-home")
    with bs.run_lab(root, home, TOKEN) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=bs.CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def session(lab, browser):
    """A logged-in page, and every http(s) request it made that left the loopback server."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    outside: list[str] = []
    page_errors: list[str] = []

    def on_request(request):
        url = urlsplit(request.url)
        if url.scheme in ("http", "https") and url.hostname not in ("127.0.0.1", "localhost"):
            outside.append(request.url)

    page.on("request", on_request)
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?token={TOKEN}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    yield {"page": page, "outside": outside, "page_errors": page_errors}
    context.close()


def _kernel_ready(page) -> None:
    """Wait until the notebook's kernel is connected and idle (not merely 'no kernel yet')."""
    page.wait_for_function(
        """() => {
            const name = document.querySelector('.jp-NotebookPanel .jp-Toolbar-kernelName');
            const bar = document.querySelector('#jp-main-statusbar');
            return !!name && /Python 3/.test(name.textContent)
                && !!bar && /Python 3 \\(ipykernel\\) \\| Idle/.test(bar.innerText);
        }""",
        timeout=120_000,
    )


def _prompts(page) -> list[str]:
    return page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()


@pytest.fixture(scope="module")
def ran(session, lab, shots):
    """The drift notebook after Run > Run All Cells, every cell done."""
    page = session["page"]
    _kernel_ready(page)
    shots(page, "00-drift-notebook-opened")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    page.wait_for_function(  # the run started: cells queued or done
        """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
            .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))""",
        timeout=30_000,
    )
    deadline = time.monotonic() + RUN_TIMEOUT_S
    settled = 0
    while time.monotonic() < deadline:
        prompts = _prompts(page)
        done = [p for p in prompts if re.search(r"\[\d+\]", p)]
        running = [p for p in prompts if "[*]" in p]
        # all numbered; or the run stopped (an error) with nothing queued any more
        settled = settled + 1 if done and not running else 0
        if settled >= 3 or (prompts and len(done) == len(prompts)):
            break
        time.sleep(1)
    shots(page, "01-drift-notebook-run-all")
    prompts = _prompts(page)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
    assert not tracebacks, tracebacks[:2]
    assert prompts, "no code cells in the page"
    assert all(re.search(r"\[\d+\]", p) for p in prompts), (
        f"not every cell ran within {RUN_TIMEOUT_S} s: {prompts}\n{lab.log_tail()}"
    )
    return page


def test_charts_render_offline(ran, session):
    page = ran
    charts = page.locator(".jp-Notebook .vega-embed")
    charts.first.wait_for()
    # every chart drew its marks (vega-embed: canvas or svg), at a real size
    page.wait_for_function(
        """() => {
            const embeds = [...document.querySelectorAll('.jp-Notebook .vega-embed')];
            return embeds.length > 0 && embeds.every(e => {
                const m = e.querySelector('canvas.marks, svg.marks');
                return m && m.getBoundingClientRect().width > 50
                    && m.getBoundingClientRect().height > 20;
            });
        }"""
    )
    assert charts.count() >= 4  # overview, distributions, timeline, quality, ...
    text = page.locator(".jp-Notebook").inner_text()
    for bad in BAD_TEXT:
        assert bad not in text, bad
    assert not session["outside"], f"requests left the machine: {session['outside'][:5]}"
    assert not [e for e in session["page_errors"] if "vega" in e.lower()], session["page_errors"]


def test_drift_explorer_follows_its_dropdown(ran, shots):
    page = ran
    dropdown = page.locator(".widget-dropdown", has=page.locator("label", has_text="column"))
    dropdown.first.wait_for()
    assert dropdown.count() == 1
    explorer = dropdown.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
    stats = explorer.locator(".widget-html-content").first
    chart = explorer.locator(".widget-output .vega-embed")
    chart.first.wait_for()
    select = dropdown.locator("select")
    options = select.locator("option").all_inner_texts()
    before_column = select.input_value()
    before_stats = stats.inner_text()
    assert len(options) >= 2, options
    assert "n_ref" in before_stats
    explorer.scroll_into_view_if_needed()
    shots(page, "02-drift-explorer-before")

    target = next(o for o in options if o != before_column)
    old_chart = chart.first.element_handle()
    select.select_option(label=target)
    # the kernel answers: the stats table is rewritten and the chart replaced by a new one
    page.wait_for_function(
        "([el, before]) => el.innerText !== before", arg=[stats.element_handle(), before_stats]
    )
    page.wait_for_function("el => !el.isConnected", arg=old_chart, timeout=60_000)
    _kernel_ready(page)
    page.wait_for_function(
        """el => [...el.querySelectorAll('.widget-output .vega-embed')].some(e => {
            const m = e.querySelector('canvas.marks, svg.marks');
            return m && m.getBoundingClientRect().width > 50;
        })""",
        arg=explorer.element_handle(),
    )
    explorer.scroll_into_view_if_needed()
    shots(page, "03-drift-explorer-after")
    assert select.input_value() == target
    assert stats.inner_text() != before_stats
    assert chart.count() == 1


def test_status_bar_shows_the_backend(session, lab, shots):
    page = session["page"]
    backend = page.locator(".jp-aiops-StatusItem-backend")
    page.wait_for_function(
        "el => /numpy/.test(el.textContent)", arg=backend.element_handle(), timeout=60_000
    )
    assert backend.inner_text().strip() == "CPU: numpy"
    assert backend.get_attribute("data-backend") == "cpu"
    assert page.locator(".jp-aiops-StatusItem-gpu").inner_text().strip() == "no GPU"
    assert "MLflow" in page.locator(".jp-aiops-StatusItem-tracking").inner_text()
    page.locator("#jp-main-statusbar").screenshot(
        path=str(bs.screenshot_dir() / "04-status-bar.png")
    )


def test_launcher_card_creates_a_notebook(session, lab, shots):
    page = session["page"]
    before = {p.name for p in lab.root.glob("*.ipynb")}
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^New Launcher$")).click()
    card = page.locator(".jp-LauncherCard", has_text="Drift investigation")
    card.first.wait_for()
    shots(page, "05-launcher")
    card.first.click()
    deadline = time.monotonic() + 60
    created: set[str] = set()
    while time.monotonic() < deadline and not created:
        created = {p.name for p in lab.root.glob("*.ipynb")} - before
        time.sleep(0.25)
    assert len(created) == 1, created
    name = created.pop()
    assert re.fullmatch(r"drift_investigation-\d+\.ipynb", name), name
    from aiops_lab.reporting import notebook_path

    copy = json.loads((lab.root / name).read_text(encoding="utf-8"))
    template = json.loads(notebook_path("drift").read_text(encoding="utf-8"))
    assert copy["cells"] == template["cells"]
    # and it opens, ready to run
    tab = page.locator(".lm-TabBar-tab", has_text=name)
    tab.first.wait_for()
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for()
    shots(page, "06-new-drift-investigation")


def test_routes_refuse_requests_without_the_token(lab, browser):
    url = f"{lab.url}aiops-lab/status"
    status, _ = bs.http_get(url)
    assert status == 403
    status, _ = bs.http_get(url, token="not-the-token")
    assert status == 403
    status, body = bs.http_get(url, token=TOKEN)
    assert status == 200
    assert json.loads(body)["backend"]["name"] == "numpy"
    # a browser without the login cookie is refused too
    context = browser.new_context()
    try:
        response = context.request.get(url)
        assert response.status == 403
    finally:
        context.close()
