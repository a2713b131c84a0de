"""MOSI, real bc-LSTM utterance features, leak-free split `bclstm_protocol`, 5 seeds.

Trains, with the real CLI (`python -m mweight train ... --seeds 1,2,3,4,5`):
our InTense preset for MOSI utterance features, InTense with all interactions, MNL
(no interactions) and the TFN-style late-fusion baseline without beta, plus
closed-form ridge on the same standardised concatenated features (lambda chosen
on the validation split). Prints a Markdown table (test split, mean ± std over
seeds), the wall time and training samples/s of every 5-seed run, and the machine.

Model selection uses the validation split only; the test split is read once per run.

    python benchmarks/mosi_real.py [--data FILE.npz] [--out runs/mosi_real] [--seeds 1,2,3,4,5]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "mosi_bclstm_utterance_features" / "mosi_bclstm_features.npz"
TRAINING = HERE / "mosi_training.yaml"  # MOSI encoders + training settings shared by the generic presets

MODELS = [  # (row name, CLI arguments after --data/--out)
    ("InTense (mosi-utterance)", ["--preset", "mosi-utterance"]),
    ("InTense, all interactions", ["--preset", "intense", "--config", str(TRAINING)]),
    ("MNL (no interactions)", ["--preset", "mnl", "--config", str(TRAINING)]),
    ("late fusion / TFN-style, no beta", ["--preset", "late-fusion", "--config", str(TRAINING)]),
]
COLUMNS = [("mae", "MAE"), ("corr", "Corr"), ("acc2_non0", "Acc-2 non0"), ("acc2_has0", "Acc-2 has0"),
           ("acc7", "Acc-7"), ("f1_non0", "F1 non0"), ("f1_has0", "F1 has0")]
REFERENCE = {  # measured on this same protocol (issue 5): 5-seed means, MAE / Acc-2 non0
    "ridge (issue)": (0.952, 0.768), "authors' InTense code": (0.944, 0.765),
    "MMSA TFN": (0.899, 0.766), "MMSA LMF": (0.924, 0.764)}


def ridge(data: Path, split_key: str) -> dict:
    """Closed-form ridge with intercept on standardised [text, audio, video]; lambda by validation MAE."""
    from mweight.data import load_dataset
    from mweight.metrics import compute_metrics

    ds = load_dataset(data, split_key)
    x = np.concatenate([ds.modalities[m].astype(np.float64) for m in ds.names], axis=1)
    tr = ds.split == "train"
    mu, sd = x[tr].mean(0), x[tr].std(0)
    sd[sd < 1e-8] = 1.0
    x = (x - mu) / sd
    y = ds.label.astype(np.float64)
    xt, yt = x[tr], y[tr]
    ym = yt.mean()
    best = None
    for lam in 10.0 ** np.arange(-2, 5.01, 0.25):
        w = np.linalg.solve(xt.T @ xt + lam * np.eye(x.shape[1]), xt.T @ (yt - ym))
        pred = x @ w + ym
        v = compute_metrics(pred[ds.split == "valid"], y[ds.split == "valid"], "regression")
        if best is None or v["mae"] < best[0]:
            best = (v["mae"], lam, pred)
    _, lam, pred = best
    te = ds.split == "test"
    return {"lambda": float(lam), "test": compute_metrics(pred[te], y[te], "regression"),
            "valid": compute_metrics(pred[ds.split == "valid"], y[ds.split == "valid"], "regression")}


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.system()} (load average {load:.1f} at the end)")


def fmt(v: dict) -> str:
    return f"{v['mean']:.3f} ± {v['std']:.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default="runs/mosi_real")
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--only", help="comma-separated row numbers (1-based) to run; default all")
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not data.is_file():
        print(f"mosi_real: {data}: not found (the real bc-LSTM features; see ../shared/data)", file=sys.stderr)
        return 2
    out = Path(args.out)
    rows, timing = [], []
    chosen = [int(i) - 1 for i in args.only.split(",")] if args.only else range(len(MODELS))
    for i in chosen:
        name, extra = MODELS[i]
        run_dir = out / f"model{i + 1}"
        cmd = [sys.executable, "-m", "mweight", "train", "--data", str(data), "--split-key", "bclstm_protocol",
               "--seeds", args.seeds, "--out", str(run_dir), "--overwrite", "--quiet", *extra]
        print("$ " + " ".join(["mweight"] + cmd[3:]), file=sys.stderr, flush=True)
        t0, c0 = time.perf_counter(), os.times()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        c1 = os.times()
        cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return r.returncode
        summary = json.loads((run_dir / "summary.json").read_text())
        infos = [json.loads((d / "metrics.json").read_text())["info"] for d in sorted(run_dir.glob("seed_*"))]
        samples = sum(i["train_samples_per_second"] * i["seconds"] for i in infos)
        train_s = sum(i["seconds"] for i in infos)
        timing.append((name, wall, cpu, samples / train_s, samples / wall, [i["epochs_run"] for i in infos]))
        rows.append((name, summary))
        print(f"  {name}: {wall:.1f} s wall, {cpu:.1f} s CPU, {samples / train_s:.0f} training samples/s "
              f"(inside the training loop), epochs {timing[-1][5]}", file=sys.stderr, flush=True)
    rid = ridge(data, "bclstm_protocol")

    seeds = args.seeds
    lines = [f"Test split of `bclstm_protocol` (511 segments), mean ± std over seeds {seeds} "
             "(population std); model selection on its validation split (241 segments).", "",
             "| model | " + " | ".join(c for _, c in COLUMNS) + " | β share (text / audio / video / interactions) "
             "| Shapley share (text / audio / video) | evidence |",
             "| --- |" + " --- |" * (len(COLUMNS) + 3)]
    for name, s in rows:
        t = s["metrics"]["test"]
        share = s["share"]
        inter = [b for b in share if "*" in b]
        if summary_has_beta(s, name):
            vals = [share[m]["values"] for m in ("text", "audio", "video")]
            inter_vals = np.sum([share[b]["values"] for b in inter], axis=0) if inter else np.zeros(len(vals[0]))
            sh = " / ".join(f"{np.mean(v):.2f} ± {np.std(v):.2f}" for v in [*vals, inter_vals])
        else:
            sh = "(no β: ridge on the final layer)"
        mods = (s.get("attribution") or {}).get("modalities", {})
        shap = " / ".join(f"{mods[m]['shapley_share']['mean']:.2f} ± {mods[m]['shapley_share']['std']:.2f}"
                          for m in ("text", "audio", "video")) if all(m in mods for m in ("text", "audio", "video")) \
            else "-"
        trust = (s.get("trust") or {}).get("verdict", "-")
        lines.append(f"| {name} | " + " | ".join(fmt(t[k]) for k, _ in COLUMNS) + f" | {sh} | {shap} | {trust} |")
    rt = rid["test"]
    lines.append(f"| ridge, closed form (λ = {rid['lambda']:g} by valid MAE) | "
                 + " | ".join(f"{rt[k]:.3f}" for k, _ in COLUMNS) + " | - | - | - |")
    lines += ["", "Reference (issue 5, same protocol, 5-seed means, MAE / Acc-2 non0): "
              + "; ".join(f"{k} {a:.3f} / {b:.3f}" for k, (a, b) in REFERENCE.items()) + ".", "",
              "| 5-seed run | wall time | CPU time | training samples/s (in the loop, per run) | "
              "samples/s over the whole command | epochs per seed |", "| --- | --- | --- | --- | --- | --- |"]
    for name, wall, cpu, sps, sps_all, eps in timing:
        lines.append(f"| {name} | {wall:.1f} s | {cpu:.1f} s | {sps:.0f} | {sps_all:.0f} | {eps} |")
    lines += ["", f"Machine: {machine()}."]
    text = "\n".join(lines)
    print(text)
    (out / "table.md").write_text(text + "\n")
    json.dump({"rows": {n: s["metrics"]["test"] for n, s in rows}, "ridge": rid,
               "timing": [dict(zip(("name", "wall_s", "cpu_s", "samples_per_s", "samples_per_s_command", "epochs"),
                                   t)) for t in timing]},
              open(out / "table.json", "w"), indent=1)
    return 0


def summary_has_beta(s: dict, name: str) -> bool:
    return "no beta" not in name and all(m in s["share"] for m in ("text", "audio", "video"))


if __name__ == "__main__":
    sys.exit(main())
