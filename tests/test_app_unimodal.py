"""The app's Overview: Shapley values against the human unimodal labels (issue 13), on runs
made with the real CLI on a CH-SIMS-like dataset (skewed, correlated latent sentiments; every
label on SIMS' grid of fifths), next to the same dataset without ``label_<m>`` columns."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from streamlit.testing.v1 import AppTest  # noqa: E402

from conftest import run_cli  # noqa: E402
from mweight import appdata as A  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "apps" / "mweight_app.py"
MODS = ("text", "audio", "video")
SEEDS = (1, 2)
FAST = ["--set", "model.hidden=8", "--set", "train.epochs=4", "--set", "train.threads=1", "--quiet"]


def _sims_like(n: int, seed: int):
    """Each modality has its own latent sentiment (gamma-skewed common part plus heavy-tailed
    t noise, so the modalities correlate); annotators' unimodal labels see one modality, the
    multimodal label mixes all three; every label is rounded to fifths in [-1, 1]."""
    rng = np.random.default_rng(seed)
    common = rng.gamma(2.0, size=n) - 2.0
    s = {m: 0.5 * common + rng.standard_t(4, size=n) * w for m, w in zip(MODS, (1.0, 0.6, 0.8))}
    grid = lambda x: np.clip(np.round(np.tanh(x) * 5) / 5, -1, 1)  # noqa: E731
    uni = {m: grid(v + 0.2 * rng.normal(size=n)) for m, v in s.items()}
    multi = grid(0.6 * s["text"] + 0.2 * s["audio"] + 0.2 * s["video"])
    return s, uni, multi


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("unimodal")
    n = 600
    s, uni, multi = _sims_like(n, seed=5)
    rng = np.random.default_rng(6)
    noise = {"text": 0.3, "audio": 0.8, "video": 0.5}
    cols = {m: np.stack([s[m] + noise[m] * rng.normal(size=n) for _ in range(3)], 1).astype(np.float32) for m in MODS}
    cols.update(label=multi.astype(np.float32), split=np.array(["train"] * 400 + ["valid"] * 100 + ["test"] * 100),
                id=np.array([f"v{i // 3}_{i}" for i in range(n)]))
    (base / "data").mkdir()
    with_labels, without = base / "data" / "sims_like.npz", base / "data" / "no_unimodal.npz"
    human = {f"label_{m}": v for m, v in uni.items()}
    human["label_audio"] = human["label_audio"].copy()
    human["label_audio"][500:520] = np.nan  # unlabelled test segments are left out of audio's n
    np.savez(with_labels, **cols, **human)
    np.savez(without, **cols)
    root = base / "runs"
    run_cli("train", "--data", with_labels, "--seeds", ",".join(map(str, SEEDS)), *FAST, "--out", root / "sims",
            check=True, timeout=600)
    run_cli("train", "--data", without, *FAST, "--out", root / "plain", check=True, timeout=600)
    return root


def app(root: Path, run: str) -> AppTest:
    old = os.environ.get(A.ROOT_ENV)
    os.environ[A.ROOT_ENV] = str(root)
    try:
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.query_params["page"] = "overview"
        at.query_params["run"] = run
        at.run()
    finally:
        if old is None:
            os.environ.pop(A.ROOT_ENV, None)
        else:
            os.environ[A.ROOT_ENV] = old
    assert not at.exception, [e.value for e in at.exception]
    return at


def _unimodal_frame(at: AppTest) -> pd.DataFrame | None:
    return next((d.value for d in at.dataframe if A.UNIMODAL_COLUMNS[2] in d.value.columns), None)


def test_overview_shows_shapley_against_human_labels_as_evaluate_reports_them(runs, tmp_path):
    at = app(runs, "sims")
    assert "Against the human unimodal labels" in [h.value for h in at.subheader]
    assert any("closest thing to a ground truth for relevance" in c.value for c in at.caption)
    shown = _unimodal_frame(at)
    assert shown is not None and list(shown.columns) == A.UNIMODAL_COLUMNS
    assert len(shown) == len(SEEDS) * len(MODS) and set(shown["split"]) == {"test"}
    assert any(b.label == "Download CSV" for b in at.get("download_button"))
    for seed in SEEDS:
        run = runs / "sims" / f"seed_{seed}"
        # the reference: `mweight evaluate` recomputes the Shapley values with the model
        run_cli("evaluate", run, "--json", tmp_path / f"ev{seed}.json", check=True, timeout=300)
        ref = json.loads((tmp_path / f"ev{seed}.json").read_text())["runs"][0]["attribution"]["unimodal_labels"]
        pred = pd.read_csv(run / "predictions.csv", dtype={"id": str})
        test = pred[pred["split"] == "test"]
        data = np.load(runs.parent / "data" / "sims_like.npz")
        by_id = dict(zip(data["id"], range(len(data["id"]))))
        rows = test["id"].map(by_id).to_numpy()
        for m in MODS:
            row = shown[(shown["seed"] == str(seed)) & (shown["modality"] == m)].iloc[0]
            y_m = data[f"label_{m}"][rows]
            ok = np.isfinite(y_m)
            assert row["n"] == ok.sum() == ref[m]["n"] == (80 if m == "audio" else 100)
            phi = test[f"shapley_{m}"].to_numpy()[ok]
            r_h = np.corrcoef(phi, y_m[ok])[0, 1]
            r_y = np.corrcoef(phi, test["label"].to_numpy()[ok])[0, 1]
            np.testing.assert_allclose([row[A.UNIMODAL_COLUMNS[2]], row[A.UNIMODAL_COLUMNS[3]],
                                        row[A.UNIMODAL_COLUMNS[4]]], [r_h, r_y, r_h - r_y], atol=1e-9)
            np.testing.assert_allclose([row[A.UNIMODAL_COLUMNS[2]], row[A.UNIMODAL_COLUMNS[3]]],
                                       [ref[m]["pearson_unimodal"], ref[m]["pearson_multimodal"]], atol=1e-5)
            lo, hi = row[A.UNIMODAL_COLUMNS[5]], row[A.UNIMODAL_COLUMNS[6]]
            np.testing.assert_allclose([lo, hi], ref[m]["pearson_difference_ci"], atol=1e-4)
            assert lo < r_h - r_y < hi


def test_overview_has_no_unimodal_table_without_human_labels(runs):
    at = app(runs, "plain")
    assert "Against the human unimodal labels" not in [h.value for h in at.subheader]
    assert _unimodal_frame(at) is None
    assert A.unimodal_table(runs, A.load_group(runs, A.find_entry(A.discover_runs(runs), "plain"))).empty
