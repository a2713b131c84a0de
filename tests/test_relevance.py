"""MNL relevance: closed-form beta, the eliminated penalty, the projection (docs/method.md section 2)."""
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from mweight.relevance import (beta_pgd, block_norms, closed_form_beta, mnl_penalty, project_lp_ball, q_from_p,
                               shares)

NORMS = np.array([1.3, 0.4, 0.05, 0.9, 0.0001])


@pytest.mark.parametrize("p", [1.0, 1.3, 2.0, 3.7])
def test_closed_form_beta_minimises_on_the_p_sphere(p):
    a = NORMS ** 2
    beta = closed_form_beta(NORMS, p)
    assert np.isclose((beta ** p).sum(), 1.0)
    obj = lambda b: float((a / np.maximum(b, 1e-12)).sum())
    cons = {"type": "eq", "fun": lambda b: (np.abs(b) ** p).sum() - 1.0}
    best = min(
        (minimize(obj, x0, constraints=[cons], bounds=[(1e-9, 1)] * len(a), method="SLSQP",
                  options={"ftol": 1e-14, "maxiter": 500})
         for x0 in (np.full(len(a), len(a) ** (-1 / p)), np.sqrt(NORMS) / np.linalg.norm(np.sqrt(NORMS), p))),
        key=lambda r: r.fun)
    assert obj(beta) <= best.fun * (1 + 1e-6)
    # and the numerical optimum is (near) the closed form itself
    assert np.allclose(best.x, beta, atol=2e-3)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 4.0])
def test_penalty_equals_eliminated_form(p):
    n = torch.tensor(NORMS, dtype=torch.float64)
    q = 2 * p / (p + 1)
    assert math.isclose(q_from_p(p), q)
    pen = mnl_penalty(n, p)
    assert torch.isclose(pen, (n ** q).sum() ** (2 / q))
    beta = closed_form_beta(n, p)
    assert torch.isclose(pen, (n ** 2 / beta).sum(), rtol=1e-9)


def test_p1_beta_is_norm_share_and_sums_to_one():
    beta = closed_form_beta(NORMS, 1.0)
    assert np.allclose(beta, NORMS / NORMS.sum())
    assert np.isclose(beta.sum(), 1.0)
    assert np.allclose(shares(closed_form_beta(NORMS, 2.0)).sum(), 1.0)


def test_penalty_is_differentiable_in_the_weights():
    w = torch.randn(1, 10, requires_grad=True)
    slices = [slice(0, 3), slice(3, 4), slice(4, 10)]
    pen = mnl_penalty(block_norms(w, slices), 1.0)
    assert pen.requires_grad
    pen.backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    # zero blocks keep a finite gradient
    w2 = torch.zeros(1, 10, requires_grad=True)
    mnl_penalty(block_norms(w2, slices), 2.0).backward()
    assert torch.isfinite(w2.grad).all()


def test_invalid_p_is_rejected():
    with pytest.raises(ValueError):
        closed_form_beta(NORMS, 0.5)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
def test_projection_is_euclidean_projection_onto_lp_ball(p):
    rng = np.random.default_rng(1)
    for _ in range(3):
        v = rng.normal(size=5) + 0.5
        proj = project_lp_ball(v, p, floor=0.0)
        assert (proj >= 0).all() and (proj ** p).sum() <= 1 + 1e-6
        res = minimize(lambda b: ((b - v) ** 2).sum(), np.full(5, 0.1), method="SLSQP", bounds=[(0, None)] * 5,
                       constraints=[{"type": "ineq", "fun": lambda b: 1 - (np.abs(b) ** p).sum()}],
                       options={"ftol": 1e-14, "maxiter": 500})
        assert np.allclose(proj, res.x, atol=2e-3)
    inside = np.array([0.1, 0.2, 0.05])
    assert np.allclose(project_lp_ball(inside, p, floor=0.0), inside)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0])
def test_explicit_beta_pgd_converges_to_closed_form(p):
    a = NORMS[:4] ** 2
    beta, step = np.full(4, 4 ** (-1 / p)), 1.0
    for _ in range(30):
        beta, step = beta_pgd(beta, a, p, step, iters=5, floor=1e-9)
    assert np.allclose(beta, closed_form_beta(NORMS[:4], p), atol=1e-3)
