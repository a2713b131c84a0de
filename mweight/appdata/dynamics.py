"""Training dynamics: β, β share and validation metrics per epoch, in long form for the charts."""
from __future__ import annotations

import pandas as pd

from .groups import RunGroup, metric_label


# ---------------------------------------------------------------- training dynamics
def _seed_name(group: RunGroup, s) -> str:
    if s is not None:
        return str(s)
    seed = (group.runs[0].config.get("train") or {}).get("seed")
    return str(seed) if seed is not None else "run"


def _histories(group: RunGroup):
    """(seed name, run, history.csv) of every run of the group that has a history."""
    for s, r in zip(group.seeds, group.runs):
        if r.history is not None and not r.history.empty:
            yield _seed_name(group, s), r, r.history


def history_long(group: RunGroup, what: str = "share") -> pd.DataFrame:
    """seed, epoch, block, value: β (``what='beta'``) or β share per block per epoch."""
    frames = []
    for seed, _run, h in _histories(group):
        for b in group.blocks:
            col = f"{what}_{b}"
            if col in h.columns:
                frames.append(pd.DataFrame({"seed": seed, "epoch": h["epoch"].astype(int),
                                            "block": b, "value": pd.to_numeric(h[col], errors="coerce")}))
    if not frames:
        return pd.DataFrame(columns=["seed", "epoch", "block", "value"])
    return pd.concat(frames, ignore_index=True)


def valid_metric_long(group: RunGroup) -> pd.DataFrame:
    """seed, epoch, metric, label, value, best_epoch: validation metrics per epoch."""
    frames = []
    for seed, r, h in _histories(group):
        for col in h.columns:
            if not col.startswith("valid_") or col == "valid_loss":
                continue
            k = col[len("valid_"):]
            frames.append(pd.DataFrame({"seed": seed, "epoch": h["epoch"].astype(int),
                                        "metric": k, "label": metric_label(k),
                                        "value": pd.to_numeric(h[col], errors="coerce"),
                                        "best_epoch": int(r.metrics.get("info", {}).get("best_epoch") or 0)}))
    if not frames:
        return pd.DataFrame(columns=["seed", "epoch", "metric", "label", "value", "best_epoch"])
    return pd.concat(frames, ignore_index=True)
