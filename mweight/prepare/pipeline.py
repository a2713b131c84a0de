"""The preparation pipeline shared by every dataset: CMU-SDK ``.csd`` files or pickles -> one ``.npz``.

A :class:`DatasetSpec` says what differs between datasets (name, standard folds,
label ranges, the labels file's columns); everything else is one code path:

- :func:`prepare_csd`: labels + words/word vectors + frame features, aligned
  with the SDK's semantics (:mod:`.align`). Feature files are opened lazily
  (:func:`.csd.open_csd`) and processed one video at a time, so memory is the
  output plus the largest video (per worker), not the dataset. Each feature
  file is one job (:func:`align_file`): read in file order, hashed while it is
  read, the next video read while the current one is aligned; with idle cores
  the jobs run in worker processes while this process does the words.
- :func:`prepare_pickle`: MMSA / MulT pickles (restricted unpickler).
- :func:`finish`: checks labels, assigns the folds, sorts, writes atomically
  with ``meta_json`` (source files + SHA-256, options, counts per split);
  uncompressed by default (``compress=True``: zip-deflated, ~4x smaller for
  real features, several times slower to write; ``np.load`` reads both).

Specs: ``mosi.MOSI``, ``mosei.MOSEI``, ``sims.SIMS``; ``prepare sdk`` builds one
from the command line. The format is ``docs/DATASET_FORMAT.md``.
"""
from __future__ import annotations

import csv
import json
import os
import re
import sys
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np

from ..errors import MWeightError
from ..fileio import atomic_path, sha256
from ..transcripts import read_transcripts
from . import align as _align
from .csd import ComputationalSequence, LazyVideos, open_csd, read_csd
from .folds import video_of

ROLES = ("labels", "words", "text", "audio", "video")
MODALITY_ORDER = ("text", "audio", "video")  # other modality roles (prepare sdk) follow in recipe order
# Recognised file names, best first within a role (lower-cased file stem).
ROLE_PATTERNS: dict[str, tuple[str, ...]] = {
    "labels": ("opinion_labels", "sentiment", "labels"),
    "words": ("modifiedtimestampedwords", "timestampedwords", "words"),
    "text": ("timestampedwordvectors", "wordvectors", "glove", "bert", "bclstm_text", "text"),
    "audio": ("covarep", "opensmile", "bclstm_audio", "audio", "acoustic"),
    "video": ("facet_41", "facet41", "facet_42", "facet42", "facet", "openface", "bclstm_video", "visual", "video"),
}


@dataclass(frozen=True)
class DatasetSpec:
    """What one dataset adds to the shared pipeline.

    ``folds``: ``{video_id: split}`` (``None``: the source carries its own split,
    e.g. pickles). ``label_names``: the columns of the labels ``.csd``; column 0
    becomes ``label``, column k the extra column ``label_<name>`` (N,) float.
    ``label_range`` bounds ``label``, ``extra_label_range`` the extra columns
    (``None``: any finite value).
    """

    name: str
    command: str
    folds: Mapping[str, str] | None = None
    folds_desc: str = ""
    label_range: tuple[float, float] | None = (-3.0, 3.0)
    label_what: str = "a sentiment"
    label_names: tuple[str, ...] = ("sentiment",)
    extra_label_range: tuple[float, float] | None = None
    files_hint: str = "CMU-SDK .csd"


@dataclass
class Report:
    """What a preparation did, for ``meta_json`` and the summary line."""

    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)  # resolved path -> SHA-256 computed while reading

    def digest(self, path) -> str:
        """The SHA-256 of a source file: the one computed while reading it, else read now."""
        key = str(Path(path).resolve())
        if key not in self.digests:
            self.digests[key] = sha256(path)
        return self.digests[key]

    def drop(self, reason: str, ids) -> None:
        ids = [str(i) for i in ids]
        if ids:
            self.dropped.setdefault(reason, []).extend(ids)


def progress(items: Iterable, desc: str):
    """A progress bar over ``items`` (shown on a terminal only, removed when done)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=" videos", leave=False, disable=None)


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


# ----------------------------------------------------------------------------- output


def check_labels(labels: np.ndarray, ids: np.ndarray, source: str, name: str = "label",
                 bounds: tuple[float, float] | None = (-3.0, 3.0), what: str = "a sentiment") -> None:
    """Labels must be finite (and inside ``bounds`` when given)."""
    labels = np.asarray(labels, dtype=np.float64)
    bad = ~np.isfinite(labels)
    if bounds is not None:
        bad |= (labels < bounds[0]) | (labels > bounds[1])
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        expected = f"{what} in [{bounds[0]:g}, {bounds[1]:g}]" if bounds is not None else "a finite value"
        raise MWeightError(f"{source}: field '{name}' of segment '{ids[k]}' is {labels[k]:g} "
                           f"(expected {expected}; {int(bad.sum())} such segment(s))")


def _sort_key(segment_id: str):
    vid, _, clip = segment_id.rpartition("_")
    return (vid, int(clip) if clip.isdigit() else -1, clip)


def write_dataset(out: str | os.PathLike, columns: Mapping[str, np.ndarray], meta: dict, compress: bool = False) -> Path:
    """Write the dataset atomically; ``columns`` in the order they should appear.

    Uncompressed by default: a MOSI-sized word-level file takes ~0.2 s to write
    instead of ~2 s with zlib, at ~4x the size on disk. ``np.load`` reads both.
    """
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
            (np.savez_compressed if compress else np.savez)(fh, **arrays)
    return out


def _is_label_column(key: str) -> bool:
    return key.startswith("label_")


def finish(out, cols: dict, report: Report, source: str, options: dict, spec: DatasetSpec,
           split_from: str = "folds", compress: bool | None = None) -> dict:
    """Common tail: check labels, add split (the spec's folds), sort, drop, write; returns meta.

    ``compress`` (default: ``options["compress"]``, else False) writes a zip-deflated file.
    """
    if compress is None:
        compress = bool(options.get("compress", False))
    ids = np.asarray(cols["id"]).astype(str)
    label_source = cols.get("_label_source", source)  # the labels file, when there is one
    check_labels(cols["label"], ids, label_source, "label", spec.label_range, spec.label_what)
    extra_labels = [k for k in cols if _is_label_column(k)]
    for k in extra_labels:
        check_labels(cols[k], ids, label_source, k, spec.extra_label_range, "a score")
    if split_from == "folds":
        fold = spec.folds or {}
        split = np.array([fold.get(video_of(i), "") for i in ids])
        not_in = split == ""
        if not_in.any():
            report.drop("video_not_in_standard_folds", ids[not_in])
            n_vid = len({video_of(i) for i in ids[not_in]})
            report.notes.append(f"{int(not_in.sum())} segment(s) of {n_vid} video(s) outside the {spec.name} folds dropped")
        keep = ~not_in
    else:
        split = np.asarray(cols["split"]).astype(str)
        keep = np.ones(len(ids), bool)
    order = sorted(np.flatnonzero(keep), key=lambda k: _sort_key(ids[k]))
    order = np.array(order, dtype=np.int64)
    if len(order) == 0:
        raise MWeightError(f"{source}: no segment left to write (expected labelled {spec.name} segments of the folds)")
    # .csd sources come out already sorted: then the (large) feature arrays are written without a copy
    identity = len(order) == len(ids) and bool((order == np.arange(len(ids))).all())

    def take(values, dtype=None) -> np.ndarray:
        values = np.asarray(values) if dtype is None else np.asarray(values).astype(dtype, copy=False)
        return values if identity else values[order]

    columns: dict[str, np.ndarray] = {"label": take(cols["label"], np.float32), "split": take(split.astype(str)),
                                      "id": take(ids)}
    for k in extra_labels:
        columns[k] = take(cols[k], np.float32)
    modalities = {}
    for k, v in cols.items():
        if k in columns or k == "split" or k.startswith("_") or k.endswith("_lengths"):
            continue
        v = np.asarray(v)
        if v.dtype.kind in "fiu":
            columns[k] = take(v, np.float32 if v.dtype.kind == "f" else None)
            modalities[k] = list(columns[k].shape[1:])
            if f"{k}_lengths" in cols:
                columns[f"{k}_lengths"] = take(cols[f"{k}_lengths"], np.int64)
    for k, v in cols.items():
        if k not in columns and not k.startswith("_") and np.asarray(v).dtype.kind in "US":
            columns[k] = take(np.asarray(v).astype(str))
    counts = {s: int((columns["split"] == s).sum()) for s in ("train", "valid", "test")}
    try:
        from .. import __version__ as version
    except Exception:
        version = "unknown"
    meta = {
        "format": "mweight-dataset/1",
        "dataset": spec.name,
        "created_by": f"mweight {version} prepare {spec.command}",
        "source": source,
        "files": [{"path": str(Path(p).resolve()), "sha256": report.digest(p)} for p in report.files if Path(p).is_file()],
        "options": options,
        "split": spec.folds_desc if split_from == "folds" else split_from,
        "n": int(len(order)),
        "counts": counts,
        "modalities": modalities,
        "dropped": {k: {"count": len(v), "ids": v[:200]} for k, v in report.dropped.items()},
        "notes": report.notes,
        **report.extra,
    }
    if extra_labels:
        meta["labels"] = {"label": cols.get("_label_name", spec.label_names[0]), **{k: k[len("label_"):] for k in extra_labels}}
    write_dataset(out, columns, meta, compress=compress)
    return meta


# ----------------------------------------------------------------------------- .csd folder


def find_csd_files(directory: str | os.PathLike, hint: str = "CMU-SDK .csd") -> tuple[dict[str, Path], list[str]]:
    """Map roles (labels/words/text/audio/video) to the standard SDK file names in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MWeightError(f"{directory}: directory not found (expected a folder of CMU-SDK .csd files)")
    files = sorted(directory.glob("*.csd")) + sorted(directory.glob("*/*.csd"))
    if not files:
        raise MWeightError(f"{directory}: no .csd files found (expected {hint} computational sequences)")
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


def parse_recipe(recipe: str | None, base: Path | None, any_modality: bool = False) -> dict[str, Path]:
    """``ROLE=FILE,ROLE=FILE`` or a JSON/YAML file mapping roles to files (relative to ``base``).

    Roles are labels, words, text, audio, video; with ``any_modality`` (``prepare
    sdk``) any other lower-case name is a further modality (e.g. ``pose=...``).
    """
    if not recipe:
        return {}
    mapping: dict[str, str]
    bases = [b for b in (base,) if b is not None]
    if Path(recipe).is_file():
        bases.append(Path(recipe).parent)  # a recipe file's names may be relative to it
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
        role = str(role)
        named = any_modality and re.fullmatch(r"[a-z][a-z0-9_]*", role) and not role.endswith("_lengths") \
            and not role.startswith("label") and role not in ("split", "id", "transcript")
        if role not in ROLES and not named:
            more = " or a modality name (lower case, letters/digits/_)" if any_modality else ""
            raise MWeightError(f"--recipe: unknown role '{role}' (expected one of {', '.join(ROLES)}{more})")
        p = Path(str(f))
        if not p.is_absolute() and not p.exists():
            p = next((b / p for b in bases if (b / p).exists()), bases[0] / p if bases else p)
        out[role] = p
    return out


@dataclass
class _Labels:
    """Per video: segment ids, intervals, values (n_segments, K) for the label columns ``names``."""

    ids: dict[str, list[str]]
    intervals: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    source: str
    names: tuple[str, ...] = ("sentiment",)


def _labels_from_csd(seq: ComputationalSequence, spec: DatasetSpec) -> _Labels:
    ids, ints, vals = {}, {}, {}
    width = None
    for vid, (f, iv) in seq.data.items():
        if f.dtype.kind not in "f" or f.shape[1] < 1:
            raise MWeightError(f"{seq.path}: field 'data/{vid}/features' is {f.dtype} {f.shape} (expected (n_segments, "
                               f"{len(spec.label_names)}) {', '.join(spec.label_names)})")
        if width is not None and f.shape[1] != width:
            raise MWeightError(f"{seq.path}: field 'data/{vid}/features' has {f.shape[1]} columns (expected {width}, as the other videos)")
        width = f.shape[1]
        ids[vid] = [f"{vid}_{j + 1}" for j in range(len(iv))]  # the SDK's vid[j] is clip j+1
        ints[vid] = iv
        vals[vid] = f.astype(np.float64)
    names = tuple(spec.label_names[:width or 1]) + tuple(f"col{k}" for k in range(len(spec.label_names), width or 1))
    return _Labels(ids, ints, vals, str(seq.path), names)


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
        vals[vid] = np.array([[r[1]["label"]] for r in rows], dtype=np.float64)
    return _Labels(ids, ints, vals, path)


def _label_columns(labels: _Labels, values: np.ndarray) -> dict:
    """(N, K) label values -> ``label`` (column 0) and ``label_<name>`` for the others."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    cols: dict = {"label": values[:, 0], "_label_name": labels.names[0], "_label_source": labels.source}
    for k, name in enumerate(labels.names[1:values.shape[1]], start=1):
        cols[f"label_{name}"] = values[:, k]
    return cols


def _is_sp(tokens: np.ndarray) -> np.ndarray:
    return np.char.lower(np.char.strip(tokens.astype(str))) == "sp"


def _ordered(roles: Iterable[str]) -> list[str]:
    roles = list(roles)
    return [r for r in MODALITY_ORDER if r in roles] + [r for r in roles if r not in MODALITY_ORDER]


def prepare_csd(
    out: str | os.PathLike,
    spec: DatasetSpec,
    csd_dir: str | os.PathLike | None = None,
    files: Mapping[str, str | os.PathLike] | None = None,
    labels_csv: str | os.PathLike | None = None,
    transcripts_csv: str | os.PathLike | None = None,
    level: str = "word",
    seq_len: int = 50,
    keep_sp: bool = False,
    epsilon: float = _align.EPSILON,
    missing: str = "error",
    compress: bool = False,
    workers: int | None = None,
) -> dict:
    """Prepare from CMU-SDK computational sequences (see ``mweight prepare mosi --help``).

    The labels file is read whole (small); every other file is opened lazily and
    read one video at a time, and hashed while it is read. Each feature file is
    one :class:`FileJob`; ``workers`` processes run them (default: one per core,
    at most one per file, if a core is idle; 0: all in this process, which gives
    the same arrays) while this process reads the words. ``compress``: zip-deflate the output.
    """
    report = Report()
    roles: dict[str, Path] = {}
    if csd_dir is not None:
        found, notes = find_csd_files(csd_dir, spec.files_hint)
        roles.update(found)
        report.notes += notes
    roles.update({k: Path(v) for k, v in (files or {}).items() if v})
    if labels_csv is not None:
        roles.pop("labels", None)
    if "labels" not in roles and labels_csv is None:
        raise MWeightError(f"{csd_dir or 'prepare'}: no labels (expected a labels .csd such as {spec.files_hint} "
                           "*Labels*, --labels-csd or --labels CSV)")
    if level not in ("word", "segment"):
        raise MWeightError(f"--level: '{level}' (expected word or segment)")
    if level == "word" and seq_len < 1:
        raise MWeightError(f"--seq-len: {seq_len} (expected a positive number of words)")
    with ExitStack() as stack:
        # Worker processes start before any HDF5 file is open here, so they inherit no open file.
        pool = stack.enter_context(_pool(workers, len([r for r in roles if r not in ("labels", "words")])))
        # words are read here (hashed while read); the feature files by the jobs (hashed there)
        seqs = {role: stack.enter_context(open_csd(p, hashing=role == "words")) for role, p in roles.items() if role != "labels"}
        report.files += list(roles.values())
        if labels_csv is not None:
            labels = _labels_from_csv(read_labels_csv(labels_csv), str(labels_csv))
            report.files.append(Path(labels_csv))
        else:
            label_seq = read_csd(roles["labels"], hashing=True)
            report.digests[str(roles["labels"].resolve())] = label_seq.sha256()
            labels = _labels_from_csd(label_seq, spec)
        mods = {r: seqs[r] for r in _ordered(r for r in seqs if r != "words")}
        words = seqs.get("words")
        if words is not None and not words.is_words:
            raise MWeightError(f"{words.path}: field 'features' holds numbers (expected word tokens for the words role; map it with --text-csd)")
        for r, s in mods.items():
            if s.is_words:
                raise MWeightError(f"{s.path}: field 'features' holds words (expected numeric features for {r}; use --words-csd)")
        if not mods and words is None:
            raise MWeightError(f"{csd_dir or 'prepare'}: no feature .csd (expected words, word vectors, COVAREP, FACET, ... files)")
        videos = _unify(labels, list(mods.values()) + ([words] if words is not None else []), report)
        if not videos:
            raise MWeightError(f"{csd_dir or 'prepare'}: no video is in every .csd file (expected shared video ids)")
        options = {"level": level, "seq_len": seq_len, "keep_sp": keep_sp, "epsilon": epsilon, "missing": missing,
                   "roles": {r: str(p) for r, p in roles.items()}, "collapse": "mean of finite values (SDK align semantics)",
                   "compress": compress}
        if level == "segment":
            ref = {vid: labels.intervals[vid] for vid in videos}
            jobs = _submit_all(pool, {r: FileJob(seq.path, tuple(videos), ref, epsilon) for r, seq in mods.items()})
            cols = _segment_level(labels, mods, videos, epsilon, missing, report, jobs)
        else:
            ref_role = "words" if words is not None else ("text" if "text" in mods else None)
            if ref_role is None:
                raise MWeightError("--level word: no words or word-vector .csd (expected *TimestampedWords* or "
                                   "*WordVectors* / GloVe; use --level segment for frame features only)")
            ref_path = seqs[ref_role].path
            jobs = _submit_all(pool, {r: FileJob(seq.path, tuple(videos), None if r == ref_role else ref_path, epsilon)
                                      for r, seq in mods.items()})
            cols = _word_level(labels, mods, words, videos, seq_len, keep_sp, epsilon, missing, report, jobs)
        for seq in seqs.values():
            digest = seq.sha256()  # the words file: hashed while read, plus its unread rest
            if digest is not None:
                report.digests[str(Path(seq.path).resolve())] = digest
        for job in jobs.values():
            path, digest = job.result()[1:]
            report.digests[str(Path(path).resolve())] = digest
    if transcripts_csv is not None:
        tr = read_transcripts(transcripts_csv)
        report.files.append(Path(transcripts_csv))
        cols["transcript"] = np.array([tr.get(i, "") for i in cols["id"]], dtype=str)
    return finish(out, cols, report, f"csd:{csd_dir or ','.join(map(str, roles.values()))}", options, spec,
                  compress=compress)


# ----------------------------------------------------------------------------- one feature file, one job


@dataclass(frozen=True)
class FileJob:
    """One feature file to read (hashing it while reading) and align, video by video.

    ``ref``: each video's reference intervals (labels, for ``--level segment``),
    or the path of the reference ``.csd`` (words or word vectors; only its
    intervals are read), or ``None`` when this file is the reference itself
    (its rows are kept as they are).
    """

    path: Path
    videos: tuple[str, ...]
    ref: Mapping[str, np.ndarray] | Path | None
    epsilon: float


def align_file(job: FileJob) -> tuple[dict[str, tuple[np.ndarray | None, np.ndarray]], Path, str]:
    """Run one :class:`FileJob`: ``({video: (reference rows with output, float32 features)}, path, SHA-256)``.

    The videos are read in the order of their data in the file, so the file is
    read (and hashed) in one pass; a thread reads the next video while this one
    is aligned. Memory: two videos plus the (per reference row) results.
    """
    with ExitStack() as stack:
        seq = stack.enter_context(open_csd(job.path, hashing=True))
        if job.ref is None:
            ref_intervals = None
        elif isinstance(job.ref, Mapping):
            ref_intervals = job.ref.__getitem__
        else:  # all at once (small), before the read-ahead thread keeps h5py busy
            with open_csd(job.ref) as ref:
                ref_intervals = {vid: ref.data.intervals(vid) for vid in job.videos}.__getitem__
        out: dict[str, tuple[np.ndarray | None, np.ndarray]] = {}
        for vid, (feats, intervals) in _read_ahead(seq.data, seq.data.file_order(list(job.videos))):
            if ref_intervals is None:
                out[vid] = (None, feats.astype(np.float32, copy=False))
            else:
                # overwrite: this video's array is ours (already hashed), its -inf/NaN may be zeroed in place
                a = _align.align_video(ref_intervals(vid), intervals, feats, "mean", job.epsilon, overwrite=True)
                out[vid] = (a.ref_rows, a.features.astype(np.float32))
        return out, job.path, seq.sha256()


def _read_ahead(data: LazyVideos, order: list[str]) -> Iterator[tuple[str, tuple[np.ndarray, np.ndarray]]]:
    """``(video, (features, intervals))`` in ``order``, the next video read by a thread meanwhile
    (h5py and hashlib release the GIL for the copy and the hash, numpy for most of the alignment)."""
    if not order:
        return
    with ThreadPoolExecutor(1, thread_name_prefix="mweight-read") as reader:
        pending = reader.submit(data.__getitem__, order[0])
        for k, vid in enumerate(order):
            current = pending.result()
            if k + 1 < len(order):
                pending = reader.submit(data.__getitem__, order[k + 1])
            yield vid, current


class _InProcess:
    """A job run here, when its result is first asked for (``workers=0``, or a single core)."""

    def __init__(self, job: FileJob):
        self.job, self._result = job, None

    def result(self):
        if self._result is None:
            self._result = align_file(self.job)
        return self._result


def _submit_all(pool: ProcessPoolExecutor | None, jobs: Mapping[str, FileJob]) -> dict[str, Future | _InProcess]:
    """Submit the jobs, largest file first (the longest job starts first; the others fill the other cores)."""
    if pool is None:
        return {role: _InProcess(job) for role, job in jobs.items()}
    order = sorted(jobs, key=lambda role: -jobs[role].path.stat().st_size)
    submitted = {role: pool.submit(align_file, jobs[role]) for role in order}
    return {role: submitted[role] for role in jobs}


def _finished_first(jobs: Mapping[str, Future | _InProcess], roles: list[str]) -> Iterator[str]:
    """``roles`` in the order their jobs finish (this process fills one file's columns while a
    worker is still on another); in the given order for jobs run here."""
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = {jobs[r]: r for r in roles if isinstance(jobs[r], Future)}
    yield from (r for r in roles if not isinstance(jobs[r], Future))
    while pending:
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in [f for f in pending if f in done]:  # in submission order among those done
            yield pending.pop(future)


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent, which stops the pool


@contextmanager
def _pool(workers: int | None, n_jobs: int) -> Iterator[ProcessPoolExecutor | None]:
    """:func:`_start_pool`, stopped at the end: after the jobs on success; at once on an error or
    Ctrl-C (the workers are terminated: a MOSEI-sized job would otherwise run on for minutes)."""
    pool = _start_pool(workers, n_jobs)
    if pool is None:
        yield None
        return
    try:
        yield pool
    except BaseException:
        for process in list((getattr(pool, "_processes", None) or {}).values()):  # our own workers only
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _start_pool(workers: int | None, n_jobs: int) -> ProcessPoolExecutor | None:
    """Worker processes for the feature files, started now (``None``: run the jobs in this process).

    ``workers=None``: one per available core, at most one per file, when the
    machine has a core to spare (1-minute load average at most cores - 1);
    else none: with every core busy they gain nothing and add the cost of
    starting them and sending their results back (two measurements on the
    shared 2-core machine at load 5-6, MOSI-sized: 1.8 s slower and 1.2 s more
    CPU than in-process, then 0.4 s faster and 0.35 s less CPU: no gain beyond
    the noise; benchmarks/README.md).
    Processes rather than threads: h5py serialises all HDF5 calls behind one
    lock, and the alignment holds the GIL between numpy calls.
    """
    if workers is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        try:
            spare = cores - os.getloadavg()[0] >= 1
        except OSError:  # no load average on this platform
            spare = True
        workers = min(cores, n_jobs) if cores > 1 and spare else 0
    if workers < 0:
        raise MWeightError(f"workers: {workers} (expected 0 for this process only, or a number of processes)")
    workers = min(workers, n_jobs)
    if workers == 0:
        return None
    import multiprocessing

    method = "fork" if sys.platform.startswith("linux") else "spawn"
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method), initializer=_ignore_sigint)
    pool.submit(int).result()  # start every worker now, before this process opens an HDF5 file
    return pool


def _unify(labels: _Labels, seqs: list[ComputationalSequence], report: Report) -> list[str]:
    """The SDK's unify: only labelled videos present in every sequence; one note says how many were dropped."""
    labelled = set(labels.ids)
    videos = set(labelled)
    per_file = []
    for s in seqs:
        gone = labelled - set(s.data)
        if gone:
            per_file.append(f"{Path(s.path).name}: {len(gone)}")
            report.drop(f"video_missing_in_{Path(s.path).name}", sorted(gone))
        videos &= set(s.data)
    if per_file:
        report.notes.append(f"{len(labelled) - len(videos)} of {len(labelled)} labelled video(s) dropped: not in every "
                            f".csd (missing from {', '.join(per_file)})")
    return sorted(videos)


def _flat_labels(labels: _Labels, videos, epsilon, report: Report):
    """Per video, a mask of the non-zero-length segments (the SDK gives zero-length rows no output)."""
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


def _segment_level(labels: _Labels, mods, videos, epsilon, missing, report, jobs) -> dict:
    """One vector per labelled segment and modality (the jobs aligned every file to the labels)."""
    keep = _flat_labels(labels, videos, epsilon, report)
    ids = [i for v in videos for i, k in zip(labels.ids[v], keep[v]) if k]
    index = {i: n for n, i in enumerate(ids)}
    cols: dict = {"id": np.array(ids, dtype=str),
                  **_label_columns(labels, np.concatenate([labels.values[v][keep[v]] for v in videos]))}
    dropped: set[str] = set()
    for role, seq in mods.items():
        out = np.zeros((len(ids), seq.dim), dtype=np.float32)
        have = np.zeros(len(ids), bool)
        aligned = jobs[role].result()[0]
        for vid in progress(videos, f"{role}: {Path(seq.path).name}"):
            ref_rows, features = aligned.pop(vid)
            sel = [k for k, r in enumerate(ref_rows) if keep[vid][r]]
            rows = [index[labels.ids[vid][ref_rows[k]]] for k in sel]
            out[rows] = features[sel]
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


@dataclass
class _Segments:
    """Labelled segments in video order, with the reference rows (words) of each."""

    ids: list[str] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    words: list[np.ndarray] = field(default_factory=list)  # reference rows, all of them (before --seq-len)
    video: list[int] = field(default_factory=list)  # index into the video list
    tokens: list[np.ndarray] = field(default_factory=list)  # first seq_len tokens (with a words file)
    transcripts: list[str] = field(default_factory=list)

    def keep(self, mask: list[bool]) -> None:
        for name in ("ids", "labels", "words", "video", "tokens", "transcripts"):
            values = getattr(self, name)
            if values:
                setattr(self, name, [v for v, k in zip(values, mask) if k])


def _segment_words(labels, ref, words, videos, keep, seq_len, keep_sp, epsilon) -> tuple[_Segments, dict, set]:
    """Pass over the reference file (words, or word vectors): the SDK's align to the labels
    without collapse, i.e. the reference rows of each labelled segment. Returns the segments,
    each video's reference intervals (kept for aligning the other files) and the vocabulary."""
    segs = _Segments()
    ref_intervals: dict[str, np.ndarray] = {}
    vocab: set[str] = set()
    only_intervals = words is None and isinstance(ref.data, LazyVideos)  # word vectors: a job reads their features
    for v_index, vid in enumerate(progress(videos, f"segments: {Path(ref.path).name}")):
        feats, w_int = (None, ref.data.intervals(vid)) if only_intervals else ref.data[vid]
        ref_intervals[vid] = w_int
        valid = np.flatnonzero(~(np.abs(w_int[:, 0] - w_int[:, 1]) < epsilon))  # the ref's own zero-length rows are gone
        ref_idx, sub_idx, _ = _align.overlaps(labels.intervals[vid], w_int[valid], epsilon)
        word_rows = valid[sub_idx]
        if words is not None:
            tokens = feats[:, 0]
            vocab.update(tokens[~_is_sp(tokens)].tolist())
            if not keep_sp:
                nsp = ~_is_sp(tokens[word_rows])
                ref_idx, word_rows = ref_idx[nsp], word_rows[nsp]
        bounds = np.searchsorted(ref_idx, np.arange(len(labels.ids[vid]) + 1))
        for j, sid in enumerate(labels.ids[vid]):
            if not keep[vid][j]:
                continue
            rows = word_rows[bounds[j]:bounds[j + 1]]
            segs.ids.append(sid)
            segs.labels.append(labels.values[vid][j])
            segs.words.append(rows)
            segs.video.append(v_index)
            if words is not None:
                toks = feats[rows, 0]
                segs.tokens.append(toks[:seq_len])
                segs.transcripts.append(" ".join(t for t in toks if t.strip().lower() != "sp"))
    return segs, ref_intervals, vocab


def _word_level(labels: _Labels, mods, words, videos, seq_len, keep_sp, epsilon, missing, report, jobs) -> dict:
    """Word-aligned sequences; the jobs aligned every feature file to the reference (words or word vectors)."""
    ref = words if words is not None else mods["text"]
    keep = _flat_labels(labels, videos, epsilon, report)
    segs, ref_intervals, vocab = _segment_words(labels, ref, words, videos, keep, seq_len, keep_sp, epsilon)
    empty = [s for s, w in zip(segs.ids, segs.words) if len(w) == 0]
    _missing(missing, "words", empty, str(ref.path), report)
    if missing == "drop" and empty:
        gone = set(empty)
        segs.keep([s not in gone for s in segs.ids])
    n = len(segs.ids)
    full_len = np.array([len(w) for w in segs.words], dtype=np.int64)
    lengths = np.minimum(full_len, seq_len)
    cols: dict = {"id": np.array(segs.ids, dtype=str),
                  **_label_columns(labels, np.array(segs.labels).reshape(n, -1) if n else np.zeros((0, 1)))}
    # Flat (segment, position, word) arrays in video order; bounds[v]:bounds[v+1] is video v's run.
    seg_of = np.repeat(np.arange(n), lengths)
    pos = np.concatenate([np.arange(L) for L in lengths]) if n else np.zeros(0, np.int64)
    word_of = np.concatenate([w[:seq_len] for w in segs.words]) if n else np.zeros(0, np.int64)
    bounds = np.searchsorted(np.repeat(np.array(segs.video, dtype=np.int64), lengths), np.arange(len(videos) + 1))
    if words is not None and "text" not in mods:
        # Words only: token ids (0 = padding) with the vocabulary in meta_json.
        vocab_list = sorted(vocab | ({"sp"} if keep_sp else set()))
        lookup = {t: k + 1 for k, t in enumerate(vocab_list)}
        ids_mat = np.zeros((n, seq_len), dtype=np.int64)
        flat_tokens = np.concatenate(segs.tokens) if n else np.zeros(0, str)
        ids_mat[seg_of, pos] = [lookup.get(t, 0) for t in flat_tokens]
        cols["text"] = ids_mat
        cols["text_lengths"] = lengths
        report.extra["text_vocab"] = vocab_list
        report.notes.append("text = word token ids (0 = padding; vocabulary in meta_json text_vocab); add a word-vector .csd for GloVe features")
    imputed = {}
    for role, seq in mods.items():  # the columns in modality order, filled as the jobs finish
        cols[role] = np.zeros((n, seq_len, seq.dim), dtype=np.float32)  # dim from the file's header
        cols[f"{role}_lengths"] = lengths
        imputed[role] = 0
    # Per file (a job: the SDK's align to the words with collapse=mean, video by video), then
    # impute() zeros for words without frames, then each segment's first seq_len words.
    for role in _finished_first(jobs, list(mods)):
        seq, mat, dim = mods[role], cols[role], cols[role].shape[2]
        aligned = jobs[role].result()[0]
        for v_index, vid in enumerate(progress(videos, f"{role}: {Path(seq.path).name}")):
            ref_rows, features = aligned.pop(vid)  # pop: the per-video results are freed as they are used
            if ref_rows is None:  # this file is the reference: its rows as they are
                per_word = features
            else:
                per_word = np.zeros((len(ref_intervals[vid]), dim), dtype=np.float32)  # SDK impute(): zeros
                per_word[ref_rows] = features
                imputed[role] += len(per_word) - len(ref_rows)
            s, e = bounds[v_index], bounds[v_index + 1]
            mat[seg_of[s:e], pos[s:e]] = per_word[word_of[s:e]]
        if seq is ref:
            del imputed[role]
    if words is not None:
        cols["transcript"] = np.array(segs.transcripts, dtype=str)
    report.extra["words_per_segment"] = {"mean": float(full_len.mean()) if n else 0.0, "max": int(full_len.max()) if n else 0,
                                         "truncated": int((full_len > seq_len).sum())}
    report.extra["words_without_frames_zero_filled"] = imputed
    report.notes.append(f"word-level: first {seq_len} words per segment kept, padding at the end"
                        + ("" if keep_sp else "; 'sp' pause tokens dropped"))
    return cols


# ----------------------------------------------------------------------------- pickles


def prepare_pickle(out, path, kind: str, options: dict, spec: DatasetSpec) -> dict:
    """From an MMSA (``kind='mmsa'``) or MulT/MultiBench (``kind='mult'``) pickle; split from the pickle."""
    from .pickles import read_mmsa, read_mult

    cols = read_mmsa(path) if kind == "mmsa" else read_mult(path)
    report = Report(files=[Path(path)])
    report.extra["pickle"] = cols.pop("_source")
    cols.pop("_videos", None)
    report.notes.append("split taken from the pickle's train/valid/test keys")
    return finish(out, cols, report, f"{kind}:{path}", options, spec, split_from=f"{kind} pickle keys train/valid/test")


def summary(meta: dict, out) -> str:
    c = meta["counts"]
    mods = ", ".join(f"{k} {tuple(v)}" for k, v in meta["modalities"].items())
    labels = meta.get("labels")
    extra = f"; extra labels: {', '.join(k for k in labels if k != 'label')}" if labels else ""
    drops = "; ".join(f"dropped {v['count']} {k}" for k, v in meta["dropped"].items())
    return (f"wrote {out}: {meta['n']} segments (train {c['train']} / valid {c['valid']} / test {c['test']}); "
            f"modalities: {mods}{extra}" + (f"; {drops}" if drops else ""))


def warn(msg: str) -> None:
    print(f"mweight prepare: {msg}", file=sys.stderr)
