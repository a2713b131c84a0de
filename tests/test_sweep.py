"""mweight sweep / train --parallel on Ray Tune: a tiny real sweep, resume, errors.

Ray's start-up costs ~10-20 s on 2 cores, so the module starts it at most twice: the
first sweep runs on the embedded runtime that the command starts and stops itself;
the later commands connect to one runtime this module starts (``--address``), which
also exercises the cluster path.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mweight.errors import MWeightError
from mweight.sweep import Func, Grid, load_space, parse_space, validate_space

ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
GRID = {"model.p": [1, 2], "model.lambda": [0.01, 0.1]}


def mw(*args, cwd=None, timeout=240, pre=""):
    """Run ``python -m mweight ARGS`` like a user (``pre``: Python run first, e.g. to hide ray)."""
    if pre:
        cmd = [sys.executable, "-c", f"{pre}\nimport sys\nfrom mweight.cli import main\nsys.exit(main({list(args)!r}))"]
    else:
        cmd = [sys.executable, "-m", "mweight", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    data = d / "tiny.npz"
    r = mw("synth", "dna", "--n", "160", "--length", "24", "--seed", "0", "--out", data)
    assert r.returncode == 0, r.stderr
    space = d / "space.yaml"
    space.write_text(yaml.safe_dump({**GRID, "model.hidden": 8, "train.epochs": 1, "train.batch_size": 32}, sort_keys=False))
    return d, data, space


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray runtime shared by the later commands (they connect with --address)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ctx = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    else:
        ctx = ray.get_runtime_context()
    address = ctx.address_info["gcs_address"] if started else ray.get_runtime_context().gcs_address
    yield address
    if started:
        ray.shutdown()


# -- the space (no Ray needed) ----------------------------------------------
def test_parse_space_grid_functions_fixed_and_sections():
    sp = parse_space({"model.p": [1, 1.5, 2], "model.lambda": "loguniform(1e-4, 1e-1)",
                      "model.interactions": [[], ["text*audio"], "all"], "train": {"epochs": 3, "lr": "uniform(0.001, 0.01)"},
                      "model.rank": "randint(2, 9)", "model.norm": "choice(none, vbn)", "sweep": {"samples": 3}})
    assert sp.params["model.p"] == Grid([1, 1.5, 2])
    assert sp.params["model.interactions"] == Grid([[], ["text*audio"], "all"])
    assert sp.params["model.lambda"] == Func("loguniform", [1e-4, 1e-1])
    assert sp.params["train.lr"] == Func("uniform", [0.001, 0.01])  # nested section flattened
    assert sp.params["train.epochs"] == 3  # fixed
    assert sp.params["model.norm"] == Func("choice", ["none", "vbn"])
    assert sp.settings["samples"] == 3 and sp.settings["scheduler"] == "asha"
    assert set(sp.searched) == {"model.p", "model.interactions", "model.lambda", "train.lr", "model.rank", "model.norm"}


@pytest.mark.parametrize("raw, expected", [
    ({"model.lambda": "lognormal(1, 2)"}, "unknown function lognormal()"),
    ({"model.lambda": "loguniform(0, 1)"}, "a log scale needs low > 0"),
    ({"model.lambda": "uniform(2, 1)"}, "expected low < high"),
    ({"model.rank": "randint(1.5, 4)"}, "expected integer bounds"),
    ({"p": [1, 2]}, "expected a dotted config key"),
    ({"model.p": []}, "empty list"),
    ({"model.p": [1], "sweep": {"sampels": 2}}, "sweep.sampels: unknown setting"),
    ({"model.p": [1], "sweep": {"scheduler": "pbt"}}, "sweep.scheduler = 'pbt'; expected asha | none"),
])
def test_parse_space_errors_name_the_key(raw, expected):
    with pytest.raises(MWeightError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_space(raw, source="space.yaml")


def test_validate_space_checks_every_value_against_the_config():
    from mweight.config import Config

    base = Config().to_dict()
    validate_space(parse_space({"model.norm": ["none", "iterbn"], "model.p": "uniform(1, 3)"}), base)
    with pytest.raises(MWeightError, match=r"space: model.norm = 'bogus'.*none \| bn \| vbn \| iterbn \| anova"):
        validate_space(parse_space({"model.norm": ["none", "bogus"]}), base)
    with pytest.raises(MWeightError, match="unknown key model.pp"):
        validate_space(parse_space({"model.pp": [1, 2]}), base)


def test_draw_variants_grid_times_seeded_samples():
    pytest.importorskip("ray")
    from mweight.sweep import draw_variants

    sp = parse_space({"model.p": [1, 2], "model.lambda": "loguniform(1e-4, 1e-1)", "train.epochs": 2,
                      "sweep": {"samples": 3, "seed": 7}})
    v = draw_variants(sp, seeds=[1, 2])
    assert len(v) == 2 * 3 * 2
    assert all(1e-4 <= x["model.lambda"] <= 1e-1 and x["train.epochs"] == 2 for x in v)
    assert {(x["model.p"], x["train.seed"]) for x in v} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    # one draw per grid point and sample, shared by the seeds of that configuration
    assert len({x["model.lambda"] for x in v}) == 2 * 3
    assert all(v[i]["model.lambda"] == v[i + 1]["model.lambda"] and v[i]["model.p"] == v[i + 1]["model.p"]
               for i in range(0, len(v), 2))
    assert draw_variants(sp, seeds=[1, 2]) == v  # seeded: a resumed sweep sees the same trials
    sp.settings["seed"] = 8
    assert draw_variants(sp, seeds=[1, 2]) != v


def test_load_space_example_file_is_valid():
    from mweight.config import resolve_config

    path = Path(__file__).resolve().parents[1] / "paper_repro" / "spaces" / "mosi-utterance.yaml"
    sp = load_space(path)
    assert {"model.p", "model.lambda", "model.interactions", "model.norm"} <= set(sp.searched)
    base = resolve_config("mosi-utterance").to_dict()
    validate_space(sp, base)


# -- without ray ----------------------------------------------------------------
def test_without_ray_the_commands_say_how_to_install(tiny):
    d, data, space = tiny
    hide = "import sys; sys.modules['ray'] = None; sys.modules['ray.tune'] = None"
    for args in (["sweep", "--data", data, "--space", space, "--out", d / "noray"],
                 ["train", "--data", data, "--out", d / "noray_train", "--seeds", "1,2", "--parallel"]):
        r = mw(*map(str, args), pre=hide)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert lines == ["mweight: error: Ray Tune is not installed; install it with: pip install mweight[sweep]"]
        assert not (d / "noray").exists()


def test_bad_space_is_a_one_line_error(tiny):
    pytest.importorskip("ray")
    d, data, _ = tiny
    bad = d / "bad.yaml"
    bad.write_text("model.norm: [none, bogus]\n")
    r = mw("sweep", "--data", data, "--space", bad, "--out", d / "bad_out")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"mweight: error: {bad}: model.norm = 'bogus'; expected none | bn | vbn | iterbn | anova"]
    assert not (d / "bad_out").exists()


# -- a real tiny sweep ------------------------------------------------------------
def _check_sweep(out: Path, data: Path):
    from mweight.config import resolve_config
    from mweight.runs import load_run

    table = pd.read_csv(out / "results.csv")
    assert len(table) == 4
    assert sorted(zip(table["model.p"], table["model.lambda"])) == [(1, 0.01), (1, 0.1), (2, 0.01), (2, 0.1)]
    shares = [c for c in table.columns if c.startswith("share_")]
    assert shares == [f"share_m{i}" for i in range(1, 7)]
    for _, row in table.iterrows():
        run = load_run(out / row["run_dir"])  # a standard run directory
        assert run.config["model"]["p"] == row["model.p"] and run.config["model"]["lambda"] == row["model.lambda"]
        assert run.config["model"]["hidden"] == 8 and run.config["train"]["epochs"] == 1
        assert run.meta["dataset"] == str(data.resolve())
        assert row["valid_acc"] == pytest.approx(run.metrics["valid"]["acc"])
        assert row["test_acc"] == pytest.approx(run.metrics["test"]["acc"])
        assert sum(row[c] for c in shares) == pytest.approx(1.0, abs=1e-6)
        assert row[shares[0]] == pytest.approx(run.relevance["share"]["m1"])
        assert len(run.history) == 1 and (run.path / "model.pt").is_file()
        run.load_model()
    # ranked by validation accuracy (higher is better)
    assert list(table["valid_acc"]) == sorted(table["valid_acc"], reverse=True)
    md = (out / "results.md").read_text()
    assert "| trial | model.p | model.lambda | status |" in md and md.count("| trial_") == 4
    best = yaml.safe_load((out / "best_config.yaml").read_text())
    top = table.iloc[0]
    assert best["model"]["p"] == top["model.p"] and best["model"]["lambda"] == top["model.lambda"]
    cfg = resolve_config(config_file=str(out / "best_config.yaml"))  # reusable with mweight train --config
    assert cfg.model.hidden == 8
    for png in ("metric_vs_model_p.png", "metric_vs_model_lambda.png", "beta_shares.png"):
        assert (out / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = json.loads((out / "sweep.json").read_text())
    assert state["status"] == "complete" and len(state["trials"]) == 4
    return table


@pytest.fixture(scope="module")
def first_sweep(tiny):
    """The 2 x 2 grid on the embedded local runtime (started and stopped by the command)."""
    pytest.importorskip("ray")
    d, data, space = tiny
    out = d / "sw"
    r = mw("sweep", "--data", data, "--space", space, "--out", out, "--preset", "dna-additive")
    return out, r


def test_sweep_grid_on_the_local_runtime(tiny, first_sweep, capsys):
    d, data, space = tiny
    out, r = first_sweep
    assert r.returncode == 0, r.stderr[-3000:]
    assert "local Ray runtime: 2 CPUs" in r.stderr and "4/4 trial_" in r.stderr
    table = _check_sweep(out, data)
    # ASHA (ranking by validation cross-entropy, the classification selection metric) may stop
    # the worse trials at their first rung; a stopped trial still gets its full run directory
    assert set(table["status"]) <= {"finished", "stopped_early"} and "finished" in set(table["status"])
    for rd in table["run_dir"]:
        assert (out / rd / "attribution.json").is_file() and (out / rd / "model.pt").is_file()
    # the same sweep dir without --resume is refused, before Ray starts (in-process: saves a start-up)
    from mweight.cli import main

    assert main(["sweep", "--data", str(data), "--space", str(space), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a sweep (sweep.json); use --resume" in err[0]


def test_resume_skips_finished_trials(tiny, first_sweep, ray_address):
    d, data, space = tiny
    out, first = first_sweep
    assert first.returncode == 0, first.stderr[-3000:]
    table = pd.read_csv(out / "results.csv")
    # Simulate an interruption: one trial lost its finished run files (its checkpoint stays).
    victim = out / table.iloc[-1]["run_dir"]
    (victim / "model.pt").unlink()
    (victim / "sweep_trial.json").unlink()
    others = {p: (out / p / "model.pt").stat().st_mtime_ns for p in table["run_dir"][:-1]}
    r = mw("sweep", "--data", data, "--space", space, "--out", out, "--preset", "dna-additive", "--resume",
           "--address", ray_address)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "3 already complete (not retrained)" in r.stderr
    assert r.stderr.count("already complete, not retrained") == 3
    assert {p: (out / p / "model.pt").stat().st_mtime_ns for p in others} == others  # untouched
    assert (victim / "model.pt").is_file()
    table = _check_sweep(out, data)
    # three kept from the first sweep, one trained again; ASHA may have stopped some at a rung
    st = list(table["status"])
    assert sum(x.endswith(" (resumed)") for x in st) == 3, st
    assert all(x.replace(" (resumed)", "") in ("finished", "stopped_early") for x in st), st


def test_train_seeds_parallel(tiny, ray_address):
    from mweight.runs import load_run

    d, data, _ = tiny
    out = d / "par"
    r = mw("train", "--data", data, "--out", out, "--preset", "dna-additive", "--seeds", "1,2", "--parallel",
           "--address", ray_address, "--set", "train.epochs=1", "--set", "model.hidden=8")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["wrote", str(out.resolve() / "seed_1"), "wrote", str(out.resolve() / "seed_2")]
    s = json.loads((out / "summary.json").read_text())
    assert s["seeds"] == [1, 2]
    runs = [load_run(out / f"seed_{k}") for k in (1, 2)]
    assert [r_.config["train"]["seed"] for r_ in runs] == [1, 2]
    assert s["metrics"]["test"]["acc"]["values"] == [r_.metrics["test"]["acc"] for r_ in runs]
    # Seeds differ, so the runs differ (each seed really trained).
    assert runs[0].relevance["share"] != runs[1].relevance["share"]
    # An existing run is protected as in the sequential path.
    r = mw("train", "--data", data, "--out", out, "--seeds", "1,2", "--parallel", "--address", ray_address)
    assert r.returncode == 2 and "already holds a run" in r.stderr


def test_a_failing_trial_is_reported_and_the_others_finish(tiny, ray_address):
    d, data, _ = tiny
    space = d / "fail.yaml"
    space.write_text("train.loss: [ce, mse]\ntrain.epochs: 1\nmodel.hidden: 8\n")  # mse: regression only
    out = d / "fail"
    r = mw("sweep", "--data", data, "--space", space, "--out", out, "--address", ray_address)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "1 trial(s) failed" in r.stderr
    table = pd.read_csv(out / "results.csv").set_index("train.loss")
    assert table.loc["ce", "status"] == "finished" and table.loc["mse", "status"] == "error"
    assert table.loc["mse", "error"] == "train.loss = mse is a regression loss; classification uses ce"
    md = (out / "results.md").read_text()
    assert "## Failed trials" in md and "classification uses ce" in md
    assert yaml.safe_load((out / "best_config.yaml").read_text())["train"]["loss"] == "ce"


def test_asha_ranks_by_the_configured_selection_metric(tmp_path, ray_address):
    """``--set train.select=corr``: every trial keeps its best epoch by validation corr, and ASHA
    ranks and stops trials by the same corr (not by MAE, the regression default)."""
    from conftest import write_mosi_like
    from mweight.runs import load_run

    data = tmp_path / "reg.npz"
    write_mosi_like(data, n_videos=12, clips=6, seed=1, skew=True)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"model.p": [1, 2, 4], "train.epochs": 3, "model.hidden": 8,
                                     "sweep": {"scheduler": "asha", "grace_period": 1, "reduction_factor": 2}}))
    out = tmp_path / "sw"
    r = mw("sweep", "--data", data, "--space", space, "--out", out, "--preset", "mnl", "--set", "train.select=corr",
           "--address", ray_address)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "selecting on valid_corr (max)" in r.stderr and "valid_mae=" not in r.stderr
    state = json.loads((out / "sweep.json").read_text())
    assert state["metric"] == "valid_corr" and state["mode"] == "max"
    table = pd.read_csv(out / "results.csv")
    assert list(table["valid_corr"]) == sorted(table["valid_corr"], reverse=True)  # ranked by corr
    for rd in table["run_dir"]:
        run = load_run(out / rd)
        hist = run.history
        best = int(hist.loc[hist["valid_corr"].idxmax(), "epoch"])
        assert run.metrics["info"]["best_epoch"] == best  # fit selected on corr too


def test_gpus_per_trial_makes_the_trials_train_on_cuda_unless_the_device_is_set(tmp_path):
    """A trial that reserves a GPU trains there (Ray hands it the GPU); --set train.device wins."""
    from mweight.config import resolve_config
    from mweight.sweep.driver import trial_extra

    data = tmp_path / "d.npz"
    assert resolve_config("mosi-utterance", None, [], extra=trial_extra(data, None, 0)).train.device == "cpu"
    assert resolve_config("mosi-utterance", None, [], extra=trial_extra(data, None, 0.5)).train.device == "cuda"
    cfg = resolve_config("mosi-utterance", None, ["train.device=cpu"], extra=trial_extra(data, "bclstm_protocol", 1))
    assert cfg.train.device == "cpu" and cfg.data.split_key == "bclstm_protocol"
