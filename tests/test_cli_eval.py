"""`mweight evaluate / predict / explain / ablate` on a trained run, as a user runs them."""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, write_mosi_like
from mweight.analysis import mean_ablated, permuted, rank_agreement, drop
from mweight.transcripts import read_transcripts
from mweight.data import Dataset
from mweight.metrics import compute_metrics

BLOCKS = ["text", "audio", "video", "text*video"]


def cli(*args, check=True):
    return run_cli(*args, check=check)


def write_data(path, n_videos=24, clips=10, seed=0):
    """Text carries the label (two columns), audio and video nothing; 14 / 4 / 6 videos."""
    return write_mosi_like(path, n_videos, clips, seed, weights=(("text", 0, 1.5), ("text", 1, 0.6)), noise=0.2,
                           splits=(14, 18), transcript="words of {id}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    arrays = write_data(root / "d.npz")
    out = root / "run"
    cli("train", "--data", root / "d.npz", "--preset", "mosi-utterance", "--split-key", "split", "--out", out,
        "--set", "train.epochs=6", "--set", "train.patience=6", "--set", "model.dropout=0.0",
        "--set", "train.lr=0.005", "--quiet")
    return root, out, arrays


def test_evaluate_recomputes_the_recorded_metrics(trained):
    root, out, _ = trained
    r = cli("evaluate", out, "--json", root / "ev.json")
    assert "Acc-2 (non0: negative vs positive, zeros dropped)" in r.stdout and "has0" in r.stdout
    ev = json.loads((root / "ev.json").read_text())["runs"][0]
    rec = json.loads((out / "metrics.json").read_text())
    for split in ("train", "valid", "test"):
        for k in ("mae", "corr", "acc7", "acc2_non0", "f1_has0"):
            assert ev["metrics"][split][k] == pytest.approx(rec[split][k], abs=1e-6)
    assert ev["max_abs_diff"] < 1e-6


def test_evaluate_and_predict_on_another_file_and_a_subset_of_ids(trained):
    root, out, a = trained
    # another file: only the test rows, under another split column name, labels flipped in sign
    test = a["split"] == "test"
    np.savez(root / "other.npz", id=a["id"][test], text=a["text"][test], audio=a["audio"][test],
             video=a["video"][test], label=-a["label"][test], fold=np.full(test.sum(), "test"))
    r = cli("evaluate", out, "--data", root / "other.npz", "--split-key", "fold", "--json", root / "ev2.json")
    assert f"test (n={test.sum()})" in r.stdout
    ev = json.loads((root / "ev2.json").read_text())["runs"][0]
    pred = pd.read_csv(out / "predictions.csv", dtype={"id": str})
    p_test = pred[pred["split"] == "test"]["prediction"].to_numpy()
    expected = compute_metrics(p_test, -a["label"][test], "regression")
    for k, v in expected.items():
        assert ev["metrics"]["test"][k] == pytest.approx(v, abs=1e-5)
    # predict: no labels, no split column, a subset of ids in a chosen order
    np.savez(root / "unlabelled.npz", id=a["id"], text=a["text"], audio=a["audio"], video=a["video"])
    ids = [a["id"][200], a["id"][3], a["id"][150]]
    cli("predict", out, "--data", root / "unlabelled.npz", "--ids", ",".join(ids), "--out", root / "p.csv")
    p = pd.read_csv(root / "p.csv", dtype={"id": str})
    assert list(p["id"]) == ids and p["label"].isna().all() and (p["split"] == "unlabelled").all()
    ref = pred.set_index("id").loc[ids]
    np.testing.assert_allclose(p["prediction"], ref["prediction"], atol=1e-5)
    np.testing.assert_allclose(p[BLOCKS].sum(axis=1) + p["bias"], p["prediction"], atol=1e-5)
    # evaluating an unlabelled file says so
    r = cli("evaluate", out, "--data", root / "unlabelled.npz", check=False)
    assert r.returncode == 2 and "no labelled rows" in r.stderr


def test_predict_errors_name_the_problem(trained):
    root, out, a = trained
    np.savez(root / "noaudio.npz", id=a["id"], text=a["text"], video=a["video"], label=a["label"], split=a["split"])
    r = cli("predict", out, "--data", root / "noaudio.npz", "--out", root / "x.csv", check=False)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing modality 'audio'" in lines[0] and "noaudio.npz" in lines[0]
    np.savez(root / "narrow.npz", id=a["id"], text=a["text"][:, :3], audio=a["audio"], video=a["video"])
    r = cli("predict", out, "--data", root / "narrow.npz", "--out", root / "x.csv", check=False)
    assert r.returncode == 2 and "field 'text' has per-sample shape 3" in r.stderr and "expects 6" in r.stderr
    r = cli("predict", out, "--ids", "nope_1", "--out", root / "x.csv", check=False)
    assert r.returncode == 2 and "id 'nope_1' not found" in r.stderr
    assert not (root / "x.csv").exists()
    r = cli("predict", out.parent, "--out", root / "x.csv", check=False)
    assert r.returncode == 2 and "not a mweight run directory" in r.stderr


def test_explain_shows_relevance_transcript_and_exact_contributions(trained):
    root, out, a = trained
    sid = a["id"][200]
    r = cli("explain", out, "--id", sid, "--json", root / "ex.json")
    rel = json.loads((out / "relevance.json").read_text())
    assert "Global relevance" in r.stdout and f"transcript: words of {sid}" in r.stdout
    for b in BLOCKS:
        assert f"{b:18s} {rel['beta'][b]:8.4f}" in r.stdout
    ex = json.loads((root / "ex.json").read_text())["segment"]
    assert ex["label"] == pytest.approx(float(a["label"][200]))
    assert ex["bias"] + sum(ex["contributions"].values()) == pytest.approx(ex["prediction"], abs=1e-5)
    # a transcripts CSV in MOSI's layout (no header: id, text, video index, binary label) wins
    (root / "tr.csv").write_text(f'"{sid}","REALLY GOOD MOVIE","1","1"\n"other_1","X","2","0"\n')
    r = cli("explain", out, "--id", sid, "--transcripts", root / "tr.csv")
    assert "transcript: REALLY GOOD MOVIE" in r.stdout
    r = cli("explain", out, "--id", "vid99_1", check=False)
    assert r.returncode == 2 and "id 'vid99_1' not found" in r.stderr


def test_ablate_prints_drops_next_to_beta_and_finds_the_informative_modality(trained):
    root, out, _ = trained
    r = cli("ablate", out, "--repeats", "3")
    for s in ("beta vs ablation", "beta vs permutation", "ablation vs permutation", "Spearman", "Kendall"):
        assert s in r.stdout
    res = json.loads((out / "ablation.json").read_text())
    mods = res["modalities"]
    # the label is built from text only: removing text costs far more MAE than removing audio or video
    assert mods["text"]["ablation"]["mae"] > 0.3
    assert mods["text"]["permutation"]["mae"] > 0.3
    for m in ("audio", "video"):
        assert abs(mods[m]["ablation"]["mae"]) < 0.3 * mods["text"]["ablation"]["mae"]
    assert res["base"]["mae"] == pytest.approx(json.loads((out / "metrics.json").read_text())["test"]["mae"], abs=1e-6)


# -- the pieces, in-process -------------------------------------------------------------------
def _ds(mods, lengths=None):
    n = len(next(iter(mods.values())))
    return Dataset(modalities=mods, label=np.zeros(n, np.float32), split=np.full(n, "test"),
                   id=np.array([str(i) for i in range(n)]), lengths=lengths or {})


def test_mean_ablation_and_permutation_touch_only_one_modality():
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(4, 3, 2)).astype(np.float32)
    lens = np.array([1, 3, 2, 3])
    seq[np.arange(3)[None, :] >= lens[:, None]] = 0
    ds = _ds({"a": rng.normal(size=(4, 2)).astype(np.float32), "s": seq}, {"s": lens})
    fill = np.array([5.0, -1.0], np.float32)
    out = mean_ablated(ds, "s", fill)
    assert (out.modalities["a"] == ds.modalities["a"]).all()
    assert (out.modalities["s"][0, 0] == fill).all() and (out.modalities["s"][0, 1:] == 0).all()  # padding stays
    assert (out.modalities["s"][1] == fill).all() and (ds.modalities["s"][1] != fill).any()
    perm = permuted(ds, "s", np.random.default_rng(2))  # seed 2: not the identity
    order = [int(np.nonzero((ds.modalities["s"] == row).all(axis=(1, 2)))[0][0]) for row in perm.modalities["s"]]
    assert sorted(order) == [0, 1, 2, 3] and order != [0, 1, 2, 3]
    assert (perm.lengths["s"] == lens[order]).all()  # lengths travel with their sequences
    assert (perm.modalities["a"] == ds.modalities["a"]).all()


def test_rank_agreement_and_drop_direction():
    assert rank_agreement([0.7, 0.2, 0.1], [0.5, 0.1, 0.0]) == {"spearman": 1.0, "kendall": 1.0, "n": 3}
    r = rank_agreement([0.7, 0.2, 0.1], [0.0, 0.1, 0.5])
    assert r["spearman"] == pytest.approx(-1.0) and r["kendall"] == pytest.approx(-1.0)
    r = rank_agreement([0.6, 0.3, 0.1], [0.2, 0.3, 0.1])  # one swap of three
    assert r["spearman"] == pytest.approx(0.5) and r["kendall"] == pytest.approx(1 / 3)
    assert rank_agreement([0.5, 0.5, 0.5], [1, 2, 3])["spearman"] is None  # undefined, not nan
    assert drop({"mae": 0.9}, {"mae": 1.2}, "mae") == pytest.approx(0.3)  # error up = worse
    assert drop({"acc2_non0": 0.8}, {"acc2_non0": 0.6}, "acc2_non0") == pytest.approx(0.2)


def test_read_transcripts_with_and_without_header(tmp_path):
    (tmp_path / "a.csv").write_text('"x_1","HELLO THERE","1","1"\n')
    assert read_transcripts(tmp_path / "a.csv") == {"x_1": "HELLO THERE"}
    (tmp_path / "b.csv").write_text("segment_id,video,text\nx_2,x,good, really\n".replace("good, really", '"good, really"'))
    assert read_transcripts(tmp_path / "b.csv") == {"x_2": "good, really"}
