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


class _VectorBNTrain(torch.autograd.Function):
    """Training-mode vBN as ONE autograd node with its closed-form gradient.

    With y = (x - mu) / sigma, sigma = sqrt(s2 + eps), s2 = mean_b ||x_b - mu||^2::

        dL/dx = (g - mean_b g - y * sum(g * y) / N) / sigma

    (the mu path of s2 vanishes because the centred rows sum to 0). Autograd of the
    plain formula builds ~15 small backward ops per block; this is 6. The test checks
    it against autograd of the plain formula with gradcheck.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float):
        y, mu, s2, inv = _vbn_train(x, eps)
        ctx.save_for_backward(y, inv)
        ctx.mark_non_differentiable(mu, s2)
        return y, mu, s2

    @staticmethod
    def backward(ctx, g: torch.Tensor, _g_mu, _g_s2):
        y, inv = ctx.saved_tensors
        proj = torch.dot(g.reshape(-1), y.reshape(-1)) / y.shape[0]
        return torch.addcmul(g - g.mean(dim=0), y, proj, value=-1.0).mul_(inv), None


def _vbn_train(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, ...]:
    """(y, mu, s2, 1/sqrt(s2 + eps)) of training-mode vBN, without autograd bookkeeping."""
    mu = x.mean(dim=0)
    centred = x - mu
    flat = centred.reshape(-1)
    s2 = torch.dot(flat, flat) / x.shape[0]  # mean_b ||x_b - mu||^2
    inv = torch.rsqrt(s2 + eps)
    return centred.mul_(inv), mu, s2, inv


class VectorBN(nn.Module):
    def __init__(self, dim: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.dim, self.momentum, self.eps = dim, momentum, eps
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_s2", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, dim) -> (N, dim)."""
        if self.training and x.shape[0] > 1:
            if torch.is_grad_enabled() and x.requires_grad:
                out, mu, s2 = _VectorBNTrain.apply(x, self.eps)
            else:
                out, mu, s2, _ = _vbn_train(x, self.eps)
            with torch.no_grad():
                n = x.shape[0]
                self.running_mean.lerp_(mu, self.momentum)
                self.running_s2.lerp_(s2 * (n / (n - 1)), self.momentum)
            return out
        return (x - self.running_mean) / torch.sqrt(self.running_s2 + self.eps)


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
                self.running_mean.lerp_(mu, self.momentum)
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
