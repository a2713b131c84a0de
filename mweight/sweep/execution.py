"""Running trials on Ray Tune: the runtime, the trainable every trial runs, ASHA, progress.

Ray Tune runs the trials (locally on an embedded runtime limited to this machine's cores,
or on a cluster with ``address``), with ASHA early stopping on the validation metric that
:func:`mweight.train.fit` reports after every epoch through ``on_epoch``. Every trial is
trained by :func:`mweight.trainrun.train_job`, the same function ``mweight train`` uses,
into a standard run directory. :func:`train_jobs_on_ray` is the ``ray`` backend of
:func:`mweight.seeds.run_seeds` (``mweight train --seeds ... --parallel``).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd

from ..config import Config
from ..errors import MWeightError
from .trials import TRIAL_MARKER, Trial, _marker, trial_complete, trial_hash

INSTALL_HINT = "Ray Tune is not installed; install it with: pip install mweight[sweep]"


def require_ray():
    """Import Ray Tune or raise the one-line install hint."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own progress lines instead of Ray's tables
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        raise MWeightError(INSTALL_HINT) from None
    return ray



# -- the function every trial runs (on a Ray worker) --------------------------------
def _report_row(row: dict, metric: str) -> dict:
    value = row.get(f"valid_{metric}", float("nan"))
    out = {"epoch": int(row["epoch"]), "valid_metric": float(value), "best_epoch": int(row.get("best_epoch", 0))}
    out.update({k: float(v) for k, v in row.items() if k.startswith("valid_") and isinstance(v, (int, float))})
    return out


def run_trial(config: dict, ds=None, job: dict | None = None) -> None:
    """Ray Tune trainable: train one trial into its run directory, reporting per epoch."""
    from ray import tune

    from ..runs import CHECKPOINT_FILE
    from ..trainrun import train_job

    trial = job["trials"][config["trial"]]
    run_dir = Path(trial["run_dir"])
    metric = job["metric"]
    if job["skip_complete"] and trial_complete(run_dir, trial["key"]):
        # Finished before: replay its history so the scheduler sees it, do not train again.
        hist = pd.read_csv(run_dir / "history.csv")
        for row in hist.to_dict("records"):
            tune.report({**_report_row(row, metric), "skipped": 1})
        return
    cfg = Config.from_dict(trial["config"], source=str(run_dir))
    cfg.train.progress = False
    if not cfg.train.threads:
        cfg.train.threads = job["threads"]
    resume = job["resume"] or (job["skip_complete"] and (run_dir / CHECKPOINT_FILE).is_file())
    meta = {**job.get("meta", {}), "sweep": {"trial": trial["name"], "key": trial["key"], "params": trial["params"]}}
    try:
        train_job(cfg, run_dir, ds, label=trial["name"], meta=meta, resume=resume, start_record=False,
                  on_epoch=lambda row: tune.report({**_report_row(row, metric), "skipped": 0}))
    except MWeightError as exc:
        _marker(run_dir, trial, "error", error=str(exc))
        raise RuntimeError(f"{trial['name']}: {exc}") from None
    _marker(run_dir, trial, "finished")


def finalize_stopped(trial: Trial, ds, job: dict) -> bool:
    """A trial stopped by ASHA has a checkpoint but no run files: write them from that checkpoint.

    ``fit(resume=True, max_epochs=<checkpoint epoch>)`` restores the checkpoint, trains no
    further epoch, and evaluates the best epoch so far; then the standard run files are written.
    """
    from ..fileio import load_torch
    from ..runs import write_run
    from ..train import CHECKPOINT, fit

    ck_path = trial.run_dir / CHECKPOINT
    if not ck_path.is_file():
        return False
    epochs = int(load_torch(ck_path)["epoch"])
    cfg = Config.from_dict(trial.config, source=str(trial.run_dir))
    cfg.train.progress = False
    result = fit(ds, cfg, run_dir=trial.run_dir, resume=True, max_epochs=epochs)
    result.extra["stopped_early"] = True
    meta = {**job.get("meta", {}), "sweep": {"trial": trial.name, "key": trial.key, "params": trial.params,
                                             "stopped_by": "asha", "epochs_run": epochs}}
    write_run(trial.run_dir, result, cfg, ds, meta=meta)
    _marker(trial.run_dir, {"name": trial.name, "key": trial.key, "params": trial.params}, "stopped_early",
            epochs_run=epochs)
    return True


# -- the Ray runtime ----------------------------------------------------------
def local_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextmanager
def ray_runtime(address: str | None = None, num_cpus: int | None = None, log=None) -> Iterator[dict]:
    """Use a running Ray (``address``), or start an embedded local one and stop it afterwards."""
    ray = require_ray()
    import logging

    # Ray Tune's own warnings (result files, Tuner.restore hints) do not apply to how mweight
    # resumes; trial errors and interruptions are reported by mweight itself.
    logging.getLogger("ray.tune").setLevel(logging.ERROR)

    info = {"started": False, "seconds": 0.0}
    t0 = time.perf_counter()
    if not ray.is_initialized():
        if address and not address.startswith("ray://") and "RAY_AUTH_MODE" not in os.environ and (
                os.environ.get("RAY_AUTH_TOKEN") or (Path.home() / ".ray" / "auth_token").is_file()):
            # Recent Ray clusters use token auth by default; Ray enables it on the client for
            # address="auto" when a token exists, but not for an explicit host:port: do the same for both.
            try:
                from ray._private.authentication.authentication_token_setup import (
                    maybe_enable_token_auth_if_token_available)

                maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
            except ImportError:  # older Ray: no token auth
                pass
        try:
            if address:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                # address="local": always a new embedded runtime, never a cluster found on this machine
                ray.init(address="local", num_cpus=num_cpus or local_cpus(), include_dashboard=False,
                         log_to_driver=False,
                         logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"--address {address}" if address else "the local Ray runtime"
            hint = "; is the cluster running (ray start --head) and its auth token (RAY_AUTH_TOKEN) set?" \
                if address else ""
            raise MWeightError(f"{where}: cannot start/connect Ray ({str(exc).splitlines()[0][:200]}){hint}") from None
        info["started"] = True
    info["seconds"] = time.perf_counter() - t0
    info["cpus"] = float(ray.cluster_resources().get("CPU", 0))
    info["gpus"] = float(ray.cluster_resources().get("GPU", 0))
    try:
        yield info
    finally:
        if info["started"]:
            ray.shutdown()


# -- running a set of trials -----------------------------------------------
@dataclass
class RunReport:
    trials: list[Trial]
    status: dict[str, str]  # name -> finished | stopped_early | skipped | error | interrupted
    errors: dict[str, str]
    seconds: float  # wall time of the trials (Tuner.fit + finalising), without the runtime start
    runtime_seconds: float  # starting / connecting the Ray runtime


def _progress_callback(all_trials: list[Trial], metric: str, mode: str, epochs_total: dict, log):
    from ray.tune import Callback

    by_index = dict(enumerate(all_trials))

    class Progress(Callback):
        """One line per trial start/end, and epoch progress at most every few seconds per trial."""

        def __init__(self):
            self.done = 0
            self.best = None
            self.last_line: dict[str, float] = {}
            self.seen: dict[str, dict] = {}
            self.status: dict[str, str] = {}
            self.t0 = time.perf_counter()

        def _trial(self, trial):
            return by_index[trial.config["trial"]]

        def _params(self, t):
            return ", ".join(f"{k}={v}" for k, v in t.params.items()) or "base config"

        def on_trial_start(self, iteration, trials, trial, **info):
            t = self._trial(trial)
            log(f"[sweep] start {t.name} ({self._params(t)})")

        def on_trial_result(self, iteration, trials, trial, result, **info):
            t = self._trial(trial)
            self.seen[t.name] = dict(result)
            now = time.perf_counter()
            if result.get("skipped"):
                return
            if now - self.last_line.get(t.name, 0.0) >= 5.0:
                self.last_line[t.name] = now
                log(f"[sweep] {t.name} epoch {result['epoch']}/{epochs_total[t.name]} "
                    f"valid_{metric}={result['valid_metric']:.4f}")

        def on_trial_complete(self, iteration, trials, trial, **info):
            t = self._trial(trial)
            self.done += 1
            last = self.seen.get(t.name, {})
            skipped = bool(last.get("skipped"))
            stopped = (not skipped) and last.get("epoch", 0) < epochs_total[t.name] and not trial_complete(t.run_dir)
            self.status[t.name] = "skipped" if skipped else "stopped_early" if stopped else "finished"
            v = last.get("valid_metric")
            if v is not None and math.isfinite(v) and not skipped:
                hist = pd.read_csv(t.run_dir / "history.csv") if trial_complete(t.run_dir) else None
                best_v = (hist[f"valid_{metric}"].min() if mode == "min" else hist[f"valid_{metric}"].max()) \
                    if hist is not None and f"valid_{metric}" in hist else v
                if self.best is None or (best_v < self.best[0] if mode == "min" else best_v > self.best[0]):
                    self.best = (best_v, t.name)
            what = {"skipped": "already complete, not retrained", "stopped_early":
                    f"stopped by ASHA after epoch {last.get('epoch')}", "finished": "finished"}[self.status[t.name]]
            best = f"; best so far {self.best[1]} valid_{metric}={self.best[0]:.4f}" if self.best else ""
            log(f"[sweep] {self.done}/{len(all_trials)} {t.name}: {what} ({time.perf_counter() - self.t0:.0f} s){best}")

        def on_trial_error(self, iteration, trials, trial, **info):
            t = self._trial(trial)
            self.done += 1
            self.status[t.name] = "error"
            log(f"[sweep] {self.done}/{len(all_trials)} {t.name}: FAILED (see results.md)")

    return Progress()


def run_trials(trials: list[Trial], ds, *, metric: str, mode: str, scheduler: str = "none",
               grace_period: int | None = None, reduction_factor: float = 3, cpus_per_trial: float = 1,
               gpus_per_trial: float = 0, max_concurrent: int | None = None, resume: bool = False,
               skip_complete: bool = True, storage: Path, meta: dict | None = None, log=None) -> RunReport:
    """Run ``trials`` on the current Ray runtime (see :func:`ray_runtime`) with Ray Tune."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    epochs_total = {t.name: int(t.config["train"]["epochs"]) for t in trials}
    job = {
        "trials": [{"name": t.name, "key": t.key, "params": t.params, "config": t.config,
                    "run_dir": str(t.run_dir.resolve())} for t in trials],
        "metric": metric, "resume": resume, "skip_complete": skip_complete,
        "threads": max(1, int(cpus_per_trial)), "meta": meta or {},
    }
    if scheduler == "asha":
        max_t = max(epochs_total.values())
        sched = ASHAScheduler(time_attr="epoch", metric="valid_metric", mode=mode, max_t=max_t,
                              grace_period=min(grace_period or max(1, max_t // 10), max_t),
                              reduction_factor=reduction_factor, stop_last_trials=False)
    else:
        sched = FIFOScheduler()
    resources = {"cpu": cpus_per_trial}
    if gpus_per_trial:
        resources["gpu"] = gpus_per_trial
    trainable = tune.with_resources(tune.with_parameters(run_trial, ds=ds, job=job), resources)
    progress = _progress_callback(trials, metric, mode, epochs_total, log)
    storage = Path(storage).resolve()
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(list(range(len(trials))))},
        tune_config=tune.TuneConfig(scheduler=sched, num_samples=1, max_concurrent_trials=max_concurrent,
                                    reuse_actors=True,
                                    trial_dirname_creator=lambda tr: f"{trials[tr.config['trial']].name}"),
        run_config=tune.RunConfig(name=time.strftime("tune_%Y%m%d_%H%M%S"), storage_path=str(storage),
                                  verbose=0, callbacks=[progress],
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    t0 = time.perf_counter()
    grid = tuner.fit()
    status, errors = dict(progress.status), {}
    for res in grid:
        t = trials[res.config["trial"]] if res.config else None
        if t is None:
            continue
        if res.error is not None:
            status[t.name] = "error"
            msg = _error_text(t.run_dir, res.error)
            errors[t.name] = msg
    for t in trials:
        st = status.get(t.name)
        if st in ("stopped_early", "finished") and not trial_complete(t.run_dir, t.key) and st != "error":
            # Stopped by ASHA (or killed after its last report): write its run from the checkpoint.
            if finalize_stopped(t, ds, job):
                status[t.name] = "stopped_early"
        if st is None:
            status[t.name] = "interrupted"
    return RunReport(trials=trials, status=status, errors=errors, seconds=time.perf_counter() - t0,
                     runtime_seconds=0.0)


def _error_text(run_dir: Path, error: BaseException) -> str:
    marker = run_dir / TRIAL_MARKER
    if marker.is_file():
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
            if info.get("status") == "error" and info.get("error"):
                return str(info["error"])
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    lines = [ln for ln in str(error).strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(error).__name__


def train_jobs_on_ray(jobs: list, ds, *, address: str | None = None, cpus_per_job: float = 1,
                      log=None) -> list[dict]:
    """One Ray Tune trial per :class:`mweight.seeds.SeedJob` (no early stopping) on the dataset
    ``ds`` sent once to the workers; a seed that does not finish is a one-line MWeightError."""
    from ..train import selection_metric

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    require_ray()
    metric, mode = selection_metric(jobs[0].config, ds.task)
    trials = [Trial(name=Path(j.run_dir).name, params={"train.seed": j.seed}, config=j.config.to_dict(),
                    key=trial_hash(j.config.to_dict()), run_dir=Path(j.run_dir)) for j in jobs]
    root = Path(jobs[0].run_dir).parent
    with ray_runtime(address) as rt:
        log(f"[train] {len(jobs)} seeds in parallel on {'cluster ' + address if address else 'the local Ray runtime'}"
            f" ({rt['cpus']:g} CPUs, {cpus_per_job:g} per seed)")
        report = run_trials(trials, ds, metric=metric, mode=mode, scheduler="none", cpus_per_trial=cpus_per_job,
                            resume=jobs[0].resume, skip_complete=False, storage=root / ".ray", meta=jobs[0].meta,
                            log=log)
    failed = {n: s for n, s in report.status.items() if s not in ("finished",)}
    if failed:
        name = sorted(failed)[0]
        raise MWeightError(f"{root / name}: seed run {failed[name]}"
                           + (f": {report.errors[name]}" if name in report.errors else ""))
    return [{"label": j.label, "run_dir": str(j.run_dir), "seed": j.seed, "reused": False} for j in jobs]
