"""The ``mweight`` command line: one sub-command per module in :mod:`mweight.commands`.

Each command module defines ``add_parser(subparsers)`` (which registers its
arguments and sets ``func``) and is imported lazily so ``mweight --help`` stays
fast and optional extras (streamlit, ray) are only needed by their commands.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

from .errors import MWeightError


class Parser(argparse.ArgumentParser):
    """argparse without prefix matching (``--seed 0`` must not silently mean ``--seeds 0``),
    and usage errors as one line, like every other user mistake."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"mweight: error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def _terminate(signum, frame):
    # SIGTERM/SIGHUP unwind like Ctrl-C, so temporary files are removed and the last
    # complete checkpoint stays the newest file (kill -9 cannot be caught: the next
    # write in the folder removes its leftovers).
    raise SystemExit(128 + signum)

# name -> (module, one-line help). Order is the order shown in --help.
COMMANDS = {
    "train": ("mweight.commands.train", "train a model (one or several seeds) and write a run directory"),
    "evaluate": ("mweight.commands.evaluate", "recompute metrics of a run, optionally on another dataset"),
    "predict": ("mweight.commands.predict", "predictions with per-block contributions for a dataset"),
    "explain": ("mweight.commands.explain", "relevance per block and the contributions for one segment"),
    "ablate": ("mweight.commands.ablate", "ablation/permutation importance of each modality next to beta"),
    "prepare": ("mweight.commands.prepare", "turn MOSI in any common format into a mweight dataset (.npz)"),
    "featurize": ("mweight.commands.featurize", "text features (sentence embeddings or token ids) from transcripts"),
    "synth": ("mweight.commands.synth", "generate a seeded synthetic DNA-sequence dataset (.npz)"),
    "repro": ("mweight.commands.repro", "reproduce the synthetic DNA-sequence experiments"),
    "sweep": ("mweight.commands.sweep", "hyper-parameter sweeps and multi-seed studies on Ray Tune"),
    "app": ("mweight.commands.app", "open the Streamlit app to inspect runs"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mweight",
        description="Interpretable multimodal sentiment analysis: how much each modality "
        "and each interaction contributes (MNL beta relevance, vBN/IterBN tensor fusion).",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"mweight {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("mweight"):
                continue  # command not built in this version
            raise
        module.add_parser(sub, name, help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, _terminate)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except MWeightError as exc:
        print(f"mweight: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused (permissions, disk full, ...): one line, no traceback
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"mweight: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mweight: interrupted; the last complete checkpoint is kept (use --resume)", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
