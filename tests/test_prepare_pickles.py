"""MMSA and MulT/MultiBench pickle readers and the restricted unpickler."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from mweight.errors import MWeightError
from mweight.prepare.pickles import left_to_right_padded, load_pickle, read_mmsa, read_mult

SIZES = {"train": 5, "valid": 3, "test": 4}


def _mmsa(rng, aligned=True):
    out = {}
    for split, n in SIZES.items():
        t = 6
        lens = rng.integers(1, t + 1, n)
        mask = np.arange(t)[None, :] < lens[:, None]
        part = {
            "text": (rng.normal(size=(n, t, 8)) * mask[..., None]).astype(np.float32),
            "text_bert": np.zeros((n, 3, t)),
            "audio": (rng.normal(size=(n, t, 5)) * mask[..., None]).astype(np.float32),
            "vision": (rng.normal(size=(n, t, 20)) * mask[..., None]).astype(np.float32),
            "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
            "id": np.array([f"vid{split}$_${k + 1}" for k in range(n)], dtype=object),
            "raw_text": np.array([f"words {k}" for k in range(n)], dtype=object),
        }
        if not aligned:
            part["audio_lengths"] = lens.tolist()
            part["vision_lengths"] = lens.tolist()
        out[split] = part
    return out, lens


def _mult(rng):
    out, lens_all = {}, {}
    for split, n in SIZES.items():
        t = 6
        lens = rng.integers(1, t + 1, n)
        real = np.arange(t)[None, :] >= (t - lens)[:, None]  # LEFT padded
        audio = rng.normal(size=(n, t, 5)).astype(np.float32) * real[..., None]
        audio[0, -1, 0] = -np.inf  # audio may hold -inf
        out[split] = {
            "text": (rng.normal(size=(n, t, 300)) * real[..., None]).astype(np.float32),
            "audio": audio,
            "vision": (rng.normal(size=(n, t, 20)) * real[..., None]).astype(np.float32),
            "labels": rng.uniform(-3, 3, (n, 1, 1)).astype(np.float32),
            "id": np.array([[f"vid_{split}".encode(), str(k + 1).encode(), b"0"] for k in range(n)]),
        }
        lens_all[split] = lens
    return out, lens_all


def _dump(path, obj, protocol=4):
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)
    return path


@pytest.mark.parametrize("aligned", [True, False])
def test_mmsa(tmp_path, aligned):
    obj, _ = _mmsa(np.random.default_rng(0), aligned)
    cols = read_mmsa(_dump(tmp_path / "aligned_50.pkl", obj))
    assert cols["id"][0] == "vidtrain_1" and len(cols["id"]) == 12
    assert cols["split"].tolist() == ["train"] * 5 + ["valid"] * 3 + ["test"] * 4
    assert cols["video"].shape == (12, 6, 20) and cols["text"].shape == (12, 6, 8)
    np.testing.assert_array_equal(cols["label"][5:8], obj["valid"]["regression_labels"])
    exp = np.concatenate([np.asarray([np.flatnonzero(np.any(x != 0, 1)).max() + 1 for x in obj[s]["audio"]]) for s in SIZES])
    np.testing.assert_array_equal(cols["audio_lengths"], exp)
    assert cols["transcript"][1] == "words 1"


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_mult_left_padding_becomes_right_padding(tmp_path, protocol):
    obj, lens = _mult(np.random.default_rng(1))
    cols = read_mult(_dump(tmp_path / "mosi_data.pkl", obj, protocol))
    np.testing.assert_array_equal(cols["audio_lengths"], np.concatenate([lens[s] for s in SIZES]))
    x = obj["train"]["audio"][0]
    L = lens["train"][0]
    np.testing.assert_array_equal(cols["audio"][0, :L], x[-L:])  # real steps first
    assert not cols["audio"][0, L:].any()  # padding at the end
    assert np.isneginf(cols["audio"][0, L - 1, 0])  # -inf kept (the loader imputes it)
    assert cols["id"][0] == "vid_train_1"
    assert cols["label"].shape == (12,)


def test_left_to_right_padded_all_padding_row():
    x = np.zeros((2, 3, 1), np.float32)
    x[1, 2, 0] = 5
    out, lens = left_to_right_padded({"a": x})
    assert lens.tolist() == [0, 1] and out["a"][1, 0, 0] == 5 and out["a"][1, 1:].sum() == 0


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_pickle_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _dump(tmp_path / "evil.pkl", {"train": {"text": _Evil()}})
    with pytest.raises(MWeightError, match=r"evil.pkl: unsafe or invalid pickle refused \(refusing to load global (posix|os|nt)\.system\)"):
        load_pickle(path)
    assert not (tmp_path / "pwned").exists()


def test_builtins_eval_refused(tmp_path):
    blob = b"cbuiltins\neval\n(V1+1\ntR."
    (tmp_path / "e.pkl").write_bytes(blob)
    with pytest.raises(MWeightError, match="builtins.eval"):
        load_pickle(tmp_path / "e.pkl")


def test_wrong_keys(tmp_path):
    obj, _ = _mmsa(np.random.default_rng(2))
    del obj["valid"]["regression_labels"]
    with pytest.raises(MWeightError, match=r"field 'valid/regression_labels' missing"):
        read_mmsa(_dump(tmp_path / "a.pkl", obj))
    with pytest.raises(MWeightError, match=r"field 'valid' missing"):
        read_mult(_dump(tmp_path / "b.pkl", {"train": {}, "test": {}}))
    with pytest.raises(MWeightError, match="top level is list"):
        read_mult(_dump(tmp_path / "c.pkl", [1, 2]))


def test_row_mismatch(tmp_path):
    obj, _ = _mult(np.random.default_rng(3))
    obj["test"]["vision"] = obj["test"]["vision"][:2]
    with pytest.raises(MWeightError, match=r"field 'test/vision' has 2 rows \(expected 4"):
        read_mult(_dump(tmp_path / "m.pkl", obj))


def test_not_a_pickle(tmp_path):
    (tmp_path / "x.pkl").write_bytes(b"\x00garbage")
    with pytest.raises(MWeightError, match="x.pkl"):
        load_pickle(tmp_path / "x.pkl")
