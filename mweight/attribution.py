"""Attribution that does not depend on p: contribution shares and exact Shapley values (docs/method.md).

β is the model's relevance *parameter*: β_S ∝ ‖W_S‖^{2/(p+1)}, so as p grows every β share
is pushed towards 1/|blocks| whatever the weights. How much a block or a modality changed
the predictions is read from the exact decomposition ``f(x) = b + Σ_S g_S(x)``,
``g_S(x) = W_S z_S(x)`` (the block columns of ``predictions.csv``):

- ``contribution_share`` of block S on a split: Var(g_S) / Σ_T Var(g_T) over the split's
  samples. With blocks that are uncorrelated (anova) this is S's share of the variance of
  the prediction.
- Shapley values of the modalities for the game "remove a modality = replace every block
  that contains it by its training-mean contribution" (the game's Harsanyi dividends are
  d_S(x) = g_S(x) − E_train g_S for the blocks, 0 otherwise, so the values are exact)::

      φ_m(x) = Σ_{S ∋ m} (g_S(x) − E_train g_S) / |S|,   Σ_m φ_m(x) = f(x) − baseline

  ``shapley_share`` of m = mean |φ_m| / Σ_k mean |φ_k| over the split.
- Pairwise Shapley interaction indices (Grabisch): I_ij(x) = Σ_{S ⊇ {i,j}} d_S(x) / (|S| − 1).

Classification decomposes the logit of the predicted class (baselines per class).
Everything here is numpy on arrays keyed by block or modality name.
"""
from __future__ import annotations

import itertools
from typing import Iterable, Mapping, Sequence

import numpy as np

SPLITS = ("train", "valid", "test")
SHAPLEY_PREFIX = "shapley_"
BASELINE_COLUMN = "shapley_baseline"
BOOTSTRAP_REPS = 200

DEFINITIONS = {
    "beta": "the model's relevance parameter: closed-form beta of the selected checkpoint (unit p-norm)",
    "beta_share": "beta normalised to sum 1; depends on p (squeezed towards uniform as p grows)",
    "contribution_share": "Var of the block's contribution W_S z_S(x) over the split, normalised to sum 1",
    "shapley_share": "mean |phi_m(x)| over the split, normalised to sum 1; phi_m = exact Shapley value of "
                     "modality m when a removed modality's blocks take their training-mean contribution",
    "interaction index": "pairwise Shapley interaction index I_ij(x) = sum over blocks S containing i and j "
                         "of (g_S(x) - E_train g_S) / (|S| - 1); 'share' is mean |I_ij| over the sum of "
                         "mean |phi_m|",
    "_ci": "95% bootstrap interval over the split's samples (200 resamples)",
    "unimodal label agreement": "per modality with a human unimodal label (label_<m>, CH-SIMS): correlation "
                                "of its per-sample Shapley value phi_m(x) with that label and with the "
                                "multimodal label; difference = unimodal minus multimodal",
}


def block_members(block: str) -> tuple[str, ...]:
    return tuple(block.split("*"))


def modalities_of(blocks: Iterable[str]) -> list[str]:
    """The modalities (unimodal block names, in block order) of a block list."""
    out: list[str] = []
    for b in blocks:
        for m in block_members(b):
            if m not in out:
                out.append(m)
    return out


def dividends(contrib: Mapping[str, np.ndarray], baseline: Mapping[str, np.ndarray | float]) -> dict[str, np.ndarray]:
    """d_S(x) = g_S(x) − E_train g_S per block; baseline per sample (N,) or a scalar."""
    return {b: np.asarray(g, dtype=np.float64) - np.asarray(baseline[b], dtype=np.float64)
            for b, g in contrib.items()}


def shapley_values(contrib: Mapping[str, np.ndarray], baseline: Mapping[str, np.ndarray | float],
                   modalities: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Exact Shapley value φ_m(x) of every modality; (N,) each. Σ_m φ_m = Σ_S d_S."""
    d = dividends(contrib, baseline)
    mods = list(modalities) if modalities is not None else modalities_of(d)
    n = len(next(iter(d.values()))) if d else 0
    phi = {m: np.zeros(n) for m in mods}
    for b, v in d.items():
        members = block_members(b)
        for m in members:
            phi[m] += v / len(members)
    return phi


def interaction_indices(contrib: Mapping[str, np.ndarray], baseline: Mapping[str, np.ndarray | float],
                        modalities: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Pairwise Shapley interaction index I_ij(x) for every pair of modalities that share a block."""
    d = dividends(contrib, baseline)
    mods = list(modalities) if modalities is not None else modalities_of(d)
    out: dict[str, np.ndarray] = {}
    for i, j in itertools.combinations(mods, 2):
        terms = [v / (len(block_members(b)) - 1) for b, v in d.items()
                 if i in block_members(b) and j in block_members(b)]
        if terms:
            out[f"{i}*{j}"] = np.sum(terms, axis=0)
    return out


def _normalise(values: Mapping[str, float]) -> dict[str, float]:
    total = float(sum(values.values()))
    if total <= 0 or not np.isfinite(total):
        return {k: float("nan") for k in values}
    return {k: float(v) / total for k, v in values.items()}


def contribution_shares(contrib: Mapping[str, np.ndarray]) -> dict[str, float]:
    return _normalise({b: float(np.var(np.asarray(g, dtype=np.float64))) for b, g in contrib.items()})


def shapley_shares(phi: Mapping[str, np.ndarray]) -> dict[str, float]:
    return _normalise({m: float(np.mean(np.abs(v))) for m, v in phi.items()})


def _bootstrap(fn, n: int, reps: int = BOOTSTRAP_REPS, seed: int = 0) -> dict[str, list[float]]:
    """95% percentile interval of every entry of ``fn(index array)`` over resamples of n rows."""
    if n < 2:
        return {}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(reps):
        for k, v in fn(rng.integers(0, n, n)).items():
            draws.setdefault(k, []).append(v)
    return {k: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))] for k, v in draws.items()}


def split_attribution(contrib: Mapping[str, np.ndarray], baseline: Mapping[str, np.ndarray | float],
                      modalities: Sequence[str], intervals: bool = True) -> dict:
    """Attribution of one split: block contribution shares, modality Shapley shares, interactions."""
    contrib = {b: np.asarray(g, dtype=np.float64) for b, g in contrib.items()}
    base = {b: np.broadcast_to(np.asarray(baseline[b], dtype=np.float64), g.shape) for b, g in contrib.items()}
    phi = shapley_values(contrib, base, modalities)
    inter = interaction_indices(contrib, base, modalities)
    c_share = contribution_shares(contrib)
    s_share = shapley_shares(phi)
    mean_abs = {m: float(np.mean(np.abs(v))) for m, v in phi.items()}
    total_abs = sum(mean_abs.values())
    out = {
        "n": int(len(next(iter(contrib.values())))) if contrib else 0,
        "blocks": {b: {"contribution_share": c_share[b]} for b in contrib},
        "modalities": {m: {"shapley_share": s_share[m], "mean_abs_shapley": mean_abs[m]} for m in phi},
        "interactions": {k: {"mean_abs_index": float(np.mean(np.abs(v))),
                             "share": float(np.mean(np.abs(v)) / total_abs) if total_abs > 0 else float("nan")}
                         for k, v in inter.items()},
    }
    n = out["n"]
    if intervals and n >= 2:
        ci_c = _bootstrap(lambda idx: contribution_shares({b: g[idx] for b, g in contrib.items()}), n)
        ci_s = _bootstrap(lambda idx: shapley_shares({m: v[idx] for m, v in phi.items()}), n, seed=1)
        for b in out["blocks"]:
            out["blocks"][b]["contribution_share_ci"] = ci_c.get(b)
        for m in out["modalities"]:
            out["modalities"][m]["shapley_share_ci"] = ci_s.get(m)
    return out


def per_sample(pred: np.ndarray, contrib: Mapping[str, np.ndarray], bias: np.ndarray, train_mask: np.ndarray,
               task: str, train_means: Mapping[str, np.ndarray] | None = None) -> tuple[dict, dict, np.ndarray]:
    """Per-sample decomposition of the decomposed output (the value, or the predicted class's logit).

    pred: (N, out); contrib: block -> (N, out); bias: (out,). The baseline of each block is
    its training-mean contribution (per output), taken from ``train_means`` or from the
    rows of ``train_mask``. Returns (g: block -> (N,), baseline: block -> (N,), index (N,)).
    """
    out_dim = pred.shape[1]
    idx = pred.argmax(axis=1) if (task == "classification" or out_dim > 1) else np.zeros(len(pred), dtype=int)
    rows = np.arange(len(pred))
    if train_means is None:
        if not np.any(train_mask):
            raise ValueError("no training rows to take the baseline (training-mean contribution) from")
        train_means = {b: c[train_mask].astype(np.float64).mean(axis=0) for b, c in contrib.items()}
    g = {b: c[rows, idx].astype(np.float64) for b, c in contrib.items()}
    base = {b: np.asarray(train_means[b], dtype=np.float64)[idx] for b in contrib}
    return g, base, idx


def shapley_columns(g: Mapping[str, np.ndarray], base: Mapping[str, np.ndarray], bias_at: np.ndarray,
                    modalities: Sequence[str]) -> dict[str, np.ndarray]:
    """Columns ``shapley_<m>`` and ``shapley_baseline`` (baseline + Σ φ = the decomposed output)."""
    phi = shapley_values(g, base, modalities)
    cols = {f"{SHAPLEY_PREFIX}{m}": v for m, v in phi.items()}
    cols[BASELINE_COLUMN] = np.asarray(bias_at, dtype=np.float64) + np.sum([base[b] for b in g], axis=0)
    return cols


def attribution_report(g: Mapping[str, np.ndarray], base: Mapping[str, np.ndarray], split: np.ndarray,
                       modalities: Sequence[str], beta: Mapping[str, float] | None,
                       beta_share: Mapping[str, float] | None, *, task: str, p: float | None,
                       best_epoch: int | None, train_means: Mapping[str, np.ndarray],
                       checkpoint: str = "model.pt") -> dict:
    """The content of ``attribution.json`` (schema in docs/method.md)."""
    split = np.asarray(split).astype(str)
    by_split = {}
    for s in SPLITS:
        mask = split == s
        if mask.any():
            by_split[s] = split_attribution({b: v[mask] for b, v in g.items()},
                                            {b: v[mask] for b, v in base.items()}, modalities,
                                            intervals=True)
    main = "test" if "test" in by_split else ("valid" if "valid" in by_split else next(iter(by_split), None))
    top = by_split.get(main, {"blocks": {}, "modalities": {}, "interactions": {}, "n": 0})
    blocks = {}
    for b in g:
        entry = {"beta": None if beta is None else beta.get(b),
                 "beta_share": None if beta_share is None else beta_share.get(b)}
        entry.update(top["blocks"].get(b, {}))
        blocks[b] = entry
    return {
        "version": 1,
        "split": main,
        "n": top.get("n", 0),
        "checkpoint": {"file": checkpoint, "best_epoch": best_epoch},
        "target": "prediction" if task == "regression" else "logit of the predicted class",
        "baseline": "training-mean contribution of every block",
        "baseline_values": {b: np.asarray(v, dtype=float).tolist() for b, v in train_means.items()},
        "p": p,
        "blocks": blocks,
        "modalities": top["modalities"],
        "interactions": top["interactions"],
        "by_split": {s: {"n": v["n"], "blocks": {b: {"contribution_share": e["contribution_share"]}
                                                 for b, e in v["blocks"].items()},
                         "modalities": {m: {"shapley_share": e["shapley_share"]} for m, e in v["modalities"].items()}}
                     for s, v in by_split.items()},
        "definitions": dict(DEFINITIONS),
    }


UNIMODAL_LABEL = "label_{}"  # CH-SIMS' human unimodal labels: label_text, label_audio, label_video


def unimodal_labels(columns: Mapping[str, np.ndarray], modalities: Sequence[str]) -> dict[str, np.ndarray]:
    """The human unimodal label of every modality that has one (column ``label_<modality>``)."""
    return {m: np.asarray(columns[UNIMODAL_LABEL.format(m)], dtype=np.float64) for m in modalities
            if UNIMODAL_LABEL.format(m) in columns}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b) / den if den > 0 else float("nan")


def _ranks(a: np.ndarray) -> np.ndarray:
    import pandas as pd  # a core dependency; ties get their mean rank (labels sit on a coarse grid)

    return pd.Series(a).rank(method="average").to_numpy(np.float64)


def unimodal_label_agreement(phi: Mapping[str, np.ndarray], label: np.ndarray,
                             unimodal: Mapping[str, np.ndarray], intervals: bool = True) -> dict[str, dict]:
    """Does a modality's per-sample Shapley value follow the human label *of that modality*?

    For every modality m with a unimodal label (CH-SIMS: ``label_text/_audio/_video``), over
    the samples where all three numbers are finite: Pearson and Spearman correlation of
    φ_m(x) with the unimodal label y_m and with the multimodal label y, and the difference
    r(φ_m, y_m) − r(φ_m, y) with a 95% bootstrap interval. A positive difference means the
    model's attribution to m tracks what annotators saw in m alone more closely than the
    overall sentiment: the closest thing to a ground truth for relevance on real data.
    """
    label = np.asarray(label, dtype=np.float64)
    out: dict[str, dict] = {}
    for m, y_m in unimodal.items():
        if m not in phi:
            continue
        v = np.asarray(phi[m], dtype=np.float64)
        y_m = np.asarray(y_m, dtype=np.float64)
        ok = np.isfinite(v) & np.isfinite(y_m) & np.isfinite(label)
        v, y_m, y = v[ok], y_m[ok], label[ok]
        n = int(ok.sum())
        entry = {"n": n,
                 "pearson_unimodal": _pearson(v, y_m) if n >= 2 else float("nan"),
                 "pearson_multimodal": _pearson(v, y) if n >= 2 else float("nan"),
                 "spearman_unimodal": _pearson(_ranks(v), _ranks(y_m)) if n >= 2 else float("nan"),
                 "spearman_multimodal": _pearson(_ranks(v), _ranks(y)) if n >= 2 else float("nan")}
        entry["pearson_difference"] = entry["pearson_unimodal"] - entry["pearson_multimodal"]
        if intervals and n >= 2:
            ci = _bootstrap(lambda idx: {"uni": _pearson(v[idx], y_m[idx]), "multi": _pearson(v[idx], y[idx]),
                                         "diff": _pearson(v[idx], y_m[idx]) - _pearson(v[idx], y[idx])}, n, seed=2)
            entry["pearson_unimodal_ci"] = ci.get("uni")
            entry["pearson_multimodal_ci"] = ci.get("multi")
            entry["pearson_difference_ci"] = ci.get("diff")
        out[m] = entry
    return out


def ranking(values: Mapping[str, float]) -> list[str]:
    return [k for k, _ in sorted(values.items(), key=lambda kv: (-(kv[1] if np.isfinite(kv[1]) else -1), kv[0]))]


def format_line(att: dict) -> str:
    """One line for the terminal: the attribution of the main split, named."""
    mods = att.get("modalities", {})
    blocks = att.get("blocks", {})
    ms = ", ".join(f"{m}={v['shapley_share']:.3f}" for m, v in
                   sorted(mods.items(), key=lambda kv: -np.nan_to_num(kv[1]["shapley_share"])))
    bs = ", ".join(f"{b}={v.get('contribution_share', float('nan')):.3f}" for b, v in
                   sorted(blocks.items(), key=lambda kv: -np.nan_to_num(kv[1].get("contribution_share", 0.0))))
    return f"Shapley share ({att.get('split')}): {ms}; contribution share: {bs}"
