"""``mweight explain``: global relevance per block, and one segment's transcript and contributions."""
from __future__ import annotations

import sys

import argparse

from ..devices import add_device_argument, use_device

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
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..fileio import check_output_file, write_json

    if args.json:  # before any work
        check_output_file(args.json, "--json", overwrite=args.overwrite)
    use_device(args.device)  # an absent device: one line, exit 2
    from ..analysis import explain_segment, format_explanation, global_relevance, load_inputs, open_run, predict
    from ..transcripts import dataset_transcripts, read_transcripts

    lr = open_run(args.run_dir)
    transcripts = read_transcripts(args.transcripts) if args.transcripts else None
    if args.data:
        frame = predict(lr, load_inputs(args.data, lr))
        source = str(args.data)
    else:
        frame = lr.run.predictions()
        source = str(lr.path / "predictions.csv")
        check_predictions(frame, lr, source)
        _warn_changed_dataset(lr)
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


def _warn_changed_dataset(lr) -> None:
    """One line when the run's dataset file changed since training (its SHA-256 is recorded)."""
    from pathlib import Path

    from ..runs import sha256
    from ..trust import data_warnings

    recorded = lr.run.meta.get("dataset_sha256")
    path = lr.cfg.data.path
    if recorded and path and Path(path).is_file():
        for w in data_warnings({}, [], "", 0, recorded, sha256(path), path):
            print(f"mweight: warning: {w}", file=sys.stderr)


def check_predictions(frame, lr, source: str) -> None:
    """A run's predictions.csv must be complete: every column, one row per sample, no empty
    cell, blocks + bias = the prediction (classification: the score). A truncated or edited
    file is refused in one line instead of explaining from partial rows."""
    import numpy as np

    from ..errors import MWeightError

    blocks = list(lr.blocks)
    total = "score" if "score" in frame.columns or lr.task == "classification" else "prediction"
    need = ["id", "split", "label", "prediction", "bias", *blocks] + (["score"] if total == "score" else [])
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise MWeightError(f"{source}: missing column {missing[0]!r} (expected {', '.join(need)}); "
                           "re-make it with `mweight predict` or explain with --data")
    counts = (lr.run.meta or {}).get("counts") or {}
    expected = sum(int(v) for v in counts.values()) if counts else None
    if expected is not None and len(frame) != expected:
        raise MWeightError(f"{source}: has {len(frame)} rows; the run has {expected} samples (file truncated?); "
                           "re-make it with `mweight predict` or explain with --data")
    numbers = frame[["prediction", "bias", *blocks] + ([total] if total == "score" else [])]
    try:
        values = numbers.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise MWeightError(f"{source}: has non-numeric values in its prediction columns (file damaged?)") from None
    if frame[["id", "split"]].isna().any().any() or not np.isfinite(values).all():
        row = int(np.nonzero(~np.isfinite(values).all(axis=1) | frame[["id", "split"]].isna().any(axis=1)
                             .to_numpy())[0][0])
        raise MWeightError(f"{source}: row {row + 2} has an empty or non-finite cell (file truncated?); "
                           "re-make it with `mweight predict` or explain with --data")
    summed = frame[blocks].to_numpy(dtype=float).sum(axis=1) + frame["bias"].to_numpy(dtype=float)
    bad = np.nonzero(np.abs(summed - frame[total].to_numpy(dtype=float)) > 1e-3 * (1 + np.abs(summed)))[0]
    if len(bad):
        raise MWeightError(f"{source}: row {int(bad[0]) + 2}: bias + block columns = {summed[bad[0]]:.6g}, "
                           f"but {total} = {frame[total].iloc[bad[0]]:.6g} (file edited or damaged?)")
