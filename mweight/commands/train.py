"""``mweight train``: train one or several seeds and write run directories."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..devices import add_device_argument, use_device
from ..errors import MWeightError
from ..seeds import SEEDS_HELP, parse_seeds

EPILOG = """examples:
  mweight synth dna --design additive --out dna.npz && mweight train --data dna.npz --out runs/dna
  mweight train --data mosi.npz --preset mosi-utterance --split-key bclstm_protocol --seeds 1,2,3,4,5 --out runs/mosi
  mweight train --data dna.npz --preset dna-additive --seeds 5 --out runs/dna5   # seeds 0..4
  mweight train --data mosi.npz --out runs/x --set model.p=1.5 --set model.interactions=[text*audio]
  mweight train --data mosi.npz --out runs/x --resume      # continue an interrupted run

Configs are layered: preset < --config file < --set overrides; the resolved config is
saved as RUN_DIR/config.yaml. Presets: see `mweight train --list-presets`."""


def add_parser(sub, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data and output")
    g.add_argument("--data", metavar="FILE.npz", help="dataset file (see docs/DATASET_FORMAT.md)")
    g.add_argument("--out", metavar="RUN_DIR", help="run directory to write (one seed_<s>/ per seed with --seeds)")
    g.add_argument("--split-key", metavar="KEY", help="split column to use (default: split; e.g. bclstm_protocol)")
    c = p.add_argument_group("configuration")
    add_config_arguments(c)
    c.add_argument("--list-presets", action="store_true", help="list the shipped presets and exit")
    r = p.add_argument_group("seeds and resuming")
    r.add_argument("--seeds", metavar="N|S1,S2,...", help=SEEDS_HELP)
    r.add_argument("--resume", action="store_true", help="continue from the checkpoint(s) in RUN_DIR")
    r.add_argument("--overwrite", action="store_true", help="replace an existing finished run in RUN_DIR")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.add_argument("--parallel", action="store_true",
                   help="with --seeds: run the seeds in parallel on Ray Tune (local cores, or --address; "
                   "needs pip install mweight[sweep])")
    r.add_argument("--address", metavar="ray://HOST:PORT|auto", help="with --parallel: a running Ray cluster")
    add_device_argument(c)
    p.set_defaults(func=run)


def add_config_arguments(group) -> None:
    """The configuration layers, preset < --config file < --set (mweight.config.resolve_config),
    as ``train`` and ``sweep`` take them."""
    group.add_argument("--preset", metavar="NAME", help="a shipped preset (see mweight train --list-presets)")
    group.add_argument("--config", metavar="CFG.yaml", help="YAML config with sections data/model/train")
    group.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                       help="override one config key, e.g. model.p=1.5 (repeatable)")


def run(args) -> int:
    from ..config import list_presets, resolve_config

    if args.list_presets:
        from ..config import preset_description

        for name in list_presets():
            print(f"{name:18s} {preset_description(name)}")
        return 0
    if not args.data:
        raise MWeightError("--data FILE.npz is required (make one with `mweight synth dna` or `mweight prepare mosi`)")
    if not args.out:
        raise MWeightError("--out RUN_DIR is required")
    from ..fileio import check_output_dir

    check_output_dir(args.out, "--out")  # a file or an unwritable folder: refused before anything else
    extra = {"data": {"path": str(args.data)}}
    if args.split_key:
        extra["data"]["split_key"] = args.split_key
    if args.quiet:
        extra["train"] = {"progress": False}
    if use_device(args.device):  # an absent device: one line, exit 2, before any data is read
        extra.setdefault("train", {})["device"] = args.device
    cfg = resolve_config(args.preset, args.config, args.overrides, extra=extra)
    seeds = parse_seeds(args.seeds)
    backend, options = "sequential", {}
    if getattr(args, "parallel", False):
        from ..sweep import require_ray

        require_ray()  # the one-line install hint before anything else
        if not seeds:
            raise MWeightError("--parallel: needs --seeds N or S1,S2,... (one parallel run per seed)")
        backend, options = "ray", {"address": args.address}
    from ..seeds import train_runs  # imports torch: after the checks that do not need it

    results = train_runs(cfg, Path(args.out), seeds=seeds, resume=args.resume, overwrite=args.overwrite,
                         preset=args.preset, backend=backend, **options)
    out = sys.stdout
    for seed, res_dir in results:
        print(f"wrote {res_dir}", file=out)
    return 0


