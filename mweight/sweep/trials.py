"""Trial planning: the trial list drawn from a space, one run directory per resolved config.

Trials = grid (the product of the lists) x ``samples`` (random functions drawn with Ray
Tune's samplers from a seeded generator) x ``--seeds``. The list is drawn in the driver
from ``sweep.seed``, so a sweep run again with ``--resume`` sees exactly the same trials;
each trial's directory is named by a hash of its resolved config, and a trial whose
directory is complete is not trained again.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..config import Config, deep_merge
from ..errors import MWeightError
from ..fileio import write_json
from .space import Func, Grid, Space, unflatten

TRIAL_MARKER = "sweep_trial.json"


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
    from ..runs import RunDir

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
