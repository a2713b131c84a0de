"""Per-modality encoders (subnetworks), built by name from ONE registry.

Every encoder maps its modality's batch to h_m of shape (N, out_dim) and takes
``lengths`` (N,) for sequences (ignored by vector encoders). Register a new one
with ``@register_encoder("name")``; configs pick them by name per modality::

    model:
      encoders:
        text: {name: transformer, hidden: 64}
        audio: {name: gru, hidden: 32}

With no entry, :func:`default_encoder` picks one from the array's shape and dtype:
int (N, L) tokens -> ``dna_cnn``; float (N, D) -> ``mlp``; float (N, T, D) -> ``gru``.
"""
from __future__ import annotations

import inspect
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from .data import is_token_ids
from .errors import ConfigError, MWeightError

ENCODERS: dict[str, Callable[..., nn.Module]] = {}


def register_encoder(name: str):
    def deco(cls):
        ENCODERS[name] = cls
        return cls

    return deco


# Values the built-in encoders' options must have (checked before building, one line each). An
# encoder registered from another module validates its own options: its ValueError becomes a
# one-line ConfigError naming model.encoders.<modality>.
_INT_OPTIONS = {"hidden": 1, "layers": 1, "heads": 1, "vocab": 1, "max_len": 1}
_FRACTION_OPTIONS = ("dropout", "input_dropout")


def _check_options(name: str, modality: str, kwargs: dict) -> None:
    def fail(key, expected):
        raise ConfigError(f"model.encoders.{modality}.{key} = {kwargs[key]!r}; expected {expected} "
                          f"(encoder {name!r})", key=f"model.encoders.{modality}.{key}")

    for key, low in _INT_OPTIONS.items():
        v = kwargs.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
            fail(key, f"an integer >= {low}")
    for key in _FRACTION_OPTIONS:
        v = kwargs.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1):
            fail(key, "a number in [0, 1)")
    if "bidirectional" in kwargs and not isinstance(kwargs["bidirectional"], bool):
        fail("bidirectional", "true or false")
    if "channels" in kwargs:
        ch = kwargs["channels"]
        if not isinstance(ch, (list, tuple)) or len(ch) != 3 or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in ch):
            fail("channels", "three integers >= 1, e.g. [16, 32, 64]")
        kwargs["channels"] = tuple(ch)
    if name == "transformer" and kwargs.get("hidden", 32) % kwargs.get("heads", 4):
        raise ConfigError(f"model.encoders.{modality}.heads = {kwargs.get('heads', 4)}; expected a divisor of "
                          f"hidden = {kwargs.get('hidden', 32)} (encoder 'transformer')",
                          key=f"model.encoders.{modality}.heads")


def build_encoder(name: str, input_shape: tuple[int, ...], modality: str = "?", **kwargs) -> nn.Module:
    """Build encoder ``name`` for one sample's shape (``(D,)``, ``(T, D)`` or ``(L,)``).

    A bad name, option or option value raises a one-line :class:`ConfigError` naming
    ``model.encoders.<modality>.<option>``.
    """
    if not isinstance(name, str) or name not in ENCODERS:
        raise ConfigError(
            f"model.encoders.{modality}.name: unknown encoder {name!r}; expected one of {', '.join(sorted(ENCODERS))}",
            key=f"model.encoders.{modality}.name")
    cls = ENCODERS[name]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "input_shape"}
    bad = sorted(set(kwargs) - allowed)
    if bad:
        raise ConfigError(
            f"model.encoders.{modality}.{bad[0]}: not an option of encoder {name!r}; options: {', '.join(sorted(allowed))}",
            key=f"model.encoders.{modality}.{bad[0]}")
    if cls.__module__ == __name__:  # the built-in encoders; others check their own options (below)
        _check_options(name, modality, kwargs)
    try:
        enc = cls(input_shape=tuple(input_shape), **kwargs)
    except (ValueError, TypeError, AssertionError, IndexError) as exc:  # the module refuses the options or shape
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, ConfigError) and first.startswith("model.encoders."):
            raise
        raise ConfigError(f"model.encoders.{modality}: encoder {name!r} cannot be built for per-sample shape "
                          f"{tuple(input_shape)} with options {kwargs} ({first})",
                          key=f"model.encoders.{modality}") from None
    enc.modality = modality  # named in input errors (e.g. token ids outside the vocabulary)
    return enc


def check_token_ids(x, vocab: int, modality: str, source: str = "input") -> None:
    """Token ids must lie in 0..vocab-1: never clamp a word id onto a DNA letter.

    ``x``: integer array or tensor of any shape. One line naming the modality and the
    largest (or a negative) id.
    """
    if x.numel() if isinstance(x, torch.Tensor) else np.size(x):
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= vocab:
            bad = lo if lo < 0 else hi
            raise MWeightError(f"{source}: modality {modality!r} has token id {bad} (ids {lo}..{hi}); its encoder "
                               f"takes ids 0..{vocab - 1} (set model.encoders.{modality}.vocab = {max(hi + 1, vocab)} "
                               "to size the vocabulary from the data, or choose another encoder)")


def default_encoder(array: np.ndarray) -> str:
    """Encoder name chosen from a modality array (N, ...)."""
    if is_token_ids(array):
        return "dna_cnn"
    if array.ndim == 2:
        return "mlp"
    if array.ndim == 3:
        return "gru"
    raise ConfigError(f"cannot choose an encoder for an array of shape {array.shape} and dtype {array.dtype}")


def _mask(lengths: torch.Tensor | None, n: int, t: int, device: torch.device | None = None) -> torch.Tensor:
    if lengths is None:
        return torch.ones(n, t, dtype=torch.bool, device=device)
    return torch.arange(t, device=lengths.device).unsqueeze(0) < lengths.clamp_min(1).unsqueeze(1)


@register_encoder("mlp")
class MLPEncoder(nn.Module):
    """Vectors (N, D) -> (N, hidden): ``layers`` x (Linear, [norm], ReLU, Dropout).

    ``input_dropout`` drops input features (after standardisation) before the first
    layer; ``norm`` adds ``layer`` (LayerNorm) or ``batch`` (BatchNorm1d) after each
    Linear. Both are off by default (the module layout is then unchanged).
    """

    def __init__(self, input_shape, hidden: int = 32, layers: int = 2, dropout: float = 0.1,
                 input_dropout: float = 0.0, norm: str = "none"):
        super().__init__()
        if norm not in ("none", "layer", "batch"):
            raise ConfigError(f"mlp encoder: norm = {norm!r}; expected none | layer | batch")
        d = int(np.prod(input_shape))
        mods: list[nn.Module] = [nn.Flatten()]
        if input_dropout > 0:
            mods.append(nn.Dropout(input_dropout))
        for _ in range(layers):
            mods.append(nn.Linear(d, hidden))
            if norm == "layer":
                mods.append(nn.LayerNorm(hidden))
            elif norm == "batch":
                mods.append(nn.BatchNorm1d(hidden))
            mods += [nn.ReLU(), nn.Dropout(dropout)]
            d = hidden
        self.net = nn.Sequential(*mods)
        self.out_dim = d
        # The same layers run functionally in forward (no per-module call overhead, which is
        # a large part of a batch-16 step); self.net keeps the parameters and their names.
        self._plan = [(type(mod).__name__, mod) for mod in mods[1:]]

    def forward(self, x, lengths=None):
        if x.dim() != 2:
            x = x.flatten(1)
        training = self.training
        for kind, mod in self._plan:
            if kind == "Linear":
                x = F.linear(x, mod.weight, mod.bias)
            elif kind == "ReLU":
                x = F.relu(x)
            elif kind == "Dropout":
                x = F.dropout(x, mod.p, training)
            elif kind == "LayerNorm":
                x = F.layer_norm(x, mod.normalized_shape, mod.weight, mod.bias, mod.eps)
            else:  # BatchNorm1d: running statistics handled by the module
                x = mod(x)
        return x


@register_encoder("gru")
class GRUEncoder(nn.Module):
    """Sequences (N, T, D) with lengths -> last hidden state (N, hidden [x2 if bidirectional])."""

    cell = nn.GRU

    def __init__(self, input_shape, hidden: int = 32, layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.1):
        super().__init__()
        self.rnn = self.cell(input_shape[-1], hidden, num_layers=layers, batch_first=True,
                             bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out_dim = hidden * (2 if bidirectional else 1)

    def forward(self, x, lengths=None):
        n, t, _ = x.shape
        lens = torch.full((n,), t, dtype=torch.long) if lengths is None else lengths.long().clamp(1, t)
        packed = pack_padded_sequence(x, lens.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)
        if isinstance(h, tuple):  # LSTM returns (h, c)
            h = h[0]
        last = torch.cat([h[-2], h[-1]], dim=1) if self.rnn.bidirectional else h[-1]
        return self.drop(last)


@register_encoder("lstm")
class LSTMEncoder(GRUEncoder):
    """Like ``gru`` with an LSTM cell."""

    cell = nn.LSTM


@register_encoder("transformer")
class TransformerEncoder(nn.Module):
    """Sequences (N, T, D) -> masked mean of a small transformer encoder (N, hidden)."""

    def __init__(self, input_shape, hidden: int = 32, layers: int = 1, heads: int = 4,
                 dropout: float = 0.1, max_len: int = 512):
        super().__init__()
        t, d = input_shape[-2], input_shape[-1]
        self.proj = nn.Linear(d, hidden)
        self.pos = nn.Parameter(torch.zeros(1, max(max_len, t), hidden))
        layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden, dropout=dropout,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out_dim = hidden

    def forward(self, x, lengths=None):
        n, t, _ = x.shape
        mask = _mask(lengths, n, t, x.device)
        y = self.encoder(self.proj(x) + self.pos[:, :t], src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).to(y.dtype)
        return (y * m).sum(1) / m.sum(1).clamp_min(1.0)


@register_encoder("dna_cnn")
class DNACNNEncoder(nn.Module):
    """Token sequences (N, L) over a small alphabet -> (N, hidden).

    One-hot inside, then docs/method.md section 8's CNN: conv 4->16 k5, pool, conv
    16->32 k3, pool, conv 32->64 k3, conv 1x1 -> hidden, global max pool.
    """

    def __init__(self, input_shape, vocab: int = 4, hidden: int = 32, channels: tuple = (16, 32, 64),
                 dropout: float = 0.0):
        super().__init__()
        c1, c2, c3 = channels
        self.vocab = vocab
        self.net = nn.Sequential(
            nn.Conv1d(vocab, c1, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(c2, c3, 3, padding=1), nn.ReLU(),
            nn.Conv1d(c3, hidden, 1),
        )
        self.drop = nn.Dropout(dropout)
        self.out_dim = hidden

    def forward(self, x, lengths=None):
        # Out-of-range ids used to be clamped (a words-only file trained a 4-letter CNN on noise).
        check_token_ids(x, self.vocab, getattr(self, "modality", "?"))
        onehot = torch.nn.functional.one_hot(x.long(), self.vocab)
        y = self.net(onehot.transpose(1, 2).float())
        return self.drop(y.amax(dim=2))


# Token ids from a pretrained tokenizer -> a pretrained BERT, top layers fine-tuned
# (model folders, weights and the frozen-layer cache live in mweight/bert.py).
from .bert import BertTextEncoder  # noqa: E402  (bert.py imports nothing from here at import time)

register_encoder("bert")(BertTextEncoder)
