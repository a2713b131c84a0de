"""``mweight prepare mosi | mosei | sims | sdk``: turn a dataset into a mweight dataset (.npz).

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

EPILOG_MOSEI = """\
sources (exactly one):
  --csd-dir DIR     the CMU-SDK CMU-MOSEI .csd files. Standard names are recognised:
                    *TimestampedWords* (words), *WordVectors*/GloVe (text), COVAREP (audio),
                    FACET 4.2 (video; OpenFace 2 with --video-csd), CMU_MOSEI_Labels ("All Labels":
                    sentiment, happy, sad, anger, surprise, disgust, fear)
  --mmsa PKL        MMSA's MOSEI aligned_50.pkl / unaligned_50.pkl (split from the pickle)

label = sentiment in [-3, 3]; the six emotions (0..3) become label_happy, label_sad, ...
Splits are the standard CMU-MOSEI folds (2249 / 300 / 678 videos, built in). Labelled videos
missing from a feature file are dropped (one line says how many). Files are read one video at
a time, so memory is the output plus the largest video. Alignment as for `prepare mosi`.

examples:
  mweight prepare mosei --csd-dir ~/data/mosei_csd --out data/mosei_words.npz
  mweight prepare mosei --csd-dir ~/data/mosei_csd --video-csd ~/data/mosei_csd/CMU_MOSEI_VisualOpenFace2.csd --out d.npz
  mweight prepare mosei --csd-dir ~/data/mosei_csd --level segment --out data/mosei_seg.npz
  mweight prepare mosei --mmsa ~/MMSA/MOSEI/Processed/unaligned_50.pkl --out data/mosei_mmsa.npz
"""

EPILOG_SIMS = """\
The pickle's train/valid/test keys give the split; regression_labels (in [-1, 1]) is `label`,
and the human unimodal labels regression_labels_T / _A / _V are kept as label_text,
label_audio, label_video. Sequences keep their own lengths (<m>_lengths; text 39, audio 400,
vision 55 steps in unaligned_39.pkl). Read with a restricted unpickler (arrays and containers only).

examples:
  mweight prepare sims --mmsa ~/MMSA/SIMS/Processed/unaligned_39.pkl --out data/sims.npz
  mweight prepare sims --mmsa ~/MMSA/SIMSv2/Processed/unaligned.pkl --out data/sims2.npz
"""

EPILOG_SDK = """\
--recipe maps roles to files: labels (required), words and/or text (word vectors; the reference
for --level word), audio, video, or any other modality name. --folds gives the split by video id.
The labels file may have several columns: the first is `label`, the others label_<name>
(--label-names) or label_col<k>. Labels only need to be finite.

examples:
  mweight prepare sdk --recipe text=glove.csd,audio=covarep.csd,video=facet.csd,labels=labels.csd \\
      --folds folds.json --label-names sentiment --out data/pom.npz
  mweight prepare sdk --recipe recipe.yaml --folds folds.json --level segment --out data/mine.npz
"""


def add_parser(subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description="Prepare a dataset in the mweight .npz format.")
    datasets = parser.add_subparsers(dest="dataset", metavar="DATASET")
    parser.set_defaults(func=lambda args: _no_dataset(parser))
    p = datasets.add_parser("mosi", help="CMU-MOSI from .csd, MMSA/MulT pickles, bc-LSTM or your own features",
                            description="Turn CMU-MOSI in any common format into one mweight dataset (.npz).",
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = _csd_sources(p)
    src.add_argument("--mmsa", metavar="PKL", help="MMSA aligned_50.pkl / unaligned_50.pkl")
    src.add_argument("--mult", metavar="PKL", help="MulT / MultiBench mosi_data.pkl")
    src.add_argument("--bclstm", metavar="DIR", help="bc-LSTM utterance features folder")
    src.add_argument("--features", metavar="MOD=FILE", action="append", default=[],
                     help="bring your own: .npz or .csv per modality keyed by segment id (repeatable)")
    src.add_argument("--labels", metavar="CSV", help="labels CSV (OpinionLevelSentiment.csv or segment_id,label[,start,end])")
    src.add_argument("--transcripts", metavar="CSV", help="transcripts CSV (transcripts.csv or segment_id,text) -> transcript column")
    src.add_argument("--download", action="store_true", help="download the standard .csd files into --csd-dir via the CMU SDK")
    _csd_options(p)
    p.set_defaults(func=run_mosi)

    p = _dataset_parser(datasets, "mosei", "CMU-MOSEI from .csd files (sentiment + six emotions) or the MMSA pickle",
                        "CMU-MOSEI (CMU-SDK .csd files or MMSA's pickle)", EPILOG_MOSEI)
    src = _csd_sources(p)
    src.add_argument("--mmsa", metavar="PKL", help="MMSA MOSEI aligned_50.pkl / unaligned_50.pkl (split from the pickle)")
    src.add_argument("--transcripts", metavar="CSV", help="transcripts CSV (segment_id,text) -> transcript column")
    _csd_options(p)
    p.set_defaults(func=run_mosei)

    p = _dataset_parser(datasets, "sims", "CH-SIMS / SIMS v2 from MMSA pickles, with the unimodal labels",
                        "an MMSA CH-SIMS or SIMS v2 pickle", EPILOG_SIMS)
    p.add_argument("--mmsa", metavar="PKL", required=True, help="MMSA unaligned_39.pkl (CH-SIMS) or SIMS v2 unaligned.pkl")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="the dataset file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    _compress_option(p)
    p.set_defaults(func=run_sims)

    p = _dataset_parser(datasets, "sdk", "any CMU-SDK dataset (.csd files) with a recipe and a folds file",
                        "any CMU-SDK .csd dataset (POM, YouTube, ICT-MMMO, your own)", EPILOG_SDK)
    src = _csd_sources(p, any_modality=True)
    src.add_argument("--transcripts", metavar="CSV", help="transcripts CSV (segment_id,text) -> transcript column")
    src.add_argument("--folds", metavar="JSON", required=True,
                     help='{"train": [video ids], "valid": [...], "test": [...]} (valid optional)')
    src.add_argument("--label-names", metavar="A,B,...",
                     help="names of the labels .csd columns: the first is `label`, the others become label_<name>")
    src.add_argument("--name", metavar="TEXT", help="dataset name recorded in meta_json")
    _csd_options(p)
    p.set_defaults(func=run_sdk)
    return parser


def _dataset_parser(datasets, name: str, help_text: str, what: str, epilog: str) -> argparse.ArgumentParser:
    return datasets.add_parser(name, help=help_text, description=f"Turn {what} into one mweight dataset (.npz).",
                               epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)


def _csd_sources(p: argparse.ArgumentParser, any_modality: bool = False):
    """The .csd source options shared by mosi, mosei and sdk; returns the group."""
    src = p.add_argument_group("sources")
    if not any_modality:
        src.add_argument("--csd-dir", metavar="DIR", help="folder of CMU-SDK .csd files (standard names recognised)")
    roles = "labels, words, text, audio, video" + (", or any modality name (e.g. pose=pose.csd)" if any_modality else "")
    src.add_argument("--recipe", metavar="MAP", required=any_modality, help=f"ROLE=FILE,... or a YAML/JSON file (roles: {roles})")
    for role in ("labels", "words", "text", "audio", "video"):
        src.add_argument(f"--{role}-csd", metavar="FILE", help=f"the .csd file for {role}")
    return src


def _csd_options(p: argparse.ArgumentParser) -> None:
    """Alignment options shared by every .csd command, and --out."""
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
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    _compress_option(p)


def _compress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compress", action="store_true",
                   help="zip-deflate the .npz (smaller, several times slower to write; default: uncompressed, "
                        "both load the same)")


def _no_dataset(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_mosi(args: argparse.Namespace) -> int:
    from ..prepare import mosi

    sources = [s for s in ("csd_dir", "mmsa", "mult", "bclstm") if getattr(args, s)]
    explicit = _explicit_csd(args)
    if args.features:
        sources.append("features")
    if (explicit or args.recipe) and "csd_dir" not in sources:
        sources.append("csd_files")
    if len(sources) != 1:
        raise MWeightError(f"prepare mosi: {len(sources)} sources given ({', '.join(sources) or 'none'}); expected exactly one of "
                           "--csd-dir (or --recipe/--<role>-csd), --mmsa, --mult, --bclstm, --features")
    out = _out(args)
    options = _options(args)
    source = sources[0]
    if args.download:
        if source != "csd_dir":
            raise MWeightError("--download: needs --csd-dir DIR (where the .csd files go)")
        from ..prepare.download import download_mosi

        download_mosi(args.csd_dir)
    if source in ("csd_dir", "csd_files"):
        meta = _prepare_csd(args, out, mosi.MOSI, labels_csv=args.labels)
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
    return _report(meta, out)


def _out(args: argparse.Namespace) -> Path:
    """--out, checked before any reading: a .npz file name in a writable folder, never an
    existing file unless --overwrite."""
    from ..fileio import check_output_file

    out = Path(args.out)
    if out.suffix != ".npz":
        raise MWeightError(f"{out}: --out must end in .npz (the mweight dataset format)")
    return check_output_file(out, "--out", overwrite=getattr(args, "overwrite", False))


def _options(args: argparse.Namespace) -> dict:
    from ..prepare.align import EPSILON

    args.epsilon = EPSILON if args.epsilon is None else args.epsilon
    return {"level": args.level, "seq_len": args.seq_len, "keep_sp": args.keep_sp, "epsilon": args.epsilon,
            "missing": args.missing, "compress": args.compress}


def _explicit_csd(args: argparse.Namespace) -> dict[str, str]:
    return {r: getattr(args, f"{r}_csd") for r in ("labels", "words", "text", "audio", "video") if getattr(args, f"{r}_csd")}


def _prepare_csd(args: argparse.Namespace, out: Path, spec, labels_csv=None, any_modality: bool = False) -> dict:
    """The .csd path of every command: --csd-dir, then --recipe, then --<role>-csd (later wins)."""
    from ..prepare import pipeline

    csd_dir = getattr(args, "csd_dir", None)
    files = pipeline.parse_recipe(args.recipe, Path(csd_dir) if csd_dir else None, any_modality=any_modality)
    files.update({k: Path(v) for k, v in _explicit_csd(args).items()})
    return pipeline.prepare_csd(out, spec, csd_dir=csd_dir, files=files, labels_csv=labels_csv,
                                transcripts_csv=args.transcripts, level=args.level, seq_len=args.seq_len,
                                keep_sp=args.keep_sp, epsilon=args.epsilon, missing=args.missing,
                                compress=args.compress)


def _report(meta: dict, out: Path) -> int:
    from ..prepare import pipeline

    for note in meta.get("notes", []):
        pipeline.warn(note)
    print(pipeline.summary(meta, out))
    return 0


def run_mosei(args: argparse.Namespace) -> int:
    from ..prepare import datasets, pipeline

    csd = bool(args.csd_dir or args.recipe or _explicit_csd(args))
    if csd == bool(args.mmsa):
        raise MWeightError("prepare mosei: expected exactly one source: --csd-dir (or --recipe/--<role>-csd) or --mmsa")
    out = _out(args)
    options = _options(args)
    if args.mmsa:
        return _report(pipeline.prepare_pickle(out, args.mmsa, "mmsa", options, datasets.mosei()), out)
    return _report(_prepare_csd(args, out, datasets.mosei()), out)


def run_sims(args: argparse.Namespace) -> int:
    from ..prepare import datasets, pipeline

    out = _out(args)
    meta = pipeline.prepare_pickle(out, args.mmsa, "mmsa", {"compress": args.compress}, datasets.sims())
    if not meta.get("labels"):
        pipeline.warn(f"{args.mmsa}: no regression_labels_T/A/V in every split: the unimodal labels are absent")
    return _report(meta, out)


def run_sdk(args: argparse.Namespace) -> int:
    from ..prepare import datasets

    out = _out(args)
    _options(args)
    names = [n.strip() for n in (args.label_names or "").split(",") if n.strip()]
    bad = [n for n in names if not n.isidentifier() or not n.islower()]
    if bad:
        raise MWeightError(f"--label-names: '{bad[0]}' (expected lower-case names like sentiment,happy)")
    spec = datasets.sdk(args.folds, args.name, names)
    return _report(_prepare_csd(args, out, spec, any_modality=True), out)
