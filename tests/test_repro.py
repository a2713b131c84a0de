"""mweight repro dna: the claim checks, the table/figures, determinism, and a small version of the science."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from mweight.repro import dna
from mweight.repro.dna import (
    EXPERIMENTS,
    check_additive,
    check_inflation,
    check_xor,
    parse_experiments,
    parse_seeds,
    ranking_follows,
    spearman,
)
from mweight.errors import MWeightError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- checks on hand-made tables


def frame(experiment, variant, seeds_shares, acc=0.9, expected=None, norm="anova"):
    rows = []
    for seed, shares in seeds_shares.items():
        a = acc[seed] if isinstance(acc, dict) else acc
        for b, v in shares.items():
            rows.append({"experiment": experiment, "variant": variant, "norm": norm, "seed": seed, "block": b,
                         "beta": v, "share": v, "expected_share": (expected or {}).get(b, 0.0), "test_acc": a})
    return pd.DataFrame(rows)


ADD_TRUTH = {"ground_truth": {"p": {"m1": 0.5, "m2": 0.35, "m3": 0.2, "m4": 0.0, "m5": 0.0, "m6": 0.0}},
             "params": {"n": 4000}}
GOOD = {"m1": 0.5, "m2": 0.3, "m3": 0.17, "m4": 0.01, "m5": 0.01, "m6": 0.01}
SWAPPED = {"m1": 0.3, "m2": 0.5, "m3": 0.17, "m4": 0.01, "m5": 0.01, "m6": 0.01}


def test_ranking_follows_p_keeps_ties_tied():
    p = ADD_TRUTH["ground_truth"]["p"]
    assert ranking_follows(GOOD, p)
    assert not ranking_follows(SWAPPED, p)
    # an irrelevant modality above a relevant one breaks the ranking
    assert not ranking_follows({**GOOD, "m5": 0.2}, p)
    # the order among tied p = 0 modalities does not matter
    assert ranking_follows({**GOOD, "m4": 0.015, "m6": 0.001}, p)
    assert spearman([3, 2, 1], [0.5, 0.35, 0.2]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [0.5, 0.35, 0.2]) == pytest.approx(-1.0)


def test_additive_check_counts_seeds_and_irrelevant_threshold():
    ok = check_additive(frame("additive", "anova", {s: GOOD for s in range(5)}), ADD_TRUTH)
    assert [c.passed for c in ok] == [True, True]
    # one of five seeds out of order: still >= 4 of 5
    one_bad = {0: SWAPPED, 1: GOOD, 2: GOOD, 3: GOOD, 4: GOOD}
    assert check_additive(frame("additive", "anova", one_bad), ADD_TRUTH)[0].passed
    two_bad = {0: SWAPPED, 1: SWAPPED, 2: GOOD, 3: GOOD, 4: GOOD}
    ranking = check_additive(frame("additive", "anova", two_bad), ADD_TRUTH)[0]
    assert not ranking.passed and ranking.values["seeds_ok"] == 3
    # one irrelevant modality above 0.02 on one seed fails the second claim
    leak = {s: GOOD for s in range(5)}
    leak[3] = {**GOOD, "m6": 0.025, "m1": 0.485}
    irr = check_additive(frame("additive", "anova", leak), ADD_TRUTH)[1]
    assert not irr.passed and irr.values["max_irrelevant_share"][3] == pytest.approx(0.025)


XOR_TRUTH = {"ground_truth": {"relevant_blocks": ["m1*m2"]}, "params": {"n": 20000}}


def xor_shares(inter):
    rest = (1 - inter) / 6
    return {"m1": rest, "m2": rest, "m3": rest, "m1*m2": inter, "m1*m3": rest, "m2*m3": rest, "m1*m2*m3": rest}


def test_xor_check_only_converged_seeds_count():
    shares = {0: xor_shares(0.95), 1: xor_shares(0.92), 2: xor_shares(0.2), 3: xor_shares(0.97), 4: xor_shares(0.1)}
    acc = {0: 0.99, 1: 0.97, 2: 0.5, 3: 0.96, 4: 0.51}
    conv, inter = check_xor(frame("xor", "anova", shares, acc), XOR_TRUTH)
    # every seed must converge (issue 11: restarts); the share claim looks at converged seeds only
    assert not conv.passed and inter.passed and conv.values["converged"] == [0, 1, 3]
    all_conv = {s: 0.99 for s in range(5)}
    assert check_xor(frame("xor", "anova", {s: xor_shares(0.95) for s in range(5)}, all_conv), XOR_TRUTH)[0].passed
    # a converged seed with share below 0.9 fails
    shares[1] = xor_shares(0.85)
    assert not check_xor(frame("xor", "anova", shares, acc), XOR_TRUTH)[1].passed
    # only two of five converged
    acc2 = {**acc, 3: 0.90}
    assert not check_xor(frame("xor", "anova", {s: xor_shares(0.95) for s in range(5)}, acc2), XOR_TRUTH)[0].passed
    # below the claim's sample size, nothing passes
    small = {**XOR_TRUTH, "params": {"n": 4000}}
    assert not any(c.passed for c in check_xor(frame("xor", "anova", {s: xor_shares(0.99) for s in range(5)},
                                                     0.99), small))


INF_TRUTH = {"ground_truth": {"relevant_blocks": ["m1"]}, "params": {"n": 4000}}


def inflation_shares(m1, inter):
    k = (1 - m1 - inter)
    return {"m1": m1, "m2": k / 2, "m3": k / 2, "m1*m2": inter / 4, "m1*m3": inter / 4, "m2*m3": inter / 4,
            "m1*m2*m3": inter / 4}


def test_inflation_checks():
    none = frame("inflation", "none", {s: inflation_shares(0.6, 0.3) for s in range(3)}, 0.90, norm="none")
    good = frame("inflation", "anova", {s: inflation_shares(0.97, 0.02) for s in range(3)}, 0.895)
    checks = {c.name: c for c in check_inflation(pd.concat([none, good]), INF_TRUTH)}
    assert checks["none_inflates"].passed and checks["none_inflates"].values["mean"] == pytest.approx(0.3)
    assert checks["anova_clean"].passed
    assert checks["accuracy"].passed  # 0.895 >= 0.90 - 0.01
    worse = frame("inflation", "anova", {s: inflation_shares(0.97, 0.02) for s in range(3)}, 0.85)
    assert not {c.name: c for c in check_inflation(pd.concat([none, worse]), INF_TRUTH)}["accuracy"].passed
    leaky = frame("inflation", "anova", {0: inflation_shares(0.97, 0.02), 1: inflation_shares(0.8, 0.24)}, 0.9)
    assert not {c.name: c for c in check_inflation(pd.concat([none, leaky]), INF_TRUTH)}["anova_clean"].passed
    weak = frame("inflation", "none", {s: inflation_shares(0.9, 0.1) for s in range(3)}, 0.9, norm="none")
    assert not {c.name: c for c in check_inflation(pd.concat([weak, good]), INF_TRUTH)}["none_inflates"].passed


NU_TRUTH = {"ground_truth": {"modalities": ["a", "b"], "relevant_blocks": ["a"], "irrelevant_modalities": ["b"]},
            "params": {"n": 6000}}


def nuisance_frame(variant, seeds, b=0.001, ab=0.005, shap_b=0.002, corr=0.03, beta_b=0.3, label_ab=0.001):
    """A hand-made long frame for the nuisance check: per seed, blocks a, b, a*b."""
    rows = []
    for s in seeds:
        for blk, c, sh, r, bs, ls in (("a", 1 - b - ab, 1 - shap_b, 0.97, 0.4, 1 - label_ab),
                                      ("b", b, shap_b, 0.0, beta_b, 0.0),
                                      ("a*b", ab, float("nan"), corr, 0.6 - beta_b, label_ab)):
            rows.append({"experiment": "nuisance", "variant": variant, "seed": s, "block": blk, "share": bs,
                         "beta": bs, "contribution_share": c, "shapley_share": sh, "contribution_label_corr": r,
                         "label_share": ls, "test_acc": float("nan")})
    return pd.DataFrame(rows)


def test_nuisance_check_thresholds_per_p():
    good = pd.concat([nuisance_frame(f"anova-p{p}", range(5)) for p in (1, 2, 8)]
                     + [nuisance_frame(f"iterbn-p{p}", range(5), ab=0.05, corr=0.8, label_ab=0.12)
                        for p in (1, 2, 8)])
    checks = dna.check_nuisance(good, NU_TRUTH)
    assert [c.name for c in checks] == ["anova_p1", "anova_p2", "anova_p8"] and all(c.passed for c in checks)
    # iterbn is the comparison: checked with the same thresholds it fails (its a*b re-expresses a)
    assert not any(c.passed for c in dna.check_nuisance(good, NU_TRUTH, norm="iterbn"))
    # β share is reported, never checked: a squeezed β share of b (0.3) passes
    assert checks[2].values["beta_share_b"][0] == 0.3
    # each condition alone fails the check, on a single seed
    for kw in ({"b": 0.021}, {"ab": 0.03}, {"shap_b": 0.025}, {"label_ab": -0.03}):
        bad = pd.concat([nuisance_frame("anova-p2", range(4)), nuisance_frame("anova-p2", [4], **kw)])
        (c,) = dna.check_nuisance(bad, NU_TRUTH)
        assert not c.passed, kw
    # corr is reported, not checked: on a block that carries ~nothing it is noise
    noisy = pd.concat([nuisance_frame("anova-p2", range(4)), nuisance_frame("anova-p2", [4], corr=-0.2)])
    (c,) = dna.check_nuisance(noisy, NU_TRUTH)
    assert c.passed and c.values["corr_a*b_label"][4] == -0.2
    # a run without attribution.json (nan) never passes
    missing = nuisance_frame("anova-p1", range(2), b=float("nan"))
    assert not dna.check_nuisance(missing, NU_TRUTH)[0].passed


def test_parse_arguments():
    assert parse_experiments("all") == ["additive", "xor", "inflation", "nuisance"]
    assert parse_experiments("inflation,additive") == ["additive", "inflation"]
    assert parse_seeds("3", False) == [0, 1, 2]
    assert parse_seeds("4,1", False) == [4, 1]
    assert parse_seeds(None, False) == [0, 1, 2, 3, 4] and parse_seeds(None, True) == [0, 1]
    for bad in ("x", "0", "1,1", "-1,2"):
        with pytest.raises(MWeightError):
            parse_seeds(bad, False)
    with pytest.raises(MWeightError):
        parse_experiments("parity")


# --------------------------------------------------------------------------- end to end (CLI, as a user)


def repro(args, cwd):
    return subprocess.run([sys.executable, "-m", "mweight", "repro", "dna", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


TINY = ["--experiment", "inflation", "--seeds", "1", "--quick", "--jobs", "1", "--quiet",
        "--set", "train.epochs=2", "--set", "model.hidden=8"]


def test_cli_table_figures_reuse_and_same_numbers(tmp_path):
    out = tmp_path / "out"
    r = repro([*TINY, "--out", str(out)], tmp_path)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    lines = r.stdout.splitlines()
    verdicts = {ln.split()[1]: ln.split()[0] for ln in lines if ln[:4] in ("PASS", "FAIL")}
    assert set(verdicts) == {"inflation/none_inflates", "inflation/anova_clean", "inflation/accuracy",
                             "inflation/determinism"}
    assert verdicts["inflation/determinism"] == "PASS"
    assert (r.returncode == 0) == all(v == "PASS" for v in verdicts.values())
    assert "[2/2] inflation/" in r.stderr  # progress: one line per finished run

    res = pd.read_csv(out / "results.csv")
    blocks = ["m1", "m2", "m3", "m1*m2", "m1*m3", "m2*m3", "m1*m2*m3"]
    assert len(res) == 2 * len(blocks) and set(res.variant) == {"none", "anova"}
    for v, g in res.groupby("variant"):
        assert list(g.block) == blocks
        assert g.share.sum() == pytest.approx(1.0, abs=1e-4)  # shares of one run sum to 1
        run = json.loads((out / "runs" / "inflation" / v / "seed_0" / "relevance.json").read_text())
        assert np.allclose(g.set_index("block").share[blocks], [run["share"][b] for b in blocks], atol=1e-6)
    assert dict(zip(res[res.variant == "anova"].block, res[res.variant == "anova"].expected_share))["m1"] == 1.0
    md = (out / "results.md").read_text()
    assert "### inflation — none" in md and "### inflation — anova" in md and "| m1*m2*m3 |" in md
    assert "**test accuracy**" in md and "figures/inflation.png" in md
    for fig in ("beta_vs_truth", "trajectories", "inflation"):
        data = (out / "figures" / f"{fig}.png").read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000
    checks = json.loads((out / "checks.json").read_text())
    assert checks["passed"] == (r.returncode == 0)

    # the same call again reuses the finished runs and rebuilds the same table; retraining from
    # scratch (fresh) with the same seed gives the same numbers (in-process: no second start-up)
    numbers = [c for c in res.columns if c != "seconds"]
    kwargs = dict(experiments=["inflation"], seeds=[0], quick=True, jobs=1, progress=False,
                  extra_overrides=["train.epochs=2", "model.hidden=8"], log=lambda s: None)
    threads = torch.get_num_threads()
    try:
        dna.run_dna(out, **kwargs)
        assert json.loads((out / "repro.json").read_text())["reused"] == 2
        pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv")[numbers], res[numbers])
        dna.run_dna(out, fresh=True, **kwargs)
        assert json.loads((out / "repro.json").read_text())["trained"] == 2
        pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv")[numbers], res[numbers], check_exact=True)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("args, expected", [
    (["--experiment", "parity"], "--experiment 'parity': expected additive, xor, inflation, nuisance or all"),
    (["--seeds", "0"], "--seeds '0': expected a positive count"),
    (["--jobs", "0"], "--jobs 0: expected an integer >= 1"),
    (["--set", "model.norm=batch"], "model.norm = 'batch'; expected none | bn | vbn | iterbn | anova"),
])
def test_cli_bad_input_is_one_line_error(tmp_path, args, expected):
    r = repro(["--experiment", "inflation", "--quick", "--out", str(tmp_path / "o"), *args], tmp_path)
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert err[-1].startswith("mweight: error: ") and expected in err[-1], r.stderr[-1500:]
    assert "Traceback" not in r.stderr


# --------------------------------------------------------------------------- a small version of the science


def test_small_additive_reproduction_recovers_ranking_and_irrelevant(tmp_path, monkeypatch):
    """Additive design at test scale (3 modalities, p = (0.8, 0.4, 0), N = 1500, 8 epochs, 2 seeds)
    through the reproduction's own runner and checks (thresholds unchanged: ranking on
    ceil(0.8 n) seeds, p = 0 share <= 0.02 on every seed).

    A deterministic regression test with fixed seeds, not a statistical claim: at this scale
    seed 2 leaks 0.069 to the irrelevant modality (measured), which is why the full
    reproduction uses N = 8000 and 5 seeds."""
    small = dataclasses.replace(EXPERIMENTS["additive"], data={"p": (0.8, 0.4, 0.0), "n": 1500},
                                quick_overrides=())
    monkeypatch.setitem(dna.EXPERIMENTS, "additive", small)
    threads = torch.get_num_threads()
    try:
        checks, report = dna.run_dna(
            tmp_path / "small", ["additive"], [0, 1], quick=True, jobs=1, progress=False, log=lambda s: None,
            extra_overrides=["train.epochs=8", "model.hidden=16", "model.lambda=0.05", "train.lr=0.003",
                             # pinned (the preset's batch 64 / patience 10 are tuned for N = 8000)
                             "train.batch_size=32", "train.patience=6",
                             # selection on validation cross-entropy (the new default; pinned here)
                             "train.select=ce"])
    finally:
        torch.set_num_threads(threads)
    by_name = {c.name: c for c in checks}
    assert by_name["ranking"].passed, by_name["ranking"].values
    assert by_name["irrelevant"].passed, by_name["irrelevant"].values
    assert by_name["determinism"].passed, by_name["determinism"].values
    res = pd.read_csv(tmp_path / "small" / "results.csv")
    mean = res.groupby("block").share.mean()
    assert mean["m1"] > mean["m2"] > mean["m3"]
    assert "| m3 | p = 0 (ref. share 0.000) |" in report.read_text()


def _fusion_has_anova() -> bool:
    from mweight.fusion import BlockFusion

    try:
        BlockFusion({"a": 4, "b": 4}, [("a", "b")], rank=2, norm="anova")
    except ValueError:
        return False
    return True


@pytest.mark.skipif(not _fusion_has_anova(), reason="model.norm anova not implemented in this checkout (issue 10)")
def test_small_nuisance_reproduction_anova_versus_iterbn(tmp_path, monkeypatch):
    """The correlated-nuisance design at test scale (N = 2000, p = 8, 8 epochs, seed 0), through the
    reproduction's runner: with IterBN the a*b block re-expresses a's signal (its contribution
    correlates with the label; measured ~0.8 at every scale tried), with anova it gets (almost) no
    share of the prediction. The shares are recomputed here from predictions.csv (block columns),
    independently of attribution.json.

    A deterministic regression test, not the claim: the bound is 0.05, not the reproduction's 0.02
    (measured before the gradient and batch-statistics rules of the anova blocks: a*b 0.015, b 0.008).
    With narrower encoders (model.hidden=16, 8 epochs) anova's a*b took 0.51-0.72 of the contribution
    before those rules and takes <= 0.002 with them (paper_repro/README.md)."""
    small = dataclasses.replace(
        EXPERIMENTS["nuisance"], data={"n": 2000}, quick_overrides=(),
        variants=tuple(v for v in EXPERIMENTS["nuisance"].variants if v.name in ("anova-p8", "iterbn-p8")))
    monkeypatch.setitem(dna.EXPERIMENTS, "nuisance", small)
    threads = torch.get_num_threads()
    try:
        checks, report = dna.run_dna(tmp_path / "nu", ["nuisance"], [0], quick=True, jobs=1, progress=False,
                                     log=lambda s: None, extra_overrides=["train.epochs=8"])
    finally:
        torch.set_num_threads(threads)
    names = {c.name for c in checks}
    assert names == {"anova_p8", "determinism"} and {c.name: c for c in checks}["determinism"].passed

    def shares(variant):
        pred = pd.read_csv(tmp_path / "nu" / "runs" / "nuisance" / variant / "seed_0" / "predictions.csv")
        test = pred[pred.split == "test"]
        var = {b: test[b].var() for b in ("a", "b", "a*b")}
        return ({b: v / sum(var.values()) for b, v in var.items()},
                float(np.corrcoef(test["a*b"], test.label)[0, 1]))

    (anova, _), (iterbn, corr_iterbn) = shares("anova-p8"), shares("iterbn-p8")
    assert corr_iterbn > 0.5 and iterbn["a*b"] > 0.01, (iterbn, corr_iterbn)
    assert anova["b"] <= 0.02 and anova["a*b"] <= 0.05 and anova["a*b"] < iterbn["a*b"] / 3, (anova, iterbn)
    res = pd.read_csv(tmp_path / "nu" / "results.csv")
    got = res[(res.variant == "iterbn-p8") & (res.block == "a*b")].contribution_label_corr.iloc[0]
    assert got == pytest.approx(corr_iterbn, abs=1e-5)  # results.csv keeps 6 significant digits
    # the label share, recomputed from predictions.csv: cov(g_ab, y) / cov(sum of blocks, y)
    pred = pd.read_csv(tmp_path / "nu" / "runs" / "nuisance" / "iterbn-p8" / "seed_0" / "predictions.csv")
    test = pred[pred.split == "test"]
    cov = {b: np.cov(test[b], test.label)[0, 1] for b in ("a", "b", "a*b")}
    want = cov["a*b"] / sum(cov.values())
    got = res[(res.variant == "iterbn-p8") & (res.block == "a*b")].label_share.iloc[0]
    assert got == pytest.approx(want, rel=1e-4) and want > 0.02  # IterBN's a*b carries a's signal
    md = report.read_text()
    assert "### nuisance — all variants side by side" in md and "| anova | 8 |" in md and "| iterbn | 8 |" in md
    assert "**test MAE** | oracle" in md
    png = (tmp_path / "nu" / "figures" / "nuisance.png").read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 10_000
