"""Training-loop speed of the working tree against an older revision, in ONE process (a ratio).

Extracts ``mweight/`` of ``--base`` (a git revision) into a temporary directory as the
package ``mweight_base``, then alternates ``fit()`` runs (the real loop, a checkpoint
per epoch, batch 16, one thread) of both on the real MOSI features and prints the
median training samples/s and the ratio. Absolute times on a shared machine are noise;
the ratio of interleaved runs in the same process is what this measures. The same
validation MAE for both on the same preset shows the arithmetic is unchanged.

    python benchmarks/loop_speed.py [--base cff5475] [--rounds 4] [--epochs 12]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from importlib import import_module
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "mosi_bclstm_utterance_features" / "mosi_bclstm_features.npz"
OLD_ENCODERS = {"text": {"name": "mlp", "hidden": 128}, "audio": {"name": "mlp", "hidden": 32},
                "video": {"name": "mlp", "hidden": 32}}  # the mosi-utterance preset before LayerNorm / t256


def extract(rev: str, dest: Path) -> None:
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev, "mweight"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    (dest / "mweight").rename(dest / "mweight_base")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="cff5475", help="git revision to compare with (default: before the fast paths)")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=12)
    args = ap.parse_args(argv)
    import sklearn.metrics  # noqa: F401  (imported up front, so both loops are timed without it)

    tmp = Path(tempfile.mkdtemp())
    extract(args.base, tmp)
    sys.path.insert(0, str(tmp))
    old_plain = {"model": {"encoders": OLD_ENCODERS}}
    new_plain = {"model": {"encoders": {m: {**v, "norm": "none"} for m, v in OLD_ENCODERS.items()}}}
    variants = {f"{args.base} code, old preset": ("mweight_base", old_plain),
                "new code, old preset": ("mweight", new_plain),
                "new code, new preset (mosi-utterance)": ("mweight", None)}
    res: dict[str, list] = {k: [] for k in variants}
    for r in range(args.rounds):
        for k in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            pkg, extra = variants[k]
            cfgm, datam, trm = (import_module(f"{pkg}.{m}") for m in ("config", "data", "train"))
            cfg = cfgm.resolve_config(preset="mosi-utterance", extra=extra, overrides=[
                f"train.epochs={args.epochs}", "train.patience=1000", "train.progress=false", "train.seed=1"])
            ds = datam.load_dataset(args.data, "bclstm_protocol")
            with tempfile.TemporaryDirectory() as d:
                fr = trm.fit(ds, cfg, run_dir=d)
            res[k].append((fr.samples_per_second, fr.metrics["valid"]["mae"]))
    base = statistics.median(s for s, _ in res[next(iter(variants))])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"fit(), {args.epochs} epochs, batch 16, checkpoint per epoch, 1 thread; median of {args.rounds} "
          f"interleaved runs each; load average {load:.1f}")
    for k, v in res.items():
        m = statistics.median(s for s, _ in v)
        print(f"{k:40s} {m:6.0f} training samples/s  ratio {m / base:.3f}x  valid MAE {v[0][1]:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
