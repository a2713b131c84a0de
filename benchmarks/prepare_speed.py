"""Benchmark: ``mweight prepare mosi`` on MOSI-sized ``.csd`` files vs the raw HDF5 read of the same files.

Writes a MOSI-sized set of computational sequences in the exact CMU-SDK layout
into a folder outside the repository: the 93 video ids of the standard MOSI
folds, 14,493 s of video in all (MOSI's total, from the real words file), video
lengths 55-180 s; 2,199 labelled segments; ~51k words every 0.12-0.45 s with
~16% ``sp`` pauses (fixed-width byte strings, as the real words file);
GloVe-like 300-d word vectors, COVAREP-like 74-d frames at 100 Hz and
FACET-4.1-like 47-d frames at 30 Hz (all float64 as in the SDK's files, skewed
and correlated columns, -inf resp. NaN on 1% of the frames). Videos are written
in a shuffled order, so, as in the real SDK files, the order of the datasets in
the file is not the order of the group's keys.

Then, in one run and interleaved for ``--rounds`` rounds (other jobs share the
machine; the median of the per-round ratios is the figure):

1. the raw HDF5 read: h5py reads every video's ``features`` and ``intervals`` of
   every file (in the group's key order; no processing);
2. ``mweight prepare mosi --csd-dir DIR --out OUT.npz`` as a subprocess (wall time);
3. with ``--baseline-src DIR`` (a checkout of an older commit, e.g.
   ``git archive <commit> | tar -x -C DIR``) the same command run with that
   code, and a check that both outputs hold identical arrays.

``--stages`` also runs the preparation in-process under cProfile and prints the
time per stage (read, hash, align, write).

    python benchmarks/prepare_speed.py [--rounds 3] [--workdir DIR] [--baseline-src DIR] [--compress] [--stages]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mweight.prepare.csd import write_csd  # noqa: E402
from mweight.prepare.folds import mosi_split_of_video  # noqa: E402

TOTAL_SECONDS = 14_493.0  # the real MOSI words file: last word end summed over the 93 videos
SEGMENTS = 2199
FILES = {"labels": "CMU_MOSI_Opinion_Labels", "words": "CMU_MOSI_TimestampedWords",
         "text": "CMU_MOSI_TimestampedWordVectors", "audio": "CMU_MOSI_COVAREP", "video": "CMU_MOSI_Visual_Facet_41"}
ROOTS = {"labels": "Opinion Segment Labels", "words": "words", "text": "glove_vectors", "audio": "COVAREP",
         "video": "FACET_4.1"}
VOCAB = np.array([f"w{k}".encode() for k in range(4000)] + [b"sp"] * 760, dtype="S12")  # ~16% pauses


class Video:
    """One video's generated sequences, the same on every call (seeded by video index)."""

    def __init__(self, index: int, seconds: float, n_segments: int):
        self.index, self.seconds, self.n_segments = index, seconds, n_segments

    def _words(self):
        rng = np.random.default_rng([1, self.index])
        b = np.cumsum(rng.uniform(0.12, 0.45, int(self.seconds / 0.12) + 2))
        b = b[b < self.seconds]
        return VOCAB[rng.integers(0, len(VOCAB), len(b) - 1)][:, None], np.stack([b[:-1], b[1:]], 1)

    def sequence(self, role: str):
        rng = np.random.default_rng([2, self.index, list(FILES).index(role)])
        if role == "words":
            return self._words()
        if role == "text":
            tok, iv = self._words()
            f = rng.standard_normal((len(iv), 300)) * 0.4
            f[tok[:, 0] == b"sp"] = 0.0  # GloVe has no vector for the pause token
            return f, iv
        if role in ("audio", "video"):
            rate, dim, bad = (100.0, 74, -np.inf) if role == "audio" else (30.0, 47, np.nan)
            t = np.arange(0.0, self.seconds, 1.0 / rate)
            f = rng.standard_normal((len(t), dim))
            f[:, 1:] += 0.5 * f[:, :1]  # correlated columns
            np.exp(f[:, : dim // 3], out=f[:, : dim // 3])  # and skewed ones
            f[rng.random(len(t)) < 0.01, : dim // 4] = bad
            return f, np.stack([t, t + 1.0 / rate], 1)
        edges = np.linspace(0.2, self.seconds - 0.2, self.n_segments + 1)
        start = edges[:-1] + rng.uniform(0, 0.15, self.n_segments) * np.diff(edges)
        end = start + rng.uniform(0.6, 0.85, self.n_segments) * np.diff(edges)
        return np.clip(rng.normal(0.3, 1.5, (self.n_segments, 1)), -3, 3), np.stack([start, end], 1)


class Generated(Mapping):
    """``video_id -> (features, intervals)`` of one role, generated on access, in the writing order."""

    def __init__(self, videos: dict[str, Video], role: str):
        self.videos, self.role = videos, role

    def __getitem__(self, vid):
        return self.videos[vid].sequence(self.role)

    def __iter__(self):
        return iter(self.videos)

    def __len__(self):
        return len(self.videos)


def build(directory: Path, seed: int = 0) -> dict:
    ids = sorted(mosi_split_of_video())
    rng = np.random.default_rng(seed)
    seconds = rng.uniform(55, 180, len(ids))
    seconds *= TOTAL_SECONDS / seconds.sum()
    segs = np.maximum(1, np.round(SEGMENTS * seconds / TOTAL_SECONDS)).astype(int)
    segs[np.argmax(segs)] += SEGMENTS - segs.sum()
    order = rng.permutation(len(ids))  # file layout order != key order, as in the real SDK files
    videos = {ids[k]: Video(int(k), float(seconds[k]), int(segs[k])) for k in order}
    for role, name in FILES.items():
        write_csd(directory / f"{name}.csd", ROOTS[role], Generated(videos, role))
    n_words = sum(len(v._words()[1]) for v in videos.values())
    return {"videos": len(ids), "seconds": float(seconds.sum()), "segments": int(segs.sum()), "words": n_words,
            "covarep_frames": int(sum(len(np.arange(0.0, s, 0.01)) for s in seconds)),
            "bytes": sum(p.stat().st_size for p in directory.glob("*.csd"))}


def raw_read(directory: Path) -> float:
    """Every video's features and intervals of every file, read with h5py (no processing)."""
    import h5py

    t0 = time.perf_counter()
    for path in sorted(directory.glob("*.csd")):
        with h5py.File(path, "r") as h:
            data = h[next(iter(h.keys()))]["data"]
            for vid in data:
                data[vid]["features"][()]
                data[vid]["intervals"][()]
    return time.perf_counter() - t0


def prepare(directory: Path, out: Path, src: Path, extra: list[str]) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(src))
    if out.exists():
        out.unlink()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mweight", "prepare", "mosi", "--csd-dir", str(directory),
                           "--out", str(out), *extra], capture_output=True, text=True, env=env, cwd=str(src))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"prepare failed ({src}):\n{proc.stderr}")
    return wall, proc.stdout.strip()


def same_arrays(a: Path, b: Path) -> str:
    """Compare every array of two datasets (meta_json aside): 'identical' or what differs."""
    with np.load(a) as x, np.load(b) as y:
        if set(x.files) != set(y.files):
            return f"different keys: {sorted(set(x.files) ^ set(y.files))}"
        for k in x.files:
            if k == "meta_json":
                continue
            u, v = x[k], y[k]
            if u.dtype != v.dtype or u.shape != v.shape or u.tobytes() != v.tobytes():
                return f"array {k!r} differs"
    return "identical"


def stages(directory: Path, out: Path, compress: bool) -> None:
    """The preparation in this process under cProfile: time per stage (cumulative seconds)."""
    import cProfile
    import pstats

    from mweight.prepare import mosi

    kwargs = {"compress": compress} if compress else {}
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    mosi.prepare_csd(out, csd_dir=directory, **kwargs)
    prof.disable()
    wall = time.perf_counter() - t0
    st = pstats.Stats(prof)
    rows = {}
    for (filename, _, name), (_, _, _, cum, _) in st.stats.items():
        rows.setdefault(name, 0.0)
        rows[name] = max(rows[name], cum)
    print(f"in-process preparation under cProfile: {wall:.2f} s; cumulative time of the stages:")
    wanted = ["_read_video", "read_direct", "_read_file", "readinto", "update", "sha256_of", "sha256", "file_sha256",
              "align_video", "finite_mean_reduce", "overlaps", "_segment_words", "_word_level", "finish",
              "write_dataset", "savez_compressed", "savez", "_savez", "map", "result", "_wait_for_tstate_lock"]
    for name in wanted:
        if name in rows and rows[name] >= 0.01:
            print(f"  {rows[name]:6.2f} s  {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of (raw read, prepare[, baseline])")
    ap.add_argument("--workdir", default=None, help="generate into this folder and keep it for a re-run (never inside the repository)")
    ap.add_argument("--baseline-src", default=None, help="a source tree of older mweight code to time side by side")
    ap.add_argument("--compress", action="store_true", help="pass --compress to the (new) prepare")
    ap.add_argument("--stages", action="store_true", help="also profile one in-process preparation (time per stage)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mosi_prepare_bench_") as tmp:
        directory = Path(args.workdir or Path(tmp) / "csd")
        directory.mkdir(parents=True, exist_ok=True)
        stamp = directory / "generated.json"
        t0 = time.perf_counter()
        if stamp.is_file():
            sizes, made = json.loads(stamp.read_text()), "reused from --workdir"
        else:
            sizes = build(directory)
            stamp.write_text(json.dumps(sizes))
            made = f"generated in {time.perf_counter() - t0:.0f} s"
        print(f"data: {sizes['videos']} videos, {sizes['seconds']:,.0f} s, {sizes['segments']:,} labelled segments, "
              f"{sizes['words']:,} words (300-d vectors), {sizes['covarep_frames']:,} COVAREP frames x 74 + FACET x 47 "
              f"at 30 Hz (float64), {sizes['bytes'] / 1e9:.2f} GB of .csd in 5 files ({made})")
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"load average before: {os.getloadavg()[0]:.2f}")
        extra = ["--compress"] if args.compress else []
        raw_read(directory)  # warm the page cache: every timing below reads from memory
        rows = []
        out, old_out = Path(tmp) / "mosi.npz", Path(tmp) / "mosi_baseline.npz"
        for r in range(args.rounds):
            row = {"raw": raw_read(directory)}
            row["prepare"], summary = prepare(directory, out, REPO, extra)
            if args.baseline_src:
                row["baseline"], _ = prepare(directory, old_out, Path(args.baseline_src), [])
            row["load"] = os.getloadavg()[0]
            rows.append(row)
            base = f"   baseline {row['baseline']:5.2f} s ({row['baseline'] / row['raw']:.2f}x)" if "baseline" in row else ""
            print(f"round {r + 1}: raw read {row['raw']:5.2f} s   prepare {row['prepare']:5.2f} s "
                  f"({row['prepare'] / row['raw']:.2f}x){base}   load {row['load']:.2f}")
        print("  " + summary)
        med = {k: statistics.median(x[k] for x in rows) for k in rows[0]}
        ratio = statistics.median(x["prepare"] / x["raw"] for x in rows)
        print(f"median: raw read {med['raw']:.2f} s, mweight prepare mosi{' --compress' if args.compress else ''} "
              f"{med['prepare']:.2f} s; ratio prepare / raw read {ratio:.2f}x (median of the rounds)")
        print(f"output {out.stat().st_size / 1e6:.0f} MB")
        if args.baseline_src:
            bratio = statistics.median(x["baseline"] / x["raw"] for x in rows)
            print(f"baseline ({args.baseline_src}): {med['baseline']:.2f} s, {bratio:.2f}x the raw read, output "
                  f"{old_out.stat().st_size / 1e6:.0f} MB; arrays vs the new output: {same_arrays(out, old_out)}")
        if args.stages:
            stages(directory, Path(tmp) / "stages.npz", args.compress)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print(json.dumps({"raw_read_s": med["raw"], "prepare_s": med["prepare"], "ratio": ratio}))


if __name__ == "__main__":
    main()
