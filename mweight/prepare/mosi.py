"""``mweight prepare mosi``: every MOSI format into one mweight dataset ``.npz``.

Sources: a folder of CMU-SDK ``.csd`` files (word-aligned sequences or
segment-level vectors), MMSA or MulT/MultiBench pickles, the bc-LSTM utterance
features, or bring-your-own per-modality files. Every path ends in
:func:`write_dataset`, which checks the labels, adds the standard folds and
writes the file atomically with ``meta_json`` (source files + SHA-256, options,
counts per split). The format is ``docs/DATASET_FORMAT.md``.
"""
from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import MWeightError
from ..fileio import atomic_path
from . import align as _align
from .csd import ComputationalSequence, read_csd, sha256_of
from .folds import mosi_split_of_video, video_of

LABEL_RANGE = (-3.0, 3.0)
ROLES = ("labels", "words", "text", "audio", "video")
# Recognised file names, best first within a role (lower-cased file stem).
ROLE_PATTERNS: dict[str, tuple[str, ...]] = {
    "labels": ("opinion_labels", "sentiment", "labels"),
    "words": ("modifiedtimestampedwords", "timestampedwords", "words"),
    "text": ("timestampedwordvectors", "wordvectors", "glove", "bert", "bclstm_text", "text"),
    "audio": ("covarep", "opensmile", "bclstm_audio", "audio", "acoustic"),
    "video": ("facet_41", "facet41", "facet_42", "facet42", "facet", "openface", "bclstm_video", "visual", "video"),
}


@dataclass
class Report:
    """What a preparation did, for ``meta_json`` and the summary line."""

    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def drop(self, reason: str, ids) -> None:
        ids = [str(i) for i in ids]
        if ids:
            self.dropped.setdefault(reason, []).extend(ids)


# ----------------------------------------------------------------------------- csv inputs


def read_labels_csv(path: str | os.PathLike) -> dict[str, dict]:
    """Segment labels: ``OpinionLevelSentiment.csv`` (no header: start, end, video, clip, label)
    or a CSV with a header holding ``segment_id``/``id``, ``label`` and optionally ``start``, ``end``."""
    path = Path(path)
    if not path.is_file():
        raise MWeightError(f"{path}: file not found (expected a labels CSV)")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if not rows:
        raise MWeightError(f"{path}: empty (expected one labelled segment per line)")
    out: dict[str, dict] = {}
    header = [c.strip().lower() for c in rows[0]]
    try:
        if "label" in header:
            id_col = header.index("segment_id") if "segment_id" in header else header.index("id")
            lab = header.index("label")
            st = header.index("start") if "start" in header else None
            en = header.index("end") if "end" in header else None
            for k, r in enumerate(rows[1:], start=2):
                sid = r[id_col].replace("$_$", "_")
                out[sid] = {"label": float(r[lab]), "start": float(r[st]) if st is not None else None,
                            "end": float(r[en]) if en is not None else None, "line": k}
        else:
            for k, r in enumerate(rows, start=1):
                if len(r) < 5:
                    raise MWeightError(f"{path}: line {k} has {len(r)} columns (expected start,end,video_id,clip,sentiment)")
                sid = f"{r[2]}_{int(r[3])}"
                out[sid] = {"label": float(r[4]), "start": float(r[0]), "end": float(r[1]), "line": k}
    except (ValueError, IndexError) as exc:
        raise MWeightError(f"{path}: unreadable labels ({str(exc)[:80]}; expected OpinionLevelSentiment.csv "
                           "columns or a header with segment_id,label[,start,end])") from None
    return out


def read_transcripts_csv(path: str | os.PathLike) -> dict[str, str]:
    """``transcripts.csv`` (no header: segment id, TEXT, ...) or a CSV with ``segment_id``/``id`` and ``text`` columns."""
    path = Path(path)
    if not path.is_file():
        raise MWeightError(f"{path}: file not found (expected a transcripts CSV)")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r]
    out: dict[str, str] = {}
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "text" in header and ("segment_id" in header or "id" in header):
        i = header.index("segment_id") if "segment_id" in header else header.index("id")
        t = header.index("text")
        for r in rows[1:]:
            out[r[i].replace("$_$", "_")] = r[t] if t < len(r) else ""
    else:
        for k, r in enumerate(rows, start=1):
            if len(r) < 2:
                raise MWeightError(f"{path}: line {k} has {len(r)} column(s) (expected segment_id,TEXT,...)")
            out[r[0].replace("$_$", "_")] = r[1]
    return out


# ----------------------------------------------------------------------------- output


def check_labels(labels: np.ndarray, ids: np.ndarray, source: str) -> None:
    """Labels must be finite sentiment scores in [-3, 3]."""
    labels = np.asarray(labels, dtype=np.float64)
    bad = ~np.isfinite(labels) | (labels < LABEL_RANGE[0]) | (labels > LABEL_RANGE[1])
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise MWeightError(f"{source}: field 'label' of segment '{ids[k]}' is {labels[k]:g} "
                           f"(expected a sentiment in [-3, 3]; {int(bad.sum())} such segment(s))")


def _sort_key(segment_id: str):
    vid, _, clip = segment_id.rpartition("_")
    return (vid, int(clip) if clip.isdigit() else -1, clip)


def write_dataset(out: str | os.PathLike, columns: Mapping[str, np.ndarray], meta: dict) -> Path:
    """Write the dataset atomically; ``columns`` in the order they should appear."""
    out = Path(out)
    if out.suffix != ".npz":
        raise MWeightError(f"{out}: --out must end in .npz (the mweight dataset format)")
    arrays = {}
    for k, v in columns.items():
        v = np.asarray(v)
        if v.dtype.kind == "O":
            v = v.astype(str)
        arrays[k] = v
    arrays["meta_json"] = np.array(json.dumps(meta, default=str))
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return out


def finish(out, cols: dict, report: Report, source: str, options: dict, split_from: str = "folds") -> dict:
    """Common tail: check labels, add split (standard folds), sort, drop, write; returns meta."""
    ids = np.asarray(cols["id"]).astype(str)
    check_labels(cols["label"], ids, source)
    if split_from == "folds":
        fold = mosi_split_of_video()
        split = np.array([fold.get(video_of(i), "") for i in ids])
        not_in = split == ""
        if not_in.any():
            report.drop("video_not_in_standard_folds", ids[not_in])
            report.notes.append(f"{int(not_in.sum())} segment(s) of videos outside the standard MOSI folds dropped")
        keep = ~not_in
    else:
        split = np.asarray(cols["split"]).astype(str)
        keep = np.ones(len(ids), bool)
    order = sorted(np.flatnonzero(keep), key=lambda k: _sort_key(ids[k]))
    order = np.array(order, dtype=np.int64)
    if len(order) == 0:
        raise MWeightError(f"{source}: no segment left to write (expected labelled MOSI segments of the standard folds)")
    columns: dict[str, np.ndarray] = {
        "label": np.asarray(cols["label"], dtype=np.float32)[order],
        "split": split[order].astype(str),
        "id": ids[order],
    }
    modalities = {}
    for k, v in cols.items():
        if k in ("label", "split", "id") or k.startswith("_") or k.endswith("_lengths"):
            continue
        v = np.asarray(v)
        if v.dtype.kind in "fiu":
            columns[k] = v[order].astype(np.float32) if v.dtype.kind == "f" else v[order]
            modalities[k] = list(columns[k].shape[1:])
            if f"{k}_lengths" in cols:
                columns[f"{k}_lengths"] = np.asarray(cols[f"{k}_lengths"], dtype=np.int64)[order]
    for k, v in cols.items():
        if k not in columns and not k.startswith("_") and np.asarray(v).dtype.kind in "US":
            columns[k] = np.asarray(v).astype(str)[order]
    counts = {s: int((columns["split"] == s).sum()) for s in ("train", "valid", "test")}
    try:
        from .. import __version__ as version
    except Exception:
        version = "unknown"
    meta = {
        "format": "mweight-dataset/1",
        "dataset": "CMU-MOSI",
        "created_by": f"mweight {version} prepare mosi",
        "source": source,
        "files": [{"path": str(Path(p).resolve()), "sha256": sha256_of(p)} for p in report.files if Path(p).is_file()],
        "options": options,
        "split": "standard CMU-MOSI folds (CMU-SDK cmu_mosi_std_folds)" if split_from == "folds" else split_from,
        "n": int(len(order)),
        "counts": counts,
        "modalities": modalities,
        "dropped": {k: {"count": len(v), "ids": v[:200]} for k, v in report.dropped.items()},
        "notes": report.notes,
        **report.extra,
    }
    write_dataset(out, columns, meta)
    return meta


# ----------------------------------------------------------------------------- .csd folder


def find_csd_files(directory: str | os.PathLike) -> tuple[dict[str, Path], list[str]]:
    """Map roles (labels/words/text/audio/video) to the standard SDK file names in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MWeightError(f"{directory}: directory not found (expected a folder of CMU-SDK .csd files)")
    files = sorted(directory.glob("*.csd")) + sorted(directory.glob("*/*.csd"))
    if not files:
        raise MWeightError(f"{directory}: no .csd files found (expected CMU_MOSI_*.csd computational sequences)")
    best: dict[str, tuple[int, Path]] = {}
    notes = []
    for f in files:
        stem = f.stem.lower().replace(" ", "_").replace(".", "")
        for role in ("labels", "text", "words", "audio", "video"):  # text before words: "wordvectors"
            pats = ROLE_PATTERNS[role]
            rank = next((i for i, p in enumerate(pats) if p in stem), None)
            if rank is not None:
                if role in best and best[role][0] <= rank:
                    notes.append(f"{f.name} not used for {role} ({best[role][1].name} preferred; use --{role}-csd to choose)")
                else:
                    if role in best:
                        notes.append(f"{best[role][1].name} not used for {role} ({f.name} preferred)")
                    best[role] = (rank, f)
                break
        else:
            notes.append(f"{f.name} not recognised (map it with --recipe ROLE=FILE)")
    return {r: p for r, (_, p) in best.items()}, notes


def parse_recipe(recipe: str | None, base: Path | None) -> dict[str, Path]:
    """``ROLE=FILE,ROLE=FILE`` or a JSON/YAML file mapping roles to files (relative to ``base``)."""
    if not recipe:
        return {}
    mapping: dict[str, str]
    if Path(recipe).is_file():
        text = Path(recipe).read_text(encoding="utf-8")
        try:
            import yaml

            mapping = yaml.safe_load(text)
        except Exception as exc:
            raise MWeightError(f"{recipe}: unreadable recipe ({str(exc)[:80]}; expected a mapping ROLE: FILE)") from None
        if not isinstance(mapping, dict):
            raise MWeightError(f"{recipe}: recipe is not a mapping (expected ROLE: FILE lines)")
    else:
        mapping = {}
        for part in recipe.split(","):
            if "=" not in part:
                raise MWeightError(f"--recipe: '{part}' is not ROLE=FILE (roles: {', '.join(ROLES)})")
            k, v = part.split("=", 1)
            mapping[k.strip()] = v.strip()
    out = {}
    for role, f in mapping.items():
        if role not in ROLES:
            raise MWeightError(f"--recipe: unknown role '{role}' (expected one of {', '.join(ROLES)})")
        p = Path(str(f))
        if not p.is_absolute() and base is not None and not p.exists():
            p = base / p
        out[role] = p
    return out


@dataclass
class _Labels:
    """Per video: segment ids (None for zero-length rows), intervals, values."""

    ids: dict[str, list[str]]
    intervals: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    source: str


def _labels_from_csd(seq: ComputationalSequence) -> _Labels:
    ids, ints, vals = {}, {}, {}
    for vid, (f, iv) in seq.data.items():
        if f.dtype.kind not in "f" or f.shape[1] < 1:
            raise MWeightError(f"{seq.path}: field 'data/{vid}/features' is {f.dtype} {f.shape} (expected (n_segments, 1) sentiment)")
        ids[vid] = [f"{vid}_{j + 1}" for j in range(len(iv))]  # the SDK's vid[j] is clip j+1
        ints[vid] = iv
        vals[vid] = f[:, 0].astype(np.float64)
    return _Labels(ids, ints, vals, str(seq.path))


def _labels_from_csv(table: dict[str, dict], path: str) -> _Labels:
    by_vid: dict[str, list] = {}
    for sid, row in table.items():
        if row["start"] is None or row["end"] is None:
            raise MWeightError(f"{path}: columns 'start'/'end' missing (expected segment times to align .csd files)")
        by_vid.setdefault(video_of(sid), []).append((sid, row))
    ids, ints, vals = {}, {}, {}
    for vid, rows in by_vid.items():
        rows.sort(key=lambda r: _sort_key(r[0]))
        ids[vid] = [r[0] for r in rows]
        ints[vid] = np.array([[r[1]["start"], r[1]["end"]] for r in rows], dtype=np.float64)
        vals[vid] = np.array([r[1]["label"] for r in rows], dtype=np.float64)
    return _Labels(ids, ints, vals, path)


def _is_sp(tokens: np.ndarray) -> np.ndarray:
    return np.char.lower(np.char.strip(tokens.astype(str))) == "sp"


def prepare_csd(
    out: str | os.PathLike,
    csd_dir: str | os.PathLike | None = None,
    files: Mapping[str, str | os.PathLike] | None = None,
    labels_csv: str | os.PathLike | None = None,
    transcripts_csv: str | os.PathLike | None = None,
    level: str = "word",
    seq_len: int = 50,
    keep_sp: bool = False,
    epsilon: float = _align.EPSILON,
    missing: str = "error",
) -> dict:
    """Prepare from CMU-SDK computational sequences (see ``mweight prepare mosi --help``)."""
    report = Report()
    roles: dict[str, Path] = {}
    if csd_dir is not None:
        found, notes = find_csd_files(csd_dir)
        roles.update(found)
        report.notes += notes
    roles.update({k: Path(v) for k, v in (files or {}).items() if v})
    if labels_csv is not None:
        roles.pop("labels", None)
    if "labels" not in roles and labels_csv is None:
        raise MWeightError(f"{csd_dir or 'prepare'}: no labels (expected CMU_MOSI_Opinion_Labels.csd, --labels-csd or --labels CSV)")
    seqs = {role: read_csd(p, progress=True) for role, p in roles.items()}
    report.files += list(roles.values())
    if labels_csv is not None:
        labels = _labels_from_csv(read_labels_csv(labels_csv), str(labels_csv))
        report.files.append(Path(labels_csv))
    else:
        labels = _labels_from_csd(seqs.pop("labels"))
    mods = {r: s for r, s in seqs.items() if r in ("text", "audio", "video")}
    words = seqs.get("words")
    if words is not None and not words.is_words:
        raise MWeightError(f"{words.path}: field 'features' holds numbers (expected word tokens for the words role; map it with --text-csd)")
    for r, s in mods.items():
        if s.is_words:
            raise MWeightError(f"{s.path}: field 'features' holds words (expected numeric features for {r}; use --words-csd)")
    if not mods and words is None:
        raise MWeightError(f"{csd_dir or 'prepare'}: no feature .csd (expected words, word vectors, COVAREP, FACET, ... files)")
    # The SDK's unify: only videos present in every sequence.
    videos = set(labels.ids)
    for s in list(mods.values()) + ([words] if words is not None else []):
        gone = videos - set(s.data)
        if gone:
            report.notes.append(f"{len(gone)} labelled video(s) missing from {Path(s.path).name} dropped")
            report.drop(f"video_missing_in_{Path(s.path).name}", sorted(gone))
        videos &= set(s.data)
    videos = sorted(videos)
    if not videos:
        raise MWeightError(f"{csd_dir or 'prepare'}: no video is in every .csd file (expected shared video ids)")
    options = {"level": level, "seq_len": seq_len, "keep_sp": keep_sp, "epsilon": epsilon, "missing": missing,
               "roles": {r: str(p) for r, p in roles.items()}, "collapse": "mean of finite values (SDK align semantics)"}
    if level == "segment":
        cols = _segment_level(labels, mods, videos, epsilon, missing, report)
    elif level == "word":
        cols = _word_level(labels, mods, words, videos, seq_len, keep_sp, epsilon, missing, report)
    else:
        raise MWeightError(f"--level: '{level}' (expected word or segment)")
    if transcripts_csv is not None:
        tr = read_transcripts_csv(transcripts_csv)
        report.files.append(Path(transcripts_csv))
        cols["transcript"] = np.array([tr.get(i, "") for i in cols["id"]], dtype=str)
    return finish(out, cols, report, f"csd:{csd_dir or ','.join(map(str, roles.values()))}", options)


def _flat_labels(labels: _Labels, videos, epsilon, report: Report):
    """Segment ids, labels and a per-video mask of non-zero-length segments."""
    keep = {}
    for vid in videos:
        iv = labels.intervals[vid]
        ok = ~(np.abs(iv[:, 0] - iv[:, 1]) < epsilon)
        report.drop("zero_length_segment", [labels.ids[vid][j] for j in np.flatnonzero(~ok)])
        keep[vid] = ok
    return keep


def _missing(policy: str, what: str, seg_ids: list[str], source: str, report: Report) -> None:
    if not seg_ids:
        return
    if policy == "error":
        raise MWeightError(f"{source}: segment '{seg_ids[0]}' has no {what} ({len(seg_ids)} segment(s); "
                           "expected frames overlapping every labelled segment; use --missing zeros|drop)")
    report.notes.append(f"{len(seg_ids)} segment(s) without {what}: {'zero-filled' if policy == 'zeros' else 'dropped'}")
    if policy == "drop":
        report.drop(f"no_{what.replace(' ', '_')}", seg_ids)


def _segment_level(labels: _Labels, mods, videos, epsilon, missing, report) -> dict:
    keep = _flat_labels(labels, videos, epsilon, report)
    ids = [i for v in videos for i, k in zip(labels.ids[v], keep[v]) if k]
    label = np.concatenate([labels.values[v][keep[v]] for v in videos])
    index = {i: n for n, i in enumerate(ids)}
    cols: dict = {"id": np.array(ids, dtype=str), "label": label}
    dropped: set[str] = set()
    for role in ("text", "audio", "video"):
        if role not in mods:
            continue
        seq = mods[role]
        out = np.zeros((len(ids), seq.dim), dtype=np.float32)
        have = np.zeros(len(ids), bool)
        ref = {v: (None, labels.intervals[v]) for v in videos}
        aligned = _align.align(ref, seq.data, "mean", epsilon, progress=True, desc=f"{role} -> segments")
        for vid, a in aligned.items():
            rows = [index[labels.ids[vid][r]] for r in a.ref_rows if keep[vid][r]]
            sel = [k for k, r in enumerate(a.ref_rows) if keep[vid][r]]
            out[rows] = a.features[sel]
            have[rows] = True
        lost = [ids[k] for k in np.flatnonzero(~have)]
        _missing(missing, f"{role} frames", lost, str(seq.path), report)
        if missing == "drop":
            dropped.update(lost)
        cols[role] = out
    return _apply_drop(cols, dropped)


def _apply_drop(cols: dict, dropped: set[str]) -> dict:
    if not dropped:
        return cols
    mask = np.array([i not in dropped for i in cols["id"]])
    return {k: (np.asarray(v)[mask] if not k.startswith("_") else v) for k, v in cols.items()}


def _word_level(labels: _Labels, mods, words, videos, seq_len, keep_sp, epsilon, missing, report) -> dict:
    if seq_len < 1:
        raise MWeightError(f"--seq-len: {seq_len} (expected a positive number of words)")
    ref_role = "words" if words is not None else ("text" if "text" in mods else None)
    if ref_role is None:
        raise MWeightError("--level word: no words or word-vector .csd (expected CMU_MOSI_TimestampedWords or "
                           "..._TimestampedWordVectors; use --level segment for frame features only)")
    ref = words if ref_role == "words" else mods["text"]
    keep = _flat_labels(labels, videos, epsilon, report)
    others = {r: s for r, s in mods.items() if not (ref_role == "text" and r == "text")}
    per_word: dict[str, dict[str, np.ndarray]] = {r: {} for r in others}
    imputed = {r: 0 for r in others}
    # Step 1 (SDK align to the words with collapse=mean, then impute zeros): one vector per word.
    for role, seq in others.items():
        aligned = _align.align(ref.data, seq.data, "mean", epsilon, progress=True, desc=f"{role} -> words")
        for vid in videos:
            n_words = len(ref.data[vid][1])
            mat = np.zeros((n_words, seq.dim), dtype=np.float32)  # SDK impute(): zeros
            a = aligned[vid]
            mat[a.ref_rows] = a.features
            imputed[role] += n_words - len(a.ref_rows)
            per_word[role][vid] = mat
    if ref_role == "text":
        per_word["text"] = {v: ref.data[v][0].astype(np.float32) for v in videos}
    # Step 2 (SDK align to the labels without collapse): the words of each segment.
    seg_ids, seg_labels, seg_words, seg_video = [], [], [], []
    for vid in videos:
        w_int = ref.data[vid][1]
        valid = np.flatnonzero(~(np.abs(w_int[:, 0] - w_int[:, 1]) < epsilon))  # the ref's own zero-length rows are gone
        ref_idx, sub_idx, _ = _align.overlaps(labels.intervals[vid], w_int[valid], epsilon)
        word_rows = valid[sub_idx]
        if words is not None and not keep_sp:
            tokens = words.data[vid][0][word_rows, 0]
            nsp = ~_is_sp(tokens)
            ref_idx, word_rows = ref_idx[nsp], word_rows[nsp]
        bounds = np.searchsorted(ref_idx, np.arange(len(labels.ids[vid]) + 1))
        for j, sid in enumerate(labels.ids[vid]):
            if not keep[vid][j]:
                continue
            seg_ids.append(sid)
            seg_labels.append(labels.values[vid][j])
            seg_words.append(word_rows[bounds[j]:bounds[j + 1]])
            seg_video.append(vid)
    empty = [s for s, w in zip(seg_ids, seg_words) if len(w) == 0]
    _missing(missing, "words", empty, str(ref.path), report)
    if missing == "drop" and empty:
        gone = set(empty)
        kept = [k for k, s in enumerate(seg_ids) if s not in gone]
        seg_ids = [seg_ids[k] for k in kept]
        seg_labels = [seg_labels[k] for k in kept]
        seg_words = [seg_words[k] for k in kept]
        seg_video = [seg_video[k] for k in kept]
    n = len(seg_ids)
    full_len = np.array([len(w) for w in seg_words], dtype=np.int64)
    lengths = np.minimum(full_len, seq_len)
    cols: dict = {"id": np.array(seg_ids, dtype=str), "label": np.array(seg_labels, dtype=np.float64)}
    # Flat (segment, position, video, word) arrays: one vectorised gather per video and modality.
    seg_of = np.repeat(np.arange(n), lengths)
    pos = np.concatenate([np.arange(L) for L in lengths]) if n else np.zeros(0, np.int64)
    word_of = np.concatenate([w[:seq_len] for w in seg_words]) if n else np.zeros(0, np.int64)
    vid_of = np.repeat(np.array(seg_video, dtype=object), lengths)
    order = ["text", "audio", "video"]
    if "text" not in per_word and words is not None:
        # Words only: token ids (0 = padding) with the vocabulary in meta_json.
        tokens = np.concatenate([words.data[v][0][:, 0] for v in videos])
        vocab = sorted(set(tokens[~_is_sp(tokens)].tolist()) | ({"sp"} if keep_sp else set()))
        lookup = {t: k + 1 for k, t in enumerate(vocab)}
        ids_mat = np.zeros((n, seq_len), dtype=np.int64)
        for vid in videos:
            sel = vid_of == vid
            toks = words.data[vid][0][word_of[sel], 0]
            ids_mat[seg_of[sel], pos[sel]] = [lookup.get(t, 0) for t in toks]
        cols["text"] = ids_mat
        cols["text_lengths"] = lengths
        report.extra["text_vocab"] = vocab
        report.notes.append("text = word token ids (0 = padding; vocabulary in meta_json text_vocab); add a word-vector .csd for GloVe features")
    for role in order:
        if role not in per_word:
            continue
        dim = next(iter(per_word[role].values())).shape[1]
        mat = np.zeros((n, seq_len, dim), dtype=np.float32)
        for vid in videos:
            sel = vid_of == vid
            mat[seg_of[sel], pos[sel]] = per_word[role][vid][word_of[sel]]
        cols[role] = mat
        cols[f"{role}_lengths"] = lengths
    if words is not None:
        cols["transcript"] = np.array(
            [" ".join(t for t in words.data[v][0][w, 0] if t.strip().lower() != "sp") for v, w in zip(seg_video, seg_words)],
            dtype=str)
    report.extra["words_per_segment"] = {"mean": float(full_len.mean()) if n else 0.0, "max": int(full_len.max()) if n else 0,
                                         "truncated": int((full_len > seq_len).sum())}
    report.extra["words_without_frames_zero_filled"] = imputed
    report.notes.append(f"word-level: first {seq_len} words per segment kept, padding at the end"
                        + ("" if keep_sp else "; 'sp' pause tokens dropped"))
    return cols


# ----------------------------------------------------------------------------- other sources


def prepare_pickle(out, path, kind: str, options: dict) -> dict:
    """From an MMSA (``kind='mmsa'``) or MulT/MultiBench (``kind='mult'``) pickle; split from the pickle."""
    from .pickles import read_mmsa, read_mult

    cols = read_mmsa(path) if kind == "mmsa" else read_mult(path)
    report = Report(files=[Path(path)])
    report.extra["pickle"] = cols.pop("_source")
    cols.pop("_videos", None)
    report.notes.append("split taken from the pickle's train/valid/test keys")
    return finish(out, cols, report, f"{kind}:{path}", options, split_from=f"{kind} pickle keys train/valid/test")


def prepare_bclstm(out, directory, labels_csv=None, transcripts_csv=None, options: dict | None = None) -> dict:
    """From the bc-LSTM utterance features; keeps ``bclstm_split`` and ``bclstm_protocol`` (see leakage note)."""
    from .features import read_bclstm

    labels = {k: v["label"] for k, v in read_labels_csv(labels_csv).items()} if labels_csv else None
    transcripts = read_transcripts_csv(transcripts_csv) if transcripts_csv else None
    cols = read_bclstm(directory, labels, transcripts)
    report = Report(files=list(cols.pop("_files")))
    if labels_csv:
        report.files.append(Path(labels_csv))
    if transcripts is not None:
        report.files.append(Path(transcripts_csv))
        cols["transcript"] = np.array([transcripts.get(i, "") for i in cols["id"]], dtype=str)
    report.notes.append("LEAKAGE: the bc-LSTM text/video features were trained on bclstm_split=train; "
                        "report numbers with --split-key bclstm_protocol, use the standard split only for pipeline tests")
    return finish(out, cols, report, f"bclstm:{directory}", options or {})


def prepare_features(out, specs: Mapping[str, str], labels_csv, transcripts_csv=None, missing: str = "error",
                     options: dict | None = None) -> dict:
    """Bring your own: one file per modality keyed by segment id, labels from ``labels_csv``."""
    from .features import read_feature_file

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
        mat = np.zeros((len(ids),) + feats.shape[1:], dtype=np.float32)
        have = [k for k, i in enumerate(ids) if i in pos]
        mat[have] = feats[[pos[ids[k]] for k in have]]
        cols[mod] = mat
        if missing == "drop":
            dropped.update(lost)
    cols["id"] = np.array(ids, dtype=str)
    cols["label"] = np.array([table[i]["label"] for i in ids], dtype=np.float64)
    if transcripts_csv:
        tr = read_transcripts_csv(transcripts_csv)
        report.files.append(Path(transcripts_csv))
        cols["transcript"] = np.array([tr.get(i, "") for i in ids], dtype=str)
    cols = _apply_drop(cols, dropped)
    return finish(out, cols, report, f"features:{labels_csv}", options or {})


def summary(meta: dict, out) -> str:
    c = meta["counts"]
    mods = ", ".join(f"{k} {tuple(v)}" for k, v in meta["modalities"].items())
    drops = "; ".join(f"dropped {v['count']} {k}" for k, v in meta["dropped"].items())
    return (f"wrote {out}: {meta['n']} segments (train {c['train']} / valid {c['valid']} / test {c['test']}); "
            f"modalities: {mods}" + (f"; {drops}" if drops else ""))


def warn(msg: str) -> None:
    print(f"mweight prepare: {msg}", file=sys.stderr)

