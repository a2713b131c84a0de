"""mweight.runs: the run directory object, seed groups, mean ± std, the result line, run checks."""
import copy
import math

import numpy as np
import pytest
import yaml

from mweight.errors import MWeightError
from mweight.runs import (CHECKPOINT_FILE, RUN_FILES, RunDir, check_run, load_run, mean_std, result_line, seed_dir,
                          seed_dirs, seed_of, sha256, summarize)


@pytest.fixture(scope="module")
def study(tiny_study):
    return tiny_study


def test_checkpoint_name_is_the_training_loops():
    from mweight.train import CHECKPOINT

    assert CHECKPOINT_FILE == CHECKPOINT


def test_seed_folder_names():
    assert seed_of("seed_0") == 0 and seed_of("seed_12") == 12
    for name in ("seed_", "seed_x", "seed_1a", "seeds_1", "run", "xseed_1"):
        assert seed_of(name) is None
    assert seed_dir("out", 7).as_posix() == "out/seed_7"


def test_seed_dirs_sorted_by_number_and_only_runs(study, tmp_path):
    root, _, _ = study
    dirs = seed_dirs(root / "out")
    assert [d.name for d in dirs] == ["seed_1", "seed_3"]
    # numeric order, not text order; a started folder without its files is not a run
    for s in (10, 2):
        d = seed_dir(tmp_path, s)
        d.mkdir()
        (d / "config.yaml").write_text("{}\n")
        (d / "relevance.json").write_text("{}\n")
    (tmp_path / "seed_5").mkdir()
    (tmp_path / "seed_junk").mkdir()
    assert [d.name for d in seed_dirs(tmp_path)] == ["seed_2", "seed_10"]
    assert [d.name for d in seed_dirs(tmp_path, started_only=False)] == ["seed_2", "seed_5", "seed_10"]


def test_run_dir_completeness_and_present_files(study, tmp_path):
    root, _, _ = study
    run = RunDir(root / "out" / "seed_1")
    assert run.complete and run.started and run.resumable and run.seed == 1
    assert run.present(checkpoint=False) == list(RUN_FILES)
    assert run.present() == [*RUN_FILES, CHECKPOINT_FILE]  # the last checkpoint is kept
    partial = RunDir(tmp_path / "p")
    partial.path.mkdir()
    assert partial.present() == [] and not partial.started and not partial.complete
    (partial.path / CHECKPOINT_FILE).write_bytes(b"x")
    assert partial.present() == [CHECKPOINT_FILE] and partial.resumable and not partial.complete
    (partial.path / "config.yaml").write_text("{}\n")
    (partial.path / "relevance.json").write_text("{}\n")
    assert partial.started and not partial.complete


def test_matches_config_dataset_and_code(study, tmp_path):
    root, data, cfg = study
    cfg1 = copy.deepcopy(cfg)
    cfg1.train.seed = 1
    run = RunDir(root / "out" / "seed_1")
    sha = sha256(data)
    assert run.differences(cfg1.to_dict(), sha) == []
    assert run.matches(cfg1.to_dict(), sha)
    other = copy.deepcopy(cfg1)
    other.model.p = 2.0
    assert run.differences(other.to_dict(), sha) == ["model.p 1.0 -> 2.0"]
    assert not run.matches(other.to_dict(), sha)
    assert run.matches(other.to_dict(), sha, ignore={"model.p"})
    assert not run.matches(cfg1.to_dict(), "0" * 64)  # another dataset file
    assert "dataset SHA-256" in run.differences(cfg1.to_dict(), "0" * 64)[0]
    # the reproduction also pins the code: a run without a recorded fingerprint is not reused
    assert not run.matches(cfg1.to_dict(), sha, code_sha="abc")
    # an incomplete copy never matches
    import shutil

    copy_dir = tmp_path / "copy"
    shutil.copytree(run.path, copy_dir)
    (copy_dir / "predictions.csv").unlink()
    assert not RunDir(copy_dir).matches(cfg1.to_dict(), sha)


def test_unreadable_config_is_one_line_error(tmp_path):
    (tmp_path / "config.yaml").write_text("model: {p: [unclosed\n")
    with pytest.raises(MWeightError, match=r"config.yaml: not a readable run config"):
        RunDir(tmp_path).saved_config()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": {"norm": "bogus"}}))
    with pytest.raises(MWeightError, match="model.norm"):
        RunDir(tmp_path).saved_config()


def test_mean_std_is_nan_aware_population_std():
    s = mean_std([1.0, 2.0, 4.0, float("nan")])
    assert s["mean"] == pytest.approx(7 / 3)
    assert s["std"] == pytest.approx(np.std([1.0, 2.0, 4.0]))  # ddof 0, the NaN left out
    assert len(s["values"]) == 4 and math.isnan(s["values"][3])
    empty = mean_std([])
    assert math.isnan(empty["mean"]) and math.isnan(empty["std"])
    assert math.isnan(mean_std([float("nan")])["mean"])
    assert mean_std(x for x in (3.0, 5.0))["std"] == 1.0  # any iterable


def test_summary_agrees_with_the_seed_runs(study):
    root, _, _ = study
    s = summarize(root / "out")
    runs = [load_run(d) for d in seed_dirs(root / "out")]
    assert s["seeds"] == [1, 3]
    mae = [r.metrics["test"]["mae"] for r in runs]
    assert s["metrics"]["test"]["mae"]["mean"] == pytest.approx(np.mean(mae))
    assert s["metrics"]["test"]["mae"]["std"] == pytest.approx(np.std(mae))
    for b in runs[0].blocks:
        assert s["share"][b]["values"] == [r.relevance["share"][b] for r in runs]


def test_result_line_lists_the_metrics_the_run_has():
    reg = {"test": {"mae": 0.81234, "corr": 0.5, "acc7": 0.3, "loss": 9.0}}
    assert result_line(reg, 4) == "best epoch 4; test mae=0.8123, corr=0.5000, acc7=0.3000"
    cls = {"test": {"acc": 0.9, "f1": 0.8, "ce": 0.3}, "valid": {"acc": 0.7}}
    assert result_line(cls, 2, digits=3) == "best epoch 2; test acc=0.900, f1=0.800"
    assert result_line(cls, 2, split="valid") == "best epoch 2; valid acc=0.7000"


def test_check_run_refuses_what_readers_cannot_show(study, tmp_path):
    root, _, _ = study
    run = load_run(root / "out" / "seed_1")
    assert check_run(run) == []  # written by this version, with a history
    bad = copy.deepcopy(run)
    bad.relevance["share"] = {**bad.relevance["share"], "text": float("nan")}
    with pytest.raises(MWeightError, match=r"field share.text = nan; expected a finite number"):
        check_run(bad)
    bad = copy.deepcopy(run)
    bad.relevance["beta"] = {"text": 1.0}
    with pytest.raises(MWeightError, match="'beta' and 'share' name different blocks"):
        check_run(bad)
    bad = copy.deepcopy(run)
    bad.metrics = {"info": {}}
    with pytest.raises(MWeightError, match="no 'test' or 'valid' metrics"):
        check_run(bad)
    old = copy.deepcopy(run)
    old.meta, old.history = {}, None
    warnings = check_run(old)
    assert any("older mweight" in w for w in warnings) and any("no training curves" in w for w in warnings)
