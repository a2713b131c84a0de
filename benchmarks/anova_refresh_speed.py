"""Training speed of the anova blocks: the least-squares fit re-solved every step vs every 4 steps.

``LowerOrderResidual`` updates its moments at every training step and re-solves its fit every
``refresh`` steps (default 4; every step while the moments form). This measures, in one process
and interleaved over ``--rounds``, training samples/s of the same model with ``refresh = 1``
(the previous behaviour) and ``refresh = 4``, on the real MOSI bc-LSTM features with the
all-interactions InTense model (a triple block over several hundred lower-order features), and
the validation MAE of each (the two should learn alike).

    python benchmarks/anova_refresh_speed.py [--epochs 3] [--rounds 2] [--preset intense]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

from mweight import norm
from mweight.config import resolve_config
from mweight.train import fit
from mweight.trainrun import load_for_training

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mosi_bclstm_utterance_features" / "mosi_bclstm_features.npz"
CONFIG = Path(__file__).resolve().parent / "mosi_training.yaml"


def run(cfg, ds, refresh: int) -> tuple[float, float]:
    """Train once with every LowerOrderResidual built with ``refresh``; (samples/s, valid MAE)."""
    defaults = norm.LowerOrderResidual.__init__.__defaults__
    norm.LowerOrderResidual.__init__.__defaults__ = defaults[:-1] + (refresh,)
    try:
        res = fit(ds, cfg)
    finally:
        norm.LowerOrderResidual.__init__.__defaults__ = defaults
    return res.samples_per_second, res.metrics["valid"]["mae"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--preset", default="intense", help="model preset (default intense: all interactions)")
    args = ap.parse_args(argv)
    if not DATA.is_file():
        print(f"anova_refresh_speed: {DATA}: not found (the real MOSI data; see ../shared/data)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    cfg = resolve_config(args.preset, str(CONFIG), [f"train.epochs={args.epochs}", f"train.patience={args.epochs}",
                                                    "train.progress=false", "train.seed=1", "train.threads=1"],
                         extra={"data": {"path": str(DATA), "split_key": "bclstm_protocol"}})
    ds, _ = load_for_training(cfg)
    speed: dict[int, list[float]] = {1: [], 4: []}
    mae: dict[int, float] = {}
    for r in range(args.rounds):
        for refresh in ((1, 4) if r % 2 == 0 else (4, 1)):  # interleaved, alternating order
            sps, mae[refresh] = run(cfg, ds, refresh)
            speed[refresh].append(sps)
            print(f"round {r + 1}, refresh {refresh}: {sps:.0f} samples/s, valid MAE {mae[refresh]:.4f}", flush=True)
    med = {k: statistics.median(v) for k, v in speed.items()}
    print(f"\n{args.preset} on MOSI bclstm_protocol, {args.epochs} epochs, {args.rounds} rounds, one thread")
    print("| fit re-solved | training samples/s (median) | ratio | valid MAE |")
    print("| --- | ---: | ---: | ---: |")
    for k in (1, 4):
        print(f"| every {k} step{'s' if k > 1 else ''} | {med[k]:.0f} | {med[k] / med[1]:.2f}x | {mae[k]:.4f} |")
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
