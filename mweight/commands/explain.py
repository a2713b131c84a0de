"""``mweight explain``: global relevance per block, and one segment's transcript and contributions."""
from __future__ import annotations

import argparse

EPILOG = """examples:
  mweight explain runs/mosi/seed_1
  mweight explain runs/mosi/seed_1 --id 03bSnISJMiM_1
  mweight explain runs/mosi/seed_1 --id 03bSnISJMiM_1 --transcripts transcripts.csv
  mweight explain runs/mosi/seed_1 --id a_1 --data new.npz      # a segment of another file

beta is read from the selected checkpoint (RUN_DIR/relevance.json); a segment's
prediction is exactly bias + the sum of its block contributions. Transcripts come
from --transcripts (CSV: id,transcript, with or without a header, e.g. MOSI's
transcripts.csv) or from a 'transcript' column of the dataset."""


def add_parser(sub, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="one run directory (a seed_<s>/ of a multi-seed run)")
    p.add_argument("--id", dest="segment", metavar="SEGMENT", help="segment id to explain")
    p.add_argument("--data", metavar="FILE.npz", help="take the segment from this dataset (default: the run's predictions)")
    p.add_argument("--transcripts", metavar="CSV", help="id,transcript CSV (default: the dataset's 'transcript' column)")
    p.add_argument("--json", metavar="OUT.json", help="also write the explanation as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..fileio import check_output_file, write_json

    if args.json:  # before any work
        check_output_file(args.json, "--json", overwrite=args.overwrite)
    from ..analysis import (dataset_transcripts, explain_segment, format_explanation, global_relevance,
                            load_inputs, open_run, predict, read_transcripts)

    lr = open_run(args.run_dir)
    transcripts = read_transcripts(args.transcripts) if args.transcripts else None
    if args.data:
        frame = predict(lr, load_inputs(args.data, lr))
        source = str(args.data)
    else:
        frame = lr.run.predictions()
        source = str(lr.path / "predictions.csv")
    rel = global_relevance(lr, frame)
    seg, text = None, None
    if args.segment:
        seg = explain_segment(frame, args.segment, lr.blocks, source)
        if transcripts is None:
            transcripts = dataset_transcripts(args.data or lr.cfg.data.path)
        text = transcripts.get(seg["id"]) if transcripts else None
    print(format_explanation(lr, rel, seg, text, lr.run.metrics.get("test")))
    if args.json:
        write_json(args.json, {"run": str(lr.path), "relevance": rel.to_dict(orient="records"),
                               "segment": seg and {**seg, "transcript": text}})
    return 0
