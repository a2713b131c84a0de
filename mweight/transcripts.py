"""Transcripts: the one reader of ``id,transcript`` CSVs and the one lookup in a dataset file.

``featurize text``, ``prepare mosi``, ``explain`` and the app all read transcripts here, so
one segment shows the same text everywhere.
"""
from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import MWeightError

ID_COLUMNS = ("id", "segment_id")
TEXT_COLUMNS = ("transcript", "text", "raw_text")  # first present wins
# String columns of a prepared dataset that hold the text of a segment, first present wins
# (prepare writes ``transcript``; other converters use ``text_raw`` / ``words`` / ``text``).
DATASET_COLUMNS = ("transcript", "text_raw", "words", "text")


def read_transcripts(path: str | os.PathLike) -> dict[str, str]:
    """``{segment id: transcript}`` from a CSV, in file order.

    Either a header naming ``id`` (or ``segment_id``) and ``transcript`` (or ``text``,
    ``raw_text``), or no header with the id in column 1 and the text in column 2 (CMU-MOSI's
    ``transcripts.csv``: quoted, extra columns). A first row without a digit is a header
    (MOSI segment ids always end in a clip number). MMSA ids ``video$_$clip`` become
    ``video_clip`` as in prepared datasets. Text may be empty; a repeated or empty id is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise MWeightError(f"{path}: file not found (expected a transcripts CSV with columns id,transcript)")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MWeightError(f"{path}: not a readable UTF-8 CSV ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not rows:
        raise MWeightError(f"{path}: empty (expected one segment per line: id,transcript)")
    first = [c.strip().lower() for c in rows[0]]
    if any(c in ID_COLUMNS + TEXT_COLUMNS for c in first) or not any(ch.isdigit() for ch in "".join(first)):
        id_col = next((first.index(c) for c in ID_COLUMNS if c in first), None)
        text_col = next((first.index(c) for c in TEXT_COLUMNS if c in first), None)
        if id_col is None or text_col is None:
            missing = "id" if id_col is None else "transcript"
            raise MWeightError(f"{path}: column '{missing}' missing (header has {', '.join(first)[:120]}; expected "
                               "columns id (or segment_id) and transcript (or text), or no header with id,TEXT)")
        body, start = rows[1:], 2
    else:
        id_col, text_col, body, start = 0, 1, rows, 1
    out: dict[str, str] = {}
    for k, r in enumerate(body, start=start):
        if len(r) <= max(id_col, text_col):
            raise MWeightError(f"{path}: line {k} has {len(r)} column(s) (expected id and transcript)")
        i = r[id_col].strip().replace("$_$", "_")
        if not i:
            raise MWeightError(f"{path}: line {k} has an empty id (expected a segment id)")
        if i in out:
            raise MWeightError(f"{path}: field 'id' has segment '{i}' twice (expected one row per segment)")
        out[i] = r[text_col].strip()
    if not out:
        raise MWeightError(f"{path}: header only (expected one segment per line)")
    return out


def dataset_transcripts(path: str | os.PathLike | None) -> dict[str, str]:
    """``{id: transcript}`` from the first string column of :data:`DATASET_COLUMNS` in a
    dataset ``.npz`` (read lazily); ``{}`` when the file or the column is absent: transcripts
    are optional, so an unreadable file is not an error here (loading the data reports it)."""
    if not path or not Path(path).is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            ids_key = next((k for k in ID_COLUMNS if k in z.files), None)
            col = next((c for c in DATASET_COLUMNS if c in z.files and z[c].dtype.kind in "US"), None)
            if ids_key is None or col is None:
                return {}
            return dict(zip(z[ids_key].astype(str).tolist(), z[col].astype(str).tolist()))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return {}
