"""Training speed per device and precision on a MOSEI-shaped sequence dataset (samples/s and ratios).

The data are synthetic with CMU-MOSEI's shapes (word-aligned, 50 steps): text 300-d
GloVe-like vectors (a Zipf-distributed vocabulary of heavy-tailed word vectors), audio 74-d
COVAREP-like frames (skewed, some near-constant columns), video 35-d FACET-like evidence
(bounded, correlated), ragged lengths, and a label in [-3, 3] that depends on all three.
Training uses the ``mosei-sequence`` preset through the real loop (``mweight.train.fit``).

Runs, interleaved over ``--rounds`` so machine load hits every variant alike:

- CPU, precision 32, the preset's batch (the baseline of every ratio);
- CPU, bf16 autocast;
- CPU, precision 32, batch 32 (the mosi-sequence batch, for the preset's choice);
- where CUDA exists: GPU at 32, bf16 and 16 (float16 with loss scaling). The same code runs
  unchanged on a GPU machine; here it prints that CUDA is absent.

Reported: median training samples/s (training steps plus the per-epoch validation, as
``FitResult.samples_per_second``), the ratio to the CPU baseline, and the validation MAE of
the first round (bf16 should learn about as well as 32).

    python benchmarks/device_speed.py [--n 3000] [--epochs 2] [--rounds 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

from mweight.config import resolve_config
from mweight.data import Dataset
from mweight.train import fit

T = 50  # word-aligned steps (MOSEI's usual padding length)
DIMS = {"text": 300, "audio": 74, "video": 35}  # GloVe 840B, COVAREP, FACET 4.2 (35 of MMSA's aligned set)


def mosei_like(n: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(22), 0.5, size=n).astype(int), 3, T)  # most segments are shorter than 50
    step = np.arange(T)[None, :] < lengths[:, None]
    # text: words drawn Zipf-like from a vocabulary of heavy-tailed vectors; a "sentiment axis" in it
    vocab = rng.standard_t(5, size=(5000, DIMS["text"])).astype(np.float32) * 0.3
    polarity = np.tanh(vocab[:, 0] * 3)
    words = np.minimum(rng.zipf(1.3, size=(n, T)) - 1, len(vocab) - 1)
    text = vocab[words] * step[..., None]
    # audio: skewed energies, log-like pitch, near-constant voicing flags
    audio = rng.gamma(2.0, 1.0, size=(n, T, DIMS["audio"])).astype(np.float32)
    audio[..., :5] = np.log1p(audio[..., :5]) * 40
    audio[..., 70:] = (rng.random((n, T, 4)) < 0.02).astype(np.float32)
    audio *= step[..., None]
    # video: bounded evidence, correlated through a shared expression factor
    shared = rng.normal(size=(n, T, 1))
    video = np.tanh(0.8 * shared + 0.6 * rng.normal(size=(n, T, DIMS["video"]))).astype(np.float32) * step[..., None]
    mean_pol = (polarity[words] * step).sum(1) / lengths
    energy = (audio[..., 5] * step).sum(1) / lengths
    smile = (video[..., 0] * step).sum(1) / lengths
    z = [(v - v.mean()) / v.std() for v in (mean_pol, energy, smile)]
    y = 1.2 * z[0] + 0.5 * z[1] + 0.4 * z[2] * np.sign(z[0])  # text strongest; a text x video interaction
    y = np.clip(y + 0.3 * rng.normal(size=n), -3, 3).astype(np.float32)
    video_id = np.arange(n) // 7  # ~7 segments per video, folds by whole videos
    n_vid = video_id.max() + 1
    fold = np.where(video_id < 0.7 * n_vid, "train", np.where(video_id < 0.8 * n_vid, "valid", "test"))
    return Dataset(modalities={"text": text.astype(np.float32), "audio": audio, "video": video}, label=y,
                   split=fold, id=np.array([f"v{v}_{i}" for i, v in enumerate(video_id)]),
                   lengths={m: lengths.copy() for m in DIMS})


def variants(cuda: bool) -> dict[str, dict]:
    out = {"cpu 32 (baseline)": {"device": "cpu", "precision": 32},
           "cpu bf16": {"device": "cpu", "precision": "bf16"},
           "cpu 32, batch 32": {"device": "cpu", "precision": 32, "batch_size": 32}}
    if cuda:
        out.update({"cuda 32": {"device": "cuda", "precision": 32},
                    "cuda bf16": {"device": "cuda", "precision": "bf16"},
                    "cuda 16": {"device": "cuda", "precision": 16}})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="segments (default 3000)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (train.threads; default 1)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ds = mosei_like(args.n)
    counts = ds.counts()
    print(f"MOSEI-shaped data: {args.n} segments ({counts['train']} train / {counts['valid']} valid), T = {T}, "
          f"text {DIMS['text']} / audio {DIMS['audio']} / video {DIMS['video']}, made in {time.perf_counter() - t0:.1f} s")
    cuda = torch.cuda.is_available()
    if not cuda:
        print("CUDA: not available here (torch " + torch.__version__ + "); GPU rows are skipped")
    var = variants(cuda)
    res: dict[str, list[tuple[float, float]]] = {k: [] for k in var}
    for r in range(args.rounds):
        for k in (list(var) if r % 2 == 0 else list(var)[::-1]):
            train = {"epochs": args.epochs, "patience": 1000, "progress": False, "threads": args.threads, **var[k]}
            cfg = resolve_config(preset="mosei-sequence", extra={"train": train})
            fr = fit(ds, cfg)
            res[k].append((fr.samples_per_second, fr.metrics["valid"]["mae"]))
            print(f"  round {r + 1}: {k:20s} {fr.samples_per_second:7.0f} samples/s", flush=True)
    base = statistics.median(s for s, _ in res["cpu 32 (baseline)"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nmosei-sequence preset (GRU 64/32/32, pairs, anova), {args.epochs} epochs, {args.threads} CPU thread(s); "
          f"median of {args.rounds} interleaved runs; load average {load:.1f}")
    tr, va = ds.part("train"), ds.part("valid")
    print(f"{'variant':22s} {'samples/s':>10s} {'ratio':>8s} {'valid MAE (round 1)':>20s}   "
          f"(predicting the training median: {np.abs(va.label - np.median(tr.label)).mean():.3f})")
    for k, v in res.items():
        m = statistics.median(s for s, _ in v)
        print(f"{k:22s} {m:10.0f} {m / base:7.2f}x {v[0][1]:20.3f}")
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {torch.__version__}" + (f", GPU {torch.cuda.get_device_name()}" if cuda else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
