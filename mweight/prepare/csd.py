"""Read and write CMU-SDK computational sequences (``.csd``, HDF5) with plain h5py.

Layout: one top-level group (the "root name", which need not match the file
name, e.g. ``COAVAREP`` or ``FACET 4.1``) holding ``data/<video_id>/features``
(T, D) and ``data/<video_id>/intervals`` (T, 2) in seconds, and
``metadata/<key>``, one string each.

Quirks handled (see DATA.md): metadata stored as raw strings (old files) or JSON
(SDK v1.2), read back as ``bytes`` under h5py 3 (and sometimes stored as the
literal text ``"b'...'"`` by an SDK that re-saved such a value); word features
as fixed-width byte strings (``b'sp'`` = pause), decoded to ``str``; gzip or
uncompressed datasets; float32 or float64 (kept as stored); -inf/NaN values
(kept; the aligner ignores them when averaging).

Opened with ``hashing=True``, a file is read through :class:`..fileio.HashingReader`
and :meth:`ComputationalSequence.sha256` gives its SHA-256 from the bytes read
(the rest of the file is hashed when asked), so no second pass over the file is
needed for ``meta_json``. :meth:`LazyVideos.file_order` gives the videos in the
order of their data in the file: read in that order, the file is read once.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from ..errors import MWeightError
from ..fileio import HashingReader


@dataclass
class ComputationalSequence:
    """One ``.csd`` file in memory.

    ``data[video_id] = (features, intervals)`` with features (T, D) (float, or
    ``str`` for words) and intervals (T, 2) float64 seconds.
    """

    root: str
    data: dict[str, tuple[np.ndarray, np.ndarray]]
    metadata: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    digest: str | None = None  # SHA-256 of the file, when read with hashing=True (eagerly)

    def _first_features(self) -> tuple[np.dtype, tuple]:
        """dtype and shape of the first video's features (lazily: from the file's header, no data read)."""
        if isinstance(self.data, LazyVideos):
            return self.data.features_info()
        for f, _ in self.data.values():
            return f.dtype, f.shape
        return np.dtype(np.float64), (0, 0)

    @property
    def is_words(self) -> bool:
        dtype, _ = self._first_features()  # the first video decides
        return dtype.kind in "USO"

    @property
    def dim(self) -> int:
        _, shape = self._first_features()
        return int(np.prod(shape[1:])) if len(shape) > 1 else 1  # (T,) features are read as (T, 1)

    def sha256(self) -> str | None:
        """SHA-256 of the file, for a sequence opened with ``hashing=True`` (else ``None``).

        For a lazy sequence this hashes what has not been read yet, so call it once
        everything needed was read.
        """
        if isinstance(self.data, LazyVideos):
            return self.data.sha256()
        return self.digest

    def n_rows(self) -> int:
        return sum(len(i) for _, i in self.data.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def close(self) -> None:
        """Close the HDF5 file behind a lazily opened sequence (no-op for an eager one)."""
        close = getattr(self.data, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "ComputationalSequence":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LazyVideos(Mapping):
    """``video_id -> (features, intervals)`` read from the open file one video at a time.

    Keys come from the file's index without reading any array, so memory stays
    bounded by the largest video however large the file is (MOSEI's COVAREP is
    several GB). Every access reads and validates that video again; callers keep
    what they need.
    """

    def __init__(self, path: Path, handle, group, videos: set[str] | None = None, reader: HashingReader | None = None):
        self.path, self._handle, self._group, self._reader = path, handle, group, reader
        self._keys = [k for k in group.keys() if videos is None or k in videos]
        self._index = set(self._keys)
        self._digest: str | None = None

    def __getitem__(self, vid: str) -> tuple[np.ndarray, np.ndarray]:
        if vid not in self._index:
            raise KeyError(vid)
        return _read_video(self.path, self._group, vid)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, vid: object) -> bool:
        return vid in self._index

    def intervals(self, vid: str) -> np.ndarray:
        """Only the intervals of one video (validated as (T, 2)); no feature data is read."""
        if vid not in self._index:
            raise KeyError(vid)
        entry = self._group[vid]
        if "intervals" not in entry:
            raise MWeightError(f"{self.path}: field 'data/{vid}/intervals' missing (expected a dataset)")
        try:
            iv = np.asarray(entry["intervals"][()], dtype=np.float64)
        except OSError as exc:
            raise MWeightError(f"{self.path}: field 'data/{vid}' unreadable (truncated file? {str(exc)[:80]})") from None
        if iv.ndim != 2 or iv.shape[1] != 2:
            raise MWeightError(f"{self.path}: field 'data/{vid}/intervals' has shape {iv.shape} (expected (T, 2) start/end seconds)")
        return iv

    def features_info(self) -> tuple[np.dtype, tuple]:
        """dtype and shape of the first video's features, from the header only."""
        for vid in self._keys:
            entry = self._group[vid]
            if "features" not in entry:
                raise MWeightError(f"{self.path}: field 'data/{vid}/features' missing (expected a dataset)")
            return entry["features"].dtype, entry["features"].shape
        return np.dtype(np.float64), (0, 0)

    def file_order(self, videos: list[str] | None = None) -> list[str]:
        """``videos`` (default: all) sorted by where their data starts in the file.

        The SDK's files store videos in an order unrelated to their ids; reading
        them in file order makes the read (and the hash while reading) one
        sequential pass. Videos whose position is unknown keep their order, last.
        """
        videos = list(self._keys if videos is None else videos)

        def start(vid: str) -> float:
            try:
                entry = self._group[vid]
                offsets = []
                for name in ("features", "intervals"):
                    ds = entry[name]
                    off = ds.id.get_offset()
                    if off is None and ds.chunks is not None and ds.id.get_num_chunks():
                        off = ds.id.get_chunk_info(0).byte_offset  # chunked (e.g. gzip) dataset: its first chunk
                    if off is not None:
                        offsets.append(off)
                return float(min(offsets)) if offsets else float("inf")
            except Exception:  # an odd or broken entry: read it where it was; its error comes from the read
                return float("inf")

        return sorted(videos, key=start)

    def sha256(self) -> str | None:
        """The file's SHA-256 (opened with ``hashing=True``), else ``None``; hashes the unread rest."""
        if self._reader is None:
            return None
        if self._digest is None:
            self._digest = self._reader.hexdigest()
        return self._digest

    def close(self) -> None:
        self._handle.close()
        if self._reader is not None:
            self._reader.close()


def decode_metadata(value: object) -> str:
    """One metadata value as text: bytes decoded, JSON strings unwrapped, ``"b'..'"`` unwrapped."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value)
    if len(text) >= 3 and text[:2] in ("b'", 'b"') and text[-1] == text[1]:
        text = text[2:-1]  # an SDK re-saved str(bytes) under h5py 3
    if text[:1] in ('"', "{", "["):
        try:
            loaded = json.loads(text)
        except ValueError:
            return text
        return loaded if isinstance(loaded, str) else json.dumps(loaded)
    return text


def _open_h5(path: Path, hashing: bool = False):
    """``(h5py file, HashingReader or None)``; with ``hashing`` HDF5 reads through the reader."""
    import h5py

    if not path.is_file():
        raise MWeightError(f"{path}: file not found (expected a CMU-SDK computational sequence .csd)")
    reader = HashingReader(path) if hashing else None
    try:
        return (h5py.File(reader if reader is not None else path, "r"), reader)
    except OSError as exc:
        if reader is not None:
            reader.close()
        msg = str(exc).splitlines()[0][:120] if str(exc) else "unreadable"
        raise MWeightError(f"{path}: not a readable HDF5 .csd file (truncated or wrong format: {msg})") from None


def _pick_root(path: Path, handle) -> str:
    import h5py

    groups = [k for k in handle.keys() if isinstance(handle[k], h5py.Group)]
    with_data = [k for k in groups if "data" in handle[k] and isinstance(handle[k]["data"], h5py.Group)]
    if not with_data:
        found = ", ".join(groups) or "nothing"
        raise MWeightError(
            f"{path}: field '<root>/data' missing (expected one top-level group with data/<video_id>/features "
            f"and intervals; found {found})"
        )
    return with_data[0]


def read_csd(path: str | os.PathLike, videos: set[str] | None = None, progress: bool = False,
             hashing: bool = False) -> ComputationalSequence:
    """Read a whole ``.csd`` file (or only ``videos``) into memory and validate it (:func:`open_csd` reads lazily).

    Raises :class:`MWeightError` naming the file, the field and what was expected
    for a missing/non-HDF5 file, a missing ``data`` group, or a video whose
    features and intervals disagree in rows or whose intervals are not (T, 2).
    With ``hashing``, the file's SHA-256 is computed while reading (``.sha256()``).
    """
    path = Path(path)
    handle, reader = _open_h5(path, hashing)
    with handle, (reader or contextlib.nullcontext()):
        root = _pick_root(path, handle)
        group = handle[root]
        metadata = _read_metadata(group)
        data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        keys = list(group["data"].keys())
        iterator = keys
        if progress:
            from tqdm import tqdm

            iterator = tqdm(keys, desc=f"reading {path.name}", unit=" videos", leave=False, disable=None)
        for vid in iterator:
            if videos is not None and vid not in videos:
                continue
            data[vid] = _read_video(path, group["data"], vid)
        handle.close()
        digest = reader.hexdigest() if reader is not None else None
    name = metadata.get("root name") or root
    return ComputationalSequence(root=name, data=data, metadata=metadata, path=path, digest=digest)


def open_csd(path: str | os.PathLike, videos: set[str] | None = None, hashing: bool = False) -> ComputationalSequence:
    """Open a ``.csd`` file lazily: ``data`` is a :class:`LazyVideos` (one video read per access).

    Close it (``with open_csd(p) as seq:``) when done. Errors as :func:`read_csd`,
    raised when the faulty video is read. With ``hashing``, ``seq.sha256()`` gives
    the file's SHA-256 from the bytes read (plus the rest of the file).
    """
    path = Path(path)
    handle, reader = _open_h5(path, hashing)
    try:
        root = _pick_root(path, handle)
        metadata = _read_metadata(handle[root])
        data = LazyVideos(path, handle, handle[root]["data"], videos, reader)
    except BaseException:
        handle.close()
        if reader is not None:
            reader.close()
        raise
    return ComputationalSequence(root=metadata.get("root name") or root, data=data, metadata=metadata, path=path)


def _read_metadata(group) -> dict[str, str]:
    metadata: dict[str, str] = {}
    if "metadata" in group:
        for key in group["metadata"].keys():
            try:
                metadata[key] = decode_metadata(group["metadata"][key][()])
            except Exception:  # a broken metadata entry is not worth failing on
                metadata[key] = ""
    return metadata


def _read_video(path: Path, data_group, vid: str) -> tuple[np.ndarray, np.ndarray]:
    """One video's validated ``(features, intervals)`` from the file's ``data`` group."""
    entry = data_group[vid]
    for name in ("features", "intervals"):
        if name not in entry:
            raise MWeightError(f"{path}: field 'data/{vid}/{name}' missing (expected a dataset)")
    try:
        feats = entry["features"][()]
        intervals = np.asarray(entry["intervals"][()], dtype=np.float64)
    except OSError as exc:
        raise MWeightError(f"{path}: field 'data/{vid}' unreadable (truncated file? {str(exc)[:80]})") from None
    return _validate(path, vid, feats, intervals)


def _validate(path: Path, vid: str, feats: np.ndarray, intervals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feats = np.asarray(feats)
    if feats.dtype.kind == "S":
        feats = np.char.decode(feats, "utf-8", errors="replace")
    elif feats.dtype.kind == "O":
        feats = np.array([x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in feats.ravel()]).reshape(feats.shape)
    elif feats.dtype.kind not in "fiuUb":
        raise MWeightError(f"{path}: field 'data/{vid}/features' has dtype {feats.dtype} (expected float or byte-string words)")
    if feats.ndim == 1:
        feats = feats[:, None]
    if intervals.ndim != 2 or intervals.shape[1] != 2:
        raise MWeightError(f"{path}: field 'data/{vid}/intervals' has shape {intervals.shape} (expected (T, 2) start/end seconds)")
    if feats.shape[0] != intervals.shape[0]:
        raise MWeightError(
            f"{path}: fields 'data/{vid}/features' and 'intervals' have {feats.shape[0]} and "
            f"{intervals.shape[0]} rows (expected the same number)"
        )
    if feats.ndim != 2:
        feats = feats.reshape(feats.shape[0], -1)
    if feats.dtype.kind in "iub":
        feats = feats.astype(np.float64)
    return feats, intervals


def write_csd(
    path: str | os.PathLike,
    root: str,
    data: Mapping[str, tuple[np.ndarray, np.ndarray]],
    metadata: Mapping[str, str] | None = None,
    *,
    metadata_style: str = "raw",
    compression: str | None = None,
) -> None:
    """Write ``data[video_id] = (features, intervals)`` in the exact SDK ``.csd`` layout.

    ``metadata_style`` is ``"raw"`` (old files: plain vlen strings) or ``"json"``
    (SDK v1.2: each value ``json.dumps``-ed). Word features given as ``str`` are
    stored as fixed-width byte strings like the real words file. ``compression``
    may be ``"gzip"``. Used by the tests and to build fixtures.
    """
    import h5py

    meta = {"root name": root, "computational sequence description": "written by mweight",
            "dimension names": "None", "md5": "None", "uuid": "None"}
    meta.update(metadata or {})
    path = Path(path)
    with h5py.File(path, "w") as handle:
        group = handle.create_group(root)
        data_group = group.create_group("data")
        for vid, (feats, intervals) in data.items():
            feats = np.asarray(feats)
            if feats.dtype.kind == "U":
                feats = np.char.encode(feats, "utf-8")
            g = data_group.create_group(vid)
            g.create_dataset("features", data=feats, compression=compression)
            g.create_dataset("intervals", data=np.asarray(intervals), compression=compression)
        meta_group = group.create_group("metadata")
        for key, value in meta.items():
            text = json.dumps(str(value)) if metadata_style == "json" else str(value)
            ds = meta_group.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            ds[0] = text

