"""`mweight synth dna` end to end, as a user runs it (a subprocess)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mweight.synthetic import make_additive, make_inflation, make_xor

REPO = Path(__file__).resolve().parents[1]


def run(*args, cwd=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "mweight", "synth", *args],
        capture_output=True, text=True, env=env, cwd=cwd or REPO, timeout=60,
    )


def load(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.keys()}


def assert_matches(arrays, ds):
    assert [k for k in arrays if k not in ("label", "split", "id", "meta_json")] == ds.modalities
    for m in ds.modalities:
        np.testing.assert_array_equal(arrays[m], ds.arrays[m])
    np.testing.assert_array_equal(arrays["label"], ds.label)
    np.testing.assert_array_equal(arrays["split"], ds.split)


def test_additive_cli_equals_library_and_writes_truth(tmp_path):
    out = tmp_path / "data" / "add.npz"
    r = run("dna", "--design", "additive", "--p", "0.5,0.35,0,0", "--n", "600", "--seed", "7", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "m1, m2, m3, m4" in r.stdout and "add.truth.json" in r.stdout
    arrays = load(out)
    assert_matches(arrays, make_additive(p=(0.5, 0.35, 0.0, 0.0), n=600, seed=7))
    truth = json.loads((tmp_path / "data" / "add.truth.json").read_text())
    assert truth == json.loads(str(arrays["meta_json"]))
    assert truth["ground_truth"]["relevant_blocks"] == ["m1", "m2"]
    assert truth["params"]["seed"] == 7 and truth["counts"] == {"train": 360, "valid": 120, "test": 120}

    # the same command again gives the same data
    r2 = run("dna", "--design", "additive", "--p", "0.5,0.35,0,0", "--n", "600", "--seed", "7",
             "--out", str(tmp_path / "again.npz"))
    assert r2.returncode == 0, r2.stderr
    again = load(tmp_path / "again.npz")
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], again[k])


def test_xor_parity_and_inflation_options(tmp_path):
    r = run("dna", "--design", "parity", "--n", "300", "--seed", "1", "--modalities", "4",
            "--split", "0.5,0.25,0.25", "--out", str(tmp_path / "par.npz"))
    assert r.returncode == 0, r.stderr
    assert_matches(load(tmp_path / "par.npz"),
                   make_xor(n=300, order=3, n_modalities=4, seed=1, split_fractions=(0.5, 0.25, 0.25)))

    r = run("dna", "--design", "inflation", "--p", "0.9", "--n", "300", "--no-constant",
            "--motifs", "GATTACA,CCGGTTA", "--out", str(tmp_path / "inf.npz"))
    assert r.returncode == 0, r.stderr
    arrays = load(tmp_path / "inf.npz")
    assert_matches(arrays, make_inflation(p=0.9, n=300, constant=False, seed=0, motifs=("GATTACA", "CCGGTTA")))
    meta = json.loads(str(arrays["meta_json"]))
    assert meta["ground_truth"]["roles"] == {"m1": "relevant", "m2": "irrelevant"}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--p", "0.5,1.5"], "p[1]"),
        (["--design", "xor", "--p", "0.3"], "--p"),
        (["--design", "inflation", "--p", "0.5,0.5"], "--p"),
        (["--split", "0.9,0.2,0.2"], "split_fractions"),
        (["--motifs", "GATTACA"], "--motifs"),
        (["--p", "a,b"], "--p"),
    ],
)
def test_user_errors_are_one_line(tmp_path, args, fragment):
    out = tmp_path / "x.npz"
    r = run("dna", "--n", "100", "--out", str(out), *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mweight: error:") and fragment in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_out_must_be_npz_and_help(tmp_path):
    r = run("dna", "--out", str(tmp_path / "x.csv"))
    assert r.returncode == 2 and ".npz" in r.stderr
    h = run("dna", "--help")
    assert h.returncode == 0
    for word in ("additive", "xor", "parity", "inflation", "--p", "--seed", "--out", "truth.json"):
        assert word in h.stdout


def test_tabular_nuisance_cli_equals_library(tmp_path):
    from mweight.synthetic import make_nuisance

    out = tmp_path / "nu.npz"
    r = run("tabular", "--design", "nuisance", "--n", "800", "--seed", "2", "--nuisance", "2",
            "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "a 8 features, b 8 features" in r.stdout and "nu.truth.json" in r.stdout
    arrays = load(out)
    assert_matches(arrays, make_nuisance(n=800, seed=2, nuisance=2.0))
    assert arrays["label"].dtype == np.float32 and arrays["a"].dtype == np.float32
    meta = json.loads(str(arrays["meta_json"]))
    assert meta["ground_truth"]["irrelevant_modalities"] == ["b"] and meta["params"]["nuisance"] == 2.0
    bad = run("tabular", "--dim-a", "7", "--out", str(tmp_path / "bad.npz"))
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "mweight: error: dim_a: expected an even number (ReLU pairs), got 7"]
    assert not (tmp_path / "bad.npz").exists()
