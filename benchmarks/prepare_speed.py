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

``--cold`` times every step also with the files dropped from the page cache
first (``posix_fadvise(DONTNEED)`` on this benchmark's files only), i.e. read
from the disk as after a download some time ago. CPU = user + system time of
the command's whole process tree: the work done, whatever the load.
``--stages`` runs one preparation (and the baseline's) in a single process
under cProfile, without worker processes, and prints the time per stage (read,
hash, align, words, write). ``--executors N`` runs the jobs on 2 worker
processes (the default), on 2 threads, and all in one process, N interleaved
runs each. ``--memory`` samples the peak memory of the command's process tree.

    python benchmarks/prepare_speed.py [--rounds 3] [--workdir DIR] [--baseline-src DIR] [--compress] [--cold]
                                       [--stages] [--executors N] [--memory]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("MWEIGHT_BENCH_SRC", str(REPO)))  # --stages runs the baseline's code through this

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


# ``video_id -> (features, intervals)`` of one role, generated on access (the MOSEI benchmark's
# mapping; this script's videos have the same ``sequence(role)``). Script folder is on sys.path.
from mosei_prepare import Generated  # noqa: E402


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


def evict(directory: Path) -> None:
    """Drop this benchmark's .csd files (only them) from the page cache: the next read comes from the disk."""
    for path in directory.glob("*.csd"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def raw_read(directory: Path, cold: bool = False) -> float:
    """Every video's features and intervals of every file, read with h5py (no processing);
    ``cold``: after evicting the files from the page cache."""
    from mosei_prepare import raw_read as read_all

    if cold:
        evict(directory)
    return read_all(directory)


def prepare(directory: Path, out: Path, src: Path, extra: list[str], cold: bool = False) -> tuple[float, float, str]:
    """``mweight prepare mosi`` as a subprocess with the code in ``src``: (wall s, CPU s of the child tree, stdout)."""
    env = dict(os.environ, PYTHONPATH=str(src))
    if out.exists():
        out.unlink()
    if cold:
        evict(directory)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mweight", "prepare", "mosi", "--csd-dir", str(directory),
                           "--out", str(out), *extra], capture_output=True, text=True, env=env, cwd=str(src))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"prepare failed ({src}):\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout.strip()


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


def stages_child(directory: str, out: str, compress: bool) -> None:
    """One preparation in this process under cProfile (the code on sys.path: new or baseline), all work in
    this thread (no worker process, no read-ahead thread), so every stage is seen; prints JSON (wall s)."""
    import cProfile
    import pstats

    from mweight.prepare import mosi, pipeline

    new = hasattr(pipeline, "FileJob")
    kwargs = {}
    if new:  # jobs in this process, no read-ahead thread
        def plain(data, order):
            for vid in order:
                yield vid, data[vid]

        pipeline._read_ahead = plain
        kwargs = {"workers": 0, "compress": compress}
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    mosi.prepare_csd(out, csd_dir=directory, **kwargs)
    prof.disable()
    total = time.perf_counter() - t0
    cum: dict[str, float] = {}
    for (_, _, name), (_, _, tottime, cumtime, _) in pstats.Stats(prof).stats.items():
        key = "hashlib" if "_hashlib.HASH" in name and "update" in name else name
        cum[key] = cum.get(key, 0.0) + (tottime if key == "hashlib" else cumtime)
    hashing = cum.get("hashlib", 0.0)
    # new code: the hash runs inside the reads (HashingReader.readinto); old code: sha256_of reads each file again
    read = cum.get("_read_video", 0.0) + cum.get("intervals", 0.0) - (hashing if new else 0.0)
    reread = max(cum.get("sha256_of", 0.0) - hashing, 0.0) if not new else cum.get("_hash_file", 0.0)
    result = {"read (h5py, checks)": read, "hash (hashlib)": hashing, "file reads for the hash only": reread,
              "align to the words": cum.get("align_video", 0.0), "write .npz": cum.get("write_dataset", 0.0)}
    result["rest (words pass, scatter, sort)"] = total - sum(result.values())
    result["total (one process, profiled)"] = total
    print(json.dumps(result))


def stages(directory: Path, tmp: Path, compress: bool, baseline: str | None) -> None:
    rows = {}
    for name, src in [("after", REPO)] + ([("before", Path(baseline))] if baseline else []):
        env = dict(os.environ, PYTHONPATH=str(src), MWEIGHT_BENCH_SRC=str(src))
        proc = subprocess.run([sys.executable, __file__, "--stages-child", str(directory), str(tmp / f"stages_{name}.npz"),
                               *(["--compress"] if compress and name == "after" else [])],
                              capture_output=True, text=True, env=env, check=True)
        rows[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    cols = [c for c in ("before", "after") if c in rows]
    print("time per stage, one process under cProfile (overhead included), no worker process: the work, not the overlap (s):")
    print(f"  {'stage':34s}" + "".join(f"{c:>9s}" for c in cols))
    for stage in rows["after"]:
        print(f"  {stage:34s}" + "".join(f"{rows[c][stage]:9.2f}" for c in cols))


EXECUTOR_RUN = """
import os, sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from mweight.prepare import mosi, pipeline
mode = sys.argv[3]
if mode == "threads":  # the same jobs on a pool of 2 threads instead of worker processes
    @contextmanager
    def threads(workers, n_jobs):
        with ThreadPoolExecutor(2) as pool:
            yield pool
    pipeline._pool = threads
mosi.prepare_csd(sys.argv[2], csd_dir=sys.argv[1], workers=0 if mode == "in-process" else None)
"""


def executors(directory: Path, tmp: Path, rounds: int) -> None:
    """The jobs on 2 worker processes (the default), on 2 threads, or all in one process: wall and CPU."""
    res: dict[str, list[tuple[float, float]]] = {"processes": [], "threads": [], "in-process": []}
    out = tmp / "executor.npz"
    for _ in range(rounds):
        for mode in res:
            if out.exists():
                out.unlink()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", EXECUTOR_RUN, str(directory), str(out), mode], check=True,
                           env=dict(os.environ, PYTHONPATH=str(REPO)))
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            res[mode].append((time.perf_counter() - t0, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))
    print(f"jobs on 2 processes / 2 threads / in one process, median of {rounds} interleaved runs "
          f"(load average {os.getloadavg()[0]:.1f}):")
    for mode, v in res.items():
        print(f"  {mode:11s} wall {statistics.median(x[0] for x in v):5.2f} s   CPU {statistics.median(x[1] for x in v):5.2f} s")


def _tree_rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory of a process and its children (sum, largest), from /proc."""
    pids = {pid}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.add(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    sizes = []
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as fh:
                sizes.append(next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS")) / 1024)
        except (OSError, StopIteration):
            pass
    return sum(sizes), max(sizes, default=0.0)


def memory(directory: Path, tmp: Path, baseline: str | None) -> None:
    """Peak resident memory of `mweight prepare mosi` (sum over its process tree, sampled every 50 ms)."""
    for name, src in [("mweight prepare mosi", REPO)] + ([("baseline", Path(baseline))] if baseline else []):
        out = tmp / "memory.npz"
        if out.exists():
            out.unlink()
        proc = subprocess.Popen([sys.executable, "-m", "mweight", "prepare", "mosi", "--csd-dir", str(directory),
                                 "--out", str(out)], env=dict(os.environ, PYTHONPATH=str(src)), cwd=str(src),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = largest = 0.0
        while proc.poll() is None:
            total, one = _tree_rss_mb(proc.pid)
            peak, largest = max(peak, total), max(largest, one)
            time.sleep(0.05)
        print(f"peak memory, {name}: {peak:.0f} MB over its processes (largest process {largest:.0f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of (raw read, prepare[, baseline])")
    ap.add_argument("--workdir", default=None, help="generate into this folder and keep it for a re-run (never inside the repository)")
    ap.add_argument("--baseline-src", default=None, help="a source tree of older mweight code to time side by side")
    ap.add_argument("--compress", action="store_true", help="pass --compress to the (new) prepare")
    ap.add_argument("--cold", action="store_true", help="also time every step with the .csd files dropped from the page "
                                                        "cache first (posix_fadvise DONTNEED on these files only)")
    ap.add_argument("--stages", action="store_true", help="also profile one in-process preparation (time per stage)")
    ap.add_argument("--executors", type=int, default=0, metavar="N",
                    help="also run the jobs on processes / threads / in one process, N interleaved runs each")
    ap.add_argument("--memory", action="store_true", help="also sample the peak memory of the command (and the baseline's)")
    ap.add_argument("--stages-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stages_child:
        stages_child(*args.stages_child, args.compress)
        return
    with tempfile.TemporaryDirectory(prefix="mosi_prepare_bench_") as tmp:
        tmp = Path(tmp)
        directory = Path(args.workdir or tmp / "csd")
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
        out, old_out = tmp / "mosi.npz", tmp / "mosi_baseline.npz"
        modes = ["warm"] + (["cold"] if args.cold else [])
        rows: dict[str, list[dict]] = {m: [] for m in modes}
        raw_read(directory)  # warm the page cache
        for r in range(args.rounds):
            for mode in modes:
                cold = mode == "cold"
                row = {"raw": raw_read(directory, cold)}
                row["prepare"], row["cpu"], summary = prepare(directory, out, REPO, extra, cold)
                if args.baseline_src:
                    row["baseline"], row["baseline_cpu"], _ = prepare(directory, old_out, Path(args.baseline_src), [], cold)
                row["load"] = os.getloadavg()[0]
                rows[mode].append(row)
                base = (f" | baseline {row['baseline']:5.2f} s ({row['baseline'] / row['raw']:5.2f}x, CPU {row['baseline_cpu']:4.1f} s)"
                        if "baseline" in row else "")
                print(f"round {r + 1} {mode}: raw read {row['raw']:5.2f} s | prepare {row['prepare']:5.2f} s "
                      f"({row['prepare'] / row['raw']:5.2f}x, CPU {row['cpu']:4.1f} s){base} | load {row['load']:.2f}")
        print("  " + summary)
        result = {}
        for mode in modes:
            med = {k: statistics.median(x[k] for x in rows[mode]) for k in rows[mode][0]}
            ratio = statistics.median(x["prepare"] / x["raw"] for x in rows[mode])
            line = (f"{mode} page cache, median of {args.rounds}: raw read {med['raw']:.2f} s; mweight prepare mosi"
                    f"{' --compress' if args.compress else ''} {med['prepare']:.2f} s = {ratio:.2f}x the raw read")
            if args.baseline_src:
                bratio = statistics.median(x["baseline"] / x["raw"] for x in rows[mode])
                line += f"; baseline {med['baseline']:.2f} s = {bratio:.2f}x"
            print(line)
            result[mode] = {"raw_read_s": med["raw"], "prepare_s": med["prepare"], "ratio": ratio}
        print(f"output {out.stat().st_size / 1e6:.0f} MB" + (f", baseline output {old_out.stat().st_size / 1e6:.0f} MB; "
              f"arrays of the two outputs: {same_arrays(out, old_out)}" if args.baseline_src else ""))
        if args.stages:
            stages(directory, tmp, args.compress, args.baseline_src)
        if args.executors:
            executors(directory, tmp, args.executors)
        if args.memory:
            memory(directory, tmp, args.baseline_src)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
