"""The runs folder the app opens, run groups (one run or its seeds), their attribution and overview tables."""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import MWeightError
from ..metrics import METRIC_LABELS, METRIC_MODES

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
    from ..runs import check_run, load_run

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
    from ..runs import RunDir, is_run_dir, seed_of

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
    from ..runs import seed_dir

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
    from ..runs import RunDir, check_run, load_run, seed_dir

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
    from ..runs import mean_std

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
    from ..runs import mean_std

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
    from ..runs import mean_std

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
