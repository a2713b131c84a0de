"""Evidence next to every β (issue 11): trust verdicts in the CLI and the files."""
import json
import subprocess
import sys

import numpy as np
import pytest

from mweight.trust import better_than_trivial, data_warnings, run_trust, study_trust


def _write(path, label_fn, n=500, seed=0, extra=None):
    rng = np.random.default_rng(seed)
    text = rng.gamma(2.0, size=(n, 5)).astype(np.float32)
    audio = (0.6 * text[:, 1:4] + rng.exponential(size=(n, 3))).astype(np.float32)
    label = label_fn(rng, text).astype(np.float32)
    split = np.array(["train"] * (n * 6 // 10) + ["valid"] * (n * 2 // 10) + ["test"] * (n - n * 8 // 10))
    np.savez(path, text=text, audio=audio, label=label, split=split,
             id=np.array([f"v{i // 10}_{i}" for i in range(n)]), **(extra or {}))
    return path


def _informative(rng, text):
    return np.tanh(text[:, 0] - 2) * 2 + 0.2 * rng.normal(size=len(text))


def _random(rng, text):
    return rng.normal(size=len(text))


def _mw(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "mweight", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


TRAIN = ["--quiet", "--set", "train.epochs=12", "--set", "model.hidden=8", "--set", "model.interactions=all"]


def test_better_than_trivial_bootstrap():
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    good = better_than_trivial("regression", y + 0.1 * rng.normal(size=400), y, y)
    assert good["better"] and good["improvement_ci"][0] > 0
    chance = better_than_trivial("regression", rng.normal(size=400) * 0.01, y, y)
    assert not chance["better"]
    cls = better_than_trivial("classification", np.ones(300, int), np.r_[np.ones(200), np.zeros(100)].astype(int),
                              np.r_[np.ones(50), np.zeros(10)].astype(int))
    assert cls["trivial_prediction"] == 1 and not cls["better"]


def test_run_trust_rules():
    split = np.array(["train"] * 100 + ["valid"] * 100 + ["test"] * 100)
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    ok = run_trust("regression", split, y + 0.05 * rng.normal(size=300), y)
    assert ok["verdict"] == "ok"
    assert run_trust("regression", split, y + 0.05 * rng.normal(size=300), y, ["tiny"])["verdict"] == "weak"
    none = run_trust("regression", split, rng.normal(size=300) * 0.5, y)  # unrelated to y
    assert none["verdict"] == "no-evidence" and "carry no information" in none["reasons"][0]


def test_leaky_split_and_changed_file_warnings():
    cols = ["bclstm_split", "bclstm_protocol", "split"]
    assert data_warnings({}, cols, "split", 1000)
    assert not data_warnings({}, cols, "bclstm_protocol", 1000)
    meta = {"leaky_split_keys": {"split": "features trained on labels"}}
    assert "leaks labels" in data_warnings(meta, ["split"], "split", 1000)[0]
    w = data_warnings({}, ["split"], "split", 1000, "a" * 64, "b" * 64, "d.npz")
    assert "changed since training" in w[0]
    assert "tiny training set" in data_warnings({}, ["split"], "split", 20)[0]


def test_study_trust_stability_and_ranking_agreement():
    def att(t, a, verdict="ok"):
        return {"blocks": {"text": {"beta_share": t, "contribution_share": t}, "audio": {"beta_share": a,
                                                                                         "contribution_share": a}},
                "modalities": {"text": {"shapley_share": t}, "audio": {"shapley_share": a}},
                "trust": {"verdict": verdict, "warnings": []}}
    s = study_trust([att(0.9, 0.1), att(0.8, 0.2), att(0.85, 0.15)])
    assert s["verdict"] == "ok" and s["ranking_agreement"]["fraction_of_seeds"] == 1.0
    lo, hi = s["stability"]["modalities"]["text"]["shapley_share"]["ci95"]
    assert lo < 0.85 < hi
    s2 = study_trust([att(0.9, 0.1), att(0.2, 0.8), att(0.6, 0.4, "no-evidence")])
    assert s2["verdict"] == "weak"


def test_random_labels_give_no_evidence_and_no_bare_beta_line(tmp_path):
    data = _write(tmp_path / "rand.npz", _random)
    proc = _mw("train", "--data", data, "--out", tmp_path / "run", *TRAIN)
    assert proc.returncode == 0, proc.stderr
    assert "evidence: no-evidence" in proc.stderr
    assert "beta share" not in proc.stderr and "Shapley share" not in proc.stderr
    att = json.loads((tmp_path / "run" / "attribution.json").read_text())
    assert att["trust"]["verdict"] == "no-evidence"
    ev = _mw("evaluate", tmp_path / "run")
    assert ev.returncode == 0, ev.stderr
    assert "evidence: no-evidence" in ev.stdout and "Shapley share" not in ev.stdout


def test_informative_data_ok_and_changed_file_warns_in_evaluate_and_explain(tmp_path):
    data = _write(tmp_path / "good.npz", _informative)
    proc = _mw("train", "--data", data, "--out", tmp_path / "run", *TRAIN)
    assert proc.returncode == 0, proc.stderr
    assert "evidence: ok" in proc.stderr and "Shapley share (test)" in proc.stderr
    ev = _mw("evaluate", tmp_path / "run")
    assert "evidence: ok" in ev.stdout and "warning" not in ev.stderr
    arrays = dict(np.load(data))
    arrays["label"][-1] += 0.5  # one test label edited after training
    np.savez(data, **arrays)
    ev = _mw("evaluate", tmp_path / "run")
    assert ev.returncode == 0, ev.stderr
    assert "changed since training" in ev.stderr
    assert "evidence: weak" in ev.stdout
    ex = _mw("explain", tmp_path / "run", "--id", "v30_300")
    assert ex.returncode == 0, ex.stderr
    assert "changed since training" in ex.stderr


def test_leaky_split_warns_in_train(tmp_path):
    n = 500
    bcl = np.array(["train"] * 300 + ["test"] * 200)
    proto = np.array(["train"] * 300 + ["valid"] * 100 + ["test"] * 100)
    data = _write(tmp_path / "leaky.npz", _informative, n=n, extra={"bclstm_split": bcl, "bclstm_protocol": proto})
    proc = _mw("train", "--data", data, "--out", tmp_path / "run", *TRAIN)
    assert proc.returncode == 0, proc.stderr
    assert "warning: split 'split' leaks labels" in proc.stderr
    assert "evidence: weak" in proc.stderr
    proc = _mw("train", "--data", data, "--split-key", "bclstm_protocol", "--out", tmp_path / "run2", *TRAIN)
    assert "leaks labels" not in proc.stderr
    _ = pytest
