"""Preparation near the read limit (issue 17): hash while reading, worker processes, uncompressed output.

Each fast path is checked against the plain one: the digest against hashlib over
the whole file, the parallel jobs against the in-process ones, compressed against
uncompressed output, and every array against the output of the code before these
changes (commit d7757b0, digests below).
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from mweight.data import load_dataset
from mweight.fileio import HashingReader, sha256
from mweight.prepare import mosi, pipeline
from mweight.prepare.csd import open_csd, read_csd, write_csd
from mweight.prepare.folds import mosi_split_of_video
from prepare_fixtures import frames, one_error_line, run_prepare, write_set

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
NAMES = {"words": "CMU_MOSI_TimestampedWords", "text": "CMU_MOSI_TimestampedWordVectors", "audio": "CMU_MOSI_COVAREP",
         "video": "CMU_MOSI_Visual_Facet_41", "labels": "CMU_MOSI_Opinion_Labels"}

# sha256[:16] of dtype + shape + bytes of every array, written by `prepare_csd` at commit d7757b0
# (before the jobs, the hash while reading and the range sums of the alignment).
OLD_PATH = {
    "fixture_word": {"audio": "33eb13413fec6a50", "audio_lengths": "4c0bc3c757dca4d5", "id": "f10999922a6b3073",
                     "label": "337e567ab20767d5", "split": "1431599bbde1c5d3", "text": "df22946ef8693e5a",
                     "text_lengths": "4c0bc3c757dca4d5", "transcript": "60b9227758d4ba59", "video": "0bb6b2b2288e0349",
                     "video_lengths": "4c0bc3c757dca4d5"},
    "fixture_segment": {"audio": "2ca9421170ba60bb", "id": "f10999922a6b3073", "label": "337e567ab20767d5",
                        "split": "1431599bbde1c5d3", "text": "3ac730b491773e67", "video": "86a2293d8dd40db2"},
    "fixture_keep_sp": {"audio": "0b138a26ebf7f5fd", "audio_lengths": "1bb4e7870c7f6935", "id": "f10999922a6b3073",
                        "label": "337e567ab20767d5", "split": "1431599bbde1c5d3", "text": "1dcaa9e8d2e0341b",
                        "text_lengths": "1bb4e7870c7f6935", "transcript": "60b9227758d4ba59", "video": "df76267d53fb70d1",
                        "video_lengths": "1bb4e7870c7f6935"},
    "real_word": {"audio": "d6c8d44266a3ee5c", "audio_lengths": "f04ea1180c5f534f", "id": "a1256e84725aea4f",
                  "label": "211ae165779f82fb", "split": "f41aec2376d8ea21", "text": "7821aa9719628298",
                  "text_lengths": "f04ea1180c5f534f", "transcript": "3c2c27e80ad41829", "video": "54bea27a4a578d70",
                  "video_lengths": "f04ea1180c5f534f"},
    "real_segment": {"audio": "bab2c98bd91d73ad", "id": "a1256e84725aea4f", "label": "211ae165779f82fb",
                     "split": "f41aec2376d8ea21", "text": "97a55d3ab7de095e", "video": "824e00edab629b30"},
}
OPTIONS = {"fixture_word": {}, "fixture_segment": {"level": "segment"}, "fixture_keep_sp": {"keep_sp": True, "seq_len": 7}}


def digests(path) -> dict[str, str]:
    with np.load(path) as d:
        return {k: hashlib.sha256(f"{d[k].dtype.str}{d[k].shape}".encode() + d[k].tobytes()).hexdigest()[:16]
                for k in sorted(d.files) if k != "meta_json"}


def arrays(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def assert_same_arrays(a, b) -> None:
    x, y = arrays(a), arrays(b)
    assert set(x) == set(y)
    for k in x:
        if k != "meta_json":
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape and x[k].tobytes() == y[k].tobytes(), k


@pytest.fixture(scope="module")
def csd_dir(tmp_path_factory):
    """The same generated set as when OLD_PATH was recorded (7 MOSI videos; gzip-chunked COVAREP)."""
    tmp = tmp_path_factory.mktemp("csd")
    ids = sorted(mosi_split_of_video())[::15][:7]
    write_set(tmp, {v: 3 + k % 3 for k, v in enumerate(ids)}, np.random.default_rng(17), label_cols=1, names=NAMES)
    return tmp


# ----------------------------------------------------------------------------- one hash function, computed while reading


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5])
def test_sha256_equals_hashlib(tmp_path, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    (tmp_path / "f").write_bytes(data)
    assert sha256(tmp_path / "f", chunk=4096) == hashlib.sha256(data).hexdigest()


def _shuffled_csd(path: Path, n: int = 12, seed: int = 0) -> list[str]:
    """Frame features whose videos lie in the file in an order unrelated to their keys (as in the SDK's files)."""
    rng = np.random.default_rng(seed)
    vids = [f"vid{k:02d}" for k in rng.permutation(n)]
    data = {v: frames(rng, float(rng.uniform(3, 30)), 100.0, 9, -np.inf) for v in vids}
    write_csd(path, "COVAREP", data)
    return vids


@pytest.mark.parametrize("order", ["file", "keys", "reversed", "some", "none"])
def test_hash_while_reading_equals_hashlib_over_the_file(tmp_path, order):
    path = tmp_path / "CMU_MOSI_COVAREP.csd"
    _shuffled_csd(path)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    with open_csd(path, hashing=True) as seq:
        in_file = seq.data.file_order()
        assert in_file != list(seq.data)  # the layout really is shuffled
        keys = {"file": in_file, "keys": list(seq.data), "reversed": list(seq.data)[::-1],
                "some": list(seq.data)[::3], "none": []}[order]
        for vid in keys:
            feats, intervals = seq.data[vid]
            assert len(feats) == len(intervals)
        reader = seq.data._reader
        digest = seq.sha256()
        assert seq.sha256() == digest  # asking twice is fine
    assert digest == expected == sha256(path)
    size = path.stat().st_size
    if order == "file":
        # read in file order, the hash needs almost nothing besides what h5py read: one pass
        assert reader.extra_bytes < 0.02 * size and reader.read_bytes > 0.95 * size


def test_hashing_reader_direct_reads(tmp_path):
    """Overlapping, backward, far-ahead and past-the-end reads: the digest is still that of the file."""
    data = np.random.default_rng(1).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    (tmp_path / "f").write_bytes(data)
    r = HashingReader(tmp_path / "f", chunk=4096, gap=1000)
    buf = bytearray(50_000)
    for offset, n in [(0, 100), (50, 200), (900, 3000), (250_000, 50_000), (10, 5), (3_500, 50_000), (290_000, 50_000)]:
        r.seek(offset)
        got = r.readinto(memoryview(buf)[:n])
        assert bytes(buf[:got]) == data[offset:offset + n]
    assert r.hexdigest() == hashlib.sha256(data).hexdigest()
    r.close()


def test_read_csd_hashing(tmp_path):
    path = tmp_path / "x.csd"
    _shuffled_csd(path, n=4, seed=3)
    seq = read_csd(path, hashing=True)
    assert seq.sha256() == sha256(path) and read_csd(path).sha256() is None


def test_csd_module_has_no_hash_of_its_own():
    import mweight.prepare.csd as csd

    assert not hasattr(csd, "sha256_of")  # one SHA-256 for the package: mweight.fileio.sha256


# ----------------------------------------------------------------------------- same arrays as before, every path


@pytest.mark.parametrize("case", list(OPTIONS))
@pytest.mark.parametrize("workers", [0, 2])
def test_arrays_equal_the_old_path(tmp_path, csd_dir, case, workers):
    out = tmp_path / "out.npz"
    mosi.prepare_csd(out, csd_dir=csd_dir, workers=workers, **OPTIONS[case])
    assert digests(out) == OLD_PATH[case]


@pytest.mark.skipif(not (SHARED / "mosi_csd").is_dir(), reason="shared data absent")
def test_real_words_file_prepares_as_before(tmp_path):
    """The real SDK words file (and the derived labels/feature files): byte-identical arrays to before."""
    csd = SHARED / "mosi_csd"
    mosi.prepare_csd(tmp_path / "w.npz", csd_dir=csd)
    assert digests(tmp_path / "w.npz") == OLD_PATH["real_word"]
    mosi.prepare_csd(tmp_path / "s.npz", csd_dir=csd / "derived", level="segment", workers=0)
    assert digests(tmp_path / "s.npz") == OLD_PATH["real_segment"]
    meta = json.loads(str(arrays(tmp_path / "w.npz")["meta_json"]))
    for f in meta["files"]:  # hashed while reading: the same digest as reading the file again
        assert f["sha256"] == sha256(f["path"]), f["path"]


def test_parallel_jobs_equal_in_process_jobs(tmp_path, csd_dir):
    seq, par = tmp_path / "seq.npz", tmp_path / "par.npz"
    mosi.prepare_csd(seq, csd_dir=csd_dir, workers=0)
    mosi.prepare_csd(par, csd_dir=csd_dir, workers=2)
    assert_same_arrays(seq, par)
    a, b = (json.loads(str(arrays(p)["meta_json"])) for p in (seq, par))
    assert a["files"] == b["files"]
    assert {f["sha256"] for f in a["files"]} == {sha256(f["path"]) for f in a["files"]}
    assert len(a["files"]) == 5


def test_word_vectors_as_reference_without_words_file(tmp_path, csd_dir):
    """No words file: the word vectors are the reference (one job keeps its rows, the others align to it)."""
    files = {r: csd_dir / f"{NAMES[r]}.csd" for r in ("labels", "text", "audio", "video")}
    outs = []
    for workers in (0, 2):
        out = tmp_path / f"w{workers}.npz"
        pipeline.prepare_csd(out, mosi.MOSI, files=files, workers=workers)
        outs.append(out)
    assert_same_arrays(*outs)
    d = arrays(outs[0])
    assert d["text"].shape[2] == 6 and "transcript" not in d


def test_worker_error_is_one_line(tmp_path, csd_dir):
    """A broken video in a feature file read by a worker process: the usual one-line error, exit 2."""
    bad = tmp_path / "csd"
    bad.mkdir()
    for f in csd_dir.glob("*.csd"):
        (bad / f.name).write_bytes(f.read_bytes())
    with h5py.File(bad / f"{NAMES['video']}.csd", "r+") as h:
        root = next(iter(h))
        vid = next(iter(h[root]["data"]))
        del h[root]["data"][vid]["intervals"]
        h[root]["data"][vid]["intervals"] = np.zeros((3, 2))
    r = run_prepare("mosi", "--csd-dir", bad, "--out", tmp_path / "o.npz")
    one_error_line(r, f"{NAMES['video']}.csd: fields 'data/{vid}/features' and 'intervals' have")
    assert not (tmp_path / "o.npz").exists()


# ----------------------------------------------------------------------------- uncompressed by default, --compress


def test_compressed_and_uncompressed_load_identically(tmp_path, csd_dir):
    plain, packed = tmp_path / "plain.npz", tmp_path / "packed.npz"
    mosi.prepare_csd(plain, csd_dir=csd_dir)
    mosi.prepare_csd(packed, csd_dir=csd_dir, compress=True)
    with zipfile.ZipFile(plain) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    with zipfile.ZipFile(packed) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    assert packed.stat().st_size < plain.stat().st_size
    assert_same_arrays(plain, packed)
    a, b = load_dataset(plain), load_dataset(packed)  # the training loader reads both
    assert a.names == b.names == ["text", "audio", "video"]
    assert np.array_equal(a.label, b.label) and a.id.tolist() == b.id.tolist() and a.split.tolist() == b.split.tolist()
    for m in a.names:
        assert np.array_equal(a.modalities[m], b.modalities[m]) and np.array_equal(a.lengths[m], b.lengths[m])
    assert json.loads(str(arrays(packed)["meta_json"]))["options"]["compress"] is True


def test_compress_flag(tmp_path, csd_dir):
    out, out_c = tmp_path / "a.npz", tmp_path / "b.npz"
    r = run_prepare("mosi", "--csd-dir", csd_dir, "--out", out)
    assert r.returncode == 0, r.stderr
    r = run_prepare("mosi", "--csd-dir", csd_dir, "--out", out_c, "--compress")
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(out) as z, zipfile.ZipFile(out_c) as zc:
        assert z.getinfo("audio.npy").compress_type == zipfile.ZIP_STORED
        assert zc.getinfo("audio.npy").compress_type == zipfile.ZIP_DEFLATED
    assert_same_arrays(out, out_c)
    assert digests(out) == OLD_PATH["fixture_word"]
    assert "--compress" in run_prepare("mosi", "--help").stdout
    assert "--compress" in run_prepare("sims", "--help").stdout


def test_an_error_stops_the_workers(tmp_path, csd_dir, monkeypatch):
    """An error in this process while the jobs run (here: the words pass) ends the worker processes
    at once instead of waiting for their jobs; the error is the one raised."""
    import multiprocessing

    def broken(*args, **kwargs):
        raise pipeline.MWeightError("words pass failed")

    monkeypatch.setattr(pipeline, "_segment_words", broken)
    with pytest.raises(pipeline.MWeightError, match="words pass failed"):
        mosi.prepare_csd(tmp_path / "o.npz", csd_dir=csd_dir, workers=2)
    import time

    deadline = time.monotonic() + 10  # terminated workers are reaped asynchronously
    while multiprocessing.active_children() and time.monotonic() < deadline:
        for child in multiprocessing.active_children():
            child.join(timeout=0.5)
    assert not multiprocessing.active_children()
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("load,expected", [(0.2, 2), (0.9, 2), (1.5, 0), (7.0, 0)])
def test_worker_processes_only_with_a_spare_core(monkeypatch, load, expected):
    """Default: worker processes when a core is idle (2 cores, 1-minute load <= 1), else the jobs run here."""
    monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(pipeline.os, "getloadavg", lambda: (load, load, load))
    pool = pipeline._start_pool(None, 3)
    try:
        assert (0 if pool is None else pool._max_workers) == expected
    finally:
        if pool is not None:
            pool.shutdown()
    explicit = pipeline._start_pool(2, 3)  # an explicit number is used whatever the load
    assert explicit._max_workers == 2
    explicit.shutdown()
    assert pipeline._start_pool(2, 0) is None and pipeline._start_pool(0, 3) is None
