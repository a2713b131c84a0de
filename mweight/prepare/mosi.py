"""``mweight prepare mosi``: every MOSI format into one mweight dataset ``.npz``.

Sources: a folder of CMU-SDK ``.csd`` files (word-aligned sequences or
segment-level vectors), MMSA or MulT/MultiBench pickles (both through the shared
:mod:`.pipeline` with the :data:`MOSI` spec), the bc-LSTM utterance features, or
bring-your-own per-modality files. Every path ends in :func:`.pipeline.finish`,
which checks the labels, adds the standard folds and writes the file atomically
with ``meta_json``. The format is ``docs/DATASET_FORMAT.md``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import MWeightError
from . import pipeline
from .folds import mosi_split_of_video
from .pipeline import (  # noqa: F401  (re-exported: the MOSI command and older imports use them)
    DatasetSpec, Report, _apply_drop, _missing, _sort_key, finish, parse_recipe, read_labels_csv,
    summary, warn,
)
from ..transcripts import read_transcripts

MOSI = DatasetSpec(
    name="CMU-MOSI", command="mosi", folds=mosi_split_of_video(),
    folds_desc="standard CMU-MOSI folds (CMU-SDK cmu_mosi_std_folds)",
    label_range=(-3.0, 3.0), label_names=("sentiment",), files_hint="CMU_MOSI_*.csd (Opinion_Labels)",
)


def prepare_csd(out, **kwargs) -> dict:
    """From CMU-SDK ``.csd`` files (see :func:`.pipeline.prepare_csd`), MOSI folds and labels."""
    return pipeline.prepare_csd(out, MOSI, **kwargs)


def prepare_pickle(out, path, kind: str, options: dict) -> dict:
    """From an MMSA or MulT/MultiBench MOSI pickle; split from the pickle."""
    return pipeline.prepare_pickle(out, path, kind, options, MOSI)


def prepare_bclstm(out, directory, labels_csv=None, transcripts_csv=None, options: dict | None = None) -> dict:
    """From the bc-LSTM utterance features; keeps ``bclstm_split`` and ``bclstm_protocol`` (see leakage note)."""
    from .features import read_bclstm

    labels = {k: v["label"] for k, v in read_labels_csv(labels_csv).items()} if labels_csv else None
    transcripts = read_transcripts(transcripts_csv) if transcripts_csv else None
    cols = read_bclstm(directory, labels, transcripts)
    report = Report(files=list(cols.pop("_files")))
    if labels_csv:
        report.files.append(Path(labels_csv))
    if transcripts is not None:
        report.files.append(Path(transcripts_csv))
        cols["transcript"] = np.array([transcripts.get(i, "") for i in cols["id"]], dtype=str)
    report.notes.append("LEAKAGE: the bc-LSTM text/video features were trained on bclstm_split=train; "
                        "report numbers with --split-key bclstm_protocol, use the standard split only for pipeline tests")
    leak = "the bc-LSTM text/video extractors were trained with labels on bclstm_split=train"
    report.extra["leaky_split_keys"] = {"split": leak, "bclstm_split": leak}
    return finish(out, cols, report, f"bclstm:{directory}", options or {}, MOSI)


def prepare_features(out, specs: Mapping[str, str], labels_csv, transcripts_csv=None, missing: str = "error",
                     options: dict | None = None) -> dict:
    """Bring your own: one file per modality keyed by segment id, labels from ``labels_csv``."""
    from .features import read_feature_extras, read_feature_file

    if labels_csv is None:
        raise MWeightError("--features needs --labels CSV (segment_id,label or OpinionLevelSentiment.csv)")
    table = read_labels_csv(labels_csv)
    report = Report(files=[Path(labels_csv)] + [Path(p) for p in specs.values()])
    ids = sorted(table, key=_sort_key)
    cols: dict = {}
    dropped: set[str] = set()
    for mod, path in specs.items():
        fids, feats = read_feature_file(path, mod)
        pos = {i: k for k, i in enumerate(fids)}
        extra = [i for i in fids if i not in table]
        if extra:
            report.notes.append(f"{len(extra)} row(s) of {Path(path).name} have no label and were ignored")
        lost = [i for i in ids if i not in pos]
        _missing(missing, f"{mod} features", lost, str(path), report)
        mat = np.zeros((len(ids),) + feats.shape[1:], dtype=feats.dtype if feats.dtype.kind == "i" else np.float32)
        have = [k for k, i in enumerate(ids) if i in pos]
        mat[have] = feats[[pos[ids[k]] for k in have]]
        cols[mod] = mat
        lengths, fmeta = read_feature_extras(path, mod)  # token ids / sequences keep their lengths
        if lengths is not None:
            cols[f"{mod}_lengths"] = np.zeros(len(ids), dtype=np.int64)
            cols[f"{mod}_lengths"][have] = lengths[[pos[ids[k]] for k in have]]
        if fmeta:
            report.extra.setdefault("feature_meta", {})[mod] = fmeta
        if missing == "drop":
            dropped.update(lost)
    cols["id"] = np.array(ids, dtype=str)
    cols["label"] = np.array([table[i]["label"] for i in ids], dtype=np.float64)
    if transcripts_csv:
        tr = read_transcripts(transcripts_csv)
        report.files.append(Path(transcripts_csv))
        cols["transcript"] = np.array([tr.get(i, "") for i in ids], dtype=str)
    cols = _apply_drop(cols, dropped)
    return finish(out, cols, report, f"features:{labels_csv}", options or {}, MOSI)
