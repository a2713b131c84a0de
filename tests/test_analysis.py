"""mweight.analysis: reading files for a trained model (labelled or not), run folders, rank agreement."""
import numpy as np
import pytest

from mweight.analysis import UNLABELLED, load_inputs, open_run, predict, rank_agreement, run_dirs
from mweight.errors import MWeightError


@pytest.fixture(scope="module")
def loaded(tiny_study):
    root, data, _ = tiny_study
    return root, dict(np.load(data)), open_run(root / "out" / "seed_1")


def _write(path, arrays):
    np.savez(path, **arrays)
    return path


def test_run_dirs_single_seed_group_and_not_a_run(tiny_study, tmp_path):
    root, _, _ = tiny_study
    assert [d.name for d in run_dirs(root / "out")] == ["seed_1", "seed_3"]
    assert run_dirs(root / "out" / "seed_3") == [root / "out" / "seed_3"]
    with pytest.raises(MWeightError, match="not a mweight run directory"):
        run_dirs(tmp_path)
    with pytest.raises(MWeightError, match="seed_1, seed_3"):  # open_run names the sub-runs to pick from
        open_run(root / "out")


def test_unlabelled_file_predicts_like_the_labelled_one(loaded, tmp_path):
    root, a, lr = loaded
    mods = {m: a[m] for m in lr.modalities}
    bare = load_inputs(_write(tmp_path / "bare.npz", {"id": a["id"], **mods}), lr)
    assert (bare.split == UNLABELLED).all() and np.isnan(bare.label).all()
    labelled = load_inputs(_write(tmp_path / "nosplit.npz", {"id": a["id"], "label": a["label"], **mods}), lr)
    assert (labelled.split == "all").all() and np.array_equal(labelled.label, a["label"])
    full = load_inputs(root / "d.npz", lr)  # label + split: read by data.load_dataset
    p_bare, p_full = predict(lr, bare), predict(lr, full)
    assert np.array_equal(p_bare["prediction"].to_numpy(), p_full["prediction"].to_numpy())


def test_unlabelled_file_follows_the_training_loaders_rules(loaded, tmp_path):
    _, a, lr = loaded
    mods = {m: a[m] for m in lr.modalities}
    # flags are features (float32), as data.load_dataset reads them for training
    flags = {**mods, "audio": a["audio"] > 1.0}
    ds = load_inputs(_write(tmp_path / "flags.npz", {"id": a["id"], **flags}), lr)
    assert ds.modalities["audio"].dtype == np.float32 and set(np.unique(ds.modalities["audio"])) == {0.0, 1.0}
    # a repeated id is refused (as in load_dataset), naming it
    ids = a["id"].copy()
    ids[5] = ids[0]
    with pytest.raises(MWeightError, match=rf"field 'id' repeats '{ids[0]}'"):
        load_inputs(_write(tmp_path / "dup.npz", {"id": ids, **mods}), lr)
    # a missing modality names itself and what the file has
    with pytest.raises(MWeightError, match=r"missing modality 'video'.*the file has text, audio"):
        load_inputs(_write(tmp_path / "two.npz", {"id": a["id"], "text": a["text"], "audio": a["audio"]}), lr)
    # rows that do not agree
    with pytest.raises(MWeightError, match="field 'id' has"):
        load_inputs(_write(tmp_path / "rows.npz", {"id": a["id"][:-1], **mods}), lr)


def test_rank_agreement_leaves_out_missing_pairs():
    assert rank_agreement([0.7, float("nan"), 0.2, 0.1], [0.5, 0.3, 0.1, 0.0]) == {"spearman": 1.0, "kendall": 1.0,
                                                                                   "n": 3}
    r = rank_agreement([3, 2, 1, 0], [0, 1, 2, 3])
    assert r["spearman"] == pytest.approx(-1.0) and r["kendall"] == pytest.approx(-1.0)
    assert rank_agreement([1.0, float("nan")], [1.0, 2.0])["spearman"] is None  # one pair: undefined
