"""``mweight sweep``: hyper-parameter sweeps and multi-seed studies on Ray Tune."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..devices import add_device_argument, use_device
from ..errors import MWeightError
from .train import add_config_arguments

EPILOG = """search space (YAML, any dotted config key):
  model.p: [1, 1.5, 2]                      # list = grid
  model.lambda: loguniform(1e-4, 1e-1)      # uniform, loguniform, quniform, qloguniform,
  model.interactions: [[], [text*audio], all]   # randint, lograndint, choice(...) = random
  model.norm: [none, vbn, iterbn]
  train.epochs: 20                          # scalar = fixed
  sweep: {samples: 4, scheduler: asha, grace_period: 3, reduction_factor: 3, seed: 0}

examples:
  mweight sweep --data mosi.npz --preset mosi-utterance --space paper_repro/spaces/mosi-utterance.yaml --out sweeps/mosi
  mweight sweep --data dna.npz --preset dna-additive --space space.yaml --seeds 1,2,3 --out sweeps/dna
  mweight sweep ... --out sweeps/mosi --resume          # continue; finished trials are not retrained
  ray start --head --num-cpus 32   # on the head node, then on any cluster node:
  mweight sweep ... --address auto --out /shared/sweeps/mosi

Output: SWEEP_DIR/trials/<trial>/ (standard run directories), results.csv, results.md,
best_config.yaml (use with `mweight train --config`), plots/*.png, sweep.json.
Without --address an embedded Ray runtime is started on this machine's cores and stopped
at the end. Needs the sweep extra: pip install mweight[sweep]."""


def add_parser(sub, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data, space and output")
    g.add_argument("--data", metavar="FILE.npz", help="dataset file (see docs/DATASET_FORMAT.md)")
    g.add_argument("--space", metavar="SPACE.yaml", help="search space: dotted config keys -> lists / functions")
    g.add_argument("--out", metavar="SWEEP_DIR", help="sweep directory to write")
    g.add_argument("--split-key", metavar="KEY", help="split column to use (e.g. bclstm_protocol)")
    c = p.add_argument_group("base configuration (as in mweight train)")
    add_config_arguments(c)
    s = p.add_argument_group("search")
    s.add_argument("--samples", type=int, metavar="N",
                   help="random draws of the space's functions per grid point (default: sweep.samples or 1)")
    s.add_argument("--seeds", metavar="N|S1,S2,...",
                   help="train every configuration once per seed (mean ± std); N = seeds 0..N-1, or a list S1,S2,...")
    s.add_argument("--scheduler", choices=("asha", "none"),
                   help="early stopping of bad trials (default: sweep.scheduler or asha)")
    s.add_argument("--resume", action="store_true", help="continue SWEEP_DIR; finished trials are not retrained")
    r = p.add_argument_group("Ray runtime")
    r.add_argument("--address", metavar="ray://HOST:PORT|auto",
                   help="run on a running Ray cluster (default: an embedded local runtime)")
    r.add_argument("--cpus-per-trial", type=float, default=1, metavar="C", help="CPUs per trial (default 1)")
    r.add_argument("--gpus-per-trial", type=float, default=0, metavar="G", help="GPUs reserved per trial (default 0)")
    r.add_argument("--max-concurrent", type=int, metavar="N", help="at most N trials at once (default: as many as fit)")
    add_device_argument(c)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..sweep import require_ray

    require_ray()  # one-line install hint before anything else
    from ..sweep import run_sweep
    from ..seeds import parse_seeds

    for flag, value in (("--data FILE.npz", args.data), ("--space SPACE.yaml", args.space),
                        ("--out SWEEP_DIR", args.out)):
        if not value:
            raise MWeightError(f"{flag} is required")
    from ..fileio import check_output_dir

    check_output_dir(args.out, "--out")
    if use_device(args.device):  # an absent device: one line, exit 2; then every trial trains there
        args.overrides = [*args.overrides, f"train.device={args.device}"]
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise MWeightError(f"--max-concurrent {args.max_concurrent}: expected an integer >= 1")
    result = run_sweep(data=args.data, space=args.space, out=args.out, preset=args.preset, config_file=args.config,
                       overrides=args.overrides, split_key=args.split_key, samples=args.samples,
                       seeds=parse_seeds(args.seeds), address=args.address, cpus_per_trial=args.cpus_per_trial,
                       gpus_per_trial=args.gpus_per_trial, max_concurrent=args.max_concurrent,
                       scheduler=args.scheduler, resume=args.resume)
    out = Path(result.out)
    print(f"wrote {out / 'results.md'}", file=sys.stdout)
    if result.best:
        print(f"best {result.best}: {out / 'best_config.yaml'}", file=sys.stdout)
    errors, interrupted = result.counts.get("error", 0), result.counts.get("interrupted", 0)
    if errors:
        print(f"mweight: {errors} trial(s) failed (see {out / 'results.md'}); fix and run again with --resume",
              file=sys.stderr)
        return 1
    if interrupted:
        print(f"mweight: interrupted; {interrupted} trial(s) unfinished, their last epoch is kept: run the same "
              "command with --resume", file=sys.stderr)
        return 130
    return 0
