"""Hyper-parameter sweeps and multi-seed studies on Ray Tune.

A *search space* is a YAML mapping from dotted config keys to values::

    model.p: [1, 1.5, 2]                      # a list: grid over these values
    model.lambda: loguniform(1e-4, 1e-1)      # a function: drawn at random per sample
    model.interactions: [[], [text*audio], all]
    model.norm: [none, vbn, iterbn]
    train.epochs: 30                          # a scalar: fixed for every trial
    sweep: {samples: 4, scheduler: asha, grace_period: 3, reduction_factor: 3, seed: 0}

Functions: ``uniform(a, b)``, ``loguniform(a, b)``, ``quniform(a, b, q)``,
``qloguniform(a, b, q)``, ``randint(a, b)`` and ``lograndint(a, b)`` (integers
``a .. b-1``, as in Ray Tune), ``choice(x, y, ...)``. To fix a key to a list value,
wrap it: ``model.interactions: [[text*audio]]``.

Trials = grid (the product of the lists) x ``samples`` (random functions drawn
with Ray Tune's samplers from a seeded generator) x ``--seeds``. The trial list is
drawn in the driver from ``sweep.seed``, so a sweep run again with ``--resume``
sees exactly the same trials; each trial's directory is named by a hash of its
resolved config, and a trial whose directory is complete is not trained again.

Ray Tune runs the trials (locally on an embedded runtime limited to this
machine's cores, or on a cluster with ``address``), with ASHA early stopping on
the validation metric that :func:`mweight.train.fit` reports after every epoch
through ``on_epoch``. Every trial is trained by :func:`mweight.trainrun.train_one`,
the same function ``mweight train`` uses, into a standard run directory.

Output (``SWEEP_DIR``)::

    trials/trial_<hash>/    one standard run directory per trial (+ sweep_trial.json)
    results.csv, results.md one row per trial: searched values, status, valid/test metrics, beta shares
    best_config.yaml        the best trial's resolved config (use with mweight train --config)
    plots/*.png             validation metric vs each hyper-parameter; beta shares across trials
    sweep.json              the space, base config, dataset checksum and trial list
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import yaml

from .config import Config, deep_merge, read_yaml, resolve_config
from .errors import MWeightError
from .fileio import atomic_path, write_json, write_text

INSTALL_HINT = "Ray Tune is not installed; install it with: pip install mweight[sweep]"
TRIAL_MARKER = "sweep_trial.json"
SECTIONS = ("data", "model", "train")
SETTINGS_KEY = "sweep"
SETTINGS_DEFAULTS = {"samples": 1, "scheduler": "asha", "grace_period": None, "reduction_factor": 3, "seed": 0}
FUNCTIONS = {  # name -> (number of arguments, Ray Tune constructor name)
    "uniform": (2, "uniform"), "loguniform": (2, "loguniform"), "quniform": (3, "quniform"),
    "qloguniform": (3, "qloguniform"), "randint": (2, "randint"), "lograndint": (2, "lograndint"),
    "choice": (None, "choice"),
}
_FUNC_RE = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.S)


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


# -- the search space -------------------------------------------------------
@dataclass
class Grid:
    values: list


@dataclass
class Func:
    name: str
    args: list

    def text(self) -> str:
        return f"{self.name}({', '.join(map(str, self.args))})"

    def ray_domain(self):
        from ray import tune

        ctor = getattr(tune, FUNCTIONS[self.name][1])
        return ctor(list(self.args)) if self.name == "choice" else ctor(*self.args)

    def example(self):
        return self.args[0]

    @property
    def log(self) -> bool:
        return self.name in ("loguniform", "qloguniform", "lograndint")


@dataclass
class Space:
    """Parsed search space: ``params`` (dotted key -> Grid | Func | fixed value) and sweep settings."""

    params: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=lambda: dict(SETTINGS_DEFAULTS))
    source: str = "space"

    @property
    def searched(self) -> list[str]:
        return [k for k, v in self.params.items() if isinstance(v, (Grid, Func))]

    @property
    def has_random(self) -> bool:
        return any(isinstance(v, Func) for v in self.params.values())

    def describe(self) -> dict:
        out = {}
        for k, v in self.params.items():
            out[k] = {"grid": v.values} if isinstance(v, Grid) else v.text() if isinstance(v, Func) else {"fixed": v}
        return out


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and key.count(".") < 1:  # a section: data/model/train
            out.update(_flatten(v, key))
        elif isinstance(v, dict) and not key.startswith("model.encoders"):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def unflatten(flat: dict) -> dict:
    """``{"model.p": 1.5}`` -> ``{"model": {"p": 1.5}}``."""
    out: dict = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = copy.deepcopy(value)
    return out


def _number(a: Any) -> Any:
    if isinstance(a, str):
        for kind in (int, float):
            try:
                return kind(a)
            except ValueError:
                pass
    return a


def _parse_func(key: str, text: str, source: str) -> Func:
    m = _FUNC_RE.match(text)
    name, inner = m.group(1), m.group(2)
    if name not in FUNCTIONS:
        raise MWeightError(f"{source}: {key}: unknown function {name}(); expected one of "
                           f"{', '.join(f + '()' for f in FUNCTIONS)} or a list of values")
    try:
        args = yaml.safe_load(f"[{inner}]")
    except yaml.YAMLError:
        raise MWeightError(f"{source}: {key}: cannot read the arguments of {text!r}") from None
    n_args = FUNCTIONS[name][0]
    if name != "choice":  # PyYAML reads 1e-4 (no dot) as a string
        args = [_number(a) for a in args]
    if name == "choice":
        if len(args) == 1 and isinstance(args[0], list):
            args = args[0]
        if len(args) < 1:
            raise MWeightError(f"{source}: {key}: choice() needs at least one value")
        return Func(name, args)
    if len(args) != n_args or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        shown = "a, b, q" if n_args == 3 else "a, b"
        raise MWeightError(f"{source}: {key}: {text.strip()}: expected {name}({shown}) with numbers")
    low, high = args[0], args[1]
    if not low < high:
        raise MWeightError(f"{source}: {key}: {text.strip()}: expected low < high")
    if name in ("loguniform", "qloguniform", "lograndint") and low <= 0:
        raise MWeightError(f"{source}: {key}: {text.strip()}: a log scale needs low > 0")
    if name in ("randint", "lograndint") and not all(isinstance(a, int) for a in args):
        raise MWeightError(f"{source}: {key}: {text.strip()}: expected integer bounds")
    return Func(name, args)


def parse_space(raw: dict, source: str = "space") -> Space:
    """A YAML mapping (already loaded) -> :class:`Space`; errors name the file and the key."""
    if not isinstance(raw, dict) or not raw:
        raise MWeightError(f"{source}: expected a mapping of config keys, e.g. 'model.p: [1, 2]'")
    raw = dict(raw)
    settings = dict(SETTINGS_DEFAULTS)
    user_settings = raw.pop(SETTINGS_KEY, None) or {}
    if not isinstance(user_settings, dict):
        raise MWeightError(f"{source}: {SETTINGS_KEY}: expected a mapping ({', '.join(SETTINGS_DEFAULTS)})")
    bad = sorted(set(user_settings) - set(SETTINGS_DEFAULTS))
    if bad:
        raise MWeightError(f"{source}: {SETTINGS_KEY}.{bad[0]}: unknown setting; expected one of "
                           f"{', '.join(SETTINGS_DEFAULTS)}")
    settings.update(user_settings)
    params: dict[str, Any] = {}
    for key, value in _flatten(raw).items():
        if key.split(".")[0] not in SECTIONS or "." not in key:
            raise MWeightError(f"{source}: {key}: expected a dotted config key starting with data., model. or "
                               f"train. (or the '{SETTINGS_KEY}:' settings)")
        if key == "data.path":
            raise MWeightError(f"{source}: data.path: the dataset is given with --data, not searched")
        if isinstance(value, list):
            if not value:
                raise MWeightError(f"{source}: {key}: empty list; expected at least one value")
            params[key] = Grid(list(value))
        elif isinstance(value, str) and _FUNC_RE.match(value):
            params[key] = _parse_func(key, value, source)
        else:
            params[key] = value
    _check_settings(settings, source)
    return Space(params=params, settings=settings, source=source)


def _check_settings(s: dict, source: str) -> None:
    checks = [
        (isinstance(s["samples"], int) and s["samples"] >= 1, "samples", "an integer >= 1"),
        (s["scheduler"] in ("asha", "none"), "scheduler", "asha | none"),
        (s["grace_period"] is None or (isinstance(s["grace_period"], int) and s["grace_period"] >= 1),
         "grace_period", "an integer >= 1 (epochs)"),
        (isinstance(s["reduction_factor"], (int, float)) and s["reduction_factor"] > 1, "reduction_factor",
         "a number > 1"),
        (isinstance(s["seed"], int), "seed", "an integer"),
    ]
    for ok, key, expected in checks:
        if not ok:
            raise MWeightError(f"{source}: {SETTINGS_KEY}.{key} = {s[key]!r}; expected {expected}")


def load_space(path: str | Path) -> Space:
    path = Path(path)
    if not path.is_file():
        raise MWeightError(f"{path}: search space file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MWeightError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if isinstance(raw, dict):
        raw.pop("description", None)
    return parse_space(raw, source=str(path))


def validate_space(space: Space, base: dict) -> None:
    """Every searched/fixed value must make a valid config (checked before any trial starts)."""
    for key, spec in space.params.items():
        values = spec.values if isinstance(spec, Grid) else [spec.example()] if isinstance(spec, Func) else [spec]
        if isinstance(spec, Func) and spec.name == "choice":
            values = spec.args
        for v in values:
            Config.from_dict(deep_merge(base, unflatten({key: v})), source=space.source)


# -- trials -----------------------------------------------------------------
def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


def trial_hash(cfg_dict: dict) -> str:
    """Hash of a resolved config without what does not change the result (data.path, progress, threads)."""
    d = copy.deepcopy(cfg_dict)
    d.get("data", {}).pop("path", None)
    d.get("train", {}).pop("progress", None)
    d.get("train", {}).pop("threads", None)
    return hashlib.sha256(_canonical(d).encode()).hexdigest()


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def draw_variants(space: Space, seeds: list[int] | None = None, samples: int | None = None) -> list[dict]:
    """The trial list: grid product x samples (random draws, seeded) x seeds; flat dotted-key dicts."""
    from ray import tune  # noqa: F401  (domains sample with Ray Tune's samplers)

    samples = samples or space.settings["samples"]
    grids = {k: v.values for k, v in space.params.items() if isinstance(v, Grid)}
    funcs = {k: v for k, v in space.params.items() if isinstance(v, Func)}
    fixed = {k: v for k, v in space.params.items() if not isinstance(v, (Grid, Func))}
    if seeds is not None and "train.seed" in space.params:
        raise MWeightError(f"{space.source}: train.seed is in the space; do not also pass --seeds")
    rng = np.random.default_rng(space.settings["seed"])
    domains = {k: f.ray_domain() for k, f in funcs.items()}
    out = []
    for _ in range(samples):
        for combo in itertools.product(*grids.values()) if grids else [()]:
            v = dict(fixed)
            v.update(dict(zip(grids, combo)))
            for k, dom in domains.items():  # one draw per grid point and sample (as Ray Tune does) ...
                v[k] = _plain(dom.sample(random_state=rng))
            for s in seeds if seeds is not None else [None]:  # ... shared by its seeds
                out.append(v if s is None else {**v, "train.seed": s})
    return out


@dataclass
class Trial:
    name: str
    params: dict  # searched values only (dotted keys)
    config: dict  # resolved config (Config.to_dict())
    key: str
    run_dir: Path


def plan_trials(base: dict, variants: list[dict], searched: list[str], root: Path,
                name_fn: Callable[[dict, str], str] | None = None) -> tuple[list[Trial], int]:
    """Resolve each variant against ``base``; drop duplicates (same resolved config)."""
    trials, seen, dups = [], set(), 0
    for v in variants:
        cfg = Config.from_dict(deep_merge(base, unflatten(v)), source=f"trial {v}")
        d = cfg.to_dict()
        key = trial_hash(d)
        if key in seen:
            dups += 1
            continue
        seen.add(key)
        params = {k: v[k] for k in searched if k in v}
        name = name_fn(v, key) if name_fn else f"trial_{key[:10]}"
        trials.append(Trial(name=name, params=params, config=d, key=key, run_dir=root / name))
    return trials, dups


def trial_complete(run_dir: Path, key: str | None = None) -> bool:
    """A complete run directory (:class:`mweight.runs.RunDir`) whose trial marker says it
    finished (or was stopped by ASHA and written from its checkpoint), for this trial's key."""
    from .runs import RunDir

    marker = run_dir / TRIAL_MARKER
    if not marker.is_file() or not RunDir(run_dir).complete:
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return info.get("status") in ("finished", "stopped_early") and (key is None or info.get("key") == key)


def _marker(run_dir: Path, trial: dict, status: str, **extra) -> None:
    write_json(run_dir / TRIAL_MARKER, {"name": trial["name"], "key": trial["key"], "params": trial["params"],
                                        "status": status, **extra})


# -- the function every trial runs (on a Ray worker) --------------------------------
def _report_row(row: dict, metric: str) -> dict:
    value = row.get(f"valid_{metric}", float("nan"))
    out = {"epoch": int(row["epoch"]), "valid_metric": float(value), "best_epoch": int(row.get("best_epoch", 0))}
    out.update({k: float(v) for k, v in row.items() if k.startswith("valid_") and isinstance(v, (int, float))})
    return out


def run_trial(config: dict, ds=None, job: dict | None = None) -> None:
    """Ray Tune trainable: train one trial into its run directory, reporting per epoch."""
    from ray import tune

    from .trainrun import train_one
    from .train import CHECKPOINT

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
    resume = job["resume"] or (job["skip_complete"] and (run_dir / CHECKPOINT).is_file())
    meta = {**job.get("meta", {}), "sweep": {"trial": trial["name"], "key": trial["key"], "params": trial["params"]}}
    try:
        train_one(cfg, ds, run_dir, resume=resume, meta=meta,
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
    from .fileio import load_torch
    from .runs import write_run
    from .train import CHECKPOINT, fit

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


# -- results ------------------------------------------------------------------
def _value_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v)


def collect_results(trials: list[Trial], status: dict[str, str], errors: dict[str, str], root: Path,
                    metric: str) -> pd.DataFrame:
    """One row per trial: name, status, searched values, valid_*/test_* metrics, share_* per block."""
    from .runs import load_run

    rows = []
    for t in trials:
        st = status.get(t.name, "interrupted")
        row: dict[str, Any] = {"trial": t.name}
        row.update({k: _value_text(v) if isinstance(v, list) else v for k, v in t.params.items()})
        if trial_complete(t.run_dir, t.key):
            run = load_run(t.run_dir)
            info = json.loads((t.run_dir / TRIAL_MARKER).read_text(encoding="utf-8"))
            row["status"] = "stopped_early" if info.get("status") == "stopped_early" else "finished"
            if st == "skipped":
                row["status"] += " (resumed)"
            row["epochs_run"] = run.metrics.get("info", {}).get("epochs_run")
            row["best_epoch"] = run.metrics.get("info", {}).get("best_epoch")
            for split in ("valid", "test"):
                for k, v in run.metrics.get(split, {}).items():
                    row[f"{split}_{k}"] = v
            for b, v in run.relevance.get("share", {}).items():
                row[f"share_{b}"] = v
            row["seconds"] = run.metrics.get("info", {}).get("seconds")
            row["run_dir"] = os.path.relpath(t.run_dir, root)
        else:
            row["status"] = st if st in ("error", "interrupted") else "incomplete"
            row["error"] = errors.get(t.name, "")
            row["run_dir"] = os.path.relpath(t.run_dir, root)
        rows.append(row)
    table = pd.DataFrame(rows)
    for col in ("epochs_run", "best_epoch"):
        if col in table:
            table[col] = table[col].astype("Int64")
    return table


def rank(table: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    col = f"valid_{metric}"
    if col not in table:
        return table
    return table.sort_values(col, ascending=(mode == "min"), na_position="last", kind="stable")


def group_over_seeds(table: pd.DataFrame, searched: list[str], metric: str, mode: str) -> pd.DataFrame | None:
    """mean ± std over seeds per configuration (only when train.seed varies)."""
    if "train.seed" not in table or table["train.seed"].nunique() < 2 or f"valid_{metric}" not in table:
        return None
    keys = [k for k in searched if k != "train.seed" and k in table]
    ok = table[table["status"].str.startswith(("finished", "stopped_early"))].copy()
    if ok.empty:
        return None
    cols = [c for c in ok.columns if c.startswith(("valid_", "test_", "share_"))]
    if keys:
        for k in keys:
            ok[k] = ok[k].map(_value_text)
        g = ok.groupby(keys, dropna=False, sort=False)
    else:
        g = ok.groupby(lambda _: "base", sort=False)
    mean, std = g[cols].mean(), g[cols].std(ddof=0)
    out = mean.add_suffix("_mean").join(std.add_suffix("_std"))
    out["seeds"] = g["train.seed"].apply(lambda s: ",".join(str(int(x)) for x in sorted(s)))
    out["trials"] = g["trial"].apply(lambda s: ",".join(s))
    out = out.reset_index()
    return out.sort_values(f"valid_{metric}_mean", ascending=(mode == "min"), kind="stable")


def _md_table(df: pd.DataFrame, cols: list[str], params: tuple = ()) -> list[str]:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r.get(c, "")
            if c in params:
                cells.append(_value_text(v))
            elif isinstance(v, float):
                cells.append("" if math.isnan(v) else f"{v:.4f}" if abs(v) < 1e4 else f"{v:.4g}")
            else:
                cells.append(_value_text(v) if v is not None else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _metric_cols(table: pd.DataFrame, task: str) -> list[str]:
    keys = ("mae", "corr", "acc2_non0", "f1_non0", "acc2_has0", "acc7") if task == "regression" else ("acc", "f1")
    return [f"test_{k}" for k in keys if f"test_{k}" in table]


def write_results(root: Path, table: pd.DataFrame, grouped: pd.DataFrame | None, searched: list[str],
                  metric: str, mode: str, task: str, header: list[str]) -> None:
    table = rank(table, metric, mode)
    with atomic_path(root / "results.csv") as tmp:
        table.to_csv(tmp, index=False)
    shares = [c for c in table.columns if c.startswith("share_")]
    cols = ["trial", *[k for k in searched if k in table], "status", "epochs_run", f"valid_{metric}",
            *_metric_cols(table, task), *shares]
    cols = [c for c in cols if c in table]
    direction = "lower" if mode == "min" else "higher"
    lines = ["# Sweep results", "", *header, "",
             f"Trials ranked by the validation metric `valid_{metric}` ({direction} is better; the test split is "
             "reported, never used for selection). `share_<block>` is the block's beta share (sums to 1). "
             "`stopped_early`: stopped by ASHA; its run holds the best epoch up to then.", "",
             *_md_table(table, cols, params=tuple(searched))]
    if grouped is not None:
        g_cols = [c for c in grouped.columns if not c.endswith(("_mean", "_std")) and c not in ("trials",)]
        show = [f"valid_{metric}", *[c[len(""):] for c in _metric_cols(table, task)], *shares]
        gtab = grouped.copy()
        for c in show:
            if f"{c}_mean" in gtab:
                gtab[c] = [f"{m:.4f} ± {s:.4f}" for m, s in zip(gtab[f"{c}_mean"], gtab[f"{c}_std"])]
        lines += ["", "## Mean ± std over seeds (population std)", "",
                  *_md_table(gtab, [*g_cols, *[c for c in show if c in gtab]], params=tuple(searched))]
    errs = table[table["status"].isin(["error"])] if "status" in table else table.iloc[0:0]
    if len(errs) and "error" in errs:
        lines += ["", "## Failed trials", ""] + [f"- {r['trial']}: {r['error']}" for _, r in errs.iterrows()]
    write_text(root / "results.md", "\n".join(lines) + "\n")


def best_trial(table: pd.DataFrame, grouped: pd.DataFrame | None, metric: str, mode: str) -> str | None:
    col = f"valid_{metric}"
    ok = table[table["status"].str.startswith(("finished", "stopped_early"))] if "status" in table else table
    if col not in ok or ok[col].notna().sum() == 0:
        return None
    if grouped is not None and len(grouped):
        return grouped.iloc[0]["trials"].split(",")[0]
    ok = rank(ok, metric, mode)
    return str(ok.iloc[0]["trial"])


def write_best_config(root: Path, trial: Trial, row: dict, metric: str, grouped: bool) -> Path:
    cfg = copy.deepcopy(trial.config)
    cfg["train"]["progress"] = True
    cfg["train"]["threads"] = 0
    what = "best mean validation metric over seeds" if grouped else "best validation metric"
    values = ", ".join(f"{k}={_value_text(v)}" for k, v in trial.params.items() if k != "train.seed")
    text = (f"# Best configuration of this sweep ({what}: valid_{metric} = {row.get(f'valid_{metric}', float('nan')):.4f}"
            f", trial {trial.name}).\n# Searched values: {values or '(none)'}\n"
            f"# Reuse: mweight train --config {root / 'best_config.yaml'} --data FILE.npz --out RUN_DIR\n"
            + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None))
    write_text(root / "best_config.yaml", text)
    return root / "best_config.yaml"


def write_plots(root: Path, table: pd.DataFrame, space: Space, metric: str, mode: str) -> list[Path]:
    """metric_vs_<key>.png for each searched key, beta_shares.png across trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = root / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = table[table["status"].str.startswith(("finished", "stopped_early"))] if "status" in table else table
    col = f"valid_{metric}"
    written = []
    if col not in ok or ok.empty:
        return written
    searched = [k for k in space.searched if k in ok] + (["train.seed"] if "train.seed" in ok and
                                                         "train.seed" not in space.searched else [])
    tcol = f"test_{metric}"
    for key in searched:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        vals = ok[key]
        numeric = pd.api.types.is_numeric_dtype(vals)
        if numeric:
            x = vals.astype(float).to_numpy()
            spec = space.params.get(key)
            if isinstance(spec, Func) and spec.log or (x.min() > 0 and x.max() / max(x.min(), 1e-300) > 100):
                ax.set_xscale("log")
        else:
            cats = list(dict.fromkeys(vals.map(_value_text)))
            x = np.array([cats.index(_value_text(v)) for v in vals], dtype=float)
            ax.set_xticks(range(len(cats)), cats, rotation=20)
        jitter = 0 if numeric else (np.random.default_rng(0).random(len(x)) - 0.5) * 0.15
        ax.scatter(x + jitter, ok[col], label=f"validation {metric}", color="C0")
        if tcol in ok:
            ax.scatter(x + jitter, ok[tcol], label=f"test {metric}", color="C1", marker="x")
        ax.set_xlabel(key)
        ax.set_ylabel(f"{metric} ({'lower' if mode == 'min' else 'higher'} is better)")
        ax.set_title(f"{metric} vs {key}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"metric_vs_{key.replace('.', '_')}.png"
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(path)
    shares = [c for c in ok.columns if c.startswith("share_")]
    if shares:
        ranked = rank(ok, metric, mode)
        fig, ax = plt.subplots(figsize=(max(5.5, 0.45 * len(ranked) + 2), 4))
        bottom = np.zeros(len(ranked))
        for i, c in enumerate(shares):
            v = ranked[c].fillna(0).to_numpy(dtype=float)
            ax.bar(range(len(ranked)), v, bottom=bottom, label=c[len("share_"):], color=f"C{i % 10}")
            bottom += v
        ax.set_xticks(range(len(ranked)), ranked["trial"], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("beta share (sums to 1)")
        ax.set_title(f"beta shares across trials (ranked by validation {metric})")
        ax.legend(fontsize=7, ncol=min(len(shares), 4), loc="upper right")
        fig.tight_layout()
        path = out_dir / "beta_shares.png"
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(path)
    return written


# -- the sweep -----------------------------------------------------------------
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
    from .runs import sha256

    return {"path": cfg.data.path, "sha256": sha256(cfg.data.path), "split_key": cfg.data.split_key,
            "modalities": cfg.data.modalities}


def run_sweep(*, data: str, space: str | Path | Space, out: str | Path, preset: str | None = None,
              config_file: str | None = None, overrides: list[str] | None = None, split_key: str | None = None,
              samples: int | None = None, seeds: list[int] | None = None, address: str | None = None,
              cpus_per_trial: float = 1, gpus_per_trial: float = 0, max_concurrent: int | None = None,
              scheduler: str | None = None, resume: bool = False, num_cpus: int | None = None,
              log: Callable[[str], None] | None = None) -> SweepResult:
    """Run a sweep into ``out`` (see the module docstring); returns the results table."""
    from .train import selection_metric
    from .trainrun import load_for_training

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
    extra = {"data": {"path": str(Path(data).resolve())}, "train": {"progress": False}}
    if split_key:
        extra["data"]["split_key"] = split_key
    base_cfg = resolve_config(preset, config_file, overrides, extra=extra)
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


def train_seeds_parallel(cfg: Config, out: Path, seeds: list[int], resume: bool = False, overwrite: bool = False,
                         preset: str | None = None, address: str | None = None, cpus_per_trial: float = 1,
                         log: Callable[[str], None] | None = None) -> list[tuple[int, Path]]:
    """``mweight train --seeds ... --parallel``: one Ray Tune trial per seed into ``out/seed_<s>``, then the
    same summary as the sequential path (:func:`mweight.trainrun.train_runs`)."""
    from .train import selection_metric
    from .runs import load_run, result_line, seed_dir, write_summary
    from .trainrun import _check_out, load_for_training

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    require_ray()
    out = Path(out).resolve()
    for s in seeds:
        _check_out(seed_dir(out, s), resume, overwrite)
    cfg = copy.deepcopy(cfg)
    cfg.data.path = str(Path(cfg.data.path).resolve()) if cfg.data.path else cfg.data.path
    ds, carved = load_for_training(cfg)
    metric, mode = selection_metric(cfg, ds.task)
    base = cfg.to_dict()
    trials, _ = plan_trials(base, [{"train.seed": s} for s in seeds], ["train.seed"], out,
                            name_fn=lambda v, key: seed_dir(out, v["train.seed"]).name)
    meta = {"preset": preset, "carved_validation": carved or None}
    with ray_runtime(address) as rt:
        log(f"[train] {len(seeds)} seeds in parallel on {'cluster ' + address if address else 'the local Ray runtime'}"
            f" ({rt['cpus']:g} CPUs, {cpus_per_trial:g} per seed)")
        report = run_trials(trials, ds, metric=metric, mode=mode, scheduler="none", cpus_per_trial=cpus_per_trial,
                            resume=resume, skip_complete=False, storage=out / ".ray", meta=meta, log=log)
    failed = {n: s for n, s in report.status.items() if s not in ("finished",)}
    if failed:
        name = sorted(failed)[0]
        raise MWeightError(f"{out / name}: seed run {failed[name]}"
                           + (f": {report.errors[name]}" if name in report.errors else ""))
    done = []
    for t in trials:
        run = load_run(t.run_dir)
        log(f"[{t.run_dir}] {result_line(run.metrics, run.metrics.get('info', {}).get('best_epoch'))}")
        done.append((int(t.params["train.seed"]), t.run_dir))
    summary = write_summary(out)
    log(f"[{out}] summary over seeds {summary['seeds']}: {out / 'summary.md'}")
    return done
