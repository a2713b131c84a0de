"""Shared test helpers: the CLI run like a user (a subprocess), MOSI-like data files, seeding.

Import the plain functions (``from conftest import run_cli, write_mosi_like``) where a
module-scoped fixture needs them, or take the ``cli`` / ``mosi_like`` fixtures.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("MWEIGHT_NO_PROGRESS", "1")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# Tiny models: one intra-op thread avoids oversubscription when tests run beside other work.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
    yield


# -- the CLI as a user runs it ---------------------------------------------------
def run_cli(*args, check: bool = False, cwd=None, timeout: float | None = None, env=None,
            ) -> subprocess.CompletedProcess:
    """``python -m mweight ARGS`` in a subprocess (text output captured); with ``check`` a
    non-zero exit fails the test and shows the end of stderr."""
    res = subprocess.run([sys.executable, "-m", "mweight", *map(str, args)], capture_output=True, text=True,
                         cwd=cwd, timeout=timeout, env=env)
    if check:
        assert res.returncode == 0, f"mweight {' '.join(map(str, args))} failed:\n{res.stderr[-2000:]}"
    return res


@pytest.fixture(scope="session")
def cli():
    """:func:`run_cli` as a fixture."""
    return run_cli


# -- MOSI-like data -------------------------------------------------------------------
MOSI_DIMS = {"text": 6, "audio": 4, "video": 5}


def write_mosi_like(path, n_videos: int = 24, clips: int = 10, seed: int = 0, dims: dict | None = None,
                    weights=(("text", 0, 1.4), ("text", 1, 0.6), ("audio", 0, 0.3)), noise: float = 0.3,
                    grid: int | None = 5, splits: tuple[float, float] | None = None,
                    id_format: str = "vid{v:02d}_{c}", transcript: str | None = "words of segment {id}",
                    tt_split: bool = False, split_only_train_test: bool = False, skew: bool = False) -> dict:
    """A MOSI-like utterance dataset: ``clips`` segments per video, whole videos per split.

    Features are drawn per modality in ``dims`` order (text, audio, video); the label is
    ``sum(weight * modality[:, column]) + noise * N(0, 1)`` clipped to [-3, 3] and rounded to
    steps of ``1 / grid`` (MOSI's grid, with exact zeros). ``splits = (a, b)``: videos ``< a`` train,
    ``< b`` valid, the rest test (default 60 % / 15 % / 25 % of the videos). ``skew`` makes
    the features unlike the method's assumptions: audio log-normal, video correlated with text.
    ``tt_split`` adds a ``tt_split`` column (valid folded into train). Writes ``path``;
    returns the arrays.
    """
    rng = np.random.default_rng(seed)
    dims = dims or MOSI_DIMS
    n = n_videos * clips
    vid = np.repeat(np.arange(n_videos), clips)
    clip = np.tile(np.arange(clips), n_videos) + 1
    ids = np.array([id_format.format(v=v, c=c) for v, c in zip(vid, clip)])
    mods = {m: rng.normal(size=(n, d)).astype(np.float32) for m, d in dims.items()}
    if skew:
        if "audio" in mods:
            mods["audio"] = np.exp(mods["audio"]).astype(np.float32)  # heavy right tail
        if "video" in mods and "text" in mods:
            k = min(mods["video"].shape[1], mods["text"].shape[1])
            mods["video"][:, :k] = 0.8 * mods["text"][:, :k] + 0.6 * mods["video"][:, :k]
    label = sum(w * mods[m][:, col] for m, col, w in weights) + noise * rng.normal(size=n)
    label = np.clip(label, -3, 3)
    if grid:
        label = np.round(label * grid) / grid
    label = label.astype(np.float32)
    a, b = splits if splits is not None else (n_videos * 0.6, n_videos * 0.75)
    split = np.where(vid < a, "train", np.where(vid < b, "valid", "test"))
    arrays = {"id": ids, **mods, "label": label, "split": split}
    if tt_split or split_only_train_test:
        tt = np.where(split == "valid", "train", split)
        arrays["split"] = tt if split_only_train_test else split
        arrays["tt_split"] = tt
    if transcript is not None:
        arrays["transcript"] = np.array([transcript.format(id=i) for i in ids])
    np.savez(path, **arrays)
    return arrays


@pytest.fixture(scope="session")
def mosi_like():
    """:func:`write_mosi_like` as a fixture."""
    return write_mosi_like


# -- a trained study ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """Two seeds (3, 1) of the ``mnl`` preset trained by :func:`mweight.seeds.train_runs` into
    ``root/out/seed_<s>`` on skewed, correlated MOSI-like data ``root/d.npz`` (a few seconds, once
    per session). Returns ``(root, data, cfg)``; tests must not modify the runs."""
    from mweight.config import resolve_config
    from mweight.seeds import train_runs

    root = tmp_path_factory.mktemp("tiny_study")
    data = root / "d.npz"
    write_mosi_like(data, n_videos=16, clips=6, seed=4, skew=True)
    cfg = resolve_config("mnl", None, ["train.epochs=2", "train.patience=2", "train.progress=false",
                                       "train.threads=1", "model.dropout=0.0"], extra={"data": {"path": str(data)}})
    train_runs(cfg, root / "out", seeds=[3, 1], verbose=False)
    return root, data, cfg
