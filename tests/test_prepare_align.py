"""Vectorised alignment: hand-computed cases, and identical output to the SDK's align."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from mweight.prepare.align import (
    _group, _range_sums, align, align_video, as_sdk_entries, contiguous_ranges, finite_mean_reduce, overlaps,
    sdk_mean_collapse,
)
from mweight.prepare.csd import read_csd, write_csd
from prepare_fixtures import frames

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EPS = 1e-5


def test_overlap_clip_and_epsilon():
    ref = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 4.0]])  # row 1 zero-length: no output
    sub = np.array([[0.5, 1.5], [1.5, 2.5], [2.0 + 1e-6, 3.0], [3.0, 3.0 + 1e-6], [3.5, 5.0]])
    ref_idx, sub_idx, clipped = overlaps(ref, sub, EPS)
    # row 0: [0.5,1.5] -> [1,1.5]; [1.5,2.5] -> [1.5,2]; [2+1e-6,3] clips to length -1e-6: dropped
    # row 2: [2+1e-6,3] touches at 3 -> length 0: dropped; [3,3+1e-6] length 1e-6 < eps: dropped; [3.5,5] -> [3.5,4]
    assert ref_idx.tolist() == [0, 0, 2]
    assert sub_idx.tolist() == [0, 1, 4]
    np.testing.assert_allclose(clipped, [[1.0, 1.5], [1.5, 2.0], [3.5, 4.0]])


def test_mean_ignores_nonfinite_and_unsorted_input():
    ref = np.array([[0.0, 1.0], [1.0, 2.0], [5.0, 6.0]])
    sub_int = np.array([[1.2, 1.4], [0.0, 0.5], [0.5, 1.0], [1.0, 1.2]])  # not sorted by start
    feats = np.array([[4.0, np.nan], [1.0, -np.inf], [3.0, np.nan], [2.0, 7.0]])
    a = align_video(ref, sub_int, feats, "mean", EPS)
    assert a.ref_rows.tolist() == [0, 1]  # row 2 overlaps nothing: no output, like the SDK
    np.testing.assert_allclose(a.features[0, 0], 2.0)
    assert np.isnan(a.features[0, 1])  # no finite value in that column
    np.testing.assert_allclose(a.features[1], [3.0, 7.0])
    np.testing.assert_allclose(a.intervals, [[0.0, 1.0], [1.0, 1.4]])


def test_no_collapse_keeps_start_order():
    ref = np.array([[0.0, 10.0]])
    sub_int = np.array([[5.0, 6.0], [1.0, 2.0], [1.0, 1.5], [20.0, 21.0]])
    a = align_video(ref, sub_int, np.arange(4.0)[:, None], None, EPS)
    assert a.offsets.tolist() == [0, 3]
    assert a.sub_rows.tolist() == [1, 2, 0]  # stable sort by start, as the SDK's sorted()


def test_long_interval_first_does_not_hide_later_rows():
    # ends not sorted: a long early interval must not break the candidate window
    ref = np.array([[0.0, 1.0], [8.0, 9.0]])
    sub_int = np.array([[0.0, 100.0], [0.5, 0.7], [8.1, 8.2]])
    ref_idx, sub_idx, _ = overlaps(ref, sub_int, EPS)
    assert list(zip(ref_idx.tolist(), sub_idx.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 2)]


def _synthetic(rng, videos=("vid_a", "-vidB", "vidC"), n_words=80, dim=6):
    words, frames, labels, glove = {}, {}, {}, {}
    for v in videos:
        b = np.round(np.cumsum(rng.uniform(0.05, 0.5, n_words + 1)), 2)
        iv = np.stack([b[:-1], b[1:]], 1)
        iv[7, 1] = iv[7, 0]  # a zero-length word
        toks = np.array([["sp" if k % 5 == 0 else f"w{k}"] for k in range(n_words)])
        words[v] = (toks, iv)
        glove[v] = (rng.normal(size=(n_words, 4)), iv.copy())
        t = np.arange(0.0, b[-1] + 0.5, 0.01)
        f = rng.normal(size=(len(t), dim)) * 10
        f[rng.random(f.shape) < 0.03] = -np.inf
        f[rng.random(f.shape) < 0.03] = np.nan
        f[:40, 2] = np.nan  # a column with no finite value for the first words
        frames[v] = (f, np.stack([t, t + 0.01], 1))
        cuts = np.sort(rng.choice(np.arange(1, n_words), 6, replace=False))
        seg = np.stack([b[np.r_[0, cuts]], b[np.r_[cuts, n_words]]], 1)
        seg[2, 0] -= 0.3  # overlapping segments
        seg[4, 1] = seg[4, 0]  # zero-length segment
        labels[v] = (rng.uniform(-3, 3, (len(seg), 1)), seg)
    return words, glove, frames, labels


def _sdk_run(recipe, reference, collapse):
    mmdatasdk = pytest.importorskip("mmsdk.mmdatasdk")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ds = mmdatasdk.mmdataset(recipe)
        ds.align(reference, collapse_functions=collapse)
    return ds


def _assert_same(ours, sdk_seq, atol=1e-9):
    assert set(ours) == set(sdk_seq.keys())
    for k, v in sdk_seq.data.items():
        np.testing.assert_allclose(ours[k]["intervals"], v["intervals"], rtol=0, atol=atol)
        f = np.asarray(v["features"])
        if f.dtype.kind in "fc":
            np.testing.assert_allclose(ours[k]["features"], f, rtol=0, atol=1e-5, equal_nan=True)
        else:
            assert np.asarray(ours[k]["features"]).astype(str).tolist() == np.char.decode(f.astype("S"), "utf-8").tolist()


def test_cross_check_with_sdk(tmp_path):
    pytest.importorskip("mmsdk")
    import mmsdk.mmdatasdk.dataset.dataset as sdk_dataset

    eps = sdk_dataset.epsilon  # 0.0.6 uses 10e-4; ours takes it as a parameter
    words, glove, frames, labels = _synthetic(np.random.default_rng(3))
    paths = {}
    for name, data, kw in [("words", words, {}), ("glove", glove, {}), ("covarep", frames, {"compression": "gzip"}),
                           ("labels", labels, {"metadata_style": "json"})]:
        paths[name] = str(tmp_path / f"CMU_MOSI_{name}.csd")
        write_csd(paths[name], f"root {name}", data, **kw)
    W, A, L = (read_csd(paths[n]) for n in ("words", "covarep", "labels"))
    # 1) frames -> words, collapse = mean of finite values
    sdk = _sdk_run({"words": paths["words"], "covarep": paths["covarep"]}, "words", [sdk_mean_collapse])
    _assert_same(as_sdk_entries(align(W.data, A.data, "mean", eps)), sdk["covarep"])
    # 2) words -> labelled segments, no collapse (per-segment word sequences, clipped)
    sdk = _sdk_run({"labels": paths["labels"], "words": paths["words"]}, "labels", None)
    _assert_same(as_sdk_entries(align(L.data, W.data, None, eps)), sdk["words"])
    # 3) frames -> segments, collapse (segment-level vectors)
    sdk = _sdk_run({"labels": paths["labels"], "covarep": paths["covarep"]}, "labels", [sdk_mean_collapse])
    _assert_same(as_sdk_entries(align(L.data, A.data, "mean", eps)), sdk["covarep"])
    assert not any(k.endswith("[4]") for k in sdk["covarep"].keys())  # zero-length segment dropped by both


@pytest.mark.skipif(not (SHARED / "mosi_csd").is_dir(), reason="shared data absent")
def test_real_labels_and_bclstm_match_sdk():
    pytest.importorskip("mmsdk")
    import mmsdk.mmdatasdk.dataset.dataset as sdk_dataset

    derived = SHARED / "mosi_csd" / "derived"
    lab, aud = derived / "CMU_MOSI_Opinion_Labels.csd", derived / "CMU_MOSI_bcLSTM_Audio.csd"
    sdk = _sdk_run({"labels": str(lab), "audio": str(aud)}, "labels", [sdk_mean_collapse])
    ours = as_sdk_entries(align(read_csd(lab).data, read_csd(aud).data, "mean", sdk_dataset.epsilon))
    assert len(ours) == 2198 and "2WGyTLYerpo[43]" not in ours  # PROVENANCE: SDK gives 2198 segments
    _assert_same(ours, sdk["audio"])
    # with our default epsilon too: same segments
    assert len(as_sdk_entries(align(read_csd(lab).data, read_csd(aud).data, "mean"))) == 2198


def _old_align_mean(ref, sub_int, feats, eps=EPS):
    """The gathered-rows path (the code before the range sums): rows gathered, then reduceat."""
    ref_idx, sub_idx, _ = overlaps(ref, sub_int, eps)
    rows, offsets = _group(ref_idx)
    return rows, finite_mean_reduce(np.asarray(feats)[sub_idx], offsets[:-1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(6))
def test_range_sums_give_the_same_bits_as_gathered_rows(seed, dtype):
    """Words over frames (shared boundary frames, gaps, a word at the very end, -inf/NaN in runs and
    whole columns, skewed correlated values): identical bits to the gathered path, input untouched
    unless overwrite, and the same with overwrite."""
    rng = np.random.default_rng(seed)
    seconds = float(rng.uniform(2, 20))
    feats, iv = frames(rng, seconds, 100.0, 7, -np.inf)
    feats = feats.astype(dtype)
    feats[rng.random(len(feats)) < 0.03, 2] = np.nan
    if seed % 2:
        feats[:, 5] = np.nan  # a column without any finite value
    if seed == 3:
        feats[rng.integers(0, len(feats), 3)] = np.inf  # whole rows of +inf
    b = np.cumsum(rng.uniform(0.05, 0.6, int(seconds / 0.05)))
    b = b[b < seconds + 0.3]  # the last word may end after the last frame
    words = np.stack([b[:-1], b[1:]], 1)
    words = words[rng.random(len(words)) > 0.15]  # gaps between words
    before = feats.copy()
    rows, expected = _old_align_mean(words, iv, feats)
    a = align_video(words, iv, feats, "mean", EPS)
    ref_idx, sub_idx, _ = overlaps(words, iv, EPS)
    assert contiguous_ranges(sub_idx, _group(ref_idx)[1]) is not None  # the fast path was taken
    assert np.array_equal(a.ref_rows, rows) and a.features.tobytes() == expected.tobytes()
    assert before.tobytes() == feats.tobytes()  # not modified without overwrite
    b_ = align_video(words, iv, feats, "mean", EPS, overwrite=True)
    assert b_.features.tobytes() == expected.tobytes()


def test_range_sums_unsorted_or_skipping_frames_fall_back():
    ref = np.array([[0.0, 1.0], [1.0, 2.0]])
    sub_int = np.array([[1.2, 1.4], [0.0, 0.5], [0.5, 1.0], [1.0, 1.2]])  # not sorted by start
    ref_idx, sub_idx, _ = overlaps(ref, sub_int, EPS)
    assert contiguous_ranges(sub_idx, _group(ref_idx)[1]) is None
    feats = np.arange(8, dtype=float).reshape(4, 2)
    rows, expected = _old_align_mean(ref, sub_int, feats)
    assert align_video(ref, sub_int, feats, "mean", EPS).features.tobytes() == expected.tobytes()


def test_range_sums_of_overlapping_and_end_ranges():
    rng = np.random.default_rng(4)
    values = rng.lognormal(size=(30, 3))
    lo = np.array([0, 5, 4, 29, 10, 28, 0])
    hi = np.array([5, 9, 30, 30, 11, 30, 30])
    got = _range_sums(values, lo, hi)
    for k in range(len(lo)):
        expected = np.add.reduceat(values[lo[k]:hi[k]], [0], axis=0, dtype=np.float64)[0]
        assert got[k].tobytes() == expected.tobytes()
