"""Seeds: the one ``--seeds`` syntax, and the one runner of many training runs.

``--seeds N`` is a count (seeds ``0 .. N-1``), ``--seeds 1,3,7`` a list, ``--seeds 5,``
(trailing comma) the one seed 5 (``train``, ``sweep`` and ``repro`` all read it here).

:func:`run_seeds` trains a list of :class:`SeedJob` (config + run directory) on a backend:
``sequential`` (``mweight train --seeds``), ``processes`` (``mweight repro dna --jobs``)
or ``ray`` (``mweight train --seeds ... --parallel``). Every backend trains each job with
:func:`mweight.trainrun.train_job` (i.e. ``train_one``), so a run directory does not
depend on how it was scheduled. :func:`train_runs` is ``mweight train``: one run, or one
per seed plus the summary.
"""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .config import Config
from .errors import MWeightError

SEEDS_HELP = ("N = N seeds (0..N-1), or a list S1,S2,... (one chosen seed: 5, with a trailing comma); "
              "one sub-run OUT/seed_<s>/ per seed, then mean ± std")


def parse_seeds(text: str | int | None) -> list[int] | None:
    """``"5"`` -> ``[0, 1, 2, 3, 4]``; ``"4,1"`` -> ``[4, 1]``; ``"5,"`` -> ``[5]``; ``None``/``""`` -> ``None``.

    A bare number is a count in every command (``train`` and ``sweep`` used to read
    ``--seeds 5`` as the one seed 5, ``repro`` as five seeds; the count is what the
    documented reproduction commands mean, and ``5,`` still selects the one seed).
    """
    if text is None or str(text).strip() == "":
        return None
    s = str(text).replace(" ", "")
    try:
        if "," in s:
            seeds = [int(x) for x in s.split(",") if x]
        else:
            seeds = list(range(int(s)))
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise MWeightError(f"--seeds {text!r}: expected a positive count (5 = seeds 0..4) or distinct "
                           "non-negative seeds (1,2,3; one seed: 5,)")
    return seeds


# -- the seed runner -----------------------------------------------------------------
@dataclass
class SeedJob:
    """One training run: a resolved config (``train.seed`` set) into a standard run directory.

    Trained by :func:`mweight.trainrun.train_job`: ``meta`` goes into ``config.yaml``'s
    ``_meta``; ``start_record``: write the "training" start record first (what ``--resume``
    verifies). Jobs are picklable: the process and Ray backends send them to workers.
    """

    config: Config
    run_dir: Path
    label: str = ""
    meta: dict = field(default_factory=dict)
    resume: bool = False
    overwrite: bool = False
    start_record: bool = True

    @property
    def seed(self) -> int:
        return int(self.config.train.seed)

    @property
    def epochs(self) -> int:
        return int(self.config.train.epochs)


EpochHook = Callable[[SeedJob, dict], None]
DoneHook = Callable[[SeedJob, dict], None]


def run_sequential(jobs: list[SeedJob], ds=None, *, on_epoch: EpochHook | None = None,
                   on_done: DoneHook | None = None, **_) -> list[dict]:
    """One job after the other in this process (progress rows straight from the training loop)."""
    infos = []
    for job in jobs:
        info = _train(job, ds, on_epoch=(lambda row, job=job: on_epoch(job, row)) if on_epoch else None)
        if on_done:
            on_done(job, info)
        infos.append(info)
    return infos


def _train(job: SeedJob, ds=None, on_epoch: Callable[[dict], None] | None = None) -> dict:
    from .trainrun import train_job

    return train_job(job.config, job.run_dir, ds, label=job.label, meta=job.meta, resume=job.resume,
                     overwrite=job.overwrite, start_record=job.start_record, on_epoch=on_epoch)


def _train_in_worker(job: SeedJob, queue) -> dict:
    return _train(job, None, on_epoch=lambda row: queue.put((job.label, int(row["epoch"]))))


def run_processes(jobs: list[SeedJob], ds=None, *, workers: int = 2, on_epoch: EpochHook | None = None,
                  on_done: DoneHook | None = None, **_) -> list[dict]:
    """``workers`` spawned processes, each job reading its own dataset (jobs may differ in data);
    progress comes back as ``{"epoch": e}`` rows through a queue. Results in job order."""
    if workers <= 1 or len(jobs) <= 1:
        return run_sequential(jobs, None, on_epoch=on_epoch, on_done=on_done)
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    by_label = {j.label: j for j in jobs}
    if len(by_label) != len(jobs):
        raise ValueError("run_processes: job labels must be distinct (progress is keyed by label)")
    infos: dict[int, dict] = {}
    ctx = mp.get_context("spawn")  # no fork after torch has started its threads
    with ctx.Manager() as manager, ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        queue = manager.Queue()
        futures = {pool.submit(_train_in_worker, j, queue): k for k, j in enumerate(jobs)}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            while not queue.empty():
                label, epoch = queue.get()
                if on_epoch:
                    on_epoch(by_label[label], {"epoch": epoch})
            for f in finished:
                k = futures[f]
                infos[k] = f.result()
                if on_done:
                    on_done(jobs[k], infos[k])
    return [infos[k] for k in range(len(jobs))]


def run_ray(jobs: list[SeedJob], ds=None, *, address: str | None = None, cpus_per_job: float = 1,
            on_done: DoneHook | None = None, log=None, **_) -> list[dict]:
    """One Ray Tune trial per job (local cores, or the cluster at ``address``), on the dataset
    ``ds`` loaded once by the driver; see :mod:`mweight.sweep.execution`."""
    from .sweep.execution import train_jobs_on_ray

    infos = train_jobs_on_ray(jobs, ds, address=address, cpus_per_job=cpus_per_job, log=log)
    for job, info in zip(jobs, infos):
        if on_done:
            on_done(job, info)
    return infos


# name -> runner(jobs, ds, **options) -> one summary dict per job, in job order. A runner gets
# every job at once, so a "batched" backend (all seeds as one vmapped model, issue 17) plugs in
# here: train len(jobs) members on ``ds`` together, then write each job's run directory.
BACKENDS: dict[str, Callable[..., list[dict]]] = {
    "sequential": run_sequential,
    "processes": run_processes,
    "ray": run_ray,
}


def run_seeds(jobs: list[SeedJob], backend: str = "sequential", ds=None, **options) -> list[dict]:
    """Train ``jobs`` on ``backend`` (:data:`BACKENDS`); ``ds``: a dataset shared by every job
    (the process backend reads each job's own). Options: ``on_epoch(job, row)``,
    ``on_done(job, info)``, ``workers`` (processes), ``address`` / ``cpus_per_job`` / ``log`` (ray)."""
    if backend not in BACKENDS:
        raise MWeightError(f"seed backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    return BACKENDS[backend](list(jobs), ds, **options)


# -- mweight train ---------------------------------------------------------------------
def train_runs(cfg: Config, out: Path, seeds: list[int] | None = None, resume: bool = False,
               overwrite: bool = False, preset: str | None = None,
               on_epoch: Callable[[dict], None] | None = None, verbose: bool = True,
               backend: str = "sequential", **backend_options) -> list[tuple[int, Path]]:
    """Train ``cfg`` once into ``out``, or once per seed into ``out/seed_<s>`` plus a summary.

    Every check (output folder, config, data, ``--resume`` against the saved run) runs
    before the first epoch of the first seed. The seeds run on ``backend`` (see
    :func:`run_seeds`: ``sequential``, or ``ray`` for ``--parallel``).
    """
    from .runs import RunDir, seed_dir, sha256, write_summary
    from .trainrun import check_run_out, load_for_training, print_run, verify_resume, warn_data

    out = Path(out)
    if backend == "ray":  # trials run in Ray's workers, elsewhere: absolute paths
        out = out.resolve()
        cfg = copy.deepcopy(cfg)
        cfg.data.path = str(Path(cfg.data.path).resolve()) if cfg.data.path else cfg.data.path
    check_run_out(out, seeds, resume, overwrite)
    ds, record = load_for_training(cfg)
    meta = {"preset": preset, "carved_validation": record or None}
    dataset_sha = sha256(ds.path) if ds.path and Path(ds.path).is_file() else None
    jobs = []
    for s in seeds if seeds is not None else [None]:
        cfg_s = copy.deepcopy(cfg)
        if s is not None:
            cfg_s.train.seed = s
        run_dir = out if s is None else seed_dir(out, s)
        jobs.append(SeedJob(cfg_s, run_dir, label=str(run_dir), meta=meta, resume=resume, overwrite=overwrite,
                            start_record=backend != "ray"))
    if resume:
        for job in jobs:
            if RunDir(job.run_dir).resumable:
                verify_resume(job.run_dir, job.config, dataset_sha)
    warn_data(ds)  # after every refusal above: a refused command prints its one error line only
    run_seeds(jobs, backend, ds=ds, on_epoch=(lambda job, row: on_epoch(row)) if on_epoch else None,
              on_done=(lambda job, info: print_run(job.run_dir)) if verbose else None, **backend_options)
    done = [(job.seed, Path(job.run_dir)) for job in jobs]
    if seeds is None:
        return done
    summary = write_summary(out)
    if verbose:
        trust = summary.get("trust")
        if trust:
            from .trust import verdict_line

            print(f"[{out}] study {verdict_line(trust)}", file=sys.stderr)
        print(f"[{out}] summary over seeds {summary['seeds']}: {out / 'summary.md'}", file=sys.stderr)
    return done
