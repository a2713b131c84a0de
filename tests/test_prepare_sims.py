"""``mweight prepare sims`` on a pickle in MMSA's CH-SIMS ``unaligned_39.pkl`` layout, with unimodal labels."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from mweight.data import load_dataset
from prepare_fixtures import one_error_line, run_prepare

SIZES = {"train": 9, "valid": 4, "test": 5}
STEPS = {"text": (39, 768), "audio": (400, 33), "vision": (55, 709)}


def sims_pickle(rng) -> dict:
    """The unaligned_39.pkl layout: per-modality lengths, end padding, labels in [-1, 1] on MMSA's
    0.2 grid, unimodal labels that disagree with the multimodal one (audio nearly independent)."""
    obj, clip = {}, 0
    for split, n in SIZES.items():
        part: dict = {}
        m = np.round(np.clip(rng.normal(0.1, 0.5, n), -1, 1) * 5) / 5
        t_lab = np.round(np.clip(m + rng.normal(0, 0.3, n), -1, 1) * 5) / 5
        a_lab = np.round(np.clip(rng.normal(-0.2, 0.6, n), -1, 1) * 5) / 5
        v_lab = np.round(np.clip(0.5 * m + rng.normal(0, 0.4, n), -1, 1) * 5) / 5
        for key, (t, dim) in STEPS.items():
            lens = rng.integers(3, t + 1, n)
            mask = (np.arange(t)[None, :] < lens[:, None])[..., None]
            part[key] = (rng.lognormal(0, 1, (n, t, dim)) * mask).astype(np.float32)
            if key != "text":
                part[f"{key}_lengths"] = lens.tolist()  # MMSA stores these as lists
        part["text_bert"] = np.zeros((n, 3, 39), dtype=np.float32)
        part["raw_text"] = np.array([f"第{k}句话" for k in range(n)], dtype=object)
        part["id"] = np.array([f"video_{clip + k // 2:04d}$_${k % 2 + 1:04d}" for k in range(n)], dtype=object)
        clip += n
        part["regression_labels"] = m.astype(np.float32)
        part["regression_labels_T"], part["regression_labels_A"], part["regression_labels_V"] = \
            t_lab.astype(np.float32), a_lab.astype(np.float32), v_lab.astype(np.float32)
        part["classification_labels"] = (np.sign(m) + 1).astype(np.float32)
        part["annotations"] = np.array(["Positive" if x > 0 else "Negative" for x in m], dtype=object)
        obj[split] = part
    return obj


@pytest.fixture(scope="module")
def sims(tmp_path_factory):
    d = tmp_path_factory.mktemp("sims")
    obj = sims_pickle(np.random.default_rng(11))
    pkl = d / "unaligned_39.pkl"
    pkl.write_bytes(pickle.dumps(obj, protocol=4))
    out = d / "sims.npz"
    r = run_prepare("sims", "--mmsa", pkl, "--out", out)
    assert r.returncode == 0, r.stderr
    return obj, out, r


def test_unimodal_labels_kept_per_sample(sims):
    obj, out, r = sims
    d = np.load(out, allow_pickle=False)
    assert [int((d["split"] == s).sum()) for s in ("train", "valid", "test")] == [9, 4, 5]
    rows = {}
    for split in SIZES:
        for k, raw in enumerate(obj[split]["id"]):
            rows[raw.replace("$_$", "_")] = (split, k)
    for i, sid in enumerate(d["id"]):
        split, k = rows[sid]
        part = obj[split]
        assert d["split"][i] == split
        assert d["label"][i] == part["regression_labels"][k]
        assert (d["label_text"][i], d["label_audio"][i], d["label_video"][i]) == (
            part["regression_labels_T"][k], part["regression_labels_A"][k], part["regression_labels_V"][k])
        assert d["audio_lengths"][i] == part["audio_lengths"][k] and d["video_lengths"][i] == part["vision_lengths"][k]
        np.testing.assert_array_equal(d["video"][i], part["vision"][k])
    assert d["text"].shape[1:] == (39, 768) and d["audio"].shape[1:] == (400, 33) and d["video"].shape[1:] == (55, 709)
    # the unimodal labels are not copies of the multimodal one
    assert not np.array_equal(d["label_audio"], d["label"])
    meta = json.loads(str(d["meta_json"]))
    assert meta["dataset"] == "CH-SIMS" and set(meta["labels"]) == {"label", "label_text", "label_audio", "label_video"}
    assert "label_audio" in r.stdout


def test_load_dataset_keeps_them(sims):
    _, out, _ = sims
    ds = load_dataset(out)
    assert ds.names == ["text", "audio", "video"]
    for m in ("text", "audio", "video"):
        assert ds.columns[f"label_{m}"].shape == (len(ds),)
    sub = ds.part("test")
    assert len(sub.columns["label_audio"]) == 5 and sub.columns["transcript"][0].startswith("第")


def test_bad_sims_pickles(tmp_path):
    obj = sims_pickle(np.random.default_rng(2))
    obj["valid"]["regression_labels_A"][2] = 1.6
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(obj, protocol=4))
    out = tmp_path / "never.npz"
    line = one_error_line(run_prepare("sims", "--mmsa", bad, "--out", out), "label_audio")
    assert "bad.pkl" in line and "[-1, 1]" in line
    obj["valid"]["regression_labels_A"] = obj["valid"]["regression_labels_A"][:2]
    bad.write_bytes(pickle.dumps(obj, protocol=4))
    one_error_line(run_prepare("sims", "--mmsa", bad, "--out", out), "'valid/regression_labels_A' has 2 rows")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"train": {"regression_labels": Evil()}}))
    one_error_line(run_prepare("sims", "--mmsa", evil, "--out", out), "unsafe or invalid pickle refused")
    assert not (tmp_path / "pwned").exists() and not out.exists()
