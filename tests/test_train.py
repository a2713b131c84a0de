"""The training loop end to end: relevance recovery, determinism, history, explicit beta."""
import numpy as np
import pytest

from mweight import MWeight
from mweight.config import Config
from mweight.data import Dataset
from mweight.relevance import closed_form_beta
from mweight.train import fit


def _toy(n=900, seed=0, informative=("a",)):
    rng = np.random.default_rng(seed)
    mods = {m: rng.normal(size=(n, 6)).astype(np.float32) for m in ("a", "b", "c")}
    y = sum(np.tanh(2 * mods[m][:, 0]) + 0.5 * mods[m][:, 1] for m in informative)
    y = (y + 0.1 * rng.normal(size=n)).astype(np.float32)
    split = np.array(["train"] * (n * 6 // 10) + ["valid"] * (n * 2 // 10) + ["test"] * (n - n * 8 // 10))
    return Dataset(modalities=mods, label=y, split=split, id=np.array([f"s{i}" for i in range(n)]))


def _cfg(**model):
    return Config.from_dict({"model": {"hidden": 8, "rank": 3, "lambda": 0.05, "dropout": 0.0, **model},
                             "train": {"epochs": 25, "batch_size": 32, "lr": 0.005, "progress": False,
                                       "patience": 25}})


def test_only_informative_modality_gets_relevance_with_interactions():
    cfg = _cfg(interactions="all", norm="iterbn")
    cfg.train.epochs = 15
    res = fit(_toy(n=700), cfg)
    assert res.share["a"] >= 0.9, res.share
    assert res.metrics["test"]["corr"] > 0.8


def test_same_seed_same_beta_and_different_seed_differs():
    ds = _toy(n=200)
    cfg = _cfg(interactions="pairs")
    cfg.train.epochs = 3
    r1, r2 = fit(ds, cfg), fit(ds, cfg)
    b1, b2 = np.array(list(r1.beta.values())), np.array(list(r2.beta.values()))
    assert np.allclose(b1, b2, atol=1e-6, rtol=0)
    cfg.train.seed = 1
    b3 = np.array(list(fit(ds, cfg).beta.values()))
    assert not np.allclose(b1, b3, atol=1e-6)


def test_history_has_losses_metrics_and_beta_per_block():
    ds = _toy(n=300)
    cfg = _cfg(interactions=["a*b"])
    cfg.train.epochs = 4
    res = fit(ds, cfg)
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    row = res.history[-1]
    for key in ("train_loss", "train_penalty", "valid_mae", "valid_acc2_non0", "lr", "beta_a", "beta_a*b",
                "share_c"):
        assert key in row, key
    assert np.isclose(sum(row[f"share_{b}"] for b in ("a", "b", "c", "a*b")), 1.0)
    # beta reported is that of the selected checkpoint
    best = res.history[res.best_epoch - 1]
    assert np.isclose(best["beta_a"], res.beta["a"], atol=1e-9)


def test_lr_decays_exponentially_and_early_stopping_stops():
    ds = _toy(n=300)
    cfg = _cfg()
    cfg.train.epochs, cfg.train.patience, cfg.train.lr_decay = 40, 2, 0.5
    res = fit(ds, cfg)
    lrs = [h["lr"] for h in res.history]
    assert np.allclose(lrs[:3], [0.005, 0.0025, 0.00125])
    assert res.extra["stopped_early"] and len(res.history) < 40
    assert len(res.history) - res.best_epoch == 2


def test_explicit_beta_agrees_with_closed_form_at_convergence():
    ds = _toy(n=600, informative=("a", "b"))
    for p in (1.0, 2.0):
        cfg = _cfg(relevance="explicit", p=p)
        cfg.train.epochs = 15
        res = fit(ds, cfg)
        model = res.model
        beta = model.beta.detach().double().numpy()
        cf = closed_form_beta(model.block_weight_norms().detach().double().numpy(), p)
        assert np.allclose(beta, cf, atol=0.02), (p, beta, cf)
        # the irrelevant modality: sparse for p = 1, small but non-zero for p = 2 (beta ~ ||W||^(2/3))
        assert beta[2] < (0.05 if p == 1.0 else 0.25) * beta[0]


def test_classification_with_cross_entropy():
    ds = _toy(n=400)
    ds.label = (ds.label > np.median(ds.label)).astype(np.int64)
    ds.task = "classification"
    res = fit(ds, _cfg())
    assert res.metrics["test"]["acc"] > 0.8
    assert res.share["a"] > 0.8


def test_estimator_fit_predict_contributions_save_load(tmp_path):
    ds = _toy(n=500)
    X = ds.modalities
    est = MWeight(hidden=8, epochs=8, progress=False, interactions="pairs").fit(X, ds.label, split=ds.split)
    assert set(est.relevance_) == {"a", "b", "c", "a*b", "a*c", "b*c"}
    assert np.isclose(sum(est.relevance_share_.values()), 1.0)
    pred = est.predict(X)
    contrib = est.contributions(X)
    assert np.allclose(contrib[est.blocks_ + ["bias"]].sum(axis=1), pred, atol=1e-5)
    assert np.allclose(contrib["prediction"], pred, atol=1e-6)
    est.save(tmp_path / "m.pt")
    again = MWeight.load(tmp_path / "m.pt")
    assert np.allclose(again.predict(X), pred, atol=1e-6)
    assert again.relevance_ == pytest.approx(est.relevance_)


def test_estimator_errors_are_clear():
    from mweight.errors import MWeightError

    with pytest.raises(MWeightError, match="not fitted"):
        MWeight().predict({"a": np.zeros((2, 3))})
    with pytest.raises(MWeightError, match="unknown parameter"):
        MWeight(lamda=0.1).resolved_config()


def test_selection_metric_can_be_chosen():
    from mweight.errors import MWeightError
    from mweight.train import selection_metric

    cfg = _cfg()
    assert selection_metric(cfg, "regression") == ("mae", "min")
    assert selection_metric(cfg, "classification") == ("ce", "min")  # accuracy ties kept untrained heads
    cfg.train.select = "corr"
    assert selection_metric(cfg, "regression") == ("corr", "max")
    ds = _toy(n=300)
    cfg.train.epochs, cfg.train.patience = 6, 100
    res = fit(ds, cfg)
    corrs = [h["valid_corr"] for h in res.history]
    assert res.best_epoch == int(np.argmax(corrs)) + 1
    cfg.train.select = "accuracy"
    with pytest.raises(MWeightError, match="train.select"):
        fit(ds, cfg)
