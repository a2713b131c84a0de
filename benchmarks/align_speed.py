"""Benchmark: our vectorised alignment vs the CMU SDK's ``align`` on MOSI-sized files.

Builds synthetic ``.csd`` files in the exact SDK layout: COVAREP-like frames
(≈1M x 74 at 100 Hz over 93 videos, float64, with -inf and NaN) and words
(≈27k rows). Aligns the frames to the words (collapse = mean of finite values)
with ``mweight.prepare.align`` and with ``mmsdk`` (cmu-multimodal-sdk 0.0.6,
optional) in one run, using the SDK's epsilon for both, and prints both times,
the speed ratio, the max abs difference, and the peak memory (ru_maxrss) of a
subprocess that runs only our path (read + align).

    python benchmarks/align_speed.py [--videos 93] [--seconds 107.5] [--no-sdk]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mweight.prepare.align import align, as_sdk_entries, sdk_mean_collapse  # noqa: E402
from mweight.prepare.csd import read_csd, write_csd  # noqa: E402


def build(directory: Path, videos: int, seconds: float, seed: int = 0) -> tuple[Path, Path, dict]:
    rng = np.random.default_rng(seed)
    words, frames = {}, {}
    n_frames = n_words = 0
    for v in range(videos):
        vid = f"vid{v:03d}_{rng.integers(1e6):06d}"
        t = np.round(np.arange(0.0, seconds, 0.01), 2)
        f = rng.normal(size=(len(t), 74))
        f[rng.random(f.shape) < 0.01] = -np.inf
        f[rng.random(f.shape) < 0.01] = np.nan
        frames[vid] = (f, np.stack([t, t + 0.01], 1))
        b = np.cumsum(rng.uniform(0.15, 0.6, int(seconds / 0.37)))
        b = b[b < seconds - 0.01]
        iv = np.stack([b[:-1], b[1:]], 1)
        tok = np.where(rng.random(len(iv)) < 0.16, "sp", "word").astype("S12")[:, None]
        words[vid] = (tok, iv)
        n_frames += len(t)
        n_words += len(iv)
    a, w = directory / "CMU_MOSI_COVAREP.csd", directory / "CMU_MOSI_TimestampedWords.csd"
    write_csd(a, "COAVAREP", frames)
    write_csd(w, "CMU_MOSI_TimestampedWords", words)
    return a, w, {"videos": videos, "frames": n_frames, "words": n_words, "dim": 74}


def ours(audio: Path, words: Path, epsilon: float):
    t0 = time.perf_counter()
    W, A = read_csd(words), read_csd(audio)
    result = align(W.data, A.data, "mean", epsilon)
    return result, time.perf_counter() - t0


def child(audio: str, words: str, epsilon: float) -> None:
    _, seconds = ours(Path(audio), Path(words), epsilon)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=93)
    ap.add_argument("--seconds", type=float, default=107.5, help="length of each video (93 x 107.5 s at 100 Hz = 1.0M frames)")
    ap.add_argument("--no-sdk", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], float(args.child[2]))
        return
    try:
        import mmsdk.mmdatasdk as mmdatasdk
        import mmsdk.mmdatasdk.dataset.dataset as sdk_dataset

        epsilon = sdk_dataset.epsilon
    except ImportError:
        mmdatasdk, epsilon = None, 1e-5
    with tempfile.TemporaryDirectory() as tmp:
        audio, words, sizes = build(Path(tmp), args.videos, args.seconds)
        print(f"data: {sizes['videos']} videos, {sizes['frames']:,} frames x {sizes['dim']} (float64, -inf/NaN), "
              f"{sizes['words']:,} words; epsilon {epsilon:g}")
        proc = subprocess.run([sys.executable, __file__, "--child", str(audio), str(words), repr(epsilon)],
                              capture_output=True, text=True, check=True)
        mem = json.loads(proc.stdout)
        result, t_ours = ours(audio, words, epsilon)
        print(f"mweight (read + align, numpy): {t_ours:8.2f} s   peak memory (separate process, ru_maxrss) {mem['peak_mb']:.0f} MB")
        if mmdatasdk is None or args.no_sdk:
            print("mmsdk not installed (pip install cmu-multimodal-sdk==0.0.6): no comparison")
            return
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ds = mmdatasdk.mmdataset({"words": str(words), "covarep": str(audio)})
            ds.align("words", collapse_functions=[sdk_mean_collapse])
        t_sdk = time.perf_counter() - t0
        print(f"mmsdk 0.0.6 (read + align):    {t_sdk:8.2f} s")
        mine, theirs = as_sdk_entries(result), ds["covarep"].data
        assert set(mine) == set(theirs), "different aligned keys"
        diff = 0.0
        for k, v in theirs.items():
            a, b = mine[k]["features"], v["features"]
            assert (np.isnan(a) == np.isnan(b)).all(), k
            diff = max(diff, float(np.nanmax(np.abs(a - b), initial=0.0)), float(np.abs(mine[k]["intervals"] - v["intervals"]).max()))
        print(f"aligned rows: {len(mine):,} (identical keys); max abs diff {diff:.3g}")
        print(f"speed-up: {t_sdk / t_ours:.1f}x")


if __name__ == "__main__":
    main()
