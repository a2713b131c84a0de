"""Against human unimodal labels (CH-SIMS ``label_text/_audio/_video``): does a modality's Shapley
value follow what annotators saw in that modality alone? The numbers are those of ``mweight
evaluate`` (:func:`mweight.attribution.unimodal_label_agreement`), on the run's recorded Shapley
values (``shapley_<m>`` of predictions.csv) over the split of its attribution.json."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MWeightError
from .dynamics import _seed_name
from .groups import RunGroup, inside
from .segments import dataset_path

UNIMODAL_NOTE = ("The closest thing to a ground truth for relevance on real data: does the model's credit to a "
                 "modality (its Shapley value) follow what annotators saw in that modality alone?")
# plain-word column names (shown and downloaded as they are)
HUMAN = "corr(Shapley, human label of the modality)"
MULTI = "corr(Shapley, multimodal label)"
DIFF = "difference (human − multimodal)"
LO, HI = "difference: 95% interval low", "difference: 95% interval high"
UNIMODAL_COLUMNS = ["seed", "modality", HUMAN, MULTI, DIFF, LO, HI, "n", "split"]


def _dataset_unimodal_labels(path: Path, modalities: list[str]) -> pd.DataFrame:
    """``label_<m>`` columns of a dataset file indexed by segment id (read lazily, no pickles);
    an empty frame when there are none."""
    from ..attribution import unimodal_labels
    from ..transcripts import ID_COLUMNS

    with np.load(path, allow_pickle=False) as z:
        labels = unimodal_labels(z, modalities)
        if not labels:
            return pd.DataFrame()
        n = len(next(iter(labels.values())))
        key = next((k for k in ID_COLUMNS if k in z.files), None)
        # without an id column a dataset's ids are the row numbers (mweight.data.load_dataset)
        ids = z[key].astype(str) if key else np.array([str(i) for i in range(n)])
    frame = pd.DataFrame(labels, index=pd.Index(ids, name="id"))
    if not frame.index.is_unique:
        raise MWeightError(f"{path}: field 'id' repeats a segment id (expected one row per segment)")
    return frame


def unimodal_table(root: Path, group: RunGroup) -> pd.DataFrame:
    """Per seed and modality with a human label: corr(φ_m, y_m), corr(φ_m, y), their difference
    with its 95% bootstrap interval over samples, n and split (columns :data:`UNIMODAL_COLUMNS`).

    Empty (with those columns) for classification runs, runs whose dataset file is not found or
    carries no ``label_<m>`` column, and runs without Shapley columns in predictions.csv.
    """
    from ..attribution import unimodal_label_agreement

    empty = pd.DataFrame(columns=UNIMODAL_COLUMNS)
    if group.task != "regression":
        return empty
    rows = []
    for seed, run in zip(group.seeds, group.runs):
        ds_path = dataset_path(root, run)
        if ds_path is None:
            continue
        try:
            human = _dataset_unimodal_labels(ds_path, group.modalities)
        except (OSError, ValueError) as exc:
            raise MWeightError(f"{ds_path}: unreadable dataset ({str(exc)[:160]})") from None
        if human.empty:
            continue
        pred_path = run.path / "predictions.csv"
        if not inside(root, pred_path):
            raise MWeightError(f"{pred_path}: points outside the runs folder; not read")
        pred = run.predictions()
        split = str((group.attribution_for(seed) or {}).get("split") or "test")
        part = pred[pred["split"].astype(str) == split]
        phi = {m: pd.to_numeric(part[f"shapley_{m}"], errors="coerce").to_numpy(np.float64)
               for m in group.modalities if f"shapley_{m}" in part.columns}
        if part.empty or not phi:
            continue
        aligned = human.reindex(part["id"].astype(str))  # a segment the dataset does not label: NaN, left out
        agreement = unimodal_label_agreement(
            phi, pd.to_numeric(part["label"], errors="coerce").to_numpy(np.float64),
            {m: aligned[m].to_numpy(np.float64) for m in human.columns})
        for m, a in agreement.items():
            ci = a.get("pearson_difference_ci") or [float("nan"), float("nan")]
            rows.append({"seed": _seed_name(group, seed), "modality": m, HUMAN: a["pearson_unimodal"],
                         MULTI: a["pearson_multimodal"], DIFF: a["pearson_difference"], LO: ci[0], HI: ci[1],
                         "n": a["n"], "split": split})
    return pd.DataFrame(rows, columns=UNIMODAL_COLUMNS) if rows else empty
