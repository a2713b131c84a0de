"""The training loop (the one and only; ``mweight train``, the estimator, repro and sweeps call it).

AdamW with grad-norm clipping and exponential LR decay; the MNL penalty on the
final layer; early stopping on the validation split; seeded and deterministic on
CPU; resumable from an atomically written checkpoint; a NaN/inf loss stops the
run and keeps the last good checkpoint. ``train.device`` / ``train.precision``
(mweight/devices.py): the data go to the device once, before the first epoch; the
model comes back on the CPU and checkpoints hold CPU tensors, so runs load anywhere.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .config import Config
from .devices import autocast, check_precision, grad_scaler, model_to, resolve_device, tensors_to, to_cpu
from .data import Dataset, to_tensors  # noqa: F401  (re-exported: importers predate the move)
from .errors import MWeightError, TrainingDiverged
from .fileio import load_torch, save_torch
from .metrics import METRIC_MODES, compute_metrics, select_metric
from .model import MWeightNet, make_shapes, predict_tensors  # noqa: F401  (re-exported)
from .relevance import shares

CHECKPOINT = "checkpoint.pt"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def build_model(ds: Dataset, cfg: Config) -> MWeightNet:
    out_dim = int(ds.label.max()) + 1 if ds.task == "classification" else 1
    model = MWeightNet(make_shapes(ds.modalities), out_dim, cfg.model, standardize=cfg.data.standardize)
    train = ds.part("train")
    for m, norm in model.input_norms.items():
        norm.fit(train.modalities[m], train.lengths.get(m))
    return model


def loss_fn(cfg: Config, task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    kind = cfg.train.loss
    if kind == "auto":
        kind = "ce" if task == "classification" else "l1"
    if kind == "ce":
        if task != "classification":
            raise MWeightError("train.loss = ce needs integer class labels (data.task classification)")
        return nn.CrossEntropyLoss()
    if task == "classification":
        raise MWeightError(f"train.loss = {kind} is a regression loss; classification uses ce")
    base = nn.L1Loss() if kind == "l1" else nn.MSELoss()
    return lambda pred, y: base(pred[:, 0], y)


def prediction_values(pred: np.ndarray, task: str) -> np.ndarray:
    return pred[:, 0] if task == "regression" else pred


def evaluate_split(model: MWeightNet, tensors, ds_part: Dataset, task: str, lossf=None) -> dict:
    inputs, lengths, y = tensors
    if len(y) == 0:
        return {}
    pred, _ = predict_tensors(model, inputs, lengths)
    metrics = compute_metrics(prediction_values(pred, task), ds_part.label, task)
    if lossf is not None:
        metrics["loss"] = float(lossf(torch.as_tensor(pred), y.cpu()))
    return metrics


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> None:
    """``nn.utils.clip_grad_norm_`` (same arithmetic) without its per-call grouping overhead."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    torch._foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp(max=1.0))


def selection_metric(cfg: Config, task: str) -> tuple[str, str]:
    """The validation metric that picks the checkpoint (and drives early stopping)."""
    choice = cfg.train.select
    if choice == "auto":
        return select_metric(task)
    if choice not in METRIC_MODES:
        raise MWeightError(f"train.select = {choice!r}; expected auto or one of {', '.join(METRIC_MODES)}")
    return choice, METRIC_MODES[choice]


@dataclass
class FitResult:
    model: MWeightNet
    history: list[dict]
    best_epoch: int
    metrics: dict  # {"valid": {...}, "test": {...}, "train": {...}}
    beta: dict[str, float]
    share: dict[str, float]
    seconds: float = 0.0
    samples_per_second: float = 0.0
    extra: dict = field(default_factory=dict)


def relevance_dicts(model: MWeightNet) -> tuple[dict[str, float], dict[str, float]]:
    beta = model.relevance()
    share = shares(beta)
    return ({b: float(v) for b, v in zip(model.block_names, beta)},
            {b: float(v) for b, v in zip(model.block_names, share)})


def fit(ds: Dataset, cfg: Config, run_dir: str | Path | None = None, resume: bool = False,
        on_epoch: Callable[[dict], None] | None = None, max_epochs: int | None = None) -> FitResult:
    """Train on ``ds`` ('train' part), select on 'valid', report 'train'/'valid'/'test'.

    With ``run_dir``, a checkpoint is written atomically after every epoch, and
    ``resume=True`` continues from it to the same result as an uninterrupted run.
    ``on_epoch`` receives each history row (used by progress displays and sweeps).
    ``max_epochs`` stops early after that many epochs (for tests of resuming).
    With ``train.restarts: K > 1`` the seed trains K initialisations (restart k uses
    init seed ``seed + 1000003 k``; the data order is the seed's) and keeps the one with
    the lowest validation loss at its selected epoch; each restart checkpoints into
    ``run_dir/restart_<k>/`` and all are recorded in ``extra["restarts"]``.
    After selection the model is calibrated on the training split (:meth:`MWeightNet.calibrate`)
    unless that raises its validation loss (:func:`_calibrate`; recorded in ``extra["calibration"]``).
    """
    t_cfg = cfg.train
    if t_cfg.threads:
        torch.set_num_threads(t_cfg.threads)
    task = ds.task
    parts = {s: ds.part(s) for s in ("train", "valid", "test")}
    if len(parts["train"]) < 2:
        raise MWeightError(f"{ds.path}: split {ds.split_key!r} has {len(parts['train'])} train samples; need at least 2")
    if len(parts["valid"]) == 0:
        raise MWeightError(f"{ds.path}: split {ds.split_key!r} has no 'valid' samples (needed for model selection)")
    device = resolve_device(t_cfg.device)
    check_precision(t_cfg.precision, device)
    # Moved to the device once here, not per step (a no-op on the CPU).
    tensors = {s: _tensors_on(to_tensors(p), device) for s, p in parts.items()}
    lossf = loss_fn(cfg, task)
    k_total = int(getattr(t_cfg, "restarts", 1) or 1)
    runs, records = [], []
    for k in range(k_total):
        sub = None
        if run_dir is not None:
            sub = Path(run_dir) if k_total == 1 else Path(run_dir) / f"restart_{k}"
            if k_total > 1:
                sub.mkdir(parents=True, exist_ok=True)
        one = _fit_once(ds, cfg, parts, tensors, lossf, init_seed=t_cfg.seed + 1000003 * k, ckpt_dir=sub,
                        resume=resume, on_epoch=on_epoch, max_epochs=max_epochs, device=device)
        runs.append(one)
        records.append({"restart": k, "init_seed": t_cfg.seed + 1000003 * k, "best_epoch": one["best_epoch"],
                        "epochs_run": len(one["history"]), "valid_loss": one["best_loss"],
                        "valid_score": one["best_score_value"]})
    best = min(range(k_total), key=lambda i: (runs[i]["best_loss"], i)) if k_total > 1 else 0
    chosen = runs[best]
    model = chosen["model"]
    if chosen["best_state"] is not None:
        model.load_state_dict(chosen["best_state"])
    calibration = _calibrate(model, tensors, parts["valid"], task, lossf, chosen["best_loss"])
    metrics = {s: evaluate_split(model, tensors[s], parts[s], task, lossf) for s in ("train", "valid", "test")}
    model.cpu()  # the fitted model is returned (and saved) on the CPU: it loads on any machine
    beta, share = relevance_dicts(model)
    seconds = sum(r["seconds"] for r in runs)
    seen = sum(r["seen"] for r in runs)
    extra = {"stopped_early": chosen["stopped"], "epochs_run": len(chosen["history"])}
    if calibration:
        extra["calibration"] = calibration
    if k_total > 1:
        extra["restarts"] = records
        extra["restart_chosen"] = best
    return FitResult(model=model, history=chosen["history"], best_epoch=chosen["best_epoch"], metrics=metrics,
                     beta=beta, share=share, seconds=seconds,
                     samples_per_second=seen / seconds if seconds > 0 else 0.0, extra=extra)


# Calibration may raise the validation loss by at most this fraction (noise of recomputing
# statistics), otherwise the selected checkpoint is kept as validated.
CALIBRATION_TOLERANCE = 0.01


def _calibrate(model: MWeightNet, tensors: dict, valid_part: Dataset, task: str, lossf,
               valid_loss: float) -> dict:
    """Calibrate the selected checkpoint on the training split (:meth:`MWeightNet.calibrate`),
    unless that makes it a worse model on the validation split.

    Calibration replaces the running statistics the final layer was trained with by exact
    ones, so it changes the function that was validated: by little once training has
    settled (validation loss -0.3% after 30 epochs in tests/test_calibration.py), more while
    the weights still move (+2.5% after 15 epochs, +4% after 6 on the same data; on XOR, at
    the epoch where training left its saddle, validation accuracy 0.76 against 0.99).
    Returns what happened (empty when the model has nothing to calibrate).
    """
    if not model.fusion.calibration_stages():
        return {}
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.calibrate(tensors["train"][0], tensors["train"][1])
    after = evaluate_split(model, tensors["valid"], valid_part, task, lossf).get("loss", math.inf)
    kept = math.isfinite(after) and after <= valid_loss + CALIBRATION_TOLERANCE * abs(valid_loss)
    if not kept:
        model.load_state_dict(before)
    return {"calibrated": bool(kept), "valid_loss_selected": float(valid_loss), "valid_loss_calibrated": float(after)}


def _tensors_on(tensors: tuple, device: torch.device) -> tuple:
    inputs, lengths, y = tensors
    return tensors_to(inputs, device), tensors_to(lengths, device), y.to(device)


def _better(score: float, loss: float, best_score: float, best_loss: float, tol: float = 1e-12) -> bool:
    """Lower score wins; a tie (within ``tol``) goes to the lower validation loss."""
    if score < best_score - tol:
        return True
    return abs(score - best_score) <= tol and loss < best_loss


def _fit_once(ds: Dataset, cfg: Config, parts: dict, tensors: dict, lossf, init_seed: int,
              ckpt_dir: Path | None, resume: bool, on_epoch, max_epochs,
              device: torch.device = torch.device("cpu")) -> dict:
    """One initialisation: the training loop with early stopping; returns the selected state."""
    t_cfg = cfg.train
    task = ds.task
    precision = check_precision(t_cfg.precision, device)
    seed_everything(init_seed)
    model = model_to(build_model(ds, cfg), device)
    metric_name, mode = selection_metric(cfg, task)

    final_params = [model.final.weight]
    no_decay = {id(model.final.weight), id(model.final.bias)}
    if model.beta is not None:
        no_decay.add(id(model.beta))
    decay = [p for p in model.parameters() if id(p) not in no_decay and p.dim() > 1]
    other = [p for p in model.parameters() if id(p) not in no_decay and p.dim() <= 1]
    opt = torch.optim.AdamW([
        {"params": decay, "weight_decay": t_cfg.weight_decay},
        # no decay: vectors, the bias, and the final layer's weights (penalised by MNL instead)
        {"params": other + [model.final.bias] + final_params, "weight_decay": 0.0},
    ], lr=t_cfg.lr, fused=device.type in ("cpu", "cuda"))  # fused: one kernel per group, not several per tensor (much faster on CPU)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=t_cfg.lr_decay)
    clip_params = [p for p in model.parameters() if p is not model.beta]
    scaler = grad_scaler(device, precision)  # float16 on CUDA only; None otherwise

    gen = torch.Generator().manual_seed(t_cfg.seed)
    history: list[dict] = []
    best_state, best_score, best_loss, best_epoch, bad_epochs, start_epoch = None, math.inf, math.inf, 0, 0, 0
    best_value = math.nan
    ckpt_path = Path(ckpt_dir) / CHECKPOINT if ckpt_dir else None
    if resume and ckpt_path is not None and ckpt_path.exists():
        ck = load_torch(ckpt_path)  # CPU tensors (map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["rng_torch"])
        if device.type == "cuda" and ck.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ck["rng_cuda"], device)
        if scaler is not None and ck.get("grad_scaler"):
            scaler.load_state_dict(ck["grad_scaler"])
        gen.set_state(ck["rng_shuffle"])
        history = list(ck["history"])
        best_state, best_score = ck["best_state"], ck["best_score"]
        best_loss, best_value = ck.get("best_loss", math.inf), ck.get("best_value", math.nan)
        best_epoch, bad_epochs, start_epoch = ck["best_epoch"], ck["bad_epochs"], ck["epoch"]

    inputs, lengths, y = tensors["train"]
    n = len(y)
    bs = t_cfg.batch_size
    # Drop a trailing batch of size 1: BatchNorm cannot use it.
    n_batches = n // bs + (1 if n % bs > 1 else 0)
    progress = None
    if t_cfg.progress:
        from tqdm.auto import tqdm

        progress = tqdm(total=t_cfg.epochs, initial=start_epoch, desc="train", unit="epoch",
                        leave=False, dynamic_ncols=True)
    t0 = time.perf_counter()
    seen = 0
    stopped = bad_epochs >= t_cfg.patience
    try:
        for epoch in range(start_epoch, t_cfg.epochs):
            if stopped or (max_epochs is not None and epoch >= max_epochs):
                break
            model.train()
            perm = torch.randperm(n, generator=gen).to(device)  # the CPU generator: same order on any device
            # Gather the epoch's shuffled order once; batches are then contiguous views.
            ep_inputs = {m: x.index_select(0, perm) for m, x in inputs.items()}
            ep_lengths = {m: v.index_select(0, perm) for m, v in lengths.items()}
            ep_y = y.index_select(0, perm)
            # Per-batch losses stay tensors: no Python sync per step.
            batch_losses = torch.zeros(n_batches, 2, device=device)
            for b in range(n_batches):
                sl = slice(b * bs, (b + 1) * bs)
                yb = ep_y[sl]
                with autocast(device, precision):
                    out = model({m: x[sl] for m, x in ep_inputs.items()}, {m: v[sl] for m, v in ep_lengths.items()})
                loss = lossf(out.prediction.float(), yb)  # the loss in float32 whatever the autocast
                pen = model.penalty()
                total = loss + pen
                if not bool(torch.isfinite(total)):
                    raise TrainingDiverged(
                        f"loss became {float(total.detach())} at epoch {epoch + 1}, batch {b + 1}; "
                        "try a smaller train.lr or model.lambda (the last good checkpoint is kept)")
                opt.zero_grad(set_to_none=True)
                if scaler is None:
                    total.backward()
                    clip_grad_norm(clip_params, t_cfg.grad_clip)
                    opt.step()
                else:  # float16: scaled backward, clipping on the unscaled gradients
                    scaler.scale(total).backward()
                    scaler.unscale_(opt)
                    clip_grad_norm(clip_params, t_cfg.grad_clip)
                    scaler.step(opt)
                    scaler.update()
                if model.beta is not None:
                    model.beta_step(t_cfg.beta_lr)
                batch_losses[b, 0] = loss.detach() * len(yb)
                batch_losses[b, 1] = pen.detach() * len(yb)
                seen += len(yb)
            tot_loss, tot_pen = (float(v) for v in batch_losses.sum(0))
            sched.step()
            valid = evaluate_split(model, tensors["valid"], parts["valid"], task, lossf)
            beta, share = relevance_dicts(model)
            row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"] / t_cfg.lr_decay,
                   "train_loss": tot_loss / n, "train_penalty": tot_pen / n,
                   **{f"valid_{k}": v for k, v in valid.items()},
                   **{f"beta_{k}": v for k, v in beta.items()}, **{f"share_{k}": v for k, v in share.items()}}
            score = valid[metric_name] if mode == "min" else -valid[metric_name]
            if not math.isfinite(score):
                score = math.inf
            vloss = valid.get("loss", math.inf)
            if not math.isfinite(vloss):
                vloss = math.inf
            if best_state is None or _better(score, vloss, best_score, best_loss):
                best_score, best_loss, best_epoch, bad_epochs = score, vloss, epoch + 1, 0
                best_value = valid[metric_name]
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
            row["best_epoch"] = best_epoch
            history.append(row)
            stopped = bad_epochs >= t_cfg.patience
            if ckpt_path is not None:
                ck = {
                    "epoch": epoch + 1, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "rng_torch": torch.get_rng_state(),
                    "rng_shuffle": gen.get_state(), "history": history, "best_state": best_state,
                    "best_score": best_score, "best_loss": best_loss, "best_value": best_value,
                    "best_epoch": best_epoch, "bad_epochs": bad_epochs,
                }
                if device.type == "cuda":
                    ck["rng_cuda"] = torch.cuda.get_rng_state(device)
                if scaler is not None:
                    ck["grad_scaler"] = scaler.state_dict()
                save_torch(ckpt_path, ck if device.type == "cpu" else to_cpu(ck))  # loadable on any machine
            if on_epoch is not None:
                on_epoch(row)
            if progress is not None:
                progress.update(1)
                progress.set_postfix({"loss": f"{row['train_loss']:.3f}",
                                      f"valid_{metric_name}": f"{valid[metric_name]:.3f}", "best": best_epoch})
    finally:
        if progress is not None:
            progress.close()
    return {"model": model, "history": history, "best_state": best_state, "best_epoch": best_epoch,
            "best_loss": best_loss, "best_score_value": best_value, "stopped": stopped,
            "seconds": time.perf_counter() - t0, "seen": seen}
