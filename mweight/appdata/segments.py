"""Segments: one seed's predictions with errors and transcripts, sorting and filtering, waterfalls."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import MWeightError
from .groups import RunGroup, inside


# ---------------------------------------------------------------- segments
def dataset_path(root: Path, run) -> Path | None:
    """The dataset file a run recorded (config data.path), if it exists."""
    raw = (run.config.get("data") or {}).get("path") or (run.meta or {}).get("dataset")
    if not raw:
        return None
    p = Path(str(raw)).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, root / p, root.parent / p]
    for c in candidates:
        if c.is_file() and c.suffix == ".npz":
            return c
    return None


def load_transcripts(root: Path, group: RunGroup) -> dict[str, str]:
    """id -> transcript, from a string column of the run's dataset (as ``mweight explain``)
    updated by a ``transcripts.csv`` in the run folder or the runs folder (``id,transcript``,
    with or without header, as CMU-MOSI's transcripts file). Empty when unknown; an
    unreadable transcripts file is skipped (transcripts are optional on every page)."""
    from ..transcripts import dataset_transcripts, read_transcripts

    out = dataset_transcripts(dataset_path(root, group.runs[0]))
    for f in (group.path / "transcripts.csv", root / "transcripts.csv"):
        if f.is_file() and inside(root, f):
            try:
                out.update(read_transcripts(f))
            except MWeightError:
                pass
    return out


def segments_frame(group: RunGroup, seed=None, transcripts: dict[str, str] | None = None) -> pd.DataFrame:
    """predictions.csv of one seed plus error columns and the transcript when known.

    Regression: ``error = prediction - label``, ``abs_error``. Classification:
    ``correct`` and ``abs_error`` = 0/1.
    """
    run = group.run_for(seed)
    try:
        df = run.predictions()
    except MWeightError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise MWeightError(f"{run.path / 'predictions.csv'}: not a readable CSV ({str(exc)[:200]})") from None
    need = ["id", "label", "prediction", "bias"] + list(group.blocks)
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise MWeightError(f"{run.path / 'predictions.csv'}: missing column {missing[0]!r}")
    for c in ["label", "prediction", "bias"] + list(group.blocks):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    if group.task == "regression":
        df["error"] = df["prediction"] - df["label"]
        df["abs_error"] = df["error"].abs()
    else:
        df["correct"] = df["prediction"].round().astype("Int64") == df["label"].round().astype("Int64")
        df["abs_error"] = (~df["correct"].astype(bool)).astype(float)
    if transcripts:
        text = df["id"].astype(str).map(transcripts).fillna("")
        if (text != "").any():  # a transcripts file of another dataset adds no empty column
            df["transcript"] = text
    return df


def outcome_value(df: pd.DataFrame, task: str) -> pd.Series:
    """What the blocks + bias add up to: the prediction (regression) or the predicted
    class's logit ``score`` (classification)."""
    if task == "regression" or "score" not in df.columns:
        return df["prediction"]
    return pd.to_numeric(df["score"], errors="coerce")


def flips_outcome(df: pd.DataFrame, block: str, task: str) -> pd.Series:
    """Regression: whether removing ``block``'s contribution changes the sign of the
    prediction (positive vs non-positive) — where the block decided the outcome. For
    classification only the predicted class's logit is stored, so this is all False."""
    if task != "regression":
        return pd.Series(False, index=df.index)
    pred = df["prediction"]
    return (pred > 0) != ((pred - df[block]) > 0)


SORTS = ("largest |contribution| of a block", "largest error", "id")


def sort_segments(df: pd.DataFrame, by: str, block: str | None = None, task: str = "regression",
                  split: str | None = None, query: str = "", decided_only: bool = False) -> pd.DataFrame:
    """Filter (split, text ``query`` in id/transcript, block flips the outcome) and sort."""
    out = df
    if split and split != "all" and "split" in out.columns:
        out = out[out["split"] == split]
    q = (query or "").strip().lower()
    if q:
        hay = out["id"].astype(str).str.lower()
        if "transcript" in out.columns:
            hay = hay + " " + out["transcript"].astype(str).str.lower()
        out = out[hay.str.contains(q, regex=False)]
    if block and decided_only:
        out = out[flips_outcome(out, block, task)]
    if by == SORTS[0] and block:
        out = out.assign(_k=out[block].abs()).sort_values("_k", ascending=False, kind="stable").drop(columns="_k")
    elif by == SORTS[1]:
        out = out.sort_values("abs_error", ascending=False, kind="stable")
    else:
        out = out.sort_values("id", kind="stable")
    return out


def waterfall(row: pd.Series | dict, blocks: list[str], task: str = "regression") -> pd.DataFrame:
    """step, measure ('absolute' | 'relative' | 'total'), value, cumulative.

    Bias, then each block's contribution (largest |value| first), then the total,
    which equals the prediction (regression) or the predicted class's logit.
    """
    row = dict(row)
    contribs = sorted(((b, float(row[b])) for b in blocks), key=lambda kv: -abs(kv[1]))
    steps = [("bias", "absolute", float(row["bias"]))] + [(b, "relative", v) for b, v in contribs]
    total = float(row["bias"]) + sum(v for _, v in contribs)
    name = "prediction" if task == "regression" else "logit of predicted class"
    steps.append((name, "total", total))
    return _waterfall_frame(steps)


def _waterfall_frame(steps: list[tuple[str, str, float]]) -> pd.DataFrame:
    """(step, measure absolute|relative|total, value) rows with their running total."""
    cum, run = [], 0.0
    for _, m, v in steps:
        run = v if m in ("absolute", "total") else run + v
        cum.append(run)
    return pd.DataFrame({"step": [s[0] for s in steps], "measure": [s[1] for s in steps],
                         "value": [s[2] for s in steps], "cumulative": cum})


def shapley_columns(df: pd.DataFrame) -> list[str]:
    """Modalities with a per-sample Shapley value (``shapley_<m>`` columns of predictions.csv)."""
    return [c[len("shapley_"):] for c in df.columns if c.startswith("shapley_") and c != "shapley_baseline"]


def shapley_waterfall(row: pd.Series | dict, modalities: list[str], task: str = "regression") -> pd.DataFrame:
    """Like :func:`waterfall`, by modality: the baseline (every block at its training-mean
    contribution), then each modality's Shapley value φ_m(x) (largest |value| first), then
    the total = prediction (regression) or the predicted class's logit."""
    row = dict(row)
    phis = sorted(((m, float(row[f"shapley_{m}"])) for m in modalities), key=lambda kv: -abs(kv[1]))
    base = float(row["shapley_baseline"])
    steps = [("baseline", "absolute", base)] + [(f"φ {m}", "relative", v) for m, v in phis]
    name = "prediction" if task == "regression" else "logit of predicted class"
    steps.append((name, "total", base + sum(v for _, v in phis)))
    return _waterfall_frame(steps)
