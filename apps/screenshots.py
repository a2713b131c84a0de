"""Make the README's screenshots of the app from a real run (headless Chromium).

    python apps/screenshots.py RUNS_DIR --run mosi-intense --out docs/img

Starts ``mweight app RUNS_DIR`` on a free port, opens the overview and the segment
explorer of ``--run`` and writes ``app-overview.png`` and ``app-segments.png``.
Needs the dev extra (playwright) and Chromium (``/usr/bin/chromium`` or ``--chromium``).
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs_dir")
    ap.add_argument("--run", required=True, help="run folder relative to RUNS_DIR")
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--segment-block", default=None, help="block to sort the explorer by (default: the first)")
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mweight", "app", a.runs_dir, "--port", str(port),
                             "--host", "127.0.0.1", "--no-browser"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=a.chromium, args=ARGS, headless=True)
            for page_name, wait_text in (("overview", "Reading."), ("segments", "From the bias")):
                page = browser.new_page(viewport={"width": 1300, "height": 1000})
                page.goto(f"{url}/?page={page_name}&run={a.run}", wait_until="domcontentloaded")
                page.get_by_text(wait_text).first.wait_for(state="visible", timeout=60_000)
                page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                                       timeout=60_000)
                page.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=60_000)
                page.wait_for_timeout(2000)
                if page.locator('[data-testid="stException"]').count():
                    raise SystemExit(f"the {page_name} page shows an exception")
                path = out / f"app-{page_name}.png"
                page.screenshot(path=str(path))
                print(f"wrote {path}")
                page.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
