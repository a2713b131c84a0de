"""mweight.estimator.MWeight: the scikit-learn-style contract on skewed, correlated data."""
import numpy as np
import pytest

from conftest import write_mosi_like
from mweight import MWeight
from mweight.errors import MWeightError

PARAMS = dict(hidden=8, epochs=4, progress=False, interactions="pairs", seed=3)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("est")
    a = write_mosi_like(root / "d.npz", n_videos=14, clips=6, seed=5, skew=True)
    X = {m: a[m] for m in ("text", "audio", "video")}
    est = MWeight(**PARAMS).fit(X, a["label"], split=a["split"])
    return root, a, X, est


def test_init_stores_parameters_only_and_resolves_them():
    est = MWeight(p=1.5, lam=0.05, epochs=2)
    assert est.get_params() == {"config": None, "p": 1.5, "lam": 0.05, "epochs": 2}
    assert not hasattr(est, "model_")
    cfg = est.set_params(norm="iterbn").resolved_config()
    assert cfg.model.p == 1.5
    assert cfg.to_dict()["model"]["lambda"] == 0.05 and cfg.model.norm == "iterbn" and cfg.train.epochs == 2
    with pytest.raises(MWeightError, match=r"MWeight\(lamda=...\): unknown parameter"):
        MWeight(lamda=0.1).resolved_config()
    with pytest.raises(MWeightError, match="not fitted yet"):
        MWeight().predict({"text": np.zeros((2, 3))})


def test_fitted_attributes_and_exact_contributions(fitted):
    _, a, X, est = fitted
    assert est.modalities_ == ["text", "audio", "video"] and est.task_ == "regression"
    assert set(est.relevance_share_) == set(est.blocks_) and sum(est.relevance_share_.values()) == pytest.approx(1)
    assert len(est.history_) == 4 and est.best_epoch_ >= 1
    contrib = est.contributions(X)
    total = contrib[est.blocks_].sum(axis=1) + contrib["bias"]
    assert np.allclose(total, contrib["prediction"], atol=1e-4)  # blocks + bias = prediction
    assert np.allclose(contrib["prediction"], est.predict(X), atol=1e-5)
    shap = [c for c in contrib if c.startswith("shapley_") and c != "shapley_baseline"]
    assert np.allclose(contrib[shap].sum(axis=1) + contrib["shapley_baseline"], contrib["prediction"], atol=1e-4)


def test_predict_from_path_dict_agree_and_score_is_r2(fitted):
    from sklearn.metrics import r2_score

    root, a, X, est = fitted
    assert np.allclose(est.predict(root / "d.npz"), est.predict(X), atol=1e-6)
    assert est.score(X, a["label"]) == pytest.approx(r2_score(a["label"], est.predict(X)))
    with pytest.raises(MWeightError, match="predict_proba is for classification"):
        est.predict_proba(X)
    with pytest.raises(MWeightError, match="missing modality 'video'"):
        est.predict({"text": X["text"], "audio": X["audio"]})
    with pytest.raises(MWeightError, match=r"X\['audio'\]: 10 rows; expected"):
        MWeight(**PARAMS).fit({**X, "audio": X["audio"][:10]}, a["label"])


def test_save_load_round_trip(fitted, tmp_path):
    _, _, X, est = fitted
    est.save(tmp_path / "m.pt")
    again = MWeight.load(tmp_path / "m.pt")
    assert np.array_equal(again.predict(X), est.predict(X))


def test_same_seed_same_model_other_seed_another(fitted):
    _, a, X, est = fitted
    twin = MWeight(**PARAMS).fit(X, a["label"], split=a["split"])
    assert twin.relevance_ == est.relevance_
    other = MWeight(**{**PARAMS, "seed": 4}).fit(X, a["label"], split=a["split"])
    assert other.relevance_ != est.relevance_
