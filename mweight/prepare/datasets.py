"""The dataset specs beyond MOSI: CMU-MOSEI, CH-SIMS (and SIMS v2), and any CMU-SDK dataset.

Each is a :class:`.pipeline.DatasetSpec`; the reading, alignment and writing are
the shared pipeline's (``mweight prepare mosei | sims | sdk``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .folds import load_folds, mosei_split_of_video
from .pipeline import DatasetSpec

# The "All Labels" computational sequence's columns, in the SDK's order (CMU_MOSEI/README.md):
# sentiment in [-3, 3], six emotion intensities in [0, 3].
MOSEI_LABELS = ("sentiment", "happy", "sad", "anger", "surprise", "disgust", "fear")


def mosei() -> DatasetSpec:
    return DatasetSpec(
        name="CMU-MOSEI", command="mosei", folds=mosei_split_of_video(),
        folds_desc="standard CMU-MOSEI folds (CMU-SDK cmu_mosei_std_folds: 2249 / 300 / 678 videos)",
        label_range=(-3.0, 3.0), label_names=MOSEI_LABELS, extra_label_range=(0.0, 3.0),
        files_hint="CMU_MOSEI_*.csd (Labels)",
    )


def sims() -> DatasetSpec:
    """CH-SIMS / SIMS v2: MMSA pickles with their own split; every label (also T/A/V) in [-1, 1]."""
    return DatasetSpec(name="CH-SIMS", command="sims", folds=None, label_range=(-1.0, 1.0),
                       extra_label_range=(-1.0, 1.0), files_hint="MMSA unaligned_39.pkl")


def sdk(folds: str | Path, name: str | None = None, label_names: Sequence[str] = ()) -> DatasetSpec:
    """Any CMU-SDK dataset: the user's folds file; labels only need to be finite."""
    names = tuple(label_names) or ("label",)
    return DatasetSpec(
        name=name or "CMU-SDK dataset", command="sdk", folds=load_folds(folds),
        folds_desc=f"folds from {Path(folds).name}", label_range=None, label_what="a label",
        label_names=names, extra_label_range=None,
    )
