"""Comparing runs: which runs are comparable, and their tables side by side."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import flatten
from ..errors import MWeightError
from .groups import RunEntry, RunGroup, attribution_table, find_entry, metrics_table, safe_join, share_table


# ---------------------------------------------------------------- compare
def comparability_key(root: Path, entry: RunEntry) -> tuple | None:
    """(task, modalities, dataset) of a discovered run from its config.yaml ``_meta``, without
    loading the rest: runs with equal keys are comparable. None if unreadable."""
    import yaml

    from ..runs import seed_dir

    try:
        base = safe_join(root, entry.rel)
        d = seed_dir(base, entry.seeds[0]) if entry.kind == "seeds" else base
        cfg = yaml.safe_load((d / "config.yaml").read_text(encoding="utf-8")) or {}
    except (MWeightError, OSError, yaml.YAMLError, IndexError):
        return None
    meta = cfg.get("_meta") if isinstance(cfg, dict) else None
    if not isinstance(meta, dict):
        return None
    dataset = meta.get("dataset_sha256") or Path(str(meta.get("dataset") or "")).name
    return (meta.get("task"), tuple(meta.get("modalities") or ()), dataset)


def comparable_default(root: Path, entries: list[RunEntry], first: str | None = None, limit: int = 4) -> list[str]:
    """The runs Compare starts with: ``first`` (or the first readable run) and the other
    runs on the same data (same task, modalities and dataset), at most ``limit``."""
    ok = [e for e in entries if e.kind != "broken"]
    if not ok:
        return []
    head = find_entry(ok, first) or ok[0]
    key = comparability_key(root, head)
    same = [e.rel for e in ok if e.rel != head.rel and key is not None and comparability_key(root, e) == key]
    return [head.rel] + same[: limit - 1]


def compare_frames(groups: list[RunGroup]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(shares: run, block, share_mean, share_std; metrics: metric × run 'mean ± std';
    config: the config keys whose values differ between the runs)."""
    shares, metric_rows, configs = [], {}, {}
    for g in groups:
        t = share_table(g)
        t.insert(0, "run", g.name)
        shares.append(t)
        m = metrics_table(g, ("test",))
        for _, r in m.iterrows():
            cell = f"{r['mean']:.4f}" + (f" ± {r['std']:.4f}" if r["n"] > 1 else "")
            metric_rows.setdefault(r["label"], {})[g.name] = cell
        cfg = flatten(g.runs[0].config)
        cfg.pop("train.seed", None)
        cfg.pop("train.progress", None)
        configs[g.name] = cfg
    for t in shares:  # contribution share next to β share, when the run has attribution.json
        g = next(g for g in groups if g.name == t["run"].iloc[0])
        at = attribution_table(g).set_index("block")
        t["contribution_share"] = [float(at.loc[b, "contribution_share"]) if b in at.index else float("nan")
                                   for b in t["block"]]
        t["contribution_share_std"] = [float(at.loc[b, "contribution_share_std"]) if b in at.index
                                       else float("nan") for b in t["block"]]
        t["has_beta"] = g.has_beta
    share_df = pd.concat(shares, ignore_index=True) if shares else pd.DataFrame()
    metrics_df = pd.DataFrame(metric_rows).T
    metrics_df.index.name = "metric (test)"
    keys = sorted({k for c in configs.values() for k in c})
    diff = {k: {n: str(c.get(k, "—")) for n, c in configs.items()} for k in keys
            if len({str(c.get(k, "—")) for c in configs.values()}) > 1}
    config_df = pd.DataFrame(diff).T
    config_df.index.name = "config key"
    return share_df, metrics_df, config_df
