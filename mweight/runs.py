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
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
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
from .fileio import atomic_path, load_torch, save_torch, write_json, write_text, write_yaml
from .metrics import METRIC_LABELS
from .model import MWeightNet, predict_tensors, shapes_from_json, shapes_to_json

if TYPE_CHECKING:  # the result type only: reading and writing runs does not need the training loop
    from .train import FitResult

RUN_FILES = ("config.yaml", "metrics.json", "relevance.json", "attribution.json", "history.csv", "model.pt",
             "predictions.csv")
FORMAT_VERSION = 1


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


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


def is_run_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / "relevance.json").is_file() and (p / "config.yaml").is_file()


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


def seed_dirs(out: str | Path) -> list[Path]:
    out = Path(out)
    return sorted((p for p in out.glob("seed_*") if is_run_dir(p)), key=lambda p: int(p.name.split("_")[1]))


def summarize(out: str | Path) -> dict:
    """mean ± std over seed runs of every metric and every block's beta share."""
    runs = [load_run(p) for p in seed_dirs(out)]
    if not runs:
        raise MWeightError(f"{out}: no seed_* run directories to summarise")
    summary: dict = {"seeds": [int(r.path.name.split("_")[1]) for r in runs], "metrics": {}, "share": {}, "beta": {}}
    for split in ("valid", "test"):
        keys = sorted({k for r in runs for k in r.metrics.get(split, {})})
        summary["metrics"][split] = {}
        for k in keys:
            vals = np.array([r.metrics.get(split, {}).get(k, np.nan) for r in runs], dtype=float)
            summary["metrics"][split][k] = {"mean": float(np.nanmean(vals)), "std": float(np.nanstd(vals)),
                                            "values": vals.tolist()}
    for what in ("share", "beta"):
        blocks = runs[0].blocks
        for b in blocks:
            vals = np.array([r.relevance[what].get(b, np.nan) for r in runs], dtype=float)
            summary[what][b] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "values": vals.tolist()}
    summary["p"] = runs[0].relevance.get("p")
    summary["attribution"] = summarize_attribution([r.path for r in runs])
    atts = [a for a in (r.attribution() for r in runs) if a and "trust" in a]
    if atts:
        from .trust import study_trust

        summary["trust"] = study_trust(atts)
    summary["labels"] = dict(METRIC_LABELS)
    return summary


def _stats(vals: list[float]) -> dict:
    a = np.asarray(vals, dtype=float)
    return {"mean": float(np.nanmean(a)) if a.size else float("nan"),
            "std": float(np.nanstd(a)) if a.size else float("nan"), "values": a.tolist()}


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
        "blocks": {b: {"contribution_share": _stats([a["blocks"].get(b, {}).get("contribution_share", np.nan)
                                                     for a in atts])} for b in blocks},
        "modalities": {m: {"shapley_share": _stats([a["modalities"].get(m, {}).get("shapley_share", np.nan)
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

