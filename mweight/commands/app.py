"""``mweight app [RUNS_DIR] [--port N]``: open the Streamlit app on a runs folder.

The Streamlit script is ``mweight/app_main.py``, shipped inside the package, so the
console script finds it from a wheel, an editable install or a checkout alike
(``apps/mweight_app.py`` re-exports it for ``streamlit run`` from a checkout).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from ..errors import MWeightError

DEFAULT_RUNS_DIR = "runs"  # keep in sync with mweight.appdata.DEFAULT_RUNS_DIR and the README

EPILOG = """examples:
  mweight app                       # inspect ./runs (with no runs yet it offers a quick demo)
  mweight app runs/dna-additive --port 8600
  mweight app runs --no-browser     # on a server; then open http://localhost:8501

The app only reads inside RUNS_DIR (plus the dataset file each run records, for
transcripts and importance); it trains demo/playground runs into RUNS_DIR/demo and
RUNS_DIR/playground. Needs the app extra: pip install -e ".[app]"."""


def add_parser(sub, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs_dir", nargs="?", default=DEFAULT_RUNS_DIR, metavar="RUNS_DIR",
                   help=f"folder holding run directories (default: ./{DEFAULT_RUNS_DIR})")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    p.add_argument("--host", default="localhost", help="address to bind (default localhost)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    p.set_defaults(func=run)


def app_script() -> Path:
    """Path of the Streamlit script inside the installed package (no streamlit import)."""
    spec = importlib.util.find_spec("mweight.app_main")
    if spec is None or not spec.origin:
        raise MWeightError("mweight/app_main.py not found in the installed package; reinstall mweight")
    return Path(spec.origin)


def streamlit_command(runs_dir: Path, port: int, host: str, headless: bool) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(app_script()),
            "--server.port", str(port), "--server.address", host,
            "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
            "--", str(runs_dir)]


def run(args) -> int:
    if importlib.util.find_spec("streamlit") is None or importlib.util.find_spec("plotly") is None:
        raise MWeightError("the app needs streamlit and plotly: pip install -e \".[app]\"")
    if not 1 <= args.port <= 65535:
        raise MWeightError(f"--port {args.port}: expected a port number 1..65535")
    root = Path(args.runs_dir).expanduser()
    if root.exists() and not root.is_dir():
        raise MWeightError(f"{root}: not a folder (expected the folder holding run directories)")
    root = root.resolve()
    if not root.exists():
        print(f"mweight app: {root} does not exist yet; the app offers to train a quick demo into it",
              file=sys.stderr)
    from ..appdata import ROOT_ENV

    env = {**os.environ, ROOT_ENV: str(root)}
    print(f"mweight app: runs folder {root}; serving on http://{args.host}:{args.port}", file=sys.stderr)
    cmd = streamlit_command(root, args.port, args.host, args.no_browser)
    if os.name == "posix":
        # Become the streamlit server (same pid): stopping `mweight app` stops the server,
        # instead of leaving an orphaned child behind.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execvpe(cmd[0], cmd, env)
    return subprocess.call(cmd, env=env)
