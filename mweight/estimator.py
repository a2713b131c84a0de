"""A small scikit-learn-style API around the model and the training loop.

>>> from mweight import MWeight
>>> est = MWeight(p=1.0, lam=0.02, epochs=20).fit("data/dna_additive.npz")  # doctest: +SKIP
>>> est.relevance_share_                                 # doctest: +SKIP
{'m1': 0.49, 'm2': 0.33, 'm3': 0.17, 'm4': 0.0, ...}

``__init__`` only stores parameters (any key of :class:`mweight.config.Config`'s
sections, e.g. ``p``, ``lam``, ``interactions``, ``norm``, ``epochs``, ``seed``), or a
whole ``config``. ``fit`` learns ``model_``, ``relevance_`` (raw beta),
``relevance_share_`` (beta normalised to sum 1), ``history_``, ``metrics_``.

``device`` (``cpu`` default | ``cuda`` | ``mps`` | ``auto``) and ``precision`` (``32`` |
``bf16`` | ``16``) are config keys too: ``MWeight(device="cuda", precision="bf16")`` trains
there, and predictions and contributions are computed there (in float32). ``model_`` itself
is kept on the CPU, so a fitted estimator pickles and saves the same anywhere.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .config import Config, DataConfig, ModelConfig, TrainConfig
from .data import Dataset, as_modality, carve_validation, infer_task, load_dataset, modality_tensor
from .devices import inference_on, resolve_device
from .errors import MWeightError
from .model import predict_tensors
from .runs import attribution, load_model, predictions_frame, save_model
from .train import FitResult, fit

_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
_KEY_SECTION = {f.name: sec for sec, klass in _SECTIONS.items() for f in dataclasses.fields(klass)}


class MWeight:
    """Interpretable multimodal model: MNL relevance per block, vBN/IterBN interactions."""

    def __init__(self, config: Config | dict | None = None, **params: Any):
        self.config = config
        self.params = params

    # -- configuration ----------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        return {"config": self.config, **self.params}

    def set_params(self, **params) -> "MWeight":
        if "config" in params:
            self.config = params.pop("config")
        self.params.update(params)
        return self

    def resolved_config(self) -> Config:
        base = self.config
        d = base.to_dict() if isinstance(base, Config) else dict(base or {})
        d = {k: dict(v) for k, v in d.items()}
        for key, value in self.params.items():
            k = "lam" if key == "lambda" else key
            if k not in _KEY_SECTION:
                raise MWeightError(f"MWeight({key}=...): unknown parameter; expected a key of data/model/train, "
                                   f"e.g. p, lam, interactions, norm, epochs, seed")
            sec = _KEY_SECTION[k]
            d.setdefault(sec, {})["lambda" if k == "lam" else k] = value
        return Config.from_dict(d, source="MWeight parameters")

    # -- fitting ----------------------------------------------------------
    def _dataset(self, X, y=None, split=None, lengths=None, ids=None, cfg: Config | None = None) -> Dataset:
        if isinstance(X, Dataset):
            return X
        if isinstance(X, (str, Path)):
            return load_dataset(X, cfg.data.split_key, cfg.data.modalities, cfg.data.task)
        if not isinstance(X, dict):
            raise MWeightError("X: expected a dict {modality: array}, a Dataset or a path to a .npz dataset")
        if y is None:
            raise MWeightError("y: labels are required when X is a dict of arrays")
        y = np.asarray(y)
        n = len(y)
        mods = {m: as_modality(np.asarray(a)) for m, a in X.items()}  # the rule load_dataset applies
        for m, a in mods.items():
            if len(a) != n:
                raise MWeightError(f"X[{m!r}]: {len(a)} rows; expected {n} (as y)")
        task = cfg.data.task if cfg and cfg.data.task != "auto" else infer_task(y)
        split_arr = np.asarray(split) if split is not None else np.array(["train"] * n)
        ds = Dataset(modalities=mods, label=y.astype(np.float32 if task == "regression" else np.int64),
                     split=split_arr.astype(str), id=np.asarray(ids if ids is not None else np.arange(n)).astype(str),
                     lengths={m: np.asarray(v) for m, v in (lengths or {}).items()}, task=task)
        return ds

    def fit(self, X, y=None, *, split=None, lengths=None, ids=None, run_dir=None) -> "MWeight":
        """Fit on a dataset (path or :class:`Dataset`), or on ``X={modality: array}`` and ``y``.

        ``split`` (train/valid/test per sample) is optional for arrays: without a
        'valid' part, a validation set is carved from train (``valid_fraction``).
        """
        cfg = self.resolved_config()
        ds = self._dataset(X, y, split, lengths, ids, cfg)
        ds, _ = carve_validation(ds, cfg.data.valid_fraction, cfg.data.valid_seed)
        with inference_on(cfg.train.device):  # fails here, in one line, if the device is absent
            result: FitResult = fit(ds, cfg, run_dir=run_dir)
            self._fitted_attribution(result, ds, cfg)
        return self

    def _fitted_attribution(self, result: FitResult, ds: Dataset, cfg: Config) -> None:
        self.config_ = cfg
        self.task_ = ds.task
        self.model_ = result.model
        self.modalities_ = list(ds.names)
        self.blocks_ = list(result.model.block_names)
        self.relevance_ = result.beta
        self.relevance_share_ = result.share
        self.history_ = pd.DataFrame(result.history)
        self.metrics_ = result.metrics
        self.best_epoch_ = result.best_epoch
        # p-independent attribution on every split (docs/method.md); its baseline (the
        # training-mean contribution of each block) also serves contributions() on new data
        self.attribution_, _ = attribution(result.model, ds, cfg, result.best_epoch, result.beta, result.share)
        self.baseline_ = self.attribution_["baseline_values"]
        self.contribution_share_ = {b: v["contribution_share"] for b, v in self.attribution_["blocks"].items()}
        self.shapley_share_ = {m: v["shapley_share"] for m, v in self.attribution_["modalities"].items()}

    # -- inference --------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise MWeightError("this MWeight is not fitted yet; call fit(...) first")

    def _tensors(self, X, lengths=None):
        if isinstance(X, (str, Path)):
            X = load_dataset(X, self.config_.data.split_key, self.modalities_, self.task_)
        if isinstance(X, Dataset):
            X, lengths = X.modalities, X.lengths
        missing = [m for m in self.modalities_ if m not in X]
        if missing:
            raise MWeightError(f"X: missing modality {missing[0]!r}; the model uses {', '.join(self.modalities_)}")
        inputs = {m: modality_tensor(as_modality(np.asarray(X[m]))) for m in self.modalities_}
        lens = {m: torch.as_tensor(np.asarray(v), dtype=torch.long) for m, v in (lengths or {}).items()
                if m in self.modalities_}
        return inputs, lens

    def decision_function(self, X, lengths=None) -> np.ndarray:
        self._check_fitted()
        pred, _ = predict_tensors(self.model_, *self._tensors(X, lengths), device=self.config_.train.device)
        return pred[:, 0] if pred.shape[1] == 1 else pred

    def predict(self, X, lengths=None) -> np.ndarray:
        out = self.decision_function(X, lengths)
        return out if out.ndim == 1 else out.argmax(axis=1)

    def predict_proba(self, X, lengths=None) -> np.ndarray:
        if self.task_ != "classification":
            raise MWeightError("predict_proba is for classification; this model does regression")
        return torch.softmax(torch.as_tensor(self.decision_function(X, lengths)), dim=1).numpy()

    def contributions(self, X, lengths=None) -> pd.DataFrame:
        """One row per sample: a column per block (W_S z_S(x)), ``bias`` and ``prediction``.

        The block columns plus ``bias`` sum to ``prediction`` exactly (for
        classification: to ``score``, the logit of the predicted class).
        """
        self._check_fitted()
        inputs, lens = self._tensors(X, lengths)
        n = next(iter(inputs.values())).shape[0]
        ds = Dataset(modalities={m: v.numpy() for m, v in inputs.items()},
                     label=np.zeros(n, np.float32 if self.task_ == "regression" else np.int64),
                     split=np.array(["test"] * n), id=np.arange(n).astype(str),
                     lengths={m: v.numpy() for m, v in lens.items()}, task=self.task_)
        with inference_on(self.config_.train.device):
            df = predictions_frame(self.model_, ds, getattr(self, "baseline_", None)).drop(
                columns=["id", "split", "label"])
        cols = [b for b in self.blocks_] + ["bias"] + [c for c in ("score", "prediction") if c in df]
        return df[cols + [c for c in df if c.startswith("shapley_")]]

    def score(self, X, y, lengths=None) -> float:
        """R^2 for regression, accuracy for classification (scikit-learn's convention)."""
        from sklearn.metrics import accuracy_score, r2_score

        pred = self.predict(X, lengths)
        return float(r2_score(y, pred) if self.task_ == "regression" else accuracy_score(y, pred))

    # -- persistence ------------------------------------------------------
    def save(self, path: str | Path) -> None:
        self._check_fitted()
        save_model(path, self.model_, self.config_, self.task_)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "MWeight":
        """A saved model, predicting on ``device`` (default cpu, whatever device it was trained on)."""
        model, cfg, task = load_model(path)
        resolve_device(device, key="MWeight.load(device=...)")  # an absent device: one line, now
        cfg.train.device = device
        est = cls(config=cfg)
        est.config_, est.task_, est.model_ = cfg, task, model
        est.modalities_ = list(model.modalities)
        est.blocks_ = list(model.block_names)
        beta = model.relevance()
        from .relevance import shares

        est.relevance_ = {b: float(v) for b, v in zip(model.block_names, beta)}
        est.relevance_share_ = {b: float(v) for b, v in zip(model.block_names, shares(beta))}
        return est
