"""Sweep results: the table of trials, mean ± std over seeds, results.md, best_config.yaml, plots."""
from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..fileio import atomic_path, write_text
from .space import Func, Space
from .trials import TRIAL_MARKER, Trial, trial_complete


def _value_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v)


def collect_results(trials: list[Trial], status: dict[str, str], errors: dict[str, str], root: Path,
                    metric: str) -> pd.DataFrame:
    """One row per trial: name, status, searched values, valid_*/test_* metrics, share_* per block."""
    from ..runs import load_run

    rows = []
    for t in trials:
        st = status.get(t.name, "interrupted")
        row: dict[str, Any] = {"trial": t.name}
        row.update({k: _value_text(v) if isinstance(v, list) else v for k, v in t.params.items()})
        if trial_complete(t.run_dir, t.key):
            run = load_run(t.run_dir)
            info = json.loads((t.run_dir / TRIAL_MARKER).read_text(encoding="utf-8"))
            row["status"] = "stopped_early" if info.get("status") == "stopped_early" else "finished"
            if st == "skipped":
                row["status"] += " (resumed)"
            row["epochs_run"] = run.metrics.get("info", {}).get("epochs_run")
            row["best_epoch"] = run.metrics.get("info", {}).get("best_epoch")
            for split in ("valid", "test"):
                for k, v in run.metrics.get(split, {}).items():
                    row[f"{split}_{k}"] = v
            for b, v in run.relevance.get("share", {}).items():
                row[f"share_{b}"] = v
            row["seconds"] = run.metrics.get("info", {}).get("seconds")
            row["run_dir"] = os.path.relpath(t.run_dir, root)
        else:
            row["status"] = st if st in ("error", "interrupted") else "incomplete"
            row["error"] = errors.get(t.name, "")
            row["run_dir"] = os.path.relpath(t.run_dir, root)
        rows.append(row)
    table = pd.DataFrame(rows)
    for col in ("epochs_run", "best_epoch"):
        if col in table:
            table[col] = table[col].astype("Int64")
    return table


def rank(table: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    col = f"valid_{metric}"
    if col not in table:
        return table
    return table.sort_values(col, ascending=(mode == "min"), na_position="last", kind="stable")


def group_over_seeds(table: pd.DataFrame, searched: list[str], metric: str, mode: str) -> pd.DataFrame | None:
    """mean ± std over seeds per configuration (only when train.seed varies)."""
    if "train.seed" not in table or table["train.seed"].nunique() < 2 or f"valid_{metric}" not in table:
        return None
    keys = [k for k in searched if k != "train.seed" and k in table]
    ok = table[table["status"].str.startswith(("finished", "stopped_early"))].copy()
    if ok.empty:
        return None
    cols = [c for c in ok.columns if c.startswith(("valid_", "test_", "share_"))]
    if keys:
        for k in keys:
            ok[k] = ok[k].map(_value_text)
        g = ok.groupby(keys, dropna=False, sort=False)
    else:
        g = ok.groupby(lambda _: "base", sort=False)
    mean, std = g[cols].mean(), g[cols].std(ddof=0)
    out = mean.add_suffix("_mean").join(std.add_suffix("_std"))
    out["seeds"] = g["train.seed"].apply(lambda s: ",".join(str(int(x)) for x in sorted(s)))
    out["trials"] = g["trial"].apply(lambda s: ",".join(s))
    out = out.reset_index()
    return out.sort_values(f"valid_{metric}_mean", ascending=(mode == "min"), kind="stable")


def _md_table(df: pd.DataFrame, cols: list[str], params: tuple = ()) -> list[str]:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r.get(c, "")
            if c in params:
                cells.append(_value_text(v))
            elif isinstance(v, float):
                cells.append("" if math.isnan(v) else f"{v:.4f}" if abs(v) < 1e4 else f"{v:.4g}")
            else:
                cells.append(_value_text(v) if v is not None else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _metric_cols(table: pd.DataFrame, task: str) -> list[str]:
    keys = ("mae", "corr", "acc2_non0", "f1_non0", "acc2_has0", "acc7") if task == "regression" else ("acc", "f1")
    return [f"test_{k}" for k in keys if f"test_{k}" in table]


def write_results(root: Path, table: pd.DataFrame, grouped: pd.DataFrame | None, searched: list[str],
                  metric: str, mode: str, task: str, header: list[str]) -> None:
    table = rank(table, metric, mode)
    with atomic_path(root / "results.csv") as tmp:
        table.to_csv(tmp, index=False)
    shares = [c for c in table.columns if c.startswith("share_")]
    cols = ["trial", *[k for k in searched if k in table], "status", "epochs_run", f"valid_{metric}",
            *_metric_cols(table, task), *shares]
    cols = [c for c in cols if c in table]
    direction = "lower" if mode == "min" else "higher"
    lines = ["# Sweep results", "", *header, "",
             f"Trials ranked by the validation metric `valid_{metric}` ({direction} is better; the test split is "
             "reported, never used for selection). `share_<block>` is the block's beta share (sums to 1). "
             "`stopped_early`: stopped by ASHA; its run holds the best epoch up to then.", "",
             *_md_table(table, cols, params=tuple(searched))]
    if grouped is not None:
        g_cols = [c for c in grouped.columns if not c.endswith(("_mean", "_std")) and c not in ("trials",)]
        show = [f"valid_{metric}", *[c[len(""):] for c in _metric_cols(table, task)], *shares]
        gtab = grouped.copy()
        for c in show:
            if f"{c}_mean" in gtab:
                gtab[c] = [f"{m:.4f} ± {s:.4f}" for m, s in zip(gtab[f"{c}_mean"], gtab[f"{c}_std"])]
        lines += ["", "## Mean ± std over seeds (population std)", "",
                  *_md_table(gtab, [*g_cols, *[c for c in show if c in gtab]], params=tuple(searched))]
    errs = table[table["status"].isin(["error"])] if "status" in table else table.iloc[0:0]
    if len(errs) and "error" in errs:
        lines += ["", "## Failed trials", ""] + [f"- {r['trial']}: {r['error']}" for _, r in errs.iterrows()]
    write_text(root / "results.md", "\n".join(lines) + "\n")


def best_trial(table: pd.DataFrame, grouped: pd.DataFrame | None, metric: str, mode: str) -> str | None:
    col = f"valid_{metric}"
    ok = table[table["status"].str.startswith(("finished", "stopped_early"))] if "status" in table else table
    if col not in ok or ok[col].notna().sum() == 0:
        return None
    if grouped is not None and len(grouped):
        return grouped.iloc[0]["trials"].split(",")[0]
    ok = rank(ok, metric, mode)
    return str(ok.iloc[0]["trial"])


def write_best_config(root: Path, trial: Trial, row: dict, metric: str, grouped: bool) -> Path:
    cfg = copy.deepcopy(trial.config)
    cfg["train"]["progress"] = True
    cfg["train"]["threads"] = 0
    what = "best mean validation metric over seeds" if grouped else "best validation metric"
    values = ", ".join(f"{k}={_value_text(v)}" for k, v in trial.params.items() if k != "train.seed")
    text = (f"# Best configuration of this sweep ({what}: valid_{metric} = {row.get(f'valid_{metric}', float('nan')):.4f}"
            f", trial {trial.name}).\n# Searched values: {values or '(none)'}\n"
            f"# Reuse: mweight train --config {root / 'best_config.yaml'} --data FILE.npz --out RUN_DIR\n"
            + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None))
    write_text(root / "best_config.yaml", text)
    return root / "best_config.yaml"


def write_plots(root: Path, table: pd.DataFrame, space: Space, metric: str, mode: str) -> list[Path]:
    """metric_vs_<key>.png for each searched key, beta_shares.png across trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = root / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = table[table["status"].str.startswith(("finished", "stopped_early"))] if "status" in table else table
    col = f"valid_{metric}"
    written = []
    if col not in ok or ok.empty:
        return written
    searched = [k for k in space.searched if k in ok] + (["train.seed"] if "train.seed" in ok and
                                                         "train.seed" not in space.searched else [])
    tcol = f"test_{metric}"
    for key in searched:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        vals = ok[key]
        numeric = pd.api.types.is_numeric_dtype(vals)
        if numeric:
            x = vals.astype(float).to_numpy()
            spec = space.params.get(key)
            if isinstance(spec, Func) and spec.log or (x.min() > 0 and x.max() / max(x.min(), 1e-300) > 100):
                ax.set_xscale("log")
        else:
            cats = list(dict.fromkeys(vals.map(_value_text)))
            x = np.array([cats.index(_value_text(v)) for v in vals], dtype=float)
            ax.set_xticks(range(len(cats)), cats, rotation=20)
        jitter = 0 if numeric else (np.random.default_rng(0).random(len(x)) - 0.5) * 0.15
        ax.scatter(x + jitter, ok[col], label=f"validation {metric}", color="C0")
        if tcol in ok:
            ax.scatter(x + jitter, ok[tcol], label=f"test {metric}", color="C1", marker="x")
        ax.set_xlabel(key)
        ax.set_ylabel(f"{metric} ({'lower' if mode == 'min' else 'higher'} is better)")
        ax.set_title(f"{metric} vs {key}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"metric_vs_{key.replace('.', '_')}.png"
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(path)
    shares = [c for c in ok.columns if c.startswith("share_")]
    if shares:
        ranked = rank(ok, metric, mode)
        fig, ax = plt.subplots(figsize=(max(5.5, 0.45 * len(ranked) + 2), 4))
        bottom = np.zeros(len(ranked))
        for i, c in enumerate(shares):
            v = ranked[c].fillna(0).to_numpy(dtype=float)
            ax.bar(range(len(ranked)), v, bottom=bottom, label=c[len("share_"):], color=f"C{i % 10}")
            bottom += v
        ax.set_xticks(range(len(ranked)), ranked["trial"], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("beta share (sums to 1)")
        ax.set_title(f"beta shares across trials (ranked by validation {metric})")
        ax.legend(fontsize=7, ncol=min(len(shares), 4), loc="upper right")
        fig.tight_layout()
        path = out_dir / "beta_shares.png"
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(path)
    return written
