"""Layered configs, presets, the dataset loader and its one-line errors."""
import json

import numpy as np
import pytest
import yaml

from conftest import run_cli
from mweight.config import Config, list_presets, parse_set, preset_dict, resolve_config
from mweight.data import carve_validation, load_dataset, video_of
from mweight.errors import MWeightError


def test_layering_preset_then_file_then_set(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"model": {"p": 2.0, "rank": 5}, "train": {"epochs": 7}}))
    cfg = resolve_config("dna-xor", str(f), ["train.epochs=3", "model.interactions=[m1*m2]"])
    assert cfg.model.p == 2.0 and cfg.model.rank == 5  # file over preset
    assert cfg.train.epochs == 3  # --set over file
    assert cfg.model.interactions == ["m1*m2"]
    assert cfg.model.lam == preset_dict("dna-xor")["model"]["lambda"]  # preset where nothing overrides
    d = cfg.to_dict()
    assert d["model"]["lambda"] == cfg.model.lam and "lam" not in d["model"]
    assert Config.from_dict(d).to_dict() == d  # the saved config round-trips


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_is_valid(name):
    assert resolve_config(name).model.norm in ("none", "bn", "vbn", "iterbn", "anova")


@pytest.mark.parametrize("bad, match", [
    (["model.pp=1"], "unknown key model.pp"),
    (["model.p=0.5"], "model.p = 0.5; expected a real number >= 1"),
    (["model.norm=layer"], "model.norm"),
    (["epochs=3"], "dotted key"),
    (["train.epochs"], "key=value"),
])
def test_bad_config_values_are_one_line_errors(bad, match):
    with pytest.raises(MWeightError, match=match):
        resolve_config(None, None, bad)


def test_parse_set_yaml_values():
    assert parse_set(["model.p=1.5", "model.interactions=all", "data.modalities=[a, b]"]) == {
        "model": {"p": 1.5, "interactions": "all"}, "data": {"modalities": ["a", "b"]}}


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def _basic(n=20):
    rng = np.random.default_rng(0)
    return dict(label=rng.normal(size=n).astype(np.float32),
                split=np.array(["train"] * 10 + ["valid"] * 5 + ["test"] * 5),
                id=np.array([f"vid{i // 4}_{i % 4}" for i in range(n)]),
                text=rng.normal(size=(n, 3)).astype(np.float32),
                audio=rng.normal(size=(n, 4, 2)).astype(np.float32), audio_lengths=np.full(n, 4),
                dna=rng.integers(0, 4, size=(n, 10)).astype(np.int8),
                transcript=np.array(["hello"] * n), meta_json=np.array(json.dumps({"source": "test"})))


def test_load_dataset_reads_modalities_in_file_order(tmp_path):
    ds = load_dataset(_write(tmp_path / "d.npz", **_basic()))
    assert ds.names == ["text", "audio", "dna"]
    assert ds.lengths["audio"].tolist() == [4] * 20
    assert ds.columns["transcript"][0] == "hello" and ds.meta == {"source": "test"}
    assert ds.counts() == {"train": 10, "valid": 5, "test": 5}
    assert ds.task == "regression"
    sub = load_dataset(tmp_path / "d.npz", modalities=["dna", "text"])
    assert sub.names == ["dna", "text"]


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.pop("label"), "missing field 'label'"),
    (lambda d: d.update(text=np.zeros((19, 3))), "field 'text' has 19 rows; expected 20"),
    (lambda d: d.update(split=np.array(["train"] * 19 + ["dev"])), "value 'dev'; expected train / valid / test"),
    (lambda d: d.pop("split"), "no split column 'split'"),
    (lambda d: d.update(label=np.full(20, np.nan, np.float32)), "NaN"),
    (lambda d: d.update(extra=np.array([{"a": 1}] * 20, dtype=object)), "pickled object arrays"),
])
def test_load_dataset_errors_name_file_and_field(tmp_path, mutate, match):
    d = _basic()
    mutate(d)
    path = _write(tmp_path / "bad.npz", **d)
    with pytest.raises(MWeightError, match=match) as err:
        load_dataset(path)
    assert "bad.npz" in str(err.value) and "\n" not in str(err.value)


def test_not_a_zip_is_a_clear_error(tmp_path):
    p = tmp_path / "x.npz"
    p.write_text("hello")
    with pytest.raises(MWeightError, match="not a readable .npz"):
        load_dataset(p)


def test_carve_validation_by_whole_videos():
    d = _basic(n=80)
    d["split"] = np.array(["train"] * 60 + ["test"] * 20)
    from mweight.data import Dataset

    ds = Dataset(modalities={"text": d["text"]}, label=d["label"], split=d["split"], id=d["id"])
    out, record = carve_validation(ds, 0.2, seed=3)
    valid_videos = {video_of(i) for i in out.id[out.split == "valid"]}
    train_videos = {video_of(i) for i in out.id[out.split == "train"]}
    assert valid_videos and not (valid_videos & train_videos)  # speaker-independent
    assert record["by"] == "video" and sorted(valid_videos) == record["videos"]
    assert (out.split[60:] == "test").all()
    again, _ = carve_validation(ds, 0.2, seed=3)
    assert (again.split == out.split).all()
    assert video_of("abc$_$3") == "abc" and video_of("2WGyTLYerpo_44") == "2WGyTLYerpo"


def _cli(*args, cwd=None):
    return run_cli(*args, cwd=cwd)


def test_cli_help_and_train_errors(tmp_path):
    r = _cli("--help")
    assert r.returncode == 0 and "train" in r.stdout
    r = _cli("train", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"mweight: error: {tmp_path / 'missing.npz'}: dataset file not found"]
    r = _cli("train", "--list-presets")
    assert r.returncode == 0 and "dna-additive" in r.stdout and "mosi-utterance" in r.stdout
    from mweight.config import preset_description

    assert "unimodal blocks" in preset_description("dna-additive")
    assert preset_description("dna-additive") in r.stdout  # the description, not a comment line


def test_cli_train_writes_a_run_and_refuses_to_overwrite(tmp_path):
    data = _write(tmp_path / "d.npz", **_basic(n=40) | {"split": np.array(["train"] * 24 + ["valid"] * 8 + ["test"] * 8)})
    out = tmp_path / "run"
    r = _cli("train", "--data", str(data), "--out", str(out), "--set", "train.epochs=2", "--set",
             "model.interactions=[text*audio]", "--quiet")
    assert r.returncode == 0, r.stderr
    for f in ("config.yaml", "metrics.json", "relevance.json", "history.csv", "model.pt", "predictions.csv"):
        assert (out / f).is_file(), f
    rel = json.loads((out / "relevance.json").read_text())
    assert set(rel["share"]) == {"text", "audio", "dna", "text*audio"}
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["train"]["epochs"] == 2 and cfg["_meta"]["dataset_sha256"]
    import pandas as pd

    pred = pd.read_csv(out / "predictions.csv")
    blocks = ["text", "audio", "dna", "text*audio", "bias"]
    assert np.allclose(pred[blocks].sum(axis=1), pred["prediction"], atol=1e-4)
    r = _cli("train", "--data", str(data), "--out", str(out), "--quiet")
    assert r.returncode == 2 and "already holds a run" in r.stderr


def test_token_ids_rule_is_one_definition_shared_by_loading_the_model_and_the_estimator(tmp_path):
    """Integer (N, L) = token ids; bool flags and integer (N, T, D) sequences are float features."""
    import torch

    from mweight import MWeight
    from mweight.data import as_modality, is_token_ids, modality_tensor
    from mweight.encoders import default_encoder
    from mweight.model import make_shapes

    rng = np.random.default_rng(3)
    tokens = rng.integers(0, 9, size=(40, 5))
    flags = rng.random((40, 4)) < 0.2  # skewed: mostly False
    counts = rng.poisson(0.7, size=(40, 3, 2))  # integer-valued sequence features
    assert is_token_ids(tokens) and not is_token_ids(flags) and not is_token_ids(counts)
    assert as_modality(tokens) is tokens
    assert as_modality(flags).dtype == np.float32 and as_modality(counts).dtype == np.float32
    assert modality_tensor(tokens).dtype == torch.long and modality_tensor(as_modality(flags)).dtype == torch.float32
    assert default_encoder(tokens) == "dna_cnn" and default_encoder(as_modality(flags)) == "mlp"
    assert make_shapes({"t": tokens, "f": as_modality(flags)}) == {"t": ((5,), "i"), "f": ((4,), "f")}
    # the estimator applies load_dataset's rule to raw arrays: flags train as features, not as token ids
    y = (flags[:, 0] * 2.0 + rng.gamma(2.0, size=40)).astype(np.float32)
    est = MWeight(hidden=4, epochs=2, progress=False, interactions="none", valid_fraction=0.25)
    est.fit({"f": flags, "c": counts}, y, lengths={"c": np.full(40, 3)})
    assert est.model_.shapes == {"f": ((4,), "f"), "c": ((3, 2), "f")}
    assert np.all(np.isfinite(est.predict({"f": flags, "c": counts}, lengths={"c": np.full(40, 3)})))
