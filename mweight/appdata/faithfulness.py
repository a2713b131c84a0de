"""Faithfulness: β share next to the importance measured by block ablation and modality permutation."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import MWeightError
from .groups import RunGroup, _finite, block_kind, inside, metric_label
from .segments import dataset_path


# ---------------------------------------------------------------- faithfulness
def ablation_results(run_dir: Path) -> dict | None:
    """Results of ``mweight ablate`` saved in the run folder (``ablation.json``), if any."""
    import json

    for name in ("ablation.json", "ablate.json"):
        f = Path(run_dir) / name
        if f.is_file():
            try:
                d = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            return d if isinstance(d, dict) else None
    return None


def _metric_drop(task: str, base: float, other: float, mode: str) -> float:
    return (other - base) if mode == "min" else (base - other)


def faithfulness(root: Path, group: RunGroup, seed=None, split: str = "test", repeats: int = 3,
                 rng_seed: int = 0, progress: Callable[[float, str], None] | None = None) -> dict:
    """β share next to the measured importance of each block and each modality.

    - *block ablation*: remove block S's contribution ``W_S z_S(x)`` from every
      prediction (exact: the prediction is additive over blocks; z_S is centred by
      the block normalisation, so this is close to replacing it by its mean) and
      measure how much the selection metric degrades;
    - *modality permutation*: shuffle one modality's inputs across samples (every
      block containing it is affected), ``repeats`` times, mean degradation; plus
      *modality ablation* (replace it by its training mean). Both come from
      :func:`mweight.analysis.ablate_run` (the code behind ``mweight ablate``).

    Returns ``{"metric", "label", "base", "split", "n", "blocks": DataFrame, "modalities": DataFrame,
    "source"}``; importance shares are the degradations clipped at 0 and normalised to sum 1.
    """
    from ..config import Config
    from ..data import carve_validation, load_dataset, to_tensors
    from ..metrics import compute_metrics, select_metric
    from ..model import predict_tensors
    from ..runs import load_model

    run = group.run_for(seed)
    model_path = run.path / "model.pt"
    if not model_path.is_file():
        raise MWeightError(f"{model_path}: file not found (needed to measure importance)")
    if not inside(root, model_path):
        raise MWeightError(f"{model_path}: points outside the runs folder; not read")
    ds_path = dataset_path(root, run)
    if ds_path is None:
        raw = (run.config.get("data") or {}).get("path")
        raise MWeightError(f"{run.path / 'config.yaml'}: dataset {raw!r} (data.path) not found; "
                           "importance needs the inputs the run was trained on")
    model, cfg, task = load_model(model_path)
    if not isinstance(cfg, Config):
        raise MWeightError(f"{model_path}: no config in the model file")
    if progress:
        progress(0.02, "loading the dataset")
    ds = load_dataset(ds_path, cfg.data.split_key, cfg.data.modalities, cfg.data.task)
    ds, _ = carve_validation(ds, cfg.data.valid_fraction, cfg.data.valid_seed)
    part = ds.part(split)
    if len(part) < 2:
        raise MWeightError(f"{ds_path}: split {split!r} has {len(part)} samples; need at least 2")
    inputs, lengths, _ = to_tensors(part)
    metric, mode = select_metric(task)

    def score(pred: np.ndarray) -> float:
        vals = pred[:, 0] if task == "regression" else pred
        return float(compute_metrics(vals, part.label, task)[metric])

    pred, contrib = predict_tensors(model, inputs, lengths, contributions=True)
    base = score(pred)
    # like with like: this seed's β share and attribution next to this seed's measured importance
    share = {b: float(v) for b, v in run.relevance["share"].items()}
    attr = attribution_on_split(group.attribution_for(seed), split)
    blocks = list(model.block_names)
    steps = len(blocks) + len(model.modalities) * repeats
    done = 0
    rows = []
    for b in blocks:
        drop = _metric_drop(task, base, score(pred - contrib[b]), mode)
        rows.append({"block": b, "kind": block_kind(b),
                     "beta_share": share.get(b, float("nan")) if group.has_beta else float("nan"),
                     "contribution_share": attr["blocks"].get(b, float("nan")), "degradation": drop})
        done += 1
        if progress:
            progress(done / steps, f"ablating block {b}")
    blocks_df = pd.DataFrame(rows)
    pos = blocks_df["degradation"].clip(lower=0)
    blocks_df["importance_share"] = pos / pos.sum() if pos.sum() > 0 else 0.0
    from ..analysis import LoadedRun, ablate_run

    if progress:
        progress(done / steps, "ablating and permuting modalities (mweight.analysis)")
    lr = LoadedRun(path=run.path, run=run, model=model, cfg=cfg, task=task)
    own_file = bool(cfg.data.path) and Path(cfg.data.path).is_file()
    res = ablate_run(lr, data=None if own_file else ds_path, split=split, repeats=repeats, seed=rng_seed,
                     metrics=[metric])
    mods_df = pd.DataFrame([{"modality": m, "beta_share_own": r["share"],
                             "beta_share_all_blocks_with_it": r["share_with_interactions"],
                             "ablation_degradation": r["ablation"][metric], "degradation": r["permutation"][metric],
                             "degradation_std": r["permutation_std"][metric]} for m, r in res["modalities"].items()])
    source = ("block ablation: mweight.appdata (exact removal of W_S z_S); modalities: "
              "mweight.analysis.ablate_run (training-mean ablation, permutation)")
    for col, out in (("degradation", "importance_share"), ("ablation_degradation", "ablation_share")):
        if col in mods_df:
            pos = mods_df[col].clip(lower=0)
            mods_df[out] = pos / pos.sum() if pos.sum() > 0 else 0.0
    mods_df["shapley_share"] = [attr["modalities"].get(m, float("nan")) for m in mods_df["modality"]]
    if not group.has_beta:
        for c in ("beta_share_own", "beta_share_all_blocks_with_it"):
            mods_df[c] = float("nan")
    if progress:
        progress(1.0, "done")
    return {"metric": metric, "label": metric_label(metric), "mode": mode, "base": base, "split": split,
            "n": len(part), "blocks": blocks_df, "modalities": mods_df, "dataset": str(ds_path),
            "source": source, "seeds": [seed], "attribution_split": attr["split"]}


def attribution_on_split(attr: dict | None, split: str) -> dict:
    """``{"blocks": {b: contribution_share}, "modalities": {m: shapley_share}, "split"}`` of
    one run's attribution on ``split`` (from ``by_split``, or the top level when it is that
    split); empty dicts and ``split`` None when the run has no attribution for it."""
    out = {"blocks": {}, "modalities": {}, "split": None}
    if not attr:
        return out
    part = (attr.get("by_split") or {}).get(split)
    if not isinstance(part, dict) and attr.get("split") == split:
        part = attr
    if not isinstance(part, dict):
        return out
    for b, v in (part.get("blocks") or {}).items():
        if isinstance(v, dict) and _finite(v.get("contribution_share")):
            out["blocks"][b] = float(v["contribution_share"])
    for m, v in (part.get("modalities") or {}).items():
        if isinstance(v, dict) and _finite(v.get("shapley_share")):
            out["modalities"][m] = float(v["shapley_share"])
    out["split"] = split
    return out


def faithfulness_mean(root: Path, group: RunGroup, split: str = "test", repeats: int = 3,
                      progress: Callable[[float, str], None] | None = None) -> dict:
    """:func:`faithfulness` of every seed, averaged column by column: means with means
    (each seed's β share, attribution and importance measured on that seed's model)."""
    results = []
    n = len(group.seeds)
    for i, seed in enumerate(group.seeds):
        def sub(f, text, i=i, seed=seed):
            if progress:
                progress((i + f) / n, f"seed {seed}: {text}")
        results.append(faithfulness(root, group, seed, split, repeats, progress=sub))
    first = results[0]

    def mean_frame(key: str, by: str) -> pd.DataFrame:
        frames = pd.concat([r[key] for r in results], ignore_index=True)
        num = [c for c in frames.columns if c not in (by, "kind")]
        out = frames.groupby(by, sort=False)[num].mean().reset_index()
        if "kind" in frames:
            out.insert(1, "kind", [block_kind(b) for b in out[by]])
        return out

    return {**first, "base": float(np.mean([r["base"] for r in results])), "blocks": mean_frame("blocks", "block"),
            "modalities": mean_frame("modalities", "modality"), "seeds": list(group.seeds)}


def saved_ablation_table(saved: dict) -> pd.DataFrame | None:
    """The modality table of an ``ablation.json`` written by ``mweight ablate`` (None if another shape)."""
    mods = saved.get("modalities") if isinstance(saved, dict) else None
    if not isinstance(mods, dict):
        return None
    rows = []
    for m, r in mods.items():
        if not isinstance(r, dict):
            return None
        row = {"modality": m, "β share (its blocks)": r.get("share_with_interactions")}
        for kind in ("ablation", "permutation"):
            for k, v in (r.get(kind) or {}).items():
                row[f"{kind} drop ({k})"] = v
        rows.append(row)
    return pd.DataFrame(rows)
