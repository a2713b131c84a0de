"""Devices and precision: resolution, one-line errors, bf16 autocast on the CPU, checkpoints, CPU determinism."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from mweight import devices
from mweight.config import Config
from mweight.data import Dataset, to_tensors
from mweight.errors import ConfigError, MWeightError
from mweight.fileio import load_torch
from mweight.model import predict_tensors
from mweight.train import CHECKPOINT, fit

NO_CUDA = not torch.cuda.is_available()


def _skewed(n=360, seed=0):
    """Skewed, correlated features; a sequence modality with ragged lengths; the label uses text and audio."""
    rng = np.random.default_rng(seed)
    text = rng.gamma(1.5, size=(n, 6)).astype(np.float32)
    text[:, 1] += 0.7 * text[:, 0]  # correlated columns
    audio = rng.standard_t(3, size=(n, 8, 4)).astype(np.float32)
    lengths = rng.integers(2, 9, size=n)
    video = (rng.normal(size=(n, 5)) ** 2).astype(np.float32)  # irrelevant, chi-square
    y = np.log1p(text[:, 0]) * 2 + np.tanh(audio[np.arange(n), 0, 0]) + 0.1 * rng.normal(size=n)
    split = np.array(["train"] * (n * 6 // 10) + ["valid"] * (n * 2 // 10) + ["test"] * (n - n * 8 // 10))
    return Dataset(modalities={"text": text, "audio": audio, "video": video}, label=y.astype(np.float32),
                   split=split, id=np.array([f"v{i // 4}_{i % 4}" for i in range(n)]), lengths={"audio": lengths})


def _cfg(**train):
    return Config.from_dict({"model": {"hidden": 8, "rank": 3, "interactions": "pairs", "dropout": 0.1},
                             "train": {"epochs": 4, "batch_size": 16, "lr": 0.005, "progress": False, **train}})


def test_cpu_and_auto_resolve_and_auto_prefers_cuda_then_mps(monkeypatch):
    assert devices.resolve_device("cpu") == torch.device("cpu")
    assert devices.resolve_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    assert devices.resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(devices, "mps_available", lambda: True)
    assert devices.resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve_device("auto") == torch.device("cuda")


def test_absent_device_is_a_one_line_error_naming_the_key(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    for name in ("cuda", "mps"):
        with pytest.raises(MWeightError) as exc:
            devices.resolve_device(name)
        msg = str(exc.value)
        assert "\n" not in msg and msg.startswith(f"train.device = '{name}'") and "not available" in msg
    with pytest.raises(MWeightError, match="--device = 'cuda'"):
        devices.resolve_device("cuda", key="--device")
    with pytest.raises(MWeightError, match="expected auto | cpu | cuda | mps"):
        devices.resolve_device("tpu")


@pytest.mark.skipif(not NO_CUDA, reason="checks the error on a machine without CUDA")
def test_fit_on_absent_cuda_fails_before_training():
    with pytest.raises(MWeightError, match="CUDA is not available"):
        fit(_skewed(n=60), _cfg(device="cuda"))


@pytest.mark.parametrize("value, ok", [(32, 32), ("32", 32), ("bf16", "bf16"), (16, 16), ("16", 16),
                                       ("fp16", None), (64, None), (True, None), ("bf16-mixed", None)])
def test_precision_is_validated_like_every_config_value(value, ok):
    if ok is None:
        with pytest.raises(ConfigError) as exc:
            Config.from_dict({"train": {"precision": value}})
        assert str(exc.value) == f"config: train.precision = {value!r}; expected 32 | bf16 | 16"
    else:
        assert Config.from_dict({"train": {"precision": value}}).train.precision == ok


def test_device_is_validated_and_defaults_are_cpu_32():
    cfg = Config()
    assert cfg.train.device == "cpu" and cfg.train.precision == 32
    with pytest.raises(ConfigError, match=r"train.device = 'gpu'; expected auto \| cpu \| cuda \| mps"):
        Config.from_dict({"train": {"device": "gpu"}})


def test_float16_is_refused_off_cuda_in_one_line():
    with pytest.raises(MWeightError) as exc:
        devices.check_precision(16, torch.device("cpu"))
    assert "\n" not in str(exc.value) and "use bf16 or 32" in str(exc.value)
    assert devices.check_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(MWeightError, match="needs CUDA"):
        fit(_skewed(n=60), _cfg(precision=16))


def test_bf16_autocast_trains_on_cpu_to_finite_useful_numbers():
    ds = _skewed()
    r32 = fit(ds, _cfg(epochs=12))
    rbf = fit(ds, _cfg(epochs=12, precision="bf16"))
    for r in (r32, rbf):
        assert all(np.isfinite(h["train_loss"]) for h in r.history)
        assert all(np.isfinite(v) for v in r.beta.values())
        assert all(v.dtype != torch.bfloat16 for v in r.model.state_dict().values())  # float32 master weights
    # bf16 changes the numbers but not what is learned: text (the strongest) leads, quality comparable
    assert rbf.metrics["test"]["corr"] > max(0.4, r32.metrics["test"]["corr"] - 0.1), (rbf.metrics, r32.metrics)
    assert rbf.metrics["test"]["mae"] < 1.25 * r32.metrics["test"]["mae"]
    assert max(rbf.share, key=rbf.share.get) == "text"
    assert not np.allclose(list(r32.beta.values()), list(rbf.beta.values()), atol=1e-7)  # autocast was on


def test_predictions_and_contributions_stay_exact_float32_after_bf16_training():
    ds = _skewed(n=200)
    res = fit(ds, _cfg(precision="bf16"))
    inputs, lengths, _ = to_tensors(ds)
    pred, contrib = predict_tensors(res.model, inputs, lengths, contributions=True)
    assert pred.dtype == np.float32
    total = sum(contrib.values()) + res.model.final.bias.detach().numpy()
    assert np.allclose(total, pred, atol=1e-5)


def test_same_seed_same_numbers_on_the_cpu_default():
    ds = _skewed(n=200)
    a, b = fit(ds, _cfg()), fit(ds, _cfg())
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # bit for bit
    assert a.history == b.history
    c = fit(ds, _cfg(seed=1))
    assert not all(torch.equal(sa[k], c.model.state_dict()[k]) for k in sa)


def test_checkpoint_holds_cpu_tensors_loads_weights_only_and_resumes(tmp_path):
    ds = _skewed(n=200)
    cfg = _cfg(precision="bf16")
    full = fit(ds, cfg, run_dir=tmp_path / "full")
    part_dir = tmp_path / "part"
    fit(ds, cfg, run_dir=part_dir, max_epochs=2)
    ck = torch.load(part_dir / CHECKPOINT, weights_only=True)  # plain tensors and containers only
    tensors = [v for v in ck["model"].values()] + [v for v in ck["best_state"].values()]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    assert load_torch(part_dir / CHECKPOINT)["epoch"] == 2
    resumed = fit(ds, cfg, run_dir=part_dir, resume=True)
    assert resumed.best_epoch == full.best_epoch
    assert resumed.beta == pytest.approx(full.beta, abs=1e-6)


def test_model_round_trip_through_model_pt(tmp_path):
    from mweight.runs import load_model, save_model

    ds = _skewed(n=200)
    cfg = _cfg()
    res = fit(ds, cfg)
    assert devices.model_device(res.model).type == "cpu"
    save_model(tmp_path / "model.pt", res.model, cfg, ds.task)
    again, cfg2, task = load_model(tmp_path / "model.pt")
    inputs, lengths, _ = to_tensors(ds)
    p1, _ = predict_tensors(res.model, inputs, lengths)
    p2, _ = predict_tensors(again, inputs, lengths, device="cpu")
    assert np.array_equal(p1, p2) and cfg2.train.device == "cpu"


def test_to_cpu_walks_nested_checkpoints():
    obj = {"a": torch.ones(2), "b": [torch.zeros(1), {"c": torch.arange(3)}], "d": 4, "e": (torch.ones(1),)}
    out = devices.to_cpu(obj)
    assert out["d"] == 4 and isinstance(out["e"], tuple) and torch.equal(out["b"][1]["c"], torch.arange(3))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mweight", *map(str, args)], capture_output=True, text=True)


@pytest.mark.skipif(not NO_CUDA, reason="checks the error on a machine without CUDA")
def test_cli_train_with_cuda_in_the_config_is_one_line_exit_2(tmp_path):
    ds = _skewed(n=200)
    data = tmp_path / "d.npz"
    np.savez(data, id=ds.id, label=ds.label, split=ds.split, text=ds.modalities["text"],
             video=ds.modalities["video"])
    r = _cli("train", "--data", data, "--out", tmp_path / "run", "--set", "train.device=cuda", "--quiet")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.device = 'cuda'" in lines[0] and "CUDA is not available" in lines[0]
    assert not (tmp_path / "run" / "model.pt").exists()


def test_estimator_takes_device_and_precision(tmp_path, monkeypatch):
    from mweight import MWeight

    ds = _skewed(n=200)
    est = MWeight(hidden=8, epochs=3, progress=False, interactions="pairs", device="cpu", precision="bf16")
    est.fit(ds.modalities, ds.label, split=ds.split, lengths=ds.lengths, ids=ds.id)
    pred = est.predict(ds.modalities, lengths=ds.lengths)
    assert np.all(np.isfinite(pred)) and devices.model_device(est.model_).type == "cpu"
    contrib = est.contributions(ds.modalities, lengths=ds.lengths)
    assert np.allclose(contrib[est.blocks_ + ["bias"]].sum(axis=1), pred, atol=1e-5)
    est.save(tmp_path / "m.pt")
    assert np.array_equal(MWeight.load(tmp_path / "m.pt").predict(ds.modalities, lengths=ds.lengths), pred)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(MWeightError, match="MWeight.load\\(device=...\\) = 'cuda': CUDA is not available"):
        MWeight.load(tmp_path / "m.pt", device="cuda")
    with pytest.raises(MWeightError, match="train.device = 'cuda': CUDA is not available"):
        MWeight(epochs=1, device="cuda").fit(ds.modalities, ds.label, split=ds.split, lengths=ds.lengths)


@pytest.mark.skipif(not NO_CUDA, reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("command", [
    ["train", "--data", "{tmp}/absent.npz", "--out", "{tmp}/run"],
    ["predict", "{tmp}/no_run", "--out", "{tmp}/p.csv"],
    ["explain", "{tmp}/no_run"],
    ["evaluate", "{tmp}/no_run"],
    ["ablate", "{tmp}/no_run"],
    ["repro", "dna", "--out", "{tmp}/repro", "--quick"],
])
def test_cli_device_cuda_without_cuda_is_one_line_exit_2(tmp_path, command):
    args = [a.format(tmp=tmp_path) for a in command]
    r = _cli(*args, "--device", "cuda")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("mweight: error: --device = 'cuda': CUDA is not available")
    assert r.stdout == "" and list(tmp_path.iterdir()) == []  # nothing written


def test_cli_device_cpu_trains_and_predicts(tmp_path):
    ds = _skewed(n=200)
    data = tmp_path / "d.npz"
    np.savez(data, id=ds.id, label=ds.label, split=ds.split, text=ds.modalities["text"],
             video=ds.modalities["video"])
    r = _cli("train", "--data", data, "--out", tmp_path / "run", "--device", "cpu", "--quiet",
             "--set", "train.epochs=2", "--set", "train.precision=bf16")
    assert r.returncode == 0, r.stderr
    import yaml

    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["train"]["device"] == "cpu" and saved["train"]["precision"] == "bf16"
    r = _cli("predict", tmp_path / "run", "--out", tmp_path / "p.csv", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    r = _cli("train", "--data", data, "--out", tmp_path / "run2", "--device", "gpu")
    assert r.returncode == 2 and "invalid choice: 'gpu'" in r.stderr
