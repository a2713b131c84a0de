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

ENCODERS: dict[str, Callable[..., nn.Module]] = {}


def register_encoder(name: str):
    def deco(cls):
        ENCODERS[name] = cls
        return cls

    return deco


def build_encoder(name: str, input_shape: tuple[int, ...], modality: str = "?", **kwargs) -> nn.Module:
    """Build encoder ``name`` for one sample's shape (``(D,)``, ``(T, D)`` or ``(L,)``)."""
    if name not in ENCODERS:
        raise ValueError(
            f"model.encoders.{modality}.name: unknown encoder {name!r}; expected one of {', '.join(sorted(ENCODERS))}"
        )
    cls = ENCODERS[name]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "input_shape"}
    bad = sorted(set(kwargs) - allowed)
    if bad:
        raise ValueError(
            f"model.encoders.{modality}.{bad[0]}: not an option of encoder {name!r}; options: {', '.join(sorted(allowed))}"
        )
    return cls(input_shape=tuple(input_shape), **kwargs)


def default_encoder(array: np.ndarray) -> str:
    """Encoder name chosen from a modality array (N, ...)."""
    if np.issubdtype(array.dtype, np.integer) and array.ndim == 2:
        return "dna_cnn"
    if array.ndim == 2:
        return "mlp"
    if array.ndim == 3:
        return "gru"
    raise ValueError(f"cannot choose an encoder for an array of shape {array.shape} and dtype {array.dtype}")


def _mask(lengths: torch.Tensor | None, n: int, t: int) -> torch.Tensor:
    if lengths is None:
        return torch.ones(n, t, dtype=torch.bool)
    return torch.arange(t).unsqueeze(0) < lengths.clamp_min(1).unsqueeze(1)


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
            raise ValueError(f"mlp encoder: norm = {norm!r}; expected none | layer | batch")
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
        mask = _mask(lengths, n, t)
        y = self.encoder(self.proj(x) + self.pos[:, :t], src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).to(y.dtype)
        return (y * m).sum(1) / m.sum(1).clamp_min(1.0)


@register_encoder("dna_cnn")
class DNACNNEncoder(nn.Module):
    """Token sequences (N, L) over a small alphabet -> (N, hidden).

    One-hot inside, then METHOD.md section 6's CNN: conv 4->16 k5, pool, conv
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
        onehot = torch.nn.functional.one_hot(x.long().clamp(0, self.vocab - 1), self.vocab)
        y = self.net(onehot.transpose(1, 2).float())
        return self.drop(y.amax(dim=2))
