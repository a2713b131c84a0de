"""Run directories: what ``mweight train`` writes and every other tool reads.

One run (one seed)::

    RUN_DIR/config.yaml       resolved config (+ _meta: dataset, sha256, blocks, version)
    RUN_DIR/metrics.json      {"train": {...}, "valid": {...}, "test": {...}, "info": {...}}
    RUN_DIR/relevance.json    {"p": ..., "beta": {block: v}, "share": {block: v}, ...}
    RUN_DIR/history.csv       per epoch: losses, validation metrics, beta and share per block
    RUN_DIR/model.pt          {"config", "state_dict", "shapes", ...}; loaded with weights_only=True
    RUN_DIR/predictions.csv   id, split, label, prediction, bias, one column per block
                              (block columns + bias sum to the prediction)

Several seeds: ``OUT/seed_<s>/`` per seed plus ``OUT/summary.json`` and ``OUT/summary.md``.

This module owns those layouts: every other tool asks :class:`RunDir` whether a folder
holds a run, is complete, or matches a config, dataset and code; :func:`seed_of` /
:func:`seed_dirs` for seed groups, :func:`mean_std` for every mean ± std over seeds,
:func:`result_line` for the one line printed per finished run, :func:`check_run` for
what a reader may rely on.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml

from . import __version__
from .config import Config
from .data import Dataset, to_tensors
from .errors import MWeightError
# sha256 stays importable from here (trainrun, seeds and analysis take it from runs)
from .fileio import atomic_path, load_torch, save_torch, sha256, write_json, write_text, write_yaml
from .metrics import METRIC_LABELS
from .model import MWeightNet, predict_tensors, shapes_from_json, shapes_to_json

if TYPE_CHECKING:  # the result type only: reading and writing runs does not need the training loop
    from .train import FitResult

RUN_FILES = ("config.yaml", "metrics.json", "relevance.json", "attribution.json", "history.csv", "model.pt",
             "predictions.csv")
# The training loop's checkpoint (mweight.train.CHECKPOINT; a test keeps them equal): here as well so
# that asking about a folder does not import torch.
CHECKPOINT_FILE = "checkpoint.pt"
SUMMARY_FILES = ("summary.json", "summary.md")
SEED_PREFIX = "seed_"
FORMAT_VERSION = 1
# Metrics of the one result line, in this order (those the run has).
RESULT_METRICS = ("mae", "corr", "acc2_non0", "acc2_has0", "acc7", "acc", "f1")


# -- model files ----------------------------------------------------------
def model_payload(model: MWeightNet, cfg: Config, task: str) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "mweight_version": __version__,
        "config": cfg.to_dict(),
        "state_dict": model.state_dict(),
        "shapes": shapes_to_json(model.shapes),
        "out_dim": model.out_dim,
        "task": task,
        "block_names": list(model.block_names),
    }


def save_model(path: str | Path, model: MWeightNet, cfg: Config, task: str) -> None:
    save_torch(path, model_payload(model, cfg, task))


def load_model(path: str | Path) -> tuple[MWeightNet, Config, str]:
    """Rebuild a model from ``model.pt`` (state_dict + config; ``weights_only=True``)."""
    payload = load_torch(path)
    if not isinstance(payload, dict) or "state_dict" not in payload or "config" not in payload:
        raise MWeightError(f"{path}: not a mweight model file (expected state_dict and config)")
    cfg = Config.from_dict(payload["config"], source=str(path))
    shapes = shapes_from_json(payload["shapes"])
    model = MWeightNet(shapes, payload["out_dim"], cfg.model, standardize=cfg.data.standardize)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise MWeightError(f"{path}: weights do not match the saved config ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model, cfg, payload.get("task", "regression")


# -- predictions ----------------------------------------------------------
def decompose(model: MWeightNet, ds: Dataset, train_means: dict | None = None):
    """Eval-mode predictions, per-block contributions of the decomposed output and Shapley columns.

    Returns ``(pred (N, out), g {block: (N,)}, base {block: (N,)}, idx (N,), train_means,
    shapley {column: (N,)})``; the baseline is the training-mean contribution (taken from
    ``ds``'s train rows unless ``train_means`` is given, e.g. the run's attribution.json).
    """
    from .attribution import per_sample, shapley_columns

    inputs, lengths, _ = to_tensors(ds)
    pred, contrib = predict_tensors(model, inputs, lengths, contributions=True)
    bias = model.final.bias.detach().numpy()
    train_mask = np.asarray(ds.split).astype(str) == "train"
    if train_means is None and train_mask.any():
        train_means = {b: c[train_mask].astype(np.float64).mean(axis=0) for b, c in contrib.items()}
    if train_means is None:  # no baseline known: contributions only, no Shapley columns
        zeros = {b: np.zeros(c.shape[1]) for b, c in contrib.items()}
        g, base, idx = per_sample(pred, contrib, bias, train_mask, ds.task, zeros)
        return pred, g, base, idx, None, {}
    train_means = {b: np.asarray(v, dtype=np.float64) for b, v in train_means.items()}
    g, base, idx = per_sample(pred, contrib, bias, train_mask, ds.task, train_means)
    shap = shapley_columns(g, base, bias[idx], list(model.modalities))
    return pred, g, base, idx, train_means, shap


def predictions_frame(model: MWeightNet, ds: Dataset, train_means: dict | None = None) -> pd.DataFrame:
    """id, split, label, prediction, bias, one column per block, ``shapley_<m>``, ``shapley_baseline``.

    Block columns + bias = prediction (regression) or ``score`` (classification: the logit
    of the predicted class ``prediction``, which the block columns decompose).
    ``shapley_baseline`` + the ``shapley_<m>`` columns = the same value (docs/method.md).
    """
    return _frame(model, ds, decompose(model, ds, train_means))


def _frame(model: MWeightNet, ds: Dataset, decomposition: tuple) -> pd.DataFrame:
    """The predictions frame from an already computed :func:`decompose` (no second forward pass)."""
    pred, g, _base, idx, _means, shap = decomposition
    bias = model.final.bias.detach().numpy()
    df = pd.DataFrame({"id": ds.id, "split": ds.split, "label": ds.label})
    if ds.task == "classification" or model.out_dim > 1:
        rows = np.arange(len(idx))
        df["prediction"] = idx
        df["score"] = pred[rows, idx]
        df["bias"] = bias[idx]
    else:
        df["prediction"] = pred[:, 0]
        df["bias"] = float(bias[0])
    for b, v in g.items():
        df[b] = v
    for col, v in shap.items():
        df[col] = v
    return df


def attribution(model: MWeightNet, ds: Dataset, cfg: Config, best_epoch: int | None,
                beta: dict | None, share: dict | None) -> tuple[dict, pd.DataFrame]:
    """(attribution.json content, predictions frame) for a trained model on its dataset."""
    from .attribution import attribution_report

    dec = decompose(model, ds)
    _pred, g, base, _idx, train_means, _shap = dec
    att = attribution_report(g, base, ds.split, list(model.modalities),
                             beta if cfg.model.relevance != "none" else None,
                             share if cfg.model.relevance != "none" else None,
                             task=ds.task, p=cfg.model.p if cfg.model.relevance != "none" else None,
                             best_epoch=best_epoch, train_means=train_means)
    frame = _frame(model, ds, dec)
    att["trust"] = dataset_trust(ds, frame)
    return att, frame


def dataset_trust(ds: Dataset, frame: pd.DataFrame, recorded_sha: str | None = None,
                  current_sha: str | None = None) -> dict:
    """The run's verdict (mweight.trust) from its predictions frame and the dataset's facts."""
    from .trust import data_warnings, run_trust

    columns = list(ds.columns) + [ds.split_key]
    n_train = int((np.asarray(ds.split).astype(str) == "train").sum())
    warnings = data_warnings(ds.meta, columns, ds.split_key, n_train, recorded_sha, current_sha, ds.path)
    return run_trust(ds.task, frame["split"].to_numpy(), frame["prediction"].to_numpy(),
                     frame["label"].to_numpy(), warnings)


# -- writing a run --------------------------------------------------------
def write_run(run_dir: str | Path, result: FitResult, cfg: Config, ds: Dataset, meta: dict | None = None) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = result.model
    info_meta = {
        "mweight_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "dataset": str(ds.path) if ds.path else None,
        "dataset_sha256": sha256(ds.path) if ds.path and Path(ds.path).is_file() else None,
        "split_key": ds.split_key,
        "counts": ds.counts(),
        "task": ds.task,
        "modalities": list(ds.names),
        "blocks": list(model.block_names),
        "encoders": dict(model.encoder_names),
        **(meta or {}),
    }
    write_yaml(run_dir / "config.yaml", {**cfg.to_dict(), "_meta": info_meta})
    save_model(run_dir / "model.pt", model, cfg, ds.task)
    write_json(run_dir / "metrics.json", {
        **result.metrics,
        "info": {"best_epoch": result.best_epoch, "epochs_run": result.extra.get("epochs_run"),
                 "seconds": round(result.seconds, 3),
                 "train_samples_per_second": round(result.samples_per_second, 1),
                 **({"restarts": result.extra["restarts"], "restart_chosen": result.extra["restart_chosen"]}
                    if "restarts" in result.extra else {}),
                 **({"calibration": result.extra["calibration"]} if "calibration" in result.extra else {}),
                 "labels": {k: v for k, v in METRIC_LABELS.items()}},
    })
    write_json(run_dir / "relevance.json", {
        "p": cfg.model.p, "beta": result.beta, "share": result.share,
        "blocks": list(model.block_names), "mode": cfg.model.relevance, "norm": cfg.model.norm,
        "best_epoch": result.best_epoch,
        "labels": {"beta": f"raw beta (unit {cfg.model.p:g}-norm, closed form from the selected checkpoint)"
                   if cfg.model.relevance != "explicit" else "raw beta (trainable, projected on the p-ball)",
                   "share": "beta normalised to sum 1"},
    })
    hist = pd.DataFrame(result.history)
    with atomic_path(run_dir / "history.csv") as tmp:
        hist.to_csv(tmp, index=False)
    att, preds = attribution(model, ds, cfg, result.best_epoch, result.beta, result.share)
    result.extra["attribution"] = att
    write_json(run_dir / "attribution.json", att)
    with atomic_path(run_dir / "predictions.csv") as tmp:
        preds.to_csv(tmp, index=False, float_format="%.7g")
    return run_dir


# -- run directories ------------------------------------------------------
@dataclass(frozen=True)
class RunDir:
    """A folder that may hold one run: what is in it, and whether it can be reused.

    ``started``: config.yaml and relevance.json (what readers need); ``complete``: every
    file of :data:`RUN_FILES`; :meth:`differences` compares the recorded config and
    dataset (and, for the reproduction, code) with the ones about to be trained.
    """

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def seed(self) -> int | None:
        """The seed of a ``seed_<s>`` sub-run (None for any other folder name)."""
        return seed_of(self.path.name)

    def present(self, checkpoint: bool = True) -> list[str]:
        """The run files (and the training checkpoint) that exist, in :data:`RUN_FILES` order."""
        names = RUN_FILES + ((CHECKPOINT_FILE,) if checkpoint else ())
        return [f for f in names if (self.path / f).exists()]

    @property
    def started(self) -> bool:
        return (self.path / "relevance.json").is_file() and (self.path / "config.yaml").is_file()

    @property
    def complete(self) -> bool:
        return all((self.path / f).is_file() for f in RUN_FILES)

    @property
    def resumable(self) -> bool:
        """Something to continue with ``--resume``: a checkpoint or a finished model."""
        return (self.path / CHECKPOINT_FILE).is_file() or (self.path / "model.pt").is_file()

    def saved_config(self) -> tuple[dict, dict]:
        """(resolved config, ``_meta``) from ``config.yaml``; one-line MWeightError if unreadable."""
        path = self.path / "config.yaml"
        try:
            saved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            meta = saved.pop("_meta", {}) or {}
            return Config.from_dict(saved, source=str(path)).to_dict(), meta
        except (OSError, yaml.YAMLError, MWeightError, AttributeError) as exc:
            raise MWeightError(f"{path}: not a readable run config ({str(exc).splitlines()[0]})") from None

    def differences(self, config: dict, dataset_sha: str | None, ignore: set[str] | frozenset = frozenset(),
                    code_sha: str | None = None, dataset: str | None = None) -> list[str]:
        """What differs between the recorded run and ``config`` / dataset (SHA-256) / code: one
        ``"key old -> new"`` text each, keys in ``ignore`` left out; ``[]`` = the same run."""
        from .config import flatten

        old, meta = self.saved_config()
        a, b = flatten(old), flatten(config)
        out = [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
               if k not in ignore and a.get(k) != b.get(k)]
        old_sha = meta.get("dataset_sha256")
        if old_sha and dataset_sha and old_sha != dataset_sha:
            out.append(f"dataset SHA-256 {old_sha[:12]}... ({meta.get('dataset')}) -> {dataset_sha[:12]}... "
                       f"({dataset})")
        if code_sha is not None and (meta.get("repro") or {}).get("code_sha256") != code_sha:
            out.append("training code changed")
        return out

    def matches(self, config: dict, dataset_sha: str, ignore: set[str] | frozenset = frozenset(),
                code_sha: str | None = None) -> bool:
        """Complete, and trained with exactly this config, dataset file (and code): safe to reuse."""
        if not self.complete:
            return False
        try:
            _, meta = self.saved_config()
            return meta.get("dataset_sha256") == dataset_sha and not self.differences(config, dataset_sha, ignore,
                                                                                      code_sha)
        except MWeightError:
            return False

    def load(self) -> "Run":
        return load_run(self.path)


def is_run_dir(path: str | Path) -> bool:
    """A folder readers can open as a run (``RunDir(path).started``)."""
    return RunDir(path).started


def seed_of(name: str) -> int | None:
    """``"seed_3"`` -> 3; any other folder name -> None (the one parser of seed folder names)."""
    m = re.fullmatch(rf"{SEED_PREFIX}(-?\d+)", name)
    return int(m.group(1)) if m else None


def seed_dir(out: str | Path, seed: int) -> Path:
    return Path(out) / f"{SEED_PREFIX}{seed}"


def seed_dirs(out: str | Path, started_only: bool = True) -> list[Path]:
    """The ``seed_<s>`` sub-runs of ``out``, by seed (only readable ones unless ``started_only=False``)."""
    out = Path(out)
    found = [p for p in out.glob(f"{SEED_PREFIX}*") if p.is_dir() and seed_of(p.name) is not None]
    return sorted((p for p in found if not started_only or is_run_dir(p)), key=lambda p: seed_of(p.name))


def mean_std(values) -> dict:
    """``{"mean", "std", "values"}`` over seeds: NaN-aware mean and population std (ddof 0),
    the one definition behind summary.json, ``evaluate``, the app and the reproduction."""
    a = np.asarray(list(values), dtype=float)
    finite = a[np.isfinite(a)] if a.size else a
    return {"mean": float(finite.mean()) if finite.size else float("nan"),
            "std": float(finite.std()) if finite.size else float("nan"), "values": a.tolist()}


def result_line(metrics: dict, best_epoch=None, split: str = "test", digits: int = 4) -> str:
    """The one line printed per finished run: ``best epoch E; test mae=..., corr=...``."""
    vals = metrics.get(split) or {}
    shown = ", ".join(f"{k}={vals[k]:.{digits}f}" for k in RESULT_METRICS if k in vals)
    return f"best epoch {best_epoch}; {split} {shown}"


def check_run(run: "Run") -> list[str]:
    """Raise MWeightError if a loaded run cannot be shown; return warnings (e.g. an old version).

    :func:`load_run` checks that the files exist and parse; this checks their content
    (finite beta and share per block, a number p, some metrics, an epoch column).
    """
    rel_path = run.path / "relevance.json"
    for key in ("beta", "share"):
        val = run.relevance.get(key)
        if not isinstance(val, dict) or not val:
            raise MWeightError(f"{rel_path}: field {key!r} must map each block to a number")
        for b, v in val.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise MWeightError(f"{rel_path}: field {key}.{b} = {v!r}; expected a finite number")
    p = run.relevance.get("p")
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise MWeightError(f"{rel_path}: field 'p' = {p!r}; expected a number")
    if set(run.relevance["beta"]) != set(run.relevance["share"]):
        raise MWeightError(f"{rel_path}: 'beta' and 'share' name different blocks")
    met_path = run.path / "metrics.json"
    if not any(isinstance(run.metrics.get(s), dict) and run.metrics.get(s) for s in ("test", "valid")):
        raise MWeightError(f"{met_path}: no 'test' or 'valid' metrics (expected {{split: {{metric: value}}}})")
    warnings = []
    if run.history is not None and "epoch" not in run.history.columns:
        raise MWeightError(f"{run.path / 'history.csv'}: missing column 'epoch'")
    version = run.meta.get("mweight_version") if isinstance(run.meta, dict) else None
    if not version:
        warnings.append(f"{run.path}: written by an older mweight (no _meta in config.yaml); "
                        "some views may be missing — re-run `mweight train` to refresh it")
    elif version.split(".")[:2] != __version__.split(".")[:2]:
        warnings.append(f"{run.path}: written by mweight {version}; this is {__version__}")
    if run.history is None:
        warnings.append(f"{run.path / 'history.csv'}: file not found; no training curves")
    return warnings


# -- reading a run --------------------------------------------------------
@dataclass
class Run:
    path: Path
    config: dict
    metrics: dict
    relevance: dict
    history: pd.DataFrame | None = None
    meta: dict = field(default_factory=dict)

    @property
    def blocks(self) -> list[str]:
        return list(self.relevance.get("blocks") or self.relevance.get("share", {}))

    def predictions(self) -> pd.DataFrame:
        path = self.path / "predictions.csv"
        if not path.is_file():
            raise MWeightError(f"{path}: file not found (run incomplete?)")
        return pd.read_csv(path, dtype={"id": str})

    def load_model(self):
        return load_model(self.path / "model.pt")

    def attribution(self) -> dict | None:
        """attribution.json (None for runs written before it existed)."""
        f = self.path / "attribution.json"
        return _read_json(f) if f.is_file() else None

    def baseline(self) -> dict | None:
        """The Shapley baseline: training-mean contribution per block (and output), if recorded."""
        att = self.attribution()
        return att.get("baseline_values") if att else None


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise MWeightError(f"{path}: file not found (run incomplete?)")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MWeightError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(d, dict):
        raise MWeightError(f"{path}: expected a JSON object")
    return d


def load_run(path: str | Path) -> Run:
    """Read a run directory (not the model: use ``run.load_model()``)."""
    path = Path(path)
    if not path.is_dir():
        raise MWeightError(f"{path}: run directory not found")
    cfg_path = path / "config.yaml"
    if not cfg_path.is_file():
        raise MWeightError(f"{cfg_path}: file not found (not a mweight run directory)")
    try:
        config = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise MWeightError(f"{cfg_path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    relevance = _read_json(path / "relevance.json")
    for key in ("p", "beta", "share"):
        if key not in relevance:
            raise MWeightError(f"{path / 'relevance.json'}: missing field {key!r}")
    metrics = _read_json(path / "metrics.json")
    hist = None
    if (path / "history.csv").is_file():
        try:
            hist = pd.read_csv(path / "history.csv")
        except Exception as exc:  # noqa: BLE001 - any parse problem is a user-facing message
            raise MWeightError(f"{path / 'history.csv'}: not a readable CSV ({exc})") from None
    meta = config.pop("_meta", {}) if isinstance(config, dict) else {}
    return Run(path=path, config=config, metrics=metrics, relevance=relevance, history=hist, meta=meta)


def summarize(out: str | Path) -> dict:
    """mean ± std over seed runs of every metric and every block's beta share."""
    runs = [load_run(p) for p in seed_dirs(out)]
    if not runs:
        raise MWeightError(f"{out}: no seed_* run directories to summarise")
    summary: dict = {"seeds": [seed_of(r.path.name) for r in runs], "metrics": {}, "share": {}, "beta": {}}
    for split in ("valid", "test"):
        keys = sorted({k for r in runs for k in r.metrics.get(split, {})})
        summary["metrics"][split] = {k: mean_std(r.metrics.get(split, {}).get(k, np.nan) for r in runs) for k in keys}
    for what in ("share", "beta"):
        for b in runs[0].blocks:
            summary[what][b] = mean_std(r.relevance[what].get(b, np.nan) for r in runs)
    summary["p"] = runs[0].relevance.get("p")
    summary["attribution"] = summarize_attribution([r.path for r in runs])
    atts = [a for a in (r.attribution() for r in runs) if a and "trust" in a]
    if atts:
        from .trust import study_trust

        summary["trust"] = study_trust(atts)
    summary["labels"] = dict(METRIC_LABELS)
    return summary


def summarize_attribution(paths: list[Path]) -> dict:
    """mean, std and values over seeds of each block's contribution share and each modality's Shapley share."""
    atts = []
    for path in paths:
        f = Path(path) / "attribution.json"
        if f.is_file():
            atts.append(_read_json(f))
    if not atts:
        return {}
    blocks = list(atts[0].get("blocks", {}))
    mods = list(atts[0].get("modalities", {}))
    return {
        "split": atts[0].get("split"),
        "blocks": {b: {"contribution_share": mean_std([a["blocks"].get(b, {}).get("contribution_share", np.nan)
                                                     for a in atts])} for b in blocks},
        "modalities": {m: {"shapley_share": mean_std([a["modalities"].get(m, {}).get("shapley_share", np.nan)
                                                    for a in atts])} for m in mods},
    }


def write_summary(out: str | Path) -> dict:
    out = Path(out)
    s = summarize(out)
    write_json(out / "summary.json", s)
    lines = [f"# Summary over seeds {', '.join(map(str, s['seeds']))}", "",
             "std is the population std over seeds.", "", "## Test metrics", "",
             "| metric | mean ± std |", "| --- | --- |"]
    for k, v in s["metrics"].get("test", {}).items():
        if k == "loss":
            continue
        lines.append(f"| {METRIC_LABELS.get(k, k)} | {v['mean']:.4f} ± {v['std']:.4f} |")
    trust = s.get("trust")
    if trust:
        lines += ["", f"## Evidence: {trust['verdict']}", ""] + [f"- {r}" for r in trust["reasons"]]
        agree = trust.get("ranking_agreement")
        if agree:
            lines.append(f"- ranking by Shapley share {' > '.join(agree['ranking'])}: "
                         f"{agree['fraction_of_seeds']:.0%} of seeds")
        if trust["verdict"] == "no-evidence":
            lines.append("- the relevance and attribution below carry no information")
    att = s.get("attribution") or {}
    lines += ["", f"## Relevance and attribution ({att.get('split', 'test')} split; docs/method.md)", "",
              "beta share: the model's relevance parameter (depends on p). contribution share: the block's "
              "share of the variance of its contribution W_S z_S(x). Shapley share: mean |phi_m| per modality.",
              "", "| block | beta share mean ± std | raw beta mean | contribution share mean ± std |",
              "| --- | --- | --- | --- |"]
    for b, v in s["share"].items():
        c = att.get("blocks", {}).get(b, {}).get("contribution_share")
        ci = ((trust or {}).get("stability", {}).get("blocks", {}).get(b, {})
              .get("contribution_share", {}).get("ci95"))
        c_txt = f"{c['mean']:.4f} ± {c['std']:.4f}" if c else "-"
        if c and ci and all(np.isfinite(ci)):
            c_txt += f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})"
        lines.append(f"| {b} | {v['mean']:.4f} ± {v['std']:.4f} | {s['beta'][b]['mean']:.4f} | {c_txt} |")
    if att.get("modalities"):
        lines += ["", "| modality | Shapley share mean ± std |", "| --- | --- |"]
        for m, v in att["modalities"].items():
            lines.append(f"| {m} | {v['shapley_share']['mean']:.4f} ± {v['shapley_share']['std']:.4f} |")
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    return s

