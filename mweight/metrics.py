"""Evaluation metrics, in exactly the MMSA convention for sentiment regression.

Regression (``p`` = predictions, ``t`` = targets, all (N,) floats):

========== ================================================================
``mae``     mean |p - t| over all samples
``corr``    Pearson r over all samples (0.0 when p or t is constant, see below)
``acc7``    mean(round(clip(p, -3, 3)) == round(clip(t, -3, 3))), ``np.round``
            (round half to even: 2.5 -> 2, -0.5 -> -0, 1.5 -> 2)
``acc5``    the same with clip at +-2
``acc2_has0`` accuracy of (t >= 0) vs (p >= 0) over all samples
            (negative vs non-negative: a zero label counts as positive)
``f1_has0`` weighted F1 of the same two classes
``acc2_non0`` samples with t == 0 dropped; accuracy of (t > 0) vs (p > 0)
            (negative vs positive); nan if every label is 0
``f1_non0`` weighted F1 of the same; nan if every label is 0
========== ================================================================

Classification (targets are class indices 0..K-1): ``acc``; ``f1`` = **weighted**
F1 (per-class F1 averaged with class support as weights, as sklearn
``average="weighted"`` and MMSA's F1); ``ce`` = mean cross-entropy, only when the
predictions are (N, K) logits.

Degenerate cases (chosen, documented, tested):

- ``corr`` is 0.0, not nan, when predictions or targets are constant (Pearson r is
  undefined there; a constant predictor has no linear association with the target,
  and 0.0 keeps means over seeds and JSON files finite). No warning is emitted.
- ``acc2_non0`` / ``f1_non0`` are nan when no non-zero label is left.
- F1 of a class that is never predicted or never present counts as 0 (sklearn
  ``zero_division=0``), without a warning.
- Empty inputs, mismatched lengths and non-finite predictions raise
  :class:`~mweight.errors.MWeightError`.

Example
-------
>>> m = compute_metrics([0.4, -1.2, 2.5], [0.0, -1.0, 2.0], "regression")
>>> round(m["mae"], 4), m["acc7"], m["acc2_has0"], m["acc2_non0"]
(0.3667, 1.0, 1.0, 1.0)
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .errors import MWeightError

TASKS = ("regression", "classification")

REGRESSION_METRICS = ("mae", "corr", "acc7", "acc5", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")
CLASSIFICATION_METRICS = ("acc", "f1", "ce")

METRIC_LABELS: dict[str, str] = {
    "mae": "MAE (mean absolute error, all samples)",
    "corr": "Corr (Pearson r, all samples)",
    "acc7": "Acc-7 (7 classes: round(clip(x, -3, 3)), half to even)",
    "acc5": "Acc-5 (5 classes: round(clip(x, -2, 2)), half to even)",
    "acc2_has0": "Acc-2 (has0: negative vs non-negative, all samples)",
    "f1_has0": "F1 (has0: negative vs non-negative, weighted, all samples)",
    "acc2_non0": "Acc-2 (non0: negative vs positive, zeros dropped)",
    "f1_non0": "F1 (non0: negative vs positive, weighted, zeros dropped)",
    "acc": "Accuracy",
    "f1": "F1 (weighted by class support)",
    "ce": "Cross-entropy (mean, nats)",
}

# Which way is better, for every metric this module reports.
METRIC_MODES: dict[str, str] = {
    "mae": "min",
    "corr": "max",
    "acc7": "max",
    "acc5": "max",
    "acc2_has0": "max",
    "f1_has0": "max",
    "acc2_non0": "max",
    "f1_non0": "max",
    "acc": "max",
    "f1": "max",
    "ce": "min",
}

__all__ = [
    "CLASSIFICATION_METRICS",
    "METRIC_LABELS",
    "METRIC_MODES",
    "REGRESSION_METRICS",
    "TASKS",
    "classification_metrics",
    "compute_metrics",
    "regression_metrics",
    "select_metric",
]


def select_metric(task: str) -> tuple[str, str]:
    """The model-selection metric and its direction: ``('mae', 'min')`` for regression,
    ``('ce', 'min')`` (validation cross-entropy) for classification.

    Not accuracy: it moves in steps of 1/N_valid, ties for several epochs early in
    training, and the first of the tied epochs (an almost untrained final layer, whose
    beta is close to the initial weights') was kept. Cross-entropy keeps improving while
    the head learns.
    """
    _check_task(task)
    return ("mae", "min") if task == "regression" else ("ce", "min")


def compute_metrics(pred: Sequence | np.ndarray, target: Sequence | np.ndarray, task: str) -> dict[str, float]:
    """All metrics of ``task`` as a dict of plain floats.

    Parameters
    ----------
    pred : regression: (N,) or (N, 1) floats. Classification: (N, K) logits
        (argmax is the predicted class; adds ``ce``) or (N,) predicted class indices.
    target : (N,) floats (regression) or class indices 0..K-1 (classification).
    task : ``"regression"`` or ``"classification"``.
    """
    _check_task(task)
    if task == "regression":
        return regression_metrics(pred, target)
    return classification_metrics(pred, target)


def regression_metrics(pred: Sequence | np.ndarray, target: Sequence | np.ndarray) -> dict[str, float]:
    """MMSA regression metrics (module docstring); keys in :data:`REGRESSION_METRICS` order."""
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim != 1 or t.ndim != 1:
        raise MWeightError(f"regression metrics: expected (N,) predictions and targets, got {p.shape} and {t.shape}")
    _check_pair(p, t)

    out: dict[str, float] = {}
    out["mae"] = float(np.mean(np.abs(p - t)))
    out["corr"] = _pearson(p, t)
    out["acc7"] = float(np.mean(np.round(np.clip(p, -3, 3)) == np.round(np.clip(t, -3, 3))))
    out["acc5"] = float(np.mean(np.round(np.clip(p, -2, 2)) == np.round(np.clip(t, -2, 2))))

    t_has0, p_has0 = t >= 0, p >= 0
    out["acc2_has0"] = float(np.mean(t_has0 == p_has0))
    out["f1_has0"] = _weighted_f1(t_has0, p_has0)

    keep = t != 0
    if keep.any():
        t_non0, p_non0 = t[keep] > 0, p[keep] > 0
        out["acc2_non0"] = float(np.mean(t_non0 == p_non0))
        out["f1_non0"] = _weighted_f1(t_non0, p_non0)
    else:
        out["acc2_non0"] = math.nan
        out["f1_non0"] = math.nan
    return out


def classification_metrics(pred: Sequence | np.ndarray, target: Sequence | np.ndarray) -> dict[str, float]:
    """``acc``, weighted ``f1`` and, for (N, K) logits, mean cross-entropy ``ce``."""
    p = np.asarray(pred)
    t = np.asarray(target)
    if t.ndim != 1:
        raise MWeightError(f"classification metrics: expected (N,) targets, got shape {t.shape}")
    if t.size and not np.all(np.equal(np.mod(t, 1), 0)):
        raise MWeightError("classification metrics: targets must be class indices 0..K-1")
    t = t.astype(np.int64)
    out: dict[str, float] = {}
    if p.ndim == 2:
        logits = p.astype(np.float64)
        k = logits.shape[1]
        if k < 2:
            raise MWeightError(f"classification metrics: expected (N, K>=2) logits, got shape {logits.shape}")
        _check_pair(logits, t)
        if t.min() < 0 or t.max() >= k:
            raise MWeightError(f"classification metrics: targets must be in 0..{k - 1} for {k} logits")
        labels = logits.argmax(axis=1)
        # log-softmax, stabilised by the row max
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        ce = float(-np.mean(logp[np.arange(t.size), t]))
    elif p.ndim == 1:
        _check_pair(p.astype(np.float64), t)
        if not np.all(np.equal(np.mod(p, 1), 0)):
            raise MWeightError("classification metrics: (N,) predictions must be class indices; pass (N, K) logits otherwise")
        labels = p.astype(np.int64)
        ce = None
    else:
        raise MWeightError(f"classification metrics: expected (N, K) logits or (N,) classes, got shape {p.shape}")
    out["acc"] = float(np.mean(labels == t))
    out["f1"] = _weighted_f1(t, labels)
    if ce is not None:
        out["ce"] = ce
    return out


# --------------------------------------------------------------------------- internals


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise MWeightError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")


def _check_pair(p: np.ndarray, t: np.ndarray) -> None:
    if p.shape[0] != t.shape[0]:
        raise MWeightError(f"metrics: {p.shape[0]} predictions for {t.shape[0]} targets")
    if p.shape[0] == 0:
        raise MWeightError("metrics: no samples to evaluate")
    if not np.isfinite(p).all():
        raise MWeightError("metrics: predictions contain NaN or inf")
    if not np.isfinite(t).all():
        raise MWeightError("metrics: targets contain NaN or inf")


def _pearson(p: np.ndarray, t: np.ndarray) -> float:
    dp, dt = p - p.mean(), t - t.mean()
    denom = math.sqrt(float(np.dot(dp, dp)) * float(np.dot(dt, dt)))
    if denom == 0.0:
        return 0.0  # constant predictions or targets: documented choice
    return float(np.clip(np.dot(dp, dt) / denom, -1.0, 1.0))


def _weighted_f1(t: np.ndarray, p: np.ndarray) -> float:
    """``sklearn.metrics.f1_score(t, p, average="weighted", zero_division=0)`` in numpy.

    Per class of ``t`` or ``p``: F1 = 2 TP / (2 TP + FP + FN) (0 when TP = 0), averaged
    with weights = class support in ``t``. Same values as sklearn (a test compares them)
    at a fraction of the cost: it runs on the validation split after every epoch, and
    importing sklearn alone took seconds inside the first epoch.
    """
    t = np.asarray(t)
    p = np.asarray(p)
    labels, inv = np.unique(np.concatenate([t, p]), return_inverse=True)
    ti, pi = inv[: t.size], inv[t.size:]
    k = labels.size
    tp = np.bincount(ti[ti == pi], minlength=k).astype(np.float64)
    support = np.bincount(ti, minlength=k).astype(np.float64)
    predicted = np.bincount(pi, minlength=k).astype(np.float64)
    denom = support + predicted  # 2 TP + FP + FN
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(k), where=denom > 0)
    total = support.sum()
    return float((f1 * support).sum() / total) if total > 0 else 0.0
