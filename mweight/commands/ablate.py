"""``mweight ablate``: does beta agree with what removing a modality costs? (ablation and permutation)"""
from __future__ import annotations

import argparse
import sys

from ..devices import add_device_argument, use_device

EPILOG = """examples:
  mweight ablate runs/mosi/seed_1
  mweight ablate runs/mosi                       # every seed: mean ± std, rank agreement per seed
  mweight ablate runs/mosi/seed_1 --repeats 20 --metric acc2_non0

For each modality: ablation = replace it by its training mean (the model's stored
input mean; token inputs: the most frequent training token per position);
permutation = shuffle it across the evaluated samples (--repeats times, seeded).
The drop (positive = worse) is printed next to beta's share, with the Spearman and
Kendall rank agreement between beta, ablation and permutation. Results are written
to RUN_DIR/ablation.json (or --json)."""


def add_parser(sub, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or a multi-seed folder with seed_<s>/)")
    p.add_argument("--data", metavar="FILE.npz", help="dataset (default: the run's own)")
    p.add_argument("--split", default="test", help="split to evaluate on (default: test)")
    p.add_argument("--repeats", type=int, default=5, help="permutations per modality (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutations (default 0)")
    p.add_argument("--metric", action="append", metavar="NAME",
                   help="metric(s) to report (default: mae, acc2_non0, corr; classification: acc, f1)")
    p.add_argument("--json", metavar="OUT.json",
                   help="where to write the results (default RUN_DIR/ablation.json, replaced on every run)")
    p.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..errors import MWeightError
    from ..fileio import check_output_file, write_json

    if args.json:  # before any work; the default RUN_DIR/ablation.json is this command's own file
        check_output_file(args.json, "--json", overwrite=args.overwrite)
    use_device(args.device)  # an absent device: one line, exit 2
    if args.repeats < 1:
        raise MWeightError(f"--repeats {args.repeats}: expected an integer >= 1")
    from ..analysis import ablate_run, format_ablation, open_run, run_dirs

    root = Path(args.run_dir)
    dirs = run_dirs(root)
    results = []
    for d in dirs:
        res = ablate_run(open_run(d), args.data, args.split, args.repeats, args.seed, args.metric)
        results.append(res)
        if len(dirs) > 1:
            write_json(d / "ablation.json", res)
    print(format_ablation(results))
    out = Path(args.json) if args.json else root / "ablation.json"
    write_json(out, results[0] if len(results) == 1 else {"runs": results})
    print(f"wrote {out}", file=sys.stderr)
    return 0
