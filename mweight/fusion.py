"""Blocks: unimodal blocks and tensor-fusion interaction blocks (docs/method.md sections 1, 4).

A *block* S is one modality or a subset of modalities (an interaction). Block
names are the modality name, or the modality names joined with ``*`` in the
dataset's modality order (``text*audio``). :class:`BlockFusion` maps the encoder
outputs ``{modality: h_m}`` to the block features ``{block: z_S}`` that the one
final linear layer combines.

Interactions use one factor per modality ``u_m = FactorNorm(Linear_{d_m -> r}(h_m))``
shared by every interaction that contains it, and the raw product
``t_S = vec(outer(u_m for m in S))`` (dimension r^|S|, no appended 1). Each
interaction block removes its lower orders before vBN scales it (docs/method.md):

- ``anova`` (default): ``t_S`` minus its least-squares projection on the features of
  every lower-order block of S (the encoder outputs h_m, m in S, and the raw products of
  every proper sub-interaction), from running moments. Exact for any factor
  distribution and any order: the block is uncorrelated with everything below it.
- ``iterbn`` (the published rule, kept to show the difference)::

      c_S = E[t_S] + sum_{m in S} E[t_{S minus m}] (x) u_m      (axes in S order)

  E is the batch mean of the RAW lower-order products (running means at inference).
  Every term is laid out on the axes of t_S (the authors' code flattened two of the
  three triple terms in the wrong axis order; the test with correlated factors catches
  that). Exact only when the factors are independent or jointly Gaussian.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import torch
from torch import nn

from .config import NORMS
from .norm import FactorNorm, LowerOrderResidual, RunningMean, make_block_norm


def block_name(modalities: Sequence[str]) -> str:
    return "*".join(modalities)


def parse_interactions(spec, modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Turn a config value into interaction subsets, each in dataset modality order.

    ``spec``: ``[]``/``None`` (none), ``"all"`` (every subset of order >= 2),
    ``"pairs"``, ``"triples"``, ``"order<=k"``, or a list of names like
    ``"text*audio"`` / lists like ``["text", "audio"]``.
    """
    mods = list(modalities)
    if spec in (None, "none", [], ()):
        return []
    if isinstance(spec, str):
        if spec == "all":
            orders = range(2, len(mods) + 1)
        elif spec == "pairs":
            orders = [2]
        elif spec == "triples":
            orders = [3]
        elif spec.startswith("order<="):
            orders = range(2, int(spec[len("order<="):]) + 1)
        else:
            spec = [spec]
            orders = None
        if orders is not None:
            return [c for k in orders for c in itertools.combinations(mods, k)]
    out: list[tuple[str, ...]] = []
    for item in spec:
        names = item.split("*") if isinstance(item, str) else list(item)
        names = [n.strip() for n in names]
        unknown = [n for n in names if n not in mods]
        if unknown:
            raise ValueError(
                f"interaction {item!r}: unknown modality {unknown[0]!r}; the dataset has {', '.join(mods)}"
            )
        if len(set(names)) != len(names) or len(names) < 2:
            raise ValueError(f"interaction {item!r}: expected 2 or more distinct modalities")
        subset = tuple(sorted(names, key=mods.index))
        if subset not in out:
            out.append(subset)
    return out


def outer_product(factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """(N, r_1), ..., (N, r_k) -> (N, r_1, ..., r_k), axes in the given order."""
    out = factors[0]
    for u in factors[1:]:
        out = out.unsqueeze(-1) * u.view(u.shape[0], *([1] * (out.dim() - 1)), u.shape[1])
    return out


def proper_subsets(s: tuple[str, ...], min_order: int = 2) -> list[tuple[str, ...]]:
    """Every sub-interaction of ``s`` of order ``min_order`` .. |s|-1, in ``s`` order."""
    return [c for k in range(min_order, len(s)) for c in itertools.combinations(s, k)]


def iterbn_residual(
    t_s: torch.Tensor,
    mean_s: torch.Tensor,
    lower_means: Sequence[torch.Tensor],
    factors: Sequence[torch.Tensor],
) -> torch.Tensor:
    """t_S - E[t_S] - sum_j E[t_{S minus j}] (x) u_j, with u_j placed on axis j.

    t_s: (N, r, ..., r) with k axes after N; mean_s: (r,)*k; lower_means[j]:
    (r,)*(k-1), the mean of the product over all factors but j (in order);
    factors[j]: (N, r).
    """
    k = len(factors)
    res = t_s - mean_s
    for j, (m_low, u) in enumerate(zip(lower_means, factors)):
        # E[t_A] gets a singleton axis at position j; u_j varies along axis j only.
        low_shape = [1, *m_low.shape]
        low_shape.insert(1 + j, 1)
        low = m_low.view(low_shape)  # (1, r.., 1 at j, ..r)
        shape = [u.shape[0]] + [1] * k
        shape[1 + j] = u.shape[1]
        # res - low * u in one op (value=-1 negates the product exactly: same numbers)
        res = torch.addcmul(res, low, u.view(shape), value=-1.0)
    return res


class BlockFusion(nn.Module):
    """{modality: h_m (N, d_m)} -> ordered {block name: z_S (N, dim_S)}.

    Parameters
    ----------
    dims: encoder output size per modality, in dataset modality order.
    interactions: subsets (tuples of modality names in dataset order).
    rank: r, the factor size of interaction blocks.
    norm: one of :data:`config.NORMS`.
    factor_affine: learnable shift/scale in the factor BN (off by default: a
        learnable shift lets E[u_m] drift from 0 and re-opens leakage).
    """

    def __init__(
        self,
        dims: dict[str, int],
        interactions: Sequence[tuple[str, ...]] = (),
        rank: int = 8,
        norm: str = "anova",
        factor_affine: bool = False,
    ):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"model.norm: unknown normalisation {norm!r}; expected one of {', '.join(NORMS)}")
        self.modalities = list(dims)
        self.interactions = [tuple(s) for s in interactions]
        self.rank, self.norm = rank, norm
        self.unimodal_norms = nn.ModuleDict({m: make_block_norm(norm, d) for m, d in dims.items()})
        factor_mods = [m for m in self.modalities if any(m in s for s in self.interactions)]
        self.factors = nn.ModuleDict()
        for m in factor_mods:
            layers: list[nn.Module] = [nn.Linear(dims[m], rank)]
            if norm != "none":
                # Batch statistics in training for every norm, like BN: the gradient through the
                # batch mean and variance is what lets XOR leave its saddle (normalising with the
                # running statistics in training left 2 of 3 XOR seeds at chance for 13 epochs;
                # with batch statistics they converged by epoch 3 and 5). anova's moments are then
                # fitted on batch-normalised products; calibration makes them exact at the end.
                layers.append(FactorNorm(rank, affine=factor_affine))
            self.factors[m] = nn.Sequential(*layers)
        self.block_norms = nn.ModuleDict(
            {block_name(s): make_block_norm(norm, rank ** len(s), interaction=True) for s in self.interactions}
        )
        # IterBN: running means of the raw products of every subset it subtracts, one module
        # per subset (shared by the interactions that need it, updated once per forward).
        self._mean_keys: dict[tuple[str, ...], str] = {}
        # S minus m for each m in S, in S order (the lower-order products IterBN subtracts)
        self._lower = {s: [tuple(x for x in s if x != m) for m in s] for s in self.interactions}
        self.product_means = nn.ModuleDict()
        # anova: one residualiser per interaction, on its own lower-order features.
        self._anova_lower = {s: proper_subsets(s) for s in self.interactions}
        self.residuals = nn.ModuleDict()
        if norm == "iterbn":
            for s in self.interactions:
                for a in [s] + self._lower[s]:
                    if a not in self._mean_keys:
                        key = "m_" + "__".join(a)
                        self._mean_keys[a] = key
                        self.product_means[key] = RunningMean((rank,) * len(a))
        if norm == "anova":
            for s in self.interactions:
                x_dim = sum(dims[m] for m in s) + sum(rank ** len(a) for a in self._anova_lower[s])
                self.residuals[block_name(s)] = LowerOrderResidual(x_dim, rank ** len(s))

    @property
    def block_names(self) -> list[str]:
        return list(self.modalities) + [block_name(s) for s in self.interactions]

    def calibration_stages(self) -> list[list[nn.Module]]:
        """Modules whose statistics :meth:`MWeightNet.calibrate` makes exact, stage by stage.

        ``anova`` only: the factors' normalisation first (the products depend on it), then
        the residualisers' moments, then the interaction blocks' vBN (the residuals changed).
        """
        if self.norm != "anova" or not self.interactions:
            return []
        return [[f[1] for f in self.factors.values()], list(self.residuals.values()),
                [self.block_norms[block_name(s)] for s in self.interactions]]

    def block_dims(self, dims: dict[str, int]) -> list[int]:
        return [dims[m] for m in self.modalities] + [self.rank ** len(s) for s in self.interactions]

    def forward(self, h: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        z = {m: self.unimodal_norms[m](h[m]) for m in self.modalities}
        if not self.interactions:
            return z
        u = {m: f(h[m]) for m, f in self.factors.items()}
        n = next(iter(h.values())).shape[0]
        raw: dict[tuple[str, ...], torch.Tensor] = {}
        means: dict[tuple[str, ...], torch.Tensor] = {}

        def product(a: tuple[str, ...]) -> torch.Tensor:
            if a not in raw:
                raw[a] = outer_product([u[m] for m in a])
            return raw[a]

        def mean(a: tuple[str, ...]) -> torch.Tensor:  # each running mean updated once per forward
            if a not in means:
                means[a] = self.product_means[self._mean_keys[a]](product(a))
            return means[a]

        for s in self.interactions:
            name = block_name(s)
            t = product(s)
            if self.norm == "iterbn":
                t = iterbn_residual(t, mean(s), [mean(a) for a in self._lower[s]], [u[m] for m in s])
            t = t.reshape(n, -1)
            if self.norm == "anova":
                lower = [h[m] for m in s] + [product(a).reshape(n, -1) for a in self._anova_lower[s]]
                # The projection is a statistic of the lower orders (like BN's running mean), so
                # it passes no gradient to them: otherwise the interaction's loss shapes the
                # lower-order encoders through "- x B", and on dependent modalities the pair block
                # took 23-36% of the prediction on 2 of 5 seeds (test MAE 0.38 against 0.21);
                # detached, it takes <= 0.03% on every seed (paper_repro/README.md, nuisance).
                t = self.residuals[name](t, torch.cat(lower, dim=1).detach())
            z[name] = self.block_norms[name](t)
        return z
