"""mweight.trainrun: one run into one run directory (guards on --out and --resume, the lines it prints)."""
import copy
import io
import shutil

import pytest

from mweight.errors import MWeightError
from mweight.runs import load_run, result_line, sha256
from mweight.trainrun import check_run_out, print_run, verify_resume


@pytest.fixture(scope="module")
def seed1(tiny_study):
    root, data, cfg = tiny_study
    cfg1 = copy.deepcopy(cfg)
    cfg1.train.seed = 1
    return root / "out" / "seed_1", data, cfg1


def test_out_guards(seed1, tmp_path):
    run_dir, _, _ = seed1
    single = tmp_path / "single"
    shutil.copytree(run_dir, single)
    with pytest.raises(MWeightError, match=r"already holds a run \(config.yaml\); use --resume"):
        check_run_out(single, None, resume=False, overwrite=False)
    check_run_out(single, None, resume=True, overwrite=False)  # allowed: continue it
    check_run_out(single, None, resume=False, overwrite=True)  # allowed: replace it
    with pytest.raises(MWeightError, match=r"--seeds 1,2: .* holds a single run"):
        check_run_out(single, [1, 2], resume=False, overwrite=True)
    multi = tmp_path / "multi"
    shutil.copytree(run_dir, multi / "seed_1")
    with pytest.raises(MWeightError, match=r"holds a multi-seed run \(seed_1\); pass --seeds"):
        check_run_out(multi, None, resume=False, overwrite=False)
    check_run_out(multi, [2, 3], resume=False, overwrite=False)  # new seeds beside the old ones
    with pytest.raises(MWeightError, match="seed_1: already holds a run"):
        check_run_out(multi, [1, 2], resume=False, overwrite=False)
    # the start record of a run that stopped before its first epoch protects nothing
    started = tmp_path / "started"
    started.mkdir()
    (started / "config.yaml").write_text("_meta: {status: training}\n")
    check_run_out(started, None, resume=False, overwrite=False)


def test_resume_refuses_another_setup_naming_what_changed(seed1):
    run_dir, data, cfg = seed1
    verify_resume(run_dir, cfg, sha256(data))  # the same run: fine
    other = copy.deepcopy(cfg)
    other.model.p, other.train.threads = 2.0, 3  # threads does not change the numbers: not named
    with pytest.raises(MWeightError, match=r"^--resume: .* different setup: model.p 1.0 -> 2.0; resume with"):
        verify_resume(run_dir, other, sha256(data))
    with pytest.raises(MWeightError, match=r"dataset SHA-256 .* -> 000000000000"):
        verify_resume(run_dir, cfg, "0" * 64)


def test_print_run_reads_everything_from_the_files(seed1):
    run_dir, _, _ = seed1
    out = io.StringIO()
    print_run(run_dir, file=out)
    lines = out.getvalue().splitlines()
    run = load_run(run_dir)
    assert lines[0] == f"[{run_dir}] {result_line(run.metrics, run.metrics['info']['best_epoch'])}"
    verdict = run.attribution()["trust"]["verdict"]
    assert verdict in lines[1]
    if verdict != "no-evidence":
        top = max(run.relevance["share"], key=run.relevance["share"].get)
        assert lines[-1].startswith(f"[{run_dir}] beta share (relevance parameter, depends on p): {top}=")
    else:
        assert "no relevance shown" in lines[-1]
