"""``mweight predict``: predictions with per-block contributions for a dataset (any subset of ids)."""
from __future__ import annotations

import argparse
import sys

from ..devices import add_device_argument, use_device

EPILOG = """examples:
  mweight predict runs/mosi/seed_1 --data mosi.npz --out pred.csv
  mweight predict runs/mosi/seed_1 --data mosi.npz --split test --out test.csv
  mweight predict runs/mosi/seed_1 --data new.npz --ids 03bSnISJMiM_1,03bSnISJMiM_2 --out two.csv

The file needs the model's modalities (same feature sizes); 'label' and the split
column are optional. Output columns: id, split, label, prediction, bias, one column
per block; for every row the block columns plus bias sum to the prediction
(classification: to the logit in 'score' of the predicted class)."""


def add_parser(sub, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="one run directory (a seed_<s>/ of a multi-seed run)")
    p.add_argument("--data", metavar="FILE.npz", help="dataset to predict (default: the run's own)")
    p.add_argument("--out", metavar="PRED.csv", required=True, help="CSV to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--split-key", metavar="KEY", help="split column of --data (default: the run's)")
    p.add_argument("--split", metavar="NAME", help="only rows of this split (train/valid/test)")
    p.add_argument("--ids", metavar="ID1,ID2,...", help="only these ids (in this order)")
    p.add_argument("--ids-file", metavar="IDS.txt", help="only the ids in this file (one per line)")
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import MWeightError
    from ..fileio import atomic_path, check_output_file

    check_output_file(args.out, "--out", overwrite=args.overwrite)  # before any work
    use_device(args.device)  # an absent device: one line, exit 2
    from ..analysis import load_inputs, open_run, predict, read_ids_file, run_dataset, select_ids

    lr = open_run(args.run_dir)
    ds = load_inputs(args.data, lr, args.split_key) if args.data else run_dataset(lr)
    ids = None
    if args.ids and args.ids_file:
        raise MWeightError("--ids and --ids-file: give one of them")
    if args.ids:
        ids = [i.strip() for i in args.ids.split(",") if i.strip()]
    elif args.ids_file:
        ids = read_ids_file(args.ids_file)
    ds = select_ids(ds, ids, args.split)
    frame = predict(lr, ds)
    with atomic_path(args.out) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.7g")
    print(f"wrote {args.out} ({len(frame)} rows; columns {', '.join(frame.columns)})", file=sys.stderr)
    return 0
