"""Where the numbers are computed: the device (cpu | cuda | mps) and the training precision.

``train.device`` / ``--device``: ``cpu`` is the default because it is deterministic
(same seed, same numbers, bit for bit); ``auto`` takes CUDA if present, else Apple's
MPS, else the CPU. Asking for a device the machine lacks is a one-line error (exit 2),
never a silent fall-back to the CPU.

``train.precision``: ``32`` (default), ``bf16`` (autocast to bfloat16; CPU or GPU) or
``16`` (autocast to float16 with loss scaling; CUDA only: float16 has too few exponent
bits to train without a GradScaler, and loss scaling is a CUDA feature). Autocast is for
the training steps only; predictions, contributions and calibration are computed in
float32, so block contributions still add up to the prediction exactly.

The allowed names live in :mod:`mweight.config` (``DEVICES``, ``PRECISIONS``; no torch there).
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterable

from .config import DEVICES, PRECISIONS
from .errors import MWeightError

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch is imported inside the functions, not here: the commands import this module to build
# their parsers (add_device_argument), and ``mweight --help`` should not wait for torch.

# Set by the commands' --device (``use_device``): the device predict_tensors moves a model
# and its inputs to when the caller names none. None = wherever the model already is.
_inference_device: torch.device | None = None


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device | None = "cpu", key: str = "train.device") -> torch.device:
    """``auto | cpu | cuda | mps`` (or a torch.device) -> a device that exists here, or one-line MWeightError."""
    import torch

    if isinstance(name, torch.device):
        name = name.type if name.index is None else f"{name.type}:{name.index}"
    name = "cpu" if name is None else str(name)
    kind = name.split(":", 1)[0]
    if kind not in DEVICES:
        raise MWeightError(f"{key} = {name!r}; expected {' | '.join(DEVICES)}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        why = "no CUDA device is visible" if torch.backends.cuda.is_built() else \
            f"this torch {torch.__version__} is a CPU-only build"
        raise MWeightError(f"{key} = {name!r}: CUDA is not available on this machine ({why}); "
                           "use cpu, or auto to take a GPU only where there is one")
    if kind == "mps" and not mps_available():
        raise MWeightError(f"{key} = {name!r}: Apple MPS is not available on this machine; use cpu or auto")
    return torch.device(name)


def check_precision(precision, device: torch.device, key: str = "train.precision") -> str:
    """The precision as ``"32" | "bf16" | "16"``; float16 is refused off CUDA (one line)."""
    p = str(precision)
    if p not in PRECISIONS:
        raise MWeightError(f"{key} = {precision!r}; expected {' | '.join(PRECISIONS)}")
    if p == "16" and device.type != "cuda":
        raise MWeightError(f"{key} = 16 needs CUDA (float16 training relies on CUDA loss scaling); "
                           f"on {device.type} use bf16 or 32")
    return p


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The forward pass's autocast context (a no-op at 32)."""
    import torch

    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """Loss scaling for float16 on CUDA; None otherwise (bf16 has float32's exponent range)."""
    import torch

    if precision == "16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def model_to(model: nn.Module, device: torch.device) -> nn.Module:
    """Move a model with its buffers. MPS has no float64: the exact float64 moments of the
    anova residualisers (norm.py) become float32 there (the one device where they are not exact)."""
    import torch

    if device.type == "mps":
        for mod in model.modules():
            for k, b in mod._buffers.items():
                if b is not None and b.dtype == torch.float64:
                    mod._buffers[k] = b.float()
    return model.to(device)


def tensors_to(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A modality-keyed dict of tensors on ``device`` (no copy when they are already there)."""
    return {k: v.to(device) for k, v in tensors.items()}


def to_cpu(obj):
    """Tensors anywhere in a nested dict/list -> CPU (checkpoints stay loadable on any machine)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def model_device(model: nn.Module) -> torch.device:
    import torch

    for t in _tensors_of(model):
        return t.device
    return torch.device("cpu")


def _tensors_of(model: nn.Module) -> Iterable[torch.Tensor]:
    yield from model.parameters()
    yield from model.buffers()


def use_device(name: str | None) -> torch.device | None:
    """The commands' ``--device``: resolve it (one-line error if absent) and make it the device
    inference runs on (:func:`mweight.model.predict_tensors`). ``None`` leaves things as they are."""
    global _inference_device
    if name is None:
        return None
    _inference_device = resolve_device(name, key="--device")
    return _inference_device


def inference_device(model: nn.Module) -> torch.device:
    """Where to predict: the --device chosen for this process, else where the model is."""
    return _inference_device if _inference_device is not None else model_device(model)


@contextlib.contextmanager
def inference_on(name: str | torch.device | None):
    """Within the block, :func:`mweight.model.predict_tensors` runs on this device (the estimator's
    ``device=``); the previous choice is restored after."""
    global _inference_device
    before = _inference_device
    _inference_device = None if name is None else resolve_device(name)
    try:
        yield _inference_device
    finally:
        _inference_device = before


def add_device_argument(parser) -> None:
    """``--device`` for a command (one definition; the help names the default)."""
    parser.add_argument("--device", choices=DEVICES, default=None, metavar="|".join(DEVICES),
                        help="where to compute: cpu (the default; deterministic), cuda, mps, or auto (cuda, "
                             "else mps, else cpu); sets train.device when training; a device this machine "
                             "lacks is a one-line error")
