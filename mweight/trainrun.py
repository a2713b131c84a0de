"""Train one run or one run per seed into run directories (used by the CLI, sweeps and the app)."""
from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Callable

from .config import Config
from .data import Dataset, carve_validation, load_dataset
from .errors import MWeightError
from .runs import RUN_FILES, write_run, write_summary
from .train import CHECKPOINT, FitResult, fit


def load_for_training(cfg: Config) -> tuple[Dataset, dict]:
    if not cfg.data.path:
        raise MWeightError("data.path is not set (use --data FILE.npz)")
    ds = load_dataset(cfg.data.path, cfg.data.split_key, cfg.data.modalities, cfg.data.task)
    ds, record = carve_validation(ds, cfg.data.valid_fraction, cfg.data.valid_seed)
    return ds, record


def _check_out(run_dir: Path, resume: bool, overwrite: bool) -> None:
    if resume or overwrite or not run_dir.exists():
        return
    present = [f for f in RUN_FILES + (CHECKPOINT,) if (run_dir / f).exists()]
    if present:
        raise MWeightError(f"{run_dir}: already holds a run ({present[0]}); use --resume to continue it "
                           "or --overwrite to replace it")


def train_one(cfg: Config, ds: Dataset, run_dir: Path, resume: bool = False, meta: dict | None = None,
              on_epoch: Callable[[dict], None] | None = None) -> FitResult:
    result = fit(ds, cfg, run_dir=run_dir, resume=resume, on_epoch=on_epoch)
    write_run(run_dir, result, cfg, ds, meta=meta)
    return result


def print_result(result: FitResult, run_dir: Path, file=sys.stderr) -> None:
    test = result.metrics.get("test", {})
    keys = [k for k in ("mae", "corr", "acc2_non0", "acc2_has0", "acc7", "acc", "f1") if k in test]
    shown = ", ".join(f"{k}={test[k]:.4f}" for k in keys)
    shares = ", ".join(f"{b}={v:.3f}" for b, v in sorted(result.share.items(), key=lambda kv: -kv[1]))
    print(f"[{run_dir}] best epoch {result.best_epoch}; test {shown}", file=file)
    print(f"[{run_dir}] beta share: {shares}", file=file)


def train_runs(cfg: Config, out: Path, seeds: list[int] | None = None, resume: bool = False,
               overwrite: bool = False, preset: str | None = None,
               on_epoch: Callable[[dict], None] | None = None, verbose: bool = True) -> list[tuple[int, Path]]:
    """Train ``cfg`` once into ``out``, or once per seed into ``out/seed_<s>`` plus a summary."""
    ds, record = load_for_training(cfg)
    meta = {"preset": preset, "carved_validation": record or None}
    done: list[tuple[int, Path]] = []
    if seeds is None:
        _check_out(out, resume, overwrite)
        res = train_one(cfg, ds, out, resume=resume, meta=meta, on_epoch=on_epoch)
        if verbose:
            print_result(res, out)
        return [(cfg.train.seed, out)]
    for s in seeds:
        run_dir = out / f"seed_{s}"
        _check_out(run_dir, resume, overwrite)
        cfg_s = copy.deepcopy(cfg)
        cfg_s.train.seed = s
        res = train_one(cfg_s, ds, run_dir, resume=resume, meta=meta, on_epoch=on_epoch)
        if verbose:
            print_result(res, run_dir)
        done.append((s, run_dir))
    summary = write_summary(out)
    if verbose:
        print(f"[{out}] summary over seeds {summary['seeds']}: {out / 'summary.md'}", file=sys.stderr)
    return done
