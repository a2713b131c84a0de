"""Benchmark: ``mweight prepare mosei`` on a semi-synthetic MOSEI-sized ``.csd`` set.

Semi-synthetic: the skeleton is real (the 3,227 video ids of the standard MOSEI
folds; MOSEI's totals: ~65.9 h of video, ~23.5k labelled segments, so ~73 s and
~7.3 segments per video on average), the values are generated: video lengths
log-normal around that mean, words every 0.15-0.6 s with ~15% ``sp`` pauses,
COVAREP-like 74-d frames at 100 Hz (float32, log-normal, with -inf), FACET-like
35-d frames at 30 Hz (with NaN), and the 7-column "All Labels" file (sentiment,
six emotions). Everything is written, one video at a time, into a temporary
directory that is deleted at the end (never committed).

In one run it measures:

1. the raw HDF5 read time: every video's features and intervals of every file
   read with h5py, once before and once after step 2;
2. ``mweight prepare mosei --csd-dir DIR --out OUT.npz`` as a subprocess: wall
   time and peak memory (ru_maxrss of the child), and the ratio of its wall time
   to the raw read time;
3. the CMU SDK (``mmsdk`` 0.0.6) aligning COVAREP and FACET to the words on a
   subset of videos (read + align, mean collapse), extrapolated linearly in the
   number of frames to the whole set.

    python benchmarks/mosei_prepare.py [--videos 3227] [--sdk-videos 20] [--scale 1.0] [--workdir DIR] [--stages]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mweight.prepare.align import sdk_mean_collapse  # noqa: E402
from mweight.prepare.csd import write_csd  # noqa: E402
from mweight.prepare.folds import mosei_split_of_video  # noqa: E402

MEAN_SECONDS = 73.5  # 65.9 h / 3,228 videos
MEAN_SEGMENTS = 7.3  # 23,453 segments / 3,228 videos
ROLES = {"words": ("CMU_MOSEI_TimestampedWords", 0), "audio": ("CMU_MOSEI_COVAREP", 1),
         "video": ("CMU_MOSEI_VisualFacet42", 2), "labels": ("CMU_MOSEI_Labels", 3)}


class Video:
    """One video's generated sequences, the same on every call (seeded by video index)."""

    def __init__(self, index: int, scale: float):
        rng = np.random.default_rng([0, index])
        self.index = index
        self.seconds = float(np.clip(rng.lognormal(np.log(MEAN_SECONDS) - 0.18, 0.6), 8, 600) * scale)
        self.n_segments = int(np.clip(rng.poisson(MEAN_SEGMENTS - 1) + 1, 1, max(1, int(self.seconds / 3))))

    def sequence(self, role: str):
        rng = np.random.default_rng([1, self.index, ROLES[role][1]])
        if role == "words":
            b = np.cumsum(rng.uniform(0.15, 0.6, int(self.seconds / 0.15) + 2))
            b = b[b < self.seconds]
            # ~15% pauses, never two in a row, so every labelled segment (>= 1.5 s) keeps a word
            sp = (rng.random(len(b) - 1) < 0.3) & (np.arange(len(b) - 1) % 2 == 1)
            tok = np.where(sp, b"sp", b"word").astype("S8")
            return tok[:, None], np.stack([b[:-1], b[1:]], 1)
        if role in ("audio", "video"):
            rate, dim, bad = (100.0, 74, -np.inf) if role == "audio" else (30.0, 35, np.nan)
            t = np.arange(0.0, self.seconds, 1.0 / rate)
            f = rng.lognormal(0.0, 0.7, (len(t), dim)).astype(np.float32)
            f[rng.random(len(t)) < 0.01, :5] = bad  # COVAREP: -inf on silent frames; FACET: NaN without a face
            return f, np.stack([t, t + 1.0 / rate], 1)
        edges = np.linspace(0, self.seconds, self.n_segments + 1)
        start = edges[:-1] + rng.uniform(0, 0.2, self.n_segments) * np.diff(edges)
        end = start + rng.uniform(0.5, 0.8, self.n_segments) * np.diff(edges)
        labels = np.column_stack([np.clip(rng.normal(0.6, 1.2, self.n_segments), -3, 3),
                                  np.where(rng.random((self.n_segments, 6)) < 0.6, 0, rng.uniform(0, 3, (self.n_segments, 6)))])
        return labels, np.stack([start, end], 1)


class Generated(Mapping):
    """``video_id -> (features, intervals)`` of one role, generated on access (memory: one video)."""

    def __init__(self, videos: dict[str, Video], role: str):
        self.videos, self.role = videos, role

    def __getitem__(self, vid):
        return self.videos[vid].sequence(self.role)

    def __iter__(self):
        return iter(self.videos)

    def __len__(self):
        return len(self.videos)


def build(directory: Path, ids: list[str], scale: float) -> dict:
    videos = {vid: Video(k, scale) for k, vid in enumerate(ids)}
    for role, (name, _) in ROLES.items():
        write_csd(directory / f"{name}.csd", name.replace("CMU_MOSEI_", ""), Generated(videos, role))
    seconds = sum(v.seconds for v in videos.values())
    return {"videos": len(videos), "hours": seconds / 3600, "segments": sum(v.n_segments for v in videos.values()),
            "covarep_frames": int(sum(len(np.arange(0.0, v.seconds, 0.01)) for v in videos.values())),
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


def prepare(directory: Path, out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mweight", "prepare", "mosei", "--csd-dir", str(directory), "--out", str(out)],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall": wall, "peak_mb": peak, "stdout": proc.stdout.strip(), "stderr": proc.stderr.strip()}


def stages_child(directory: str, out: str) -> None:
    """Run the preparation in this process and print the peak resident memory per stage
    (stages = the progress bars of the pipeline, then finish and write), sampled every 0.2 s."""
    import threading

    from mweight.prepare import datasets, pipeline

    stage, peaks, done = ["start-up"], {}, threading.Event()

    def rss_mb() -> float:
        with open("/proc/self/status") as fh:
            return next(int(ln.split()[1]) / 1024 for ln in fh if ln.startswith("VmRSS"))

    def sampler():
        while not done.is_set():
            peaks[stage[0]] = max(peaks.get(stage[0], 0.0), rss_mb())
            time.sleep(0.2)

    def named(fn, name):
        def wrapper(*a, **k):
            stage[0] = name if name else a[1]
            return fn(*a, **k)
        return wrapper

    pipeline.progress = named(pipeline.progress, None)  # the stage is the progress bar's label
    pipeline.finish = named(pipeline.finish, "finish (sort, check, meta)")
    pipeline.write_dataset = named(pipeline.write_dataset, "write_dataset (compressed .npz)")
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    pipeline.prepare_csd(out, datasets.mosei(), csd_dir=directory)
    done.set()
    thread.join()
    for name, mb in peaks.items():
        print(f"  {mb:6.0f} MB  {name}")


def sdk_subset(directory: Path, ids: list[str], scale: float) -> dict | None:
    """The SDK's read + align of COVAREP and FACET to the words for the first ``ids``."""
    try:
        import mmsdk.mmdatasdk as mmdatasdk
    except ImportError:
        return None
    videos = {vid: Video(k, scale) for k, vid in enumerate(ids)}
    files = {}
    for role in ("words", "audio", "video"):
        name = ROLES[role][0]
        files[role] = str(directory / f"subset_{name}.csd")
        write_csd(files[role], name.replace("CMU_MOSEI_", ""), Generated(videos, role))
    frames = int(sum(len(np.arange(0.0, v.seconds, 0.01)) for v in videos.values()))
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ds = mmdatasdk.mmdataset(files)
        ds.align("words", collapse_functions=[sdk_mean_collapse])
    return {"seconds": time.perf_counter() - t0, "videos": len(ids), "covarep_frames": frames}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=3227, help="number of videos (default: all of the standard folds)")
    ap.add_argument("--sdk-videos", type=int, default=20, help="videos in the SDK subset (0: skip the SDK)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every video's length (1.0: MOSEI-sized)")
    ap.add_argument("--tmp", default=None, help="where the temporary directory goes (default: the system's)")
    ap.add_argument("--workdir", default=None, help="generate into this folder and keep it; a later run with the same "
                                                    "options reuses it (never inside the repository)")
    ap.add_argument("--stages", action="store_true", help="also print the peak resident memory per stage of the "
                                                           "preparation (a second run, in a child process)")
    ap.add_argument("--stages-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stages_child:
        stages_child(*args.stages_child)
        return
    ids = list(mosei_split_of_video())[: args.videos]
    with tempfile.TemporaryDirectory(prefix="mosei_bench_", dir=args.tmp) as tmp:
        directory = Path(args.workdir or Path(tmp) / "csd")
        directory.mkdir(parents=True, exist_ok=True)
        stamp = directory / "generated.json"
        t0 = time.perf_counter()
        if stamp.is_file() and json.loads(stamp.read_text())["options"] == [args.videos, args.scale]:
            sizes = json.loads(stamp.read_text())["sizes"]
            made = "reused from --workdir"
        else:
            sizes = build(directory, ids, args.scale)
            stamp.write_text(json.dumps({"options": [args.videos, args.scale], "sizes": sizes}))
            made = f"generated in {time.perf_counter() - t0:.0f} s"
        print(f"data: {sizes['videos']} videos, {sizes['hours']:.1f} h, {sizes['segments']:,} labelled segments, "
              f"{sizes['covarep_frames']:,} COVAREP frames x 74 + FACET x 35 at 30 Hz (float32), "
              f"{sizes['bytes'] / 1e9:.2f} GB of .csd ({made})")
        read1 = raw_read(directory)
        res = prepare(directory, Path(tmp) / "mosei.npz")
        read2 = raw_read(directory)
        raw = (read1 + read2) / 2
        print(f"raw HDF5 read (h5py, every video of every file): {read1:.1f} s before, {read2:.1f} s after, mean {raw:.1f} s")
        print(f"mweight prepare mosei: {res['wall']:.1f} s wall, peak memory {res['peak_mb']:.0f} MB (ru_maxrss of the "
              f"child), {res['wall'] / raw:.2f}x the raw read; output {(Path(tmp) / 'mosei.npz').stat().st_size / 1e9:.2f} GB")
        print("  " + res["stdout"])
        for line in res["stderr"].splitlines():
            print("  " + line)
        if args.stages:
            stage_out = Path(tmp) / "stages.npz"
            print("peak resident memory per stage of a second, in-process run (sampled every 0.2 s):")
            sys.stdout.flush()
            subprocess.run([sys.executable, __file__, "--stages-child", str(directory), str(stage_out)], check=True)
        if args.sdk_videos:
            sdk = sdk_subset(Path(tmp), ids[: args.sdk_videos], args.scale)
            if sdk is None:
                print("mmsdk not installed (pip install cmu-multimodal-sdk==0.0.6): no SDK comparison")
            else:
                factor = sizes["covarep_frames"] / sdk["covarep_frames"]
                est = sdk["seconds"] * factor
                print(f"mmsdk 0.0.6 read + align (COVAREP and FACET to words) on {sdk['videos']} videos "
                      f"({sdk['covarep_frames']:,} COVAREP frames): {sdk['seconds']:.1f} s; linear extrapolation x{factor:.0f} "
                      f"to the whole set: {est:.0f} s = {est / 3600:.1f} h ({est / res['wall']:.0f}x mweight's whole prepare)")
    load = os.getloadavg()[0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {load:.1f} at the end")
    print(json.dumps({"raw_read_s": raw, "prepare_s": res["wall"], "peak_mb": res["peak_mb"]}))


if __name__ == "__main__":
    main()
