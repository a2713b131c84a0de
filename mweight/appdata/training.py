"""Training from the app: the demo, a dataset in the runs folder, the playground's truth, the relevance path over p."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from ..errors import MWeightError
from .groups import MAX_DEPTH, RunGroup, SKIP_DIRS, _finite, attribution_table, block_kind, discover_runs, inside, load_group, safe_join, share_table
from .segments import dataset_path


# ---------------------------------------------------------------- training from the app
def dataset_files(root: Path) -> list[str]:
    """``.npz`` files inside the runs folder (relative POSIX paths), for the demo trainer."""
    out = []
    root = Path(root)
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and n not in SKIP_DIRS)
        if len(d.relative_to(root).parts) >= MAX_DEPTH:
            dirnames[:] = []
        for f in sorted(filenames):
            if f.endswith(".npz") and not (d / f).is_symlink():
                out.append("/".join((d / f).relative_to(root).parts))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "run"


# The quick demo and the playground's defaults (see train_synthetic). The dna-additive
# preset is tuned for N = 8000 and 30 epochs (`mweight repro dna`); on 600 sequences its
# lr 0.001 / batch 64 makes ~50 steps in 6 epochs and leaves the irrelevant modality at
# 0.1-0.3 of the attribution. "overrides" (applied to the additive design) take more,
# larger steps, a stronger λ and select on validation cross-entropy; measured on seeds
# 0, 1, 2 (tests/test_app.py::test_quick_demo_recovers_the_irrelevant_modality_on_3_seeds):
# the p = 0 modality's contribution share ≤ 0.0001 and Shapley share ≤ 0.0014 on every seed
# (seed 0 with mweight's own attribution.json: 0.0000 and 0.0006, verdict ok).
# "timing": the demo's wall-clock time as measured (shown next to the button).
DEMO = {"p": (0.8, 0.4, 0.0), "n": 600, "epochs": 12,
        "overrides": ("train.lr=0.005", "train.batch_size=32", "model.lambda=0.05", "train.select=ce"),
        "timing": "Measured on a shared 2-core machine under heavy load (load average 12-22; not measured idle): "
                  "20-121 s wall-clock, of which training 64 s in the slowest case. 600 sequences are enough "
                  "to find the irrelevant modality (≤ 0.02 of the attribution on seeds 0-2) but too few to "
                  "rank the weak p = 0.4 motif reliably (its share was 0.37 on one seed, ≤ 0.011 on two)."}


def train_synthetic(root: Path, design: str = "additive", p: Iterable[float] = DEMO["p"],
                    n: int = DEMO["n"], epochs: int = DEMO["epochs"], seed: int = 0, length: int = 60,
                    folder: str = "playground", on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Generate a small DNA dataset inside the runs folder and train one run on it.

    ``design``: ``additive`` (one modality per value of ``p``) or ``xor`` (3 modalities,
    label = XOR of m1 and m2, all interaction blocks). Returns
    ``{"run_dir", "rel", "dataset", "truth", "result"}``.
    """
    from .. import synthetic
    from ..config import resolve_config
    from ..seeds import train_runs

    root = Path(root)
    p = [float(v) for v in p]
    if design == "xor":
        ds = synthetic.make_xor(n=int(n), seed=int(seed), length=int(length))
        name = f"xor_n{n}_s{seed}"
        preset = "dna-xor"
    elif design == "additive":
        ds = synthetic.make_additive(p=p, n=int(n), seed=int(seed), length=int(length))
        name = "additive_p" + "-".join(f"{v:g}" for v in p) + f"_n{n}_s{seed}"
        preset = "dna-additive"
    else:
        raise MWeightError(f"design: expected additive or xor, got {design!r}")
    name = _slug(name)
    base = safe_join(root, folder)
    data_path = base / "data" / f"{name}.npz"
    synthetic.write_dataset(ds, data_path)
    out = base / name
    overrides = list(DEMO["overrides"]) if design == "additive" else []
    cfg = resolve_config(preset, None, overrides + [f"train.epochs={int(epochs)}", f"train.seed={int(seed)}"],
                         extra={"data": {"path": str(data_path)}, "train": {"progress": False}})
    train_runs(cfg, out, seeds=None, overwrite=True, preset=preset, on_epoch=on_epoch, verbose=False)
    return {"run_dir": out, "rel": "/".join(out.relative_to(root).parts), "dataset": data_path,
            "truth": ds.ground_truth, "epochs": cfg.train.epochs}


def train_on_file(root: Path, rel: str, preset: str | None, epochs: int,
                  on_epoch: Callable[[dict], None] | None = None, split_key: str | None = None) -> dict:
    """Train one run on a dataset file that lies inside the runs folder."""
    from ..config import resolve_config
    from ..seeds import train_runs

    root = Path(root)
    if rel not in dataset_files(root):
        raise MWeightError(f"{rel!r}: not a .npz dataset inside the runs folder")
    data_path = safe_join(root, rel)
    out = safe_join(root, "demo/" + _slug(Path(rel).stem + (f"_{preset}" if preset else "")))
    extra = {"data": {"path": str(data_path)}, "train": {"progress": False}}
    if split_key:
        extra["data"]["split_key"] = split_key
    cfg = resolve_config(preset, None, [f"train.epochs={int(epochs)}"], extra=extra)
    train_runs(cfg, out, seeds=None, overwrite=True, preset=preset, on_epoch=on_epoch, verbose=False)
    return {"run_dir": out, "rel": "/".join(out.relative_to(root).parts), "epochs": cfg.train.epochs}


def truth_for(root: Path, group: RunGroup) -> dict | None:
    """The ground truth of a synthetic run (from ``<dataset>.truth.json``), if present."""
    import json

    ds = dataset_path(root, group.runs[0])
    if ds is None:
        return None
    t = ds.with_suffix(".truth.json")
    if not t.is_file():
        return None
    try:
        d = json.loads(t.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    gt = d.get("ground_truth") if isinstance(d, dict) else None
    return gt if isinstance(gt, dict) else None


def recovered_vs_truth(group: RunGroup, truth: dict) -> pd.DataFrame:
    """block, recovered (β share), [contribution share (attribution, when present)],
    expected (ground-truth reference share, 0 if not listed)."""
    t = share_table(group)
    exp = truth.get("expected_share") or {}
    out = pd.DataFrame({"block": t["block"], "recovered": t["share_mean"]})
    if group.has_attribution:
        at = attribution_table(group).set_index("block")
        out["contribution share"] = [float(at.loc[b, "contribution_share"]) for b in t["block"]]
    out["expected"] = [float(exp.get(b, 0.0)) for b in t["block"]]
    return out


# ---------------------------------------------------------------- relevance path (β and attribution against p)
PATHS_FOLDER = "paths"
DEFAULT_PATH_PS = (1.0, 2.0, 4.0, 8.0)


def path_folder(group: RunGroup) -> str:
    """Where the relevance path of a run is trained: ``paths/<run>`` inside the runs folder."""
    name = "runs-folder" if group.entry.rel == "." else _slug(group.entry.rel.replace("/", "_"))
    return f"{PATHS_FOLDER}/{name}"


def _p_name(p: float) -> str:
    return f"p_{p:g}".replace(".", "_")


def train_path(root: Path, group: RunGroup, ps: Iterable[float] = DEFAULT_PATH_PS, epochs: int | None = None,
               progress: Callable[[float, str], None] | None = None) -> list[str]:
    """Train the run's configuration (first seed) again at every p in ``ps``, on the same
    data, into ``paths/<run>/p_<p>`` (replacing earlier path runs). Returns their rel paths.

    Only p changes (and ``epochs`` when given): the same data, split, encoders, λ and
    seed, so the path shows what p alone does to β share and to the attribution.
    """
    import copy

    from ..config import Config
    from ..seeds import train_runs

    ps = sorted({float(p) for p in ps})
    if not ps:
        raise MWeightError("relevance path: choose at least one value of p")
    if any(p < 1 for p in ps):
        raise MWeightError(f"relevance path: p = {min(ps):g}; expected p >= 1")
    if not group.has_beta:
        raise MWeightError(f"{group.path / 'config.yaml'}: model.relevance = none (no β), so p changes nothing; "
                           "a relevance path needs a model with β (mnl or explicit)")
    run = group.runs[0]
    ds_path = dataset_path(root, run)
    if ds_path is None:
        raw = (run.config.get("data") or {}).get("path")
        raise MWeightError(f"{run.path / 'config.yaml'}: dataset {raw!r} (data.path) not found; "
                           "the relevance path trains on the run's data")
    base_cfg = Config.from_dict(run.config, source=str(run.path / "config.yaml"))
    base_cfg.data.path = str(ds_path)
    base_cfg.train.progress = False
    if epochs is not None:
        base_cfg.train.epochs = int(epochs)
    folder = safe_join(root, path_folder(group))
    total = len(ps) * base_cfg.train.epochs
    out = []
    for i, p in enumerate(ps):
        cfg = copy.deepcopy(base_cfg)
        cfg.model.p = float(p)

        def on_epoch(row: dict, i=i, p=p) -> None:
            if progress:
                e = int(row.get("epoch", 0))
                progress((i * cfg.train.epochs + e) / total, f"p = {p:g}: epoch {e}/{cfg.train.epochs}")
        target = folder / _p_name(p)
        train_runs(cfg, target, seeds=None, overwrite=True, preset=(run.meta or {}).get("preset"),
                   on_epoch=on_epoch, verbose=False)
        out.append("/".join(target.relative_to(root).parts))
    if progress:
        progress(1.0, "done")
    return out


def path_frame(root: Path, group: RunGroup) -> pd.DataFrame:
    """The relevance path of a run, long form: p, name, kind (block | modality),
    measure (β share | contribution share | Shapley share), value, lo, hi (95% bootstrap
    interval of the attribution, NaN for β). Empty when no path was trained."""
    cols = ["p", "name", "kind", "measure", "value", "lo", "hi", "run"]
    base = Path(root) / path_folder(group)
    if not base.is_dir() or not inside(root, base):
        return pd.DataFrame(columns=cols)
    rows = []
    for e in discover_runs(base):
        if e.kind != "single":
            continue
        try:
            g = load_group(base, e)
        except MWeightError:
            continue
        rel = "/".join((base / e.rel).relative_to(root).parts)
        for b in g.blocks:
            rows.append({"p": g.p, "name": b, "kind": block_kind(b), "measure": "β share",
                         "value": float(g.runs[0].relevance["share"][b]), "lo": np.nan, "hi": np.nan, "run": rel})
        a = g.attributions[0] if g.attributions else None
        if a:
            for b, v in a["blocks"].items():
                ci = v.get("contribution_share_ci") or [np.nan, np.nan]
                rows.append({"p": g.p, "name": b, "kind": block_kind(b), "measure": "contribution share",
                             "value": float(v["contribution_share"]), "lo": ci[0], "hi": ci[1], "run": rel})
            for m, v in (a.get("modalities") or {}).items():
                if isinstance(v, dict) and _finite(v.get("shapley_share")):
                    ci = v.get("shapley_share_ci") or [np.nan, np.nan]
                    rows.append({"p": g.p, "name": m, "kind": "modality", "measure": "Shapley share",
                                 "value": float(v["shapley_share"]), "lo": ci[0], "hi": ci[1], "run": rel})
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(rows, columns=cols).sort_values(["measure", "name", "p"], kind="stable").reset_index(drop=True)
