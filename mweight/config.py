"""Typed, layered configuration: preset < config file < ``--set key=value``.

A run's fully resolved config is saved as ``config.yaml`` in its run directory,
and a model checkpoint carries it too, so every number can be re-made.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

PRESET_DIR = Path(__file__).with_name("presets")

# The allowed values, defined once (fusion/model import them from here; no torch in this module).
NORMS = ("none", "bn", "vbn", "iterbn", "anova")
RELEVANCE_MODES = ("mnl", "explicit", "none")
TASKS = ("auto", "regression", "classification")
LOSSES = ("auto", "l1", "mse", "ce")
INTERACTION_WORDS = ("all", "pairs", "triples", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")  # resolved (and checked against the machine) in devices.py
PRECISIONS = ("32", "bf16", "16")  # train.precision, written 32 | bf16 | 16


class YamlLoader(yaml.SafeLoader):
    """YAML as users write numbers: ``1e-3``, ``1E5``, ``.5``, ``inf`` are floats.

    YAML 1.1 (PyYAML) reads ``1e-3`` (no dot) and ``inf`` (no leading dot) as strings,
    so ``--set train.lr=1e-3`` used to reach the validator as text. Every config read
    (files, presets, ``--set``) goes through this loader.
    """


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+
                   |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:inf|Inf|INF))$""", re.X),
    list("-+0123456789.iI"),
)


def load_yaml(text: str) -> Any:
    """Parse YAML text with :class:`YamlLoader` (numbers as numbers)."""
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass


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
    norm: str = "anova"  # one of NORMS; anova: interaction blocks residualised on their lower orders
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
    # regression, cross-entropy for classification (accuracy ties for epochs on end and
    # kept a nearly untrained head); or any metric name (e.g. acc, corr, f1_non0).
    # Ties are broken by the validation loss.
    select: str = "auto"
    # initialisations per seed; the one with the lowest validation loss is kept (all are
    # recorded). A seed stuck at a saddle (XOR) then does not cost a result.
    restarts: int = 1
    loss: str = "auto"  # auto | l1 | mse | ce
    beta_lr: float = 0.01  # explicit-beta mode: projected gradient step size
    # torch intra-op threads. These models are small: one thread is as fast as two and
    # avoids oversubscription when seeds or sweep trials run side by side. 0 = torch's default.
    threads: int = 1
    progress: bool = True
    # cpu by default: deterministic (same seed, same numbers). auto = cuda, else mps, else cpu.
    device: str = "cpu"
    # 32 | bf16 | 16: autocast of the training steps (16 = float16 with loss scaling, CUDA only);
    # evaluation, contributions and calibration stay float32 (mweight/devices.py).
    precision: Any = 32


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
    def from_dict(cls, d: dict | None, source="config") -> "Config":
        """Build and validate a config from a nested dict.

        ``source`` names where the values came from in error messages: a string, or a
        function ``dotted key -> str`` (layered configs name the layer that set the key).
        """
        d = copy.deepcopy(d or {})
        where = source if callable(source) else (lambda key: source)
        if not isinstance(d, dict):
            raise ConfigError(f"{where('')}: expected a mapping with sections data/model/train, got {type(d).__name__}")
        unknown = sorted(set(d) - {"data", "model", "train"})
        if unknown:
            raise ConfigError(f"{where(str(unknown[0]))}: unknown section {unknown[0]!r}; expected data, model, train",
                              key=str(unknown[0]))
        for name in ("data", "model", "train"):
            if d.get(name) is not None and not isinstance(d[name], dict):
                raise ConfigError(f"{where(name)}: section {name} = {d[name]!r}; expected a mapping of keys",
                                  key=name)
        model = dict(d.get("model") or {})
        if "lambda" in model:
            model["lam"] = model.pop("lambda")
        parts = {}
        for name, klass, values in (("data", DataConfig, d.get("data")), ("model", ModelConfig, model),
                                    ("train", TrainConfig, d.get("train"))):
            values = dict(values or {})
            known = {f.name for f in dataclasses.fields(klass)}
            bad = sorted(set(values) - known, key=str)
            if bad:
                opts = sorted("lambda" if k == "lam" else k for k in known)
                raise ConfigError(f"{where(f'{name}.{bad[0]}')}: unknown key {name}.{bad[0]}; "
                                  f"expected one of {', '.join(opts)}", key=f"{name}.{bad[0]}")
            parts[name] = klass(**values)
        cfg = cls(**parts)
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "config") -> None:
        """Check every value; the first bad one raises :class:`ConfigError` naming the key.

        Numbers are normalised in place (an integral float such as ``1e3`` becomes an int
        where an int is expected, ints become floats where a float is expected).
        """
        d, m, t = self.data, self.model, self.train
        v = _Validator(source)
        d.path = v.optional_str("data.path", d.path)
        d.split_key = v.string("data.split_key", d.split_key)
        if d.modalities is not None:
            if isinstance(d.modalities, str):
                d.modalities = [x.strip() for x in d.modalities.split(",") if x.strip()]
            if (not isinstance(d.modalities, list) or not d.modalities
                    or not all(isinstance(x, str) and x for x in d.modalities)
                    or len(set(d.modalities)) != len(d.modalities)):
                v.fail("data.modalities", d.modalities, "a list of distinct modality names, e.g. [text, audio]")
        v.choice("data.task", d.task, TASKS)
        d.standardize = v.boolean("data.standardize", d.standardize)
        d.valid_fraction = v.real("data.valid_fraction", d.valid_fraction, "a number in (0, 1)",
                                  lambda x: 0 < x < 1)
        d.valid_seed = v.integer("data.valid_seed", d.valid_seed, "an integer >= 0", lambda x: x >= 0)

        if not isinstance(m.encoders, dict):
            v.fail("model.encoders", m.encoders, "a mapping modality -> {name: ..., options}")
        for mod, opts in m.encoders.items():
            if opts is None:
                m.encoders[mod] = {}
            elif isinstance(opts, str):  # model.encoders.text=gru
                m.encoders[mod] = {"name": opts}
            elif not isinstance(opts, dict):
                v.fail(f"model.encoders.{mod}", opts, "a mapping {name: ..., options} or an encoder name")
            name = m.encoders[mod].get("name")
            if name is not None and not isinstance(name, str):
                v.fail(f"model.encoders.{mod}.name", name, "an encoder name (see docs: mlp, gru, lstm, ...)")
        m.hidden = v.integer("model.hidden", m.hidden, "an integer >= 1", lambda x: x >= 1)
        m.interactions = _check_interactions(v, m.interactions)
        m.rank = v.integer("model.rank", m.rank, "an integer >= 1", lambda x: x >= 1)
        v.choice("model.norm", m.norm, NORMS)
        m.factor_affine = v.boolean("model.factor_affine", m.factor_affine)
        v.choice("model.relevance", m.relevance, RELEVANCE_MODES)
        m.p = v.real("model.p", m.p, "a real number >= 1", lambda x: math.isfinite(x) and x >= 1)
        m.lam = v.real("model.lambda", m.lam, "a number >= 0", lambda x: math.isfinite(x) and x >= 0)
        m.dropout = v.real("model.dropout", m.dropout, "a number in [0, 1)", lambda x: 0 <= x < 1)

        t.seed = v.integer("train.seed", t.seed, "an integer >= 0", lambda x: x >= 0)
        t.epochs = v.integer("train.epochs", t.epochs, "an integer >= 1", lambda x: x >= 1)
        t.batch_size = v.integer("train.batch_size", t.batch_size, "an integer >= 2", lambda x: x >= 2)
        t.lr = v.real("train.lr", t.lr, "a finite number > 0", lambda x: math.isfinite(x) and x > 0)
        t.lr_decay = v.real("train.lr_decay", t.lr_decay, "a number in (0, 1] (per-epoch factor)",
                            lambda x: 0 < x <= 1)
        t.weight_decay = v.real("train.weight_decay", t.weight_decay, "a finite number >= 0",
                                lambda x: math.isfinite(x) and x >= 0)
        t.grad_clip = v.real("train.grad_clip", t.grad_clip, "a number > 0 (inf: no clipping)", lambda x: x > 0)
        if isinstance(t.patience, float) and t.patience == math.inf:
            pass  # inf: never stop early
        else:
            t.patience = v.integer("train.patience", t.patience, "an integer >= 1 (or inf: no early stopping)",
                                   lambda x: x >= 1)
        t.restarts = v.integer("train.restarts", t.restarts, "an integer >= 1", lambda x: x >= 1)
        from .metrics import METRIC_MODES  # numpy only

        v.choice("train.select", t.select, ("auto", *METRIC_MODES))
        v.choice("train.loss", t.loss, LOSSES)
        t.beta_lr = v.real("train.beta_lr", t.beta_lr, "a finite number > 0", lambda x: math.isfinite(x) and x > 0)
        t.threads = v.integer("train.threads", t.threads, "an integer >= 0 (0: torch's default)", lambda x: x >= 0)
        t.progress = v.boolean("train.progress", t.progress)
        v.choice("train.device", t.device, DEVICES)
        if isinstance(t.precision, bool) or str(t.precision) not in PRECISIONS:
            v.fail("train.precision", t.precision, " | ".join(PRECISIONS))
        t.precision = "bf16" if str(t.precision) == "bf16" else int(t.precision)  # "16" (--set) -> 16


class _Validator:
    """Small helpers that raise one-line :class:`ConfigError` s: '<source>: <key> = <given>; expected <what>'."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, got: Any, expected: str):
        source = self.source(key) if callable(self.source) else self.source
        raise ConfigError(f"{source}: {key} = {got!r}; expected {expected}", key=key)

    def choice(self, key: str, got: Any, allowed: tuple) -> None:
        if not isinstance(got, str) or got not in allowed:
            self.fail(key, got, " | ".join(allowed))

    def boolean(self, key: str, got: Any) -> bool:
        if not isinstance(got, bool):
            self.fail(key, got, "true or false")
        return got

    def string(self, key: str, got: Any) -> str:
        if not isinstance(got, str) or not got:
            self.fail(key, got, "a non-empty string")
        return got

    def optional_str(self, key: str, got: Any) -> str | None:
        if got is None:
            return None
        if isinstance(got, Path):
            return str(got)
        return self.string(key, got)

    def integer(self, key: str, got: Any, expected: str, ok) -> int:
        value = got
        if isinstance(got, float) and math.isfinite(got) and got == int(got):
            value = int(got)  # 1e3 -> 1000
        if isinstance(value, bool) or not isinstance(value, int) or not ok(value):
            self.fail(key, got, expected)
        return value

    def real(self, key: str, got: Any, expected: str, ok) -> float:
        if isinstance(got, bool) or not isinstance(got, (int, float)) or math.isnan(got) or not ok(float(got)):
            self.fail(key, got, expected)
        return float(got)


def _check_interactions(v: _Validator, spec: Any) -> Any:
    """Syntax of model.interactions (modality names are checked against the dataset at load time)."""
    expected = ("[], all, pairs, triples, order<=k (k >= 2), or a list like [text*audio, text*audio*video]")
    if spec is None or spec == []:
        return []
    if isinstance(spec, str):
        if spec in INTERACTION_WORDS:
            return spec
        if spec.startswith("order<="):
            k = spec[len("order<="):].strip()
            if not k.isdigit() or int(k) < 2:
                v.fail("model.interactions", spec, expected)
            return spec
        if "*" not in spec:
            v.fail("model.interactions", spec, expected)
        spec = [spec]
    if not isinstance(spec, (list, tuple)):
        v.fail("model.interactions", spec, expected)
    for item in spec:
        names = item.split("*") if isinstance(item, str) else item
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n.strip() for n in names):
            v.fail("model.interactions", item, "each interaction as modalities joined by *, e.g. text*audio")
        names = [n.strip() for n in names]
        if len(names) < 2 or len(set(names)) != len(names):
            v.fail("model.interactions", item, "2 or more distinct modalities joined by *, e.g. text*audio")
    return list(spec)


def check_against_modalities(cfg: "Config", modalities: list[str], source: str) -> None:
    """Config keys that name modalities must name ones the dataset has (one-line ConfigError)."""
    have = ", ".join(modalities)
    for mod in cfg.model.encoders:
        if mod not in modalities:
            raise ConfigError(f"model.encoders.{mod}: no modality {mod!r} in {source} (it has {have})",
                              key=f"model.encoders.{mod}")
    spec = cfg.model.interactions
    if isinstance(spec, str) and spec.startswith("order<="):
        k = int(spec[len("order<="):])
        if k > len(modalities):
            raise ConfigError(f"model.interactions = {spec!r}: {source} has only {len(modalities)} modalities "
                              f"({have}); expected order<=k with k <= {len(modalities)}", key="model.interactions")
    if isinstance(spec, list):
        for item in spec:
            names = [n.strip() for n in (item.split("*") if isinstance(item, str) else item)]
            unknown = [n for n in names if n not in modalities]
            if unknown:
                raise ConfigError(f"model.interactions: {item!r} names modality {unknown[0]!r}, which {source} "
                                  f"does not have; expected modalities from {have}", key="model.interactions")


def flatten(d: dict | None, prefix: str = "") -> dict:
    """{"model": {"p": 1}} -> {"model.p": 1}; per-modality encoder options stay one value."""
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k != "encoders":
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


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
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; expected a YAML {what} file")
    if not path.is_file():
        raise ConfigError(f"{path}: {what} file not found")
    try:
        d = load_yaml(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; expected a YAML {what} file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a mapping with sections data/model/train, got {type(d).__name__}")
    d.pop("_meta", None)
    d.pop("description", None)
    return d


def preset_description(name: str) -> str:
    """The one-line ``description`` of a shipped preset (shown by ``--list-presets``)."""
    d = load_yaml((PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8")) or {}
    return str(d.get("description", ""))


def preset_dict(name: str) -> dict:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"--preset {name}: unknown preset; expected one of {', '.join(list_presets())}")
    return read_yaml(path, "preset")


def parse_value(raw: str) -> Any:
    """One ``--set`` value: YAML with numbers as numbers (``1e-3``, ``.5``, ``inf``); else the text."""
    if not raw.strip():
        return None
    try:
        return load_yaml(raw)
    except yaml.YAMLError:
        return raw


def parse_set(items: list[str] | None) -> dict:
    """``["model.p=1.5", "model.interactions=[text*audio]"]`` -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. model.p=1.5")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set {item!r}: expected a dotted key like train.epochs or model.p")
        node = out
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[:i + 1])} is already set to a value")
        node[parts[-1]] = parse_value(raw)
    return out


def _has_key(d: dict, dotted: str) -> bool:
    node: Any = d
    for part in dotted.split("."):
        if part == "lambda" and isinstance(node, dict) and "lam" in node and "lambda" not in node:
            part = "lam"
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def resolve_config(preset: str | None = None, config_file: str | None = None,
                   overrides: list[str] | None = None, extra: dict | None = None) -> Config:
    """Layer preset < config file < extra (e.g. CLI flags) < --set overrides.

    An error names the layer that set the bad key (``--set``, the file, the preset).
    """
    layers: list[tuple[str, dict]] = []
    if preset:
        layers.append((f"preset {preset}", preset_dict(preset)))
    if config_file:
        layers.append((str(config_file), read_yaml(config_file)))
    if extra:
        layers.append(("command line", extra))
    if overrides:
        layers.append(("--set", parse_set(overrides)))
    d: dict = {}
    for _, layer in layers:
        d = deep_merge(d, layer)
    if isinstance(d.get("model"), dict) and "lam" in d["model"]:
        d["model"]["lambda"] = d["model"].pop("lam")

    def origin(key: str) -> str:
        for name, layer in reversed(layers):
            if key and _has_key(layer, key):
                return name
        return layers[-1][0] if layers else "config"

    return Config.from_dict(d, source=origin)
