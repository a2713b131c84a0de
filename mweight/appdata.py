"""Everything the Streamlit app shows, computed without Streamlit (the pages stay thin).

- **Safe discovery** (:func:`discover_runs`): run folders are found *inside* the runs
  folder the app was started with, without following symbolic links; a page can only
  open an entry of that list (:func:`find_entry`), so a query parameter or a text input
  can never name a path outside it (no ``..``, no absolute paths).
- **Loading** (:func:`load_group`): one run or one ``seed_*`` group through
  :func:`mweight.runs.load_run`; incomplete, old or corrupt folders raise
  :class:`~mweight.errors.MWeightError` with a one-line message the page shows.
- **Tables for the charts**: β share mean ± std over seeds, labelled metrics,
  history in long form, segments with their per-block contributions, waterfalls,
  run comparisons, and a plain-language reading of β.
- **Faithfulness** (:func:`faithfulness`): β next to the importance measured by
  removing one block's contribution (exact, the prediction is additive over blocks)
  and by permuting one modality's inputs; uses :mod:`mweight.analysis` when present.
- **Training from the app** (:func:`train_synthetic`, :func:`train_on_file`): through
  :func:`mweight.seeds.train_runs` (the one training loop) with an epoch callback.

Nothing here unpickles a file: runs are JSON/YAML/CSV, models load with
``weights_only=True``, datasets with ``allow_pickle=False``.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .config import flatten
from .errors import MWeightError
from .metrics import METRIC_LABELS, METRIC_MODES

ROOT_ENV = "MWEIGHT_APP_RUNS_DIR"
DEFAULT_RUNS_DIR = "runs"
MAX_DEPTH = 4  # how deep below the runs folder runs are looked for
SKIP_DIRS = {"__pycache__", "node_modules"}
# Metrics shown first (MMSA regression, then classification).
MAIN_METRICS = ("mae", "corr", "acc2_non0", "f1_non0", "acc2_has0", "f1_has0", "acc7", "acc5", "acc", "f1", "ce")


# ---------------------------------------------------------------- runs folder
def runs_root(arg: str | os.PathLike | None = None) -> Path:
    """The runs folder: ``arg``, else ``$MWEIGHT_APP_RUNS_DIR``, else ``./runs``; resolved."""
    raw = arg or os.environ.get(ROOT_ENV) or DEFAULT_RUNS_DIR
    return Path(raw).expanduser().resolve()


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (after resolving symlinks) lies in ``root`` (resolved)."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
        return True
    except ValueError:
        return False


def safe_join(root: Path, rel: str) -> Path:
    """``root / rel`` for a relative POSIX path that stays inside ``root``; else MWeightError."""
    rel = str(rel or ".").strip()
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", rel) or ".." in pure.parts or "\x00" in rel:
        raise MWeightError(f"{rel!r}: not a folder inside the runs folder")
    path = Path(root, *pure.parts) if pure.parts else Path(root)
    if not inside(root, path):
        raise MWeightError(f"{rel!r}: not a folder inside the runs folder")
    return path


@dataclass(frozen=True)
class RunEntry:
    """One thing the app can open: a single run, a group of seeds, or a broken folder."""

    rel: str  # POSIX path relative to the runs folder ("." = the folder itself)
    kind: str  # "single" | "seeds" | "broken"
    seeds: tuple[int, ...] = ()
    problem: str | None = None  # why a "broken" folder cannot be shown

    @property
    def label(self) -> str:
        name = "(runs folder)" if self.rel == "." else self.rel
        if self.kind == "seeds":
            return f"{name}  ·  {len(self.seeds)} seed{'s' if len(self.seeds) != 1 else ''}"
        if self.kind == "broken":
            return f"{name}  ·  cannot be read"
        return name


def _problem(path: Path) -> str:
    from .runs import check_run, load_run

    try:
        run = load_run(path)
        check_run(run)
    except MWeightError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - shown as a message, never a traceback
        return f"{path}: unreadable ({type(exc).__name__}: {exc})"
    return f"{path}: incomplete run"


def discover_runs(root: Path) -> list[RunEntry]:
    """Runs below ``root`` (depth <= MAX_DEPTH, symlinks not followed), sorted by path.

    A folder with ``config.yaml`` + ``relevance.json`` is a run; a folder whose
    ``seed_<s>`` sub-folders are runs is a seed group; a folder holding some run
    files but not enough is listed as ``broken`` with the reason.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    from .runs import RunDir, is_run_dir, seed_of

    out: list[RunEntry] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        rel_parts = d.relative_to(root).parts
        rel = "/".join(rel_parts) or "."
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and n not in SKIP_DIRS
                             and not (d / n).is_symlink())
        if len(rel_parts) >= MAX_DEPTH:
            dirnames[:] = []
        seed_subdirs = [n for n in dirnames if seed_of(n) is not None]
        if is_run_dir(d) and seed_of(d.name) is None:
            out.append(RunEntry(rel, "single"))
            dirnames[:] = []
            continue
        if seed_subdirs:
            good = sorted(seed_of(n) for n in seed_subdirs if is_run_dir(d / n))
            if good:
                out.append(RunEntry(rel, "seeds", tuple(good)))
            else:
                out.append(RunEntry(rel, "broken", problem=_problem(d / seed_subdirs[0])))
            dirnames[:] = [n for n in dirnames if seed_of(n) is None]
            continue
        if seed_of(d.name) is None and RunDir(d).present():
            out.append(RunEntry(rel, "broken", problem=_problem(d)))
            dirnames[:] = []
    return sorted(out, key=lambda e: e.rel)


def find_entry(entries: Iterable[RunEntry], rel: str | None) -> RunEntry | None:
    """The discovered entry named ``rel`` (e.g. from a query parameter), or None."""
    for e in entries:
        if rel is not None and e.rel == rel:
            return e
    return None


def folder_stamp(root: Path, entry: RunEntry) -> tuple:
    """(file, mtime_ns, size) of every file of a run or seed group: a cache key."""
    base = safe_join(root, entry.rel)
    from .runs import seed_dir

    dirs = [base] + ([seed_dir(base, s) for s in entry.seeds] if entry.kind == "seeds" else [])
    stamp = []
    for d in dirs:
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if f.is_file():
                st = f.stat()
                stamp.append((str(f.relative_to(base)), st.st_mtime_ns, st.st_size))
    return tuple(stamp)


# ---------------------------------------------------------------- loading
@dataclass
class RunGroup:
    """One run (``seeds == [None]``) or the runs of a seed group, all checked."""

    entry: RunEntry
    path: Path
    runs: list  # list[mweight.runs.Run]
    seeds: list
    warnings: list[str] = field(default_factory=list)
    attributions: list = field(default_factory=list)  # attribution.json per run (None when absent)
    summary: dict | None = None  # summary.json of a seed group, when present

    @property
    def has_beta(self) -> bool:
        """False for ``model.relevance: none`` (late fusion): its β is not part of the model."""
        return self.relevance_mode != "none"

    @property
    def has_attribution(self) -> bool:
        return bool(self.attributions) and all(a is not None for a in self.attributions)

    def attribution_for(self, seed) -> dict | None:
        for s, a in zip(self.seeds, self.attributions):
            if s == seed:
                return a
        return self.attributions[0] if self.attributions else None

    @property
    def modalities(self) -> list[str]:
        mods = (self.runs[0].meta or {}).get("modalities") if isinstance(self.runs[0].meta, dict) else None
        if mods:
            return list(mods)
        return [b for b in self.blocks if "*" not in b]

    @property
    def seed_label(self) -> str:
        """"seeds 1, 2, 3" for a group; "seed 0 (single run)" for one run."""
        if self.entry.kind == "seeds":
            return "seeds " + ", ".join(str(s) for s in self.seeds)
        seed = (self.runs[0].config.get("train") or {}).get("seed")
        return f"seed {seed} (single run)" if seed is not None else "single run"

    @property
    def blocks(self) -> list[str]:
        return self.runs[0].blocks

    @property
    def task(self) -> str:
        t = self.runs[0].meta.get("task") if isinstance(self.runs[0].meta, dict) else None
        if t in ("regression", "classification"):
            return t
        split = self.runs[0].metrics.get("test") or self.runs[0].metrics.get("valid") or {}
        return "regression" if "mae" in split else "classification"

    @property
    def p(self) -> float:
        return float(self.runs[0].relevance["p"])

    @property
    def norm(self) -> str:
        return str(self.runs[0].relevance.get("norm") or self.runs[0].config.get("model", {}).get("norm", "?"))

    @property
    def relevance_mode(self) -> str:
        return str(self.runs[0].relevance.get("mode") or self.runs[0].config.get("model", {}).get("relevance", "?"))

    @property
    def name(self) -> str:
        return "(runs folder)" if self.entry.rel == "." else self.entry.rel

    def run_for(self, seed) -> object:
        for s, r in zip(self.seeds, self.runs):
            if s == seed:
                return r
        return self.runs[0]


def load_group(root: Path, entry: RunEntry) -> RunGroup:
    """Load and check a discovered entry; every problem is a one-line MWeightError."""
    from .runs import RunDir, check_run, load_run, seed_dir

    base = safe_join(root, entry.rel)
    if entry.kind == "broken":
        raise MWeightError(entry.problem or f"{base}: cannot be read")
    dirs = [(s, seed_dir(base, s)) for s in entry.seeds] if entry.kind == "seeds" else [(None, base)]
    runs, seeds, warnings, errors = [], [], [], []
    for seed, d in dirs:
        try:
            for f in RunDir(d).present():  # a run file may not point outside the runs folder
                if not inside(root, d / f):
                    raise MWeightError(f"{d / f}: points outside the runs folder; not read")
            run = load_run(d)
            warnings += check_run(run)
        except MWeightError as exc:
            errors.append(str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - a corrupt file must not become a traceback
            errors.append(f"{d}: unreadable ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        runs.append(run)
        seeds.append(seed)
    if not runs:
        raise MWeightError(errors[0] if errors else f"{base}: no readable run")
    blocks = runs[0].blocks
    keep_runs, keep_seeds = [], []
    for s, r in zip(seeds, runs):
        if r.blocks != blocks:
            errors.append(f"{r.path}: blocks {r.blocks} differ from seed {seeds[0]}'s {blocks}; left out")
            continue
        keep_runs.append(r)
        keep_seeds.append(s)
    warnings += [f"left out: {e}" for e in errors]
    attributions = []
    for r in keep_runs:
        attr, problem = read_attribution(root, r.path)
        if problem:
            warnings.append(problem)
        attributions.append(attr)
    summary = None
    if entry.kind == "seeds" and (base / "summary.json").is_file() and inside(root, base / "summary.json"):
        summary = _read_json_quiet(base / "summary.json")
    return RunGroup(entry, base, keep_runs, keep_seeds, warnings, attributions, summary)


# ---------------------------------------------------------------- attribution (attribution.json)
ATTRIBUTION_FILE = "attribution.json"
VERDICTS = ("ok", "weak", "no-evidence")  # from best to worst


def _read_json_quiet(path: Path) -> dict | None:
    import json

    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def read_attribution(root: Path, run_dir: Path) -> tuple[dict | None, str | None]:
    """``(attribution.json as a dict, None)``; ``(None, None)`` when the run has none (older
    runs); ``(None, one-line problem)`` when it is unreadable or not of the documented shape
    (``blocks: {block: {contribution_share: number, ...}}``)."""
    import json

    f = Path(run_dir) / ATTRIBUTION_FILE
    if not f.is_file():
        return None, None
    if not inside(root, f):
        return None, f"{f}: points outside the runs folder; not read"
    try:
        d = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{f}: not valid JSON ({str(exc)[:120]}); attribution not shown"
    blocks = d.get("blocks") if isinstance(d, dict) else None
    if not isinstance(blocks, dict) or not blocks:
        return None, f"{f}: field 'blocks' must map each block to its attribution; attribution not shown"
    for b, v in blocks.items():
        if not isinstance(v, dict) or not _finite(v.get("contribution_share")):
            return None, (f"{f}: field blocks.{b}.contribution_share must be a finite number; "
                          "attribution not shown")
    return d, None


def attribution_context(group: RunGroup) -> str:
    """Which split and which checkpoint the attribution numbers come from, e.g.
    "test split, checkpoint of the best epoch 7" (per seed for a group)."""
    attrs = [a for a in group.attributions if a]
    if not attrs:
        return ""
    splits = sorted({str(a.get("split", "?")) for a in attrs})
    epochs = [(a.get("checkpoint") or {}).get("best_epoch") for a in attrs]
    if len(attrs) == 1:
        ep = f"checkpoint of the best epoch {epochs[0]}" if epochs[0] is not None else "selected checkpoint"
    else:
        ep = "checkpoint of each seed's best epoch (" + ", ".join(
            f"seed {s}: {e}" for s, e in zip(group.seeds, epochs)) + ")"
    return f"{'/'.join(splits)} split, {ep}"


SEED_INTERVAL = "95% interval of the mean over seeds (summary.json)"


def _interval(values: list[float], cis: list, study_ci=None) -> tuple[float, float, float, float, str]:
    """mean, std over runs, the interval shown and what it is: the 95% bootstrap interval
    over samples of a single run; for several seeds the study's 95% interval of the mean
    over seeds (summary.json "trust" → "stability"), else mean ± std (population std)."""
    from .runs import mean_std

    v = np.array(values, dtype=float)
    stats = mean_std(v)
    mean, std = stats["mean"], stats["std"]
    if len(v) == 1:
        ci = cis[0] if cis and isinstance(cis[0], (list, tuple)) and len(cis[0]) == 2 else None
        if ci is not None and all(_finite(c) for c in ci):
            return mean, std, float(ci[0]), float(ci[1]), "95% bootstrap over samples"
        return mean, std, float("nan"), float("nan"), "none"
    if isinstance(study_ci, (list, tuple)) and len(study_ci) == 2 and all(_finite(c) for c in study_ci):
        return mean, std, float(study_ci[0]), float(study_ci[1]), SEED_INTERVAL
    return mean, std, mean - std, mean + std, "± std over seeds"


def _study_ci(group: "RunGroup", kind: str, name: str, key: str):
    stab = ((group.summary or {}).get("trust") or {}).get("stability") or {}
    return (((stab.get(kind) or {}).get(name) or {}).get(key) or {}).get("ci95")


def attribution_table(group: RunGroup) -> pd.DataFrame:
    """Per block: β share and contribution share side by side.

    Columns: block, kind, beta_share, beta_share_std, contribution_share,
    contribution_share_std, lo, hi, n_seeds. ``lo``/``hi``: the 95% bootstrap interval
    over samples for one run, mean ± std over seeds for a group (``interval`` says which).
    Empty when the run has no attribution.json.
    """
    cols = ["block", "kind", "beta_share", "beta_share_std", "contribution_share", "contribution_share_std",
            "lo", "hi", "n_seeds", "interval"]
    if not group.has_attribution:
        return pd.DataFrame(columns=cols)
    beta = share_table(group).set_index("block")
    rows = []
    for b in group.blocks:
        vals = [(a["blocks"].get(b) or {}).get("contribution_share", np.nan) for a in group.attributions]
        cis = [(a["blocks"].get(b) or {}).get("contribution_share_ci") for a in group.attributions]
        mean, std, lo, hi, what = _interval(vals, cis, _study_ci(group, "blocks", b, "contribution_share"))
        rows.append({"block": b, "kind": block_kind(b),
                     "beta_share": float(beta.loc[b, "share_mean"]) if group.has_beta else float("nan"),
                     "beta_share_std": float(beta.loc[b, "share_std"]) if group.has_beta else float("nan"),
                     "contribution_share": mean, "contribution_share_std": std, "lo": lo, "hi": hi,
                     "n_seeds": len(vals), "interval": what})
    return pd.DataFrame(rows, columns=cols)


def modality_attribution_table(group: RunGroup) -> pd.DataFrame:
    """Per modality: shapley_share (mean over seeds), its std, lo, hi (as in
    :func:`attribution_table`), mean_abs_shapley. Empty without attribution."""
    from .runs import mean_std

    cols = ["modality", "shapley_share", "shapley_share_std", "lo", "hi", "mean_abs_shapley", "n_seeds",
            "interval"]
    if not group.has_attribution or not all(isinstance(a.get("modalities"), dict) for a in group.attributions):
        return pd.DataFrame(columns=cols)
    mods = list(group.attributions[0]["modalities"])
    rows = []
    for m in mods:
        recs = [a["modalities"].get(m) or {} for a in group.attributions]
        mean, std, lo, hi, what = _interval([r.get("shapley_share", np.nan) for r in recs],
                                            [r.get("shapley_share_ci") for r in recs],
                                            _study_ci(group, "modalities", m, "shapley_share"))
        mas = mean_std(r.get("mean_abs_shapley", np.nan) for r in recs)["mean"]
        rows.append({"modality": m, "shapley_share": mean, "shapley_share_std": std, "lo": lo, "hi": hi,
                     "mean_abs_shapley": mas, "n_seeds": len(recs), "interval": what})
    return pd.DataFrame(rows, columns=cols)


def definitions(group: RunGroup) -> dict[str, str]:
    """The one-sentence definitions attribution.json carries (name -> sentence)."""
    a = next((a for a in group.attributions if a), None)
    d = (a or {}).get("definitions")
    return {str(k): str(v) for k, v in d.items()} if isinstance(d, dict) else {}


def trust(group: RunGroup) -> dict | None:
    """The evidence verdict shown for the group: ``{"verdict", "reasons", "per_seed"}``.

    A seed group uses its ``summary.json`` "trust" when present, else the worst seed's
    verdict (with every seed's reasons); a single run its attribution.json "trust".
    None when no run carries a verdict.
    """
    per_seed = []
    for s, a in zip(group.seeds, group.attributions):
        t = (a or {}).get("trust")
        if isinstance(t, dict) and t.get("verdict") in VERDICTS:
            per_seed.append({"seed": s, "verdict": t["verdict"], "reasons": [str(r) for r in t.get("reasons") or []]})
    top = (group.summary or {}).get("trust")
    if isinstance(top, dict) and top.get("verdict") in VERDICTS:
        return {"verdict": top["verdict"], "reasons": [str(r) for r in top.get("reasons") or []],
                "per_seed": per_seed}
    if not per_seed:
        return None
    worst = max(per_seed, key=lambda t: VERDICTS.index(t["verdict"]))["verdict"]
    if len(per_seed) == 1:
        return {"verdict": worst, "reasons": per_seed[0]["reasons"], "per_seed": per_seed}
    reasons = [f"seed {t['seed']}: {r}" for t in per_seed if t["verdict"] != "ok" for r in t["reasons"]]
    return {"verdict": worst, "reasons": reasons, "per_seed": per_seed}


def md(text) -> str:
    """``text`` with Markdown's special characters escaped, for user-derived text (block,
    run and file names, transcripts) shown through st.markdown / captions / titles:
    "text*audio*video" stays literal instead of turning italic."""
    return re.sub(r"([\\`*_{}\[\]<>()#+\-.!|~$])", r"\\\1", str(text))


# ---------------------------------------------------------------- overview tables
def block_kind(block: str) -> str:
    return "interaction" if "*" in block else "modality"


def share_table(group: RunGroup) -> pd.DataFrame:
    """block, kind, share_mean, share_std, beta_mean, beta_std, n_seeds (population std)."""
    from .runs import mean_std

    rows = []
    for b in group.blocks:
        share = mean_std(r.relevance["share"].get(b, np.nan) for r in group.runs)
        beta = mean_std(r.relevance["beta"].get(b, np.nan) for r in group.runs)
        rows.append({"block": b, "kind": block_kind(b), "share_mean": share["mean"], "share_std": share["std"],
                     "beta_mean": beta["mean"], "beta_std": beta["std"],
                     "n_seeds": int(np.isfinite(share["values"]).sum())})
    return pd.DataFrame(rows, columns=["block", "kind", "share_mean", "share_std", "beta_mean", "beta_std",
                                       "n_seeds"])


def metric_label(key: str) -> str:
    return METRIC_LABELS.get(key, key)


def metrics_table(group: RunGroup, splits: Iterable[str] = ("test", "valid")) -> pd.DataFrame:
    """split, metric, label (the convention), mean, std, n, better ('lower'/'higher')."""
    rows = []
    for split in splits:
        keys = [k for k in MAIN_METRICS if any(k in (r.metrics.get(split) or {}) for r in group.runs)]
        for k in keys:
            vals = np.array([(r.metrics.get(split) or {}).get(k, np.nan) for r in group.runs], dtype=float)
            vals = vals[np.isfinite(vals)]
            rows.append({"split": split, "metric": k, "label": metric_label(k),
                         "mean": float(vals.mean()) if vals.size else float("nan"),
                         "std": float(vals.std()) if vals.size else float("nan"), "n": int(vals.size),
                         "better": "lower" if METRIC_MODES.get(k) == "min" else "higher"})
    return pd.DataFrame(rows, columns=["split", "metric", "label", "mean", "std", "n", "better"])


def headline_metrics(group: RunGroup, n: int = 4) -> pd.DataFrame:
    """The first ``n`` test metrics (valid if there is no test split)."""
    t = metrics_table(group, ("test",))
    if t.empty:
        t = metrics_table(group, ("valid",))
    return t.head(n)


def _pct(x: float) -> str:
    v = 100 * x
    if 0 < v < 1:
        return "less than 1%"
    return f"{v:.0f}%"


def _block_phrase(block: str) -> str:
    return f"the {block} interaction" if "*" in block else block


def reading_sentence(shares: dict[str, float], n_seeds: int = 1, source: str = "β share",
                     unit: str = "of the relevance") -> str:
    """One plain-language sentence naming the number it reads, e.g.
    "From the β share: text carries 71% of the relevance, audio 20%, ... ".

    ``shares``: one number per block (or modality) summing to 1; ``source`` names it
    (β share, contribution share on the test split, ...). Blocks are named largest
    first, as written (no capitalisation: "m1" stays "m1"); the top three are named,
    the rest summed. Plain text: escape it (:func:`md`) before rendering as Markdown.
    """
    items = sorted(((b, float(v)) for b, v in shares.items() if v is not None and math.isfinite(v)),
                   key=lambda kv: -kv[1])
    if not items:
        return "This run has no relevance numbers to read."
    total = sum(v for _, v in items) or 1.0
    items = [(b, v / total) for b, v in items]
    first_b, first_v = items[0]
    head = f"{_block_phrase(first_b)} carries {_pct(first_v)} {unit}"
    k = len(items) if len(items) <= 4 else 3  # name every block, or the top 3 and sum the rest
    named = [f"{_block_phrase(b)} {_pct(v)}" for b, v in items[1:k]]
    rest = items[k:]
    parts = [head] + named
    if len(parts) > 1 and not rest:
        text = ", ".join(parts[:-1]) + " and " + parts[-1]
    else:
        text = ", ".join(parts)
    if rest:
        rest_v = sum(v for _, v in rest)
        text += f"; the other {len(rest)} block{'s' if len(rest) > 1 else ''} together {_pct(rest_v)}"
    where = f"{source}, mean over {n_seeds} seeds" if n_seeds > 1 else source
    return f"From the {where}: {text}."


def group_reading(group: RunGroup) -> dict:
    """The plain-language reading of a run, hedged by its evidence verdict.

    Returns ``{"text", "source", "verdict", "confident"}``: the text reads the attribution
    (contribution share per block) when attribution.json is there, else β share (with a
    note that β is a weight, not a measured contribution); a ``weak`` verdict prefixes
    "Weak evidence", a ``no-evidence`` verdict replaces the reading by its reasons;
    a model without β and without attribution has no reading.
    """
    t = trust(group)
    verdict = t["verdict"] if t else None
    n = len(group.runs)
    if group.has_attribution:
        at = attribution_table(group)
        source = f"contribution share ({attribution_context(group)})"
        text = reading_sentence(dict(zip(at["block"], at["contribution_share"])), n, source,
                                unit="of the prediction's variation")
    elif group.has_beta:
        source = "β share"
        bt = share_table(group)
        text = reading_sentence(dict(zip(bt["block"], bt["share_mean"])), n, source) + (
            " β is the learned relevance weight, not a measured contribution; this run has no "
            "attribution.json (written by an older mweight), so no contribution share can be shown.")
    else:
        return {"text": "This model has no β (relevance: none) and no attribution.json, so there is nothing "
                        "to read; train it again with this mweight to get the attribution.",
                "source": None, "verdict": verdict, "confident": False}
    if verdict == "no-evidence":
        reasons = "; ".join(t["reasons"]) or "no reason given"
        return {"text": f"No reading of the {source}: this run shows no evidence that the model learned anything "
                        f"({reasons}). "
                        "Its β and attribution carry no information.",
                "source": source, "verdict": verdict, "confident": False}
    if verdict == "weak":
        reasons = "; ".join(t["reasons"]) or "no reason given"
        text = f"Weak evidence ({reasons}); read with care. " + text
    return {"text": text, "source": source, "verdict": verdict, "confident": verdict in (None, "ok")}


# ---------------------------------------------------------------- training dynamics
def _seed_name(group: RunGroup, s) -> str:
    if s is not None:
        return str(s)
    seed = (group.runs[0].config.get("train") or {}).get("seed")
    return str(seed) if seed is not None else "run"


def _histories(group: RunGroup):
    """(seed name, run, history.csv) of every run of the group that has a history."""
    for s, r in zip(group.seeds, group.runs):
        if r.history is not None and not r.history.empty:
            yield _seed_name(group, s), r, r.history


def history_long(group: RunGroup, what: str = "share") -> pd.DataFrame:
    """seed, epoch, block, value: β (``what='beta'``) or β share per block per epoch."""
    frames = []
    for seed, _run, h in _histories(group):
        for b in group.blocks:
            col = f"{what}_{b}"
            if col in h.columns:
                frames.append(pd.DataFrame({"seed": seed, "epoch": h["epoch"].astype(int),
                                            "block": b, "value": pd.to_numeric(h[col], errors="coerce")}))
    if not frames:
        return pd.DataFrame(columns=["seed", "epoch", "block", "value"])
    return pd.concat(frames, ignore_index=True)


def valid_metric_long(group: RunGroup) -> pd.DataFrame:
    """seed, epoch, metric, label, value, best_epoch: validation metrics per epoch."""
    frames = []
    for seed, r, h in _histories(group):
        for col in h.columns:
            if not col.startswith("valid_") or col == "valid_loss":
                continue
            k = col[len("valid_"):]
            frames.append(pd.DataFrame({"seed": seed, "epoch": h["epoch"].astype(int),
                                        "metric": k, "label": metric_label(k),
                                        "value": pd.to_numeric(h[col], errors="coerce"),
                                        "best_epoch": int(r.metrics.get("info", {}).get("best_epoch") or 0)}))
    if not frames:
        return pd.DataFrame(columns=["seed", "epoch", "metric", "label", "value", "best_epoch"])
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- segments
def dataset_path(root: Path, run) -> Path | None:
    """The dataset file a run recorded (config data.path), if it exists."""
    raw = (run.config.get("data") or {}).get("path") or (run.meta or {}).get("dataset")
    if not raw:
        return None
    p = Path(str(raw)).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, root / p, root.parent / p]
    for c in candidates:
        if c.is_file() and c.suffix == ".npz":
            return c
    return None


def load_transcripts(root: Path, group: RunGroup) -> dict[str, str]:
    """id -> transcript, from a string column of the run's dataset (as ``mweight explain``)
    updated by a ``transcripts.csv`` in the run folder or the runs folder (``id,transcript``,
    with or without header, as CMU-MOSI's transcripts file). Empty when unknown; an
    unreadable transcripts file is skipped (transcripts are optional on every page)."""
    from .transcripts import dataset_transcripts, read_transcripts

    out = dataset_transcripts(dataset_path(root, group.runs[0]))
    for f in (group.path / "transcripts.csv", root / "transcripts.csv"):
        if f.is_file() and inside(root, f):
            try:
                out.update(read_transcripts(f))
            except MWeightError:
                pass
    return out


def segments_frame(group: RunGroup, seed=None, transcripts: dict[str, str] | None = None) -> pd.DataFrame:
    """predictions.csv of one seed plus error columns and the transcript when known.

    Regression: ``error = prediction - label``, ``abs_error``. Classification:
    ``correct`` and ``abs_error`` = 0/1.
    """
    run = group.run_for(seed)
    try:
        df = run.predictions()
    except MWeightError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise MWeightError(f"{run.path / 'predictions.csv'}: not a readable CSV ({str(exc)[:200]})") from None
    need = ["id", "label", "prediction", "bias"] + list(group.blocks)
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise MWeightError(f"{run.path / 'predictions.csv'}: missing column {missing[0]!r}")
    for c in ["label", "prediction", "bias"] + list(group.blocks):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    if group.task == "regression":
        df["error"] = df["prediction"] - df["label"]
        df["abs_error"] = df["error"].abs()
    else:
        df["correct"] = df["prediction"].round().astype("Int64") == df["label"].round().astype("Int64")
        df["abs_error"] = (~df["correct"].astype(bool)).astype(float)
    if transcripts:
        text = df["id"].astype(str).map(transcripts).fillna("")
        if (text != "").any():  # a transcripts file of another dataset adds no empty column
            df["transcript"] = text
    return df


def outcome_value(df: pd.DataFrame, task: str) -> pd.Series:
    """What the blocks + bias add up to: the prediction (regression) or the predicted
    class's logit ``score`` (classification)."""
    if task == "regression" or "score" not in df.columns:
        return df["prediction"]
    return pd.to_numeric(df["score"], errors="coerce")


def flips_outcome(df: pd.DataFrame, block: str, task: str) -> pd.Series:
    """Regression: whether removing ``block``'s contribution changes the sign of the
    prediction (positive vs non-positive) — where the block decided the outcome. For
    classification only the predicted class's logit is stored, so this is all False."""
    if task != "regression":
        return pd.Series(False, index=df.index)
    pred = df["prediction"]
    return (pred > 0) != ((pred - df[block]) > 0)


SORTS = ("largest |contribution| of a block", "largest error", "id")


def sort_segments(df: pd.DataFrame, by: str, block: str | None = None, task: str = "regression",
                  split: str | None = None, query: str = "", decided_only: bool = False) -> pd.DataFrame:
    """Filter (split, text ``query`` in id/transcript, block flips the outcome) and sort."""
    out = df
    if split and split != "all" and "split" in out.columns:
        out = out[out["split"] == split]
    q = (query or "").strip().lower()
    if q:
        hay = out["id"].astype(str).str.lower()
        if "transcript" in out.columns:
            hay = hay + " " + out["transcript"].astype(str).str.lower()
        out = out[hay.str.contains(q, regex=False)]
    if block and decided_only:
        out = out[flips_outcome(out, block, task)]
    if by == SORTS[0] and block:
        out = out.assign(_k=out[block].abs()).sort_values("_k", ascending=False, kind="stable").drop(columns="_k")
    elif by == SORTS[1]:
        out = out.sort_values("abs_error", ascending=False, kind="stable")
    else:
        out = out.sort_values("id", kind="stable")
    return out


def waterfall(row: pd.Series | dict, blocks: list[str], task: str = "regression") -> pd.DataFrame:
    """step, measure ('absolute' | 'relative' | 'total'), value, cumulative.

    Bias, then each block's contribution (largest |value| first), then the total,
    which equals the prediction (regression) or the predicted class's logit.
    """
    row = dict(row)
    contribs = sorted(((b, float(row[b])) for b in blocks), key=lambda kv: -abs(kv[1]))
    steps = [("bias", "absolute", float(row["bias"]))] + [(b, "relative", v) for b, v in contribs]
    total = float(row["bias"]) + sum(v for _, v in contribs)
    name = "prediction" if task == "regression" else "logit of predicted class"
    steps.append((name, "total", total))
    return _waterfall_frame(steps)


def _waterfall_frame(steps: list[tuple[str, str, float]]) -> pd.DataFrame:
    """(step, measure absolute|relative|total, value) rows with their running total."""
    cum, run = [], 0.0
    for _, m, v in steps:
        run = v if m in ("absolute", "total") else run + v
        cum.append(run)
    return pd.DataFrame({"step": [s[0] for s in steps], "measure": [s[1] for s in steps],
                         "value": [s[2] for s in steps], "cumulative": cum})


def shapley_columns(df: pd.DataFrame) -> list[str]:
    """Modalities with a per-sample Shapley value (``shapley_<m>`` columns of predictions.csv)."""
    return [c[len("shapley_"):] for c in df.columns if c.startswith("shapley_") and c != "shapley_baseline"]


def shapley_waterfall(row: pd.Series | dict, modalities: list[str], task: str = "regression") -> pd.DataFrame:
    """Like :func:`waterfall`, by modality: the baseline (every block at its training-mean
    contribution), then each modality's Shapley value φ_m(x) (largest |value| first), then
    the total = prediction (regression) or the predicted class's logit."""
    row = dict(row)
    phis = sorted(((m, float(row[f"shapley_{m}"])) for m in modalities), key=lambda kv: -abs(kv[1]))
    base = float(row["shapley_baseline"])
    steps = [("baseline", "absolute", base)] + [(f"φ {m}", "relative", v) for m, v in phis]
    name = "prediction" if task == "regression" else "logit of predicted class"
    steps.append((name, "total", base + sum(v for _, v in phis)))
    return _waterfall_frame(steps)


# ---------------------------------------------------------------- compare
def comparability_key(root: Path, entry: RunEntry) -> tuple | None:
    """(task, modalities, dataset) of a discovered run from its config.yaml ``_meta``, without
    loading the rest: runs with equal keys are comparable. None if unreadable."""
    import yaml

    from .runs import seed_dir

    try:
        base = safe_join(root, entry.rel)
        d = seed_dir(base, entry.seeds[0]) if entry.kind == "seeds" else base
        cfg = yaml.safe_load((d / "config.yaml").read_text(encoding="utf-8")) or {}
    except (MWeightError, OSError, yaml.YAMLError, IndexError):
        return None
    meta = cfg.get("_meta") if isinstance(cfg, dict) else None
    if not isinstance(meta, dict):
        return None
    dataset = meta.get("dataset_sha256") or Path(str(meta.get("dataset") or "")).name
    return (meta.get("task"), tuple(meta.get("modalities") or ()), dataset)


def comparable_default(root: Path, entries: list[RunEntry], first: str | None = None, limit: int = 4) -> list[str]:
    """The runs Compare starts with: ``first`` (or the first readable run) and the other
    runs on the same data (same task, modalities and dataset), at most ``limit``."""
    ok = [e for e in entries if e.kind != "broken"]
    if not ok:
        return []
    head = find_entry(ok, first) or ok[0]
    key = comparability_key(root, head)
    same = [e.rel for e in ok if e.rel != head.rel and key is not None and comparability_key(root, e) == key]
    return [head.rel] + same[: limit - 1]


def compare_frames(groups: list[RunGroup]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(shares: run, block, share_mean, share_std; metrics: metric × run 'mean ± std';
    config: the config keys whose values differ between the runs)."""
    shares, metric_rows, configs = [], {}, {}
    for g in groups:
        t = share_table(g)
        t.insert(0, "run", g.name)
        shares.append(t)
        m = metrics_table(g, ("test",))
        for _, r in m.iterrows():
            cell = f"{r['mean']:.4f}" + (f" ± {r['std']:.4f}" if r["n"] > 1 else "")
            metric_rows.setdefault(r["label"], {})[g.name] = cell
        cfg = flatten(g.runs[0].config)
        cfg.pop("train.seed", None)
        cfg.pop("train.progress", None)
        configs[g.name] = cfg
    for t in shares:  # contribution share next to β share, when the run has attribution.json
        g = next(g for g in groups if g.name == t["run"].iloc[0])
        at = attribution_table(g).set_index("block")
        t["contribution_share"] = [float(at.loc[b, "contribution_share"]) if b in at.index else float("nan")
                                   for b in t["block"]]
        t["contribution_share_std"] = [float(at.loc[b, "contribution_share_std"]) if b in at.index
                                       else float("nan") for b in t["block"]]
        t["has_beta"] = g.has_beta
    share_df = pd.concat(shares, ignore_index=True) if shares else pd.DataFrame()
    metrics_df = pd.DataFrame(metric_rows).T
    metrics_df.index.name = "metric (test)"
    keys = sorted({k for c in configs.values() for k in c})
    diff = {k: {n: str(c.get(k, "—")) for n, c in configs.items()} for k in keys
            if len({str(c.get(k, "—")) for c in configs.values()}) > 1}
    config_df = pd.DataFrame(diff).T
    config_df.index.name = "config key"
    return share_df, metrics_df, config_df


# ---------------------------------------------------------------- faithfulness
def ablation_results(run_dir: Path) -> dict | None:
    """Results of ``mweight ablate`` saved in the run folder (``ablation.json``), if any."""
    import json

    for name in ("ablation.json", "ablate.json"):
        f = Path(run_dir) / name
        if f.is_file():
            try:
                d = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            return d if isinstance(d, dict) else None
    return None


def _metric_drop(task: str, base: float, other: float, mode: str) -> float:
    return (other - base) if mode == "min" else (base - other)


def faithfulness(root: Path, group: RunGroup, seed=None, split: str = "test", repeats: int = 3,
                 rng_seed: int = 0, progress: Callable[[float, str], None] | None = None) -> dict:
    """β share next to the measured importance of each block and each modality.

    - *block ablation*: remove block S's contribution ``W_S z_S(x)`` from every
      prediction (exact: the prediction is additive over blocks; z_S is centred by
      the block normalisation, so this is close to replacing it by its mean) and
      measure how much the selection metric degrades;
    - *modality permutation*: shuffle one modality's inputs across samples (every
      block containing it is affected), ``repeats`` times, mean degradation; plus
      *modality ablation* (replace it by its training mean). Both come from
      :func:`mweight.analysis.ablate_run` (the code behind ``mweight ablate``).

    Returns ``{"metric", "label", "base", "split", "n", "blocks": DataFrame, "modalities": DataFrame,
    "source"}``; importance shares are the degradations clipped at 0 and normalised to sum 1.
    """
    from .config import Config
    from .data import carve_validation, load_dataset, to_tensors
    from .metrics import compute_metrics, select_metric
    from .model import predict_tensors
    from .runs import load_model

    run = group.run_for(seed)
    model_path = run.path / "model.pt"
    if not model_path.is_file():
        raise MWeightError(f"{model_path}: file not found (needed to measure importance)")
    if not inside(root, model_path):
        raise MWeightError(f"{model_path}: points outside the runs folder; not read")
    ds_path = dataset_path(root, run)
    if ds_path is None:
        raw = (run.config.get("data") or {}).get("path")
        raise MWeightError(f"{run.path / 'config.yaml'}: dataset {raw!r} (data.path) not found; "
                           "importance needs the inputs the run was trained on")
    model, cfg, task = load_model(model_path)
    if not isinstance(cfg, Config):
        raise MWeightError(f"{model_path}: no config in the model file")
    if progress:
        progress(0.02, "loading the dataset")
    ds = load_dataset(ds_path, cfg.data.split_key, cfg.data.modalities, cfg.data.task)
    ds, _ = carve_validation(ds, cfg.data.valid_fraction, cfg.data.valid_seed)
    part = ds.part(split)
    if len(part) < 2:
        raise MWeightError(f"{ds_path}: split {split!r} has {len(part)} samples; need at least 2")
    inputs, lengths, _ = to_tensors(part)
    metric, mode = select_metric(task)

    def score(pred: np.ndarray) -> float:
        vals = pred[:, 0] if task == "regression" else pred
        return float(compute_metrics(vals, part.label, task)[metric])

    pred, contrib = predict_tensors(model, inputs, lengths, contributions=True)
    base = score(pred)
    # like with like: this seed's β share and attribution next to this seed's measured importance
    share = {b: float(v) for b, v in run.relevance["share"].items()}
    attr = attribution_on_split(group.attribution_for(seed), split)
    blocks = list(model.block_names)
    steps = len(blocks) + len(model.modalities) * repeats
    done = 0
    rows = []
    for b in blocks:
        drop = _metric_drop(task, base, score(pred - contrib[b]), mode)
        rows.append({"block": b, "kind": block_kind(b),
                     "beta_share": share.get(b, float("nan")) if group.has_beta else float("nan"),
                     "contribution_share": attr["blocks"].get(b, float("nan")), "degradation": drop})
        done += 1
        if progress:
            progress(done / steps, f"ablating block {b}")
    blocks_df = pd.DataFrame(rows)
    pos = blocks_df["degradation"].clip(lower=0)
    blocks_df["importance_share"] = pos / pos.sum() if pos.sum() > 0 else 0.0
    from .analysis import LoadedRun, ablate_run

    if progress:
        progress(done / steps, "ablating and permuting modalities (mweight.analysis)")
    lr = LoadedRun(path=run.path, run=run, model=model, cfg=cfg, task=task)
    own_file = bool(cfg.data.path) and Path(cfg.data.path).is_file()
    res = ablate_run(lr, data=None if own_file else ds_path, split=split, repeats=repeats, seed=rng_seed,
                     metrics=[metric])
    mods_df = pd.DataFrame([{"modality": m, "beta_share_own": r["share"],
                             "beta_share_all_blocks_with_it": r["share_with_interactions"],
                             "ablation_degradation": r["ablation"][metric], "degradation": r["permutation"][metric],
                             "degradation_std": r["permutation_std"][metric]} for m, r in res["modalities"].items()])
    source = ("block ablation: mweight.appdata (exact removal of W_S z_S); modalities: "
              "mweight.analysis.ablate_run (training-mean ablation, permutation)")
    for col, out in (("degradation", "importance_share"), ("ablation_degradation", "ablation_share")):
        if col in mods_df:
            pos = mods_df[col].clip(lower=0)
            mods_df[out] = pos / pos.sum() if pos.sum() > 0 else 0.0
    mods_df["shapley_share"] = [attr["modalities"].get(m, float("nan")) for m in mods_df["modality"]]
    if not group.has_beta:
        for c in ("beta_share_own", "beta_share_all_blocks_with_it"):
            mods_df[c] = float("nan")
    if progress:
        progress(1.0, "done")
    return {"metric": metric, "label": metric_label(metric), "mode": mode, "base": base, "split": split,
            "n": len(part), "blocks": blocks_df, "modalities": mods_df, "dataset": str(ds_path),
            "source": source, "seeds": [seed], "attribution_split": attr["split"]}


def attribution_on_split(attr: dict | None, split: str) -> dict:
    """``{"blocks": {b: contribution_share}, "modalities": {m: shapley_share}, "split"}`` of
    one run's attribution on ``split`` (from ``by_split``, or the top level when it is that
    split); empty dicts and ``split`` None when the run has no attribution for it."""
    out = {"blocks": {}, "modalities": {}, "split": None}
    if not attr:
        return out
    part = (attr.get("by_split") or {}).get(split)
    if not isinstance(part, dict) and attr.get("split") == split:
        part = attr
    if not isinstance(part, dict):
        return out
    for b, v in (part.get("blocks") or {}).items():
        if isinstance(v, dict) and _finite(v.get("contribution_share")):
            out["blocks"][b] = float(v["contribution_share"])
    for m, v in (part.get("modalities") or {}).items():
        if isinstance(v, dict) and _finite(v.get("shapley_share")):
            out["modalities"][m] = float(v["shapley_share"])
    out["split"] = split
    return out


def faithfulness_mean(root: Path, group: RunGroup, split: str = "test", repeats: int = 3,
                      progress: Callable[[float, str], None] | None = None) -> dict:
    """:func:`faithfulness` of every seed, averaged column by column: means with means
    (each seed's β share, attribution and importance measured on that seed's model)."""
    results = []
    n = len(group.seeds)
    for i, seed in enumerate(group.seeds):
        def sub(f, text, i=i, seed=seed):
            if progress:
                progress((i + f) / n, f"seed {seed}: {text}")
        results.append(faithfulness(root, group, seed, split, repeats, progress=sub))
    first = results[0]

    def mean_frame(key: str, by: str) -> pd.DataFrame:
        frames = pd.concat([r[key] for r in results], ignore_index=True)
        num = [c for c in frames.columns if c not in (by, "kind")]
        out = frames.groupby(by, sort=False)[num].mean().reset_index()
        if "kind" in frames:
            out.insert(1, "kind", [block_kind(b) for b in out[by]])
        return out

    return {**first, "base": float(np.mean([r["base"] for r in results])), "blocks": mean_frame("blocks", "block"),
            "modalities": mean_frame("modalities", "modality"), "seeds": list(group.seeds)}


def saved_ablation_table(saved: dict) -> pd.DataFrame | None:
    """The modality table of an ``ablation.json`` written by ``mweight ablate`` (None if another shape)."""
    mods = saved.get("modalities") if isinstance(saved, dict) else None
    if not isinstance(mods, dict):
        return None
    rows = []
    for m, r in mods.items():
        if not isinstance(r, dict):
            return None
        row = {"modality": m, "β share (its blocks)": r.get("share_with_interactions")}
        for kind in ("ablation", "permutation"):
            for k, v in (r.get(kind) or {}).items():
                row[f"{kind} drop ({k})"] = v
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- training from the app
def dataset_files(root: Path) -> list[str]:
    """``.npz`` files inside the runs folder (relative POSIX paths), for the demo trainer."""
    out = []
    root = Path(root)
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and n not in SKIP_DIRS)
        if len(d.relative_to(root).parts) >= MAX_DEPTH:
            dirnames[:] = []
        for f in sorted(filenames):
            if f.endswith(".npz") and not (d / f).is_symlink():
                out.append("/".join((d / f).relative_to(root).parts))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "run"


# The quick demo and the playground's defaults (see train_synthetic). The dna-additive
# preset is tuned for N = 8000 and 30 epochs (`mweight repro dna`); on 600 sequences its
# lr 0.001 / batch 64 makes ~50 steps in 6 epochs and leaves the irrelevant modality at
# 0.1-0.3 of the attribution. "overrides" (applied to the additive design) take more,
# larger steps, a stronger λ and select on validation cross-entropy; measured on seeds
# 0, 1, 2 (tests/test_app.py::test_quick_demo_recovers_the_irrelevant_modality_on_3_seeds):
# the p = 0 modality's contribution share ≤ 0.0001 and Shapley share ≤ 0.0014 on every seed
# (seed 0 with mweight's own attribution.json: 0.0000 and 0.0006, verdict ok).
# "timing": the demo's wall-clock time as measured (shown next to the button).
DEMO = {"p": (0.8, 0.4, 0.0), "n": 600, "epochs": 12,
        "overrides": ("train.lr=0.005", "train.batch_size=32", "model.lambda=0.05", "train.select=ce"),
        "timing": "Measured on a shared 2-core machine under heavy load (load average 12-22; not measured idle): "
                  "20-121 s wall-clock, of which training 64 s in the slowest case. 600 sequences are enough "
                  "to find the irrelevant modality (≤ 0.02 of the attribution on seeds 0-2) but too few to "
                  "rank the weak p = 0.4 motif reliably (its share was 0.37 on one seed, ≤ 0.011 on two)."}


def train_synthetic(root: Path, design: str = "additive", p: Iterable[float] = DEMO["p"],
                    n: int = DEMO["n"], epochs: int = DEMO["epochs"], seed: int = 0, length: int = 60,
                    folder: str = "playground", on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Generate a small DNA dataset inside the runs folder and train one run on it.

    ``design``: ``additive`` (one modality per value of ``p``) or ``xor`` (3 modalities,
    label = XOR of m1 and m2, all interaction blocks). Returns
    ``{"run_dir", "rel", "dataset", "truth", "result"}``.
    """
    from . import synthetic
    from .config import resolve_config
    from .seeds import train_runs

    root = Path(root)
    p = [float(v) for v in p]
    if design == "xor":
        ds = synthetic.make_xor(n=int(n), seed=int(seed), length=int(length))
        name = f"xor_n{n}_s{seed}"
        preset = "dna-xor"
    elif design == "additive":
        ds = synthetic.make_additive(p=p, n=int(n), seed=int(seed), length=int(length))
        name = "additive_p" + "-".join(f"{v:g}" for v in p) + f"_n{n}_s{seed}"
        preset = "dna-additive"
    else:
        raise MWeightError(f"design: expected additive or xor, got {design!r}")
    name = _slug(name)
    base = safe_join(root, folder)
    data_path = base / "data" / f"{name}.npz"
    synthetic.write_dataset(ds, data_path)
    out = base / name
    overrides = list(DEMO["overrides"]) if design == "additive" else []
    cfg = resolve_config(preset, None, overrides + [f"train.epochs={int(epochs)}", f"train.seed={int(seed)}"],
                         extra={"data": {"path": str(data_path)}, "train": {"progress": False}})
    train_runs(cfg, out, seeds=None, overwrite=True, preset=preset, on_epoch=on_epoch, verbose=False)
    return {"run_dir": out, "rel": "/".join(out.relative_to(root).parts), "dataset": data_path,
            "truth": ds.ground_truth, "epochs": cfg.train.epochs}


def train_on_file(root: Path, rel: str, preset: str | None, epochs: int,
                  on_epoch: Callable[[dict], None] | None = None, split_key: str | None = None) -> dict:
    """Train one run on a dataset file that lies inside the runs folder."""
    from .config import resolve_config
    from .seeds import train_runs

    root = Path(root)
    if rel not in dataset_files(root):
        raise MWeightError(f"{rel!r}: not a .npz dataset inside the runs folder")
    data_path = safe_join(root, rel)
    out = safe_join(root, "demo/" + _slug(Path(rel).stem + (f"_{preset}" if preset else "")))
    extra = {"data": {"path": str(data_path)}, "train": {"progress": False}}
    if split_key:
        extra["data"]["split_key"] = split_key
    cfg = resolve_config(preset, None, [f"train.epochs={int(epochs)}"], extra=extra)
    train_runs(cfg, out, seeds=None, overwrite=True, preset=preset, on_epoch=on_epoch, verbose=False)
    return {"run_dir": out, "rel": "/".join(out.relative_to(root).parts), "epochs": cfg.train.epochs}


def truth_for(root: Path, group: RunGroup) -> dict | None:
    """The ground truth of a synthetic run (from ``<dataset>.truth.json``), if present."""
    import json

    ds = dataset_path(root, group.runs[0])
    if ds is None:
        return None
    t = ds.with_suffix(".truth.json")
    if not t.is_file():
        return None
    try:
        d = json.loads(t.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    gt = d.get("ground_truth") if isinstance(d, dict) else None
    return gt if isinstance(gt, dict) else None


def recovered_vs_truth(group: RunGroup, truth: dict) -> pd.DataFrame:
    """block, recovered (β share), [contribution share (attribution, when present)],
    expected (ground-truth reference share, 0 if not listed)."""
    t = share_table(group)
    exp = truth.get("expected_share") or {}
    out = pd.DataFrame({"block": t["block"], "recovered": t["share_mean"]})
    if group.has_attribution:
        at = attribution_table(group).set_index("block")
        out["contribution share"] = [float(at.loc[b, "contribution_share"]) for b in t["block"]]
    out["expected"] = [float(exp.get(b, 0.0)) for b in t["block"]]
    return out


# ---------------------------------------------------------------- relevance path (β and attribution against p)
PATHS_FOLDER = "paths"
DEFAULT_PATH_PS = (1.0, 2.0, 4.0, 8.0)


def path_folder(group: RunGroup) -> str:
    """Where the relevance path of a run is trained: ``paths/<run>`` inside the runs folder."""
    name = "runs-folder" if group.entry.rel == "." else _slug(group.entry.rel.replace("/", "_"))
    return f"{PATHS_FOLDER}/{name}"


def _p_name(p: float) -> str:
    return f"p_{p:g}".replace(".", "_")


def train_path(root: Path, group: RunGroup, ps: Iterable[float] = DEFAULT_PATH_PS, epochs: int | None = None,
               progress: Callable[[float, str], None] | None = None) -> list[str]:
    """Train the run's configuration (first seed) again at every p in ``ps``, on the same
    data, into ``paths/<run>/p_<p>`` (replacing earlier path runs). Returns their rel paths.

    Only p changes (and ``epochs`` when given): the same data, split, encoders, λ and
    seed, so the path shows what p alone does to β share and to the attribution.
    """
    import copy

    from .config import Config
    from .seeds import train_runs

    ps = sorted({float(p) for p in ps})
    if not ps:
        raise MWeightError("relevance path: choose at least one value of p")
    if any(p < 1 for p in ps):
        raise MWeightError(f"relevance path: p = {min(ps):g}; expected p >= 1")
    if not group.has_beta:
        raise MWeightError(f"{group.path / 'config.yaml'}: model.relevance = none (no β), so p changes nothing; "
                           "a relevance path needs a model with β (mnl or explicit)")
    run = group.runs[0]
    ds_path = dataset_path(root, run)
    if ds_path is None:
        raw = (run.config.get("data") or {}).get("path")
        raise MWeightError(f"{run.path / 'config.yaml'}: dataset {raw!r} (data.path) not found; "
                           "the relevance path trains on the run's data")
    base_cfg = Config.from_dict(run.config, source=str(run.path / "config.yaml"))
    base_cfg.data.path = str(ds_path)
    base_cfg.train.progress = False
    if epochs is not None:
        base_cfg.train.epochs = int(epochs)
    folder = safe_join(root, path_folder(group))
    total = len(ps) * base_cfg.train.epochs
    out = []
    for i, p in enumerate(ps):
        cfg = copy.deepcopy(base_cfg)
        cfg.model.p = float(p)

        def on_epoch(row: dict, i=i, p=p) -> None:
            if progress:
                e = int(row.get("epoch", 0))
                progress((i * cfg.train.epochs + e) / total, f"p = {p:g}: epoch {e}/{cfg.train.epochs}")
        target = folder / _p_name(p)
        train_runs(cfg, target, seeds=None, overwrite=True, preset=(run.meta or {}).get("preset"),
                   on_epoch=on_epoch, verbose=False)
        out.append("/".join(target.relative_to(root).parts))
    if progress:
        progress(1.0, "done")
    return out


def path_frame(root: Path, group: RunGroup) -> pd.DataFrame:
    """The relevance path of a run, long form: p, name, kind (block | modality),
    measure (β share | contribution share | Shapley share), value, lo, hi (95% bootstrap
    interval of the attribution, NaN for β). Empty when no path was trained."""
    cols = ["p", "name", "kind", "measure", "value", "lo", "hi", "run"]
    base = Path(root) / path_folder(group)
    if not base.is_dir() or not inside(root, base):
        return pd.DataFrame(columns=cols)
    rows = []
    for e in discover_runs(base):
        if e.kind != "single":
            continue
        try:
            g = load_group(base, e)
        except MWeightError:
            continue
        rel = "/".join((base / e.rel).relative_to(root).parts)
        for b in g.blocks:
            rows.append({"p": g.p, "name": b, "kind": block_kind(b), "measure": "β share",
                         "value": float(g.runs[0].relevance["share"][b]), "lo": np.nan, "hi": np.nan, "run": rel})
        a = g.attributions[0] if g.attributions else None
        if a:
            for b, v in a["blocks"].items():
                ci = v.get("contribution_share_ci") or [np.nan, np.nan]
                rows.append({"p": g.p, "name": b, "kind": block_kind(b), "measure": "contribution share",
                             "value": float(v["contribution_share"]), "lo": ci[0], "hi": ci[1], "run": rel})
            for m, v in (a.get("modalities") or {}).items():
                if isinstance(v, dict) and _finite(v.get("shapley_share")):
                    ci = v.get("shapley_share_ci") or [np.nan, np.nan]
                    rows.append({"p": g.p, "name": m, "kind": "modality", "measure": "Shapley share",
                                 "value": float(v["shapley_share"]), "lo": ci[0], "hi": ci[1], "run": rel})
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(rows, columns=cols).sort_values(["measure", "name", "p"], kind="stable").reset_index(drop=True)
