"""Vectorised alignment of computational sequences, with the CMU SDK's semantics.

For each reference interval ``[r0, r1]`` the SDK (``mmdataset.align``):

1. skips the reference row when ``|r0 - r1| < epsilon`` (zero-length rows, e.g.
   MOSI segment ``2WGyTLYerpo_44``, get no output at all);
2. takes the rows ``[s0, s1]`` of the other sequence (all its rows for the
   video, stably sorted by start time) with ``r1 - s0 > -epsilon`` and
   ``s1 - r0 > -epsilon`` (overlap, with an epsilon of slack);
3. clips them to ``[max(s0, r0), min(s1, r1)]`` and keeps those whose clipped
   length ``|c0 - c1| > epsilon``;
4. optionally collapses them into one row: intervals ``[min c0, max c1]`` and a
   function of the features (here: the mean of the finite values per column,
   so COVAREP's -inf and FACET's NaN are ignored; NaN when a column has no finite value);
5. gives no output for the row when nothing is left.

The SDK does this with a Python loop over reference rows; here all rows of a
video are done at once with ``searchsorted`` (candidate windows), one exact
vectorised test and ``reduceat`` (means), which gives the same rows, intervals
and values. Memory is per video, so a MOSI-sized COVAREP stays far below 2 GB.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

# Upstream SDK v1.2 uses ``epsilon = 10e-6`` (1e-5); the PyPI copy
# cmu-multimodal-sdk 0.0.6 uses ``10e-4`` (1e-3). Both drop zero-length rows.
EPSILON = 1e-5


@dataclass
class Aligned:
    """The other sequence's rows for the reference rows of one video.

    ``ref_rows`` (K,): reference rows that got output, ascending;
    rows ``offsets[k]:offsets[k+1]`` of ``intervals`` (P, 2) / ``features``
    (P, D) belong to ``ref_rows[k]``. After collapsing, P == K.
    """

    ref_rows: np.ndarray
    offsets: np.ndarray
    intervals: np.ndarray
    features: np.ndarray
    sub_rows: np.ndarray | None = None  # rows of the other sequence (original order), before collapsing

    def __len__(self) -> int:
        return len(self.ref_rows)


def overlaps(ref_intervals: np.ndarray, sub_intervals: np.ndarray, epsilon: float = EPSILON):
    """SDK overlap rule for all reference rows at once.

    Returns ``(ref_idx, sub_idx, clipped)``: pairs sorted by reference row and,
    within a row, by the other sequence's stable start-time order; ``sub_idx``
    indexes the *unsorted* ``sub_intervals``; ``clipped`` (P, 2).
    """
    ref = np.asarray(ref_intervals, dtype=np.float64).reshape(-1, 2)
    sub = np.asarray(sub_intervals, dtype=np.float64).reshape(-1, 2)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2)))
    if len(ref) == 0 or len(sub) == 0:
        return empty
    order = np.argsort(sub[:, 0], kind="stable")  # the SDK's sorted(..., key=start) is stable too
    s0, s1 = sub[order, 0], sub[order, 1]
    r0, r1 = ref[:, 0], ref[:, 1]
    ref_ok = ~(np.abs(r0 - r1) < epsilon)
    # Candidate window per reference row, a superset of the exact rule (2*eps slack);
    # the end bound uses the running maximum of ends because ends need not be sorted.
    hi = np.searchsorted(s0, r1 + 2 * epsilon, side="right")
    lo = np.searchsorted(np.maximum.accumulate(s1), r0 - 2 * epsilon, side="left")
    counts = np.where(ref_ok, np.maximum(hi - lo, 0), 0)
    total = int(counts.sum())
    if total == 0:
        return empty
    ref_idx = np.repeat(np.arange(len(ref)), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(total) - np.repeat(starts, counts) + np.repeat(lo, counts)
    rr0, rr1, ss0, ss1 = r0[ref_idx], r1[ref_idx], s0[pos], s1[pos]
    hit = ((rr1 - ss0) > -epsilon) & ((ss1 - rr0) > -epsilon)
    c0 = np.maximum(ss0, rr0)
    c1 = np.minimum(ss1, rr1)
    keep = hit & (np.abs(c0 - c1) > epsilon)
    clipped = np.stack([c0[keep], c1[keep]], axis=1)
    return ref_idx[keep], order[pos[keep]], clipped


def _group(ref_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique reference rows (sorted input) and CSR offsets."""
    if len(ref_idx) == 0:
        return np.zeros(0, np.int64), np.zeros(1, np.int64)
    change = np.flatnonzero(np.diff(ref_idx)) + 1
    starts = np.concatenate([[0], change])
    return ref_idx[starts], np.concatenate([starts, [len(ref_idx)]])


def finite_mean_reduce(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per-group mean of the finite values of ``values`` (P, D) for groups starting at ``starts``."""
    values = np.asarray(values)
    finite = np.isfinite(values)
    sums = np.add.reduceat(np.where(finite, values, 0.0), starts, axis=0, dtype=np.float64)
    counts = np.add.reduceat(finite, starts, axis=0, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts  # 0/0 -> NaN: no finite value in that column


def contiguous_ranges(sub_idx: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(lo, hi)`` when every group ``sub_idx[offsets[k]:offsets[k+1]]`` is the run ``lo[k], lo[k]+1, ..., hi[k]-1``.

    That is the usual case (frames sorted by time, each word covering consecutive
    frames; neighbouring words may share a frame); ``None`` otherwise.
    """
    if len(sub_idx) == 0:
        return None
    step = np.diff(sub_idx)
    inside = np.ones(len(step), bool)
    inside[offsets[1:-1] - 1] = False  # the step from one group's last row to the next group's first
    if not (step[inside] == 1).all():
        return None
    return sub_idx[offsets[:-1]], sub_idx[offsets[1:] - 1] + 1


def _range_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``values[lo[k]:hi[k]].sum(0)`` in float64 for every k, ranges possibly overlapping.

    One ``reduceat`` over interleaved bounds ``[lo0, hi0, lo1, hi1, ...]`` (the
    even results are the ranges, the odd ones are discarded), so each range is
    summed row after row exactly as ``reduceat`` over a gathered copy would, without
    the copy. ``reduceat`` bounds must be < len(values): ranges ending at the last
    row are summed separately (at most a few per video).
    """
    n = len(values)
    at_end = hi >= n
    out = np.empty((len(lo),) + values.shape[1:], dtype=np.float64)
    inner = np.flatnonzero(~at_end)
    if len(inner):
        bounds = np.empty(2 * len(inner), dtype=np.intp)
        bounds[0::2], bounds[1::2] = lo[inner], hi[inner]
        out[inner] = np.add.reduceat(values, bounds, axis=0, dtype=np.float64)[0::2]
    for k in np.flatnonzero(at_end):
        out[k] = np.add.reduceat(values[lo[k]:], np.zeros(1, np.intp), axis=0, dtype=np.float64)[0]
    return out


def finite_mean_ranges(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Mean of the finite values of ``values[lo[k]:hi[k]]`` per column, for every k.

    Gives the same bits as :func:`finite_mean_reduce` over the gathered rows (the
    same sums in the same order, the same integer counts), faster: no gathered
    copy; the rows holding -inf/NaN are found from the row sums (non-finite iff
    a value is, or the sum overflows: then the row is merely checked), and only
    they are zero-filled (in place with ``overwrite``, the caller's array being
    expendable; else in a copy) and counted.
    """
    values = np.asarray(values)
    if values.ndim == 2 and values.dtype.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            candidates = np.flatnonzero(~np.isfinite(values.sum(axis=1)))
        finite = np.isfinite(values[candidates])
        has_bad = ~finite.all(axis=1)
        bad_rows, finite = candidates[has_bad], finite[has_bad]
    else:
        finite_all = np.isfinite(values).reshape(len(values), -1)
        bad_rows = np.flatnonzero(~finite_all.all(axis=1))
        finite = np.isfinite(values[bad_rows])
    clean = values
    if len(bad_rows):
        if not (overwrite and values.flags.writeable):
            clean = values.copy()
        clean[bad_rows] = np.where(finite, values[bad_rows], 0.0)
    sums = _range_sums(clean, lo, hi)
    counts = np.broadcast_to((hi - lo).astype(np.int64).reshape((-1,) + (1,) * (values.ndim - 1)), sums.shape)
    if len(bad_rows):
        # non-finite values per range and column: cumulative counts over the bad rows only
        cum = np.zeros((len(bad_rows) + 1,) + values.shape[1:], dtype=np.int64)
        np.cumsum(~finite, axis=0, dtype=np.int64, out=cum[1:])
        counts = counts - (cum[np.searchsorted(bad_rows, hi)] - cum[np.searchsorted(bad_rows, lo)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts  # 0/0 -> NaN: no finite value in that column


def align_video(
    ref_intervals: np.ndarray,
    sub_intervals: np.ndarray,
    sub_features: np.ndarray,
    collapse: str | None = "mean",
    epsilon: float = EPSILON,
    overwrite: bool = False,
) -> Aligned:
    """Align one video's other sequence to its reference rows (see module docstring).

    ``overwrite``: ``sub_features`` may be changed (its -inf/NaN set to 0), which
    saves a copy of the video when the caller does not need it afterwards.
    """
    ref_idx, sub_idx, clipped = overlaps(ref_intervals, sub_intervals, epsilon)
    rows, offsets = _group(ref_idx)
    if collapse is None or collapse == "none":
        return Aligned(rows, offsets, clipped, np.asarray(sub_features)[sub_idx], sub_rows=sub_idx)
    if collapse != "mean":
        raise ValueError(f"unknown collapse {collapse!r} (expected 'mean' or None)")
    starts = offsets[:-1]
    if len(rows) == 0:
        feats = np.zeros((0,) + np.asarray(sub_features).shape[1:])
        return Aligned(rows, np.zeros(1, np.int64), np.zeros((0, 2)), feats, sub_rows=sub_idx)
    ranges = contiguous_ranges(sub_idx, offsets)
    if ranges is not None:
        features = finite_mean_ranges(sub_features, *ranges, overwrite=overwrite)
    else:  # frames out of time order, or a word skipping a frame: gather the rows
        features = finite_mean_reduce(np.asarray(sub_features)[sub_idx], starts)
    intervals = np.stack([np.minimum.reduceat(clipped[:, 0], starts), np.maximum.reduceat(clipped[:, 1], starts)], axis=1)
    return Aligned(rows, np.arange(len(rows) + 1), intervals, features, sub_rows=sub_idx)


def align(
    reference: Mapping[str, tuple[np.ndarray, np.ndarray]],
    other: Mapping[str, tuple[np.ndarray, np.ndarray]],
    collapse: str | None = "mean",
    epsilon: float = EPSILON,
    progress: bool = False,
    desc: str = "aligning",
) -> dict[str, Aligned]:
    """Align ``other`` to ``reference`` (both ``video -> (features, intervals)``), video by video.

    Videos missing from either side are skipped (the SDK's ``unify``).
    """
    videos = [v for v in reference if v in other]
    iterator = videos
    if progress:
        from tqdm import tqdm

        iterator = tqdm(videos, desc=desc, unit=" videos", leave=False, disable=None)
    out = {}
    for vid in iterator:
        _, ref_int = reference[vid]
        feats, intervals = other[vid]
        out[vid] = align_video(ref_int, intervals, feats, collapse=collapse, epsilon=epsilon)
    return out


def as_sdk_entries(aligned: Mapping[str, Aligned]) -> dict[str, dict[str, np.ndarray]]:
    """The SDK's output layout ``{"<video>[<row>]": {"intervals", "features"}}`` (for cross-checks)."""
    out = {}
    for vid, a in aligned.items():
        for k, row in enumerate(a.ref_rows):
            s, e = a.offsets[k], a.offsets[k + 1]
            out[f"{vid}[{row}]"] = {"intervals": a.intervals[s:e], "features": a.features[s:e]}
    return out


def sdk_mean_collapse(intervals: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Collapse function for ``mmsdk``'s ``align`` that matches ``collapse="mean"`` here.

    Mean of finite values per column; word (string) features are returned
    unchanged, like the tutorial's ``avg``.
    """
    try:
        values = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError):
        return features
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, values, 0.0).sum(axis=0) / finite.sum(axis=0)


COLLAPSES: dict[str, Callable | None] = {"mean": sdk_mean_collapse, "none": None}
