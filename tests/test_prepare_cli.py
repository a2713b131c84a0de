"""``python -m mweight prepare mosi ...`` run as a user would, on the real shared files and on bad input."""
from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mweight.prepare.csd import write_csd

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CSD = SHARED / "mosi_csd"
LABELS_CSV = SHARED / "mosi_labels" / "OpinionLevelSentiment.csv"
needs_shared = pytest.mark.skipif(not CSD.is_dir(), reason="shared data absent")


def run(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "mweight", "prepare", "mosi", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd)


def _true_labels():
    with open(LABELS_CSV) as fh:
        return {f"{r[2]}_{int(r[3])}": float(r[4]) for r in csv.reader(fh)}


def _load(path):
    d = np.load(path, allow_pickle=False)  # the format forbids pickled objects
    return {k: d[k] for k in d.files}


@needs_shared
def test_word_level_from_real_csd(tmp_path):
    out = tmp_path / "mosi.npz"
    r = run("--csd-dir", CSD, "--transcripts", SHARED / "mosi_labels" / "transcripts.csv", "--out", out)
    assert r.returncode == 0, r.stderr
    d = _load(out)
    counts = {s: int((d["split"] == s).sum()) for s in ("train", "valid", "test")}
    assert counts == {"train": 1283, "valid": 229, "test": 686}
    assert "2WGyTLYerpo_44" not in set(d["id"])
    truth = _true_labels()
    np.testing.assert_allclose(d["label"], [truth[i] for i in d["id"]], atol=1e-6)
    assert d["label"].dtype == np.float32 and d["id"][0] == "03bSnISJMiM_1"
    for m, dim in (("text", 100), ("audio", 73), ("video", 100)):
        assert d[m].shape == (2198, 50, dim) and d[m].dtype == np.float32
        assert d[f"{m}_lengths"].max() == 50 and d[f"{m}_lengths"].min() >= 1
    L = d["audio_lengths"]
    assert not d["audio"][np.arange(50)[None, :] >= L[:, None]].any()  # padding at the end
    assert d["transcript"][0] == "ANYHOW IT WAS REALLY GOOD"
    meta = json.loads(str(d["meta_json"]))
    assert meta["counts"] == counts and meta["dropped"]["zero_length_segment"]["ids"] == ["2WGyTLYerpo_44"]
    assert all(len(f["sha256"]) == 64 for f in meta["files"]) and len(meta["files"]) == 6
    assert "wrote" in r.stdout


@needs_shared
def test_segment_level_words_only_and_keep_sp(tmp_path):
    out = tmp_path / "seg.npz"
    r = run("--csd-dir", CSD / "derived", "--level", "segment", "--out", out)
    assert r.returncode == 0, r.stderr
    d = _load(out)
    assert d["audio"].shape == (2198, 73) and d["split"].tolist().count("train") == 1283
    # segments that share no time with a neighbour get exactly their own bc-LSTM vector
    ref = np.load(SHARED / "mosi_bclstm_utterance_features" / "mosi_bclstm_features.npz")
    pos = {s: k for k, s in enumerate(ref["segment_id"])}
    same = np.isclose(d["audio"], ref["audio"][[pos[i] for i in d["id"]]], rtol=1e-5, atol=1e-4).all(1)
    assert same.mean() > 0.85  # the other rows average overlapping neighbours, as the SDK does
    # words + labels only: text becomes token ids with the vocabulary in meta_json
    out2 = tmp_path / "tok.npz"
    r = run("--words-csd", CSD / "CMU_MOSI_ModifiedTimestampedWords.csd", "--labels-csd",
            CSD / "derived" / "CMU_MOSI_Opinion_Labels.csd", "--keep-sp", "--seq-len", "20", "--out", out2)
    assert r.returncode == 0, r.stderr
    d = _load(out2)
    meta = json.loads(str(d["meta_json"]))
    assert d["text"].shape == (2198, 20) and d["text"].dtype.kind == "i" and "sp" in meta["text_vocab"]
    assert d["transcript"][0].split()[0] == "anyhow"


@needs_shared
def test_bclstm_keeps_its_split_columns(tmp_path):
    out = tmp_path / "b.npz"
    r = run("--bclstm", SHARED / "mosi_bclstm_utterance_features", "--out", out)
    assert r.returncode == 0, r.stderr
    d = _load(out)
    assert len(d["id"]) == 2199 and {"bclstm_split", "bclstm_protocol"} <= set(d)
    assert [int((d["bclstm_protocol"] == s).sum()) for s in ("train", "valid", "test")] == [1447, 241, 511]
    assert "LEAKAGE" in r.stderr


@needs_shared
def test_bclstm_from_original_csv_matches_npz(tmp_path):
    src = tmp_path / "feat"
    src.mkdir()
    (src / "original").symlink_to(SHARED / "mosi_bclstm_utterance_features" / "original")
    out = tmp_path / "c.npz"
    r = run("--bclstm", src, "--labels", LABELS_CSV, "--transcripts", SHARED / "mosi_labels" / "transcripts.csv", "--out", out)
    assert r.returncode == 0, r.stderr
    d, ref = _load(out), np.load(SHARED / "mosi_bclstm_utterance_features" / "mosi_bclstm_features.npz")
    assert d["id"].tolist() == ref["segment_id"].tolist()
    np.testing.assert_allclose(d["text"], ref["text"], rtol=1e-6)
    assert d["bclstm_protocol"].tolist() == ref["bclstm_protocol"].tolist()


def test_bring_your_own_features(tmp_path):
    ids = ["03bSnISJMiM_1", "03bSnISJMiM_2", "1DmNV9C1hbY_1", "tmZoasNr4rU_3"]
    np.savez(tmp_path / "t.npz", id=np.array(ids), features=np.arange(8.0).reshape(4, 2))
    (tmp_path / "a.csv").write_text("id,f1\n" + "".join(f"{i},{k}\n" for k, i in enumerate(ids)))
    (tmp_path / "l.csv").write_text("segment_id,label\n" + "".join(f"{i},{k - 1.5}\n" for k, i in enumerate(ids)))
    out = tmp_path / "o.npz"
    r = run("--features", f"text={tmp_path / 't.npz'}", "--features", f"audio={tmp_path / 'a.csv'}",
            "--labels", tmp_path / "l.csv", "--out", out)
    assert r.returncode == 0, r.stderr
    d = _load(out)
    assert d["text"].shape == (4, 2) and d["audio"][:, 0].tolist() == [0, 1, 2, 3]
    assert d["split"].tolist() == ["train", "train", "train", "test"]


# ------------------------------------------------------------------ bad input: exit 2, one line, no output


def _bad(tmp_path, *args, match):
    out = tmp_path / "out" / "never.npz"
    r = run(*args, "--out", out)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mweight: error: "), r.stderr
    assert match in lines[0], lines[0]
    assert not out.exists() and not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True
    return lines[0]


def _tiny_csd(tmp_path, frames_for_second_segment=True):
    iv = np.array([[0.0, 1.0], [1.0, 2.0]])
    write_csd(tmp_path / "CMU_MOSI_Opinion_Labels.csd", "labels", {"03bSnISJMiM": (np.array([[1.0], [-1.0]]), iv)})
    t = np.arange(0.0, 2.0 if frames_for_second_segment else 1.0, 0.01)
    write_csd(tmp_path / "CMU_MOSI_COVAREP.csd", "COAVAREP", {"03bSnISJMiM": (np.ones((len(t), 3)), np.stack([t, t + 0.01], 1))})


def test_bad_missing_file(tmp_path):
    _bad(tmp_path, "--audio-csd", tmp_path / "nope.csd", "--labels", LABELS_CSV, "--level", "segment", match="nope.csd: file not found")


def test_bad_not_hdf5(tmp_path):
    _tiny_csd(tmp_path)
    (tmp_path / "CMU_MOSI_COVAREP.csd").write_bytes(b"\x89HDF\r\n" + b"\0" * 50)  # truncated header
    _bad(tmp_path, "--csd-dir", tmp_path, "--level", "segment", match="CMU_MOSI_COVAREP.csd: not a readable HDF5")


def test_bad_no_data_group(tmp_path):
    _tiny_csd(tmp_path)
    with h5py.File(tmp_path / "CMU_MOSI_COVAREP.csd", "w") as f:
        f.create_group("COAVAREP/metadata")
    _bad(tmp_path, "--csd-dir", tmp_path, "--level", "segment", match="'<root>/data' missing")


def test_bad_mismatched_rows(tmp_path):
    _tiny_csd(tmp_path)
    with h5py.File(tmp_path / "CMU_MOSI_COVAREP.csd", "a") as f:
        del f["COAVAREP/data/03bSnISJMiM/features"]
        f["COAVAREP/data/03bSnISJMiM/features"] = np.zeros((3, 3))
    _bad(tmp_path, "--csd-dir", tmp_path, "--level", "segment", match="have 3 and 200 rows")


def test_bad_segment_without_frames(tmp_path):
    _tiny_csd(tmp_path, frames_for_second_segment=False)
    _bad(tmp_path, "--csd-dir", tmp_path, "--level", "segment", match="segment '03bSnISJMiM_2' has no audio frames")
    r = run("--csd-dir", tmp_path, "--level", "segment", "--missing", "drop", "--out", tmp_path / "ok.npz")
    assert r.returncode == 0 and _load(tmp_path / "ok.npz")["id"].tolist() == ["03bSnISJMiM_1"]


def test_bad_labels_out_of_range(tmp_path):
    _tiny_csd(tmp_path)
    with h5py.File(tmp_path / "CMU_MOSI_Opinion_Labels.csd", "a") as f:
        f["labels/data/03bSnISJMiM/features"][1, 0] = 4.5
    _bad(tmp_path, "--csd-dir", tmp_path, "--level", "segment", match="'label' of segment '03bSnISJMiM_2' is 4.5 (expected a sentiment in [-3, 3]")


def test_bad_pickles(tmp_path):
    with open(tmp_path / "keys.pkl", "wb") as fh:
        pickle.dump({"train": {}, "valid": {}, "test": {}}, fh)
    _bad(tmp_path, "--mmsa", tmp_path / "keys.pkl", match="field 'train/regression_labels' missing")
    (tmp_path / "evil.pkl").write_bytes(b"cos\nsystem\n(Vtouch pwned\ntR.")
    _bad(tmp_path, "--mult", tmp_path / "evil.pkl", match="refusing to load global os.system")
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_bad_two_sources(tmp_path):
    _bad(tmp_path, "--mmsa", "a.pkl", "--mult", "b.pkl", match="2 sources given")
