"""The dataset: modality-keyed arrays + label + split + id (docs/DATASET_FORMAT.md)."""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import MWeightError

if TYPE_CHECKING:
    import torch

SPLITS = ("train", "valid", "test")


def video_of(sample_id: str) -> str:
    """Video id of a MOSI-style segment id (``video_clip`` or MMSA ``video$_$clip``)."""
    s = str(sample_id)
    if "$_$" in s:
        return s.split("$_$")[0]
    return s.rsplit("_", 1)[0] if "_" in s else s


@dataclass
class Dataset:
    """In-memory dataset. ``modalities`` is ordered (the order names interaction blocks)."""

    modalities: dict[str, np.ndarray]
    label: np.ndarray
    split: np.ndarray
    id: np.ndarray
    lengths: dict[str, np.ndarray] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # other str columns
    meta: dict = field(default_factory=dict)
    path: str | None = None
    split_key: str = "split"
    task: str = "regression"

    def __len__(self) -> int:
        return len(self.label)

    @property
    def names(self) -> list[str]:
        return list(self.modalities)

    def subset(self, mask_or_index) -> "Dataset":
        idx = np.asarray(mask_or_index)
        return Dataset(
            modalities={k: v[idx] for k, v in self.modalities.items()},
            label=self.label[idx], split=self.split[idx], id=self.id[idx],
            lengths={k: v[idx] for k, v in self.lengths.items()},
            columns={k: v[idx] for k, v in self.columns.items()},
            meta=self.meta, path=self.path, split_key=self.split_key, task=self.task,
        )

    def part(self, split: str) -> "Dataset":
        return self.subset(self.split == split)

    def counts(self) -> dict[str, int]:
        return {s: int((self.split == s).sum()) for s in SPLITS}


def is_token_ids(array) -> bool:
    """Is this modality integer token ids (N, L), looked up in an embedding, rather than features?

    The one definition (model shapes, encoder choice, tensors and checks all ask here):
    an integer array of two dimensions. Flags (bool) and integer-valued sequences
    (N, T, D) are features; :func:`as_modality` turns them into float32.
    """
    return array.dtype.kind in "iu" and array.ndim == 2


def as_modality(array: np.ndarray) -> np.ndarray:
    """A modality array as the model takes it: token ids stay integers, everything else is a feature."""
    if array.dtype.kind == "b" or (array.dtype.kind in "iu" and not is_token_ids(array)):
        return array.astype(np.float32)  # flags and integer-valued features are features, not tokens
    return array


def modality_tensor(array: np.ndarray) -> torch.Tensor:
    """One modality as a tensor: token ids int64, features float32 (contiguous, no copy when already so)."""
    import torch  # here, not at the top: reading and checking data (prepare, the app) needs no torch

    if is_token_ids(array):
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.long)
    return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32))


def to_tensors(ds: Dataset) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """Dataset -> (inputs, lengths, target) tensors; float features float32, tokens int64."""
    import torch

    inputs = {m: modality_tensor(a) for m, a in ds.modalities.items()}
    lengths = {m: torch.as_tensor(v, dtype=torch.long) for m, v in ds.lengths.items()}
    y = torch.as_tensor(ds.label, dtype=torch.long if ds.task == "classification" else torch.float32)
    return inputs, lengths, y


def infer_task(label: np.ndarray) -> str:
    if np.issubdtype(label.dtype, np.integer) or label.dtype == bool:
        return "classification"
    return "regression"


def load_dataset(path: str | Path, split_key: str = "split", modalities: list[str] | None = None,
                 task: str = "auto") -> Dataset:
    """Read a mweight ``.npz`` dataset; every problem is a one-line :class:`MWeightError`."""
    path = Path(path)
    if not path.is_file():
        raise MWeightError(f"{path}: dataset file not found")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK":
        raise MWeightError(f"{path}: not a readable .npz dataset (expected a zip archive written by np.savez)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise MWeightError(f"{path}: not a readable .npz dataset ({exc})") from None
    except ValueError:
        raise MWeightError(f"{path}: contains pickled object arrays, which mweight never loads "
                           "(expected numeric and string arrays only)") from None
    if "label" not in arrays:
        raise MWeightError(f"{path}: missing field 'label' (expected (N,) labels)")
    label = arrays.pop("label")
    if label.ndim == 2 and label.shape[1] == 1:
        label = label[:, 0]
    if label.ndim != 1:
        raise MWeightError(f"{path}: field 'label' has shape {label.shape}; expected (N,)")
    n = len(label)
    ids = arrays.pop("id", None)
    if ids is None:
        ids = arrays.pop("segment_id", None)
    if ids is None:
        ids = np.array([str(i) for i in range(n)])
    meta: dict = {}
    if "meta_json" in arrays:
        try:
            meta = json.loads(str(arrays.pop("meta_json")))
        except json.JSONDecodeError:
            raise MWeightError(f"{path}: field 'meta_json' is not valid JSON") from None
    columns: dict[str, np.ndarray] = {}
    lengths: dict[str, np.ndarray] = {}
    mods: dict[str, np.ndarray] = {}
    if n == 0:
        raise MWeightError(f"{path}: field 'label' has 0 rows; expected at least one sample")
    for key, arr in arrays.items():
        if arr.ndim == 0 or arr.shape[0] != n:
            raise MWeightError(f"{path}: field {key!r} has {arr.shape[0] if arr.ndim else 0} rows; expected {n} (as 'label')")
        if arr.dtype.kind in "US":
            columns[key] = arr.astype(str)
        elif key.startswith("label_") and arr.ndim == 1 and arr.dtype.kind in "biuf":
            columns[key] = arr  # extra labels (MOSEI emotions, CH-SIMS label_text/_audio/_video): kept, not a modality
        elif key.endswith("_lengths"):
            lengths[key[: -len("_lengths")]] = arr
        elif arr.dtype.kind in "biuf":
            if arr.ndim < 2 or arr.ndim > 3:
                raise MWeightError(f"{path}: field {key!r} has shape {arr.shape}; a modality must be (N, D), (N, T, D) or (N, L)")
            if 0 in arr.shape[1:]:
                raise MWeightError(f"{path}: modality {key!r} is empty (shape {arr.shape}); expected at least one "
                                   "feature (and one time step) per sample")
            mods[key] = as_modality(arr)
        else:
            raise MWeightError(f"{path}: field {key!r} has dtype {arr.dtype}; expected numbers or strings")
    for m in list(lengths):
        if m not in mods:
            raise MWeightError(f"{path}: field '{m}_lengths' has no modality {m!r}")
        lengths[m] = check_lengths(lengths[m], mods[m], m, str(path))
    for m, a in mods.items():
        if is_token_ids(a) and a.size and a.min() < 0:
            raise MWeightError(f"{path}: modality {m!r} has token id {int(a.min())}; expected ids >= 0")
    check_unique_ids(ids, str(path))
    if modalities:
        missing = [m for m in modalities if m not in mods]
        if missing:
            raise MWeightError(f"{path}: data.modalities asks for {missing[0]!r}; the file has {', '.join(mods)}")
        mods = {m: mods[m] for m in modalities}
        lengths = {m: v for m, v in lengths.items() if m in mods}
    if len(mods) < 1:
        raise MWeightError(f"{path}: no modality arrays found (expected numeric (N, ...) fields next to 'label')")
    if split_key not in columns:
        raise MWeightError(
            f"{path}: no split column {split_key!r}; string columns present: {', '.join(columns) or 'none'}"
        )
    split = columns[split_key]
    bad = sorted(set(np.unique(split)) - set(SPLITS))
    if bad:
        raise MWeightError(f"{path}: field {split_key!r} has value {str(bad[0])!r}; expected train / valid / test")
    if task == "auto":
        task = infer_task(label)
    if label.dtype.kind not in "biuf":
        raise MWeightError(f"{path}: field 'label' has dtype {label.dtype}; expected numbers")
    if task == "regression":
        label = label.astype(np.float32)
        if not np.isfinite(label).all():
            raise MWeightError(f"{path}: field 'label' has NaN or infinite values")
    else:
        if not np.isfinite(label.astype(np.float64)).all() or not np.all(label == np.round(label)):
            raise MWeightError(f"{path}: field 'label' must hold class indices 0..K-1 for classification")
        label = label.astype(np.int64)
        if label.min() < 0:
            raise MWeightError(f"{path}: field 'label' has negative class {label.min()}; expected 0..K-1")
    return Dataset(modalities=mods, label=label, split=split, id=ids.astype(str), lengths=lengths,
                   columns=columns, meta=meta, path=str(path), split_key=split_key, task=task)


def check_lengths(lengths: np.ndarray, array: np.ndarray, modality: str, source: str) -> np.ndarray:
    """``<m>_lengths`` must be (N,) whole numbers in [0, T], and only for sequences (N, T, D) or tokens (N, L)."""
    key = f"{modality}_lengths"
    if array.ndim == 2 and array.dtype.kind == "f":
        raise MWeightError(f"{source}: field {key!r} is given for modality {modality!r} of shape {array.shape}, "
                           "a vector per sample; lengths are only for sequences (N, T, D)")
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise MWeightError(f"{source}: field {key!r} has shape {lengths.shape}; expected (N,)")
    if lengths.dtype.kind not in "iuf" or (lengths.dtype.kind == "f" and not np.all(lengths == np.round(lengths))):
        raise MWeightError(f"{source}: field {key!r} has non-integer values; expected whole numbers of steps")
    t = array.shape[1]
    bad = np.nonzero((lengths < 0) | (lengths > t))[0]
    if len(bad):
        i = int(bad[0])
        raise MWeightError(f"{source}: field {key!r} has {lengths[i]:g} at row {i} ({len(bad)} rows out of range); "
                           f"expected 0..{t} (the {modality!r} array has {t} steps)")
    return lengths.astype(np.int64)


def check_unique_ids(ids: np.ndarray, source: str) -> None:
    """Ids name samples (``explain --id``, ``predict --ids``): a repeated id is refused, naming the first."""
    ids = np.asarray(ids).astype(str)
    uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if len(uniq) != len(ids):
        dup = uniq[counts > 1]
        name = str(dup[np.argmin(first[counts > 1])])
        rows = np.nonzero(ids == name)[0]
        raise MWeightError(f"{source}: field 'id' repeats {name!r} (rows {rows[0]} and {rows[1]}; "
                           f"{int((counts > 1).sum())} ids repeated); expected one row per id")


def check_training_data(ds: Dataset, warn=None) -> list[str]:
    """What training needs beyond a readable file; refusals are one line, notes are returned.

    Classes must be 0..K-1 with every class present; regression labels far outside the
    range the defaults are tuned for (MOSI: -3..3) get a warning; a split without test
    rows gets a note (metrics are then reported on train and valid only).
    """
    notes: list[str] = []
    src = ds.path or "dataset"
    if ds.task == "classification":
        classes = np.unique(ds.label)
        k = int(classes.max()) + 1
        if len(classes) < 2:
            raise MWeightError(f"{src}: field 'label' has a single class {classes[0]}; expected 2 or more classes")
        if len(classes) != k:
            missing = sorted(set(range(k)) - set(classes.tolist()))
            shown = f"{missing[0]}" if len(missing) == 1 else f"{missing[0]}..{missing[-1]}" \
                if missing[-1] - missing[0] + 1 == len(missing) else ", ".join(map(str, missing[:5])) + ", ..."
            raise MWeightError(f"{src}: field 'label' has classes {', '.join(map(str, classes[:6]))}"
                               f"{', ...' if len(classes) > 6 else ''} but no sample of class {shown}; expected "
                               f"class indices 0..K-1 with every class present (relabel them 0..{len(classes) - 1})")
    else:
        lo, hi = float(ds.label.min()), float(ds.label.max())
        if max(abs(lo), abs(hi)) > 100:
            notes.append(f"warning: {src}: regression labels range {lo:g}..{hi:g}; the presets and learning rates "
                         "assume labels of order 1 (MOSI: -3..3): rescale them or tune train.lr")
    counts = ds.counts()
    if counts["test"] == 0:
        notes.append(f"note: {src}: split {ds.split_key!r} has no 'test' rows; the run reports train and "
                     "valid metrics only")
    return notes


def carve_validation(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, dict]:
    """Give a train/test-only split a validation set made of whole videos from train.

    Grouping by video keeps it speaker-independent. Returns the new dataset and a
    record (saved in the run config) of which videos were moved.
    """
    if (ds.split == "valid").any():
        return ds, {}
    train_idx = np.nonzero(ds.split == "train")[0]
    if len(train_idx) < 4:
        raise MWeightError(f"{ds.path}: split {ds.split_key!r} has {len(train_idx)} train samples; too few to carve a validation set")
    videos = np.array([video_of(i) for i in ds.id[train_idx]])
    uniq = np.unique(videos)
    rng = np.random.default_rng(seed)
    if len(uniq) >= 5:
        order = rng.permutation(uniq)
        target = fraction * len(train_idx)
        chosen, total = [], 0
        counts = {v: int((videos == v).sum()) for v in uniq}
        for v in order:
            if total >= target:
                break
            chosen.append(v)
            total += counts[v]
        move = train_idx[np.isin(videos, chosen)]
        record = {"carved_from": "train", "by": "video", "seed": seed, "videos": sorted(map(str, chosen))}
    else:  # ids are not grouped (e.g. synthetic): carve samples
        k = max(1, int(round(fraction * len(train_idx))))
        move = rng.choice(train_idx, size=k, replace=False)
        record = {"carved_from": "train", "by": "sample", "seed": seed, "n": int(k)}
    split = ds.split.copy()
    split[move] = "valid"
    out = ds.subset(np.arange(len(ds)))
    out.split = split
    record["counts"] = out.counts()
    return out, record
