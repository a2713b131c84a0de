"""``mweight prepare mosi``: turn MOSI in any common format into a mweight dataset (.npz).

All logic lives in :mod:`mweight.prepare`; this module only parses arguments.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import MWeightError

EPILOG = """\
sources (exactly one):
  --csd-dir DIR     CMU-SDK computational sequences (.csd). Standard names are recognised:
                    *TimestampedWords* (words), *WordVectors*/glove (text), COVAREP/openSMILE
                    (audio), FACET 4.1/4.2/OpenFace (video), *Opinion_Labels* (labels);
                    override with --recipe ROLE=FILE,... or --words-csd/--text-csd/...
  --mmsa PKL        MMSA aligned_50.pkl / unaligned_50.pkl (split from the pickle)
  --mult PKL        MulT / MultiBench mosi_data.pkl (left padding -> right padding + lengths)
  --bclstm DIR      bc-LSTM utterance features (keeps bclstm_split / bclstm_protocol; LEAKAGE:
                    report numbers only with --split-key bclstm_protocol)
  --features MOD=FILE (repeatable) your own .npz/.csv per modality keyed by segment id,
                    with --labels CSV
  --download        fetch the standard .csd files into --csd-dir through the CMU SDK first

word level (--level word, default): frames are averaged per word (finite values only,
the SDK's align semantics), words without frames get zeros (the SDK's impute), then each
labelled segment keeps its first --seq-len words, padded at the end (<m>_lengths).
--level segment: one averaged vector per segment and modality.
Splits are the standard CMU-MOSI folds; the zero-length segment 2WGyTLYerpo_44 is dropped
as by the SDK, giving 1283 / 229 / 686.

examples:
  mweight prepare mosi --csd-dir ~/data/mosi_csd --out data/mosi_words.npz
  mweight prepare mosi --csd-dir ~/data/mosi_csd --level segment --out data/mosi_seg.npz
  mweight prepare mosi --mmsa ~/MMSA/MOSI/aligned_50.pkl --out data/mosi_mmsa.npz
  mweight prepare mosi --mult ~/MulT/data/mosi_data.pkl --out data/mosi_mult.npz
  mweight prepare mosi --bclstm shared/data/mosi_bclstm_utterance_features --out data/mosi_bclstm.npz
  mweight prepare mosi --features text=t.npz --features audio=a.csv --labels labels.csv --out my.npz
"""


def add_parser(subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description="Prepare a dataset in the mweight .npz format.")
    datasets = parser.add_subparsers(dest="dataset", metavar="DATASET")
    parser.set_defaults(func=lambda args: _no_dataset(parser))
    p = datasets.add_parser("mosi", help="CMU-MOSI from .csd, MMSA/MulT pickles, bc-LSTM or your own features",
                            description="Turn CMU-MOSI in any common format into one mweight dataset (.npz).",
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("sources")
    src.add_argument("--csd-dir", metavar="DIR", help="folder of CMU-SDK .csd files")
    src.add_argument("--recipe", metavar="MAP", help="ROLE=FILE,... or a YAML/JSON file (roles: labels, words, text, audio, video)")
    for role in ("labels", "words", "text", "audio", "video"):
        src.add_argument(f"--{role}-csd", metavar="FILE", help=f"the .csd file for {role}")
    src.add_argument("--mmsa", metavar="PKL", help="MMSA aligned_50.pkl / unaligned_50.pkl")
    src.add_argument("--mult", metavar="PKL", help="MulT / MultiBench mosi_data.pkl")
    src.add_argument("--bclstm", metavar="DIR", help="bc-LSTM utterance features folder")
    src.add_argument("--features", metavar="MOD=FILE", action="append", default=[],
                     help="bring your own: .npz or .csv per modality keyed by segment id (repeatable)")
    src.add_argument("--labels", metavar="CSV", help="labels CSV (OpinionLevelSentiment.csv or segment_id,label[,start,end])")
    src.add_argument("--transcripts", metavar="CSV", help="transcripts CSV (transcripts.csv or segment_id,text) -> transcript column")
    src.add_argument("--download", action="store_true", help="download the standard .csd files into --csd-dir via the CMU SDK")
    opt = p.add_argument_group("options")
    opt.add_argument("--level", choices=["word", "segment"], default="word", help="word-aligned sequences or one vector per segment")
    opt.add_argument("--seq-len", type=int, default=50, help="words kept per segment at word level (default 50)")
    sp = opt.add_mutually_exclusive_group()
    sp.add_argument("--drop-sp", dest="keep_sp", action="store_false", help="drop 'sp' pause tokens (default)")
    sp.add_argument("--keep-sp", dest="keep_sp", action="store_true", help="keep 'sp' pause tokens")
    p.set_defaults(keep_sp=False)
    opt.add_argument("--epsilon", type=float, default=None, help="alignment epsilon in seconds (default 1e-5, the SDK's)")
    opt.add_argument("--missing", choices=["error", "zeros", "drop"], default="error",
                     help="a labelled segment with no frames/words: stop (default), zero-fill or drop it")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="the dataset file to write")
    p.set_defaults(func=run_mosi)
    return parser


def _no_dataset(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_mosi(args: argparse.Namespace) -> int:
    from ..prepare import mosi
    from ..prepare.align import EPSILON

    sources = [s for s in ("csd_dir", "mmsa", "mult", "bclstm") if getattr(args, s)]
    explicit = {r: getattr(args, f"{r}_csd") for r in ("labels", "words", "text", "audio", "video") if getattr(args, f"{r}_csd")}
    if args.features:
        sources.append("features")
    if (explicit or args.recipe) and "csd_dir" not in sources:
        sources.append("csd_files")
    if len(sources) != 1:
        raise MWeightError(f"prepare mosi: {len(sources)} sources given ({', '.join(sources) or 'none'}); expected exactly one of "
                           "--csd-dir (or --recipe/--<role>-csd), --mmsa, --mult, --bclstm, --features")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise MWeightError(f"{out}: --out must end in .npz (the mweight dataset format)")
    epsilon = EPSILON if args.epsilon is None else args.epsilon
    options = {"level": args.level, "seq_len": args.seq_len, "keep_sp": args.keep_sp, "epsilon": epsilon, "missing": args.missing}
    source = sources[0]
    if args.download:
        if source != "csd_dir":
            raise MWeightError("--download: needs --csd-dir DIR (where the .csd files go)")
        from ..prepare.download import download_mosi

        download_mosi(args.csd_dir)
    if source in ("csd_dir", "csd_files"):
        files = mosi.parse_recipe(args.recipe, Path(args.csd_dir) if args.csd_dir else None)
        files.update({k: Path(v) for k, v in explicit.items()})
        meta = mosi.prepare_csd(out, csd_dir=args.csd_dir, files=files, labels_csv=args.labels,
                                transcripts_csv=args.transcripts, level=args.level, seq_len=args.seq_len,
                                keep_sp=args.keep_sp, epsilon=epsilon, missing=args.missing)
    elif source in ("mmsa", "mult"):
        meta = mosi.prepare_pickle(out, getattr(args, source), source, options)
    elif source == "bclstm":
        meta = mosi.prepare_bclstm(out, args.bclstm, args.labels, args.transcripts, options)
    else:
        specs = {}
        for item in args.features:
            if "=" not in item:
                raise MWeightError(f"--features: '{item}' is not MOD=FILE (e.g. text=text.npz)")
            mod, f = item.split("=", 1)
            specs[mod.strip()] = f.strip()
        meta = mosi.prepare_features(out, specs, args.labels, args.transcripts, args.missing, options)
    for note in meta.get("notes", []):
        mosi.warn(note)
    print(mosi.summary(meta, out))
    return 0
