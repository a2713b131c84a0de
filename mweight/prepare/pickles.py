"""Read the MMSA and MulT/MultiBench MOSI pickles, safely.

Pickles can run arbitrary code on load, so they are read with
:class:`RestrictedUnpickler`, which only admits what numpy needs to rebuild
arrays (``ndarray``, ``dtype``, scalars) plus dicts, lists, tuples and basic
types; any other global (``os.system``, ``builtins.eval``, ...) is refused with
a one-line :class:`MWeightError`.

- MMSA ``aligned_50.pkl`` / ``unaligned_50.pkl``: ``{train, valid, test}`` ->
  ``text`` (N, T, 768), ``audio`` (N, T, 5), ``vision`` (N, T, 20),
  optional ``audio_lengths`` / ``vision_lengths``, ``regression_labels`` (N,),
  ``id`` (``"video$_$clip"``), ``raw_text``. Sequences are padded at the end.
- MMSA CH-SIMS / SIMS v2 ``unaligned_39.pkl`` / ``unaligned.pkl``: the same
  layout with per-modality lengths (text (N, 39, 768) BERT, audio (N, 400, 33),
  vision (N, 55, 709) for SIMS) and the human unimodal labels
  ``regression_labels_T`` / ``_A`` / ``_V``, kept as ``label_text`` /
  ``label_audio`` / ``label_video``.
- MulT / MultiBench ``mosi_data.pkl`` / ``mosi_raw.pkl``: ``{train, valid, test}``
  -> ``text`` (N, 50, 300), ``audio`` (N, 50, 5|74), ``vision`` (N, 50, 20|35),
  ``labels`` (N, 1, 1), ``id``. Sequences are LEFT zero-padded; audio may hold -inf.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from ..data import video_of
from ..errors import MWeightError

SPLITS = ("train", "valid", "test")
# MMSA's human unimodal labels (CH-SIMS, SIMS v2) -> extra dataset columns
UNIMODAL_LABELS = {"regression_labels_T": "label_text", "regression_labels_A": "label_audio", "regression_labels_V": "label_video"}

_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # protocol 2 stores bytes as _codecs.encode(text, "latin1"); pure data
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "slice"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"), ("__builtin__", "complex"),
    ("copy_reg", "_reconstructor"),  # py2 pickles of numpy arrays reference it together with ndarray
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only builds numpy arrays/dtypes, containers and basic types."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            if module == "copy_reg":
                import copyreg

                return copyreg._reconstructor
            if module == "__builtin__":
                module = "builtins"
            return super().find_class(module, name)
        if module.startswith("numpy") and name.startswith("dtype") or (module, name) == ("numpy", "dtype"):
            return super().find_class(module, name)  # numpy 2 pickles dtypes as numpy.dtypes.Float32DType etc.
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def load_pickle(path: str | os.PathLike) -> object:
    """Load ``path`` with :class:`RestrictedUnpickler` (latin1 for Python 2 pickles)."""
    path = Path(path)
    if not path.is_file():
        raise MWeightError(f"{path}: file not found (expected an MMSA or MulT pickle)")
    data = path.read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise MWeightError(f"{path}: unsafe or invalid pickle refused ({exc}); only numpy arrays, dicts, lists and basic types are allowed") from None
    except Exception as exc:
        raise MWeightError(f"{path}: not a readable pickle ({type(exc).__name__}: {str(exc)[:100]})") from None


def _decode_ids(values) -> list[str]:
    out = []
    for v in np.asarray(values, dtype=object).reshape(len(values), -1):
        parts = [p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p) for p in v]
        seg = parts[0] if len(parts) == 1 else f"{parts[0]}_{_clip_text(parts[1])}"
        if "$_$" in seg:
            seg = seg.replace("$_$", "_")
        out.append(seg)
    return out


def _clip_text(text: str) -> str:
    try:
        f = float(text)
        return str(int(f)) if f.is_integer() else text
    except ValueError:
        return text


def _get_split(path: Path, obj: object, fmt: str, split: str) -> dict:
    if not isinstance(obj, dict):
        raise MWeightError(f"{path}: top level is {type(obj).__name__} (expected a dict with keys train/valid/test, {fmt} layout)")
    absent = [s for s in SPLITS if s not in obj]
    if absent:
        split = absent[0]
        raise MWeightError(f"{path}: field '{split}' missing (expected keys train/valid/test, {fmt} layout; found {sorted(map(str, obj))[:6]})")
    part = obj[split]
    if not isinstance(part, dict):
        raise MWeightError(f"{path}: field '{split}' is {type(part).__name__} (expected a dict of arrays)")
    return part


def _require(path: Path, part: dict, split: str, key: str, fmt: str) -> np.ndarray:
    if key not in part:
        raise MWeightError(f"{path}: field '{split}/{key}' missing (expected {fmt} keys; found {sorted(map(str, part))})")
    return np.asarray(part[key])


def _lengths_right_padded(x: np.ndarray) -> np.ndarray:
    """Lengths of end-padded (N, T, D) sequences: last step that is not all zeros, + 1."""
    nonpad = np.any(x != 0, axis=2)
    t = x.shape[1]
    last = t - np.argmax(nonpad[:, ::-1], axis=1)
    return np.where(nonpad.any(axis=1), last, 0).astype(np.int64)


def left_to_right_padded(seqs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Turn LEFT zero-padded (N, T, D_m) sequences into right-padded ones plus lengths.

    A time step is padding when it is all zeros in every modality (non-finite
    values such as -inf count as data); the leading run of such steps is cut.
    """
    first = next(iter(seqs.values()))
    n, t = first.shape[:2]
    nonpad = np.zeros((n, t), dtype=bool)
    for x in seqs.values():
        nonpad |= np.any(x != 0, axis=2)
    start = np.where(nonpad.any(axis=1), np.argmax(nonpad, axis=1), t)
    lengths = (t - start).astype(np.int64)
    idx = np.arange(t)[None, :] + start[:, None]  # step j of the output comes from start+j
    valid = idx < t
    idx = np.minimum(idx, t - 1)
    out = {}
    for name, x in seqs.items():
        y = np.take_along_axis(x, idx[:, :, None], axis=1)
        y[~valid] = 0
        out[name] = y
    return out, lengths


def _check_rows(path: Path, split: str, arrays: dict[str, np.ndarray], n: int) -> None:
    for key, arr in arrays.items():
        if arr.shape[0] != n:
            raise MWeightError(f"{path}: field '{split}/{key}' has {arr.shape[0]} rows (expected {n}, the number of labels)")
        if arr.ndim != 3:
            raise MWeightError(f"{path}: field '{split}/{key}' has shape {arr.shape} (expected (N, T, D) sequences)")


def read_mmsa(path: str | os.PathLike) -> dict:
    """Read an MMSA pickle into dataset columns (split from the pickle's own keys)."""
    path = Path(path)
    obj = load_pickle(path)
    fmt = "MMSA aligned_50/unaligned_50/unaligned_39"
    names = {"text": "text", "audio": "audio", "vision": "video"}
    cols: dict[str, list] = {"label": [], "split": [], "id": [], "transcript": []}
    mods: dict[str, list] = {}
    lens: dict[str, list] = {}
    # unimodal labels are kept only when every split has them
    unimodal = {k: [] for k in UNIMODAL_LABELS if all(isinstance(obj, dict) and isinstance(obj.get(s), dict)
                                                      and k in obj[s] for s in SPLITS)}
    for split in SPLITS:
        part = _get_split(path, obj, fmt, split)
        labels = _require(path, part, split, "regression_labels", fmt).astype(np.float32).reshape(-1)
        ids = _decode_ids(_require(path, part, split, "id", fmt))
        n = len(labels)
        if len(ids) != n:
            raise MWeightError(f"{path}: field '{split}/id' has {len(ids)} rows (expected {n})")
        for key, values in unimodal.items():
            v = np.asarray(part[key], dtype=np.float32).reshape(-1)
            if len(v) != n:
                raise MWeightError(f"{path}: field '{split}/{key}' has {len(v)} rows (expected {n}, the number of labels)")
            values.append(v)
        present = {k: np.asarray(part[k], dtype=np.float32) for k in names if k in part}
        if not present:
            raise MWeightError(f"{path}: fields '{split}/text', 'audio', 'vision' all missing (expected {fmt} keys)")
        _check_rows(path, split, present, n)
        for k, x in present.items():
            m = names[k]
            mods.setdefault(m, []).append(x)
            key = f"{k}_lengths"
            if key in part:
                ln = np.asarray(part[key]).reshape(-1).astype(np.int64)
            else:
                ln = _lengths_right_padded(x)
            lens.setdefault(m, []).append(np.minimum(ln, x.shape[1]))
        cols["label"].append(labels)
        cols["split"] += [split] * n
        cols["id"] += ids
        raw = part.get("raw_text")
        cols["transcript"] += [str(t) for t in raw] if raw is not None and len(raw) == n else [""] * n
    out = _assemble(path, cols, mods, lens, fmt, right_padded=True)
    for key, values in unimodal.items():
        out[UNIMODAL_LABELS[key]] = np.concatenate(values)
    return out


def read_mult(path: str | os.PathLike) -> dict:
    """Read a MulT/MultiBench pickle; its left padding becomes right padding + ``<m>_lengths``."""
    path = Path(path)
    obj = load_pickle(path)
    fmt = "MulT/MultiBench mosi_data.pkl"
    names = {"text": "text", "audio": "audio", "vision": "video"}
    cols: dict[str, list] = {"label": [], "split": [], "id": [], "transcript": []}
    mods: dict[str, list] = {}
    lens: dict[str, list] = {}
    for split in SPLITS:
        part = _get_split(path, obj, fmt, split)
        labels = _require(path, part, split, "labels", fmt).astype(np.float32).reshape(-1)
        n = len(labels)
        if "id" in part:
            ids = _decode_ids(part["id"])
        else:
            ids = [f"{split}_{i}" for i in range(n)]
        if len(ids) != n:
            raise MWeightError(f"{path}: field '{split}/id' has {len(ids)} rows (expected {n}, the number of labels)")
        present = {k: np.asarray(part[k], dtype=np.float32) for k in names if k in part}
        if not present:
            raise MWeightError(f"{path}: fields '{split}/text', 'audio', 'vision' all missing (expected {fmt} keys)")
        _check_rows(path, split, present, n)
        ts = {x.shape[1] for x in present.values()}
        if len(ts) != 1:
            raise MWeightError(f"{path}: fields '{split}/text|audio|vision' have lengths {sorted(ts)} (expected one aligned length, e.g. 50)")
        right, ln = left_to_right_padded(present)
        for k, x in right.items():
            mods.setdefault(names[k], []).append(x)
            lens.setdefault(names[k], []).append(ln)
        cols["label"].append(labels)
        cols["split"] += [split] * n
        cols["id"] += ids
        cols["transcript"] += [""] * n
    return _assemble(path, cols, mods, lens, fmt, right_padded=False)


def _assemble(path: Path, cols, mods, lens, fmt: str, right_padded: bool) -> dict:
    out: dict = {
        "label": np.concatenate(cols["label"]).astype(np.float32),
        "split": np.array(cols["split"], dtype=str),
        "id": np.array(cols["id"], dtype=str),
    }
    for m, parts in mods.items():
        shapes = {p.shape[1:] for p in parts}
        if len(shapes) != 1:
            raise MWeightError(f"{path}: field '{m}' has shapes {sorted(shapes)} across splits (expected the same (T, D))")
        out[m] = np.concatenate(parts).astype(np.float32)
        out[f"{m}_lengths"] = np.concatenate(lens[m]).astype(np.int64)
    if any(cols["transcript"]):
        out["transcript"] = np.array(cols["transcript"], dtype=str)
    out["_source"] = {"format": fmt, "padding_in_file": "end" if right_padded else "start (converted to end)"}
    # video ids are needed for the split check; keep them derivable
    out["_videos"] = sorted({video_of(i) for i in out["id"]})
    return out
