"""Everything after training: evaluate, predict, explain and ablate a run directory.

The ``mweight evaluate / predict / explain / ablate`` commands are thin wrappers
around these functions; the web app and notebooks can call them directly.

- :func:`open_run` loads one run (``RUN_DIR`` with ``model.pt``) or refuses a
  multi-seed folder with a message naming its ``seed_<s>`` sub-runs.
- :func:`load_inputs` reads a dataset file for a trained model: the model's
  modalities must be present (a clear error names a missing one); ``label`` and
  the split column are optional, so unlabelled files can be predicted.
- :func:`evaluate_run` recomputes the metric set per split.
- :func:`explain_segment` / :func:`global_relevance` give beta and the exact
  per-block decomposition ``prediction = bias + sum_S contribution_S``.
- :func:`ablate_run` is the post-hoc check of beta: the metric change when one
  modality is replaced by its training mean (*ablation*) or shuffled across the
  evaluated samples (*permutation*), next to beta, with Spearman and Kendall rank
  agreement between the three orderings.
"""
from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .data import (SPLITS, Dataset, as_modality, carve_validation, check_lengths, check_unique_ids,
                   load_dataset)
from .errors import MWeightError
from .metrics import METRIC_LABELS, METRIC_MODES, compute_metrics

UNLABELLED = "unlabelled"  # split value of rows of a file without a split column


# ---------------------------------------------------------------------------- runs
@dataclass
class LoadedRun:
    """A run directory with its rebuilt model."""

    path: Path
    run: object  # mweight.runs.Run
    model: object  # mweight.model.MWeightNet (eval mode)
    cfg: object  # mweight.config.Config
    task: str

    @property
    def modalities(self) -> list[str]:
        return list(self.model.modalities)

    @property
    def blocks(self) -> list[str]:
        return list(self.model.block_names)


def run_dirs(path: str | Path) -> list[Path]:
    """``[path]`` for a single run, the ``seed_<s>`` sub-runs for a multi-seed folder."""
    from .runs import is_run_dir, seed_dirs

    path = Path(path)
    if not path.is_dir():
        raise MWeightError(f"{path}: run directory not found")
    if is_run_dir(path):
        return [path]
    seeds = seed_dirs(path)
    if seeds:
        return seeds
    raise MWeightError(f"{path}: not a mweight run directory (expected config.yaml, relevance.json and model.pt, "
                       "or seed_<s>/ sub-runs from --seeds)")


def open_run(path: str | Path) -> LoadedRun:
    """Load one run directory (model rebuilt from ``model.pt`` with ``weights_only=True``)."""
    from .runs import load_run

    path = Path(path)
    dirs = run_dirs(path)
    if dirs != [path]:
        names = ", ".join(d.name for d in dirs)
        raise MWeightError(f"{path}: holds several seeds ({names}); pass one of them, e.g. {dirs[0]}")
    run = load_run(path)
    model_path = path / "model.pt"
    if not model_path.is_file():
        raise MWeightError(f"{model_path}: file not found (run incomplete? finish it with `mweight train --resume`)")
    model, cfg, task = run.load_model()
    return LoadedRun(path=path, run=run, model=model, cfg=cfg, task=task)


# ---------------------------------------------------------------------------- data
def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise MWeightError(f"{path}: dataset file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise MWeightError(f"{path}: not a readable .npz dataset ({exc})") from None
    except ValueError as exc:
        raise MWeightError(f"{path}: contains pickled objects, which mweight never loads ({exc})") from None


def check_compatible(lr: LoadedRun, ds: Dataset) -> None:
    """Every modality of the model must be in ``ds`` with the same kind and feature size."""
    for m, (shape, kind) in lr.model.shapes.items():
        if m not in ds.modalities:
            have = ", ".join(ds.modalities) or "none"
            raise MWeightError(f"{ds.path}: missing modality {m!r} that the model in {lr.path} was trained on "
                               f"(the file has {have})")
        a = ds.modalities[m]
        got_kind = "i" if a.dtype.kind in "iub" else "f"
        if a.ndim - 1 != len(shape) or got_kind != kind or (kind == "f" and a.shape[-1] != shape[-1]) or \
                (len(shape) == 1 and a.shape[1:] != tuple(shape)):
            want = "x".join(map(str, shape))
            raise MWeightError(f"{ds.path}: field {m!r} has per-sample shape {'x'.join(map(str, a.shape[1:]))} "
                               f"({a.dtype}); the model expects {want} ({'integer tokens' if kind == 'i' else 'floats'})")
        if len(shape) == 2 and kind == "f" and m not in ds.lengths:
            ds.lengths[m] = np.full(len(a), a.shape[1], dtype=np.int64)


def load_inputs(path: str | Path, lr: LoadedRun, split_key: str | None = None) -> Dataset:
    """Read ``path`` for the model of ``lr``; labels and split are optional.

    A file with labels and the split column is read by :func:`mweight.data.load_dataset`.
    Otherwise rows without labels get ``label`` NaN (regression) or -1 (classification)
    and a file without the split column gets the split value ``"unlabelled"`` (``"all"``
    if it has labels); the modalities, their lengths and the ids then pass data.py's own
    rules (:func:`~mweight.data.as_modality`, :func:`~mweight.data.check_lengths`,
    :func:`~mweight.data.check_unique_ids`), so a file predicts as it would train.
    """
    path = Path(path)
    split_key = split_key or lr.cfg.data.split_key
    arrays = _read_npz(path)
    needed = lr.modalities
    if "label" in arrays and split_key in arrays:
        ds = load_dataset(path, split_key, needed if all(m in arrays for m in needed) else None, lr.task)
        check_compatible(lr, ds)
        ds.modalities = {m: ds.modalities[m] for m in needed}
        ds.lengths = {m: v for m, v in ds.lengths.items() if m in needed}
        return ds
    ids = arrays.get("id", arrays.get("segment_id"))
    n = None
    for key in ("label", *needed):
        if key in arrays and arrays[key].ndim >= 1:
            n = arrays[key].shape[0]
            break
    if n is None:
        mods = [k for k, v in arrays.items() if v.dtype.kind in "biuf" and v.ndim >= 2]
        raise MWeightError(f"{path}: missing modality {needed[0]!r} that the model in {lr.path} was trained on "
                           f"(the file has {', '.join(mods) or 'none'})")
    if ids is None:
        ids = np.array([str(i) for i in range(n)])
    has_label = "label" in arrays
    if has_label:
        label = np.asarray(arrays["label"]).reshape(n, -1)[:, 0]
        label = label.astype(np.float32) if lr.task == "regression" else label.astype(np.int64)
    else:
        label = np.full(n, np.nan, np.float32) if lr.task == "regression" else np.full(n, -1, np.int64)
    split = arrays[split_key].astype(str) if split_key in arrays else np.full(n, "all" if has_label else UNLABELLED)
    mods, lengths, columns = {}, {}, {}
    for k, a in arrays.items():
        if a.ndim >= 1 and a.shape[0] != n:
            raise MWeightError(f"{path}: field {k!r} has {a.shape[0]} rows; expected {n}")
        if a.dtype.kind in "US" and a.ndim == 1:
            columns[k] = a.astype(str)
    for m in needed:
        if m not in arrays:
            have = [k for k, v in arrays.items() if v.dtype.kind in "biuf" and v.ndim >= 2]
            raise MWeightError(f"{path}: missing modality {m!r} that the model in {lr.path} was trained on "
                               f"(the file has {', '.join(have) or 'none'})")
        mods[m] = as_modality(arrays[m])
        if f"{m}_lengths" in arrays:
            lengths[m] = check_lengths(arrays[f"{m}_lengths"], mods[m], m, str(path))
    check_unique_ids(ids, str(path))
    ds = Dataset(modalities=mods, label=label, split=split, id=np.asarray(ids).astype(str), lengths=lengths,
                 columns=columns, path=str(path), split_key=split_key, task=lr.task)
    check_compatible(lr, ds)
    return ds


def run_dataset(lr: LoadedRun, data: str | Path | None = None, split_key: str | None = None) -> Dataset:
    """The dataset to evaluate: ``data`` if given, else the run's own file with its split (valid re-carved)."""
    if data is not None:
        return load_inputs(data, lr, split_key)
    path = lr.cfg.data.path
    if not path:
        raise MWeightError(f"{lr.path / 'config.yaml'}: data.path is not set; pass --data FILE.npz")
    if not Path(path).is_file():
        raise MWeightError(f"{path}: dataset file of run {lr.path} not found (moved?); pass --data FILE.npz")
    ds = load_inputs(path, lr, split_key)
    if split_key in (None, lr.cfg.data.split_key) and set(np.unique(ds.split)) <= set(SPLITS):
        # Reproduce the validation set carved at training time (seeded, by whole videos).
        ds, _ = carve_validation(ds, lr.cfg.data.valid_fraction, lr.cfg.data.valid_seed)
    return ds


def select_ids(ds: Dataset, ids: list[str] | None = None, split: str | None = None) -> Dataset:
    """Rows of ``ds`` with the given ids (in that order) and/or split; unknown ids are an error."""
    if split:
        if split not in set(ds.split):
            raise MWeightError(f"{ds.path}: no rows with split {split!r} in column {ds.split_key!r} "
                               f"(values: {', '.join(sorted(set(ds.split)))})")
        ds = ds.subset(np.nonzero(ds.split == split)[0])
    if ids:
        pos = {s: i for i, s in enumerate(ds.id)}
        missing = [i for i in ids if i not in pos]
        if missing:
            raise MWeightError(f"{ds.path}: id {missing[0]!r} not found ({len(missing)} of {len(ids)} ids missing; "
                               f"ids look like {ds.id[0]!r})")
        ds = ds.subset(np.array([pos[i] for i in ids], dtype=np.int64))
    return ds


def read_ids_file(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise MWeightError(f"{path}: ids file not found")
    ids = [line.strip().split(",")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    ids = [i for i in ids if i and i not in ("id", "segment_id")]
    if not ids:
        raise MWeightError(f"{path}: no ids found (expected one id per line)")
    return ids


# ---------------------------------------------------------------------------- predict / evaluate
def predict(lr: LoadedRun, ds: Dataset) -> pd.DataFrame:
    """id, split, label, prediction, bias and one column per block (blocks + bias = prediction)."""
    from .runs import predictions_frame

    baseline = lr.run.baseline() if hasattr(lr.run, "baseline") else None
    return predictions_frame(lr.model, ds, baseline)


def _labelled(ds: Dataset) -> np.ndarray:
    if ds.task == "regression":
        return np.isfinite(ds.label)
    return ds.label >= 0


def evaluate_dataset(lr: LoadedRun, ds: Dataset) -> dict[str, dict]:
    """Metrics per split value of ``ds`` (rows without labels are skipped) -> {split: {metric: v}}."""
    frame = predict(lr, ds)
    if ds.task == "classification":
        from .data import to_tensors
        from .model import predict_tensors

        inputs, lengths, _ = to_tensors(ds)
        scores, _ = predict_tensors(lr.model, inputs, lengths)
    labelled = _labelled(ds)
    out: dict[str, dict] = {}
    order = [s for s in SPLITS if s in set(ds.split)] + sorted(set(ds.split) - set(SPLITS))
    for s in order:
        mask = (ds.split == s) & labelled
        if not mask.any():
            continue
        pred = frame["prediction"].to_numpy()[mask] if ds.task == "regression" else scores[mask]
        out[s] = {**compute_metrics(pred, ds.label[mask], ds.task), "n": int(mask.sum())}
    if not out:
        raise MWeightError(f"{ds.path}: no labelled rows to evaluate (field 'label' missing or all NaN); "
                           "use `mweight predict` for unlabelled data")
    return out


def evaluate_run(lr: LoadedRun, data: str | Path | None = None, split_key: str | None = None) -> dict:
    """{"metrics": {split: {...}}, "recorded": metrics.json splits or None, "max_abs_diff": float | None}."""
    ds = run_dataset(lr, data, split_key)
    metrics = evaluate_dataset(lr, ds)
    recorded, diff = None, None
    same_file = data is None or (Path(data).resolve() == Path(lr.cfg.data.path or "").resolve())
    if same_file and split_key in (None, lr.cfg.data.split_key):
        recorded = {s: v for s, v in lr.run.metrics.items() if s in SPLITS}
        diffs = [abs(v - recorded[s][k]) for s, d in metrics.items() if s in recorded
                 for k, v in d.items() if k in recorded[s] and k not in ("n", "loss")
                 and np.isfinite(v) and np.isfinite(recorded[s][k])]
        diff = max(diffs) if diffs else None
    attribution, trust = evidence(lr, ds, same_file)
    return {"run": str(lr.path), "data": ds.path, "split_key": ds.split_key, "task": ds.task,
            "metrics": metrics, "recorded": recorded, "max_abs_diff": diff,
            "attribution": attribution, "trust": trust}


def evidence(lr: LoadedRun, ds: Dataset, same_file: bool) -> tuple[dict | None, dict | None]:
    """(attribution, trust verdict) of the run on ``ds``, with the run's recorded Shapley baseline.

    On the run's own dataset file the recorded SHA-256 is checked: a changed file is a warning
    and makes the verdict at most 'weak'.
    """
    from .attribution import attribution_report
    from .runs import _frame, dataset_trust, decompose, sha256

    baseline = lr.run.baseline() if hasattr(lr.run, "baseline") else None
    if baseline is None and not (ds.split == "train").any():
        return None, None
    dec = decompose(lr.model, ds, baseline)
    _pred, g, base, _idx, means, _shap = dec
    if means is None:
        return None, None
    rel = lr.run.relevance
    has_beta = lr.cfg.model.relevance != "none"
    att = attribution_report(g, base, ds.split, lr.modalities, rel.get("beta") if has_beta else None,
                             rel.get("share") if has_beta else None, task=ds.task,
                             p=lr.cfg.model.p if has_beta else None,
                             best_epoch=(lr.run.metrics.get("info") or {}).get("best_epoch"), train_means=means)
    agreement = _unimodal_agreement(ds, dec, lr.modalities, att.get("split", "test"))
    if agreement:
        att["unimodal_labels"] = agreement
    recorded = lr.run.meta.get("dataset_sha256") if same_file else None
    current = sha256(ds.path) if recorded and ds.path and Path(ds.path).is_file() else None
    trust = None
    if _labelled(ds).all():
        trust = dataset_trust(ds, _frame(lr.model, ds, dec), recorded, current)
    return att, trust


def _unimodal_agreement(ds: Dataset, dec: tuple, modalities, split: str) -> dict:
    """Per modality with a human unimodal label (``label_<m>``, CH-SIMS): the correlation of its
    per-sample Shapley value with that label and with the multimodal label, on ``split``
    (:func:`mweight.attribution.unimodal_label_agreement`). Regression only."""
    from .attribution import SHAPLEY_PREFIX, unimodal_label_agreement, unimodal_labels

    uni = unimodal_labels(ds.columns, list(modalities))
    if not uni or ds.task != "regression":
        return {}
    _pred, g, base, _idx, _means, shap = dec
    mask = np.asarray(ds.split).astype(str) == split
    if not mask.any() or not shap:
        return {}
    phi = {m: np.asarray(shap[SHAPLEY_PREFIX + m])[mask] for m in modalities if SHAPLEY_PREFIX + m in shap}
    return unimodal_label_agreement(phi, np.asarray(ds.label, dtype=np.float64)[mask],
                                    {m: v[mask] for m, v in uni.items()})


def metrics_table(metrics: dict[str, dict], task: str) -> str:
    """A plain-text table: one row per metric (labelled), one column per split."""
    splits = list(metrics)
    from .metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS

    keys = [k for k in (REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS)
            if any(k in metrics[s] for s in splits)]
    width = max(len(METRIC_LABELS.get(k, k)) for k in keys)
    head = f"{'metric':{width}s}  " + "  ".join(f"{s + ' (n=' + str(metrics[s].get('n', '?')) + ')':>16s}"
                                                  for s in splits)
    lines = [head, "-" * len(head)]
    for k in keys:
        vals = "  ".join(f"{metrics[s].get(k, math.nan):16.4f}" for s in splits)
        lines.append(f"{METRIC_LABELS.get(k, k):{width}s}  {vals}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- explain
def global_relevance(lr_or_run, frame: pd.DataFrame | None = None, split: str = "test") -> pd.DataFrame:
    """One row per block: raw beta, share (sums to 1) and, given predictions, mean |contribution| on ``split``."""
    run = getattr(lr_or_run, "run", lr_or_run)
    rel = run.relevance
    blocks = list(rel.get("blocks") or rel["share"])
    df = pd.DataFrame({"block": blocks, "beta": [rel["beta"][b] for b in blocks],
                       "share": [rel["share"][b] for b in blocks]})
    if frame is not None and all(b in frame.columns for b in blocks):
        part = frame[frame["split"] == split] if split in set(frame["split"]) else frame
        df["mean_abs_contribution"] = [float(np.abs(part[b]).mean()) for b in blocks]
    return df.sort_values("share", ascending=False).reset_index(drop=True)


def explain_segment(frame: pd.DataFrame, sample_id: str, blocks: list[str], source: str = "") -> dict:
    """The decomposition of one row of a predictions frame: label, prediction, bias, contributions."""
    rows = frame.index[frame["id"].astype(str) == str(sample_id)]
    if len(rows) == 0:
        ids = frame["id"].astype(str)
        near = [i for i in ids if i.startswith(str(sample_id).rsplit("_", 1)[0])][:3] or list(ids[:3])
        raise MWeightError(f"{source or 'predictions'}: id {sample_id!r} not found ({len(ids)} ids; e.g. "
                           f"{', '.join(near)})")
    r = frame.loc[rows[0]]
    contrib = {b: float(r[b]) for b in blocks}
    shapley = {c[len("shapley_"):]: float(r[c]) for c in frame.columns
               if c.startswith("shapley_") and c != "shapley_baseline"}
    return {"id": str(r["id"]), "split": str(r["split"]), "label": float(r["label"]),
            "prediction": float(r["prediction"]), "score": float(r["score"]) if "score" in r else None,
            "bias": float(r["bias"]), "contributions": contrib,
            "sum_check": float(r["bias"]) + sum(contrib.values()),
            "shapley": shapley or None,
            "shapley_baseline": float(r["shapley_baseline"]) if "shapley_baseline" in r else None}


def _bar(v: float, scale: float, width: int = 24) -> str:
    n = int(round(abs(v) / scale * width)) if scale > 0 else 0
    return ("+" if v >= 0 else "-") * min(n, width)


def format_explanation(lr: LoadedRun, rel: pd.DataFrame, seg: dict | None, transcript: str | None,
                       metrics: dict | None = None) -> str:
    cfg = lr.cfg
    lines = [f"run {lr.path}: {lr.task}, blocks {', '.join(lr.blocks)}; relevance {cfg.model.relevance}, "
             f"p = {cfg.model.p:g}, norm {cfg.model.norm}"]
    if metrics:
        keys = [k for k in ("mae", "corr", "acc2_non0", "acc2_has0", "acc7", "acc", "f1") if k in metrics]
        lines.append("test: " + ", ".join(f"{METRIC_LABELS[k].split(' (')[0]}"
                                            f"{' ' + k.split('_')[1] if k.startswith(('acc2', 'f1_')) else ''}"
                                            f" {metrics[k]:.4f}" for k in keys))
    att = lr.run.attribution() if hasattr(lr.run, "attribution") else None
    trust = (att or {}).get("trust")
    if trust:
        from .trust import verdict_line

        lines += ["", verdict_line(trust)]
        if trust["verdict"] == "no-evidence":
            lines.append("(the relevance below carries no information: not better than a trivial predictor)")
    if att and att.get("modalities"):
        lines += ["", f"Attribution on the {att['split']} split (p-independent; docs/method.md):"]
        for m, e in sorted(att["modalities"].items(), key=lambda kv: -kv[1]["shapley_share"]):
            ci = e.get("shapley_share_ci")
            ci_txt = f"  (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
            lines.append(f"  {m:18s} Shapley share {e['shapley_share']:.3f}{ci_txt}")
        for b, e in att["blocks"].items():
            lines.append(f"  {b:18s} contribution share {e.get('contribution_share', float('nan')):.3f}")
    lines += ["", "Global relevance (beta from the selected checkpoint; share = beta / sum beta; depends on p):"]
    has_c = "mean_abs_contribution" in rel.columns
    lines.append(f"  {'block':18s} {'beta':>8s} {'share':>7s}  " + ("mean|contribution| (test)" if has_c else ""))
    for _, r in rel.iterrows():
        bar = "#" * int(round(r["share"] * 40))
        extra = f"  {r['mean_abs_contribution']:.4f}" if has_c else ""
        lines.append(f"  {r['block']:18s} {r['beta']:8.4f} {r['share']:7.3f}  {bar}{extra}")
    if seg is None:
        lines += ["", "Pass --id SEGMENT for one segment's transcript, label, prediction and per-block contributions."]
        return "\n".join(lines)
    lines += ["", f"Segment {seg['id']} ({seg['split']})"]
    lines.append(f"  transcript: {transcript}" if transcript else
                 "  transcript: (not known: the dataset has no transcript column; pass --transcripts CSV)")
    lab = seg["label"]
    lines.append(f"  label:      {'(none)' if (isinstance(lab, float) and math.isnan(lab)) or lab == -1 else f'{lab:g}'}")
    if lr.task == "regression":
        lines.append(f"  prediction: {seg['prediction']:.4f} = bias {seg['bias']:+.4f} + block contributions:")
    else:
        lines.append(f"  prediction: class {int(seg['prediction'])}, logit {seg['score']:.4f} = bias "
                     f"{seg['bias']:+.4f} + block contributions:")
    scale = max([abs(v) for v in seg["contributions"].values()] + [1e-12])
    for b, v in sorted(seg["contributions"].items(), key=lambda kv: -abs(kv[1])):
        lines.append(f"    {b:18s} {v:+8.4f}  {_bar(v, scale)}")
    target = seg["prediction"] if lr.task == "regression" else seg["score"]
    lines.append(f"  (bias + contributions = {seg['sum_check']:.4f}; prediction {target:.4f})")
    if seg.get("shapley"):
        lines.append(f"  Shapley values per modality (baseline {seg['shapley_baseline']:+.4f}, the prediction with "
                     "every block at its training-mean contribution):")
        sscale = max([abs(v) for v in seg["shapley"].values()] + [1e-12])
        for m, v in sorted(seg["shapley"].items(), key=lambda kv: -abs(kv[1])):
            lines.append(f"    {m:18s} {v:+8.4f}  {_bar(v, sscale)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- ablation
def training_fill(lr: LoadedRun, m: str, train_ds: Dataset | None) -> np.ndarray:
    """What "remove modality m" puts in its place: the training mean of each feature.

    Float modalities use the mean stored with the model (fitted on the training split,
    over finite values and valid time steps); token modalities the most frequent
    training token at each position (a mean of token ids has no meaning).
    """
    shape, kind = lr.model.shapes[m]
    if kind == "f":
        return lr.model.input_norms[m].mean.detach().numpy().astype(np.float32)
    if train_ds is None or m not in train_ds.modalities:
        raise MWeightError(f"ablating token modality {m!r} needs the training data (the run's dataset file)")
    tok = train_ds.modalities[m].astype(np.int64)
    k = int(tok.max()) + 1 if tok.size else 1
    counts = np.stack([(tok == v).sum(axis=0) for v in range(k)])  # (k, L)
    return counts.argmax(axis=0).astype(train_ds.modalities[m].dtype)


def _with_modality(ds: Dataset, m: str, array: np.ndarray, lengths: np.ndarray | None = None) -> Dataset:
    out = ds.subset(np.arange(len(ds)))
    out.modalities = dict(ds.modalities)
    out.modalities[m] = array
    if lengths is not None:
        out.lengths = dict(ds.lengths)
        out.lengths[m] = lengths
    return out


def mean_ablated(ds: Dataset, m: str, fill: np.ndarray) -> Dataset:
    """Modality ``m`` replaced by ``fill`` for every sample (every valid step of a sequence)."""
    a = ds.modalities[m]
    if a.ndim == 3:  # float sequence: each valid step becomes the mean vector; padding stays padding
        new = np.zeros_like(a)
        lens = ds.lengths.get(m, np.full(len(a), a.shape[1]))
        mask = np.arange(a.shape[1])[None, :] < lens[:, None]
        new[mask] = fill
    else:
        new = np.broadcast_to(fill, a.shape).astype(a.dtype).copy()
    return _with_modality(ds, m, new)


def permuted(ds: Dataset, m: str, rng: np.random.Generator) -> Dataset:
    """Modality ``m`` (and its lengths) shuffled across the samples of ``ds``; the others stay."""
    perm = rng.permutation(len(ds))
    lens = ds.lengths[m][perm] if m in ds.lengths else None
    return _with_modality(ds, m, ds.modalities[m][perm], lens)


def _score(lr: LoadedRun, ds: Dataset) -> dict:
    from .data import to_tensors
    from .model import predict_tensors

    inputs, lengths, _ = to_tensors(ds)
    pred, _ = predict_tensors(lr.model, inputs, lengths)
    return compute_metrics(pred[:, 0] if lr.task == "regression" else pred, ds.label, lr.task)


def drop(base: dict, new: dict, metric: str) -> float:
    """How much worse ``new`` is than ``base`` on ``metric`` (positive = worse), whatever its direction."""
    d = new[metric] - base[metric]
    return float(d if METRIC_MODES.get(metric, "max") == "min" else -d)


def rank_agreement(a, b) -> dict:
    """Spearman rho and Kendall tau (tau-b, ties handled) between two orderings; None if undefined.

    Pairs with a missing value (nan) are left out. The one rank agreement of the package:
    ``mweight ablate`` and the app's Faithfulness page both report this.
    """
    from scipy.stats import kendalltau, spearmanr

    a, b = np.asarray(list(a), float), np.asarray(list(b), float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"spearman": None, "kendall": None, "n": int(len(a))}
    rho = spearmanr(a, b).statistic
    tau = kendalltau(a, b).statistic
    clean = lambda v: None if v is None or not np.isfinite(v) else float(v)  # noqa: E731
    return {"spearman": clean(rho), "kendall": clean(tau), "n": int(len(a))}


def ablate_run(lr: LoadedRun, data: str | Path | None = None, split: str = "test", repeats: int = 5,
               seed: int = 0, metrics: list[str] | None = None, split_key: str | None = None) -> dict:
    """Ablation (training mean) and permutation importance of every modality on ``split``.

    Returns a JSON-ready dict: base metrics, per modality the beta share of its own block
    and of all blocks containing it, the metric drops (positive = worse), and the rank
    agreement (Spearman, Kendall) of beta with each importance and between the two.
    """
    if repeats < 1:
        raise MWeightError(f"--repeats {repeats}: expected an integer >= 1")
    ds_all = run_dataset(lr, data, split_key)
    ds = select_ids(ds_all, split=split)
    keep = _labelled(ds)
    if not keep.any():
        raise MWeightError(f"{ds.path}: split {split!r} has no labelled rows to score")
    ds = ds.subset(np.nonzero(keep)[0])
    primary = "mae" if lr.task == "regression" else "acc"  # what users read (selection uses ce)
    if metrics is None:
        metrics = [primary] + (["acc2_non0", "corr"] if lr.task == "regression" else ["f1"])
    base = _score(lr, ds)
    bad = [k for k in metrics if k not in base]
    if bad:
        raise MWeightError(f"--metric {bad[0]}: not a {lr.task} metric; expected one of {', '.join(base)}")
    train_ds = ds_all.part("train") if (ds_all.split == "train").any() else None
    share = lr.run.relevance["share"]
    beta = lr.run.relevance["beta"]
    rows = {}
    for m in lr.modalities:
        abl = _score(lr, mean_ablated(ds, m, training_fill(lr, m, train_ds)))
        perms = [_score(lr, permuted(ds, m, np.random.default_rng([seed, r, lr.modalities.index(m)])))
                 for r in range(repeats)]
        containing = [b for b in lr.blocks if m in b.split("*")]
        rows[m] = {
            "beta": float(beta.get(m, math.nan)),
            "share": float(share.get(m, math.nan)),
            "share_with_interactions": float(sum(share.get(b, 0.0) for b in containing)),
            "blocks": containing,
            "ablation": {k: drop(base, abl, k) for k in metrics},
            "permutation": {k: float(np.mean([drop(base, p, k) for p in perms])) for k in metrics},
            "permutation_std": {k: float(np.std([drop(base, p, k) for p in perms])) for k in metrics},
        }
    mods = list(rows)
    by = lambda key, k=None: [rows[m][key][k] if k else rows[m][key] for m in mods]  # noqa: E731
    agreement = {}
    for k in metrics:
        agreement[k] = {
            "share_vs_ablation": rank_agreement(by("share_with_interactions"), by("ablation", k)),
            "share_vs_permutation": rank_agreement(by("share_with_interactions"), by("permutation", k)),
            "ablation_vs_permutation": rank_agreement(by("ablation", k), by("permutation", k)),
        }
    return {"run": str(lr.path), "data": ds.path, "split": split, "n": int(len(ds)), "repeats": repeats,
            "seed": seed, "metrics": metrics, "base": {k: base[k] for k in metrics}, "modalities": rows,
            "agreement": agreement,
            "note": "drop = how much worse than the unablated model (positive = worse); ablation replaces the "
                    "modality by its training mean, permutation shuffles it across the evaluated samples; "
                    "rank agreement uses the beta share of all blocks containing the modality"}


def _fmt_rank(d: dict) -> str:
    f = lambda v: "n/a" if v is None else f"{v:+.2f}"  # noqa: E731
    return f"Spearman {f(d['spearman'])}, Kendall {f(d['kendall'])}"


def format_ablation(results: list[dict]) -> str:
    """Text table for one run, or mean ± std over seeds for several."""
    r0 = results[0]
    metrics = r0["metrics"]
    main = metrics[0]
    multi = len(results) > 1
    mods = list(r0["modalities"])

    def agg(get):
        vals = np.array([get(r) for r in results], dtype=float)
        return f"{np.nanmean(vals):.4f} ± {np.nanstd(vals):.4f}" if multi else f"{vals[0]:.4f}"

    lines = [f"{'Seeds: ' + str(len(results)) + ' runs; ' if multi else ''}split {r0['split']} (n={r0['n']}), "
             f"permutation repeats {r0['repeats']}; drop = how much worse (positive = worse)"]
    base = ", ".join(f"{k} {agg(lambda r, k=k: r['base'][k])}" for k in metrics)
    lines.append(f"unablated: {base}")
    names = ["beta share", "share w/ inter."] + [f"{kind} d{k}" for k in metrics for kind in ("abl.", "perm.")]
    w = max([19 if multi else 13] + [len(n) for n in names])
    head = f"{'modality':10s} " + " ".join(f"{n:>{w}s}" for n in names)
    lines += ["", head, "-" * len(head)]
    for m in mods:
        cells = [agg(lambda r: r["modalities"][m]["share"]), agg(lambda r: r["modalities"][m]["share_with_interactions"])]
        for k in metrics:
            cells.append(agg(lambda r, k=k: r["modalities"][m]["ablation"][k]))
            if multi:
                cells.append(agg(lambda r, k=k: r["modalities"][m]["permutation"][k]))
            else:
                rr = r0["modalities"][m]
                cells.append(f"{rr['permutation'][k]:.4f}±{rr['permutation_std'][k]:.3f}")
        lines.append(f"{m:10s} " + " ".join(f"{c:>{w}s}" for c in cells))
    lines += ["", f"Rank agreement on {main} over {len(mods)} modalities (beta share of blocks containing the modality):"]
    for key, label in (("share_vs_ablation", "beta vs ablation"), ("share_vs_permutation", "beta vs permutation"),
                       ("ablation_vs_permutation", "ablation vs permutation")):
        if multi:
            rho = [r["agreement"][main][key]["spearman"] for r in results]
            tau = [r["agreement"][main][key]["kendall"] for r in results]
            rho = [v for v in rho if v is not None]
            tau = [v for v in tau if v is not None]
            txt = (f"Spearman mean {np.mean(rho):+.2f}, Kendall mean {np.mean(tau):+.2f} (over {len(rho)} seeds)"
                   if rho else "n/a")
        else:
            txt = _fmt_rank(r0["agreement"][main][key])
        lines.append(f"  {label:26s} {txt}")
    if len(mods) <= 3:
        lines.append(f"  (with {len(mods)} modalities a rank correlation takes few values; read it with the table)")
    return "\n".join(lines)

