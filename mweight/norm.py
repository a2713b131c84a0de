"""vBN: vector-wise batch normalisation, one scalar scale per block (METHOD.md section 4).

Training, batch x in R^{N x d}::

    mu = mean_b x_b            (vector)
    s2 = mean_b ||x_b - mu||^2 (ONE scalar for the whole block)
    out = (x - mu) / sqrt(s2 + eps)

No learnable parameters. Running mu and s2 (momentum 0.1, unbiased s2) are used
at inference. The output is centred with batch-mean squared norm 1 whatever the
block's dimension, and invariant to rescaling the input, so beta cannot be
bought with scale or dimension.
"""
from __future__ import annotations

import torch
from torch import nn


class VectorBN(nn.Module):
    def __init__(self, dim: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.dim, self.momentum, self.eps = dim, momentum, eps
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_s2", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, dim) -> (N, dim)."""
        if self.training and x.shape[0] > 1:
            mu = x.mean(dim=0)
            centred = x - mu
            s2 = centred.pow(2).sum(dim=1).mean()
            with torch.no_grad():
                n = x.shape[0]
                self.running_mean.lerp_(mu.detach(), self.momentum)
                self.running_s2.lerp_(s2.detach() * n / (n - 1), self.momentum)
        else:
            centred = x - self.running_mean
            s2 = self.running_s2
        return centred / torch.sqrt(s2 + self.eps)


class RunningMean(nn.Module):
    """Batch mean in training (kept in the graph, like BN), running mean at inference."""

    def __init__(self, shape: tuple[int, ...], momentum: float = 0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, *shape) -> (*shape)."""
        if self.training and x.shape[0] > 1:
            mu = x.mean(dim=0)
            with torch.no_grad():
                self.running_mean.lerp_(mu.detach(), self.momentum)
            return mu
        return self.running_mean


def make_block_norm(kind: str, dim: int) -> nn.Module:
    """The normalisation applied to a block's features before the final layer."""
    if kind == "none":
        return nn.Identity()
    if kind == "bn":  # per-feature: block variance = its dimension (METHOD.md 3.3)
        return nn.BatchNorm1d(dim, affine=False)
    if kind in ("vbn", "iterbn"):
        return VectorBN(dim)
    raise ValueError(f"unknown normalisation {kind!r}; expected none | bn | vbn | iterbn")
