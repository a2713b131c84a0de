"""``mweight synth dna`` / ``mweight synth tabular``: write a seeded synthetic dataset (.npz + .truth.json).

The generators live in :mod:`mweight.synthetic`; this module only parses arguments.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import MWeightError

DEFAULT_P = {"additive": "0.5,0.35,0.2,0,0,0", "inflation": "0.8"}
DEFAULT_N = {"additive": 4000, "xor": 20000, "parity": 20000, "inflation": 4000}

EPILOG = """\
designs:
  additive   modality m carries the class motif with probability p_m (--p, one value per
             modality; 0 = pure random, irrelevant). Bayes accuracy of m alone = (1+p_m)/2.
  xor        3 modalities, each always carries one of two motifs (a fair coin); label =
             XOR of the bits of m1 and m2; m3 is irrelevant. No single modality beats chance.
  parity     like xor, label = parity of the bits of m1, m2 and m3 (the triple block).
  inflation  m1 relevant with probability --p, m2 irrelevant random, m3 constant (the same
             sequence for every sample); for showing degree inflation of interaction blocks.

Modalities are named m1, m2, ...; tokens are int8 0..3 (A, C, G, T), shape (N, length).
The ground truth (relevant blocks, expected shares, Bayes accuracies, motifs) is written
to meta_json and to <out without .npz>.truth.json. Same arguments and seed = same file.

examples:
  mweight synth dna --design additive --p 0.5,0.35,0.2,0,0,0 --n 4000 --seed 0 --out data/additive.npz
  mweight synth dna --design xor --n 20000 --seed 1 --out data/xor.npz
  mweight synth dna --design inflation --p 0.8 --no-constant --out data/inflation.npz
"""

TABULAR_EPILOG = """\
designs:
  nuisance   correlated nuisance (issue 10). Latents s (signal), nu (nuisance), independent N(0, 1).
             a: ReLU pairs (relu(x_k), relu(-x_k)) of x_k = alpha_k s + W gamma_k nu + c_k (skewed,
             correlated; s and nu are exact functions of a). b: relu(delta_j nu + noise + c_j), so b is
             correlated with a but independent of the label. Label (regression): y = s^2 - 1 + noise,
             nonlinear in a. Only a is relevant; b and a*b should get no attribution.

Modalities are named a and b; features are float32 (N, d). The ground truth (relevant blocks,
oracle test MAE / corr, measured correlations and skewness, the weights) is written to meta_json
and to <out without .npz>.truth.json. Same arguments and seed = same file.

example:
  mweight synth tabular --design nuisance --n 6000 --seed 0 --out data/nuisance.npz
"""


def add_parser(subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=help_text,
        description="Generate seeded synthetic datasets whose ground truth is known.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    dna = kinds.add_parser(
        "dna",
        help="DNA-like strings with class motifs (additive, xor, parity, inflation designs)",
        description="Write a synthetic DNA-sequence dataset in the mweight .npz format "
        "(one (N, length) int8 token array per modality, label, split, id, meta_json).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dna.add_argument("--design", choices=("additive", "xor", "parity", "inflation"), default="additive",
                     help="which ground truth to build (default: additive)")
    dna.add_argument("--out", required=True, metavar="FILE.npz", help="output dataset; FILE.truth.json is written next to it")
    dna.add_argument("--p", metavar="P1,P2,...",
                     help="additive: motif probability per modality, comma-separated (default "
                     f"{DEFAULT_P['additive']}); inflation: one probability for m1 (default {DEFAULT_P['inflation']})")
    dna.add_argument("--n", type=int, metavar="N",
                     help="number of samples (default: 20000 for xor/parity, 4000 otherwise)")
    dna.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    dna.add_argument("--overwrite", action="store_true", help="replace --out (and its .truth.json) if they exist")
    dna.add_argument("--length", type=int, default=100, help="sequence length (default 100)")
    dna.add_argument("--motif-length", type=int, metavar="K",
                     help="motif length (default 7, or the length of --motifs)")
    dna.add_argument("--motifs", metavar="MOTIF0,MOTIF1",
                     help="the two class motifs over ACGT, shared by all modalities (default: drawn "
                     "from the seed, one pair per modality)")
    dna.add_argument("--split", default="0.6,0.2,0.2", metavar="TRAIN,VALID,TEST",
                     help="split fractions, stratified by label (default 0.6,0.2,0.2)")
    dna.add_argument("--modalities", type=int, metavar="M",
                     help="xor/parity: number of modalities; those after the interacting ones are irrelevant (default 3)")
    dna.add_argument("--no-irrelevant", action="store_true", help="inflation: leave out the irrelevant random modality")
    dna.add_argument("--no-constant", action="store_true", help="inflation: leave out the constant modality")
    dna.set_defaults(func=run)

    tab = kinds.add_parser(
        "tabular",
        help="tabular ReLU features with a known ground truth (design: nuisance)",
        description="Write a synthetic tabular dataset in the mweight .npz format ((N, d) float32 "
        "features per modality, label, split, id, meta_json).",
        epilog=TABULAR_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tab.add_argument("--design", choices=("nuisance",), default="nuisance",
                     help="which ground truth to build (default: nuisance)")
    tab.add_argument("--out", required=True, metavar="FILE.npz",
                     help="output dataset; FILE.truth.json is written next to it")
    tab.add_argument("--n", type=int, default=6000, metavar="N", help="number of samples (default 6000)")
    tab.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    tab.add_argument("--overwrite", action="store_true", help="replace --out (and its .truth.json) if they exist")
    tab.add_argument("--dim-a", type=int, default=8, metavar="D", help="features of a (even; default 8)")
    tab.add_argument("--dim-b", type=int, default=8, metavar="D", help="features of b (default 8)")
    tab.add_argument("--nuisance", type=float, default=1.5, metavar="W",
                     help="weight of the nuisance latent in a, relative to the signal (default 1.5)")
    tab.add_argument("--b-noise", type=float, default=0.5, metavar="S", help="b's own noise sd (default 0.5)")
    tab.add_argument("--label-noise", type=float, default=0.25, metavar="S", help="label noise sd (default 0.25)")
    tab.add_argument("--split", default="0.6,0.2,0.2", metavar="TRAIN,VALID,TEST",
                     help="split fractions, stratified by label decile (default 0.6,0.2,0.2)")
    tab.set_defaults(func=run_tabular)
    return parser


def run_tabular(args: argparse.Namespace) -> int:
    from .. import synthetic

    out = Path(args.out)
    if out.suffix != ".npz":
        raise MWeightError(f"--out {out}: expected a file name ending in .npz")
    _check_outputs(out, args.overwrite)
    ds = synthetic.make_nuisance(n=args.n, seed=args.seed, dim_a=args.dim_a, dim_b=args.dim_b,
                                 nuisance=args.nuisance, b_noise=args.b_noise, label_noise=args.label_noise,
                                 split_fractions=_floats(args.split, "--split"))
    truth = synthetic.write_dataset(ds, out)
    gt = ds.ground_truth
    counts = ", ".join(f"{k} {v}" for k, v in ds.counts().items())
    print(f"wrote {out} ({ds.n_samples} samples: {counts}; modalities "
          + ", ".join(f"{m} {a.shape[1]} features" for m, a in ds.arrays.items()) + ")")
    print(f"design {gt['design']}: relevant blocks {', '.join(gt['relevant_blocks'])}; nuisance "
          f"{', '.join(gt['irrelevant_modalities'])} (max |corr| with a {gt['measured']['max_abs_corr_a_b']:.2f}, "
          f"with the label {gt['measured']['max_abs_corr_b_label']:.3f}); ground truth in {truth}")
    return 0


def _check_outputs(out: Path, overwrite: bool) -> None:
    """Before any work: the dataset and its ground-truth file are never replaced without --overwrite."""
    from ..fileio import check_output_file
    from ..synthetic import truth_path

    check_output_file(out, "--out", overwrite=overwrite)
    check_output_file(truth_path(out), "--out (its ground-truth file)", overwrite=overwrite)


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip() != ""]
    except ValueError:
        raise MWeightError(f"{what}: expected comma-separated numbers, got {text!r}") from None


def _not_for(args: argparse.Namespace, flags: dict[str, object], design: str) -> None:
    for flag, value in flags.items():
        if value:
            raise MWeightError(f"{flag}: not used by --design {design}")


def run(args: argparse.Namespace) -> int:
    from .. import synthetic

    design = args.design
    out = Path(args.out)
    if out.suffix != ".npz":
        raise MWeightError(f"--out {out}: expected a file name ending in .npz")
    _check_outputs(out, args.overwrite)
    kwargs: dict = {
        "n": args.n if args.n is not None else DEFAULT_N[design],
        "seed": args.seed,
        "length": args.length,
        "split_fractions": _floats(args.split, "--split"),
    }
    if args.motifs:
        pair = [m.strip() for m in args.motifs.split(",")]
        if len(pair) != 2:
            raise MWeightError(f"--motifs: expected two motifs MOTIF0,MOTIF1, got {args.motifs!r}")
        kwargs["motifs"] = pair
        kwargs["motif_length"] = args.motif_length if args.motif_length is not None else len(pair[0])
    elif args.motif_length is not None:
        kwargs["motif_length"] = args.motif_length

    if design == "additive":
        _not_for(args, {"--modalities": args.modalities, "--no-irrelevant": args.no_irrelevant,
                        "--no-constant": args.no_constant}, design)
        kwargs["p"] = _floats(args.p or DEFAULT_P["additive"], "--p")
        ds = synthetic.make_additive(**kwargs)
    elif design in ("xor", "parity"):
        _not_for(args, {"--p": args.p, "--no-irrelevant": args.no_irrelevant,
                        "--no-constant": args.no_constant}, design)
        kwargs["order"] = 2 if design == "xor" else 3
        kwargs["n_modalities"] = args.modalities if args.modalities is not None else 3
        ds = synthetic.make_xor(**kwargs)
    else:
        _not_for(args, {"--modalities": args.modalities}, design)
        p = _floats(args.p or DEFAULT_P["inflation"], "--p")
        if len(p) != 1:
            raise MWeightError(f"--p: the inflation design takes one probability (for m1), got {args.p!r}")
        ds = synthetic.make_inflation(p=p[0], irrelevant=not args.no_irrelevant,
                                      constant=not args.no_constant, **kwargs)

    truth = synthetic.write_dataset(ds, out)
    gt = ds.ground_truth
    counts = ", ".join(f"{k} {v}" for k, v in ds.counts().items())
    print(f"wrote {out} ({ds.n_samples} samples: {counts}; modalities {', '.join(ds.modalities)})")
    print(f"design {gt['design']}: relevant blocks {', '.join(gt['relevant_blocks'])}; ground truth in {truth}")
    return 0
