"""Validation search for the ``mosei-sequence`` preset on semi-synthetic MOSEI-shaped sequences.

No real MOSEI features are available here, so the preset is tuned on the synthetic
sequences of ``benchmarks/device_speed.py`` (word-aligned, 50 steps, GloVe/COVAREP/FACET
shapes, skewed and correlated features, a label from all three modalities with a text x video
interaction). Every setting is chosen on the validation split only; the test split is read once,
for the chosen setting. A preset tuned this way is a starting point, marked as such, until real
MOSEI features are available.

    python benchmarks/mosei_sequence_search.py [--n 6000] [--epochs 10]
"""
from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from device_speed import mosei_like  # noqa: E402  (the same synthetic MOSEI-shaped data)

from mweight.config import resolve_config  # noqa: E402
from mweight.train import fit  # noqa: E402

GRID = {"train.lr": [0.001, 0.003], "model.encoders.text.hidden": [64, 128]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6000, help="segments (default 6000)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ds = mosei_like(args.n, seed=args.seed)
    print(f"data: {args.n} MOSEI-shaped segments (train/valid/test "
          f"{(ds.split == 'train').sum()}/{(ds.split == 'valid').sum()}/{(ds.split == 'test').sum()})", flush=True)
    rows = []
    for values in itertools.product(*GRID.values()):
        overrides = [f"{k}={v}" for k, v in zip(GRID, values)]
        cfg = resolve_config("mosei-sequence", None, overrides + [
            f"train.epochs={args.epochs}", "train.patience=4", "train.progress=false", f"train.seed={args.seed}",
            "train.threads=1"])
        t0 = time.perf_counter()
        res = fit(ds, cfg)
        rows.append((overrides, res, time.perf_counter() - t0))
        print(f"  {' '.join(overrides)}: valid MAE {res.metrics['valid']['mae']:.4f}, corr "
              f"{res.metrics['valid']['corr']:.3f} (best epoch {res.best_epoch}, {time.perf_counter() - t0:.0f} s)",
              flush=True)
    best = min(rows, key=lambda r: r[1].metrics["valid"]["mae"])
    t = best[1].metrics["test"]
    print(f"chosen on valid MAE: {' '.join(best[0])}; its test MAE {t['mae']:.4f}, corr {t['corr']:.3f}, "
          f"Acc-2 non0 {t['acc2_non0']:.3f}; β share " + ", ".join(f"{b} {v:.2f}" for b, v in best[1].share.items()))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
