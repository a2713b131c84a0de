"""mweight.seeds: the one --seeds syntax (parse) shared by train, sweep and repro."""
import subprocess
import sys

import pytest

from mweight.errors import MWeightError
from mweight.seeds import parse_seeds


def test_a_bare_number_is_a_count_a_list_is_those_seeds():
    assert parse_seeds("5") == [0, 1, 2, 3, 4]
    assert parse_seeds(3) == [0, 1, 2]
    assert parse_seeds("4,1") == [4, 1]  # order kept: runs are trained in the order given
    assert parse_seeds("5,") == [5]  # one chosen seed
    assert parse_seeds(" 2, 7 ") == [2, 7]
    assert parse_seeds(None) is None and parse_seeds("") is None


@pytest.mark.parametrize("bad", ["x", "0", "-2", "1,1", "-1,2", "1.5", ","])
def test_bad_seeds_are_one_line_errors(bad):
    with pytest.raises(MWeightError, match=r"^--seeds .*expected a positive count"):
        parse_seeds(bad)


def test_train_sweep_and_repro_read_seeds_the_same_way():
    from mweight.repro.dna import parse_seeds as repro_seeds

    assert repro_seeds("3", quick=False) == parse_seeds("3") == [0, 1, 2]
    assert repro_seeds("4,1", quick=False) == parse_seeds("4,1")
    assert repro_seeds(None, quick=True) == [0, 1]
    for command in ("train", "sweep"):
        help_text = subprocess.run([sys.executable, "-m", "mweight", command, "--help"], capture_output=True,
                                   text=True, check=True).stdout
        assert "N|S1,S2,..." in help_text and "0..N-1" in " ".join(help_text.split())


# -- the seed runner ------------------------------------------------------------------
def _jobs(root, data, seeds, **kw):
    from mweight.config import resolve_config
    from mweight.seeds import SeedJob

    jobs = []
    for s in seeds:
        cfg = resolve_config("mnl", None, ["train.epochs=3", "train.patience=3", "train.progress=false",
                                           "train.threads=1", f"train.seed={s}"],
                             extra={"data": {"path": str(data)}})
        jobs.append(SeedJob(cfg, root / f"seed_{s}", label=f"seed {s}", meta={"preset": "mnl"}, **kw))
    return jobs


@pytest.fixture(scope="module")
def skewed(tmp_path_factory):
    from conftest import write_mosi_like

    root = tmp_path_factory.mktemp("seeds")
    write_mosi_like(root / "d.npz", n_videos=12, clips=6, seed=2, skew=True)
    return root, root / "d.npz"


def _numbers(run_dir):
    import json

    m = json.loads((run_dir / "metrics.json").read_text())
    r = json.loads((run_dir / "relevance.json").read_text())
    return {s: m[s] for s in ("train", "valid", "test")}, r["beta"], m["info"]["best_epoch"]


def test_sequential_runner_reports_epochs_and_writes_standard_runs(skewed):
    from mweight.runs import RunDir, load_run
    from mweight.seeds import run_seeds

    root, data = skewed
    jobs = _jobs(root / "seq", data, [2, 0])
    epochs, done = [], []
    infos = run_seeds(jobs, "sequential", on_epoch=lambda job, row: epochs.append((job.seed, row["epoch"])),
                      on_done=lambda job, info: done.append((job.seed, info["seed"])))
    assert done == [(2, 2), (0, 0)]  # in job order, each job's own summary
    assert [i["run_dir"] for i in infos] == [str(j.run_dir) for j in jobs]
    assert [e for s, e in epochs if s == 2] == list(range(1, infos[0]["epochs_run"] + 1))
    for job, info in zip(jobs, infos):
        assert RunDir(job.run_dir).complete
        run = load_run(job.run_dir)
        assert run.config["train"]["seed"] == job.seed and run.meta["preset"] == "mnl"
        assert run.metrics["test"] == pytest.approx(info["test"])
    assert _numbers(jobs[0].run_dir) != _numbers(jobs[1].run_dir)  # the seeds really differ


def test_worker_processes_give_the_same_runs_as_sequential(skewed):
    from mweight.seeds import run_seeds

    root, data = skewed
    seq = run_seeds(_jobs(root / "a", data, [5, 6]), "sequential")
    seen = []
    par = run_seeds(_jobs(root / "b", data, [5, 6]), "processes", workers=2,
                    on_epoch=lambda job, row: seen.append(job.label))
    assert [i["seed"] for i in par] == [5, 6]  # results in job order whatever finishes first
    assert set(seen) == {"seed 5", "seed 6"}  # progress came back from the workers
    for s in (5, 6):
        assert _numbers(root / "a" / f"seed_{s}") == _numbers(root / "b" / f"seed_{s}")
    assert [i["best_epoch"] for i in seq] == [i["best_epoch"] for i in par]


def test_backends_are_a_registry_a_batched_backend_gets_every_job_at_once(skewed, monkeypatch):
    from mweight import seeds

    root, data = skewed
    calls = []

    def batched(jobs, ds, **options):  # what issue 17's vmapped backend plugs in as
        calls.append(([j.seed for j in jobs], ds, sorted(options)))
        return [{"seed": j.seed} for j in jobs]

    monkeypatch.setitem(seeds.BACKENDS, "batched", batched)
    out = seeds.run_seeds(_jobs(root / "c", data, [1, 2, 3]), "batched", ds="DS", on_done=None)
    assert calls == [([1, 2, 3], "DS", ["on_done"])] and [o["seed"] for o in out] == [1, 2, 3]
    with pytest.raises(MWeightError, match="seed backend 'gpu'; expected one of sequential, processes, ray"):
        seeds.run_seeds([], "gpu")
