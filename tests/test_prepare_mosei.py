"""``mweight prepare mosei`` as a user runs it, on small files in the exact CMU-SDK MOSEI layout."""
from __future__ import annotations

import json
import pickle

import h5py
import numpy as np
import pytest

from mweight.data import load_dataset
from mweight.prepare.datasets import MOSEI_LABELS
from mweight.prepare.folds import mosei_split_of_video
from prepare_fixtures import one_error_line, run_prepare, segment_words, word_mean, write_set

# real MOSEI video ids from the three standard folds (numeric and dash-leading ids included),
# one labelled video outside the folds, one missing from the FACET file
VIDEOS = {"hh04W3xXa5s": 3, "81406": 2, "qyJiDgtj6YE": 2, "188343": 3, "--qXJuDtHPw": 1,
          "7l3BNtSE0xc": 2, "-rxZxtG0xmY": 3, "notAFoldVid": 2}
NO_FACET = "qyJiDgtj6YE"


@pytest.fixture(scope="module")
def mosei(tmp_path_factory):
    d = tmp_path_factory.mktemp("mosei")
    made = write_set(d, VIDEOS, np.random.default_rng(7), skip={"video": {NO_FACET}})
    out = d / "mosei.npz"
    r = run_prepare("mosei", "--csd-dir", d, "--out", out)
    assert r.returncode == 0, r.stderr
    return made, out, r


def test_standard_folds_are_the_sdk_lists():
    folds = mosei_split_of_video()
    assert [list(folds.values()).count(s) for s in ("train", "valid", "test")] == [2249, 300, 678]
    assert folds["hh04W3xXa5s"] == "train" and folds["188343"] == "valid" and folds["-rxZxtG0xmY"] == "test"


def test_labels_splits_and_dropped_videos(mosei):
    made, out, r = mosei
    d = np.load(out, allow_pickle=False)
    kept = [v for v in VIDEOS if v not in (NO_FACET, "notAFoldVid")]
    assert sorted(d["id"]) == sorted(f"{v}_{j + 1}" for v in kept for j in range(VIDEOS[v]))
    folds = mosei_split_of_video()
    assert all(s == folds[i.rsplit("_", 1)[0]] for i, s in zip(d["id"], d["split"]))
    # the 7 label columns: sentiment -> label, emotions -> label_<name>, per segment
    labels = made["data"]["labels"]
    for i, sid in enumerate(d["id"]):
        vid, clip = sid.rsplit("_", 1)
        row = labels[vid][0][int(clip) - 1]
        assert d["label"][i] == np.float32(row[0])
        assert [d[f"label_{n}"][i] for n in MOSEI_LABELS[1:]] == [np.float32(x) for x in row[1:]]
    # one line says how many labelled videos were dropped for a missing modality
    lines = [ln for ln in r.stderr.splitlines() if "labelled video(s) dropped" in ln]
    assert len(lines) == 1 and "1 of 8" in lines[0] and "CMU_MOSEI_VisualFacet42.csd: 1" in lines[0], r.stderr
    assert any("outside the CMU-MOSEI folds" in ln for ln in r.stderr.splitlines())
    meta = json.loads(str(d["meta_json"]))
    assert meta["dataset"] == "CMU-MOSEI" and meta["labels"]["label"] == "sentiment"
    assert meta["dropped"]["video_missing_in_CMU_MOSEI_VisualFacet42.csd"]["ids"] == [NO_FACET]
    assert "label_fear" in r.stdout


def test_word_aligned_features_match_a_plain_loop(mosei):
    made, out, _ = mosei
    d = np.load(out, allow_pickle=False)
    data = made["data"]
    checked = 0
    for i, sid in enumerate(d["id"]):
        vid, clip = sid.rsplit("_", 1)
        s0, s1 = data["labels"][vid][1][int(clip) - 1]
        tok, w_iv = data["words"][vid]
        rows = segment_words(w_iv, tok, s0, s1)[:50]
        assert d["audio_lengths"][i] == len(rows) and d["video_lengths"][i] == len(rows)
        assert d["transcript"][i] == " ".join(tok[k, 0] for k in segment_words(w_iv, tok, s0, s1))
        for p, k in enumerate(rows):
            np.testing.assert_allclose(d["text"][i, p], data["text"][vid][0][k], rtol=1e-6)
            for role in ("audio", "video"):
                want = word_mean(*data[role][vid], *w_iv[k])
                want = np.zeros(d[role].shape[2]) if want is None else want  # words without frames: zeros
                np.testing.assert_allclose(d[role][i, p], want, rtol=1e-5, atol=1e-6, equal_nan=True)
                checked += 1
        assert not d["audio"][i, len(rows):].any()  # padding at the end
    assert checked > 100


def test_load_dataset_keeps_emotions_as_extra_labels(mosei):
    _, out, _ = mosei
    ds = load_dataset(out)
    assert ds.names == ["text", "audio", "video"]
    assert set(f"label_{n}" for n in MOSEI_LABELS[1:]) <= set(ds.columns)
    assert ds.columns["label_happy"].dtype == np.float32 and (ds.columns["label_happy"] >= 0).all()


def test_segment_level_and_openface_choice(tmp_path):
    made = write_set(tmp_path, {"hh04W3xXa5s": 2, "7l3BNtSE0xc": 2}, np.random.default_rng(3))
    of = tmp_path / "of"
    of.mkdir()
    other = write_set(of, {"hh04W3xXa5s": 2, "7l3BNtSE0xc": 2}, np.random.default_rng(4), video_dim=3,
                      names={"video": "CMU_MOSEI_VisualOpenFace2"})
    out = tmp_path / "seg.npz"
    r = run_prepare("mosei", "--csd-dir", tmp_path, "--video-csd", other["paths"]["video"], "--level", "segment", "--out", out)
    assert r.returncode == 0, r.stderr
    d = np.load(out, allow_pickle=False)
    assert d["video"].shape == (4, 3) and d["audio"].shape == (4, 9)
    for i, sid in enumerate(d["id"]):
        vid, clip = sid.rsplit("_", 1)
        seg = made["data"]["labels"][vid][1][int(clip) - 1]
        np.testing.assert_allclose(d["audio"][i], word_mean(*made["data"]["audio"][vid], *seg), rtol=1e-5)
        np.testing.assert_allclose(d["video"][i], word_mean(*other["data"]["video"][vid], *seg), rtol=1e-5, equal_nan=True)


def test_mmsa_mosei_pickle(tmp_path):
    rng = np.random.default_rng(0)
    obj = {}
    for split, vids in {"train": ["hh04W3xXa5s", "81406"], "valid": ["188343"], "test": ["7l3BNtSE0xc"]}.items():
        n = 2 * len(vids)
        lens = rng.integers(1, 50, n)
        mask = (np.arange(50)[None, :] < lens[:, None])[..., None]
        obj[split] = {"text": (rng.normal(size=(n, 50, 768)) * mask).astype(np.float32),
                      "audio": (rng.lognormal(size=(n, 50, 74)) * mask).astype(np.float32),
                      "vision": (rng.lognormal(size=(n, 50, 35)) * mask).astype(np.float32),
                      "regression_labels": np.clip(rng.gamma(2, 0.8, n) - 1.5, -3, 3).astype(np.float32),
                      "id": np.array([f"{v}$_${k}" for v in vids for k in (0, 3)], dtype=object),
                      "raw_text": np.array(["words"] * n, dtype=object)}
    pkl = tmp_path / "unaligned_50.pkl"
    pkl.write_bytes(pickle.dumps(obj, protocol=4))
    out = tmp_path / "m.npz"
    r = run_prepare("mosei", "--mmsa", pkl, "--out", out)
    assert r.returncode == 0, r.stderr
    d = np.load(out, allow_pickle=False)
    assert [int((d["split"] == s).sum()) for s in ("train", "valid", "test")] == [4, 2, 2]
    assert d["audio"].shape == (8, 50, 74) and "81406_3" in set(d["id"])
    assert json.loads(str(d["meta_json"]))["dataset"] == "CMU-MOSEI"


def test_bad_input_is_one_line(tmp_path):
    made = write_set(tmp_path, {"hh04W3xXa5s": 2, "7l3BNtSE0xc": 2}, np.random.default_rng(5))
    out = tmp_path / "never.npz"
    with h5py.File(made["paths"]["labels"], "r+") as h:  # an emotion intensity above 3
        h["Labels/data/7l3BNtSE0xc/features"][1, 4] = 4.5
    line = one_error_line(run_prepare("mosei", "--csd-dir", tmp_path, "--out", out), "label_surprise")
    assert "CMU_MOSEI_Labels.csd" in line and "[0, 3]" in line and "7l3BNtSE0xc_2" in line
    with h5py.File(made["paths"]["labels"], "r+") as h:
        h["Labels/data/7l3BNtSE0xc/features"][1, 4] = 1.0
    with h5py.File(made["paths"]["audio"], "r+") as h:  # a video whose intervals are gone
        del h["COVAREP/data/hh04W3xXa5s/intervals"]
    line = one_error_line(run_prepare("mosei", "--csd-dir", tmp_path, "--out", out), "data/hh04W3xXa5s/intervals")
    assert "CMU_MOSEI_COVAREP.csd" in line
    one_error_line(run_prepare("mosei", "--csd-dir", tmp_path, "--mmsa", made["paths"]["audio"], "--out", out), "exactly one source")
    assert not out.exists()
