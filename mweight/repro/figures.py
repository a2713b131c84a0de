"""Figures of the DNA reproduction (matplotlib, Agg backend, PNG).

* ``beta_vs_truth.png``: per experiment/variant of the DNA designs, mean β share and mean
  contribution share per block (bars, ± std) with every seed's β share as a dot and the
  ground-truth share as a red marker;
* ``trajectories.png``: β share per block over epochs (from each run's
  ``history.csv``; thin lines = seeds, thick = mean; dashed = selected epoch);
* ``inflation.png``: the degree-inflation design with ``norm = none`` versus the default (anova),
  share per block side by side, with test accuracy in the legend;
* ``nuisance.png``: the correlated-nuisance design against p, anova versus IterBN: β share and
  contribution share of the nuisance modality and its interaction, and the interaction's
  correlation with the label (the Shapley shares are in the table).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from ..fileio import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def _groups(df: pd.DataFrame, experiments: list[str]) -> list[tuple[str, str]]:
    out = []
    for name in experiments:
        for v in dict.fromkeys(df[df.experiment == name].variant):
            out.append((name, v))
    return out


def beta_vs_truth(df: pd.DataFrame, experiments: list[str], path: Path) -> Path | None:
    plt = _plt()
    groups = _groups(df, [e for e in experiments if e != "nuisance"])  # nuisance: its own figure
    if not groups:
        return None
    ncol = min(4, len(groups))
    nrow = -(-len(groups) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.4 * ncol, 3.7 * nrow), squeeze=False)
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    for ax, (name, variant) in zip(axes.ravel(), groups):
        sub = df[(df.experiment == name) & (df.variant == variant)]
        blocks = list(dict.fromkeys(sub.block))
        x = np.arange(len(blocks))
        mean = [sub[sub.block == b].share.mean() for b in blocks]
        std = [sub[sub.block == b].share.std(ddof=0) for b in blocks]
        truth = [sub[sub.block == b].expected_share.iloc[0] for b in blocks]
        has_contrib = "contribution_share" in sub and not sub.contribution_share.isna().all()
        w = 0.4 if has_contrib else 0.8
        ax.bar(x - (w / 2 if has_contrib else 0), mean, w, yerr=std, color="#4c72b0", alpha=0.85, capsize=2,
               label="β share (mean ± std)")
        if has_contrib:
            cm = [sub[sub.block == b].contribution_share.mean() for b in blocks]
            cs = [sub[sub.block == b].contribution_share.std(ddof=0) for b in blocks]
            ax.bar(x + w / 2, cm, w, yerr=cs, color="#55a868", alpha=0.85, capsize=2,
                   label="contribution share (mean ± std)")
        for i, b in enumerate(blocks):
            vals = sub[sub.block == b].share.to_numpy()
            jitter = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
            ax.scatter(i - (w / 2 if has_contrib else 0) + jitter * w / 0.8, vals, s=8, color="black", zorder=3,
                       label="seeds (β share)" if i == 0 else None)
        ax.scatter(x, truth, marker="_", s=400, linewidths=2.5, color="#c44e52", zorder=4,
                   label="ground truth" if name != "additive" else "p / Σp (reference)")
        ax.set_xticks(x, blocks, rotation=45 if len(blocks) > 6 else 0, ha="right" if len(blocks) > 6 else "center")
        ax.set_ylim(0, 1.05)
        acc = sub.drop_duplicates("seed").test_acc.mean()
        ax.set_title(f"{name} ({sub.norm.iloc[0]}): test acc {acc:.3f}", fontsize=10)
        ax.set_ylabel("β share")
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle("β share and contribution share per block against the ground truth", fontsize=11)
    fig.tight_layout()
    p = _save(fig, path)
    plt.close(fig)
    return p


def trajectories(df: pd.DataFrame, tasks, experiments: list[str], path: Path) -> Path:
    plt = _plt()
    groups = _groups(df, experiments)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (name, variant) in zip(axes[0], groups):
        runs = [t for t in tasks if t.experiment == name and t.variant == variant]
        hists = {t.seed: pd.read_csv(Path(t.run_dir) / "history.csv") for t in runs}
        blocks = list(dict.fromkeys(df[(df.experiment == name) & (df.variant == variant)].block))
        for i, b in enumerate(blocks):
            col = f"share_{b}"
            series = [h.set_index("epoch")[col] for h in hists.values() if col in h]
            for s in series:
                ax.plot(s.index, s.to_numpy(), color=cmap(i % 10), alpha=0.25, lw=0.8)
            if series:
                mean = pd.concat(series, axis=1).mean(axis=1)
                ax.plot(mean.index, mean.to_numpy(), color=cmap(i % 10), lw=2, label=b)
        best = [int(h["best_epoch"].iloc[-1]) for h in hists.values() if "best_epoch" in h and len(h)]
        for e in best:
            ax.axvline(e, color="grey", ls="--", lw=0.6)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("epoch")
        ax.set_ylabel("β share")
        ax.set_title(f"{name} ({variant})", fontsize=10)
        ax.legend(fontsize=7, ncol=2, loc="upper right")
    fig.suptitle("β share over epochs (thin: seeds, thick: mean, dashed: selected epoch)", fontsize=11)
    fig.tight_layout()
    p = _save(fig, path)
    plt.close(fig)
    return p


def iterbn_comparison(df: pd.DataFrame, path: Path) -> Path | None:
    sub = df[df.experiment == "inflation"]
    variants = list(dict.fromkeys(sub.variant))
    if len(variants) < 2:
        return None
    plt = _plt()
    blocks = list(dict.fromkeys(sub.block))
    x = np.arange(len(blocks))
    width = 0.8 / len(variants)
    colors = {"none": "#dd8452", "iterbn": "#55a868", "anova": "#4c72b0"}
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for k, v in enumerate(variants):
        s = sub[sub.variant == v]
        mean = [s[s.block == b].share.mean() for b in blocks]
        std = [s[s.block == b].share.std(ddof=0) for b in blocks]
        acc = s.drop_duplicates("seed").test_acc
        label = f"{'without normalisation (none)' if v == 'none' else v}: test acc {acc.mean():.3f} ± {acc.std(ddof=0):.3f}"
        ax.bar(x + (k - (len(variants) - 1) / 2) * width, mean, width, yerr=std, capsize=3,
               color=colors.get(v), label=label)
    roles = sub.drop_duplicates("block").set_index("block").role
    ax.set_xticks(x, [f"{b}\n({roles.get(b, '')})" if "*" not in b else b for b in blocks], fontsize=8)
    ax.set_ylabel("β share (mean ± std over seeds)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Degree inflation: only m1 carries the label; with versus without normalisation", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = _save(fig, path)
    plt.close(fig)
    return p


def nuisance_figure(df: pd.DataFrame, truth: dict, path: Path) -> Path | None:
    """Three panels against p (log axis): β share and contribution share (log scale) of the nuisance
    modality and its interaction, and |corr(interaction contribution, label)|;
    one colour per norm, thin markers for seeds."""
    sub = df[df.experiment == "nuisance"]
    if sub.empty:
        return None
    gt = truth["ground_truth"]
    (nuis,) = gt["irrelevant_modalities"]
    pair = "*".join(gt["modalities"])
    plt = _plt()
    colors = {"anova": "#4c72b0", "iterbn": "#dd8452"}
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    panels = [("share", "β share", False), ("contribution_share", "contribution share (test)", True),
              ("label_share", f"label share of {pair}: cov(g, y) / cov(f, y) (test)", False)]
    for ax, (col, title, logy) in zip(axes, panels):
        for norm in dict.fromkeys(sub.norm):
            s = sub[sub.norm == norm]
            blocks = [pair] if col == "label_share" else [nuis, pair]
            for b, ls in zip(blocks, ("-", "--")):
                g = s[s.block == b]
                vals = g[col].abs() if col == "label_share" else g[col]
                if vals.isna().all():
                    continue
                ps = sorted(g.p_norm.unique())
                mean = [vals[g.p_norm == p].mean() for p in ps]
                ax.plot(ps, mean, ls, marker="o", color=colors.get(norm), label=f"{norm}: {b}")
                ax.scatter(g.p_norm, vals, s=6, color=colors.get(norm), alpha=0.4)
        if col != "share":
            ax.axhline(0.02, color="grey", ls=":", lw=1, label="threshold 0.02")
        if col == "share":
            ax.axhline(1 / 3, color="grey", ls=":", lw=1, label="1/3 (uniform)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(sub.p_norm.unique()), [f"{p:g}" for p in sorted(sub.p_norm.unique())])
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("p")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(f"Correlated nuisance: {nuis} and {pair} carry no label information (truth: 0); "
                 "anova vs IterBN over p", fontsize=11)
    fig.tight_layout()
    p = _save(fig, path)
    plt.close(fig)
    return p


def draw_all(out: Path, df: pd.DataFrame, tasks, truths: dict, experiments: list[str]) -> list[Path]:
    fdir = Path(out) / "figures"
    dna = [e for e in experiments if e != "nuisance"]
    figs = [beta_vs_truth(df, experiments, fdir / "beta_vs_truth.png")]
    if dna:
        figs.append(trajectories(df, [t for t in tasks if t.experiment in dna], dna, fdir / "trajectories.png"))
    if "inflation" in experiments:
        figs.append(iterbn_comparison(df, fdir / "inflation.png"))
    if "nuisance" in experiments:
        figs.append(nuisance_figure(df, truths["nuisance"], fdir / "nuisance.png"))
    return [f for f in figs if f is not None]
