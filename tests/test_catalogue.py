"""The bad-input catalogue (issue 12): every user mistake gets one line, exit 2, and nothing is written.

Each case runs ``python -m mweight ...`` as a user would, in its own folder holding every file it
may touch (tiny datasets written here, a copy of one tiny trained run). A refused case must:
exit 2; print exactly one line on stderr, ``mweight: error: ...``, naming the file or key (the
case's fragments) and no traceback; and leave the folder exactly as it was (same paths, same
sizes, mtimes and SHA-256). A few cases document accepted behaviour instead (a warning or note
and exit 0, ``--overwrite``, removal of a killed run's temporary files).

The cases run two at a time (each subprocess imports numpy and, for most, torch); most fail
before any training. The kill -9 / Ctrl-C / ``--resume`` checks are in test_resume.py.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

WORKERS = max(1, min(2, os.cpu_count() or 1))
TRAIN_SET = ["--set", "train.epochs=2", "--set", "train.patience=2", "--set", "train.threads=1",
             "--set", "train.batch_size=16", "--quiet"]
N = 120  # 30 videos of 4 clips: 72 train / 24 valid / 24 test


# ------------------------------------------------------------------------------------------- data
def base_arrays(seed: int = 0, n: int = N) -> dict:
    """MOSI-like vectors that do not share the model's assumptions: log-normal text features
    correlated with ReLU audio features, a label that is nonlinear in them."""
    rng = np.random.default_rng(seed)
    vid = np.arange(n) // 4
    z = rng.normal(size=(n, 1))
    text = np.exp(0.7 * z + 0.4 * rng.normal(size=(n, 5))).astype(np.float32)
    audio = np.maximum(0.0, 0.8 * z + rng.normal(size=(n, 3))).astype(np.float32)
    label = np.clip(1.3 * np.log(text[:, 0]) + 0.5 * audio[:, 0] ** 2 - 0.4 + 0.3 * rng.normal(size=n), -3, 3)
    return {"id": np.array([f"v{v:02d}_{i % 4 + 1}" for i, v in enumerate(vid)]),
            "label": label.astype(np.float32),
            "split": np.where(vid < 18, "train", np.where(vid < 24, "valid", "test")),
            "text": text, "audio": audio}


def with_sequence(arrays: dict, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    n = len(arrays["label"])
    arrays = dict(arrays)
    arrays["video"] = rng.gamma(0.8, size=(n, 6, 2)).astype(np.float32)
    arrays["video_lengths"] = rng.integers(1, 7, size=n)
    return arrays


def npz(**changes) -> Callable[[Path], None]:
    """A writer of the base dataset with ``changes`` (a value None drops the field)."""
    def write(path: Path, changes=changes) -> None:
        arrays = base_arrays()
        for k, v in changes.items():
            v = v(arrays) if callable(v) else v
            if v is None:
                arrays.pop(k, None)
            else:
                arrays[k] = v
        np.savez(path, **arrays)
    return write


def seq_npz(**changes) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        arrays = with_sequence(base_arrays())
        for k, v in changes.items():
            arrays[k] = v(arrays) if callable(v) else v
        np.savez(path, **arrays)
    return write


def text_file(content: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(content)


def folder(path: Path) -> None:
    path.mkdir(parents=True)


def _dup_ids(a):
    ids = a["id"].copy()
    ids[7] = ids[3]
    return ids


def _words(a):
    w = np.random.default_rng(2).integers(0, 4284, size=(len(a["label"]), 12)).astype(np.int32)
    w[0, 0] = 4283
    return w


def _classes(a):
    q = np.quantile(a["label"], [1 / 3, 2 / 3])
    return np.select([a["label"] < q[0], a["label"] < q[1]], [0, 1], 1000).astype(np.int64)


def _long_lengths(a):
    lengths = a["video_lengths"].copy()
    lengths[5] = 9
    return lengths


def _negative_lengths(a):
    lengths = a["video_lengths"].copy()
    lengths[2] = -1
    return lengths


def _negative_tokens(a):
    t = np.random.default_rng(3).integers(0, 4, size=(len(a["label"]), 10)).astype(np.int8)
    t[4, 1] = -1
    return t


def _no_test(a):
    return np.where(a["split"] == "test", "train", a["split"])


def _payload_model(path: Path) -> None:
    import torch

    # not tensors and plain containers: weights_only=True refuses it, and so must mweight
    torch.save({"state_dict": argparse.Namespace(a=1), "config": {}}, path)


def _truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _stale_temporaries(path: Path) -> None:
    """What kill -9 during a write leaves: a temp file of a dead process, plus an older mweight's."""
    host = socket.gethostname()
    host = "".join(c if c.isalnum() or c in "_." else "_" for c in host)[:40]
    (path / f".s.npz.mweight-tmp-{host}-999999999-abc123.npz").write_bytes(b"partial")
    (path / ".s.npz.k3j9x0qa.tmp.npz").write_bytes(b"partial")


# ------------------------------------------------------------------------------------------ cases
@dataclass
class Case:
    id: str
    argv: list[str]
    expect: tuple[str, ...]  # fragments of the single error line (file or key, what was expected)
    files: dict[str, Callable[[Path], None]] = field(default_factory=dict)  # name -> writer
    run: bool = False  # copy the trained run to ./run and its data to ./d.npz
    code: int = 2
    accepted: Callable[[Path, subprocess.CompletedProcess], None] | None = None  # documented behaviour
    setup: Callable[[Path], None] | None = None  # after files and run are in place


def train(*extra: str, data: str = "d.npz", out: str = "out") -> list[str]:
    return ["train", "--data", data, "--out", out, *TRAIN_SET, *extra]


def sets(*items: str) -> list[str]:
    return [a for item in items for a in ("--set", item)]


D = {"d.npz": npz()}
CASES: list[Case] = [
    # -- config values given on the command line (all before torch is imported)
    Case("lr-text", train(*sets("train.lr=abc")), ("--set", "train.lr", "'abc'", "finite number > 0"), D),
    Case("lr-negative", train(*sets("train.lr=-1e-3")), ("train.lr", "-0.001"), D),
    Case("lr-nan", train(*sets("train.lr=.nan")), ("train.lr", "nan"), D),
    Case("lr-inf", train(*sets("train.lr=inf")), ("train.lr", "inf", "finite"), D),
    Case("lr-1e-3-parses", train(*sets("train.lr=1e-3", "train.epochs=0")), ("train.epochs = 0",), D),
    Case("lambda-1e-3-parses", train(*sets("model.lambda=1e-3", "train.patience=0")),
         ("train.patience = 0", "integer >= 1"), D),
    Case("lr-1E5-parses", train(*sets("train.lr=1E5", "train.batch_size=1")), ("train.batch_size = 1",), D),
    Case("lr-.5-parses", train(*sets("train.lr=.5", "train.lr_decay=1.5")), ("train.lr_decay = 1.5", "(0, 1]"), D),
    Case("grad-clip-inf-parses", train(*sets("train.grad_clip=inf", "train.threads=-1")), ("train.threads = -1",), D),
    Case("epochs-zero", train(*sets("train.epochs=0")), ("train.epochs", "integer >= 1"), D),
    Case("epochs-fraction", train(*sets("train.epochs=2.5")), ("train.epochs", "2.5"), D),
    Case("patience-negative", train(*sets("train.patience=-3")), ("train.patience", "-3"), D),
    Case("lr-decay-zero", train(*sets("train.lr_decay=0")), ("train.lr_decay",), D),
    Case("grad-clip-zero", train(*sets("train.grad_clip=0")), ("train.grad_clip", "> 0"), D),
    Case("weight-decay-negative", train(*sets("train.weight_decay=-1")), ("train.weight_decay",), D),
    Case("beta-lr-zero", train(*sets("train.beta_lr=0")), ("train.beta_lr",), D),
    Case("dropout-one", train(*sets("model.dropout=1")), ("model.dropout", "[0, 1)"), D),
    Case("hidden-zero", train(*sets("model.hidden=0")), ("model.hidden", "integer >= 1"), D),
    Case("p-below-one", train(*sets("model.p=0.5")), ("model.p", "0.5", ">= 1"), D),
    Case("p-bool", train(*sets("model.p=true")), ("model.p", "True"), D),
    Case("lambda-negative", train(*sets("model.lambda=-0.1")), ("model.lambda", ">= 0"), D),
    Case("rank-zero", train(*sets("model.rank=0")), ("model.rank",), D),
    Case("norm-unknown", train(*sets("model.norm=layer")), ("model.norm", "'layer'", "anova"), D),
    Case("relevance-unknown", train(*sets("model.relevance=beta")), ("model.relevance", "mnl | explicit | none"), D),
    Case("interactions-order-x", train(*sets("model.interactions=order<=x")), ("model.interactions", "order<=x"), D),
    Case("interactions-single", train(*sets("model.interactions=[text]")), ("model.interactions", "2 or more"), D),
    Case("select-unknown", train(*sets("train.select=bogus")), ("train.select", "'bogus'"), D),
    Case("loss-unknown", train(*sets("train.loss=huber")), ("train.loss", "l1 | mse"), D),
    Case("task-unknown", train(*sets("data.task=ranking")), ("data.task",), D),
    Case("valid-fraction-one", train(*sets("data.valid_fraction=1")), ("data.valid_fraction", "(0, 1)"), D),
    Case("unknown-key", train(*sets("model.pp=1")), ("unknown key model.pp",), D),
    Case("unknown-section", train(*sets("foo.bar=1")), ("unknown section 'foo'",), D),
    Case("set-without-value", train("--set", "train.epochs"), ("--set", "key=value"), D),
    Case("set-undotted", train("--set", "epochs=3"), ("--set", "dotted key"), D),
    Case("seeds-not-numbers", train("--seeds", "1,a"), ("--seeds", "'1,a'"), D),
    Case("seeds-repeated", train("--seeds", "1,1"), ("--seeds", "distinct"), D),
    Case("seed-is-not-seeds", train("--seed", "0"), ("unrecognized arguments: --seed 0",), D),
    Case("preset-unknown", train("--preset", "nope"), ("--preset nope", "unknown preset"), D),
    Case("data-missing-flag", ["train", "--out", "out", *TRAIN_SET], ("--data FILE.npz is required",), D),
    # -- config files
    Case("config-missing", train("--config", "nope.yaml"), ("nope.yaml", "not found"), D),
    Case("config-folder", train("--config", "cfgdir"), ("cfgdir", "directory"), {**D, "cfgdir": folder}),
    Case("config-bad-yaml", train("--config", "c.yaml"), ("c.yaml", "not valid YAML"),
         {**D, "c.yaml": text_file("train: {lr: [1, 2\n")}),
    Case("config-not-mapping", train("--config", "c.yaml"), ("c.yaml", "mapping"), {**D, "c.yaml": text_file("- 1\n- 2\n")}),
    Case("config-bad-value", train("--config", "c.yaml"), ("c.yaml", "train.lr", "'fast'"),
         {**D, "c.yaml": text_file("train:\n  lr: fast\n")}),
    Case("config-set-names-set", train("--config", "c.yaml", *sets("train.lr=0")), ("--set: train.lr = 0",),
         {**D, "c.yaml": text_file("train:\n  lr: 1e-3\n")}),
    # -- config against the data (model built once, no training)
    Case("interaction-unknown-modality", train(*sets("model.interactions=[text*speech]")),
         ("model.interactions", "'speech'", "d.npz"), D),
    Case("interaction-order-too-high", train(*sets("model.interactions=order<=5")), ("model.interactions", "order<=5"), D),
    Case("encoder-unknown", train(*sets("model.encoders.text.name=cnn9")), ("model.encoders.text.name", "'cnn9'"), D),
    Case("encoder-option-unknown", train(*sets("model.encoders.text.widht=3")), ("model.encoders.text.widht",), D),
    Case("encoder-dropout-two", train(*sets("model.encoders.audio.dropout=2")), ("model.encoders.audio.dropout", "[0, 1)"), D),
    Case("encoder-hidden-zero", train(*sets("model.encoders.text.hidden=0")), ("model.encoders.text.hidden",), D),
    Case("encoder-sequence-on-vectors", train(*sets("model.encoders.text.name=transformer")),
         ("model.encoders.text", "'transformer'", "(5,)"), D),
    Case("encoder-tokens-on-floats", train(*sets("model.encoders.text.name=dna_cnn")),
         ("model.encoders.text.name", "token ids", "d.npz"), D),
    Case("encoder-unknown-modality", train(*sets("model.encoders.speech.name=mlp")), ("model.encoders.speech", "d.npz"), D),
    Case("modalities-unknown", train(*sets("data.modalities=[text,speech]")), ("data.modalities", "'speech'"), D),
    Case("split-key-missing", train("--split-key", "protocol"), ("d.npz", "'protocol'"), D),
    # -- the data file
    Case("data-file-missing", train(data="nope.npz"), ("nope.npz", "not found"), {}),
    Case("data-not-npz", train(data="d.npz"), ("d.npz", "not a readable .npz"), {"d.npz": text_file("id,label\n")}),
    Case("data-pickled", train(), ("d.npz", "pickled"), {"d.npz": npz(extra=np.array([{"a": 1}], dtype=object).repeat(N))}),
    Case("duplicate-ids", train(), ("d.npz", "field 'id' repeats 'v00_4'", "rows 3 and 7"), {"d.npz": npz(id=_dup_ids)}),
    Case("empty-modality", train(), ("d.npz", "'audio'", "empty"), {"d.npz": npz(audio=np.zeros((N, 0), np.float32))}),
    Case("four-d-modality", train(), ("d.npz", "'audio'", "(N, D)"), {"d.npz": npz(audio=np.zeros((N, 2, 2, 2), np.float32))}),
    Case("lengths-beyond-T", train(), ("d.npz", "'video_lengths'", "0..6"), {"d.npz": seq_npz(video_lengths=_long_lengths)}),
    Case("lengths-negative", train(), ("d.npz", "'video_lengths'", "-1"), {"d.npz": seq_npz(video_lengths=_negative_lengths)}),
    Case("lengths-for-vector", train(), ("d.npz", "'text_lengths'", "vector"), {"d.npz": npz(text_lengths=np.full(N, 3))}),
    Case("tokens-outside-dna-alphabet", train(), ("d.npz", "'words'", "4283", "0..3", "vocab"), {"d.npz": npz(words=_words)}),
    Case("tokens-negative", train(), ("d.npz", "'dna'", "-1"), {"d.npz": npz(dna=_negative_tokens)}),
    Case("classes-with-gap", train(), ("d.npz", "'label'", "0..K-1", "1000"), {"d.npz": npz(label=_classes)}),
    Case("single-class", train(), ("d.npz", "single class"), {"d.npz": npz(label=np.zeros(N, np.int64))}),
    Case("label-nan", train(), ("d.npz", "'label'", "NaN"), {"d.npz": npz(label=lambda a: np.where(np.arange(N) == 9, np.nan, a["label"]))}),
    Case("label-missing", train(), ("d.npz", "'label'"), {"d.npz": npz(label=None)}),
    Case("split-value-dev", train(), ("d.npz", "'dev'"), {"d.npz": npz(split=lambda a: np.where(a["split"] == "valid", "dev", a["split"]))}),
    Case("rows-mismatch", train(), ("d.npz", "'audio'", "rows"), {"d.npz": npz(audio=np.ones((N - 1, 3), np.float32))}),
    # -- output paths of train
    Case("out-is-a-file", train(out="d.npz"), ("--out d.npz", "is a file"), D),
    Case("out-under-a-file", train(out="d.npz/run"), ("--out d.npz/run", "not a folder"), D),
    Case("out-unwritable", train(out="/sys/mweight-catalogue/run"), ("/sys", "not writable"), D),
    Case("out-holds-a-run", train(out="run"), ("run", "already holds a run", "--overwrite"), {}, run=True),
    Case("seeds-into-single-run", train("--seeds", "1,2", out="run"), ("--seeds 1,2", "single run"), {}, run=True),
    Case("single-into-multi-seed", train(out="multi"), ("multi", "multi-seed"), D,
         setup=lambda d: ((d / "multi" / "seed_1").mkdir(parents=True), (d / "multi" / "summary.json").write_text("{}"))),
    # -- --resume against the saved run
    Case("resume-other-lambda", train("--resume", *sets("model.lambda=0.01"), out="run"),
         ("--resume", "model.lambda 0.05 -> 0.01"), {}, run=True),
    Case("resume-other-seed", train("--resume", *sets("train.seed=5"), out="run"), ("--resume", "train.seed 0 -> 5"), {}, run=True),
    Case("resume-other-dataset", train("--resume", data="d2.npz", out="run"), ("--resume", "dataset SHA-256", "d2.npz"),
         {"d2.npz": lambda p: np.savez(p, **base_arrays(seed=5))}, run=True),
    # -- evaluate / predict / explain / ablate
    Case("evaluate-json-onto-metrics", ["evaluate", "run", "--json", "run/metrics.json"],
         ("--json run/metrics.json", "exists", "--overwrite"), run=True),
    Case("evaluate-json-folder", ["evaluate", "run", "--json", "run"], ("--json run", "folder"), run=True),
    Case("evaluate-no-run", ["evaluate", "nope"], ("nope", "not found"), {}),
    Case("predict-out-onto-predictions", ["predict", "run", "--out", "run/predictions.csv"],
         ("--out run/predictions.csv", "exists", "--overwrite"), run=True),
    Case("predict-out-folder", ["predict", "run", "--out", "run"], ("--out run", "folder"), run=True),
    Case("predict-out-unwritable", ["predict", "run", "--out", "/sys/p.csv"], ("/sys", "not writable"), run=True),
    Case("predict-duplicate-ids", ["predict", "run", "--data", "dup.npz", "--out", "p.csv"], ("dup.npz", "'v00_4'"),
         {"dup.npz": npz(id=_dup_ids)}, run=True),
    Case("explain-json-exists", ["explain", "run", "--json", "e.json"], ("--json e.json", "exists"),
         {"e.json": text_file("{}\n")}, run=True),
    Case("explain-truncated-predictions", ["explain", "run", "--id", "v00_1"], ("predictions.csv", "truncated"),
         run=True, setup=lambda d: _truncate(d / "run" / "predictions.csv")),
    Case("ablate-json-exists", ["ablate", "run", "--json", "a.json"], ("--json a.json", "exists"),
         {"a.json": text_file("{}\n")}, run=True),
    Case("payload-model", ["evaluate", "run"], ("model.pt", "refused"), run=True,
         setup=lambda d: _payload_model(d / "run" / "model.pt")),
    # -- synth / prepare / repro outputs
    Case("synth-onto-dataset", ["synth", "dna", "--n", "60", "--out", "d.npz"], ("--out d.npz", "exists", "--overwrite"), D),
    Case("synth-onto-truth", ["synth", "dna", "--n", "60", "--out", "s.npz"], ("s.truth.json", "exists"),
         {"s.truth.json": text_file("{}\n")}),
    Case("synth-out-folder", ["synth", "dna", "--n", "60", "--out", "x.npz"], ("--out x.npz", "folder"), {"x.npz": folder}),
    Case("synth-out-not-npz", ["synth", "dna", "--n", "60", "--out", "x.csv"], ("--out x.csv", ".npz"), {}),
    Case("synth-without-out", ["synth", "dna", "--n", "60"], ("--out",), {}),
    Case("prepare-onto-dataset", ["prepare", "mosi", "--bclstm", "nowhere", "--out", "d.npz"],
         ("--out d.npz", "exists", "--overwrite"), D),
    Case("prepare-out-folder", ["prepare", "sims", "--mmsa", "x.pkl", "--out", "f.npz"], ("--out f.npz", "folder"),
         {"f.npz": folder}),
    Case("prepare-out-unwritable", ["prepare", "mosi", "--mmsa", "x.pkl", "--out", "/sys/m.npz"], ("/sys", "not writable"), {}),
    Case("repro-out-is-a-file", ["repro", "dna", "--quick", "--out", "d.npz"], ("--out d.npz", "is a file"), D),
]


def _accept_stale_removed(d: Path, r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0, r.stderr
    assert (d / "s.npz").is_file() and (d / "s.truth.json").is_file()
    left = [p.name for p in d.iterdir() if "tmp" in p.name]
    assert left == [], left


def _accept_overwrite(d: Path, r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0, r.stderr
    assert np.load(d / "d.npz")["label"].dtype == np.int64  # the synthetic file replaced the old one


def _accept_warning(fragment: str):
    def check(d: Path, r: subprocess.CompletedProcess) -> None:
        assert r.returncode == 0, r.stderr
        notes = [line for line in r.stderr.splitlines() if fragment in line]
        assert len(notes) == 1 and notes[0].startswith("mweight: "), r.stderr  # other warnings may follow
        assert (d / "out" / "metrics.json").is_file()
    return check


CASES += [
    Case("stale-temporaries-removed", ["synth", "dna", "--n", "60", "--out", "s.npz"], (), {}, code=0,
         accepted=_accept_stale_removed, setup=_stale_temporaries),
    Case("overwrite-replaces", ["synth", "dna", "--n", "60", "--out", "d.npz", "--overwrite"], (), D, code=0,
         accepted=_accept_overwrite),
    Case("labels-times-100-warn", train(*sets("train.epochs=1")), (), {"d.npz": npz(label=lambda a: a["label"] * 100)},
         code=0, accepted=_accept_warning("regression labels range")),
    Case("no-test-rows-note", train(*sets("train.epochs=1")), (), {"d.npz": npz(split=_no_test)},
         code=0, accepted=_accept_warning("no 'test' rows")),
]


# ---------------------------------------------------------------------------------------- running
def snapshot(root: Path) -> dict:
    """Every path under ``root``: folders by name, files by size, mtime and SHA-256."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_dir():
            out[rel] = "dir"
        else:
            st = p.stat()
            out[rel] = (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def mweight(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MWEIGHT_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "mweight", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny trained run (2 epochs) and its data, copied into the cases that need a run."""
    base = tmp_path_factory.mktemp("trained")
    np.savez(base / "d.npz", **base_arrays())
    r = mweight(train(out="run"), base)
    assert r.returncode == 0, r.stderr
    return base


@pytest.fixture(scope="module")
def results(trained, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("cases")
    prepared = []
    for case in CASES:
        d = root / case.id
        d.mkdir()
        for name, write in case.files.items():
            write(d / name)
        if case.run:
            shutil.copytree(trained / "run", d / "run")
            shutil.copy2(trained / "d.npz", d / "d.npz")
        if case.setup:
            case.setup(d)
        prepared.append((case, d, snapshot(d)))

    def go(item):
        case, d, before = item
        r = mweight(case.argv, d)
        return case.id, (d, before, r, snapshot(d))

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        return dict(pool.map(go, prepared))


def test_catalogue_is_large_and_ids_unique():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, results):
    d, before, r, after = results[case.id]
    assert "Traceback" not in r.stderr, r.stderr
    if case.accepted is not None:
        case.accepted(d, r)
        return
    assert r.returncode == case.code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mweight: error: "), r.stderr
    for fragment in case.expect:
        assert fragment in lines[0], (fragment, lines[0])
    assert "weights_only" not in r.stderr
    assert r.stdout == "", r.stdout
    assert after == before, "files created or changed: " + ", ".join(
        sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))


# ------------------------------------------------------------------------- mechanisms behind cases
def test_sigterm_while_writing_leaves_neither_file_nor_temporary(tmp_path):
    """SIGTERM unwinds like Ctrl-C (the CLI's handler): the temporary file is removed, the target
    never appears. kill -9 cannot be caught: see the stale-temporaries-removed case."""
    script = (
        "import os, signal, time\n"
        "from mweight.cli import _terminate\n"
        "from mweight.fileio import atomic_path\n"
        "signal.signal(signal.SIGTERM, _terminate)\n"
        "with atomic_path('out.npz', suffix='.npz') as tmp:\n"
        "    tmp.write_bytes(b'partial')\n"
        "    assert '.mweight-tmp-' in tmp.name and tmp.name.startswith('.out.npz.')\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 128 + 15, r.stderr
    assert list(tmp_path.iterdir()) == []


def test_numbers_on_the_command_line_and_in_files_parse_as_numbers(tmp_path):
    from mweight.config import parse_set, resolve_config

    assert parse_set(["train.lr=1e-3", "train.grad_clip=inf", "model.lambda=.5", "train.epochs=1E2"]) == {
        "train": {"lr": 1e-3, "grad_clip": float("inf"), "epochs": 100.0}, "model": {"lambda": 0.5}}
    f = tmp_path / "c.yaml"
    f.write_text("train: {lr: 1e-3, epochs: 1e1}\nmodel: {lambda: 2E-2}\n")
    cfg = resolve_config(None, str(f))
    assert (cfg.train.lr, cfg.train.epochs, cfg.model.lam) == (1e-3, 10, 0.02)
    assert isinstance(cfg.train.epochs, int)
    # text stays text
    assert parse_set(["data.split_key=e5", "model.interactions=all"]) == {
        "data": {"split_key": "e5"}, "model": {"interactions": "all"}}
