"""The .csd reader/writer on the real words file and on small files in the exact layout."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from mweight.errors import MWeightError
from mweight.prepare.csd import decode_metadata, read_csd, write_csd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WORDS = SHARED / "mosi_csd" / "CMU_MOSI_ModifiedTimestampedWords.csd"


def _small(rng, dtype=np.float64, n=7, d=3):
    iv = np.cumsum(rng.uniform(0.1, 0.5, (n, 1)), axis=0)
    return rng.normal(size=(n, d)).astype(dtype), np.concatenate([iv, iv + 0.3], axis=1)


@pytest.mark.skipif(not WORDS.is_file(), reason="shared data absent")
def test_real_words_file():
    seq = read_csd(WORDS)
    assert seq.root == "CMU_MOSI_ModifiedTimestampedWords"
    assert len(seq.data) == 93 and seq.is_words
    tokens = np.concatenate([f[:, 0] for f, _ in seq.data.values()])
    assert len(tokens) == 51056 and (tokens == "sp").sum() == 8287  # PROVENANCE.md counts
    assert tokens.dtype.kind == "U"  # decoded, not b'...'
    assert seq.metadata["md5"] == "None"  # bytes metadata decoded to text


@pytest.mark.parametrize("style", ["raw", "json"])
@pytest.mark.parametrize("compression", [None, "gzip"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roundtrip_layout(tmp_path, style, compression, dtype):
    rng = np.random.default_rng(0)
    data = {"vidA": _small(rng, dtype), "vid_B-2": _small(rng, dtype)}
    data["vidA"][0][1, 0] = -np.inf
    data["vidA"][0][2, 1] = np.nan
    path = tmp_path / "CMU_MOSI_COVAREP.csd"
    write_csd(path, "COAVAREP", data, {"dataset name": "CMU-MOSI"}, metadata_style=style, compression=compression)
    with h5py.File(path) as f:  # exact layout: root/data/<vid>/{features,intervals}, root/metadata/<key> (1,) vlen str
        assert list(f) == ["COAVAREP"]
        assert f["COAVAREP/data/vidA/intervals"].shape == (7, 2)
        assert f["COAVAREP/metadata/root name"].shape == (1,)
        assert f["COAVAREP/data/vidA/features"].compression == compression
    seq = read_csd(path)
    assert seq.root == "COAVAREP" and seq.metadata["dataset name"] == "CMU-MOSI"
    for vid, (feats, iv) in data.items():
        got_f, got_i = seq.data[vid]
        assert got_f.dtype == dtype
        np.testing.assert_array_equal(got_f, feats)
        np.testing.assert_array_equal(got_i, iv)


def test_words_bytes_and_sp(tmp_path):
    iv = np.array([[0.0, 0.5], [0.5, 0.9], [0.9, 1.4]])
    words = np.array([[b"hello"], [b"sp"], [b"world"]], dtype="S12")
    write_csd(tmp_path / "w.csd", "FACET 4.1", {"v": (words, iv)})
    seq = read_csd(tmp_path / "w.csd")
    assert seq.is_words and seq.root == "FACET 4.1"
    assert seq.data["v"][0][:, 0].tolist() == ["hello", "sp", "world"]


@pytest.mark.parametrize("raw,expected", [
    (b"CMU_MOSI_X", "CMU_MOSI_X"),
    ("\"CMU_MOSI_X\"", "CMU_MOSI_X"),  # SDK v1.2 JSON
    ("b'CMU_MOSI_X'", "CMU_MOSI_X"),  # str(bytes) saved back by an SDK under h5py 3
    (np.array([b"a b"], dtype=object), "a b"),
    ('{"a": 1}', '{"a": 1}'),
])
def test_decode_metadata(raw, expected):
    assert decode_metadata(raw) == expected


def test_missing_file(tmp_path):
    with pytest.raises(MWeightError, match="file not found"):
        read_csd(tmp_path / "nope.csd")


def test_not_hdf5_and_truncated(tmp_path):
    (tmp_path / "text.csd").write_text("not hdf5")
    with pytest.raises(MWeightError, match="not a readable HDF5"):
        read_csd(tmp_path / "text.csd")
    rng = np.random.default_rng(1)
    write_csd(tmp_path / "full.csd", "r", {"v": _small(rng, n=2000, d=20)})
    blob = (tmp_path / "full.csd").read_bytes()
    (tmp_path / "cut.csd").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(MWeightError, match="cut.csd"):
        read_csd(tmp_path / "cut.csd")


def test_no_data_group(tmp_path):
    with h5py.File(tmp_path / "x.csd", "w") as f:
        f.create_group("root").create_group("metadata")
    with pytest.raises(MWeightError, match=r"'<root>/data' missing"):
        read_csd(tmp_path / "x.csd")


def test_mismatched_rows(tmp_path):
    with h5py.File(tmp_path / "x.csd", "w") as f:
        g = f.create_group("root/data/vid1")
        g["features"] = np.zeros((5, 2))
        g["intervals"] = np.zeros((4, 2))
    with pytest.raises(MWeightError, match=r"x.csd: fields 'data/vid1/features' and 'intervals' have 5 and 4 rows"):
        read_csd(tmp_path / "x.csd")


def test_bad_interval_shape(tmp_path):
    with h5py.File(tmp_path / "x.csd", "w") as f:
        g = f.create_group("root/data/vid1")
        g["features"] = np.zeros((4, 2))
        g["intervals"] = np.zeros((4, 3))
    with pytest.raises(MWeightError, match="expected \\(T, 2\\)"):
        read_csd(tmp_path / "x.csd")


def test_metadata_is_json_in_v12_style(tmp_path):
    write_csd(tmp_path / "x.csd", "r", {"v": _small(np.random.default_rng(2))}, {"contact": "me"}, metadata_style="json")
    with h5py.File(tmp_path / "x.csd") as f:
        assert json.loads(f["r/metadata/contact"][0]) == "me"
