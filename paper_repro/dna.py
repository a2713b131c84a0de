"""Reproduce the synthetic DNA-sequence experiments (docs/method.md section 8) with one command.

    python paper_repro/dna.py --quick                # < 2 minutes on 2 cores -> paper_repro/results/dna-quick
    python paper_repro/dna.py                        # full: 5 seeds        -> paper_repro/results/dna
    python paper_repro/dna.py --experiment xor --seeds 3 --out runs/xor

A thin entry point: everything (data generation, training, table, checks, figures)
is `mweight repro dna` in the library (mweight/repro/dna.py); extra arguments are
passed through unchanged (see `mweight repro dna --help`).
"""
from __future__ import annotations

import sys
from pathlib import Path

from mweight.cli import main

RESULTS = Path(__file__).resolve().parent / "results"


def args_with_defaults(argv: list[str]) -> list[str]:
    argv = list(argv)
    if not any(a == "--out" or a.startswith("--out=") for a in argv) and not {"-h", "--help"} & set(argv):
        argv += ["--out", str(RESULTS / ("dna-quick" if "--quick" in argv else "dna"))]
    return ["repro", "dna", *argv]


if __name__ == "__main__":
    sys.exit(main(args_with_defaults(sys.argv[1:])))
