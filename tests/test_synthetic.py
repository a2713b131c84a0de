"""mweight.synthetic: the ground truth of the DNA-sequence designs holds empirically."""
import json
import math

import numpy as np
import pytest

from mweight import synthetic
from mweight.errors import MWeightError
from mweight.synthetic import (
    decode,
    encode,
    find_motif,
    make_additive,
    make_dataset,
    make_inflation,
    make_xor,
    truth_path,
    write_dataset,
)


def within(rate, expected, n, sigmas=4.5):
    """|rate - expected| within `sigmas` binomial standard errors (plus a rounding floor)."""
    sd = math.sqrt(max(expected * (1 - expected), 1e-12) / n)
    return abs(rate - expected) <= sigmas * sd + 1e-9


def detect(ds, m):
    """Oracle motif detector: 0 / 1 for the motif found, -1 for none (never both, by design)."""
    pair = ds.ground_truth["motifs"][m]
    has0, has1 = find_motif(ds.arrays[m], pair[0]), find_motif(ds.arrays[m], pair[1])
    assert not (has0 & has1).any(), f"{m}: a sequence carries both class motifs"
    return np.where(has0, 0, np.where(has1, 1, -1))


@pytest.fixture(scope="module")
def additive():
    return make_additive(p=(0.5, 0.35, 0.2, 0.0), n=4000, seed=3)


@pytest.fixture(scope="module")
def xor():
    return make_xor(n=4000, seed=5)


# --------------------------------------------------------------------------- encoding


def test_encode_decode_roundtrip_and_find_motif():
    assert encode("acgt").tolist() == [0, 1, 2, 3]
    assert decode(encode("GATTACA")) == "GATTACA"
    tokens = np.stack([encode("AAGATTACAA"), encode("GATTACCAAA"), encode("AAAGATTACA")])
    assert find_motif(tokens, "GATTACA").tolist() == [True, False, True]
    with pytest.raises(MWeightError):
        encode("ACGU")


# --------------------------------------------------------------------------- additive


def test_additive_arrays_and_format(additive):
    ds = additive
    assert ds.modalities == ["m1", "m2", "m3", "m4"]
    for arr in ds.arrays.values():
        assert arr.shape == (4000, 100) and arr.dtype == np.int8
        assert arr.min() == 0 and arr.max() == 3
    assert ds.label.dtype == np.int64 and set(np.unique(ds.label)) == {0, 1}
    assert (ds.label == 1).sum() == 2000  # exactly balanced
    assert len(set(ds.id.tolist())) == 4000 and all("_" not in i for i in ds.id)
    assert ds.ground_truth["relevant_blocks"] == ["m1", "m2", "m3"]
    assert ds.ground_truth["irrelevant_modalities"] == ["m4"]


def test_additive_motif_rates_match_p(additive):
    ds = additive
    for m, p in zip(ds.modalities, (0.5, 0.35, 0.2, 0.0)):
        found = detect(ds, m)
        rate = (found >= 0).mean()
        assert within(rate, p, ds.n_samples), (m, rate, p)
        # the detector recovers exactly what was inserted, and it is the class motif
        np.testing.assert_array_equal(found, ds.inserted[m])
        carried = found >= 0
        np.testing.assert_array_equal(found[carried], ds.label[carried])


def test_additive_single_modality_bayes_accuracy(additive):
    ds = additive
    for m in ds.modalities:
        found = detect(ds, m)
        guess = np.where(found >= 0, found, 0)  # no motif: guess class 0
        acc = (guess == ds.label).mean()
        expected = ds.ground_truth["bayes_accuracy"][m]
        assert expected == pytest.approx((1 + ds.ground_truth["p"][m]) / 2)
        assert within(acc, expected, ds.n_samples), (m, acc, expected)
    assert ds.ground_truth["bayes_accuracy"]["all"] == pytest.approx(1 - 0.5 * 0.5 * 0.65 * 0.8)


def test_additive_background_is_uniform_and_motif_windows_move(additive):
    ds = additive
    freq = np.bincount(ds.arrays["m4"].ravel(), minlength=4) / ds.arrays["m4"].size
    np.testing.assert_allclose(freq, 0.25, atol=0.005)
    # motif start positions are spread over the whole sequence
    motif = encode(ds.ground_truth["motifs"]["m1"][1])
    rows = np.flatnonzero(ds.inserted["m1"] == 1)
    win = np.lib.stride_tricks.sliding_window_view(ds.arrays["m1"][rows], 7, axis=1)
    starts = (win == motif).all(-1).argmax(1)
    assert len(np.unique(starts)) > 80
    assert starts.min() <= 2 and starts.max() >= 91


def test_expected_shares(additive):
    share = additive.ground_truth["expected_share"]
    assert sum(share.values()) == pytest.approx(1.0)
    assert share["m4"] == 0.0
    assert share["m1"] > share["m2"] > share["m3"] > 0


def test_p_zero_everywhere_gives_label_free_data():
    ds = make_additive(p=(0.0, 0.0), n=500, seed=0)
    assert all((ds.inserted[m] == -1).all() for m in ds.modalities)
    assert ds.ground_truth["relevant_blocks"] == []


# --------------------------------------------------------------------------- determinism


def _same(a, b):
    assert a.modalities == b.modalities
    for m in a.modalities:
        np.testing.assert_array_equal(a.arrays[m], b.arrays[m])
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_array_equal(a.split, b.split)
    np.testing.assert_array_equal(a.id, b.id)
    assert a.ground_truth == b.ground_truth and a.params == b.params


@pytest.mark.parametrize("design", ["additive", "xor", "parity", "inflation"])
def test_same_seed_same_data_different_seed_different_data(design):
    a = make_dataset(design, n=300, seed=11)
    b = make_dataset(design, n=300, seed=11)
    _same(a, b)
    c = make_dataset(design, n=300, seed=12)
    assert not np.array_equal(a.arrays["m1"], c.arrays["m1"])
    assert not np.array_equal(a.label, c.label)
    assert not np.array_equal(a.split, c.split)
    assert a.ground_truth["motifs"] != c.ground_truth["motifs"]


def test_given_motifs_are_used_and_do_not_change_other_streams():
    drawn = make_additive(p=(0.6, 0.0), n=400, seed=2)
    fixed = make_additive(p=(0.6, 0.0), n=400, seed=2, motifs=("GATTACA", "CCGGTTA"))
    assert fixed.ground_truth["motifs"] == {"m1": ["GATTACA", "CCGGTTA"], "m2": ["GATTACA", "CCGGTTA"]}
    np.testing.assert_array_equal(drawn.label, fixed.label)  # labels do not depend on the motifs
    np.testing.assert_array_equal(drawn.inserted["m1"], fixed.inserted["m1"])
    assert (find_motif(fixed.arrays["m1"], "CCGGTTA") == (fixed.inserted["m1"] == 1)).all()
    per = make_additive(p=(0.6, 0.3), n=100, seed=2,
                        motifs={"m1": ("AAAACCC", "GGGGTTT"), "m2": [[0, 1, 2, 3, 0, 1, 2], "TTTTTTT"]})
    assert per.ground_truth["motifs"]["m2"] == ["ACGTACG", "TTTTTTT"]


def test_custom_length_and_motif_length():
    ds = make_additive(p=(0.9,), n=200, length=40, motif_length=5, seed=0)
    assert ds.arrays["m1"].shape == (200, 40)
    assert all(len(x) == 5 for x in ds.ground_truth["motifs"]["m1"])
    assert within((detect(ds, "m1") >= 0).mean(), 0.9, 200)


# --------------------------------------------------------------------------- splits


@pytest.mark.parametrize("fractions", [(0.6, 0.2, 0.2), (0.5, 0.0, 0.5), (0.7, 0.15, 0.15)])
def test_splits_are_stratified_and_held_out(fractions):
    ds = make_additive(p=(0.5,), n=1001, seed=4, split_fractions=fractions)
    counts = ds.counts()
    assert sum(counts.values()) == 1001
    for name, f in zip(("train", "valid", "test"), fractions):
        assert abs(counts[name] - f * 1001) <= 2
        sel = ds.label[ds.split == name]
        if sel.size:
            assert abs((sel == 1).sum() - (sel == 0).sum()) <= 2  # class balance per split
    assert set(np.unique(ds.split)) <= {"train", "valid", "test"}
    # the split is random, not a block of consecutive samples
    test_idx = np.flatnonzero(ds.split == "test")
    assert test_idx.min() < 100 and test_idx.max() > 900


# --------------------------------------------------------------------------- xor / parity


def test_xor_no_single_modality_beats_chance_but_the_pair_is_perfect(xor):
    ds = xor
    bits = {m: detect(ds, m) for m in ds.modalities}
    for m in ds.modalities:
        assert (bits[m] >= 0).all()  # every modality always carries a motif
        np.testing.assert_array_equal(bits[m], ds.inserted[m])
        assert within(bits[m].mean(), 0.5, ds.n_samples)  # fair coin
        # best any function of this modality alone can do (oracle on its bit)
        acc = max((bits[m] == ds.label).mean(), (bits[m] != ds.label).mean())
        assert acc <= 0.5 + 4.5 * math.sqrt(0.25 / ds.n_samples), (m, acc)
    assert ((bits["m1"] ^ bits["m2"]) == ds.label).all()
    acc13 = ((bits["m1"] ^ bits["m3"]) == ds.label).mean()  # m3 is irrelevant
    assert within(acc13, 0.5, ds.n_samples)
    gt = ds.ground_truth
    assert gt["design"] == "xor" and gt["relevant_blocks"] == ["m1*m2"]
    assert gt["expected_share"] == {"m1*m2": 1.0}
    assert gt["bayes_accuracy"]["m1"] == 0.5 and gt["bayes_accuracy"]["m1*m2"] == 1.0
    assert gt["bayes_accuracy"]["m1*m3"] == 0.5 and gt["irrelevant_modalities"] == ["m3"]


def test_parity_needs_all_three():
    ds = make_dataset("parity", n=4000, seed=6)
    bits = {m: detect(ds, m) for m in ds.modalities}
    for a, b in (("m1", "m2"), ("m1", "m3"), ("m2", "m3")):
        assert within(((bits[a] ^ bits[b]) == ds.label).mean(), 0.5, ds.n_samples)
    assert ((bits["m1"] ^ bits["m2"] ^ bits["m3"]) == ds.label).all()
    assert ds.ground_truth["relevant_blocks"] == ["m1*m2*m3"]
    assert (ds.label == 1).sum() == 2000


def test_xor_with_extra_irrelevant_modalities():
    ds = make_xor(n=200, n_modalities=5, seed=0)
    assert ds.modalities == ["m1", "m2", "m3", "m4", "m5"]
    assert ds.ground_truth["roles"]["m5"] == "irrelevant"


# --------------------------------------------------------------------------- inflation


def test_inflation_roles():
    ds = make_inflation(p=0.7, n=2000, seed=8)
    assert ds.modalities == ["m1", "m2", "m3"]
    assert ds.ground_truth["roles"] == {"m1": "relevant", "m2": "irrelevant", "m3": "constant"}
    assert within((detect(ds, "m1") >= 0).mean(), 0.7, 2000)
    assert (detect(ds, "m2") == -1).all()
    const = ds.arrays["m3"]
    assert (const == const[0]).all() and len(np.unique(const[0])) > 1
    assert ds.ground_truth["expected_share"] == {"m1": 1.0}
    assert ds.ground_truth["bayes_accuracy"]["m2*m3"] == 0.5
    assert ds.ground_truth["bayes_accuracy"]["m1*m2"] == pytest.approx(0.85)
    only_const = make_inflation(p=0.7, n=100, irrelevant=False, seed=8)
    assert only_const.ground_truth["roles"] == {"m1": "relevant", "m2": "constant"}


# --------------------------------------------------------------------------- writing


def test_write_dataset_roundtrip(tmp_path, additive):
    path = tmp_path / "sub" / "add.npz"
    tpath = write_dataset(additive, path)
    assert tpath == tmp_path / "sub" / "add.truth.json" == truth_path(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["add.npz", "add.truth.json"]  # no temp files
    with np.load(path, allow_pickle=False) as z:
        assert list(z.keys()) == ["label", "split", "id", "m1", "m2", "m3", "m4", "meta_json"]
        for m in additive.modalities:
            np.testing.assert_array_equal(z[m], additive.arrays[m])
            assert z[m].dtype == np.int8
        np.testing.assert_array_equal(z["label"], additive.label)
        assert z["split"].dtype.kind == "U" and z["id"].dtype.kind == "U"
        np.testing.assert_array_equal(z["split"], additive.split)
        meta = json.loads(str(z["meta_json"]))
    truth = json.loads(tpath.read_text())
    assert meta == truth
    assert meta["ground_truth"]["p"] == {"m1": 0.5, "m2": 0.35, "m3": 0.2, "m4": 0.0}
    assert meta["params"]["seed"] == 3 and meta["counts"] == additive.counts()
    # the parameters regenerate the same data
    kw = {k: v for k, v in meta["params"].items() if k != "design"}
    _same(make_dataset(meta["params"]["design"], **kw), additive)


def test_write_dataset_is_atomic(tmp_path, monkeypatch, additive):
    path = tmp_path / "a.npz"
    path.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synthetic.np, "savez_compressed", boom)
    with pytest.raises(RuntimeError):
        write_dataset(additive, path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "design, kwargs",
    [
        ("additive", {"p": (0.5, 1.2)}),
        ("additive", {"p": ()}),
        ("additive", {"p": (0.5,), "split_fractions": (0.6, 0.2, 0.3)}),
        ("additive", {"p": (0.5,), "split_fractions": (1.0, 0.0, 0.0)}),
        ("additive", {"p": (0.5,), "n": 1}),
        ("additive", {"p": (0.5,), "seed": -1}),
        ("additive", {"p": (0.5,), "motifs": ("GATTACA", "GATTACA")}),
        ("additive", {"p": (0.5,), "motifs": ("GATTA", "CCGGA")}),
        ("additive", {"p": (0.5,), "motifs": ("GATTACU", "CCGGTTA")}),
        ("additive", {"p": (0.5,), "motifs": {"m2": ("GATTACA", "CCGGTTA")}}),
        ("additive", {"p": (0.5,), "motif_length": 200}),
        ("xor", {"order": 3, "n_modalities": 2}),
        ("inflation", {"p": 0.0}),
        ("inflation", {"irrelevant": False, "constant": False}),
        ("dna", {}),
    ],
)
def test_bad_parameters_raise_one_line_errors(design, kwargs):
    with pytest.raises(MWeightError) as exc:
        make_dataset(design, **{"n": 50, **kwargs})
    assert "\n" not in str(exc.value)


# --------------------------------------------------------------------------- correlated nuisance (tabular)


@pytest.fixture(scope="module")
def nuisance():
    return synthetic.make_nuisance(n=6000, seed=4)


def _recover_latents(ds):
    """(s, nu) from a alone, with the weights in the ground truth: relu(x) - relu(-x) = x."""
    w, nuis = ds.ground_truth["weights"], ds.params["nuisance"]
    a = ds.arrays["a"].astype(np.float64)
    x = a[:, 0::2] - a[:, 1::2] - np.asarray(w["c_a"])
    mix = np.c_[w["alpha"], nuis * np.asarray(w["gamma"])]  # (k, 2)
    s_nu = np.linalg.lstsq(mix, x.T, rcond=None)[0]
    return s_nu[0], s_nu[1]


def _corr(x, y):
    return float(np.corrcoef(x, y)[0, 1])


def test_nuisance_arrays_format_and_determinism(nuisance):
    ds = nuisance
    assert ds.modalities == ["a", "b"]
    assert ds.arrays["a"].shape == (6000, 8) and ds.arrays["b"].shape == (6000, 8)
    assert all(v.dtype == np.float32 for v in ds.arrays.values())
    assert ds.label.dtype == np.float32 and np.isfinite(ds.label).all()
    assert ds.counts() == {"train": 3600, "valid": 1200, "test": 1200}
    # stratified by label decile: every split has about the same label distribution
    for s in ("valid", "test"):
        assert abs(np.median(ds.label[ds.split == s]) - np.median(ds.label)) < 0.1
    gt = ds.ground_truth
    assert gt["relevant_blocks"] == ["a"] and gt["irrelevant_modalities"] == ["b"]
    assert gt["expected_share"] == {"a": 1.0} and gt["task"] == "regression"
    again = synthetic.make_dataset("nuisance", **{k: v for k, v in ds.params.items() if k != "design"})
    for m in ds.modalities:
        np.testing.assert_array_equal(again.arrays[m], ds.arrays[m])
    np.testing.assert_array_equal(again.label, ds.label)
    np.testing.assert_array_equal(again.split, ds.split)
    other = synthetic.make_nuisance(n=6000, seed=5)
    assert not np.array_equal(other.arrays["b"], ds.arrays["b"])


def test_nuisance_features_are_skewed_and_b_is_correlated_with_a(nuisance):
    ds = nuisance
    a, b = ds.arrays["a"].astype(float), ds.arrays["b"].astype(float)
    for arr in (a, b):
        c = arr - arr.mean(0)
        skew = (c**3).mean(0) / (c**2).mean(0) ** 1.5
        assert (skew > 0.5).all(), skew  # ReLU: right-skewed, not Gaussian
        assert ((arr == 0).mean(0) > 0.1).all() and (arr >= 0).all()
    corr_ab = np.corrcoef(np.hstack([a, b]).T)[:8, 8:]
    assert np.abs(corr_ab).max() > 0.6  # b shares the nuisance latent with a
    assert ds.ground_truth["measured"]["max_abs_corr_a_b"] == pytest.approx(np.abs(corr_ab).max(), abs=1e-6)


def test_nuisance_b_is_independent_of_the_label_also_given_a(nuisance):
    ds = nuisance
    b, y = ds.arrays["b"].astype(float), ds.label.astype(float)
    bound = 4.5 / np.sqrt(ds.n_samples)  # 4.5 standard errors of a zero correlation
    for j in range(b.shape[1]):
        # linear and the simplest nonlinear dependences (on y and on |y - median|)
        assert abs(_corr(b[:, j], y)) < bound
        assert abs(_corr(b[:, j], np.abs(y - np.median(y)))) < bound
        # the label's mean does not move across b's quintiles
        q = np.quantile(b[:, j], [0.2, 0.4, 0.6, 0.8])
        means = [y[np.digitize(b[:, j], q) == k].mean() for k in range(5) if (np.digitize(b[:, j], q) == k).sum() > 100]
        assert np.ptp(means) < 0.2, means
    # a determines s exactly, so once a is known b tells nothing more: the residual of the
    # Bayes predictor s**2 - 1 is the label noise, uncorrelated with every b feature
    s, nu = _recover_latents(ds)
    resid = y - (s**2 - 1)
    assert resid.std() == pytest.approx(ds.params["label_noise"], rel=0.05)
    assert max(abs(_corr(resid, b[:, j])) for j in range(b.shape[1])) < bound
    # ... while b does see the nuisance latent that a mixes in
    assert max(abs(_corr(nu, b[:, j])) for j in range(b.shape[1])) > 0.6


def test_nuisance_effect_of_a_is_nonlinear(nuisance):
    ds = nuisance
    a, y = ds.arrays["a"].astype(float), ds.label.astype(float)
    s, _ = _recover_latents(ds)
    assert abs(_corr(s, y)) < 0.06  # not monotone: the signal itself is uncorrelated with y
    x = np.c_[np.ones(len(y)), a]
    resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    linear_r2 = 1 - resid.var() / y.var()
    oracle = ds.ground_truth["oracle"]
    # a linear read-out of a's ReLU features falls well short of the Bayes predictor
    assert linear_r2 < 0.85 and oracle["test_corr"] ** 2 > 0.95, (linear_r2, oracle)
    test = ds.split == "test"
    assert oracle["test_mae"] == pytest.approx(np.mean(np.abs(y[test] - (s[test] ** 2 - 1))), abs=1e-4)


def test_nuisance_writes_a_regression_dataset(tmp_path, nuisance):
    from mweight.data import load_dataset

    path = tmp_path / "nu.npz"
    tpath = write_dataset(nuisance, path)
    ds = load_dataset(path)
    assert ds.task == "regression" and ds.names == ["a", "b"]
    np.testing.assert_array_equal(ds.modalities["b"], nuisance.arrays["b"])
    np.testing.assert_array_equal(ds.label, nuisance.label)
    meta = json.loads(tpath.read_text())
    assert meta == ds.meta and meta["design"] == "nuisance"
    assert set(meta["label_counts"]["test"]) == {"mean", "std"}


@pytest.mark.parametrize("kwargs", [{"dim_a": 5}, {"dim_a": 2}, {"dim_b": 0}, {"nuisance": 0.0},
                                    {"label_noise": -1.0}, {"n": 5}, {"split_fractions": (0.5, 0.5, 0.5)}])
def test_nuisance_bad_parameters(kwargs):
    with pytest.raises(MWeightError) as exc:
        synthetic.make_nuisance(**{"n": 100, **kwargs})
    assert "\n" not in str(exc.value)
