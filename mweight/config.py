"""Typed, layered configuration: preset < config file < ``--set key=value``.

A run's fully resolved config is saved as ``config.yaml`` in its run directory,
and a model checkpoint carries it too, so every number can be re-made.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import MWeightError

PRESET_DIR = Path(__file__).with_name("presets")


@dataclass
class DataConfig:
    path: str | None = None
    split_key: str = "split"  # which split column of the dataset to use
    modalities: list[str] | None = None  # None: every modality in the file
    task: str = "auto"  # auto | regression | classification
    standardize: bool = True  # z-score float features with train statistics
    valid_fraction: float = 0.15  # carved from train (by whole videos) when the split has no 'valid'
    valid_seed: int = 0  # seed of that carving (fixed across training seeds)


@dataclass
class ModelConfig:
    encoders: dict[str, dict] = field(default_factory=dict)  # modality -> {name: ..., options}
    hidden: int = 32  # default encoder output size
    interactions: Any = field(default_factory=list)  # [], "all", "pairs", ["text*audio", ...]
    rank: int = 8  # r, factor size of interaction blocks
    norm: str = "iterbn"  # none | bn | vbn | iterbn
    factor_affine: bool = False
    relevance: str = "mnl"  # mnl (eliminated beta) | explicit (trainable beta) | none (ridge, no beta)
    p: float = 1.0
    lam: float = 0.05  # written as "lambda" in YAML
    dropout: float = 0.1


@dataclass
class TrainConfig:
    seed: int = 0
    epochs: int = 100
    batch_size: int = 32
    lr: float = 5e-3
    lr_decay: float = 0.9  # exponential, per epoch
    weight_decay: float = 1e-4  # AdamW on encoder/factor weights (not on the final layer)
    grad_clip: float = 8.0
    patience: int = 20  # early stopping on the validation metric
    # model selection (and early stopping) on the validation split: auto = MAE for
    # regression, accuracy for classification; or any metric name (e.g. ce, corr, f1_non0)
    select: str = "auto"
    loss: str = "auto"  # auto | l1 | mse | ce
    beta_lr: float = 0.01  # explicit-beta mode: projected gradient step size
    # torch intra-op threads. These models are small: one thread is as fast as two and
    # avoids oversubscription when seeds or sweep trials run side by side. 0 = torch's default.
    threads: int = 1
    progress: bool = True


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # -- conversion -------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"]["lambda"] = d["model"].pop("lam")
        return d

    @classmethod
    def from_dict(cls, d: dict | None, source: str = "config") -> "Config":
        d = copy.deepcopy(d or {})
        unknown = sorted(set(d) - {"data", "model", "train"})
        if unknown:
            raise MWeightError(f"{source}: unknown section {unknown[0]!r}; expected data, model, train")
        model = dict(d.get("model") or {})
        if "lambda" in model:
            model["lam"] = model.pop("lambda")
        parts = {}
        for name, klass, values in (("data", DataConfig, d.get("data")), ("model", ModelConfig, model),
                                    ("train", TrainConfig, d.get("train"))):
            values = dict(values or {})
            known = {f.name for f in dataclasses.fields(klass)}
            bad = sorted(set(values) - known)
            if bad:
                shown = "lambda" if name == "model" else None
                opts = sorted(k if k != "lam" else shown for k in known)
                raise MWeightError(f"{source}: unknown key {name}.{bad[0]}; expected one of {', '.join(opts)}")
            parts[name] = klass(**values)
        cfg = cls(**parts)
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "config") -> None:
        m, t = self.model, self.train
        checks = [
            (m.norm in ("none", "bn", "vbn", "iterbn"), "model.norm", "none | bn | vbn | iterbn", m.norm),
            (m.relevance in ("mnl", "explicit", "none"), "model.relevance", "mnl | explicit | none", m.relevance),
            (isinstance(m.p, (int, float)) and m.p >= 1, "model.p", "a real number >= 1", m.p),
            (isinstance(m.lam, (int, float)) and m.lam >= 0, "model.lambda", "a number >= 0", m.lam),
            (isinstance(m.rank, int) and m.rank >= 1, "model.rank", "an integer >= 1", m.rank),
            (self.data.task in ("auto", "regression", "classification"), "data.task",
             "auto | regression | classification", self.data.task),
            (t.loss in ("auto", "l1", "mse", "ce"), "train.loss", "auto | l1 | mse | ce", t.loss),
            (isinstance(t.epochs, int) and t.epochs >= 1, "train.epochs", "an integer >= 1", t.epochs),
            (isinstance(t.batch_size, int) and t.batch_size >= 2, "train.batch_size", "an integer >= 2",
             t.batch_size),
            (0 < self.data.valid_fraction < 1, "data.valid_fraction", "a number in (0, 1)",
             self.data.valid_fraction),
        ]
        for ok, key, expected, got in checks:
            if not ok:
                raise MWeightError(f"{source}: {key} = {got!r}; expected {expected}")
        m.p = float(m.p)
        m.lam = float(m.lam)


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "encoders":
            out[k] = deep_merge(out[k], v)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):  # encoders: merge per modality
            merged = copy.deepcopy(out[k])
            for mk, mv in v.items():
                merged[mk] = {**merged.get(mk, {}), **mv} if isinstance(mv, dict) else mv
            out[k] = merged
        else:
            out[k] = copy.deepcopy(v)
    return out


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def read_yaml(path: str | Path, what: str = "config") -> dict:
    path = Path(path)
    if not path.is_file():
        raise MWeightError(f"{path}: {what} file not found")
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise MWeightError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise MWeightError(f"{path}: expected a mapping with sections data/model/train")
    d.pop("_meta", None)
    d.pop("description", None)
    return d


def preset_description(name: str) -> str:
    """The one-line ``description`` of a shipped preset (shown by ``--list-presets``)."""
    d = yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8")) or {}
    return str(d.get("description", ""))


def preset_dict(name: str) -> dict:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise MWeightError(f"--preset {name}: unknown preset; expected one of {', '.join(list_presets())}")
    return read_yaml(path, "preset")


def parse_set(items: list[str] | None) -> dict:
    """``["model.p=1.5", "model.interactions=[text*audio]"]`` -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise MWeightError(f"--set {item!r}: expected key=value, e.g. model.p=1.5")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
        if len(parts) < 2:
            raise MWeightError(f"--set {item!r}: expected a dotted key like train.epochs or model.p")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def resolve_config(preset: str | None = None, config_file: str | None = None,
                   overrides: list[str] | None = None, extra: dict | None = None) -> Config:
    """Layer preset < config file < extra (e.g. CLI flags) < --set overrides."""
    d: dict = {}
    source = "config"
    if preset:
        d = deep_merge(d, preset_dict(preset))
        source = f"preset {preset}"
    if config_file:
        d = deep_merge(d, read_yaml(config_file))
        source = str(config_file)
    if extra:
        d = deep_merge(d, extra)
    if overrides:
        d = deep_merge(d, parse_set(overrides))
        source = "--set"
    if "model" in d and "lam" in d["model"]:
        d["model"]["lambda"] = d["model"].pop("lam")
    return Config.from_dict(d, source=source)
