"""The app in a real browser: ``mweight app`` as a subprocess, every page in headless Chromium.

Asserts visible text (page titles, block names, numbers read from the run files),
fails on a Streamlit exception box, and saves one screenshot per page under
``test-artifacts/``. Skips cleanly when Chromium or the playwright package is absent.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("streamlit")

from test_app import MOSI, SEEDS, build_runs, needs_attribution  # noqa: E402  (same folder; builds runs with the real CLI)

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("MWEIGHT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 180_000  # generous: the machine may be shared


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``mweight app`` started the way a first-time user without a terminal starts it: no
    standard input, an empty home (no ~/.streamlit), a browser wanted (``$BROWSER`` is a
    script that records the URL it is asked to open)."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"{CHROMIUM} not installed")
    base = tmp_path_factory.getbasetemp()
    root = build_runs(base / "mweight_app")
    port = free_port()
    home = base / "browser-home"
    home.mkdir(exist_ok=True)
    opener = base / "opener.py"
    opener.write_text(f"import sys, pathlib\npathlib.Path({str(base / 'opened.txt')!r}).write_text(sys.argv[1])\n")
    env = {**os.environ, "HOME": str(home), "BROWSER": f"{sys.executable} {opener} %s"}
    log = open(base / "app-server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "mweight", "app", str(root), "--port", str(port),
                             "--host", "127.0.0.1"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            log.seek(0)
            pytest.fail(f"mweight app did not start:\n{log.read()[-3000:]}")
        time.sleep(0.3)
    yield url, root
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:  # noqa: BLE001 - a broken browser install is a skip, not a failure
            pytest.skip(f"chromium could not start: {str(exc).splitlines()[0]}")
        yield b
        b.close()


def open_page(browser, url: str, query: str, must_see: list[str], shot: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{url}/?{query}", wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    for text in must_see:
        page.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    wait_idle(page)
    check_no_exception(page)
    return page


def wait_idle(page) -> None:
    """Until Streamlit has finished the script run (its status widget disappears)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS)
    if page.locator(".js-plotly-plot").count():
        page.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)  # let plotly finish drawing


def check_no_exception(page) -> None:
    exc = page.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()


def shoot(page, name: str) -> Path:
    path = ARTIFACTS / f"app-{name}.png"
    page.screenshot(path=str(path), full_page=True, timeout=TIMEOUT_MS)
    page.close()
    assert path.stat().st_size > 10_000
    return path


def test_first_start_without_stdin_serves_the_page_and_opens_the_browser(server, browser):
    url, root = server
    opened = root.parent.parent / "opened.txt"
    assert opened.read_text() == url  # opened by mweight once the server answered
    page = open_page(browser, url, "", ["Overview · dna"], "first-start")
    assert "Email" not in page.inner_text("body")
    page.close()


@needs_attribution
def test_overview_in_browser(server, browser):
    url, root = server
    attrs = [json.loads((root / "dna" / f"seed_{s}" / "attribution.json").read_text()) for s in SEEDS]
    blocks = list(attrs[0]["blocks"])
    contrib = np.mean([[a["blocks"][b]["contribution_share"] for b in blocks] for a in attrs], axis=0)
    page = open_page(browser, url, "page=overview&run=dna",
                     ["Overview · dna", "Blocks: β share and contribution share, mean over 3 seeds",
                      "β share (learned weight)", "contribution share (attribution)", "Modalities: Shapley share",
                      "block normalisation:", "seeds 1, 2, 3"], "overview")
    body = page.inner_text("body")
    for b in blocks:
        assert b in body
    assert "From the contribution share" in body or "No reading of the contribution share" in body
    if all(a["trust"]["verdict"] == "ok" for a in attrs):
        assert f"{100 * contrib.max():.0f}% of the prediction's variation" in body
    # formulas are typeset (KaTeX), not shown as plain "W_S z_S(x)"
    assert page.locator(".katex").count() >= 1
    assert page.get_by_role("button", name="Download CSV").count() >= 1  # more in the collapsed "numbers"
    shoot(page, "overview")


@needs_attribution
def test_star_block_names_render_literally_and_late_fusion_has_no_beta(server, browser):
    url, _ = server
    page = open_page(browser, url, "page=overview&run=late", ["Overview · late", "m1*m2*m3", "no β"], "late")
    body = page.inner_text("body")
    assert "m1*m2*m3" in body and "β share (learned weight)" not in body
    assert page.locator('[data-testid="stMarkdownContainer"] em').count() == 0  # nothing turned italic
    shoot(page, "late")


@needs_attribution
def test_no_evidence_verdict_in_browser(server, browser):
    url, root = server
    attr = json.loads((root / "noise" / "attribution.json").read_text())
    page = open_page(browser, url, "page=overview&run=noise", ["Overview · noise", "No evidence",
                                                              "No confident reading"], "noise")
    body = page.inner_text("body")
    for reason in attr["trust"]["reasons"]:
        assert reason in body
    assert "Reading." not in body
    shoot(page, "noise")


def test_dynamics_in_browser(server, browser):
    url, _ = server
    page = open_page(browser, url, "page=dynamics&run=dna",
                     ["Training dynamics · dna", "β share per block over epochs", "validation Accuracy",
                      "selected: epoch", "seed 1: selected epoch"], "dynamics")
    # the legend lists the blocks once (seeds are panels), none cut off
    legend = page.locator(".js-plotly-plot").first.locator(".legend .traces")
    assert legend.count() == 4
    shoot(page, "dynamics")


@needs_attribution
def test_segments_in_browser(server, browser):
    url, root = server
    run = "mosi" if MOSI.is_file() else "dna-p2"
    import pandas as pd

    preds = pd.read_csv(root / run / "predictions.csv", dtype={"id": str})
    test = preds[preds["split"] == "test"]
    block = "m1" if run == "dna-p2" else "text"
    first = test.loc[test[block].abs().idxmax()]
    page = open_page(browser, url, f"page=segments&run={run}",
                     [f"Segment explorer · {run}", f"Segment {first['id']}", "From the bias to"], "segments")
    assert f"{len(test)} of {len(preds)} segments" in page.inner_text("body")
    assert page.locator(".katex").count() >= 1  # W_S z_S(x) typeset
    page.get_by_text("modalities: Shapley φ_m(x)").first.click()
    page.get_by_text("each modality's Shapley value").first.wait_for(state="visible", timeout=TIMEOUT_MS)
    wait_idle(page)
    check_no_exception(page)
    shoot(page, "segments")


def test_compare_in_browser(server, browser):
    url, root = server
    acc = json.loads((root / "dna-p2" / "metrics.json").read_text())["test"]["acc"]
    page = open_page(browser, url, "page=compare&run=dna", ["Compare runs", "Test metrics", "model.p"], "compare")
    # starts with the runs on the same data as the sidebar's run
    chips = [t.get_attribute("title") for t in page.locator('[data-testid="stMultiSelect"] span[data-tag] span[title]').all()]
    assert [c.split("·")[0].strip() for c in chips] == ["dna", "dna-p2", "late"], chips
    assert f"{acc:.4f}" in page.inner_text("body")
    shoot(page, "compare")


@needs_attribution
def test_faithfulness_in_browser(server, browser):
    url, _ = server
    run = "mosi" if MOSI.is_file() else "dna-p2"
    page = open_page(browser, url, f"page=faithfulness&run={run}", [f"Faithfulness · {run}", "Measure importance"],
                     "faithfulness")
    page.get_by_role("button", name="Measure importance").click()
    page.get_by_text("Blocks: β share, contribution share, ablation importance").first.wait_for(
        state="visible", timeout=TIMEOUT_MS)
    wait_idle(page)
    check_no_exception(page)
    assert "rank agreement" in page.inner_text("body")
    shoot(page, "faithfulness")


def test_relevance_path_in_browser(server, browser):
    url, _ = server
    page = open_page(browser, url, "page=path&run=dna-p2", ["Relevance path · dna-p2", "Train the path"], "path")
    check_no_exception(page)
    shoot(page, "path")


def test_playground_in_browser(server, browser):
    url, _ = server
    page = open_page(browser, url, "page=playground", ["Synthetic playground", "Generate and train", "p_m1"],
                     "playground")
    shoot(page, "playground")


def test_path_traversal_in_browser(server, browser):
    url, _ = server
    page = open_page(browser, url, "page=overview&run=../../etc", ["is not a run inside the runs folder",
                                                                  "Overview · dna"], "traversal")
    shoot(page, "traversal")
