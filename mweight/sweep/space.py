"""The search-space language of ``mweight sweep`` (no Ray needed to parse and check a space).

A *search space* is a YAML mapping from dotted config keys to values::

    model.p: [1, 1.5, 2]                      # a list: grid over these values
    model.lambda: loguniform(1e-4, 1e-1)      # a function: drawn at random per sample
    model.interactions: [[], [text*audio], all]
    model.norm: [none, vbn, iterbn]
    train.epochs: 30                          # a scalar: fixed for every trial
    sweep: {samples: 4, scheduler: asha, grace_period: 3, reduction_factor: 3, seed: 0}

Functions: ``uniform(a, b)``, ``loguniform(a, b)``, ``quniform(a, b, q)``,
``qloguniform(a, b, q)``, ``randint(a, b)`` and ``lograndint(a, b)`` (integers
``a .. b-1``, as in Ray Tune), ``choice(x, y, ...)``. To fix a key to a list value,
wrap it: ``model.interactions: [[text*audio]]``.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import Config, deep_merge
from ..errors import MWeightError

SECTIONS = ("data", "model", "train")
SETTINGS_KEY = "sweep"
SETTINGS_DEFAULTS = {"samples": 1, "scheduler": "asha", "grace_period": None, "reduction_factor": 3, "seed": 0}
FUNCTIONS = {  # name -> (number of arguments, Ray Tune constructor name)
    "uniform": (2, "uniform"), "loguniform": (2, "loguniform"), "quniform": (3, "quniform"),
    "qloguniform": (3, "qloguniform"), "randint": (2, "randint"), "lograndint": (2, "lograndint"),
    "choice": (None, "choice"),
}
_FUNC_RE = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.S)


@dataclass
class Grid:
    values: list


@dataclass
class Func:
    name: str
    args: list

    def text(self) -> str:
        return f"{self.name}({', '.join(map(str, self.args))})"

    def ray_domain(self):
        from ray import tune

        ctor = getattr(tune, FUNCTIONS[self.name][1])
        return ctor(list(self.args)) if self.name == "choice" else ctor(*self.args)

    def example(self):
        return self.args[0]

    @property
    def log(self) -> bool:
        return self.name in ("loguniform", "qloguniform", "lograndint")


@dataclass
class Space:
    """Parsed search space: ``params`` (dotted key -> Grid | Func | fixed value) and sweep settings."""

    params: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=lambda: dict(SETTINGS_DEFAULTS))
    source: str = "space"

    @property
    def searched(self) -> list[str]:
        return [k for k, v in self.params.items() if isinstance(v, (Grid, Func))]

    @property
    def has_random(self) -> bool:
        return any(isinstance(v, Func) for v in self.params.values())

    def describe(self) -> dict:
        out = {}
        for k, v in self.params.items():
            out[k] = {"grid": v.values} if isinstance(v, Grid) else v.text() if isinstance(v, Func) else {"fixed": v}
        return out


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and key.count(".") < 1:  # a section: data/model/train
            out.update(_flatten(v, key))
        elif isinstance(v, dict) and not key.startswith("model.encoders"):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def unflatten(flat: dict) -> dict:
    """``{"model.p": 1.5}`` -> ``{"model": {"p": 1.5}}``."""
    out: dict = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = copy.deepcopy(value)
    return out


def _number(a: Any) -> Any:
    if isinstance(a, str):
        for kind in (int, float):
            try:
                return kind(a)
            except ValueError:
                pass
    return a


def _parse_func(key: str, text: str, source: str) -> Func:
    m = _FUNC_RE.match(text)
    name, inner = m.group(1), m.group(2)
    if name not in FUNCTIONS:
        raise MWeightError(f"{source}: {key}: unknown function {name}(); expected one of "
                           f"{', '.join(f + '()' for f in FUNCTIONS)} or a list of values")
    try:
        args = yaml.safe_load(f"[{inner}]")
    except yaml.YAMLError:
        raise MWeightError(f"{source}: {key}: cannot read the arguments of {text!r}") from None
    n_args = FUNCTIONS[name][0]
    if name != "choice":  # PyYAML reads 1e-4 (no dot) as a string
        args = [_number(a) for a in args]
    if name == "choice":
        if len(args) == 1 and isinstance(args[0], list):
            args = args[0]
        if len(args) < 1:
            raise MWeightError(f"{source}: {key}: choice() needs at least one value")
        return Func(name, args)
    if len(args) != n_args or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        shown = "a, b, q" if n_args == 3 else "a, b"
        raise MWeightError(f"{source}: {key}: {text.strip()}: expected {name}({shown}) with numbers")
    low, high = args[0], args[1]
    if not low < high:
        raise MWeightError(f"{source}: {key}: {text.strip()}: expected low < high")
    if name in ("loguniform", "qloguniform", "lograndint") and low <= 0:
        raise MWeightError(f"{source}: {key}: {text.strip()}: a log scale needs low > 0")
    if name in ("randint", "lograndint") and not all(isinstance(a, int) for a in args):
        raise MWeightError(f"{source}: {key}: {text.strip()}: expected integer bounds")
    return Func(name, args)


def parse_space(raw: dict, source: str = "space") -> Space:
    """A YAML mapping (already loaded) -> :class:`Space`; errors name the file and the key."""
    if not isinstance(raw, dict) or not raw:
        raise MWeightError(f"{source}: expected a mapping of config keys, e.g. 'model.p: [1, 2]'")
    raw = dict(raw)
    settings = dict(SETTINGS_DEFAULTS)
    user_settings = raw.pop(SETTINGS_KEY, None) or {}
    if not isinstance(user_settings, dict):
        raise MWeightError(f"{source}: {SETTINGS_KEY}: expected a mapping ({', '.join(SETTINGS_DEFAULTS)})")
    bad = sorted(set(user_settings) - set(SETTINGS_DEFAULTS))
    if bad:
        raise MWeightError(f"{source}: {SETTINGS_KEY}.{bad[0]}: unknown setting; expected one of "
                           f"{', '.join(SETTINGS_DEFAULTS)}")
    settings.update(user_settings)
    params: dict[str, Any] = {}
    for key, value in _flatten(raw).items():
        if key.split(".")[0] not in SECTIONS or "." not in key:
            raise MWeightError(f"{source}: {key}: expected a dotted config key starting with data., model. or "
                               f"train. (or the '{SETTINGS_KEY}:' settings)")
        if key == "data.path":
            raise MWeightError(f"{source}: data.path: the dataset is given with --data, not searched")
        if isinstance(value, list):
            if not value:
                raise MWeightError(f"{source}: {key}: empty list; expected at least one value")
            params[key] = Grid(list(value))
        elif isinstance(value, str) and _FUNC_RE.match(value):
            params[key] = _parse_func(key, value, source)
        else:
            params[key] = value
    _check_settings(settings, source)
    return Space(params=params, settings=settings, source=source)


def _check_settings(s: dict, source: str) -> None:
    checks = [
        (isinstance(s["samples"], int) and s["samples"] >= 1, "samples", "an integer >= 1"),
        (s["scheduler"] in ("asha", "none"), "scheduler", "asha | none"),
        (s["grace_period"] is None or (isinstance(s["grace_period"], int) and s["grace_period"] >= 1),
         "grace_period", "an integer >= 1 (epochs)"),
        (isinstance(s["reduction_factor"], (int, float)) and s["reduction_factor"] > 1, "reduction_factor",
         "a number > 1"),
        (isinstance(s["seed"], int), "seed", "an integer"),
    ]
    for ok, key, expected in checks:
        if not ok:
            raise MWeightError(f"{source}: {SETTINGS_KEY}.{key} = {s[key]!r}; expected {expected}")


def load_space(path: str | Path) -> Space:
    path = Path(path)
    if not path.is_file():
        raise MWeightError(f"{path}: search space file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MWeightError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if isinstance(raw, dict):
        raw.pop("description", None)
    return parse_space(raw, source=str(path))


def validate_space(space: Space, base: dict) -> None:
    """Every searched/fixed value must make a valid config (checked before any trial starts)."""
    for key, spec in space.params.items():
        values = spec.values if isinstance(spec, Grid) else [spec.example()] if isinstance(spec, Func) else [spec]
        if isinstance(spec, Func) and spec.name == "choice":
            values = spec.args
        for v in values:
            Config.from_dict(deep_merge(base, unflatten({key: v})), source=space.source)
