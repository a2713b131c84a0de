"""Seeded synthetic DNA-sequence datasets whose ground truth is known (docs/method.md section 8).

Every sample has one token sequence per modality: ``length`` tokens over the alphabet
A, C, G, T, encoded as ``int8`` values 0..3 (``ALPHABET[token]``), shape (N, length).
A label is carried by *motifs* ("signatures", ``motif_length`` tokens): each modality
has its own pair of motifs ``(motif_0, motif_1)``; writing ``motif_c`` over a random
window of the sequence signals class (or bit) ``c``.

Designs (modalities are always named ``m1``, ``m2``, ... in this order):

``additive``  (:func:`make_additive`)
    M = ``len(p)`` modalities, balanced binary label ``y``. Modality ``m`` carries the
    class motif ``motif_y`` with probability ``p_m``, else it is a pure random
    sequence. Single-modality Bayes accuracy is exactly ``(1 + p_m) / 2``.
``xor`` / ``parity``  (:func:`make_xor`)
    Every modality always carries one of its two motifs, chosen by a fair coin (its
    bit); the label is the XOR of the bits of ``m1..m_order`` (``order=2``: the pair
    block ``m1*m2``; ``order=3``: the parity / triple block ``m1*m2*m3``). Further
    modalities are irrelevant. No proper subset of the interacting modalities beats
    chance.
``inflation``  (:func:`make_inflation`)
    ``m1`` carries the class motif with probability ``p``; then optionally an
    irrelevant random modality and a *constant* modality (one fixed sequence for all
    samples). Only ``m1`` is relevant; any relevance given to the other modalities or
    to interaction blocks is spurious ("degree inflation").

One tabular design sits beside them (float features, not token sequences):

``nuisance``  (:func:`make_nuisance`, issue 10: "correlated nuisance")
    Two modalities ``a`` and ``b`` of ReLU features (skewed, correlated). ``a`` mixes a
    signal latent ``s`` with a nuisance latent ``nu``; ``b`` sees only ``nu`` (plus its own
    noise), so ``b`` is correlated with ``a`` but independent of the label; the label is a
    nonlinear function of ``s`` (regression, ``y = s**2 - 1 + noise``). ``s`` is an exact
    function of ``a``, so ``b`` carries no label information even given ``a``: the only
    label-carrying block is ``a``; ``b`` and ``a*b`` should get nothing. Tabular because
    the failure it probes (interaction blocks of skewed, correlated factors re-expressing
    a lower-order signal) is about continuous encoder features; a shared continuous
    latent has no natural encoding as motifs.

Backgrounds are uniform random, except that a modality never contains a motif it does
not signal: a sequence without an inserted motif contains neither of its modality's
motifs, and a sequence carrying ``motif_c`` never contains ``motif_(1-c)`` (rows that
would are redrawn). So a perfect motif detector recovers exactly what was inserted and
the Bayes accuracies in the ground truth are exact, not approximate.

Randomness: ``np.random.SeedSequence(seed)`` is spawned into independent streams
(motifs, labels, split, one per modality), each used via ``np.random.default_rng``;
the same arguments give identical arrays. Splits are stratified by label; ``test``
is a real held-out split that is never used for model selection.

Example
-------
>>> ds = make_additive(p=(0.5, 0.0), n=200, seed=1)
>>> sorted(ds.arrays), ds.arrays["m1"].shape, ds.arrays["m1"].dtype
(['m1', 'm2'], (200, 100), dtype('int8'))
>>> ds.ground_truth["relevant_blocks"]
['m1']
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from .errors import MWeightError
from .fileio import _json_default, atomic_path, write_json

ALPHABET = "ACGT"
DESIGNS = ("additive", "xor", "parity", "inflation", "nuisance")
TOKEN_DTYPE = np.int8
SPLIT_NAMES = ("train", "valid", "test")
DEFAULT_SPLIT = (0.6, 0.2, 0.2)
# The two motifs of a modality differ in at least this many positions (default motifs
# only), so that a near-miss of one motif is never almost the other.
MIN_MOTIF_DISTANCE = 3

Motif = Union[str, Sequence[int], np.ndarray]
MotifSpec = Union[None, Sequence[Motif], Mapping[str, Sequence[Motif]]]

__all__ = [
    "ALPHABET",
    "DESIGNS",
    "SyntheticDataset",
    "decode",
    "encode",
    "find_motif",
    "make_additive",
    "make_dataset",
    "make_inflation",
    "make_nuisance",
    "make_xor",
    "modality_names",
    "truth_path",
    "write_dataset",
]


# --------------------------------------------------------------------------- encoding


def encode(seq: str) -> np.ndarray:
    """Encode a string over ``ACGT`` (case-insensitive) as an int8 token array (len,)."""
    seq = str(seq).upper()
    bad = sorted(set(seq) - set(ALPHABET))
    if bad:
        raise MWeightError(f"motif {seq!r}: letters {''.join(bad)!r} are not in {ALPHABET}")
    return np.array([ALPHABET.index(c) for c in seq], dtype=TOKEN_DTYPE)


def decode(tokens: Sequence[int] | np.ndarray) -> str:
    """Inverse of :func:`encode` for one sequence of tokens 0..3."""
    return "".join(ALPHABET[int(t)] for t in np.asarray(tokens).ravel())


def find_motif(tokens: np.ndarray, motif: Motif) -> np.ndarray:
    """Whether each row of ``tokens`` (N, L) contains ``motif`` (k,) anywhere: (N,) bool.

    This is the exact "oracle" motif detector used by the tests and the ground truth.
    """
    tokens = np.asarray(tokens)
    motif = _as_motif(motif)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be (N, L), got shape {tokens.shape}")
    k = motif.size
    if k > tokens.shape[1]:
        return np.zeros(tokens.shape[0], dtype=bool)
    windows = np.lib.stride_tricks.sliding_window_view(tokens, k, axis=1)  # (N, L-k+1, k)
    return (windows == motif.astype(tokens.dtype)).all(axis=-1).any(axis=-1)


def modality_names(m: int) -> list[str]:
    """``['m1', ..., 'mM']``: the modality names of every synthetic design."""
    return [f"m{i + 1}" for i in range(m)]


def truth_path(path: str | os.PathLike) -> Path:
    """The ground-truth file written next to a dataset: ``x.npz`` -> ``x.truth.json``."""
    path = Path(path)
    if path.suffix == ".npz":
        return path.with_suffix(".truth.json")
    return path.with_name(path.name + ".truth.json")


# --------------------------------------------------------------------------- dataset


@dataclass
class SyntheticDataset:
    """A generated dataset, in memory.

    Attributes
    ----------
    arrays : dict modality -> (N, length) int8 tokens 0..3, in modality order
        (design ``nuisance``: (N, d) float32 features).
    label : (N,) int64, 0/1 (design ``nuisance``: (N,) float32, a regression target).
    split : (N,) str, ``train`` / ``valid`` / ``test``.
    id : (N,) str, ``s000000``, ``s000001``, ... (no ``_``: every sample is its own "video").
    ground_truth : JSON-ready dict (see :func:`write_dataset` for the schema).
    params : JSON-ready dict of the generator arguments (enough to regenerate).
    inserted : dict modality -> (N,) int8: index (0/1) of the motif written into that
        sample, or -1 if the sequence carries no motif. Not written to the ``.npz``
        (it would be read as a modality); kept for tests and oracle baselines.
    """

    arrays: dict[str, np.ndarray]
    label: np.ndarray
    split: np.ndarray
    id: np.ndarray
    ground_truth: dict[str, Any]
    params: dict[str, Any]
    inserted: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return list(self.arrays)

    @property
    def n_samples(self) -> int:
        return int(self.label.shape[0])

    def counts(self) -> dict[str, int]:
        """Samples per split."""
        return {s: int((self.split == s).sum()) for s in SPLIT_NAMES}

    def meta(self) -> dict[str, Any]:
        """The ``meta_json`` / ``.truth.json`` content."""
        from . import __version__

        if np.issubdtype(self.label.dtype, np.integer):
            label_counts = {
                s: {str(c): int(((self.split == s) & (self.label == c)).sum()) for c in (0, 1)}
                for s in SPLIT_NAMES
            }
        else:  # regression target: its mean and std per split instead of class counts
            label_counts = {s: {"mean": float(self.label[self.split == s].mean()),
                                "std": float(self.label[self.split == s].std())}
                            for s in SPLIT_NAMES if (self.split == s).any()}
        return {
            "source": "mweight.synthetic",
            "mweight_version": __version__,
            "design": self.ground_truth["design"],
            "params": self.params,
            "ground_truth": self.ground_truth,
            "counts": self.counts(),
            "label_counts": label_counts,
        }


# --------------------------------------------------------------------------- generators


def make_additive(
    p: Sequence[float] = (0.5, 0.35, 0.2, 0.0, 0.0, 0.0),
    n: int = 4000,
    *,
    length: int = 100,
    motif_length: int = 7,
    motifs: MotifSpec = None,
    seed: int = 0,
    split_fractions: Sequence[float] = DEFAULT_SPLIT,
) -> SyntheticDataset:
    """Additive design: modality ``m`` carries the class motif with probability ``p[m]``.

    ``len(p)`` is the number of modalities M; ``p_m = 0`` gives a pure random
    (irrelevant) modality. The label is exactly balanced (``n // 2`` ones, before the
    split). ``motifs``: ``None`` (drawn from ``seed``, one pair per modality), one pair
    ``(motif_0, motif_1)`` shared by all modalities, or ``{modality: pair}``; a motif is
    a string over ACGT or a sequence of tokens 0..3.
    """
    p = [_check_prob(v, f"p[{i}]") for i, v in enumerate(_as_list(p, "p"))]
    if not p:
        raise MWeightError("p: expected at least one modality probability, got none")
    names = modality_names(len(p))
    _check_common(n, length, motif_length, split_fractions)
    ss = np.random.SeedSequence(_check_seed(seed))
    r_motif, r_label, r_split, *r_mod = [np.random.default_rng(s) for s in ss.spawn(3 + len(names))]
    pairs = _resolve_motifs(motifs, names, motif_length, length, r_motif)

    label = _balanced_labels(n, r_label)
    arrays, inserted = {}, {}
    for name, pm, rng in zip(names, p, r_mod):
        carries = rng.random(n) < pm
        which = np.where(carries, label, -1).astype(np.int8)
        arrays[name] = _fill(rng, which, length, pairs[name])
        inserted[name] = which

    p_of = dict(zip(names, p))
    relevant = [m for m in names if p_of[m] > 0]
    total = sum(p)
    bayes = {m: (1 + p_of[m]) / 2 for m in names}
    bayes["all"] = 1 - float(np.prod([1 - v for v in p])) / 2
    truth = {
        "design": "additive",
        "modalities": names,
        "roles": {m: ("relevant" if p_of[m] > 0 else "irrelevant") for m in names},
        "p": p_of,
        "relevant_blocks": relevant,
        "irrelevant_modalities": [m for m in names if p_of[m] == 0],
        "expected_share": {m: (p_of[m] / total if total > 0 else 0.0) for m in names},
        "expected_share_note": (
            "p_m / sum(p): a reference with the ranking of p (the beta ranking must follow it) "
            "and exactly 0 where p_m = 0; beta magnitudes are not predicted"
        ),
        "bayes_accuracy": bayes,
        "motifs": {m: [decode(x) for x in pairs[m]] for m in names},
    }
    params = {
        "design": "additive",
        "p": p,
        "n": int(n),
        "length": int(length),
        "motif_length": int(motif_length),
        "motifs": truth["motifs"],
        "seed": int(seed),
        "split_fractions": [float(f) for f in split_fractions],
    }
    return _finish(arrays, inserted, label, r_split, split_fractions, truth, params)


def make_xor(
    n: int = 20000,
    *,
    order: int = 2,
    n_modalities: int = 3,
    length: int = 100,
    motif_length: int = 7,
    motifs: MotifSpec = None,
    seed: int = 0,
    split_fractions: Sequence[float] = DEFAULT_SPLIT,
) -> SyntheticDataset:
    """XOR / parity design: label = XOR of the motif bits of ``m1..m_order``.

    Every modality always carries one of its two motifs; each modality's bit is a fair
    coin. ``order=2`` with 3 modalities is the XOR design (``m3`` irrelevant),
    ``order=3`` is the parity design (block ``m1*m2*m3``). The label is exactly
    balanced: ``y`` is drawn balanced, bits ``1..order-1`` are fair coins and the last
    interacting bit is ``y`` XOR the others, which has the same joint distribution as
    independent coins while keeping ``y`` balanced. Any ``order - 1`` of the
    interacting bits are independent of ``y``.
    """
    order, n_modalities = int(order), int(n_modalities)
    if order < 2:
        raise MWeightError(f"order: expected 2 (XOR) or more (parity), got {order}")
    if n_modalities < order:
        raise MWeightError(f"n_modalities: expected at least order={order}, got {n_modalities}")
    names = modality_names(n_modalities)
    _check_common(n, length, motif_length, split_fractions)
    ss = np.random.SeedSequence(_check_seed(seed))
    r_motif, r_label, r_split, *r_mod = [np.random.default_rng(s) for s in ss.spawn(3 + len(names))]
    pairs = _resolve_motifs(motifs, names, motif_length, length, r_motif)

    label = _balanced_labels(n, r_label)
    bits = [r_label.integers(0, 2, size=n).astype(np.int64) for _ in range(n_modalities)]
    last = label.copy()
    for b in bits[: order - 1]:
        last ^= b
    bits[order - 1] = last  # y = b1 ^ ... ^ b_order

    arrays, inserted = {}, {}
    for name, b, rng in zip(names, bits, r_mod):
        which = b.astype(np.int8)
        arrays[name] = _fill(rng, which, length, pairs[name])
        inserted[name] = which

    design = "xor" if order == 2 else "parity"
    block = "*".join(names[:order])
    bayes: dict[str, float] = {}
    for k in range(1, n_modalities + 1):
        for combo in combinations(names, k):
            bayes["*".join(combo)] = 1.0 if set(names[:order]) <= set(combo) else 0.5
    truth = {
        "design": design,
        "modalities": names,
        "roles": {m: ("interacting" if i < order else "irrelevant") for i, m in enumerate(names)},
        "p": {m: 1.0 for m in names},
        "order": order,
        "relevant_blocks": [block],
        "irrelevant_modalities": names[order:],
        "expected_share": {block: 1.0},
        "expected_share_note": f"all label information is in the {order}-way block {block}; "
        "every smaller block is at chance",
        "bayes_accuracy": bayes,
        "motifs": {m: [decode(x) for x in pairs[m]] for m in names},
    }
    params = {
        "design": design,
        "order": order,
        "n_modalities": n_modalities,
        "n": int(n),
        "length": int(length),
        "motif_length": int(motif_length),
        "motifs": truth["motifs"],
        "seed": int(seed),
        "split_fractions": [float(f) for f in split_fractions],
    }
    return _finish(arrays, inserted, label, r_split, split_fractions, truth, params)


def make_inflation(
    p: float = 0.8,
    n: int = 4000,
    *,
    irrelevant: bool = True,
    constant: bool = True,
    length: int = 100,
    motif_length: int = 7,
    motifs: MotifSpec = None,
    seed: int = 0,
    split_fractions: Sequence[float] = DEFAULT_SPLIT,
) -> SyntheticDataset:
    """Degree-inflation design: ``m1`` relevant (motif with probability ``p``), then an
    irrelevant random modality (if ``irrelevant``) and a constant modality (if
    ``constant``: one seeded random sequence repeated for every sample), named ``m2``,
    ``m3`` in that order. Only ``m1`` carries label information.
    """
    p = _check_prob(p, "p")
    if p == 0:
        raise MWeightError("p: the inflation design needs a relevant modality, expected p > 0, got 0")
    if not (irrelevant or constant):
        raise MWeightError("inflation: expected an irrelevant and/or a constant modality, got neither")
    roles = ["relevant"] + (["irrelevant"] if irrelevant else []) + (["constant"] if constant else [])
    names = modality_names(len(roles))
    _check_common(n, length, motif_length, split_fractions)
    ss = np.random.SeedSequence(_check_seed(seed))
    r_motif, r_label, r_split, *r_mod = [np.random.default_rng(s) for s in ss.spawn(3 + len(names))]
    pairs = _resolve_motifs(motifs, names, motif_length, length, r_motif)

    label = _balanced_labels(n, r_label)
    arrays, inserted = {}, {}
    for name, role, rng in zip(names, roles, r_mod):
        if role == "relevant":
            which = np.where(rng.random(n) < p, label, -1).astype(np.int8)
            arrays[name] = _fill(rng, which, length, pairs[name])
        elif role == "irrelevant":
            which = np.full(n, -1, dtype=np.int8)
            arrays[name] = _fill(rng, which, length, pairs[name])
        else:
            which = np.full(n, -1, dtype=np.int8)
            one = _fill(rng, which[:1], length, pairs[name])
            arrays[name] = np.repeat(one, n, axis=0)
        inserted[name] = which

    role_of = dict(zip(names, roles))
    bayes: dict[str, float] = {}
    for k in range(1, len(names) + 1):
        for combo in combinations(names, k):
            bayes["*".join(combo)] = (1 + p) / 2 if "m1" in combo else 0.5
    truth = {
        "design": "inflation",
        "modalities": names,
        "roles": role_of,
        "p": {m: (p if r == "relevant" else 0.0) for m, r in role_of.items()},
        "relevant_blocks": ["m1"],
        "irrelevant_modalities": names[1:],
        "expected_share": {"m1": 1.0},
        "expected_share_note": "only m1 carries the label; every other modality and every "
        "interaction block should get share ~0 (spurious share = degree inflation)",
        "bayes_accuracy": bayes,
        "motifs": {m: [decode(x) for x in pairs[m]] for m in names},
    }
    params = {
        "design": "inflation",
        "p": p,
        "irrelevant": bool(irrelevant),
        "constant": bool(constant),
        "n": int(n),
        "length": int(length),
        "motif_length": int(motif_length),
        "motifs": truth["motifs"],
        "seed": int(seed),
        "split_fractions": [float(f) for f in split_fractions],
    }
    return _finish(arrays, inserted, label, r_split, split_fractions, truth, params)

def make_nuisance(
    n: int = 6000,
    *,
    dim_a: int = 8,
    dim_b: int = 8,
    nuisance: float = 1.5,
    b_noise: float = 0.5,
    label_noise: float = 0.25,
    seed: int = 0,
    split_fractions: Sequence[float] = DEFAULT_SPLIT,
) -> SyntheticDataset:
    """Correlated-nuisance design (tabular regression): ``a`` relevant through a nonlinear
    function, ``b`` shares only a nuisance latent with ``a``.

    Latents (independent, per sample): signal ``s ~ N(0, 1)``, nuisance ``nu ~ N(0, 1)``,
    label noise ``eps ~ N(0, 1)``, and ``b``'s own noise ``eta ~ N(0, I)``.

    * ``a`` (N, dim_a), ``dim_a`` even: ``dim_a / 2`` directions
      ``x_k = alpha_k s + nuisance * gamma_k nu + c_k`` (``|alpha_k|, |gamma_k|`` in [0.5, 1],
      random signs, offset ``c_k`` in [-0.5, 0.5], pairwise non-collinear), each written as
      the ReLU pair ``(relu(x_k), relu(-x_k))``. Skewed (point mass at 0), correlated, and
      ``relu(x) - relu(-x) = x`` makes ``(s, nu)`` an exact function of ``a``.
    * ``b`` (N, dim_b): ``relu(delta_j nu + b_noise * eta_j + c_j)``, ``|delta_j|`` in [0.5, 1.5].
      A function of ``(nu, eta)`` only: independent of ``(s, eps)``, hence of the label.
    * label ``y = s**2 - 1 + label_noise * eps`` (float32): nonlinear (not monotone) in ``s``.

    Since ``y`` depends on ``(s, eps)`` and ``s`` is a function of ``a``, ``y`` is independent
    of ``b`` given ``a``: the Bayes predictor ``E[y | a, b] = s**2 - 1`` uses ``a`` alone, so
    ``b`` and ``a*b`` carry no label information (marginally or given ``a``). Splits are
    stratified by label decile. ``ground_truth["oracle"]`` holds the Bayes predictor's test
    MAE and correlation; ``ground_truth["measured"]`` the data's own correlations and skewness.
    """
    for what, v, lo in (("n", n, 10), ("dim_a", dim_a, 4), ("dim_b", dim_b, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise MWeightError(f"{what}: expected an integer >= {lo}, got {v!r}")
    if dim_a % 2:
        raise MWeightError(f"dim_a: expected an even number (ReLU pairs), got {dim_a}")
    for what, v in (("nuisance", nuisance), ("b_noise", b_noise), ("label_noise", label_noise)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise MWeightError(f"{what}: expected a number >= 0, got {v!r}")
    if nuisance == 0:
        raise MWeightError("nuisance: expected > 0 (with 0, a and b share nothing), got 0")
    _check_fractions(split_fractions)
    ss = np.random.SeedSequence(_check_seed(seed))
    r_weights, r_latent, r_split, r_b = [np.random.default_rng(x) for x in ss.spawn(4)]

    k = dim_a // 2
    while True:  # directions (alpha_k, gamma_k) pairwise at least ~10 degrees apart
        alpha = r_weights.uniform(0.5, 1.0, k) * r_weights.choice([-1.0, 1.0], k)
        gamma = r_weights.uniform(0.5, 1.0, k) * r_weights.choice([-1.0, 1.0], k)
        ang = np.arctan2(nuisance * gamma, alpha) % np.pi
        gaps = np.abs(ang[:, None] - ang[None, :])
        gaps = np.minimum(gaps, np.pi - gaps) + np.eye(k) * np.pi
        if gaps.min() > np.deg2rad(10):
            break
    c_a = r_weights.uniform(-0.5, 0.5, k)
    delta = r_weights.uniform(0.5, 1.5, dim_b) * r_weights.choice([-1.0, 1.0], dim_b)
    c_b = r_weights.uniform(-0.5, 0.5, dim_b)

    s = r_latent.standard_normal(n)
    nu = r_latent.standard_normal(n)
    eps = r_latent.standard_normal(n)
    x = s[:, None] * alpha + nuisance * nu[:, None] * gamma + c_a  # (n, k)
    a = np.empty((n, dim_a))
    a[:, 0::2], a[:, 1::2] = np.maximum(x, 0), np.maximum(-x, 0)
    eta = r_b.standard_normal((n, dim_b))
    b = np.maximum(nu[:, None] * delta + b_noise * eta + c_b, 0)
    f = s**2 - 1
    label = (f + label_noise * eps).astype(np.float32)

    split = _quantile_stratified_split(label, split_fractions, r_split)
    test = split == "test"
    oracle = {"test_mae": float(np.mean(np.abs(f[test] - label[test]))),
              "test_corr": float(np.corrcoef(f[test], label[test])[0, 1]),
              "note": "the Bayes predictor s**2 - 1 (s recovered exactly from a) on the test split"}
    cab = np.corrcoef(np.hstack([a, b]).T)[:dim_a, dim_a:]
    measured = {
        "max_abs_corr_a_b": float(np.abs(cab).max()),
        "max_abs_corr_b_label": float(max(abs(np.corrcoef(b[:, j], label)[0, 1]) for j in range(dim_b))),
        "min_skewness_a": float(_skewness(a).min()), "min_skewness_b": float(_skewness(b).min()),
        "zero_fraction_a": float((a == 0).mean()), "zero_fraction_b": float((b == 0).mean()),
    }
    names = ["a", "b"]
    truth = {
        "design": "nuisance",
        "task": "regression",
        "modalities": names,
        "roles": {"a": "relevant (nonlinear: y = s**2 - 1 + noise)",
                  "b": "nuisance (shares nu with a; independent of the label, also given a)"},
        "p": {"a": 1.0, "b": 0.0},
        "relevant_blocks": ["a"],
        "irrelevant_modalities": ["b"],
        "expected_share": {"a": 1.0},
        "expected_share_note": "only a carries the label (b is independent of it, also given a): "
        "b and a*b should get ~0 of the contribution and Shapley shares, and the a*b block's "
        "contribution should not correlate with the label",
        "label_function": "s**2 - 1",
        "oracle": oracle,
        "measured": measured,
        "weights": {"alpha": alpha.tolist(), "gamma": gamma.tolist(), "c_a": c_a.tolist(),
                    "delta": delta.tolist(), "c_b": c_b.tolist()},
    }
    params = {
        "design": "nuisance",
        "n": int(n),
        "dim_a": int(dim_a),
        "dim_b": int(dim_b),
        "nuisance": float(nuisance),
        "b_noise": float(b_noise),
        "label_noise": float(label_noise),
        "seed": int(seed),
        "split_fractions": [float(f_) for f_ in split_fractions],
    }
    arrays = {"a": a.astype(np.float32), "b": b.astype(np.float32)}
    width = max(6, len(str(n - 1)))
    ids = np.array([f"s{i:0{width}d}" for i in range(n)])
    ds = SyntheticDataset(arrays, label, split, ids, truth, params, {})
    counts = ds.counts()
    if counts["train"] == 0 or counts["test"] == 0:
        raise MWeightError(f"n={n}: too few samples for split_fractions {list(split_fractions)} ({counts})")
    return ds


def make_dataset(design: str, **kwargs: Any) -> SyntheticDataset:
    """Dispatch by design name: ``additive``, ``xor``, ``parity`` (= xor with order 3),
    ``inflation``, ``nuisance``; ``kwargs`` go to the generator."""
    if design == "additive":
        return make_additive(**kwargs)
    if design == "xor":
        return make_xor(**kwargs)
    if design == "parity":
        kwargs.setdefault("order", 3)
        return make_xor(**kwargs)
    if design == "inflation":
        return make_inflation(**kwargs)
    if design == "nuisance":
        return make_nuisance(**kwargs)
    raise MWeightError(f"design: expected one of {', '.join(DESIGNS)}, got {design!r}")


# --------------------------------------------------------------------------- writing


def write_dataset(ds: SyntheticDataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` as a mweight dataset ``.npz`` (docs/DATASET_FORMAT.md), atomically,
    plus the ground truth as ``<name>.truth.json`` next to it. Returns the truth path.

    The archive holds ``label`` (N,) int64, ``split`` (N,) str, ``id`` (N,) str, one
    (N, length) int8 token array per modality (``m1``, ``m2``, ... in order) and
    ``meta_json``; it loads with ``np.load(path, allow_pickle=False)``. ``meta_json``
    and the truth file hold the same JSON object::

        {"source": "mweight.synthetic", "mweight_version": str, "design": str,
         "params": {generator arguments, enough to regenerate},
         "ground_truth": {"design", "modalities": [...], "roles": {m: role},
                          "p": {m: float}, "relevant_blocks": [block, ...],
                          "irrelevant_modalities": [...],
                          "expected_share": {block: float}, "expected_share_note": str,
                          "bayes_accuracy": {block or "all": float},
                          "motifs": {m: [motif_0, motif_1]}, ("order": int for xor/parity)},
         "counts": {split: int}, "label_counts": {split: {"0": int, "1": int}}}

    Blocks are modality names joined by ``*`` (``m1*m2``), in modality order.
    """
    path = Path(path)
    meta = ds.meta()
    payload: dict[str, np.ndarray] = {
        # class labels as int64; the nuisance design's regression target stays float32
        "label": np.asarray(ds.label, dtype=np.int64 if np.issubdtype(ds.label.dtype, np.integer) else np.float32),
        "split": np.asarray(ds.split, dtype=str),
        "id": np.asarray(ds.id, dtype=str),
    }
    for name, arr in ds.arrays.items():
        if name in payload or name == "meta_json" or name.endswith("_lengths"):
            raise MWeightError(f"modality name {name!r} clashes with a reserved dataset key")
        payload[name] = np.asarray(arr)
    payload["meta_json"] = np.array(json.dumps(meta, default=_json_default))
    with atomic_path(path) as tmp:
        # np.savez appends ".npz" to a *name* without it; a file object is written as is.
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **payload)
    tpath = truth_path(path)
    write_json(tpath, meta)
    return tpath


# --------------------------------------------------------------------------- internals


def _as_list(values: Any, what: str) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        return [values]
    return list(values)


def _check_prob(v: Any, what: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise MWeightError(f"{what}: expected a probability in [0, 1], got {v!r}") from None
    if not 0.0 <= f <= 1.0:
        raise MWeightError(f"{what}: expected a probability in [0, 1], got {v!r}")
    return f


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MWeightError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def _check_common(n: int, length: int, motif_length: int, split_fractions: Sequence[float]) -> None:
    for what, v, lo in (("n", n, 2), ("length", length, 1), ("motif_length", motif_length, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise MWeightError(f"{what}: expected an integer >= {lo}, got {v!r}")
    if motif_length > length:
        raise MWeightError(f"motif_length: expected <= length={length}, got {motif_length}")
    if motif_length < 3:
        # Shorter motifs occur by chance in most random sequences of length 100,
        # so no background could be kept motif-free.
        raise MWeightError(f"motif_length: expected >= 3, got {motif_length}")
    _check_fractions(split_fractions)


def _check_fractions(split_fractions: Sequence[float]) -> None:
    fr = _as_list(split_fractions, "split_fractions")
    if len(fr) != 3:
        raise MWeightError(f"split_fractions: expected 3 values (train, valid, test), got {fr!r}")
    try:
        fr = [float(f) for f in fr]
    except (TypeError, ValueError):
        raise MWeightError(f"split_fractions: expected numbers, got {split_fractions!r}") from None
    if any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0 or fr[2] <= 0:
        raise MWeightError(
            f"split_fractions: expected train > 0, valid >= 0, test > 0 summing to 1, got {fr!r}"
        )


def _as_motif(m: Motif) -> np.ndarray:
    if isinstance(m, str):
        return encode(m)
    arr = np.asarray(m)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise MWeightError(f"motif {m!r}: expected a string over ACGT or integer tokens 0..3")
    if arr.min() < 0 or arr.max() > 3:
        raise MWeightError(f"motif {m!r}: tokens must be in 0..3")
    return arr.astype(TOKEN_DTYPE)


def _resolve_motifs(
    motifs: MotifSpec, names: list[str], motif_length: int, length: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """One (2, motif_length) int8 motif pair per modality."""
    if motifs is None:
        out = {}
        for name in names:  # drawn in modality order: a prefix of modalities is stable
            while True:
                pair = rng.integers(0, 4, size=(2, motif_length)).astype(TOKEN_DTYPE)
                if (pair[0] != pair[1]).sum() >= min(MIN_MOTIF_DISTANCE, motif_length):
                    break
            out[name] = pair
        return out
    if isinstance(motifs, Mapping):
        missing = [m for m in names if m not in motifs]
        extra = [m for m in motifs if m not in names]
        if missing or extra:
            raise MWeightError(
                f"motifs: expected one pair for each of {names}, missing {missing}, unknown {extra}"
            )
        spec = {m: motifs[m] for m in names}
    else:
        spec = {m: motifs for m in names}
    out = {}
    for name, pair in spec.items():
        pair = _as_list(pair, "motifs")
        if len(pair) != 2:
            raise MWeightError(f"motifs[{name}]: expected a pair (motif_0, motif_1), got {pair!r}")
        a, b = _as_motif(pair[0]), _as_motif(pair[1])
        for x in (a, b):
            if x.size != motif_length:
                raise MWeightError(
                    f"motifs[{name}]: motif {decode(x)} has length {x.size}, expected motif_length={motif_length}"
                )
        if np.array_equal(a, b):
            raise MWeightError(f"motifs[{name}]: the two class motifs must differ, got {decode(a)} twice")
        out[name] = np.stack([a, b])
    return out


def _balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) int64 with n - n//2 zeros and n//2 ones in random order."""
    return rng.permutation(np.arange(n, dtype=np.int64) % 2)


def _fill(rng: np.random.Generator, which: np.ndarray, length: int, pair: np.ndarray) -> np.ndarray:
    """Random sequences (len(which), length); row i carries ``pair[which[i]]`` in a random
    window (none if -1) and no motif of ``pair`` it does not signal (offending rows are
    redrawn until none is left)."""
    n, k = which.shape[0], pair.shape[1]
    out = np.empty((n, length), dtype=TOKEN_DTYPE)
    todo = np.arange(n)
    for _ in range(1000):
        if todo.size == 0:
            return out
        seq = rng.integers(0, 4, size=(todo.size, length)).astype(TOKEN_DTYPE)
        pos = rng.integers(0, length - k + 1, size=todo.size)
        w = which[todo]
        carry = np.flatnonzero(w >= 0)
        if carry.size:
            cols = pos[carry, None] + np.arange(k)
            seq[carry[:, None], cols] = pair[w[carry].astype(np.int64)]
        has0, has1 = find_motif(seq, pair[0]), find_motif(seq, pair[1])
        bad = np.where(w == 0, has1, np.where(w == 1, has0, has0 | has1))
        out[todo[~bad]] = seq[~bad]
        todo = todo[bad]
    raise MWeightError(  # only reachable with pathological motifs/lengths
        f"could not draw sequences free of motifs {decode(pair[0])}/{decode(pair[1])} "
        f"(length {length}); use longer motifs"
    )


def _stratified_split(
    label: np.ndarray, fractions: Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """Assign train/valid/test per class with largest-remainder rounding, so each split
    has the same class balance up to one sample per class."""
    fr = np.asarray([float(f) for f in fractions])
    split = np.empty(label.shape[0], dtype="<U5")
    for c in np.unique(label):
        idx = rng.permutation(np.flatnonzero(label == c))
        raw = fr * idx.size
        cnt = np.floor(raw).astype(int)
        # largest remainder; ties go to test, then train (the held-out split never starves)
        order = sorted(range(3), key=lambda i: (-(raw[i] - cnt[i]), (2, 0, 1).index(i)))
        for i in order[: idx.size - cnt.sum()]:
            cnt[i] += 1
        bounds = np.cumsum(cnt)
        split[idx[: bounds[0]]] = "train"
        split[idx[bounds[0] : bounds[1]]] = "valid"
        split[idx[bounds[1] :]] = "test"
    return split


def _quantile_stratified_split(
    label: np.ndarray, fractions: Sequence[float], rng: np.random.Generator, bins: int = 10
) -> np.ndarray:
    """:func:`_stratified_split` for a continuous label: strata are label deciles (ranks)."""
    ranks = np.argsort(np.argsort(label, kind="stable"), kind="stable")
    return _stratified_split(ranks * bins // label.shape[0], fractions, rng)


def _skewness(x: np.ndarray) -> np.ndarray:
    """Sample skewness per column of x (N, d)."""
    c = x - x.mean(0)
    return (c**3).mean(0) / np.maximum((c**2).mean(0), 1e-300) ** 1.5


def _finish(
    arrays: dict[str, np.ndarray],
    inserted: dict[str, np.ndarray],
    label: np.ndarray,
    r_split: np.random.Generator,
    split_fractions: Sequence[float],
    truth: dict[str, Any],
    params: dict[str, Any],
) -> SyntheticDataset:
    n = label.shape[0]
    split = _stratified_split(label, split_fractions, r_split)
    width = max(6, len(str(n - 1)))
    ids = np.array([f"s{i:0{width}d}" for i in range(n)])
    ds = SyntheticDataset(arrays, label, split, ids, truth, params, inserted)
    counts = ds.counts()
    if counts["train"] == 0 or counts["test"] == 0:
        raise MWeightError(f"n={n}: too few samples for split_fractions {list(split_fractions)} ({counts})")
    return ds
