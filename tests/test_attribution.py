"""Attribution that does not depend on p (issue 10): exact Shapley values, shares, selection, restarts."""
import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mweight.attribution import (contribution_shares, interaction_indices, shapley_shares, shapley_values,
                                 split_attribution)
from mweight.config import Config
from mweight.data import Dataset
from mweight.train import _better, fit

BLOCKS = ["a", "b", "c", "a*b", "a*c", "a*b*c"]


def _contribs(n=500, seed=0):
    rng = np.random.default_rng(seed)
    # skewed and correlated block contributions, not Gaussians
    base = rng.exponential(size=(n, 1))
    g = {b: (rng.gamma(2.0, size=n) * (i + 1) + base[:, 0] * i).astype(np.float64) for i, b in enumerate(BLOCKS)}
    mean = {b: float(v[: n // 2].mean()) for b, v in g.items()}  # "training" half
    return g, mean


def _game_value(coalition: set, d: dict) -> np.ndarray:
    """v(T) = sum of the dividends of the blocks inside T (blocks outside take their baseline)."""
    n = len(next(iter(d.values())))
    return sum((d[b] for b in d if set(b.split("*")) <= coalition), np.zeros(n))


def _brute_force_shapley(d: dict, players: list[str]) -> dict:
    k = len(players)
    out = {}
    for m in players:
        others = [p for p in players if p != m]
        total = 0.0
        for r in range(k):
            for coal in itertools.combinations(others, r):
                w = math.factorial(r) * math.factorial(k - r - 1) / math.factorial(k)
                total = total + w * (_game_value(set(coal) | {m}, d) - _game_value(set(coal), d))
        out[m] = total
    return out


def _brute_force_interaction(d: dict, players: list[str], i: str, j: str) -> np.ndarray:
    """Shapley interaction index (Grabisch 1997) by enumeration."""
    k = len(players)
    others = [p for p in players if p not in (i, j)]
    total = 0.0
    for r in range(len(others) + 1):
        for coal in itertools.combinations(others, r):
            t = set(coal)
            w = math.factorial(r) * math.factorial(k - r - 2) / math.factorial(k - 1)
            delta = (_game_value(t | {i, j}, d) - _game_value(t | {i}, d) - _game_value(t | {j}, d)
                     + _game_value(t, d))
            total = total + w * delta
    return total


def test_shapley_values_equal_brute_force_enumeration_and_sum_to_prediction_minus_baseline():
    g, mean = _contribs()
    phi = shapley_values(g, mean)
    d = {b: g[b] - mean[b] for b in g}
    brute = _brute_force_shapley(d, ["a", "b", "c"])
    for m in "abc":
        assert np.allclose(phi[m], brute[m], atol=1e-10)
    # efficiency: sum_m phi_m(x) = f(x) - baseline = sum_S (g_S - E g_S)
    assert np.allclose(sum(phi.values()), sum(d.values()), atol=1e-10)


def test_interaction_indices_equal_brute_force():
    g, mean = _contribs(seed=1)
    d = {b: g[b] - mean[b] for b in g}
    ind = interaction_indices(g, mean)
    assert set(ind) == {"a*b", "a*c", "b*c"}
    for key in ind:
        i, j = key.split("*")
        assert np.allclose(ind[key], _brute_force_interaction(d, ["a", "b", "c"], i, j), atol=1e-10)


def test_symmetry_and_null_player():
    rng = np.random.default_rng(2)
    x = rng.exponential(size=300)
    y = rng.exponential(size=300)
    # a and b play symmetric roles; c appears only in a block whose contribution is its baseline
    g = {"a": x, "b": x.copy(), "c": np.full(300, 4.0), "a*b": y, "a*c": np.full(300, -1.5)}
    mean = {"a": 0.3, "b": 0.3, "c": 4.0, "a*b": 0.1, "a*c": -1.5}
    phi = shapley_values(g, mean)
    assert np.allclose(phi["a"], phi["b"])
    assert np.allclose(phi["c"], 0.0)
    assert shapley_shares(phi)["c"] == 0.0


def test_contribution_share_is_variance_share_and_independent_of_constant_shifts():
    g, _ = _contribs(seed=3)
    share = contribution_shares(g)
    var = {b: np.var(v) for b, v in g.items()}
    assert np.isclose(sum(share.values()), 1.0)
    for b in g:
        assert np.isclose(share[b], var[b] / sum(var.values()))
    shifted = contribution_shares({b: v + 10 * i for i, (b, v) in enumerate(g.items())})
    assert all(np.isclose(shifted[b], share[b]) for b in g)


def test_split_attribution_has_intervals_that_contain_the_estimate():
    g, mean = _contribs(seed=4)
    att = split_attribution(g, mean, ["a", "b", "c"])
    for b, e in att["blocks"].items():
        lo, hi = e["contribution_share_ci"]
        assert lo <= e["contribution_share"] <= hi
    assert np.isclose(sum(e["shapley_share"] for e in att["modalities"].values()), 1.0)


def test_better_breaks_ties_on_the_validation_loss():
    assert _better(-0.878, 0.30, -0.878, 0.45)  # same accuracy, lower loss: later epoch wins
    assert not _better(-0.878, 0.50, -0.878, 0.45)
    assert _better(-0.9, 9.0, -0.878, 0.1)  # a better metric wins whatever the loss


def _classification(n=900, seed=3):
    rng = np.random.default_rng(seed)
    a = rng.gamma(2.0, size=(n, 4)).astype(np.float32)  # skewed informative modality
    b = (0.5 * a[:, :2].repeat(2, axis=1) + rng.exponential(size=(n, 4))).astype(np.float32)  # correlated noise
    y = (a[:, 0] - a[:, 1] > 0).astype(np.int64)
    split = np.array(["train"] * (n * 6 // 10) + ["valid"] * (n * 2 // 10) + ["test"] * (n - n * 8 // 10))
    return Dataset(modalities={"a": a, "b": b}, label=y, split=split, id=np.array([f"s{i}" for i in range(n)]),
                   task="classification")


def test_tied_accuracies_no_longer_keep_an_untrained_head():
    """Issue 10 item 1: with select=acc and ties, the earliest tied epoch was kept."""
    ds = _classification()
    cfg = Config.from_dict({"model": {"hidden": 8, "rank": 2, "interactions": "all", "dropout": 0.0,
                                      "lambda": 0.05},
                            "train": {"epochs": 8, "batch_size": 32, "lr": 0.01, "progress": False,
                                      "patience": 8, "seed": 3, "select": "acc"}})
    res = fit(ds, cfg)
    hist = pd.DataFrame(res.history)
    best_acc = hist["valid_acc"].max()
    tied = hist[np.isclose(hist["valid_acc"], best_acc, atol=1e-12)]
    # the kept epoch is the tied one with the lowest validation loss, not the first tied one
    assert res.best_epoch == int(tied.loc[tied["valid_loss"].idxmin(), "epoch"])
    # and the default (validation cross-entropy) picks an epoch whose head has learned: a dominates
    cfg.train.select = "auto"
    res2 = fit(ds, cfg)
    assert res2.share["a"] > 0.8, res2.share


def test_restarts_keep_the_initialisation_with_the_lowest_validation_loss(monkeypatch):
    """A constructed case where the first initialisation cannot learn (dead encoders)."""
    import torch

    import mweight.train as train_mod

    real_build = train_mod.build_model
    calls = {"n": 0}

    def build(ds, cfg):
        model = real_build(ds, cfg)
        calls["n"] += 1
        if calls["n"] == 1:  # restart 0: zero every encoder weight -> constant features, chance level
            with torch.no_grad():
                for p in model.encoders.parameters():
                    p.zero_()
                    p.requires_grad_(False)
        return model

    monkeypatch.setattr(train_mod, "build_model", build)
    ds = _classification(n=600)
    cfg = Config.from_dict({"model": {"hidden": 8, "dropout": 0.0},
                            "train": {"epochs": 5, "batch_size": 32, "lr": 0.01, "progress": False,
                                      "restarts": 2, "seed": 0}})
    res = fit(ds, cfg)
    recs = res.extra["restarts"]
    assert [r["restart"] for r in recs] == [0, 1]
    assert recs[0]["valid_loss"] > recs[1]["valid_loss"]
    assert res.extra["restart_chosen"] == 1
    assert res.metrics["test"]["acc"] > 0.8


def test_cli_run_writes_attribution_and_shapley_columns(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    text = rng.gamma(2.0, size=(n, 5)).astype(np.float32)
    # correlated with text (through text dims 1-3) but independent of the label (text dim 0)
    audio = (0.7 * text[:, 1:4] + rng.exponential(size=(n, 3))).astype(np.float32)
    label = (np.tanh(text[:, 0] - 2) + 0.1 * rng.normal(size=n)).astype(np.float32)
    split = np.array(["train"] * 400 + ["valid"] * 100 + ["test"] * 100)
    np.savez(tmp_path / "d.npz", text=text, audio=audio, label=label, split=split,
             id=np.array([f"v{i // 10}_{i}" for i in range(n)]))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "mweight", "train", "--data", str(tmp_path / "d.npz"),
                           "--out", str(out), "--quiet", "--set", "train.epochs=15", "--set",
                           "model.interactions=all", "--set", "model.hidden=8"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Shapley share (test)" in proc.stderr
    att = json.loads((out / "attribution.json").read_text())
    assert att["split"] == "test" and att["checkpoint"]["best_epoch"] >= 1
    assert set(att["blocks"]) == {"text", "audio", "text*audio"}
    assert np.isclose(sum(b["contribution_share"] for b in att["blocks"].values()), 1.0)
    assert att["modalities"]["text"]["shapley_share"] > 0.9, att["modalities"]
    pred = pd.read_csv(out / "predictions.csv")
    recon = pred["shapley_baseline"] + pred["shapley_text"] + pred["shapley_audio"]
    assert np.allclose(recon, pred["prediction"], atol=1e-4)
    assert np.allclose(pred["bias"] + pred[["text", "audio", "text*audio"]].sum(axis=1), pred["prediction"],
                       atol=1e-4)
    _ = pytest


def _sims_like(n=600, seed=0):
    """CH-SIMS-like: each modality has its own latent sentiment (skewed, correlated with the others);
    annotators' unimodal labels see one modality, the multimodal label mixes all three; every label
    sits on SIMS' grid of fifths in [-1, 1]."""
    rng = np.random.default_rng(seed)
    common = rng.gamma(2.0, size=n) - 2.0
    s = {m: 0.5 * common + rng.standard_t(4, size=n) * w for m, w in (("text", 1.0), ("audio", 0.6), ("video", 0.8))}
    grid = lambda x: np.clip(np.round(np.tanh(x) * 5) / 5, -1, 1)  # noqa: E731
    uni = {m: grid(v + 0.2 * rng.normal(size=n)) for m, v in s.items()}
    multi = grid(0.6 * s["text"] + 0.2 * s["audio"] + 0.2 * s["video"])
    return s, uni, multi


def _sims_like_features(n=900):
    """Three noisy features per modality from :func:`_sims_like`; 600 / 150 / 150 split."""
    s, uni, multi = _sims_like(n=n, seed=3)
    rng = np.random.default_rng(4)
    noise = {"text": 0.3, "audio": 0.8, "video": 0.5}
    mods = {m: np.stack([s[m] + noise[m] * rng.normal(size=n) for _ in range(3)], 1).astype(np.float32)
            for m in s}
    split = np.array(["train"] * (n * 2 // 3) + ["valid"] * (n // 6) + ["test"] * (n - n * 2 // 3 - n // 6))
    return mods, uni, multi, split


def test_unimodal_label_agreement_tells_modality_truth_from_overall_sentiment():
    from mweight.attribution import unimodal_label_agreement, unimodal_labels

    s, uni, multi = _sims_like()
    rng = np.random.default_rng(1)
    phi = {"text": np.tanh(s["text"]) + 0.1 * rng.normal(size=len(multi)),  # tracks its own modality
           "audio": 0.5 * multi + 0.05 * rng.normal(size=len(multi)),        # tracks the overall label only
           "video": np.tanh(s["video"]) * 0.3}
    columns = {"label_text": uni["text"], "label_audio": uni["audio"], "label_video": uni["video"],
               "label_happy": np.zeros(len(multi))}  # an emotion column is not a modality's label
    labels = unimodal_labels(columns, ["text", "audio", "video"])
    assert set(labels) == {"text", "audio", "video"}
    res = unimodal_label_agreement(phi, multi, labels)
    t, a = res["text"], res["audio"]
    assert t["pearson_unimodal"] > 0.8 and t["pearson_difference"] > 0 and t["pearson_difference_ci"][0] > 0
    assert a["pearson_multimodal"] > 0.9 and a["pearson_difference"] < 0 and a["pearson_difference_ci"][1] < 0
    assert res["video"]["spearman_unimodal"] > res["video"]["spearman_multimodal"]
    assert np.isclose(t["pearson_unimodal"], np.corrcoef(phi["text"], uni["text"])[0, 1])
    lo, hi = t["pearson_unimodal_ci"]
    assert lo < t["pearson_unimodal"] < hi


def test_unimodal_label_agreement_skips_missing_values_and_modalities():
    from mweight.attribution import unimodal_label_agreement

    s, uni, multi = _sims_like(n=200)
    y_text = uni["text"].copy()
    y_text[:50] = np.nan  # unlabelled samples
    phi = {"text": s["text"], "audio": np.zeros(200)}  # audio contributes nothing: correlation undefined
    res = unimodal_label_agreement(phi, multi, {"text": y_text, "audio": uni["audio"], "video": uni["video"]},
                                   intervals=False)
    assert set(res) == {"text", "audio"} and res["text"]["n"] == 150
    assert math.isnan(res["audio"]["pearson_unimodal"]) and "pearson_unimodal_ci" not in res["text"]


def test_trained_model_shapley_values_follow_each_modalitys_own_label():
    """End to end on SIMS-like data: features carry each modality's latent sentiment; the
    multimodal label mixes them. The weaker modalities' Shapley values must follow their own
    human label clearly more than the multimodal one (text, which dominates y, may do both)."""
    from mweight.attribution import unimodal_label_agreement, unimodal_labels
    from mweight.runs import decompose

    mods, uni, multi, split = _sims_like_features()
    ds = Dataset(modalities=mods, label=multi.astype(np.float32), split=split,
                 id=np.array([f"v{i // 3}_{i}" for i in range(900)]),
                 columns={f"label_{m}": v for m, v in uni.items()})
    res = fit(ds, Config.from_dict({"model": {"hidden": 8, "interactions": "pairs"},
                                    "train": {"epochs": 15, "progress": False}}))
    _pred, g, base, _idx, _means, _shap = decompose(res.model, ds)
    test = ds.split == "test"
    phi = shapley_values({b: v[test] for b, v in g.items()}, {b: v[test] for b, v in base.items()}, list(mods))
    labels = {m: v[test] for m, v in unimodal_labels(ds.columns, list(mods)).items()}
    agree = unimodal_label_agreement(phi, ds.label[test], labels)
    for m in ("audio", "video"):
        assert agree[m]["pearson_unimodal"] > 0.6 and agree[m]["pearson_difference_ci"][0] > 0.1, agree[m]


def test_evaluate_reports_shapley_against_human_unimodal_labels(tmp_path, cli):
    """`mweight evaluate` on a dataset with label_<modality> columns prints, per modality, the
    correlation of its Shapley values with its own human label next to the multimodal label,
    and writes them to --json (attribution.unimodal_labels)."""
    mods, uni, multi, split = _sims_like_features()
    data = tmp_path / "sims_like.npz"
    np.savez(data, **mods, label=multi.astype(np.float32), split=split,
             id=np.array([f"v{i // 3}_{i}" for i in range(900)]), **{f"label_{m}": v for m, v in uni.items()})
    cli("train", "--data", data, "--set", "model.hidden=8", "--set", "train.epochs=15", "--out", tmp_path / "run",
        "--quiet", check=True)
    res = cli("evaluate", tmp_path / "run", "--json", tmp_path / "ev.json", check=True)
    lines = [ln for ln in res.stdout.splitlines() if "human" in ln]
    assert len(lines) == 3 and all("multimodal label" in ln and "(test, n=150)" in ln for ln in lines), res.stdout
    got = json.loads((tmp_path / "ev.json").read_text())["runs"][0]["attribution"]["unimodal_labels"]
    assert set(got) == {"text", "audio", "video"}
    for m in ("audio", "video"):  # their Shapley values follow their own label more than the overall one
        assert got[m]["pearson_unimodal"] > got[m]["pearson_multimodal"], got[m]
