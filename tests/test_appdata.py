"""mweight.appdata (the app's data layer, no Streamlit): discovery, groups, tables, transcripts, faithfulness."""
import json
import shutil

import numpy as np
import pytest

from mweight import appdata as A
from mweight.analysis import ablate_run, open_run
from mweight.errors import MWeightError
from mweight.runs import load_run


@pytest.fixture(scope="module")
def runs_folder(tiny_study, tmp_path_factory):
    """A runs folder: the seed group, one seed alone, a broken folder, a seed group of broken runs."""
    src, data, _ = tiny_study
    root = tmp_path_factory.mktemp("app_runs")
    shutil.copytree(src / "out", root / "study")
    shutil.copytree(src / "out" / "seed_3", root / "nested" / "single")
    (root / "broken").mkdir()
    (root / "broken" / "metrics.json").write_text("{}\n")
    (root / "badseeds" / "seed_0").mkdir(parents=True)
    (root / "badseeds" / "seed_0" / "config.yaml").write_text("{}\n")
    (root / "notes").mkdir()  # no run files at all: not listed
    shutil.copy(data, root / "d.npz")
    return root


def test_discovery_kinds(runs_folder):
    entries = {e.rel: e for e in A.discover_runs(runs_folder)}
    assert set(entries) == {"study", "nested/single", "broken", "badseeds"}
    assert entries["study"].kind == "seeds" and entries["study"].seeds == (1, 3)
    assert entries["nested/single"].kind == "single"
    assert entries["broken"].kind == "broken" and "config.yaml: file not found" in entries["broken"].problem
    assert entries["badseeds"].kind == "broken"
    with pytest.raises(MWeightError, match="config.yaml: file not found"):
        A.load_group(runs_folder, entries["broken"])


def test_outside_paths_are_refused(runs_folder):
    for rel in ("../x", "/etc", "a/../../b"):
        with pytest.raises(MWeightError, match="not a folder inside the runs folder"):
            A.safe_join(runs_folder, rel)


def test_seed_group_tables_are_mean_and_population_std_over_seeds(runs_folder):
    entry = A.find_entry(A.discover_runs(runs_folder), "study")
    group = A.load_group(runs_folder, entry)
    assert group.seeds == [1, 3] and group.seed_label == "seeds 1, 3" and group.task == "regression"
    runs = [load_run(runs_folder / "study" / f"seed_{s}") for s in (1, 3)]
    table = A.share_table(group).set_index("block")
    for b in group.blocks:
        shares = [r.relevance["share"][b] for r in runs]
        assert table.loc[b, "share_mean"] == pytest.approx(np.mean(shares))
        assert table.loc[b, "share_std"] == pytest.approx(np.std(shares))
        assert table.loc[b, "n_seeds"] == 2
    assert table["share_mean"].sum() == pytest.approx(1.0)


def test_transcripts_from_the_dataset_then_a_transcripts_csv(runs_folder, tmp_path):
    entry = A.find_entry(A.discover_runs(runs_folder), "nested/single")
    group = A.load_group(runs_folder, entry)
    ids = list(np.load(runs_folder / "d.npz")["id"])
    text = A.load_transcripts(runs_folder, group)  # the dataset's transcript column
    assert text[ids[0]] == f"words of segment {ids[0]}" and len(text) == len(ids)
    csv = runs_folder / "nested" / "single" / "transcripts.csv"
    try:
        csv.write_text(f"id,transcript\n{ids[0]},said otherwise\n")
        assert A.load_transcripts(runs_folder, group)[ids[0]] == "said otherwise"  # the file wins
        csv.write_text(f"{ids[0]}\n")  # unreadable: skipped, the dataset's text stays
        assert A.load_transcripts(runs_folder, group)[ids[0]] == f"words of segment {ids[0]}"
    finally:
        csv.unlink()


def test_faithfulness_blocks_exact_and_modalities_from_ablate_run(runs_folder):
    entry = A.find_entry(A.discover_runs(runs_folder), "nested/single")
    group = A.load_group(runs_folder, entry)
    res = A.faithfulness(runs_folder, group, repeats=2, rng_seed=0)
    assert list(res["blocks"]["block"]) == group.blocks
    assert res["blocks"]["importance_share"].sum() == pytest.approx(1.0)
    lr = open_run(runs_folder / "nested" / "single")
    direct = ablate_run(lr, split="test", repeats=2, seed=0, metrics=[res["metric"]])
    mods = res["modalities"].set_index("modality")
    for m, r in direct["modalities"].items():
        assert mods.loc[m, "degradation"] == pytest.approx(r["permutation"][res["metric"]])
        assert mods.loc[m, "ablation_degradation"] == pytest.approx(r["ablation"][res["metric"]])
    assert "mweight.analysis.ablate_run" in res["source"]
