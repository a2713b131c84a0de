"""vBN and IterBN (docs/method.md sections 3-4): the provable properties."""
import numpy as np
import pytest
import torch

from mweight.fusion import BlockFusion, block_name, iterbn_residual, outer_product, parse_interactions
from mweight.norm import VectorBN


def test_vbn_unit_batch_mean_squared_norm_and_centred():
    x = torch.randn(256, 12) * 5 + 3
    out = VectorBN(12).train()(x)
    assert torch.allclose(out.mean(0), torch.zeros(12), atol=1e-5)
    assert abs(out.pow(2).sum(1).mean().item() - 1.0) < 1e-3


def test_vbn_one_scale_per_block_keeps_feature_ratios():
    x = torch.randn(512, 3) * torch.tensor([1.0, 10.0, 0.1])
    out = VectorBN(3).train()(x)
    # a scalar scale: relative feature variances are preserved (per-feature BN would equalise them)
    ratio_in = x.var(0) / x.var(0).sum()
    ratio_out = out.var(0) / out.var(0).sum()
    assert torch.allclose(ratio_in, ratio_out, atol=1e-4)


@pytest.mark.parametrize("c", [0.1, 7.0, 1000.0])
def test_vbn_invariant_to_input_scale(c):
    x = torch.randn(128, 20)
    a, b = VectorBN(20).train(), VectorBN(20).train()
    assert torch.allclose(a(x), b(c * x), atol=1e-3)


def test_vbn_uses_running_statistics_in_eval():
    torch.manual_seed(0)
    bn = VectorBN(4, momentum=0.1).train()
    for _ in range(300):
        bn(torch.randn(64, 4) * 2 + torch.tensor([1.0, -2.0, 0.0, 5.0]))
    assert torch.allclose(bn.running_mean, torch.tensor([1.0, -2.0, 0.0, 5.0]), atol=0.25)
    assert abs(bn.running_s2.item() - 16.0) < 1.5  # E||x-mu||^2 = 4 dims * variance 4
    bn.eval()
    x = torch.tensor([[1.0, -2.0, 0.0, 5.0], [3.0, -2.0, 0.0, 5.0]])
    out = bn(x)
    expected = (x - bn.running_mean) / torch.sqrt(bn.running_s2 + bn.eps)
    assert torch.allclose(out, expected)
    # one sample in eval mode is fine and does not depend on the rest of the batch
    assert torch.allclose(bn(x[1:]), out[1:])


def _corr_max(res: torch.Tensor, u: torch.Tensor) -> float:
    r = res.reshape(res.shape[0], -1).double()
    u = u.double()
    r = (r - r.mean(0)) / r.std(0)
    u = (u - u.mean(0)) / u.std(0)
    return float((r.T @ u / (len(r) - 1)).abs().max())


def _correlated_factors(n=100_000, r=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    z1, z2, z3 = (torch.randn(n, r, generator=g, dtype=torch.float64) for _ in range(3))
    mix = torch.randn(r, r, generator=g, dtype=torch.float64)
    u1 = z1
    u2 = 0.8 * z1 @ mix + 0.6 * z2  # correlated with u1 across different coordinates
    u3 = 0.5 * z1 + 0.7 * z2.flip(1) + 0.5 * z3
    return [u - u.mean(0) for u in (u1, u2, u3)]


def _triple_residual(us, misaligned=False):
    u1, u2, u3 = us
    t = outer_product([u1, u2, u3])
    lower = [outer_product([u2, u3]).mean(0), outer_product([u1, u3]).mean(0), outer_product([u1, u2]).mean(0)]
    if misaligned:  # the authors' bug: lower-order terms laid out on the wrong axes
        lower = [lower[0].T, lower[1].T, lower[2]]
    return iterbn_residual(t, t.mean(0), lower, [u1, u2, u3])


def test_iterbn_triple_residual_uncorrelated_with_each_correlated_factor():
    us = _correlated_factors()
    assert _corr_max(us[0], us[1]) > 0.3  # the factors really are correlated
    res = _triple_residual(us)
    for u in us:
        assert _corr_max(res, u) < 0.05
    # raw product does carry lower-order signal
    assert max(_corr_max(outer_product(us), u) for u in us) > 0.3


def test_misaligned_axes_leak_with_correlated_factors():
    """The test above would catch the authors' axis-order bug."""
    res = _triple_residual(_correlated_factors(), misaligned=True)
    assert max(_corr_max(res, u) for u in _correlated_factors()) > 0.05


def test_blocks_uncorrelated_for_independent_centred_inputs():
    torch.manual_seed(0)
    n = 40_000
    dims = {"a": 5, "b": 4, "c": 3}
    h = {m: torch.randn(n, d) for m, d in dims.items()}
    fusion = BlockFusion(dims, parse_interactions("all", list(dims)), rank=3, norm="iterbn").train()
    with torch.no_grad():
        z = fusion(h)
    names = list(z)
    assert names == ["a", "b", "c", "a*b", "a*c", "b*c", "a*b*c"]
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            assert _corr_max(z[x], z[y]) < 0.05, (x, y)


def test_iterbn_module_with_correlated_inputs_removes_lower_orders():
    torch.manual_seed(0)
    n = 100_000
    base = torch.randn(n, 3)
    h = {"a": base + 0.3 * torch.randn(n, 3), "b": base[:, [1, 2, 0]] + 0.5 * torch.randn(n, 3),
         "c": base + 0.6 * torch.randn(n, 3)}
    fusion = BlockFusion({m: 3 for m in h}, [("a", "b", "c")], rank=3, norm="iterbn").train()
    with torch.no_grad():
        z = fusion(h)
        u = {m: fusion.factors[m](h[m]) for m in h}
    for m in h:
        assert _corr_max(z["a*b*c"], u[m]) < 0.05


def test_iterbn_eval_uses_running_means():
    torch.manual_seed(0)
    dims = {"a": 4, "b": 4}
    fusion = BlockFusion(dims, [("a", "b")], rank=2, norm="iterbn")
    fusion.train()
    for _ in range(50):
        fusion({m: torch.randn(128, 4) + 1.0 for m in dims})
    fusion.eval()
    x = {m: torch.randn(8, 4) + 1.0 for m in dims}
    full = fusion(x)["a*b"]
    part = fusion({m: v[:3] for m, v in x.items()})["a*b"]
    assert torch.allclose(full[:3], part)  # eval output does not depend on batch composition


def test_block_names_follow_dataset_order():
    mods = ["text", "audio", "video"]
    assert parse_interactions(["video*text", "audio*text*video"], mods) == [("text", "video"),
                                                                           ("text", "audio", "video")]
    assert block_name(("text", "video")) == "text*video"
    assert len(parse_interactions("all", mods)) == 4
    assert parse_interactions("pairs", mods) == [("text", "audio"), ("text", "video"), ("audio", "video")]
    with pytest.raises(ValueError, match="unknown modality 'speech'"):
        parse_interactions(["text*speech"], mods)


def test_general_order_four_blocks_are_built_and_centred():
    torch.manual_seed(0)
    dims = {m: 3 for m in "abcd"}
    fusion = BlockFusion(dims, [tuple("abcd")], rank=2, norm="iterbn").train()
    h = {m: torch.randn(4000, 3) for m in dims}
    z = fusion(h)["a*b*c*d"]
    assert z.shape == (4000, 16)
    assert abs(z.pow(2).sum(1).mean().item() - 1.0) < 1e-3


@pytest.mark.parametrize("norm", ["none", "bn", "vbn", "iterbn"])
def test_every_normalisation_runs(norm):
    dims = {"a": 4, "b": 3}
    fusion = BlockFusion(dims, [("a", "b")], rank=2, norm=norm).train()
    z = fusion({"a": torch.randn(16, 4), "b": torch.randn(16, 3)})
    assert z["a*b"].shape == (16, 4)


def test_factor_affine_option():
    f = BlockFusion({"a": 3, "b": 3}, [("a", "b")], rank=2, norm="iterbn", factor_affine=True)
    assert f.factors["a"][1].affine
    f = BlockFusion({"a": 3, "b": 3}, [("a", "b")], rank=2, norm="iterbn")
    assert not f.factors["a"][1].affine
    _ = np
