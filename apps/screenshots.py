"""Make the README's screenshots of every page of the app from real runs (headless Chromium).

    python apps/screenshots.py RUNS_DIR --run mosi-intense --demo demo/additive_p0.8-0.4-0_n600_s0 --out docs/img

Starts ``mweight app RUNS_DIR`` on a free port (headless, as a user would), opens every
page of ``--run`` and writes ``app-<page>.png``: overview, dynamics, segments (block
waterfall), segments-shapley (by modality), compare, faithfulness (after "Measure
importance"), path (after "Train the path" with ``--path-epochs``, unless the path was
already trained), playground; with ``--demo`` also ``app-demo-overview.png`` (the quick
demo's overview). Fails on a Streamlit exception box. Needs the dev extra (playwright)
and Chromium (``/usr/bin/chromium`` or ``--chromium``).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 120_000


def wait_idle(page, timeout_ms: int = TIMEOUT_MS) -> None:
    page.wait_for_timeout(500)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                           timeout=timeout_ms)
    # every chart drawn (no skeleton placeholders left)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]') && "
                           "document.querySelectorAll('.js-plotly-plot').length === "
                           "document.querySelectorAll('.js-plotly-plot .main-svg:first-child').length",
                           timeout=timeout_ms)
    page.wait_for_timeout(2000)  # let plotly and KaTeX finish drawing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs_dir")
    ap.add_argument("--run", required=True, help="run folder relative to RUNS_DIR")
    ap.add_argument("--demo", default=None, help="the quick demo's run folder relative to RUNS_DIR (optional)")
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--path-epochs", type=int, default=None, help="epochs per p for the relevance path "
                    "(default: the run's own)")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=2600, help="tallest screenshot (px)")
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the server (finally) when stopped

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mweight", "app", a.runs_dir, "--port", str(port),
                             "--host", "127.0.0.1", "--no-browser"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=a.chromium, args=ARGS, headless=True)

            def shot(name: str, query: str, wait_text: str, action=None, full: bool = True) -> None:
                # Streamlit scrolls inside its own container: a tall viewport shows the whole page
                page = browser.new_page(viewport={"width": a.width, "height": a.height if full else 1250})
                page.goto(f"{url}/?{query}", wait_until="domcontentloaded")
                page.get_by_text(wait_text).first.wait_for(state="visible", timeout=TIMEOUT_MS)
                wait_idle(page)
                if action is not None and action(page) is False:
                    print(f"skipped app-{name}.png (not available for this run)")
                    page.close()
                    return
                if page.locator('[data-testid="stException"]').count():
                    raise SystemExit(f"the {name} page shows an exception")
                path = out / f"app-{name}.png"
                clip = None
                if full:  # crop to the content's height (no resize: that would re-layout the charts)
                    h = page.evaluate("() => Math.max(...[...document.querySelectorAll("
                                      "'[data-testid=\"stMainBlockContainer\"]')].map(e => e.scrollHeight), 600)")
                    clip = {"x": 0, "y": 0, "width": a.width, "height": min(a.height, int(h) + 40)}
                page.screenshot(path=str(path), timeout=TIMEOUT_MS, clip=clip)
                print(f"wrote {path}")
                page.close()

            def measure(page) -> None:
                page.get_by_role("button", name="Measure importance").click()
                page.get_by_text("rank agreement").first.wait_for(state="visible", timeout=10 * TIMEOUT_MS)
                wait_idle(page)

            def path(page) -> None:
                if page.get_by_text("No path trained yet").count():
                    if a.path_epochs:
                        box = page.get_by_label("Epochs per run")
                        box.fill(str(a.path_epochs))
                        box.press("Enter")
                        wait_idle(page)
                    page.get_by_role("button", name="Train the path").click()
                    page.get_by_text("Per block: β share and contribution share against p").first.wait_for(
                        state="visible", timeout=30 * TIMEOUT_MS)
                    wait_idle(page)

            def shapley(page) -> bool:
                if not page.get_by_text("modalities: Shapley φ_m(x)").count():
                    return False  # a run without per-sample Shapley values
                page.get_by_text("modalities: Shapley φ_m(x)").first.click()
                page.get_by_text("each modality's Shapley value").first.wait_for(state="visible", timeout=TIMEOUT_MS)
                wait_idle(page)
                return True

            run = f"run={a.run}"
            shot("overview", f"page=overview&{run}", "Overview")
            shot("dynamics", f"page=dynamics&{run}", "per block over epochs")
            shot("segments", f"page=segments&{run}", "From the bias", full=False)
            shot("segments-shapley", f"page=segments&{run}", "From the bias", shapley, full=False)
            shot("compare", f"page=compare&{run}", "Test metrics")
            shot("faithfulness", f"page=faithfulness&{run}", "Measure importance", measure)
            shot("path", f"page=path&{run}", "Relevance path", path)
            shot("playground", "page=playground", "Generate and train")
            if a.demo:
                shot("demo-overview", f"page=overview&run={a.demo}", "Overview")
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
