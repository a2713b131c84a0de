"""Speed-up of `mweight sweep` on the local Ray runtime: 2 workers vs 1 worker vs a plain loop.

8 short trials on the real MOSI utterance features (bc-LSTM, split key
bclstm_protocol): model.p in {1, 2} x model.lambda in {0.01, 0.05} x seeds {1, 2},
preset mosi-utterance, train.epochs = EPOCHS, no early stopping of trials (the same work
in every mode). Each trial uses one torch thread in every mode, and each mode trains
through mweight.trainrun.train_one (the function `mweight train` uses):

  sequential  a plain Python loop over the 8 configurations (no Ray)
  ray-1       mweight.sweep.run_sweep on an embedded local Ray runtime with 1 CPU (1 worker)
  ray-2       the same with 2 CPUs (2 workers)

Reported: wall time of the trials (without starting the Ray runtime), the runtime's
start-up time, the sum of the trials' own training times (``fit`` seconds) and the
achieved concurrency (that sum / wall time), and the speed-ups. The three modes must give the same validation MAE per
trial (same seeds, one thread): the script checks it.

    python benchmarks/sweep_speedup.py [--data FILE.npz] [--epochs 8]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mosi_bclstm_utterance_features" / \
    "mosi_bclstm_features.npz"
SPACE = {"model.p": [1, 2], "model.lambda": [0.01, 0.05]}
SEEDS = [1, 2]


def sequential(data: Path, epochs: int, out: Path) -> tuple[float, dict]:
    from mweight.config import deep_merge, resolve_config
    from mweight.sweep import parse_space, draw_variants, plan_trials, unflatten
    from mweight.trainrun import load_for_training, train_one

    base = resolve_config("mosi-utterance", overrides=[f"train.epochs={epochs}", "train.progress=false",
                                                      "train.threads=1"],
                          extra={"data": {"path": str(data), "split_key": "bclstm_protocol"}}).to_dict()
    sp = parse_space(dict(SPACE))
    trials, _ = plan_trials(base, draw_variants(sp, seeds=SEEDS), sp.searched + ["train.seed"], out)
    from mweight.config import Config

    ds, _ = load_for_training(Config.from_dict(base))
    t0 = time.perf_counter()
    maes, busy = {}, 0.0
    for t in trials:
        res = train_one(Config.from_dict(t.config), ds, t.run_dir)
        maes[t.name] = res.metrics["valid"]["mae"]
        busy += res.seconds
    return time.perf_counter() - t0, maes, busy


def on_ray(data: Path, epochs: int, out: Path, cpus: int) -> tuple[float, float, dict]:
    import yaml

    from mweight.sweep import run_sweep

    space = out.parent / f"space_{cpus}.yaml"
    space.write_text(yaml.safe_dump({**SPACE, "train.epochs": epochs}, sort_keys=False))
    res = run_sweep(data=str(data), space=space, out=out, preset="mosi-utterance", split_key="bclstm_protocol",
                    seeds=SEEDS, scheduler="none", num_cpus=cpus, cpus_per_trial=1, log=lambda m: None)
    assert res.counts["finished"] == 8, res.counts
    maes = dict(zip(res.table["trial"], res.table["valid_mae"]))
    return res.seconds, res.runtime_seconds, maes, float(res.table["seconds"].sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    if not args.data.is_file():
        print(f"{args.data}: not found (the real MOSI features; see /work/shared/data)", file=sys.stderr)
        return 2
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    print(f"cores: {len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()[0]:.2f}")
    print(f"8 trials: model.p {SPACE['model.p']} x model.lambda {SPACE['model.lambda']} x seeds {SEEDS}; "
          f"preset mosi-utterance, {args.epochs} epochs, split bclstm_protocol, 1 torch thread per trial")
    with tempfile.TemporaryDirectory(prefix="mweight_sweep_bench_") as tmp:
        tmp = Path(tmp)
        t_seq, m_seq, b_seq = sequential(args.data, args.epochs, tmp / "seq")
        t1, s1, m1, b1 = on_ray(args.data, args.epochs, tmp / "ray1", cpus=1)
        t2, s2, m2, b2 = on_ray(args.data, args.epochs, tmp / "ray2", cpus=2)
    diff = max(max(abs(m_seq[k] - m1[k]), abs(m_seq[k] - m2[k])) for k in m_seq)
    # concurrency = sum of the trials' own training times / wall time of all trials (2 = two at once)
    print(f"{'mode':<12}{'trials wall s':>14}{'runtime start s':>17}{'total s':>9}{'sum of fit s':>14}{'concurrency':>13}")
    print(f"{'sequential':<12}{t_seq:>14.1f}{'-':>17}{t_seq:>9.1f}{b_seq:>14.1f}{b_seq / t_seq:>13.2f}")
    print(f"{'ray-1':<12}{t1:>14.1f}{s1:>17.1f}{t1 + s1:>9.1f}{b1:>14.1f}{b1 / t1:>13.2f}")
    print(f"{'ray-2':<12}{t2:>14.1f}{s2:>17.1f}{t2 + s2:>9.1f}{b2:>14.1f}{b2 / t2:>13.2f}")
    print(f"speed-up ray-2 vs ray-1 (trials): {t1 / t2:.2f}x; ray-2 vs sequential loop: {t_seq / t2:.2f}x "
          f"(trials), {t_seq / (t2 + s2):.2f}x (with runtime start)")
    print(f"max |valid MAE difference| between modes over the 8 trials: {diff:.2e}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
