"""Utterance-level features: the bc-LSTM release and bring-your-own files.

- ``--bclstm DIR``: the layout of ``shared/data/mosi_bclstm_utterance_features``:
  ``mosi_bclstm_features.npz`` (``segment_id``, ``text`` (N,100), ``audio``
  (N,73), ``video`` (N,100), ``label``, ``split``, ``bclstm_split``,
  ``bclstm_protocol``) or, without it, the original CSVs
  ``original/text_{train,test}.csv`` (col 0 = row of ``transcripts.csv``) and
  ``original/{text,audio,video}/<m>_{train,test}0.csv`` (last col = binary label),
  which then need ``--labels`` and ``--transcripts``.
- ``--features MOD=FILE``: one ``.npz`` (``id`` or ``segment_id`` plus ``features``
  or ``MOD``) or ``.csv`` (first column the segment id, the rest numbers; a header
  row is allowed) per modality, keyed by segment id ``<video>_<clip>``.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from ..data import video_of
from ..errors import MWeightError

BCLSTM_NPZ = "mosi_bclstm_features.npz"
BCLSTM_MODALITIES = ("text", "audio", "video")


def _np_load(path: Path):
    if not path.is_file():
        raise MWeightError(f"{path}: file not found")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise MWeightError(f"{path}: not a readable .npz ({type(exc).__name__}: {str(exc)[:80]})") from None


def read_bclstm(directory: str | os.PathLike, labels: dict[str, float] | None = None,
                transcripts: dict[str, str] | None = None) -> dict:
    """Columns (``id``, ``label``, ``text``/``audio``/``video``, ``bclstm_split``, ``bclstm_protocol``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MWeightError(f"{directory}: directory not found (expected the bc-LSTM utterance features folder)")
    npz = directory / BCLSTM_NPZ
    if npz.is_file():
        with _np_load(npz) as d:
            keys = set(d.files)
            need = {"segment_id", "label", "bclstm_split", "bclstm_protocol", *BCLSTM_MODALITIES}
            missing = sorted(need - keys)
            if missing:
                raise MWeightError(f"{npz}: field '{missing[0]}' missing (expected {sorted(need)})")
            out = {"id": d["segment_id"].astype(str), "label": d["label"].astype(np.float32)}
            for m in BCLSTM_MODALITIES:
                out[m] = d[m].astype(np.float32)
            out["bclstm_split"] = d["bclstm_split"].astype(str)
            out["bclstm_protocol"] = d["bclstm_protocol"].astype(str)
        out["_files"] = [npz]
        return out
    return _read_bclstm_csv(directory, labels, transcripts)


def _read_matrix(path: Path) -> np.ndarray:
    if not path.is_file():
        raise MWeightError(f"{path}: file not found (expected the bc-LSTM CSV layout, see --help)")
    import pandas as pd

    try:  # pandas copes with the quoted numbers of the original release
        return pd.read_csv(path, header=None, dtype=np.float64).to_numpy()
    except (ValueError, pd.errors.ParserError) as exc:
        raise MWeightError(f"{path}: not a comma-separated numeric matrix ({str(exc)[:80]})") from None


def bclstm_protocol(ids: np.ndarray, bclstm_split: np.ndarray) -> np.ndarray:
    """train = bc-LSTM train; valid = 10 test videos drawn with RandomState(0) over sorted ids; test = rest."""
    test_videos = sorted({video_of(i) for i, s in zip(ids, bclstm_split) if s == "test"})
    perm = np.random.RandomState(0).permutation(len(test_videos))
    valid = {test_videos[j] for j in perm[:10]}
    return np.array(["train" if s == "train" else ("valid" if video_of(i) in valid else "test")
                     for i, s in zip(ids, bclstm_split)])


def _read_bclstm_csv(directory: Path, labels, transcripts) -> dict:
    orig = directory / "original" if (directory / "original").is_dir() else directory
    if labels is None or transcripts is None:
        raise MWeightError(
            f"{directory}: {BCLSTM_NPZ} not found, and the original CSVs need --labels and --transcripts "
            "(the row index in text_<split>.csv refers to transcripts.csv)")
    order = list(transcripts)
    ids, splits, feats = [], [], {m: [] for m in BCLSTM_MODALITIES}
    files = []
    for split in ("train", "test"):
        index_file = orig / f"text_{split}.csv"
        rows = _read_matrix(index_file)[:, 0].astype(int)
        files.append(index_file)
        if rows.min() < 0 or rows.max() >= len(order):
            raise MWeightError(f"{index_file}: column 0 has row {rows.max()} (expected 0..{len(order) - 1}, rows of the transcripts file)")
        ids += [order[r] for r in rows]
        splits += [split] * len(rows)
        for m in BCLSTM_MODALITIES:
            path = orig / m / f"{m}_{split}0.csv"
            mat = _read_matrix(path)
            files.append(path)
            if len(mat) != len(rows):
                raise MWeightError(f"{path}: {len(mat)} rows (expected {len(rows)}, as in {index_file.name})")
            feats[m].append(mat[:, :-1])
    ids_arr = np.array(ids, dtype=str)
    missing = [i for i in ids if i not in labels]
    if missing:
        raise MWeightError(f"labels: segment '{missing[0]}' missing (expected a label for every bc-LSTM segment)")
    order_idx = sorted(range(len(ids)), key=lambda k: _sort_key(ids[k]))
    split_arr = np.array(splits)[order_idx]
    out = {"id": ids_arr[order_idx], "label": np.array([labels[i] for i in ids_arr[order_idx]], dtype=np.float32)}
    for m in BCLSTM_MODALITIES:
        out[m] = np.concatenate(feats[m]).astype(np.float32)[order_idx]
    out["bclstm_split"] = split_arr
    out["bclstm_protocol"] = bclstm_protocol(out["id"], split_arr)
    out["_files"] = files
    return out


def _sort_key(segment_id: str):
    vid, _, clip = segment_id.rpartition("_")
    return (vid, int(clip)) if clip.isdigit() else (vid, 0, clip)


def read_feature_file(path: str | os.PathLike, modality: str) -> tuple[list[str], np.ndarray]:
    """One bring-your-own feature file: (segment ids, features (N, D) or (N, T, D))."""
    path = Path(path)
    if not path.is_file():
        raise MWeightError(f"{path}: file not found (expected features for modality '{modality}')")
    if path.suffix == ".npz":
        with _np_load(path) as d:
            id_key = "id" if "id" in d.files else "segment_id" if "segment_id" in d.files else None
            feat_key = modality if modality in d.files else "features" if "features" in d.files else None
            if id_key is None:
                raise MWeightError(f"{path}: field 'id' missing (expected 'id' or 'segment_id' with segment ids <video>_<clip>)")
            if feat_key is None:
                raise MWeightError(f"{path}: field '{modality}' missing (expected '{modality}' or 'features' (N, D))")
            ids = [str(x) for x in d[id_key]]
            feats = d[feat_key]  # token ids (e.g. featurize text --tokens) stay integers
            feats = feats.astype(np.int64) if feats.dtype.kind in "iu" else feats.astype(np.float32)
    elif path.suffix in (".csv", ".txt"):
        ids, rows = [], []
        with open(path, newline="", encoding="utf-8") as fh:
            for k, row in enumerate(csv.reader(fh)):
                if not row:
                    continue
                try:
                    values = [float(x) for x in row[1:]]
                except ValueError:
                    if k == 0:
                        continue  # header
                    raise MWeightError(f"{path}: line {k + 1} has a non-numeric value (expected id,f1,f2,...)") from None
                ids.append(row[0].replace("$_$", "_"))
                rows.append(values)
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            raise MWeightError(f"{path}: rows have {sorted(widths)[:4]} values (expected the same width on every line)")
        feats = np.array(rows, dtype=np.float32)
    else:
        raise MWeightError(f"{path}: unknown extension '{path.suffix}' (expected .npz or .csv)")
    if len(ids) != len(feats):
        raise MWeightError(f"{path}: {len(ids)} ids but {len(feats)} feature rows (expected the same number)")
    if len(set(ids)) != len(ids):
        raise MWeightError(f"{path}: field 'id' has duplicate segment ids (expected one row per segment)")
    return [i.replace("$_$", "_") for i in ids], feats


def read_feature_extras(path: str | os.PathLike, modality: str) -> tuple[np.ndarray | None, dict]:
    """``<modality>_lengths`` (rows as in the file; sequences and token ids) and ``meta_json`` of a
    feature ``.npz`` (e.g. the tokenizer written by ``mweight featurize text --tokens``); (None, {}) if absent."""
    path = Path(path)
    if path.suffix != ".npz":
        return None, {}
    with _np_load(path) as d:
        lengths = d[f"{modality}_lengths"].astype(np.int64) if f"{modality}_lengths" in d.files else None
        try:
            meta = json.loads(str(d["meta_json"])) if "meta_json" in d.files else {}
        except ValueError:
            raise MWeightError(f"{path}: field 'meta_json' is not valid JSON") from None
    return lengths, meta if isinstance(meta, dict) else {}
