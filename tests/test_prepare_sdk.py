"""``mweight prepare sdk`` for any CMU-SDK dataset: a recipe, a folds file, own modality names."""
from __future__ import annotations

import json

import numpy as np

from mweight.data import load_dataset
from prepare_fixtures import one_error_line, run_prepare, segment_words, word_mean, write_set

VIDEOS = {"pom_001": 2, "pom_002": 3, "pom_017": 2, "pom_120": 2, "pom_404": 1}
FOLDS = {"_note": "POM-like", "train": ["pom_001", "pom_002"], "valid": ["pom_017"], "test": ["pom_120"]}


def _dataset(tmp_path, seed=1):
    made = write_set(tmp_path, VIDEOS, np.random.default_rng(seed), label_cols=3,
                     names={"words": "POM_words", "text": "POM_glove", "audio": "POM_covarep",
                            "video": "POM_pose", "labels": "POM_labels"})
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps(FOLDS))
    return made, folds


def test_recipe_with_own_modality_and_label_names(tmp_path):
    made, folds = _dataset(tmp_path)
    p = made["paths"]
    out = tmp_path / "pom.npz"
    recipe = ",".join(f"{role}={p[key]}" for role, key in
                      (("labels", "labels"), ("words", "words"), ("text", "text"), ("audio", "audio"), ("pose", "video")))
    r = run_prepare("sdk", "--recipe", recipe, "--folds", folds, "--label-names", "persuasion,confident,passionate",
                    "--name", "POM", "--seq-len", "8", "--out", out)
    assert r.returncode == 0, r.stderr
    d = np.load(out, allow_pickle=False)
    assert [int((d["split"] == s).sum()) for s in ("train", "valid", "test")] == [5, 2, 2]  # pom_404 is in no fold
    assert {"label_confident", "label_passionate", "pose", "pose_lengths"} <= set(d.files)
    meta = json.loads(str(d["meta_json"]))
    assert meta["dataset"] == "POM" and meta["labels"]["label"] == "persuasion" and meta["split"] == "folds from folds.json"
    assert list(meta["modalities"]) == ["text", "audio", "pose"] and meta["modalities"]["text"] == [8, 6]
    data = made["data"]
    for i, sid in enumerate(d["id"]):
        vid, clip = sid.rsplit("_", 1)
        lab, seg = data["labels"][vid][0][int(clip) - 1], data["labels"][vid][1][int(clip) - 1]
        assert (d["label"][i], d["label_confident"][i]) == (np.float32(lab[0]), np.float32(lab[1]))
        tok, w_iv = data["words"][vid]
        rows = segment_words(w_iv, tok, *seg)[:8]
        assert d["pose_lengths"][i] == len(rows)
        for pos, k in enumerate(rows):
            want = word_mean(*data["video"][vid], *w_iv[k])
            np.testing.assert_allclose(d["pose"][i, pos], np.zeros(5) if want is None else want, rtol=1e-5, equal_nan=True)
    ds = load_dataset(out)
    assert ds.names == ["text", "audio", "pose"] and "label_passionate" in ds.columns


def test_recipe_file_segment_level_without_words(tmp_path):
    made, folds = _dataset(tmp_path, seed=2)
    p = made["paths"]
    (tmp_path / "recipe.yaml").write_text(f"labels: {p['labels'].name}\naudio: {p['audio'].name}\n")
    out = tmp_path / "seg.npz"
    r = run_prepare("sdk", "--recipe", tmp_path / "recipe.yaml", "--folds", folds, "--level", "segment", "--out", out)
    assert r.returncode == 0, r.stderr
    d = np.load(out, allow_pickle=False)
    assert d["audio"].shape == (9, 9) and "label_col1" in d.files and "label_col2" in d.files
    i = list(d["id"]).index("pom_002_3")
    np.testing.assert_allclose(d["audio"][i], word_mean(*made["data"]["audio"]["pom_002"], *made["data"]["labels"]["pom_002"][1][2]),
                               rtol=1e-5)


def test_bad_folds_and_recipes(tmp_path):
    made, folds = _dataset(tmp_path, seed=3)
    p = made["paths"]
    out = tmp_path / "never.npz"
    recipe = f"labels={p['labels']},audio={p['audio']}"
    bad = tmp_path / "bad_folds.json"
    bad.write_text(json.dumps({"train": ["pom_001", "pom_002"], "test": ["pom_002"]}))
    line = one_error_line(run_prepare("sdk", "--recipe", recipe, "--folds", bad, "--out", out), "'pom_002' is in both")
    assert "bad_folds.json" in line
    bad.write_text(json.dumps({"train": ["pom_001"], "dev": ["pom_002"], "test": ["pom_120"]}))
    one_error_line(run_prepare("sdk", "--recipe", recipe, "--folds", bad, "--out", out), "field 'dev'")
    bad.write_text("{not json")
    one_error_line(run_prepare("sdk", "--recipe", recipe, "--folds", bad, "--out", out), "not valid JSON")
    one_error_line(run_prepare("sdk", "--recipe", recipe + ",Bad-Name=x.csd", "--folds", folds, "--out", out), "unknown role 'Bad-Name'")
    one_error_line(run_prepare("sdk", "--recipe", recipe, "--folds", folds, "--label-names", "A b", "--out", out), "--label-names")
    one_error_line(run_prepare("sdk", "--recipe", recipe, "--out", out), "--folds")
    assert not out.exists()
