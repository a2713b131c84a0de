"""Train one run into a run directory: read and check the data, guard --out and --resume, train, print.

Every training entry point ends in :func:`train_job` (:func:`mweight.seeds.train_runs` for
``mweight train`` and the app, each seed backend, every sweep trial)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from .config import Config
from .data import Dataset, carve_validation, check_training_data, load_dataset
from .errors import ConfigError, MWeightError
from .fileio import check_output_dir, write_yaml
from .runs import SUMMARY_FILES, RunDir, result_line, seed_dir, seed_dirs, sha256, write_run
from .train import FitResult, fit


def load_for_training(cfg: Config, notes: list[str] | None = None) -> tuple[Dataset, dict]:
    """Read and check the dataset for ``cfg``; every problem is one line, before any training.

    ``notes`` (if given) receives warnings and notes (no test split, odd label range);
    otherwise they are printed to stderr.
    """
    if not cfg.data.path:
        raise MWeightError("data.path is not set (use --data FILE.npz)")
    ds = load_dataset(cfg.data.path, cfg.data.split_key, cfg.data.modalities, cfg.data.task)
    found = check_training_data(ds)
    check_model_fits_data(cfg, ds)
    ds, record = carve_validation(ds, cfg.data.valid_fraction, cfg.data.valid_seed)
    if notes is None:
        for line in found:
            print(f"mweight: {line}", file=sys.stderr)
    else:
        notes.extend(found)
    return ds, record


def check_model_fits_data(cfg: Config, ds: Dataset) -> None:
    """Build the model once (cheap, no training) so every config error that needs the data
    (modality names in interactions/encoders, encoder names and options, token
    vocabularies) is one line before any file is written."""
    from .config import check_against_modalities
    from .encoders import check_token_ids
    from .model import MWeightNet, make_shapes

    check_against_modalities(cfg, ds.names, str(ds.path))
    out_dim = int(ds.label.max()) + 1 if ds.task == "classification" else 1
    try:
        model = MWeightNet(make_shapes(ds.modalities), out_dim, cfg.model, standardize=cfg.data.standardize)
    except MWeightError:
        raise
    except ValueError as exc:  # e.g. fusion's checks of model.interactions
        raise ConfigError(f"model: {str(exc).splitlines()[0]}") from None
    for m, enc in model.encoders.items():
        vocab = getattr(enc, "vocab", None)
        tokens = ds.modalities[m].dtype.kind in "iu"
        name = model.encoder_names[m]
        if vocab is not None and not tokens:
            raise ConfigError(f"model.encoders.{m}.name = {name!r} takes integer token ids; {ds.path} holds float "
                              f"features for {m!r} (use mlp, gru, lstm or transformer)", key=f"model.encoders.{m}.name")
        if vocab is None and tokens:
            raise ConfigError(f"model.encoders.{m}.name = {name!r} takes float features; {ds.path} holds integer "
                              f"token ids for {m!r} (use a token encoder such as dna_cnn)", key=f"model.encoders.{m}.name")
        if vocab is not None:
            check_token_ids(ds.modalities[m], int(vocab), m, str(ds.path))


def _check_out(run_dir: Path, resume: bool, overwrite: bool) -> None:
    check_output_dir(run_dir, "--out")
    if resume or overwrite or not run_dir.exists():
        return
    present = RunDir(run_dir).present()
    if present == ["config.yaml"] and _started_config_only(run_dir):
        return  # a start record of a run that stopped before its first epoch: nothing to protect
    if present:
        raise MWeightError(f"{run_dir}: already holds a run ({present[0]}); use --resume to continue it "
                           "or --overwrite to replace it")


def _started_config_only(run_dir: Path) -> bool:
    import yaml

    try:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        return (saved.get("_meta") or {}).get("status") == "training"
    except (OSError, yaml.YAMLError, AttributeError):
        return False


def check_run_out(out: Path, seeds: list[int] | None, resume: bool, overwrite: bool) -> None:
    """Check ``--out`` before any work: a folder (not a file), writable, and the same layout
    as what is there (a single run is never mixed with ``seed_<s>/`` sub-runs)."""
    out = Path(out)
    check_output_dir(out, "--out")
    if not out.is_dir():
        return
    single = RunDir(out).present()
    multi = [p.name for p in seed_dirs(out, started_only=False)] + [f for f in SUMMARY_FILES if (out / f).exists()]
    if seeds is not None and single:
        raise MWeightError(f"--seeds {','.join(map(str, seeds))}: {out} holds a single run ({single[0]}); "
                           "seed runs go into a new --out folder")
    if seeds is None and multi:
        raise MWeightError(f"{out}: holds a multi-seed run ({multi[0]}); pass --seeds to continue it, or "
                           "choose another --out")
    for d in ([out] if seeds is None else [seed_dir(out, s) for s in seeds]):
        _check_out(d, resume, overwrite)


# Keys that do not change a run's numbers (or are checked otherwise: the dataset by SHA-256).
_RESUME_IGNORED = {"train.progress", "train.threads", "data.path"}


def verify_resume(run_dir: Path, cfg: Config, dataset_sha: str | None) -> None:
    """``--resume`` continues only the same run: same config, seed and dataset (SHA-256).

    Compares with ``run_dir/config.yaml`` (written when the run started); refuses with a
    one-line diff of what changed.
    """
    path = run_dir / "config.yaml"
    if not RunDir(run_dir).resumable:
        return  # nothing to continue: a fresh start
    if not path.is_file():
        print(f"mweight: note: {run_dir} has no config.yaml (a run from an older mweight); "
              "its config and dataset cannot be verified", file=sys.stderr)
        return
    try:
        changes = RunDir(run_dir).differences(cfg.to_dict(), dataset_sha, ignore=_RESUME_IGNORED,
                                              dataset=cfg.data.path)
    except MWeightError as exc:
        raise MWeightError(f"{exc}; --resume cannot verify the run against it") from None
    if changes:
        raise MWeightError(f"--resume: {run_dir} was started with a different setup: {'; '.join(changes)}; "
                           "resume with the same settings, or use --overwrite / a new --out")


def _start_run_dir(run_dir: Path, cfg: Config, ds: Dataset, dataset_sha: str | None, meta: dict,
                   overwrite: bool) -> None:
    """Before training: with ``--overwrite`` remove the previous run's files (so the folder
    never mixes two runs), then record the resolved config and the dataset's SHA-256 in
    ``config.yaml`` so an interrupted run can be verified by ``--resume``. The run's final
    ``config.yaml`` replaces it at the end."""
    if overwrite:
        for f in RunDir(run_dir).present() + ["ablation.json"]:
            if (run_dir / f).is_file():
                (run_dir / f).unlink()
    write_yaml(run_dir / "config.yaml", {**cfg.to_dict(), "_meta": {
        "status": "training", "dataset": str(ds.path) if ds.path else None, "dataset_sha256": dataset_sha,
        "split_key": ds.split_key, "counts": ds.counts(), "task": ds.task, "modalities": list(ds.names),
        **(meta or {})}})


def prepare_run_dir(run_dir: Path, cfg: Config, ds: Dataset, dataset_sha: str | None, meta: dict,
                     resume: bool, overwrite: bool) -> None:
    """Before training one run: verify a ``--resume`` against the saved run, or write the start record."""
    if resume and RunDir(run_dir).resumable:
        verify_resume(run_dir, cfg, dataset_sha)
    else:
        _start_run_dir(run_dir, cfg, ds, dataset_sha, meta, overwrite)


def train_one(cfg: Config, ds: Dataset, run_dir: Path, resume: bool = False, meta: dict | None = None,
              on_epoch: Callable[[dict], None] | None = None) -> FitResult:
    result = fit(ds, cfg, run_dir=run_dir, resume=resume, on_epoch=on_epoch)
    write_run(run_dir, result, cfg, ds, meta=meta)
    return result


def train_job(cfg: Config, run_dir: Path, ds: Dataset | None = None, *, label: str = "", meta: dict | None = None,
              resume: bool = False, overwrite: bool = False, start_record: bool = True,
              on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train one run (a :class:`mweight.seeds.SeedJob`'s fields) with :func:`train_one` and write
    its run directory: the one entry every seed backend and every sweep trial uses. ``ds``:
    the dataset if the caller already loaded it (else read and checked here, e.g. in a worker
    process); ``start_record``: :func:`prepare_run_dir` first. Returns a short, picklable summary."""
    import time

    meta = dict(meta or {})
    if ds is None:
        ds, record = load_for_training(cfg)
        meta["carved_validation"] = record or None  # the record of the dataset read here
    if start_record:
        sha = sha256(ds.path) if ds.path and Path(ds.path).is_file() else None
        prepare_run_dir(Path(run_dir), cfg, ds, sha, meta, resume, overwrite)
    t0, c0 = time.perf_counter(), time.process_time()
    res = train_one(cfg, ds, Path(run_dir), resume=resume, meta=meta, on_epoch=on_epoch)
    return {"label": label, "run_dir": str(run_dir), "seed": int(cfg.train.seed), "reused": False,
            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "epochs_run": len(res.history), "best_epoch": res.best_epoch,
            "test": dict(res.metrics.get("test", {})), "share": dict(res.share or {})}


def warn_data(ds: Dataset, recorded_sha: str | None = None, current_sha: str | None = None,
              file=sys.stderr) -> list[str]:
    """Print one line per problem with the data behind a run (leaking split, changed file, tiny train)."""
    from .trust import data_warnings

    n_train = int((ds.split == "train").sum())
    warnings = data_warnings(ds.meta, list(ds.columns) + [ds.split_key], ds.split_key, n_train,
                             recorded_sha, current_sha, ds.path)
    for w in warnings:
        print(f"mweight: warning: {w}", file=file)
    return warnings


def print_run(run_dir: Path, file=sys.stderr) -> None:
    """The lines printed per finished run, read from its files (the same for every seed backend):
    the result line, the verdict, and the attribution and beta shares unless there is no evidence."""
    from .runs import load_run

    run = load_run(run_dir)
    print(f"[{run_dir}] {result_line(run.metrics, run.metrics.get('info', {}).get('best_epoch'))}", file=file)
    att = run.attribution()
    trust = (att or {}).get("trust")
    if trust:
        from .trust import verdict_line

        print(f"[{run_dir}] {verdict_line(trust)}", file=file)
        if trust["verdict"] == "no-evidence":
            print(f"[{run_dir}] no relevance shown: the model is not better than a trivial predictor, so its "
                  "beta and attribution carry no information (attribution.json keeps them, labelled)", file=file)
            return
    if att:
        from .attribution import format_line

        print(f"[{run_dir}] {format_line(att)}", file=file)
    share = run.relevance.get("share")
    if share and (att.get("p") is not None if att else True):  # no beta line for relevance: none
        shares = ", ".join(f"{b}={v:.3f}" for b, v in sorted(share.items(), key=lambda kv: -kv[1]))
        print(f"[{run_dir}] beta share (relevance parameter, depends on p): {shares}", file=file)
