"""``mweight app [RUNS_DIR] [--port N]``: open the Streamlit app on a runs folder.

The Streamlit script is ``mweight/app_main.py``, shipped inside the package, so the
console script finds it from a wheel, an editable install or a checkout alike
(``apps/mweight_app.py`` re-exports it for ``streamlit run`` from a checkout).

Streamlit is always started headless, with no e-mail prompt, no usage statistics and
no file watcher (:data:`STREAMLIT_FLAGS`, passed on the command line and in the
environment, so nothing in ``~/.streamlit`` is needed or read for them): the app
starts the same from a terminal, an IDE button, ``nohup`` or a service with no
standard input, and makes no outside connection. When a browser window is wanted, a
small helper process opens it once the server answers.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..errors import MWeightError

DEFAULT_RUNS_DIR = "runs"  # keep in sync with mweight.appdata.DEFAULT_RUNS_DIR and the README

# Streamlit options the app is always started with (name -> value). headless: never
# prompt and never open a browser itself; showEmailPrompt: no first-run "Email:"
# prompt on standard input; gatherUsageStats: no usage statistics sent anywhere;
# fileWatcherType none: the installed script does not change while it is served.
STREAMLIT_FLAGS = {
    "server.headless": "true",
    "server.showEmailPrompt": "false",
    "browser.gatherUsageStats": "false",
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
    "global.developmentMode": "false",
    "client.toolbarMode": "minimal",
}

EPILOG = """examples:
  mweight app                       # inspect ./runs (with no runs yet it offers a quick demo)
  mweight app runs/dna-additive --port 8600
  mweight app runs --no-browser     # on a server; then open http://localhost:8501

The app only reads inside RUNS_DIR (plus the dataset file each run recorded, for
transcripts and importance); it trains demo/playground/path runs into RUNS_DIR/demo,
RUNS_DIR/playground and RUNS_DIR/paths. Streamlit runs headless with usage statistics
off and no prompt; the app makes no outside connection. Needs the app extra:
pip install -e ".[app]"."""


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


def streamlit_env(base: dict | None = None) -> dict:
    """The environment with :data:`STREAMLIT_FLAGS` as ``STREAMLIT_*`` variables too."""
    env = dict(os.environ if base is None else base)
    for key, value in STREAMLIT_FLAGS.items():  # server.showEmailPrompt -> STREAMLIT_SERVER_SHOW_EMAIL_PROMPT
        env["STREAMLIT_" + re.sub(r"(?<=[a-z])([A-Z])", r"_\1", key).replace(".", "_").upper()] = value
    return env


def streamlit_command(runs_dir: Path, port: int, host: str) -> list[str]:
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_script()),
           "--server.port", str(port), "--server.address", host]
    for key, value in STREAMLIT_FLAGS.items():
        cmd += [f"--{key}", value]
    return cmd + ["--", str(runs_dir)]


def check_port_free(host: str, port: int) -> None:
    """MWeightError (one line) if ``host:port`` cannot be bound, e.g. another server uses it.

    Binds the way the server will (SO_REUSEADDR, every address ``host`` resolves to),
    so a port in TIME_WAIT is not reported but a listening one is.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise MWeightError(f"--host {host}: cannot resolve this address ({exc.strerror})") from None
    seen = set()
    for family, kind, proto, _, addr in infos:
        if (family, addr[0]) in seen:
            continue
        seen.add((family, addr[0]))
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind(addr[:2] if family == socket.AF_INET else addr)
            except OSError as exc:
                if family == socket.AF_INET6 and exc.errno in (99, 97):  # no IPv6 on this machine
                    continue
                raise MWeightError(f"--port {port}: port {port} on {host} is already in use "
                                   f"({exc.strerror}); stop the other server or choose another with "
                                   "--port N") from None


def open_when_up(url: str, timeout: float = 120.0) -> int:
    """Open ``url`` in the user's browser once the server's health check answers (helper process)."""
    import webbrowser

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/_stcore/health", timeout=2):
                break
        except OSError:
            time.sleep(0.3)
    else:
        return 1
    try:
        webbrowser.open(url, new=2)
    except Exception:  # noqa: BLE001 - no browser on this machine: the URL was printed
        return 1
    return 0


def run(args) -> int:
    if importlib.util.find_spec("streamlit") is None or importlib.util.find_spec("plotly") is None:
        raise MWeightError("the app needs streamlit and plotly: pip install -e \".[app]\"")
    if not 1 <= args.port <= 65535:
        raise MWeightError(f"--port {args.port}: expected a port number 1..65535")
    root = Path(args.runs_dir).expanduser()
    if root.exists() and not root.is_dir():
        raise MWeightError(f"{root}: not a folder (expected the folder holding run directories)")
    root = root.resolve()
    check_port_free(args.host, args.port)
    if not root.exists():
        print(f"mweight app: {root} does not exist yet; the app offers to train a quick demo into it",
              file=sys.stderr)
    from ..appdata import ROOT_ENV

    env = {**streamlit_env(), ROOT_ENV: str(root)}
    url_host = "localhost" if args.host in ("0.0.0.0", "::", "") else args.host
    url = f"http://{url_host}:{args.port}"
    print(f"mweight app: runs folder {root}; serving on {url}", file=sys.stderr)
    if not args.no_browser:
        # A detached helper opens the browser once the server answers (Streamlit itself
        # stays headless, so it never prompts or blocks on standard input).
        subprocess.Popen([sys.executable, "-c", "import sys; from mweight.commands.app import open_when_up; "
                          "sys.exit(open_when_up(sys.argv[1]))", url],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cmd = streamlit_command(root, args.port, args.host)
    if os.name == "posix":
        # Become the streamlit server (same pid): stopping `mweight app` stops the server,
        # instead of leaving an orphaned child behind.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execvpe(cmd[0], cmd, env)
    return subprocess.call(cmd, env=env)
