"""The network: encoders -> blocks -> ONE final linear layer split into blocks.

``f(x) = sum_S W_S z_S(x) + b``: the contribution of block S to a sample's
prediction is exactly ``W_S z_S(x)`` (docs/method.md section 1); :meth:`MWeightNet.forward`
returns them with the prediction.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .config import RELEVANCE_MODES, ModelConfig
from .data import is_token_ids
from .encoders import build_encoder, default_encoder
from .fusion import BlockFusion, parse_interactions
from .relevance import beta_pgd, block_norms, closed_form_beta, explicit_penalty, mnl_penalty


class Output(NamedTuple):
    prediction: torch.Tensor  # (N, out)
    contributions: dict[str, torch.Tensor] | None  # block -> (N, out); bias excluded
    bias: torch.Tensor  # (out,)


class InputNorm(nn.Module):
    """z-score with training statistics; non-finite values (-inf, NaN) become the mean (0)."""

    def __init__(self, shape: tuple[int, ...], enabled: bool = True):
        super().__init__()
        self.enabled = enabled
        self.register_buffer("mean", torch.zeros(shape[-1]))
        self.register_buffer("std", torch.ones(shape[-1]))

    @torch.no_grad()
    def fit(self, x: np.ndarray, lengths: np.ndarray | None = None) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 3:
            if lengths is not None:
                mask = np.arange(x.shape[1])[None, :] < lengths[:, None]
                x = x[mask]
            else:
                x = x.reshape(-1, x.shape[-1])
        x = np.where(np.isfinite(x), x, np.nan)
        with np.errstate(all="ignore"):
            mean = np.nan_to_num(np.nanmean(x, axis=0))
            std = np.nan_to_num(np.nanstd(x, axis=0))
        std[std < 1e-8] = 1.0
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.enabled:  # in place on the fresh tensor: fewer allocations, same numbers
            return (x - self.mean).div_(self.std).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


class MWeightNet(nn.Module):
    """Encoders per modality, :class:`BlockFusion`, one final linear layer, relevance beta.

    Parameters
    ----------
    shapes: per-modality sample shape and dtype kind, in dataset order:
        ``{"text": ((100,), "f"), "m1": ((100,), "i"), "audio": ((50, 74), "f")}``.
    out_dim: 1 for regression, K for K classes.
    cfg: :class:`ModelConfig`.
    """

    def __init__(self, shapes: dict[str, tuple[tuple[int, ...], str]], out_dim: int, cfg: ModelConfig,
                 standardize: bool = True):
        super().__init__()
        self.cfg = cfg
        self.shapes = dict(shapes)
        self.modalities = list(shapes)
        self.encoders = nn.ModuleDict()
        self.input_norms = nn.ModuleDict()
        self.encoder_names: dict[str, str] = {}
        for m, (shape, kind) in shapes.items():
            opts = dict(cfg.encoders.get(m, {}) or {})
            name = opts.pop("name", None) or default_encoder(np.zeros((1, *shape), dtype="i8" if kind == "i" else "f4"))
            opts.setdefault("hidden", cfg.hidden)
            if "dropout" not in opts and name != "dna_cnn":
                opts["dropout"] = cfg.dropout
            self.encoders[m] = build_encoder(name, shape, modality=m, **opts)
            self.encoder_names[m] = name
            if kind == "f":
                self.input_norms[m] = InputNorm(shape, enabled=standardize)
        dims = {m: self.encoders[m].out_dim for m in self.modalities}
        self.interactions = parse_interactions(cfg.interactions, self.modalities)
        self.fusion = BlockFusion(dims, self.interactions, rank=cfg.rank, norm=cfg.norm,
                                  factor_affine=cfg.factor_affine)
        self.block_names = self.fusion.block_names
        sizes = self.fusion.block_dims(dims)
        self.slices = []
        start = 0
        for size in sizes:
            self.slices.append(slice(start, start + size))
            start += size
        self.final = nn.Linear(start, out_dim)
        self.out_dim = out_dim
        if cfg.relevance not in RELEVANCE_MODES:
            raise ValueError(f"model.relevance: unknown mode {cfg.relevance!r}; expected one of {', '.join(RELEVANCE_MODES)}")
        if cfg.relevance == "explicit":
            k = len(self.block_names)
            # Updated by projected gradient steps (beta_step), not by the optimiser.
            self.beta = nn.Parameter(torch.full((k,), k ** (-1.0 / cfg.p)), requires_grad=False)
            self._beta_step_size = 1.0
        else:
            self.register_parameter("beta", None)

    # -- forward ----------------------------------------------------------
    def encode(self, inputs: dict[str, torch.Tensor], lengths: dict[str, torch.Tensor] | None = None
               ) -> dict[str, torch.Tensor]:
        """Block features {block: z_S (N, dim_S)} in block order."""
        lengths = lengths or {}
        h = {}
        for m in self.modalities:
            x = inputs[m]
            if m in self.input_norms:
                x = self.input_norms[m](x)
            h[m] = self.encoders[m](x, lengths.get(m))
        return self.fusion(h)

    def forward(self, inputs: dict[str, torch.Tensor], lengths: dict[str, torch.Tensor] | None = None,
                contributions: bool = False) -> Output:
        z = self.encode(inputs, lengths)
        feats = torch.cat([z[b] for b in self.block_names], dim=1)
        pred = self.final(feats)
        contrib = None
        if contributions:
            w = self.final.weight
            contrib = {b: z[b] @ w[:, s].T for b, s in zip(self.block_names, self.slices)}
        return Output(pred, contrib, self.final.bias)

    @torch.no_grad()
    def calibrate(self, inputs: dict[str, torch.Tensor], lengths: dict[str, torch.Tensor] | None = None,
                  batch_size: int = 4096) -> None:
        """Make the interaction blocks' statistics exact over a split (the training split).

        During training, ``anova`` residualisers estimate their least-squares fit from
        running moments over recent batches while the encoders move. Once the weights are
        final, one eval-mode pass per stage recomputes every statistic exactly over the
        whole split, so each interaction block is uncorrelated with its lower orders on
        that split to floating-point precision. A no-op for other normalisations.
        """
        stages = self.fusion.calibration_stages()
        if not stages:
            return
        lengths = lengths or {}
        was_training = self.training
        self.eval()
        n = next(iter(inputs.values())).shape[0]
        for modules in stages:
            for mod in modules:
                mod.start_calibration()
            for start in range(0, n, batch_size):
                sl = slice(start, start + batch_size)
                self.encode({m: x[sl] for m, x in inputs.items()}, {m: v[sl] for m, v in lengths.items()})
            for mod in modules:
                mod.finish_calibration()
        self.train(was_training)

    # -- relevance --------------------------------------------------------
    def block_weight_norms(self) -> torch.Tensor:
        return block_norms(self.final.weight, self.slices)

    def penalty(self) -> torch.Tensor:
        """lam * (MNL penalty); differentiable in the final layer's weights (and beta)."""
        norms = self.block_weight_norms()
        if self.cfg.relevance == "mnl":
            pen = mnl_penalty(norms, self.cfg.p)
        elif self.cfg.relevance == "explicit":
            pen = explicit_penalty(norms, self.beta)
        else:  # "none": the ridge baseline, no beta in the objective
            pen = norms.pow(2).sum()
        return self.cfg.lam * pen

    @torch.no_grad()
    def relevance(self) -> np.ndarray:
        """beta per block (raw, unit p-norm): closed form from the weights, or the explicit parameter."""
        if self.cfg.relevance == "explicit":
            return self.beta.detach().cpu().double().numpy().copy()
        p = self.cfg.p  # on the CPU: float64 (which MPS lacks), and numpy out
        return closed_form_beta(self.block_weight_norms().detach().cpu().double(), p).numpy()

    @torch.no_grad()
    def beta_step(self, step: float, iters: int = 1) -> None:
        """Explicit-beta mode: projected gradient steps on lam * sum ||W_S||^2 / beta_S."""
        if self.beta is None:
            return
        sq = self.block_weight_norms().cpu().double().numpy() ** 2
        new, self._beta_step_size = beta_pgd(self.beta.cpu().double().numpy(), sq, self.cfg.p,
                                             max(step, self._beta_step_size), iters)
        self.beta.copy_(torch.as_tensor(new, dtype=self.beta.dtype))  # copy_ crosses devices


@torch.no_grad()
def predict_tensors(model: MWeightNet, inputs, lengths, batch_size: int = 2048, contributions: bool = False,
                    device: torch.device | str | None = None):
    """Eval-mode predictions (N, out) and, optionally, contributions {block: (N, out)}, as numpy.

    Computed in float32 on ``device`` (default: the commands' ``--device``, else where the
    model is). The inputs go there once, not per batch; the model is put back where it was.
    """
    from .devices import inference_device, model_device, model_to, resolve_device, tensors_to

    model.eval()
    home = model_device(model)
    dev = resolve_device(device) if device is not None else inference_device(model)
    if dev != home:
        model_to(model, dev)
    inputs, lengths = tensors_to(inputs, dev), tensors_to(lengths, dev)
    n = next(iter(inputs.values())).shape[0]
    preds, contribs = [], {b: [] for b in model.block_names}
    try:
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            out = model({m: x[sl] for m, x in inputs.items()}, {m: v[sl] for m, v in lengths.items()},
                        contributions=contributions)
            preds.append(out.prediction)
            if contributions:
                for b in model.block_names:
                    contribs[b].append(out.contributions[b])
    finally:
        if dev != home:
            model_to(model, home)
    pred = torch.cat(preds).cpu().numpy() if preds else np.zeros((0, model.out_dim), np.float32)
    if not contributions:
        return pred, None
    return pred, {b: torch.cat(v).cpu().numpy() for b, v in contribs.items()}


def make_shapes(modalities: dict[str, np.ndarray]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per-modality sample shape and kind: "i" for token ids (:func:`data.is_token_ids`), "f" for features."""
    return {m: (tuple(int(s) for s in a.shape[1:]), "i" if is_token_ids(a) else "f")
            for m, a in modalities.items()}


def shapes_to_json(shapes) -> dict:
    return {m: {"shape": list(s), "kind": k} for m, (s, k) in shapes.items()}


def shapes_from_json(d: dict) -> dict:
    return {m: (tuple(v["shape"]), v["kind"]) for m, v in d.items()}


