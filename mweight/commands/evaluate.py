"""``mweight evaluate``: recompute a run's metrics, on its own data or on another dataset file."""
from __future__ import annotations

import argparse
import sys

from ..devices import add_device_argument, use_device

EPILOG = """examples:
  mweight evaluate runs/mosi                          # every seed_<s>/ of a multi-seed run, mean ± std
  mweight evaluate runs/mosi/seed_1                   # one run, on the dataset it was trained on
  mweight evaluate runs/mosi/seed_1 --data other.npz  # on another file with the same modalities
  mweight evaluate runs/mosi/seed_1 --json eval.json

Metrics follow the MMSA convention (labelled: Acc-2/F1 in both has0 and non0 variants).
On the run's own file the validation set carved at training time is re-made, and the
recomputed numbers are compared with RUN_DIR/metrics.json."""


def add_parser(sub, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or a multi-seed folder with seed_<s>/)")
    p.add_argument("--data", metavar="FILE.npz", help="dataset to evaluate on (default: the run's own)")
    p.add_argument("--split-key", metavar="KEY", help="split column of --data (default: the run's)")
    p.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    add_device_argument(p)
    p.set_defaults(func=run)


def _print_evidence(res: dict) -> None:
    """The verdict first (warnings also to stderr), then the attribution unless there is no evidence."""
    from ..attribution import format_line
    from ..trust import verdict_line

    trust, att = res.get("trust"), res.get("attribution")
    if trust:
        for w in trust.get("warnings", []):
            print(f"mweight: warning: {w}", file=sys.stderr)
        print(verdict_line(trust))
        if trust["verdict"] == "no-evidence":
            print("no relevance shown: not better than a trivial predictor (beta and attribution carry no information)")
            return
    if att:
        print(format_line(att))
        for m, a in (att.get("unimodal_labels") or {}).items():
            ci = a.get("pearson_difference_ci")
            print(f"  {m}: corr(Shapley {m}, human {m} label) {a['pearson_unimodal']:.3f} vs corr(Shapley {m}, "
                  f"multimodal label) {a['pearson_multimodal']:.3f}"
                  + (f"; difference 95% CI [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "") + f" ({att['split']}, n={a['n']})")


def run(args) -> int:
    from ..fileio import check_output_file, write_json

    if args.json:  # before any work: never replace a file this command did not write
        check_output_file(args.json, "--json", overwrite=args.overwrite)
    use_device(args.device)  # an absent device: one line, exit 2
    from ..analysis import evaluate_run, metrics_table, open_run, run_dirs

    dirs = run_dirs(args.run_dir)
    results = []
    for d in dirs:
        res = evaluate_run(open_run(d), args.data, args.split_key)
        results.append(res)
        print(f"== {d} on {res['data']} (split column {res['split_key']!r})")
        print(metrics_table(res["metrics"], res["task"]))
        if res["max_abs_diff"] is not None:
            print(f"recomputed vs {d}/metrics.json: max |difference| = {res['max_abs_diff']:.2e}")
        _print_evidence(res)
        print()
    out = {"runs": results}
    if len(results) > 1:
        from ..runs import mean_std

        summary: dict = {}
        for s in results[0]["metrics"]:
            keys = [k for k in results[0]["metrics"][s] if k != "n"]
            summary[s] = {k: {key: v for key, v in mean_std(r["metrics"][s][k] for r in results
                                                            if s in r["metrics"]).items() if key != "values"}
                          for k in keys}
        out["summary"] = summary
        print(f"== mean ± std over {len(results)} seeds")
        from ..metrics import METRIC_LABELS

        for s, d in summary.items():
            print(f"[{s}] " + "; ".join(f"{METRIC_LABELS.get(k, k).split(' (')[0]}"
                                        f"{' ' + k.split('_')[1] if '_' in k else ''} {v['mean']:.4f} ± {v['std']:.4f}"
                                        for k, v in d.items() if k != "loss"))
    if args.json:
        write_json(args.json, out)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
