"""Relevance weights beta under an lp-norm constraint (MNL; docs/method.md section 2).

For the final linear layer split into blocks W_S, the objective penalises
``lam * sum_S ||W_S||^2 / beta_S`` subject to ``beta >= 0, ||beta||_p <= 1``.
For fixed W the optimal beta has the closed form (Kloft et al., JMLR 2011)::

    beta_S = ||W_S||^{2/(p+1)} / (sum_T ||W_T||^{2p/(p+1)})^{1/p}

and substituting it back gives the *eliminated* penalty
``(sum_S ||W_S||^q)^{2/q}`` with ``q = 2p/(p+1)``. Norms are Frobenius norms of
each block over all output rows; the bias is not penalised.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import torch

_EPS = 1e-12


def q_from_p(p: float) -> float:
    """q = 2p/(p+1) in [1, 2); p = inf gives q = 2 (plain ridge)."""
    _check_p(p)
    return 2.0 if math.isinf(p) else 2.0 * p / (p + 1.0)


def _check_p(p: float) -> None:
    if not (p >= 1.0):
        raise ValueError(f"p must be a real number >= 1 (got {p!r})")


@functools.lru_cache(maxsize=64)
def _block_indicator(bounds: tuple[tuple[int, int], ...], n_cols: int, dtype: torch.dtype,
                     device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """(n_cols, n_blocks) 0/1 matrix: column j belongs to block b (cached per device: made there once)."""
    m = torch.zeros(n_cols, len(bounds), dtype=dtype, device=device)
    for b, (start, stop) in enumerate(bounds):
        m[start:stop, b] = 1.0
    return m


def block_norms(weight: torch.Tensor, slices: Sequence[slice]) -> torch.Tensor:
    """Frobenius norm of each column block of ``weight`` (out, in) -> (n_blocks,).

    Differentiable everywhere (a tiny epsilon keeps the gradient finite at 0).
    Computed as one segment sum (column sums of squares times a cached 0/1 block
    matrix) instead of one slice/pow/sum/sqrt chain per block: the same sums, in a
    handful of ops, which matters because the penalty is evaluated at every step.
    """
    n_cols = weight.shape[1]
    bounds = []
    for s in slices:
        start, stop, step = s.indices(n_cols)
        if step != 1:
            return torch.stack([torch.sqrt(weight[:, s].pow(2).sum() + _EPS) for s in slices])
        bounds.append((start, stop))
    ind = _block_indicator(tuple(bounds), n_cols, weight.dtype, weight.device)
    return torch.sqrt(weight.pow(2).sum(0) @ ind + _EPS)


def closed_form_beta(norms, p: float):
    """Optimal beta on the p-sphere for given block norms (torch or numpy, any real p >= 1).

    All-zero norms give the uniform point of the sphere. p = inf gives beta = 1.
    """
    _check_p(p)
    is_torch = isinstance(norms, torch.Tensor)
    n = norms if is_torch else np.asarray(norms, dtype=np.float64)
    if math.isinf(p):
        return torch.ones_like(n) if is_torch else np.ones_like(n)
    num = n ** (2.0 / (p + 1.0))
    den = ((n ** (2.0 * p / (p + 1.0))).sum()) ** (1.0 / p)
    if float(den) <= 0.0:
        k = n.shape[0]
        uni = k ** (-1.0 / p)
        return torch.full_like(n, uni) if is_torch else np.full_like(n, uni)
    return num / den


def mnl_penalty(norms: torch.Tensor, p: float) -> torch.Tensor:
    """Eliminated penalty (sum_S ||W_S||^q)^{2/q}; equals min_beta sum ||W_S||^2 / beta_S."""
    q = q_from_p(p)
    return norms.pow(q).sum().pow(2.0 / q)


def explicit_penalty(norms: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """The slides' form with beta kept as a parameter: sum_S ||W_S||^2 / beta_S."""
    return (norms.pow(2) / beta.clamp_min(1e-8)).sum()


def shares(beta) -> np.ndarray:
    """beta normalised to sum 1 ("share"); for p = 1 this equals beta itself."""
    b = np.asarray(beta.detach().cpu() if isinstance(beta, torch.Tensor) else beta, dtype=np.float64)
    b = np.clip(b, 0.0, None)
    s = b.sum()
    return b / s if s > 0 else np.full_like(b, 1.0 / len(b))


def project_lp_ball(v: np.ndarray, p: float, floor: float = 1e-6) -> np.ndarray:
    """Euclidean projection of v onto {beta >= floor, ||beta||_p <= 1}.

    A true Euclidean projection (not a radial rescale): its fixed points under
    projected gradient descent are the KKT points, i.e. the closed form above.
    p = 1 uses the sort-based simplex projection; p = 2 the ball formula; other p
    solve the KKT system ``b + mu p b^{p-1} = v`` by nested bisection.
    """
    _check_p(p)
    v = np.asarray(v, dtype=np.float64)
    b = np.clip(v, 0.0, None)
    if math.isinf(p):
        return np.clip(v, floor, 1.0)
    if (b ** p).sum() <= 1.0:
        return np.clip(b, floor, None)
    if p == 1.0:
        u = np.sort(b)[::-1]
        css = np.cumsum(u)
        k = np.arange(1, len(u) + 1)
        rho = np.nonzero(u - (css - 1.0) / k > 0)[0][-1]
        theta = (css[rho] - 1.0) / (rho + 1.0)
        out = np.clip(b - theta, 0.0, None)
    elif p == 2.0:
        out = b / np.sqrt((b ** 2).sum())
    else:
        def solve(mu: np.ndarray) -> np.ndarray:
            """Per coordinate, b + mu p b^(p-1) = v by bisection; mu (M, 1) -> (M, k)."""
            lo = np.zeros((len(mu), len(b)))
            hi = np.broadcast_to(b, lo.shape).copy()
            for _ in range(50):
                mid = 0.5 * (lo + hi)
                f = mid + mu * p * mid ** (p - 1.0) - b
                lo = np.where(f < 0, mid, lo)
                hi = np.where(f >= 0, mid, hi)
            return 0.5 * (lo + hi)

        def norm_p(mu: np.ndarray) -> np.ndarray:
            return (solve(mu) ** p).sum(axis=1)

        mu_lo, mu_hi = 0.0, 1.0
        while norm_p(np.array([[mu_hi]]))[0] > 1.0:
            mu_lo, mu_hi = mu_hi, mu_hi * 4.0
        for _ in range(5):  # shrink the bracket 32x per round, all candidates at once
            grid = np.linspace(mu_lo, mu_hi, 33)[:, None]
            inside = np.nonzero(norm_p(grid) <= 1.0)[0]
            i = int(inside[0]) if len(inside) else 32
            mu_lo, mu_hi = float(grid[max(i - 1, 0), 0]), float(grid[i, 0])
        out = solve(np.array([[mu_hi]]))[0]
    return np.clip(out, floor, None)


def beta_objective(beta: np.ndarray, sq_norms: np.ndarray) -> float:
    return float((sq_norms / np.maximum(beta, 1e-300)).sum())


def beta_pgd(beta: np.ndarray, sq_norms: np.ndarray, p: float, step: float, iters: int = 5,
             floor: float = 1e-6) -> tuple[np.ndarray, float]:
    """Projected gradient descent on ``sum_S a_S / beta_S`` over the p-ball (explicit-beta mode).

    Backtracking (Armijo on the projected step) keeps every step a descent step, so
    beta never jumps to the boundary where ``a / beta`` explodes. Returns the new
    beta and the step size to start from next time. Its fixed point is the closed
    form (the test compares them).
    """
    b = project_lp_ball(np.asarray(beta, dtype=np.float64), p, floor)
    a = np.asarray(sq_norms, dtype=np.float64)
    f = beta_objective(b, a)
    t = step
    for _ in range(iters):
        g = -a / b ** 2
        for _ in range(40):
            cand = project_lp_ball(b - t * g, p, floor)
            d = cand - b
            fc = beta_objective(cand, a)
            if fc <= f + float(g @ d) + float(d @ d) / (2 * t) + 1e-15:
                break
            t *= 0.5
        if np.allclose(cand, b, rtol=0, atol=1e-12):
            b, f = cand, fc
            break
        b, f = cand, fc
        t *= 2.0
    return b, t
