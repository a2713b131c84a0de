"""Interrupted training resumes to the same result; a NaN/inf loss stops and keeps the last good checkpoint."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from conftest import run_cli, write_mosi_like
from mweight.config import Config, resolve_config
from mweight.data import load_dataset
from mweight.fileio import load_torch
from mweight.train import CHECKPOINT, fit


def small_data(path, n=96, seed=0):
    """Two modalities, 4 clips per video, continuous labels; 14 / 5 / 5 videos."""
    write_mosi_like(path, n // 4, 4, seed, dims={"text": 5, "audio": 3},
                    weights=(("text", 0, 1.5), ("audio", 0, 0.5)), noise=0.2, grid=None, splits=(14, 19),
                    id_format="v{v:02d}_{c}", transcript=None)
    return path


cli = run_cli


SETTINGS = ["model.interactions=[text*audio]", "train.batch_size=16", "train.patience=1000", "train.threads=1",
            "model.dropout=0.2", "train.progress=false"]


def assert_same(a, b, tol=1e-6):
    assert a.best_epoch == b.best_epoch
    for blk in a.beta:
        assert a.beta[blk] == pytest.approx(b.beta[blk], abs=tol)
    for split in ("valid", "test"):
        for k, v in a.metrics[split].items():
            assert v == pytest.approx(b.metrics[split][k], abs=tol), (split, k)
    assert len(a.history) == len(b.history)
    for ra, rb in zip(a.history, b.history):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], abs=tol)


def test_resume_after_max_epochs_equals_uninterrupted_run(tmp_path):
    data = small_data(tmp_path / "d.npz")
    cfg = resolve_config("intense", None, SETTINGS + ["train.epochs=8"], extra={"data": {"path": str(data)}})
    ds = load_dataset(data)
    full = fit(ds, cfg)
    part = fit(ds, cfg, run_dir=tmp_path / "r", max_epochs=3)
    assert len(part.history) == 3 and load_torch(tmp_path / "r" / CHECKPOINT)["epoch"] == 3
    resumed = fit(ds, cfg, run_dir=tmp_path / "r", resume=True)
    assert len(resumed.history) == 8
    assert_same(resumed, full)
    # and the check has teeth: a different seed does not pass it
    other = fit(ds, resolve_config("intense", None, SETTINGS + ["train.epochs=8", "train.seed=1"]))
    with pytest.raises(AssertionError):
        assert_same(other, full)


def test_cli_interrupt_then_resume_gives_the_uninterrupted_result(tmp_path):
    data = small_data(tmp_path / "d.npz")
    out = tmp_path / "run"
    args = ["train", "--data", data, "--preset", "intense", "--out", out, "--quiet",
            *[a for s in SETTINGS + ["train.epochs=400"] for a in ("--set", s)]]
    # Ctrl-C at a terminal: SIGINT handled by default in the child even when this test process
    # ignores it (as a job started in the background by a non-interactive shell does)
    proc = subprocess.Popen([sys.executable, "-m", "mweight", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    ckpt = out / CHECKPOINT
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if ckpt.is_file():
            try:
                if load_torch(ckpt)["epoch"] >= 2:
                    break
            except Exception:  # noqa: BLE001 - file being replaced; try again
                pass
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted; the last complete checkpoint is kept (use --resume)" in err
    stopped_at = load_torch(ckpt)["epoch"]
    assert 2 <= stopped_at < 400 and not (out / "model.pt").exists()
    # without --resume the half-done run is protected
    r = cli(*args)
    assert r.returncode == 2 and "--resume" in r.stderr
    r = cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    # the uninterrupted run with the saved resolved config, in-process
    saved = yaml.safe_load((out / "config.yaml").read_text())
    saved.pop("_meta")
    full = fit(load_dataset(data), Config.from_dict(saved))
    rel = json.loads((out / "relevance.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    for blk, v in full.beta.items():
        assert rel["beta"][blk] == pytest.approx(v, abs=1e-6)
    for split in ("valid", "test"):
        for k, v in full.metrics[split].items():
            assert metrics[split][k] == pytest.approx(v, abs=1e-6), (split, k)
    assert metrics["info"]["best_epoch"] == full.best_epoch and metrics["info"]["epochs_run"] == 400


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    data = small_data(tmp_path / "d.npz")
    out = tmp_path / "run"
    # AdamW's decoupled decay multiplies the encoder weights by (1 - lr * weight_decay) = -1e8 per
    # step (2 steps per epoch): epoch 1 and its validation are finite, a few steps later the loss
    # overflows in the middle of an epoch (lr_decay > 1, used here before, is refused now)
    r = cli("train", "--data", data, "--preset", "mnl", "--out", out, "--quiet", "--set", "train.epochs=20",
            "--set", "train.lr=0.001", "--set", "train.weight_decay=1e11", "--set", "train.batch_size=28",
            "--set", "train.threads=1")
    assert r.returncode == 2
    # data warnings (issue 11: tiny training set) come before training; the failure itself is one line
    lines = [line for line in r.stderr.strip().splitlines() if not line.startswith("mweight: warning: ")]
    assert len(lines) == 1 and lines[0].startswith("mweight: error: loss became") and "epoch" in lines[0]
    ck = load_torch(out / CHECKPOINT)
    bad_epoch = int(lines[0].split("at epoch ")[1].split(",")[0])
    assert ck["epoch"] == bad_epoch - 1 >= 1  # the last complete epoch before the bad one
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert all(np.isfinite(row["train_loss"]) for row in ck["history"])
    assert not (out / "model.pt").exists()
