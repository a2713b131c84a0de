"""``mweight repro dna``: reproduce the synthetic DNA-sequence experiments (logic in :mod:`mweight.repro`)."""
from __future__ import annotations

import argparse
import os
import shlex
import sys

from ..devices import add_device_argument, use_device
from ..errors import MWeightError

EPILOG = """\
experiments (docs/method.md section 8; data generated with `mweight synth dna`, seed = run seed):
  additive   6 modalities, p = (0.5, 0.35, 0.2, 0, 0, 0), N = 8000, unimodal blocks
             claim: beta ranking follows p on >= 4/5 seeds; every p = 0 modality share <= 0.02
  xor        label = XOR(m1, m2), m3 irrelevant, N = 20000, all 7 blocks (anova)
             claim: every seed reaches test acc >= 0.95; on each, share(m1*m2) >= 0.9
  inflation  m1 relevant (p = 0.8), m2 irrelevant, m3 constant, all interaction blocks,
             trained with model.norm none and with anova
             claim: none gives interaction blocks >= 0.2 share; anova keeps every other
             block <= 0.05 with accuracy not worse (tolerance 0.01)
  nuisance   tabular (`mweight synth tabular --design nuisance`): a relevant through y = s^2 - 1,
             b shares only a nuisance latent with a (independent of the label), N = 6000, all
             interactions, MLP encoders; trained at p = 1, 2, 8 with model.norm anova and iterbn
             claim (anova): on every seed b and a*b each <= 0.02 of the contribution share, b
             <= 0.02 of the Shapley share, a*b's label share cov(g_ab, y) / cov(f, y) <= 0.02
             (test split; corr(a*b, label) is reported); iterbn beside it as the comparison
  all        the four, plus a determinism check per experiment (same seed -> same numbers)

Tables show beta share and the attribution of each run (attribution.json: contribution share
per block, Shapley share per modality) next to the ground truth.

Writes OUT/results.md (+ results.csv, summary.csv, checks.json, repro.json) and
OUT/figures/*.png; training runs go to OUT/runs/<experiment>/<variant>/seed_<s>/ and are
reused when re-run with the same settings. Exit status 0 if every check passes, 1 if not.

examples:
  mweight repro dna --experiment all --quick --out runs/repro-quick     # < 2 min on 2 cores
  mweight repro dna --experiment all --seeds 5 --out runs/repro         # the full reproduction
  mweight repro dna --experiment xor --seeds 0,3,7 --out runs/xor
"""


def add_parser(subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text + ".")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    dna = kinds.add_parser(
        "dna", help="the synthetic experiments (DNA: additive, xor, inflation; tabular: nuisance)",
        description="Run the synthetic DNA-sequence experiments over several seeds, write the results "
        "table and figures, and check the claims.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    dna.add_argument("--experiment", default="all", metavar="NAME",
                     help="additive | xor | inflation | nuisance | all, or a comma-separated list (default all)")
    dna.add_argument("--seeds", metavar="N|S1,S2,...",
                     help="N = N seeds (0..N-1), or a list S1,S2,... as in mweight train (default 5; 2 with --quick)")
    dna.add_argument("--out", required=True, metavar="DIR", help="output directory")
    dna.add_argument("--quick", action="store_true",
                     help="fewer epochs and 2 seeds by default (a smoke-scale run, about 150 s of training CPU time)")
    dna.add_argument("--jobs", type=int, metavar="J",
                     help="runs trained in parallel, one torch thread each (default: min(2, CPU count))")
    dna.add_argument("--fresh", action="store_true", help="retrain runs even if a matching run exists in OUT")
    dna.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="extra config override for every run (explorations; not the documented setting)")
    dna.add_argument("--quiet", action="store_true", help="no progress bar (one line per finished run)")
    add_device_argument(dna)
    dna.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..fileio import check_output_dir
    from ..repro.dna import parse_experiments, parse_seeds, run_dna

    check_output_dir(args.out, "--out")  # before any work
    if use_device(args.device):  # an absent device: one line, exit 2; then every run trains there
        args.overrides = [*args.overrides, f"train.device={args.device}"]

    names = parse_experiments(args.experiment)
    seeds = parse_seeds(args.seeds, args.quick)
    jobs = args.jobs if args.jobs is not None else min(2, os.cpu_count() or 1)
    if jobs < 1:
        raise MWeightError(f"--jobs {jobs}: expected an integer >= 1")
    command = "mweight " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["repro"] else None
    checks, report = run_dna(args.out, names, seeds, quick=args.quick, jobs=jobs, fresh=args.fresh,
                             progress=not args.quiet, extra_overrides=args.overrides, command=command)
    width = max(len(f"{c.experiment}/{c.name}") for c in checks)
    for c in checks:
        print(f"{'PASS' if c.passed else 'FAIL'}  {c.experiment + '/' + c.name:<{width}}  {c.claim}")
    failed = [c for c in checks if not c.passed]
    print(f"wrote {report} ({len(checks) - len(failed)}/{len(checks)} checks passed)")
    return 1 if failed else 0
