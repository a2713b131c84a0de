"""vBN: vector-wise batch normalisation, one scalar scale per block (docs/method.md section 3).

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
from torch.autograd.function import once_differentiable

from .config import NORMS

# vBN of an interaction block: its factors have unit variance, so a healthy product has
# E||t||^2 of the order of its dimension. eps scaled by the dimension is a floor on the
# scale: a block that is (numerically) nothing stays nothing instead of being blown up
# to unit norm by 1/sqrt(eps) (a constant modality made a full copy of the other factor).
INTERACTION_EPS_PER_DIM = 1e-3


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
    @once_differentiable  # the closed form is a first derivative only: refuse double backward
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


def exact(x: torch.Tensor) -> torch.Tensor:
    """``x`` detached in the dtype of exact sums: float64, except on Apple MPS, which has none
    (there float32; devices.model_to turns the float64 buffers into float32 to match)."""
    return x.detach().to(torch.float32 if x.device.type == "mps" else torch.float64)


class ExactStatistics:
    """Mixin: exact float64 sums over a whole split (:meth:`MWeightNet.calibrate`), then the
    module's running statistics are set from them (``_apply_calibration``)."""

    _calib: dict | None = None

    def start_calibration(self) -> None:
        self._calib = {"n": 0}

    def _accumulate(self, n: int, **sums) -> None:
        c = self._calib
        if c is None:
            return
        c["n"] += n
        for k, v in sums.items():
            c[k] = c.get(k, 0.0) + v

    @torch.no_grad()
    def finish_calibration(self) -> None:
        c, self._calib = self._calib, None
        if c and c["n"] > 1:
            self._apply_calibration(c)

    def _apply_calibration(self, c: dict) -> None:
        raise NotImplementedError


class VectorBN(ExactStatistics, nn.Module):
    def __init__(self, dim: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.dim, self.momentum, self.eps = dim, momentum, eps
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_s2", torch.ones(()))

    def _apply_calibration(self, c: dict) -> None:
        n = c["n"]
        mu = c["sum"] / n
        s2 = (c["sq"] / n - float(mu @ mu)) * n / (n - 1)
        self.running_mean.copy_(mu.to(self.running_mean.dtype))
        self.running_s2.fill_(max(s2, 0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, dim) -> (N, dim)."""
        if self._calib is not None:
            x64 = exact(x)
            self._accumulate(x.shape[0], sum=x64.sum(0), sq=float((x64 * x64).sum()))
        if self.training and x.shape[0] > 1:
            if torch.is_grad_enabled() and x.requires_grad:
                out, mu, s2 = _VectorBNTrain.apply(x, self.eps)
            else:
                out, mu, s2, _ = _vbn_train(x, self.eps)
            with torch.no_grad():
                n = x.shape[0]
                # .to: under autocast the batch statistics may be bfloat16/float16; the buffers stay float32
                self.running_mean.lerp_(mu.to(self.running_mean.dtype), self.momentum)
                self.running_s2.lerp_((s2 * (n / (n - 1))).to(self.running_s2.dtype), self.momentum)
            return out
        return (x - self.running_mean) / torch.sqrt(self.running_s2 + self.eps)


class FactorNorm(ExactStatistics, nn.Module):
    """Per-feature batch normalisation of an interaction factor ``u_m`` (docs/method.md section 4).

    Like ``BatchNorm1d(affine=False)``, with two differences:

    - the variance has a floor of ``rel_floor`` times the factor's mean square. A constant
      (or nearly constant) modality has variance ~0; plain BN divides its rounding noise by
      sqrt(eps) and hands the interaction a random or constant-times-copy factor. With the
      floor it stays ~0.
    - the running statistics start as a cumulative average (then momentum), so they are
      statistics of the data from the first batch on, not a blend with the initial 0/1.
    """

    def __init__(self, dim: int, momentum: float = 0.1, eps: float = 1e-5, rel_floor: float = 1e-4,
                 affine: bool = False):
        super().__init__()
        self.dim, self.momentum, self.eps, self.rel_floor, self.affine = dim, momentum, eps, rel_floor, affine
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))
        self.register_buffer("running_sq", torch.ones(()))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        if affine:
            self.weight = nn.Parameter(torch.ones(dim))
            self.bias = nn.Parameter(torch.zeros(dim))

    def _apply_calibration(self, c: dict) -> None:
        n = c["n"]
        mu = c["sum"] / n
        var = (c["sq"] / n - mu * mu) * n / (n - 1)
        self.running_mean.copy_(mu.float())
        self.running_var.copy_(var.clamp_min(0.0).float())
        self.running_sq.fill_(float((c["sq"] / n).mean()))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """v: (N, dim) -> (N, dim)."""
        if self._calib is not None:
            v64 = exact(v)
            self._accumulate(v.shape[0], sum=v64.sum(0), sq=(v64 * v64).sum(0))
        if self.training and v.shape[0] > 1:
            n = v.shape[0]
            mu = v.mean(dim=0)
            var = (v - mu).pow(2).mean(dim=0)
            sq = v.pow(2).mean()
            with torch.no_grad():
                self.count += 1
                # cumulative average first (the initial 0/1 buffers are not statistics), then momentum
                w = max(self.momentum, 1.0 / float(self.count))
                f32 = self.running_mean.dtype  # the batch statistics may be half precision under autocast
                self.running_mean.lerp_(mu.detach().to(f32), w)
                self.running_var.lerp_((var.detach() * (n / (n - 1))).to(f32), w)
                self.running_sq.lerp_(sq.detach().to(f32), w)
        else:
            mu, var, sq = self.running_mean, self.running_var, self.running_sq
        out = (v - mu) * torch.rsqrt(var + self.eps + self.rel_floor * sq)
        if self.affine:
            out = out * self.weight + self.bias
        return out


class LowerOrderResidual(ExactStatistics, nn.Module):
    """An interaction's raw product minus its least-squares projection on its lower orders.

    ``r = t - E[t] - (x - E[x]) B`` with ``B = Cov(x)^-1 Cov(x, t)``, where ``x`` holds the
    features of every lower-order block of the interaction (its modalities' encoder outputs
    and the raw products of its proper sub-interactions). ``r`` is uncorrelated with every
    such feature whatever the factors' distribution (IterBN's mean subtraction is exact only
    for independent or jointly Gaussian factors): the empirical functional-ANOVA step.

    The moments are running estimates (float64, cumulative average first, then an
    exponential window of at least ``window`` x dim(x) samples), used in training AND at
    inference: training batches (16 samples) are smaller than dim(x) (hundreds), so a
    per-batch least-squares fit would be degenerate, and an eval prediction never depends
    on the rest of its batch. ``ridge`` scales a jitter by each regressor's variance (plus
    a tiny absolute one for constant regressors), so the solve is stable in float64.

    Cost: the moments are updated every training step (O(n dim(x)^2)), the fit is re-solved
    every ``refresh`` steps (O(dim(x)^3)), and in eval mode whenever the moments
    changed since the last solve. The window spans hundreds of steps, so a fit a few steps old
    differs from the current one by far less than the window's own noise; re-solving every
    step made MOSI's all-interactions model (a triple block over several hundred lower-order
    features) train 2.2x slower (benchmarks/anova_refresh_speed.py).
    """

    def __init__(self, x_dim: int, t_dim: int, window: float = 10.0, ridge: float = 1e-7, refresh: int = 4):
        super().__init__()
        self.x_dim, self.t_dim, self.window, self.ridge, self.refresh = x_dim, t_dim, window, ridge, refresh
        self._solved_at = -1  # the update count the current coefficients were solved at
        f64 = torch.float64
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("n_eff", torch.zeros((), dtype=f64))  # samples behind the moments
        self.register_buffer("mean_x", torch.zeros(x_dim, dtype=f64))
        self.register_buffer("mean_t", torch.zeros(t_dim, dtype=f64))
        self.register_buffer("sxx", torch.zeros(x_dim, x_dim, dtype=f64))  # E[x x^T]
        self.register_buffer("sxt", torch.zeros(x_dim, t_dim, dtype=f64))  # E[x t^T]
        self.register_buffer("coef", torch.zeros(x_dim, t_dim))
        self.register_buffer("shift", torch.zeros(t_dim))  # E[t] - E[x] B

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._solved_at = -1  # loaded moments: the next eval forward solves their fit

    def _apply_calibration(self, c: dict) -> None:
        n = c["n"]
        self.mean_x.copy_(c["x"] / n)
        self.mean_t.copy_(c["t"] / n)
        self.sxx.copy_(c["xx"] / n)
        self.sxt.copy_(c["xt"] / n)
        self.count.clamp_(min=1)
        self.n_eff.fill_(n)
        self._solve()

    @torch.no_grad()
    def update(self, t: torch.Tensor, x: torch.Tensor) -> None:
        n = t.shape[0]
        x64, t64 = x.detach().to(self.sxx.dtype), t.detach().to(self.sxx.dtype)  # float64 (float32 on MPS)
        self.count += 1
        w = max(1.0 / float(self.count), min(0.1, n / (self.window * (self.x_dim + 1))))
        self.mean_x.lerp_(x64.mean(0), w)
        self.mean_t.lerp_(t64.mean(0), w)
        self.sxx.lerp_(x64.T @ x64 / n, w)
        self.sxt.lerp_(x64.T @ t64 / n, w)
        self.n_eff.fill_(n / w)  # cumulative phase: count * n; then the exponential window
        k = int(self.count)
        if k <= self.refresh * 4 or k % self.refresh == 0:  # every step while the moments form
            self._solve()

    @torch.no_grad()
    def _solve(self) -> None:
        mx, mt = self.mean_x, self.mean_t
        cxx = self.sxx - torch.outer(mx, mx)
        cxt = self.sxt - torch.outer(mx, mt)
        diag = cxx.diagonal().clamp_min(0.0)
        # Shrinkage that grows as the moments rest on few samples per regressor: with n close
        # to dim(x) an unregularised fit interpolates the training data (in-sample residual
        # ~0, which vBN then scales up on new data). (dim/n)^2: negligible when n >> dim.
        shrink = min(1.0, (self.x_dim / max(float(self.n_eff), 1.0)) ** 2)
        jitter = (self.ridge + shrink) * diag + 1e-12 * float(diag.mean()) + 1e-30
        a = cxx + torch.diag(jitter)
        coef = torch.linalg.solve(a, cxt)
        self.coef.copy_(coef)
        self.shift.copy_(mt - mx @ coef)
        self._solved_at = int(self.count)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """t: (N, t_dim) raw product, x: (N, x_dim) lower-order features -> (N, t_dim) residual."""
        if self._calib is not None:
            x64, t64 = exact(x), exact(t)
            self._accumulate(t.shape[0], x=x64.sum(0), t=t64.sum(0), xx=x64.T @ x64, xt=x64.T @ t64)
        if self.training and t.shape[0] > 1:
            self.update(t, x)
        elif self._solved_at != int(self.count) and int(self.count) > 0 and self._calib is None:
            self._solve()  # inference uses the fit of the current moments (also after loading a state)
        return torch.addmm(t - self.shift, x, self.coef, alpha=-1.0)


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
                self.running_mean.lerp_(mu.to(self.running_mean.dtype), self.momentum)
            return mu
        return self.running_mean


def make_block_norm(kind: str, dim: int, interaction: bool = False) -> nn.Module:
    """The normalisation applied to a block's features before the final layer."""
    if kind not in NORMS:
        raise ValueError(f"unknown normalisation {kind!r}; expected one of {', '.join(NORMS)}")
    if kind == "none":
        return nn.Identity()
    if kind == "bn":  # per-feature: block variance = its dimension (docs/method.md section 3)
        return nn.BatchNorm1d(dim, affine=False)
    # every other norm (vbn, iterbn, anova) ends a block with the vector BN; they differ before it (fusion.py)
    return VectorBN(dim, eps=INTERACTION_EPS_PER_DIM * dim) if interaction else VectorBN(dim)
