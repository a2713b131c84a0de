"""`mweight train` as a user runs it: presets, multi-seed summaries, carved validation, sequences.

The real bc-LSTM features are only loaded (no training) to check the split columns.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli, write_mosi_like
from mweight.config import resolve_config
from mweight.data import carve_validation, load_dataset, video_of

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BCLSTM = SHARED / "mosi_bclstm_utterance_features" / "mosi_bclstm_features.npz"
MOSI_PRESETS = ("mosi-utterance", "mosi-sequence", "mnl", "intense", "late-fusion")
FAST = ["--set", "train.epochs=3", "--set", "train.patience=3", "--quiet"]


def cli(*args, check=True):
    return run_cli(*args, check=check)


def utterance_data(path, n_videos=24, clips=10, seed=0, split_only_train_test=False):
    """MOSI-like vectors: text carries the label, audio a little, video nothing."""
    write_mosi_like(path, n_videos, clips, seed, tt_split=True, split_only_train_test=split_only_train_test)
    return path


def sequence_data(path, n=120, t=7, seed=1):
    """Word-aligned (N, T, D) sequences with lengths, padding at the end; COVAREP-like -inf, FACET-like NaN."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, t + 1, size=n)
    mods = {}
    for name, d in (("text", 10), ("audio", 5), ("video", 6)):
        x = rng.normal(size=(n, t, d)).astype(np.float32)
        x[np.arange(t)[None, :] >= lengths[:, None]] = 0.0
        mods[name] = x
    mods["audio"][0, 0, 1] = -np.inf
    mods["video"][1, 0, 2] = np.nan
    valid = np.arange(t)[None, :] < lengths[:, None]
    label = np.clip((mods["text"][..., 0] * valid).sum(1) / lengths * 3, -3, 3).astype(np.float32)
    vid = np.arange(n) // 6
    ids = np.array([f"v{v:03d}_{i % 6 + 1}" for i, v in enumerate(vid)])
    split = np.where(vid < 12, "train", np.where(vid < 16, "valid", "test"))
    np.savez(path, id=ids, label=label, split=split, **mods,
             **{f"{m}_lengths": lengths for m in mods})
    return path


# -- presets -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MOSI_PRESETS)
def test_mosi_presets_resolve_and_layer_under_set(name):
    cfg = resolve_config(name, None, ["train.epochs=2"])
    assert cfg.train.epochs == 2
    if name == "late-fusion":
        assert cfg.model.relevance == "none"  # the baseline has no beta in its objective
    else:
        assert cfg.model.relevance == "mnl"
    if name == "mnl":
        assert cfg.model.interactions == []
    if name in ("intense", "mosi-utterance"):
        assert cfg.model.interactions and cfg.model.norm == "anova"


def test_mosi_utterance_preset_reports_on_the_leak_free_split():
    assert resolve_config("mosi-utterance").data.split_key == "bclstm_protocol"
    assert resolve_config("mosi-utterance").train.batch_size == 16


# -- real data: split columns (load only) --------------------------------------------------
@pytest.mark.skipif(not BCLSTM.is_file(), reason="shared real data not present")
def test_real_bclstm_split_columns_and_carving_by_whole_videos():
    ds = load_dataset(BCLSTM, "bclstm_protocol")
    assert ds.counts() == {"train": 1447, "valid": 241, "test": 511}
    same, record = carve_validation(ds, 0.15, 0)
    assert record == {} and (same.split == ds.split).all()  # has a valid split: nothing carved
    # bclstm_split has only train/test: valid is carved from train by whole videos
    tt = load_dataset(BCLSTM, "bclstm_split")
    assert set(tt.split) == {"train", "test"}
    out, record = carve_validation(tt, 0.15, 0)
    vids = {s: {video_of(i) for i in out.id[out.split == s]} for s in ("train", "valid", "test")}
    assert vids["valid"] and not (vids["valid"] & vids["train"]) and not (vids["valid"] & vids["test"])
    assert sorted(vids["valid"]) == record["videos"] and record["by"] == "video"
    assert (out.split[tt.split == "test"] == "test").all()
    n_train = (tt.split == "train").sum()
    assert 0.15 * n_train <= record["counts"]["valid"] < 0.15 * n_train + 60  # whole videos, just past 15%


# -- the CLI ---------------------------------------------------------------------------------
def test_train_single_run_writes_the_documented_run_directory(tmp_path):
    data = utterance_data(tmp_path / "d.npz")
    out = tmp_path / "run"
    r = cli("train", "--data", data, "--preset", "mosi-utterance", "--split-key", "split", "--out", out, *FAST)
    assert f"wrote {out}" in r.stdout
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["data"]["split_key"] == "split" and cfg["train"]["epochs"] == 3
    assert cfg["model"]["interactions"] == ["text*video"] and cfg["_meta"]["preset"] == "mosi-utterance"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"valid", "test"}
    for k in ("mae", "corr", "acc7", "acc5", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0"):
        assert k in metrics["test"] and k in metrics["info"]["labels"]
    rel = json.loads((out / "relevance.json").read_text())
    assert set(rel["beta"]) == {"text", "audio", "video", "text*video"}
    assert sum(rel["share"].values()) == pytest.approx(1.0)
    assert rel["p"] == 1.0 and sum(rel["beta"].values()) == pytest.approx(1.0)  # p = 1: beta sums to 1
    hist = pd.read_csv(out / "history.csv")
    assert len(hist) == 3 and {"train_loss", "valid_mae", "beta_text", "share_text*video"} <= set(hist.columns)
    pred = pd.read_csv(out / "predictions.csv")
    blocks = ["text", "audio", "video", "text*video"]
    assert list(pred.columns[:4]) == ["id", "split", "label", "prediction"]
    np.testing.assert_allclose(pred[blocks].sum(axis=1) + pred["bias"], pred["prediction"], atol=1e-5)
    # the label carries text: text is the most relevant block even after 3 epochs
    assert max(rel["share"], key=rel["share"].get) == "text"


def test_train_seeds_with_train_test_split_carves_valid_and_summarises(tmp_path):
    data = utterance_data(tmp_path / "d.npz", split_only_train_test=True)
    out = tmp_path / "multi"
    cli("train", "--data", data, "--preset", "mnl", "--split-key", "tt_split", "--seeds", "1,2", "--out", out, *FAST)
    assert (out / "seed_1" / "model.pt").is_file() and (out / "seed_2" / "model.pt").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [1, 2]
    per_seed = [json.loads((out / f"seed_{s}" / "metrics.json").read_text())["test"]["mae"] for s in (1, 2)]
    assert summary["metrics"]["test"]["mae"]["mean"] == pytest.approx(np.mean(per_seed))
    assert summary["metrics"]["test"]["mae"]["std"] == pytest.approx(np.std(per_seed))
    assert per_seed[0] != per_seed[1]  # the seeds really differ
    assert set(summary["share"]) == {"text", "audio", "video"}
    md = (out / "summary.md").read_text()
    assert "MAE" in md and "Acc-2 (non0" in md and "±" in md
    meta = yaml.safe_load((out / "seed_1" / "config.yaml").read_text())["_meta"]
    carved = meta["carved_validation"]
    assert carved["by"] == "video" and carved["seed"] == 0 and carved["videos"]
    pred = pd.read_csv(out / "seed_1" / "predictions.csv")
    valid_videos = {video_of(i) for i in pred["id"][pred["split"] == "valid"]}
    train_videos = {video_of(i) for i in pred["id"][pred["split"] == "train"]}
    assert valid_videos == set(carved["videos"]) and not (valid_videos & train_videos)
    # both seeds see the same carved validation set (it is seeded separately from training)
    pred2 = pd.read_csv(out / "seed_2" / "predictions.csv")
    assert (pred2["split"] == pred["split"]).all()


def test_sequence_dataset_end_to_end_with_the_sequence_preset(tmp_path):
    """Word-aligned (N, T, D) + lengths: train, evaluate, predict, explain and ablate all run."""
    data = sequence_data(tmp_path / "seq.npz")
    out = tmp_path / "seq"
    cli("train", "--data", data, "--preset", "mosi-sequence", "--out", out, *FAST)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["_meta"]["encoders"] == {"text": "gru", "audio": "gru", "video": "gru"}
    rel = json.loads((out / "relevance.json").read_text())
    assert set(rel["beta"]) == {"text", "audio", "video", "text*audio", "text*video", "audio*video"}
    r = cli("evaluate", out)
    assert "max |difference|" in r.stdout
    diff = float(r.stdout.split("max |difference| = ")[1].split()[0])
    assert diff < 1e-6
    cli("predict", out, "--data", data, "--split", "test", "--out", tmp_path / "p.csv")
    p = pd.read_csv(tmp_path / "p.csv")
    assert (p["split"] == "test").all() and len(p) == 24
    blocks = list(rel["beta"])
    np.testing.assert_allclose(p[blocks].sum(axis=1) + p["bias"], p["prediction"], atol=1e-5)
    r = cli("explain", out, "--id", p["id"][0])
    assert f"Segment {p['id'][0]} (test)" in r.stdout and "transcript: (not known" in r.stdout
    r = cli("ablate", out, "--repeats", "2")
    assert "beta vs ablation" in r.stdout
    abl = json.loads((out / "ablation.json").read_text())
    assert set(abl["modalities"]) == {"text", "audio", "video"}
    assert abl["modalities"]["text"]["share_with_interactions"] == pytest.approx(
        rel["share"]["text"] + rel["share"]["text*audio"] + rel["share"]["text*video"])


def test_train_errors_are_one_line(tmp_path):
    data = utterance_data(tmp_path / "d.npz")
    r = cli("train", "--data", data, "--preset", "mosi-utterance", "--out", tmp_path / "x", *FAST, check=False)
    # the utterance preset asks for the bclstm_protocol column, which this file does not have
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no split column 'bclstm_protocol'" in lines[0] and str(data) in lines[0]
