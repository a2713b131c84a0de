"""The fast paths of the training step compute exactly what the plain formulas compute.

vBN's one-node autograd Function, the segment-sum block norms, the functional MLP
forward, the numpy weighted F1 and IterBN's fused residual, each against the plain
(slower) reference, values and gradients.
"""
import numpy as np
import pytest
import torch

from mweight.encoders import MLPEncoder
from mweight.fusion import iterbn_residual, outer_product
from mweight.metrics import _weighted_f1
from mweight.norm import VectorBN
from mweight.relevance import block_norms


def vbn_reference(x, eps=1e-5):
    mu = x.mean(dim=0)
    centred = x - mu
    s2 = centred.pow(2).sum(dim=1).mean()
    return centred / torch.sqrt(s2 + eps), mu, s2


@pytest.mark.parametrize("shape", [(16, 12), (2, 3), (40, 64)])
def test_vbn_function_matches_autograd_of_the_formula(shape):
    torch.manual_seed(0)
    x = (torch.randn(*shape, dtype=torch.float64) * 3 + 1).requires_grad_()
    bn = VectorBN(shape[1]).double().train()
    g = torch.randn(*shape, dtype=torch.float64)
    out = bn(x)
    ref, mu, s2 = vbn_reference(x)
    assert torch.allclose(out, ref, atol=1e-12)
    (ga,) = torch.autograd.grad((out * g).sum(), x)
    (gb,) = torch.autograd.grad((ref * g).sum(), x)
    assert torch.allclose(ga, gb, atol=1e-10)
    n = shape[0]
    assert torch.allclose(bn.running_mean, 0.1 * mu.detach(), atol=1e-12)
    assert torch.allclose(bn.running_s2, 0.9 + 0.1 * s2.detach() * n / (n - 1), atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: VectorBN(shape[1]).double().train()(t), (x,))


def test_vbn_without_grad_and_in_eval_match_the_formula():
    torch.manual_seed(1)
    x = torch.randn(8, 5)
    bn = VectorBN(5).train()
    with torch.no_grad():
        out = bn(x)
    assert torch.allclose(out, vbn_reference(x)[0], atol=1e-6)
    bn.eval()
    expected = (x - bn.running_mean) / torch.sqrt(bn.running_s2 + bn.eps)
    assert torch.allclose(bn(x), expected)


@pytest.mark.parametrize("slices", [
    [slice(0, 5), slice(5, 12), slice(12, 20)],
    [slice(0, 3), slice(7, 9)],  # not covering every column
    [slice(0, 10), slice(5, 15)],  # overlapping
    [slice(0, 20, 2), slice(1, 20, 2)],  # strided: falls back to the per-slice path
])
def test_block_norms_match_per_slice_frobenius_norms(slices):
    torch.manual_seed(2)
    w = torch.randn(3, 20, dtype=torch.float64, requires_grad=True)
    got = block_norms(w, slices)
    ref = torch.stack([torch.sqrt(w[:, s].pow(2).sum() + 1e-12) for s in slices])
    assert torch.allclose(got, ref, atol=1e-12)
    c = torch.randn(len(slices), dtype=torch.float64)
    (ga,) = torch.autograd.grad((got * c).sum(), w)
    (gb,) = torch.autograd.grad((ref * c).sum(), w)
    assert torch.allclose(ga, gb, atol=1e-12)


def test_block_norms_of_zero_weights_have_finite_zero_gradient():
    w = torch.zeros(1, 6, requires_grad=True)
    n = block_norms(w, [slice(0, 2), slice(2, 6)])
    n.sum().backward()
    assert torch.isfinite(w.grad).all() and float(w.grad.abs().max()) == 0.0


@pytest.mark.parametrize("opts", [{}, {"norm": "layer", "input_dropout": 0.3}, {"norm": "batch", "layers": 3}])
@pytest.mark.parametrize("training", [True, False])
def test_mlp_functional_forward_equals_its_module_stack(opts, training):
    torch.manual_seed(3)
    enc = MLPEncoder((10,), hidden=8, dropout=0.2, **opts).train(training)
    x = torch.randn(16, 10)
    torch.manual_seed(4)
    a = enc(x)
    torch.manual_seed(4)
    b = enc.net(x)
    assert torch.equal(a, b)
    if training:
        assert not torch.equal(enc(x), enc.eval()(x))  # dropout really runs in training


def test_iterbn_residual_equals_the_plain_formula():
    torch.manual_seed(5)
    u = [torch.randn(16, 4, dtype=torch.float64) for _ in range(3)]
    t = outer_product(u)
    mean_s = t.mean(0)
    lower = [outer_product([u[i] for i in range(3) if i != j]).mean(0) for j in range(3)]
    got = iterbn_residual(t, mean_s, lower, u)
    ref = t - mean_s
    ref = ref - lower[0][None, None, :, :] * u[0][:, :, None, None]
    ref = ref - lower[1][None, :, None, :] * u[1][:, None, :, None]
    ref = ref - lower[2][None, :, :, None] * u[2][:, None, None, :]
    assert torch.allclose(got, ref, atol=1e-12)


def test_weighted_f1_equals_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    for i in range(500):
        n, k = int(rng.integers(1, 30)), int(rng.integers(1, 5))
        t, p = rng.integers(0, k, n), rng.integers(0, k + 1, n)
        if i % 3 == 0:
            t, p = t > 0, p > 1
        expected = f1_score(t, p, average="weighted", zero_division=0)
        assert _weighted_f1(t, p) == pytest.approx(expected, abs=1e-12)
