"""Evidence next to every β: is the model better than nothing, is its attribution stable, are the data clean?

A relevance number is only as good as the fit behind it (docs/method.md, "What the numbers do
not guarantee"). Every run gets a verdict in ``attribution.json["trust"]``:

- ``no-evidence``: on the reported split (test, else valid) the model is not better than the
  trivial predictor (training median for regression MAE; majority class for classification)
  by a paired bootstrap over samples: the 95% interval of (trivial error − model error)
  reaches 0. Its β and attribution then carry no information.
- ``weak``: better than trivial, but something undermines it: a split the dataset marks as
  leaking labels, a dataset file that changed since training, a tiny training set, a
  validation split where it is not better than trivial, or (for studies) seeds that
  disagree on the ranking.
- ``ok``: none of the above.

Numpy only; the inputs are the run's predictions (``predictions.csv``) and dataset facts.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

VERDICTS = ("ok", "weak", "no-evidence")
TINY_TRAIN = 100  # fewer training samples than this: a warning, not a verdict of its own
BOOTSTRAP_REPS = 1000
# The bc-LSTM release (its text/video extractors were trained with labels on its own split):
# files made before prepare recorded `leaky_split_keys` are recognised by their columns.
_BCLSTM_COLUMNS = ("bclstm_split", "bclstm_protocol")
_BCLSTM_SAFE = "bclstm_protocol"


def _errors(task: str, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    if task == "regression":
        return np.abs(np.asarray(pred, dtype=np.float64) - np.asarray(y, dtype=np.float64))
    return (np.asarray(pred) != np.asarray(y)).astype(np.float64)


def trivial_prediction(task: str, y_train: np.ndarray) -> float:
    """The training median (minimises MAE) or the majority class."""
    y_train = np.asarray(y_train)
    if task == "regression":
        return float(np.median(y_train.astype(np.float64)))
    values, counts = np.unique(y_train, return_counts=True)
    return values[np.argmax(counts)].item()


def better_than_trivial(task: str, pred: np.ndarray, y: np.ndarray, y_train: np.ndarray,
                        reps: int = BOOTSTRAP_REPS, seed: int = 0) -> dict:
    """Model against the trivial predictor on one split, with a paired bootstrap interval."""
    y = np.asarray(y)
    n = len(y)
    metric = "mae" if task == "regression" else "error rate"
    if n == 0:
        return {"metric": metric, "n": 0}
    triv = trivial_prediction(task, y_train)
    e_model = _errors(task, pred, y)
    e_triv = _errors(task, np.full(n, triv), y)
    diff = e_triv - e_model
    rng = np.random.default_rng(seed)
    means = np.array([diff[rng.integers(0, n, n)].mean() for _ in range(reps)]) if n > 1 else diff
    lo, hi = (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))) if n > 1 else (-math.inf, math.inf)
    return {"metric": metric, "n": int(n), "model": float(e_model.mean()), "trivial": float(e_triv.mean()),
            "trivial_prediction": triv, "improvement": float(diff.mean()), "improvement_ci": [lo, hi],
            "better": bool(lo > 0)}


def leaky_split_reason(meta: Mapping | None, columns: Sequence[str], split_key: str) -> str | None:
    """Why ``split_key`` leaks labels, from the dataset's ``meta_json`` (or the known bc-LSTM release)."""
    leaky = (meta or {}).get("leaky_split_keys") or {}
    if split_key in leaky:
        return str(leaky[split_key])
    if not leaky and all(c in columns for c in _BCLSTM_COLUMNS) and split_key != _BCLSTM_SAFE:
        return ("bc-LSTM features: their text/video extractors were trained with labels on bclstm_split=train; "
                f"report numbers only with --split-key {_BCLSTM_SAFE}")
    return None


def data_warnings(meta: Mapping | None, columns: Sequence[str], split_key: str, n_train: int,
                  recorded_sha: str | None = None, current_sha: str | None = None,
                  dataset: str | None = None) -> list[str]:
    """One-line warnings about the data behind a run (empty when clean)."""
    out = []
    reason = leaky_split_reason(meta, columns, split_key)
    if reason:
        out.append(f"split {split_key!r} leaks labels: {reason}")
    if recorded_sha and current_sha and recorded_sha != current_sha:
        out.append(f"{dataset or 'the dataset'} changed since training (SHA-256 {current_sha[:12]}… "
                   f"vs {recorded_sha[:12]}… recorded)")
    if 0 < n_train < TINY_TRAIN:
        out.append(f"tiny training set ({n_train} samples < {TINY_TRAIN})")
    return out


def run_trust(task: str, split: np.ndarray, pred: np.ndarray, y: np.ndarray, warnings: Sequence[str] = ()) -> dict:
    """The verdict of one run from its predictions (the predicted value or class) on every split."""
    split = np.asarray(split).astype(str)
    y = np.asarray(y)
    train = split == "train"
    checks = {}
    for s in ("valid", "test"):
        mask = split == s
        if mask.any() and train.any():
            checks[s] = better_than_trivial(task, np.asarray(pred)[mask], y[mask], y[train])
    main = "test" if "test" in checks else ("valid" if "valid" in checks else None)
    reasons: list[str] = []
    if main is None:
        verdict = "no-evidence"
        reasons.append("no labelled valid/test rows to compare with a trivial predictor")
    else:
        c = checks[main]
        lo, hi = c["improvement_ci"]
        what = "the training median" if task == "regression" else f"the majority class ({c['trivial_prediction']})"
        line = (f"{main} {c['metric']} {c['model']:.4g} vs {c['trivial']:.4g} for {what} "
                f"(improvement 95% CI [{lo:.3g}, {hi:.3g}], n = {c['n']})")
        if not c["better"]:
            verdict = "no-evidence"
            reasons.append(f"not better than a trivial predictor: {line}; beta and attribution carry no information")
        else:
            verdict = "ok"
            reasons.append(f"better than a trivial predictor: {line}")
            if main == "test" and "valid" in checks and not checks["valid"]["better"]:
                verdict = "weak"
                reasons.append("not better than trivial on the validation split")
    if warnings and verdict == "ok":
        verdict = "weak"
    reasons.extend(warnings)
    return {"verdict": verdict, "reasons": reasons, "better_than_trivial": checks, "warnings": list(warnings)}


def _interval(values: np.ndarray) -> list[float]:
    """95% interval of the mean over seeds (t distribution); one seed gives no interval."""
    v = values[np.isfinite(values)]
    if len(v) < 2:
        return [float("nan"), float("nan")]
    from statistics import NormalDist

    t = {2: 12.71, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306, 10: 2.262}.get(
        len(v), NormalDist().inv_cdf(0.975))
    half = t * v.std(ddof=1) / math.sqrt(len(v))
    return [float(v.mean() - half), float(v.mean() + half)]


def _ranking(d: Mapping[str, float]) -> tuple:
    return tuple(k for k, _ in sorted(d.items(), key=lambda kv: (-np.nan_to_num(kv[1], nan=-1.0), kv[0])))


def study_trust(per_seed: Sequence[dict]) -> dict:
    """A study's evidence from its seeds' attribution.json: verdicts, stability, ranking agreement.

    per_seed: ``attribution.json`` contents (with ``trust``), one per seed.
    """
    verdicts = [a.get("trust", {}).get("verdict", "no-evidence") for a in per_seed]
    stats: dict = {"blocks": {}, "modalities": {}}
    blocks = list(per_seed[0].get("blocks", {})) if per_seed else []
    mods = list(per_seed[0].get("modalities", {})) if per_seed else []
    for b in blocks:
        entry = {}
        for key in ("beta_share", "contribution_share"):
            vals = np.array([np.nan if a["blocks"].get(b, {}).get(key) is None else a["blocks"][b][key]
                             for a in per_seed], dtype=float)
            if np.isfinite(vals).any():
                entry[key] = {"mean": float(np.nanmean(vals)), "std": float(np.nanstd(vals, ddof=1)) if
                              np.isfinite(vals).sum() > 1 else 0.0, "ci95": _interval(vals), "values": vals.tolist()}
        stats["blocks"][b] = entry
    for m in mods:
        vals = np.array([a["modalities"].get(m, {}).get("shapley_share", np.nan) for a in per_seed], dtype=float)
        stats["modalities"][m] = {"shapley_share": {
            "mean": float(np.nanmean(vals)), "std": float(np.nanstd(vals, ddof=1)) if len(vals) > 1 else 0.0,
            "ci95": _interval(vals), "values": vals.tolist()}}
    rankings = [_ranking({m: a["modalities"][m]["shapley_share"] for m in mods}) for a in per_seed if mods]
    agreement = None
    if rankings:
        modal = max(set(rankings), key=rankings.count)
        agreement = {"ranking": list(modal), "fraction_of_seeds": rankings.count(modal) / len(rankings),
                     "what": "modalities ranked by Shapley share"}
    n_ok = verdicts.count("ok")
    n_none = verdicts.count("no-evidence")
    reasons = [f"{n_ok} of {len(verdicts)} seeds ok, {verdicts.count('weak')} weak, {n_none} no-evidence"]
    if n_none > len(verdicts) / 2:
        verdict = "no-evidence"
        reasons.append("most seeds are not better than a trivial predictor")
    elif n_none or verdicts.count("weak") or (agreement and agreement["fraction_of_seeds"] < 0.8):
        verdict = "weak"
        if agreement and agreement["fraction_of_seeds"] < 0.8:
            reasons.append(f"only {agreement['fraction_of_seeds']:.0%} of seeds give the same ranking")
    else:
        verdict = "ok"
    warnings = sorted({w for a in per_seed for w in a.get("trust", {}).get("warnings", [])})
    reasons.extend(warnings)
    return {"verdict": verdict, "reasons": reasons, "seeds": verdicts, "stability": stats,
            "ranking_agreement": agreement}


def verdict_line(trust: Mapping) -> str:
    """One line for the terminal."""
    reasons = trust.get("reasons") or []
    return f"evidence: {trust.get('verdict', '?')} — " + "; ".join(reasons[:3])
