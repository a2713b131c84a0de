"""The sweep driver: ``mweight sweep`` = parse the space, plan trials, run them on Ray, tabulate.

Output (``SWEEP_DIR``)::

    trials/trial_<hash>/    one standard run directory per trial (+ sweep_trial.json)
    results.csv, results.md one row per trial: searched values, status, valid/test metrics, beta shares
    best_config.yaml        the best trial's resolved config (use with mweight train --config)
    plots/*.png             validation metric vs each hyper-parameter; beta shares across trials
    sweep.json              the space, base config, dataset checksum and trial list
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ..config import Config, resolve_config
from ..errors import MWeightError
from ..fileio import write_json
from .execution import ray_runtime, require_ray, run_trials
from .results import best_trial, collect_results, group_over_seeds, write_best_config, write_plots, write_results
from .space import Space, load_space, validate_space
from .trials import draw_variants, plan_trials, trial_complete


@dataclass
class SweepResult:
    out: Path
    table: pd.DataFrame
    best: str | None
    status: dict[str, str]
    seconds: float  # trials only
    runtime_seconds: float  # starting the Ray runtime
    counts: dict[str, int] = field(default_factory=dict)


def _dataset_record(cfg: Config) -> dict:
    from ..runs import sha256

    return {"path": cfg.data.path, "sha256": sha256(cfg.data.path), "split_key": cfg.data.split_key,
            "modalities": cfg.data.modalities}


def trial_extra(data: str | Path, split_key: str | None, gpus_per_trial: float) -> dict:
    """The command-line layer of every trial's config (above preset and file, below ``--set``).

    With ``--gpus-per-trial > 0`` the trials train on ``cuda`` (Ray gives each trial its GPUs
    through ``CUDA_VISIBLE_DEVICES``): reserving a GPU for a trial that trains on the CPU would
    only idle it. ``--device`` / ``--set train.device=...`` still decide.
    """
    extra: dict = {"data": {"path": str(Path(data).resolve())}, "train": {"progress": False}}
    if split_key:
        extra["data"]["split_key"] = split_key
    if gpus_per_trial > 0:
        extra["train"]["device"] = "cuda"
    return extra


def run_sweep(*, data: str, space: str | Path | Space, out: str | Path, preset: str | None = None,
              config_file: str | None = None, overrides: list[str] | None = None, split_key: str | None = None,
              samples: int | None = None, seeds: list[int] | None = None, address: str | None = None,
              cpus_per_trial: float = 1, gpus_per_trial: float = 0, max_concurrent: int | None = None,
              scheduler: str | None = None, resume: bool = False, num_cpus: int | None = None,
              log: Callable[[str], None] | None = None) -> SweepResult:
    """Run a sweep into ``out`` (see the module docstring); returns the results table."""
    from ..train import selection_metric
    from ..trainrun import load_for_training

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    require_ray()
    out = Path(out).resolve()
    sp = space if isinstance(space, Space) else load_space(space)
    if samples is not None:
        if samples < 1:
            raise MWeightError(f"--samples {samples}: expected an integer >= 1")
        sp.settings["samples"] = samples
    if sp.settings["samples"] > 1 and not sp.has_random:
        raise MWeightError(f"--samples {sp.settings['samples']}: the space {sp.source} has no random function "
                           "(loguniform(...), choice(...), ...); grid points are not repeated, use --seeds for repeats")
    if scheduler:
        sp.settings["scheduler"] = scheduler
    if cpus_per_trial <= 0:
        raise MWeightError(f"--cpus-per-trial {cpus_per_trial}: expected a number > 0")
    if gpus_per_trial < 0:
        raise MWeightError(f"--gpus-per-trial {gpus_per_trial}: expected a number >= 0")
    if not Path(data).is_file():
        raise MWeightError(f"{data}: dataset file not found")
    base_cfg = resolve_config(preset, config_file, overrides, extra=trial_extra(data, split_key, gpus_per_trial))
    base = base_cfg.to_dict()
    validate_space(sp, base)

    state_path = out / "sweep.json"
    record = _dataset_record(base_cfg)
    if state_path.is_file() and not resume:
        raise MWeightError(f"{out}: already holds a sweep (sweep.json); use --resume to continue it or a new --out")
    if resume and state_path.is_file():
        old = json.loads(state_path.read_text(encoding="utf-8"))
        if old.get("dataset", {}).get("sha256") != record["sha256"]:
            raise MWeightError(f"{out}: this sweep was run on another dataset ({old['dataset'].get('path')}); "
                               "use a new --out")

    ds, carved = load_for_training(base_cfg)
    # the metric the training loop selects on (train.select), so ASHA ranks what fit() keeps
    metric, mode = selection_metric(base_cfg, ds.task)
    variants = draw_variants(sp, seeds=seeds)
    searched = sp.searched + (["train.seed"] if seeds is not None else [])
    trials, dups = plan_trials(base, variants, searched, out / "trials")
    complete = sum(trial_complete(t.run_dir, t.key) for t in trials)
    log(f"[sweep] {len(trials)} trials ({len(variants)} drawn"
        + (f", {dups} duplicate configurations dropped" if dups else "") + f"); selecting on valid_{metric} "
        f"({mode}); scheduler {sp.settings['scheduler']}"
        + (f"; {complete} already complete (not retrained)" if complete else ""))
    header_state = {
        "space": sp.describe(), "settings": sp.settings, "seeds": seeds, "dataset": record,
        "base_config": base, "metric": f"valid_{metric}", "mode": mode, "preset": preset,
        "trials": [{"name": t.name, "key": t.key, "params": t.params} for t in trials],
    }
    write_json(state_path, {**header_state, "status": "running"})
    meta = {"preset": preset, "carved_validation": carved or None}
    with ray_runtime(address, num_cpus=num_cpus) as rt:
        where = f"cluster {address}" if address else "local Ray runtime"
        log(f"[sweep] {where}: {rt['cpus']:g} CPUs, {rt['gpus']:g} GPUs; {cpus_per_trial:g} CPU per trial"
            + (f", {gpus_per_trial:g} GPU per trial" if gpus_per_trial else "")
            + f" (up to {int(max(1, min(rt['cpus'] // cpus_per_trial, max_concurrent or 10**9)))} at once); "
            f"started in {rt['seconds']:.1f} s")
        if rt["cpus"] < cpus_per_trial:
            raise MWeightError(f"--cpus-per-trial {cpus_per_trial:g}: the Ray runtime has only {rt['cpus']:g} CPUs")
        report = run_trials(trials, ds, metric=metric, mode=mode, scheduler=sp.settings["scheduler"],
                            grace_period=sp.settings["grace_period"],
                            reduction_factor=sp.settings["reduction_factor"], cpus_per_trial=cpus_per_trial,
                            gpus_per_trial=gpus_per_trial, max_concurrent=max_concurrent, resume=False,
                            skip_complete=True, storage=out / ".ray", meta=meta, log=log)
        report.runtime_seconds = rt["seconds"]
    table = collect_results(trials, report.status, report.errors, out, metric)
    grouped = group_over_seeds(table, searched, metric, mode)
    counts = {s: int(sum(1 for v in report.status.values() if v == s))
              for s in ("finished", "stopped_early", "skipped", "error", "interrupted")}
    header = [f"- dataset: `{record['path']}` (sha256 {record['sha256'][:12]}…, split key `{base_cfg.data.split_key}`)",
              f"- preset: {preset or '(none)'}; space: `{sp.source}`; scheduler: {sp.settings['scheduler']}",
              f"- trials: {len(trials)} ({', '.join(f'{k} {v}' for k, v in counts.items() if v)})"]
    write_results(out, table, grouped, searched, metric, mode, ds.task, header)
    best = best_trial(table, grouped, metric, mode)
    if best is not None:
        bt = next(t for t in trials if t.name == best)
        row = table[table["trial"] == best].iloc[0].to_dict()
        if grouped is not None:
            row[f"valid_{metric}"] = float(grouped.iloc[0][f"valid_{metric}_mean"])
        write_best_config(out, bt, row, metric, grouped is not None)
    write_plots(out, table, sp, metric, mode)
    unfinished = counts["error"] + counts["interrupted"]
    write_json(state_path, {**header_state, "status": "complete" if not unfinished else "incomplete",
                            "best": best, "counts": counts})
    log(f"[sweep] done in {report.seconds:.1f} s: {out / 'results.md'}"
        + (f"; best {best} -> {out / 'best_config.yaml'}" if best else ""))
    return SweepResult(out=out, table=table, best=best, status=report.status, seconds=report.seconds,
                       runtime_seconds=report.runtime_seconds, counts=counts)
