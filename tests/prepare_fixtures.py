"""Small CMU-SDK datasets in the exact ``.csd`` layout, and a brute-force reference alignment.

The reference (:func:`word_mean`) is a plain loop over frames written from the SDK's
rule, not the vectorised aligner under test. Features are skewed and correlated
(log-normal, a shared drift), with COVAREP-style -inf and FACET-style NaN.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from mweight.prepare.csd import write_csd

REPO = Path(__file__).resolve().parents[1]
EPS = 1e-5


def run_prepare(dataset: str, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "mweight", "prepare", dataset, *map(str, args)],
                          capture_output=True, text=True, env=env)


def one_error_line(result, match: str) -> str:
    """The command failed as a user error: exit 2 and one line naming the problem."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mweight: error: "), result.stderr
    assert match in lines[0], lines[0]
    return lines[0]


def frames(rng, seconds: float, rate: float, dim: int, bad: float):
    """Frame features at ``rate`` Hz: log-normal, correlated across columns, a slow drift; ``bad`` = -inf or NaN."""
    t = np.arange(0.0, seconds, 1.0 / rate)
    drift = np.cumsum(rng.normal(size=(len(t), 1)), axis=0) * 0.05
    mix = rng.normal(size=(dim, dim)) * 0.3 + np.eye(dim)
    f = np.exp(rng.normal(size=(len(t), dim)) @ mix * 0.5) + drift
    f[rng.random(f.shape) < 0.02] = bad
    return f, np.stack([t, t + 1.0 / rate], 1)


def words(rng, seconds: float):
    """Irregular word timings with 'sp' pauses, as in TimestampedWords."""
    b = np.cumsum(rng.uniform(0.12, 0.7, int(seconds / 0.2)))
    b = b[b < seconds - 0.05]
    iv = np.stack([b[:-1], b[1:]], 1)
    vocab = np.array(["good", "bad", "movie", "really", "the", "i", "not", "sp"])
    tok = vocab[rng.choice(len(vocab), len(iv), p=[.12, .1, .14, .1, .2, .12, .07, .15])]
    return tok[:, None], iv


def segments(rng, seconds: float, n: int):
    """``n`` labelled segments of 1.5 s or more in the video, of uneven lengths, with gaps between them."""
    edges = np.linspace(0.3, seconds - 0.3, n + 1)
    start = edges[:-1] + rng.uniform(0, 0.3, n)
    end = np.minimum(start + rng.uniform(1.5, 4.0, n), edges[1:])
    return np.stack([start, end], 1)


def write_set(directory: Path, videos: dict[str, int], rng, *, label_cols: int = 7, seconds: float = 12.0,
              skip: dict[str, set[str]] | None = None, names: dict[str, str] | None = None,
              text_dim: int = 6, audio_dim: int = 9, video_dim: int = 5) -> dict:
    """Write words, word vectors, COVAREP-like (100 Hz) and FACET-like (30 Hz) files and a labels file.

    ``videos``: video id -> number of labelled segments; ``skip``: role -> videos left out of that file.
    Returns the raw data per role (``{role: {vid: (features, intervals)}}``) and the paths.
    """
    skip = skip or {}
    names = {"words": "CMU_MOSEI_TimestampedWords", "text": "CMU_MOSEI_TimestampedWordVectors",
             "audio": "CMU_MOSEI_COVAREP", "video": "CMU_MOSEI_VisualFacet42", "labels": "CMU_MOSEI_Labels", **(names or {})}
    data: dict[str, dict] = {r: {} for r in names}
    for vid, n_seg in videos.items():
        tok, w_iv = words(rng, seconds)
        data["words"][vid] = (tok, w_iv)
        data["text"][vid] = (rng.standard_t(3, size=(len(w_iv), text_dim)), w_iv)
        data["audio"][vid] = frames(rng, seconds, 100.0, audio_dim, -np.inf)
        data["video"][vid] = frames(rng, seconds, 30.0, video_dim, np.nan)
        sentiment = np.clip(rng.gamma(2.0, 0.8, n_seg) - 1.5, -3, 3)
        emotions = np.where(rng.random((n_seg, label_cols - 1)) < 0.6, 0.0, rng.uniform(0, 3, (n_seg, label_cols - 1)))
        data["labels"][vid] = (np.column_stack([sentiment, emotions]), segments(rng, seconds, n_seg))
    paths = {}
    for role, name in names.items():
        paths[role] = directory / f"{name}.csd"
        content = {v: x for v, x in data[role].items() if v not in skip.get(role, set())}
        write_csd(paths[role], name.replace("CMU_MOSEI_", ""), content, compression="gzip" if role == "audio" else None)
    return {"data": data, "paths": paths}


def word_mean(frames_feats, frames_iv, w0: float, w1: float) -> np.ndarray | None:
    """The SDK's align + mean collapse for one word, as a plain loop (None: no frame left)."""
    rows = []
    for f, (s0, s1) in zip(frames_feats, frames_iv):
        if (w1 - s0) > -EPS and (s1 - w0) > -EPS and abs(min(s1, w1) - max(s0, w0)) > EPS:
            rows.append(f)
    if not rows:
        return None
    rows = np.array(rows, dtype=np.float64)
    out = np.full(rows.shape[1], np.nan)
    for j in range(rows.shape[1]):
        good = rows[np.isfinite(rows[:, j]), j]
        if len(good):
            out[j] = good.mean()
    return out


def segment_words(word_iv, tokens, s0: float, s1: float, keep_sp: bool = False) -> list[int]:
    """Indices of the words overlapping a segment (the SDK's rule), 'sp' removed unless kept."""
    out = []
    for k, (a, b) in enumerate(word_iv):
        if abs(a - b) < EPS:
            continue
        if (s1 - a) > -EPS and (b - s0) > -EPS and abs(min(b, s1) - max(a, s0)) > EPS:
            if keep_sp or str(tokens[k, 0]).strip().lower() != "sp":
                out.append(k)
    return out
